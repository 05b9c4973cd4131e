//! A process forked after its pool was created and used keeps working: the child builds its own
//! HTTP client, and parent and child share the key's count through the state file.
//! (One test in this binary: fork is only tidy in a process with nothing else going on.)

mod common;

use common::*;
use serde_json::json;

#[test]
fn a_child_forked_after_use_keeps_working_and_shares_the_count() {
    let _serial = fork_lock();
    let w = World::new("fork", 1, false, None, 60_000);
    let pool = w.pool(json!({"free_rate_limit": 10}));
    ask(&pool).unwrap();

    // SAFETY: the child only uses the pool and then leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = (0..3).all(|_| ask(&pool).is_ok());
        // SAFETY: ends the child without running the parent's destructors or test harness.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let status = wait_child(pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child failed: status {status}"
    );

    ask(&pool).unwrap();
    assert_eq!(w.received("free0"), 5);
    assert_eq!(
        key_stats(&pool, &w.free[0])["in_window"],
        5,
        "the child's requests count here too"
    );
}
