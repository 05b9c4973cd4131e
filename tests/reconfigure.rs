//! One quota group and model, one set of limits among the pools that use it: a changed limit is
//! refused while a pool of this process or another running process uses the record, and
//! adopted once none does.

mod common;

use common::*;
use gemini_rotator::{Config, Error, Pool};
use serde_json::json;

fn pool_with(w: &World, state: &str, limit: u64) -> Result<Pool, Error> {
    Pool::new(Config::from_json(
        &w.config_json(json!({"free_rate_limit": limit, "state": state})),
    )?)
}

fn config_error(r: Result<Pool, Error>) -> String {
    match r {
        Err(e @ Error::Config { .. }) => e.to_string(),
        Err(other) => panic!("expected a configuration error, got {other}"),
        Ok(_) => panic!("expected a configuration error, got a pool"),
    }
}

#[test]
fn in_one_process_a_new_limit_waits_for_the_old_pools_to_go() {
    let _serial = fork_lock();
    for state in ["memory".to_string(), state_path()] {
        let w = World::new("reconf-local", 1, false, None, 60_000);
        let old = pool_with(&w, &state, 5).unwrap();
        let msg = config_error(pool_with(&w, &state, 6));
        assert!(
            msg.contains("config field `free_rate_limit`")
                && msg.contains("another pool of this process"),
            "{state}: {msg}"
        );
        assert!(
            msg.contains("with 5 requests per 60000 ms")
                && msg.contains("configures 6 requests per 60000 ms"),
            "{msg}"
        );
        ask(&old).unwrap();
        ask(&old).unwrap();
        drop(old);
        // A lower limit carries the window on: the two admissions still count.
        let new = pool_with(&w, &state, 2).unwrap();
        let s = key_stats(&new, &w.free[0]);
        assert_eq!(
            (
                s["limit"].as_u64(),
                s["in_window"].as_u64(),
                s["admitted"].as_u64()
            ),
            (Some(2), Some(2), Some(2)),
            "{state}"
        );
        assert!(
            ask(&new).unwrap_err().retry_after_ms().is_some(),
            "{state}: already full"
        );
    }
}

#[test]
fn across_processes_a_new_limit_waits_for_the_old_process_to_end() {
    let _serial = fork_lock();
    let w = World::new("reconf-procs", 1, false, None, 60_000);
    // A state file this process has not opened before the fork: the child gets its own open
    // file description, hence its own locks, as an unrelated process would.
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("reconf-{}.state", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let state = format!("shm:{}", path.display());
    let config = w.config_json(json!({"free_rate_limit": 5, "state": state}));

    let mut ready = [0i32; 2];
    let mut release = [0i32; 2];
    // SAFETY: plain pipe creation.
    assert_eq!(unsafe { libc::pipe(ready.as_mut_ptr()) }, 0);
    assert_eq!(unsafe { libc::pipe(release.as_mut_ptr()) }, 0);
    // SAFETY: the child makes a pool, signals, waits, and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let pool = Pool::new(Config::from_json(&config).unwrap());
        let byte = [u8::from(pool.is_ok())];
        unsafe {
            libc::write(ready[1], byte.as_ptr().cast(), 1);
            let mut b = [0u8];
            libc::read(release[0], b.as_mut_ptr().cast(), 1);
            libc::_exit(0);
        }
    }
    let byte = read_byte_within_30s(ready[0]);
    if byte != Some(1) {
        // SAFETY: ending our own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        wait_child(pid);
        panic!("the child did not make its pool: {byte:?}");
    }

    let msg = config_error(pool_with(&w, &state, 6));
    assert!(
        msg.contains("another running process") && msg.contains("5 requests per 60000 ms"),
        "{msg}"
    );
    // The same limit is fine meanwhile.
    drop(pool_with(&w, &state, 5).unwrap());

    // SAFETY: releasing the child.
    unsafe { libc::write(release[1], [1u8].as_ptr().cast(), 1) };
    wait_child(pid);
    let pool = pool_with(&w, &state, 6).expect("the old process is gone: the new limit is adopted");
    assert_eq!(key_stats(&pool, &w.free[0])["limit"], 6);
    ask(&pool).unwrap();
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_child_forked_after_the_file_was_mapped_has_locks_of_its_own() {
    let _serial = fork_lock();
    // The parent maps the file and uses the key before forking, so the child starts out
    // sharing the parent's open file description (and so its locks): it must not be able to
    // remake the key's record under the parent's feet.
    let w = World::new("reconf-fork", 1, false, None, 60_000);
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("reconf-fork-{}.state", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let state = format!("shm:{}", path.display());
    let parent = pool_with(&w, &state, 5).unwrap();
    ask(&parent).unwrap();

    // SAFETY: the child tries one pool and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let code = match pool_with(&w, &state, 7) {
            // Refused: the parent's pool lives on in the child's memory, and the parent runs.
            Err(Error::Config { reason, .. }) if reason.contains("through another") => 0,
            Err(_) => 2,
            Ok(_) => 1,
        };
        // SAFETY: ends the child at once.
        unsafe { libc::_exit(code) };
    }
    let status = wait_child(pid);
    assert!(libc::WIFEXITED(status));
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "the child must be refused (1: it remade the record)"
    );
    assert_eq!(key_stats(&parent, &w.free[0])["limit"], 5);
    let _ = std::fs::remove_file(&path);
}
