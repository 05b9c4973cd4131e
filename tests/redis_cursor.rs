//! The round-robin cursor shared through Redis: two processes whose pools share one key set
//! take the keys in turn as one pool would. (Its own test binary: it forks.)

mod common;
mod redis_support;

use common::*;
use gemini_rotator::{Config, Pool};
use redis_support::Server;
use serde_json::json;

/// A child that leases once per byte it reads on `rx` (0: leave) and answers with the index
/// of the key it got on `tx`.
fn child(config: String, free: Vec<String>, rx: i32, tx: i32) -> i32 {
    let pool = match Config::from_json(&config).and_then(Pool::new) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("child: {e}");
            return 2;
        }
    };
    loop {
        match read_byte_within_30s(rx) {
            Some(1) => {}
            Some(0) => return 0,
            other => {
                eprintln!("child: read {other:?}");
                return 7;
            }
        }
        let lease = match pool.try_lease(pool.now()) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("child: {e:?}");
                return 3;
            }
        };
        let fp = lease.key().fingerprint().to_string();
        let Some(i) = free
            .iter()
            .position(|k| gemini_rotator::key::fingerprint(k) == fp)
        else {
            return 4;
        };
        if lease.complete(pool.now()).is_err() {
            return 5;
        }
        // SAFETY: writing one byte to our own pipe.
        if unsafe { libc::write(tx, [i as u8].as_ptr().cast(), 1) } != 1 {
            return 6;
        }
    }
}

/// A pipe: its read end, its write end.
fn pipe() -> (i32, i32) {
    let mut fds = [0; 2];
    // SAFETY: a pipe of our own.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    (fds[0], fds[1])
}

#[test]
fn two_processes_sharing_a_redis_take_the_keys_in_turn_as_one_pool_would() {
    let _serial = fork_lock();
    let server = Server::start(&[]);
    // An established generation: new records admit at once.
    let mut c = server.client(None);
    let _: () = redis::cmd("SET")
        .arg("gemini-rotator:epoch")
        .arg(1)
        .query(&mut c)
        .unwrap();
    let w = World::new("redis-cursor", 3, false, None, 60_000);
    let config = w.config_json(json!({"state": server.url(), "free_rate_limit": 1000}));
    let children: Vec<(i32, i32, i32)> = (0..2)
        .map(|_| {
            let (from_parent, to_child) = pipe();
            let (from_child, to_parent) = pipe();
            let (config, free) = (config.clone(), w.free.clone());
            // SAFETY: the child runs `child` and leaves with _exit, never returning.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork");
            if pid == 0 {
                let code = child(config, free, from_parent, to_parent);
                // SAFETY: ends the child at once.
                unsafe { libc::_exit(code) };
            }
            (pid, to_child, from_child)
        })
        .collect();
    // The two processes take turns, one lease each.
    let mut used = Vec::new();
    for i in 0..30 {
        let (_, tx, rx) = children[i % 2];
        // SAFETY: writing one byte to our own pipe.
        let sent = unsafe { libc::write(tx, [1u8].as_ptr().cast(), 1) };
        match read_byte_within_30s(rx) {
            Some(k) if sent == 1 => used.push(k as usize),
            _ => panic!(
                "child {} did not answer; its status: {}",
                i % 2,
                wait_child(children[i % 2].0)
            ),
        }
    }
    for (pid, tx, _) in &children {
        // SAFETY: writing one byte to our own pipe (a 0: leave).
        unsafe { libc::write(*tx, [0u8].as_ptr().cast(), 1) };
        let status = wait_child(*pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "child status {status}"
        );
    }
    // Each process uses the value it took at its previous admission (its first, a local one):
    // from the second lease of each on, the two together take the keys strictly in turn, as
    // one pool would.
    for i in 3..used.len() {
        assert_eq!(
            used[i],
            (used[i - 1] + 1) % 3,
            "keys in order of use: {used:?}"
        );
    }
    for k in 0..3 {
        let n = used.iter().filter(|&&u| u == k).count();
        assert!((9..=12).contains(&n), "key {k} used {n} times: {used:?}");
    }
    // The cursor is one counter in Redis: every lease took one value of it.
    let names: Vec<String> = redis::cmd("KEYS")
        .arg("gemini-rotator:pool:*:cursor")
        .query(&mut c)
        .unwrap();
    assert_eq!(names.len(), 1, "{names:?}");
    let value: u64 = redis::cmd("GET").arg(&names[0]).query(&mut c).unwrap();
    // One value taken by each of the 30 leases (the last two are held for the processes' next),
    // and one skipped by each process that found the admission script not loaded yet
    // (NOSCRIPT: its pipeline was sent again).
    assert!((30..=32).contains(&value), "the cursor is at {value}");
}
