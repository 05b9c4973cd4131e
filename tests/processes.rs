//! Quotas across processes on one state file: a daily count shared exactly, and the token
//! reservation of a process killed mid-request freeing itself.

mod common;

use common::*;
use gemini_rotator::{Config, Pool};
use serde_json::json;
use std::time::{Duration, Instant};

fn state_file(name: &str) -> String {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("{name}-{}.state", std::process::id()));
    let _ = std::fs::remove_file(&path);
    format!("shm:{}", path.display())
}

/// Forks a child that runs `body` and leaves with its result as exit status.
fn fork_child(body: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child runs `body` and leaves with _exit, never returning into the test.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        let code = body();
        // SAFETY: ends the child at once.
        unsafe { libc::_exit(code) };
    }
    pid
}

#[test]
fn two_processes_share_one_daily_count_exactly() {
    let _serial = fork_lock();
    let w = World::new("proc-daily", 2, false, None, 60_000);
    let state = state_file("proc-daily");
    let config = w.config_json(json!({
        "free_daily_limit": 25, "free_rate_limit": 1000, "state": state
    }));
    // Each child sends until refused and reports how many were served (exit status).
    let children: Vec<i32> = (0..2)
        .map(|_| {
            let config = config.clone();
            fork_child(move || {
                let Ok(pool) = Config::from_json(&config).and_then(Pool::new) else {
                    return 255;
                };
                let mut served = 0;
                for _ in 0..40 {
                    match ask(&pool) {
                        Ok(_) => served += 1,
                        Err(e) if e.retry_after_ms().is_some() => {}
                        Err(_) => return 254,
                    }
                }
                served
            })
        })
        .collect();
    let served: Vec<i32> = children
        .into_iter()
        .map(|pid| {
            let status = wait_child(pid);
            assert!(libc::WIFEXITED(status));
            libc::WEXITSTATUS(status)
        })
        .collect();
    // Each key is its own group: 25 per key per day, 50 in all, whichever process sent them.
    assert_eq!(served.iter().sum::<i32>(), 50, "{served:?}");
    assert_eq!(w.stats()["total"], 50);
    assert_eq!(w.received("free0"), 25);
    assert_eq!(w.received("free1"), 25);
    // A third process (this one) finds the day spent, exactly.
    let pool = Pool::new(Config::from_json(&config).unwrap()).unwrap();
    let err = ask(&pool).unwrap_err();
    assert!(err.retry_after_ms().unwrap() > 1_000, "{err}");
    assert_eq!(
        key_stats(&pool, &w.free[0])["models"][0]["today"],
        25,
        "{}",
        key_stats(&pool, &w.free[0])
    );
}

#[test]
fn processes_racing_for_the_last_of_a_large_daily_limit_admit_exactly_it() {
    // A daily limit far above the margin under which the count is exact by compare-and-swap:
    // the first admissions take the one-add path, the last ones cross to the exact one, from
    // three processes of two threads each at once. No HTTP: admission alone.
    let _serial = fork_lock();
    let w = World::new("proc-day-race", 1, false, None, 60_000);
    let state = state_file("proc-day-race");
    let config = w.config_json(json!({
        "free_daily_limit": 240, "free_rate_limit": 100_000, "free_token_limit": 1_000_000,
        "state": state
    }));
    let mut go = [0i32; 2];
    // SAFETY: plain pipe creation.
    assert_eq!(unsafe { libc::pipe(go.as_mut_ptr()) }, 0);
    let children: Vec<i32> = (0..3)
        .map(|_| {
            let config = config.clone();
            fork_child(move || {
                let Ok(pool) = Config::from_json(&config).and_then(Pool::new) else {
                    return 255;
                };
                // Every child waits for the parent's go, so that they race.
                let mut byte = [0u8];
                // SAFETY: reading one byte from our pipe.
                unsafe { libc::read(go[0], byte.as_mut_ptr().cast(), 1) };
                let admitted = std::sync::atomic::AtomicI32::new(0);
                std::thread::scope(|s| {
                    for _ in 0..2 {
                        s.spawn(|| {
                            for _ in 0..200 {
                                if let Ok(lease) = pool.try_lease(pool.now()) {
                                    admitted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                    lease.complete(pool.now()).unwrap();
                                }
                            }
                        });
                    }
                });
                admitted.into_inner()
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: writing three bytes to our pipe, one per child.
    unsafe { libc::write(go[1], b"ggg".as_ptr().cast(), 3) };
    let admitted: Vec<i32> = children
        .into_iter()
        .map(|pid| {
            let status = wait_child(pid);
            assert!(libc::WIFEXITED(status));
            libc::WEXITSTATUS(status)
        })
        .collect();
    assert!(admitted.iter().all(|&n| n < 250), "{admitted:?}");
    assert_eq!(admitted.iter().sum::<i32>(), 240, "{admitted:?}");
    let pool = Pool::new(Config::from_json(&config).unwrap()).unwrap();
    assert!(pool.try_lease(pool.now()).is_err(), "the day is spent");
    assert_eq!(key_stats(&pool, &w.free[0])["models"][0]["today"], 240);
}

#[test]
fn a_killed_processs_token_reservation_frees_itself() {
    let _serial = fork_lock();
    let w = World::new("proc-kill", 1, false, None, 60_000);
    let state = state_file("proc-kill");
    // A window and an in-flight allowance of 300 ms each: an abandoned slot frees 600 ms on.
    let config = w.config_json(json!({
        "free_token_limit": 100, "window_ms": 300, "timeout_ms": 300, "state": state
    }));
    let mut ready = [0i32; 2];
    // SAFETY: plain pipe creation.
    assert_eq!(unsafe { libc::pipe(ready.as_mut_ptr()) }, 0);
    let pid = fork_child(|| {
        let pool = Pool::new(Config::from_json(&config).unwrap()).unwrap();
        let model = pool.config().model.clone();
        // Holds every token of the window, then is killed before completing.
        let lease = pool.try_lease_model(pool.now(), &model, 1_000);
        let byte = [u8::from(lease.is_ok())];
        // SAFETY: writing one byte to our pipe, then waiting to be killed.
        unsafe { libc::write(ready[1], byte.as_ptr().cast(), 1) };
        std::mem::forget(lease);
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let byte = read_byte_within_30s(ready[0]);
    // SAFETY: ending our own child.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    wait_child(pid);
    assert_eq!(byte, Some(1), "the child leased");
    let killed = Instant::now();
    let pool = Pool::new(Config::from_json(&config).unwrap()).unwrap();
    let model = pool.config().model.clone();
    let s = key_stats(&pool, &w.free[0]);
    assert_eq!(s["models"][0]["tokens_in_window"], 100, "{s}");
    assert!(pool.try_lease_model(pool.now(), &model, 1).is_err());
    // Freed once the allowance and the window have passed, and not before.
    while pool.try_lease_model(pool.now(), &model, 1).is_err() {
        assert!(killed.elapsed() < Duration::from_secs(5), "never freed");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        killed.elapsed() >= Duration::from_millis(300),
        "{:?}",
        killed.elapsed()
    );
}
