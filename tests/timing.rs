//! Waiting, backoff and cooldowns on a fake clock: the pool reads time from its store and sleeps
//! on its clock, so these run in milliseconds of real time and assert exact figures, against
//! the emulator on loopback (which enforces no limit here: the pool's own timing is tested).

mod common;

use common::*;
use gemini_rotator::clock::{next_pacific_midnight, Clock, FakeClock};
use gemini_rotator::CallOptions;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// 2026-03-08 08:30 UTC: 00:30 in Los Angeles on the day daylight saving time starts (a day of
/// 23 hours: midnight is 22 h 30 min away).
const DST_START_0030: i64 = 1_772_958_600;

fn clock() -> Arc<FakeClock> {
    Arc::new(FakeClock::new(1_000_000, DST_START_0030))
}

fn waiting(ms: u64) -> CallOptions {
    CallOptions {
        max_wait_ms: ms,
        ..Default::default()
    }
}

#[test]
fn the_fake_day_is_the_one_the_test_means() {
    assert_eq!(
        next_pacific_midnight(DST_START_0030) - DST_START_0030,
        22 * 3_600 + 30 * 60
    );
}

#[test]
fn exhaustion_names_the_exact_time_the_window_frees() {
    let w = World::new("fake-exhausted", 2, false, None, 60_000);
    let clock = clock();
    let pool = w.pool_on(
        &clock,
        json!({"free_rate_limit": 1, "window_ms": 5_000, "state": "memory"}),
    );
    ask(&pool).unwrap();
    ask(&pool).unwrap();
    // Both completed at the fake instant 1,000,000: each slot frees 5,001 ms later.
    let err = ask(&pool).unwrap_err();
    assert_eq!(err.retry_after_ms(), Some(5_001), "{err}");
    clock.advance(5_000);
    assert_eq!(ask(&pool).unwrap_err().retry_after_ms(), Some(1));
    clock.advance(1);
    ask(&pool).unwrap();
    assert_eq!(w.stats()["total"], 3);
}

#[test]
fn a_caller_waiting_for_a_key_sleeps_on_the_pools_clock() {
    let w = World::new("fake-wait", 1, false, None, 60_000);
    let clock = clock();
    let pool = w.pool_on(
        &clock,
        json!({"free_rate_limit": 1, "window_ms": 60_000, "timeout_ms": 300_000, "state": "memory"}),
    );
    ask(&pool).unwrap();
    let (fake, real) = (clock.now_ms(), Instant::now());
    let r = pool.generate(HELLO, &waiting(120_000)).unwrap();
    assert_eq!(r.attempts, 1);
    assert_eq!(
        clock.now_ms() - fake,
        60_001,
        "it slept until the slot freed"
    );
    assert!(
        real.elapsed() < Duration::from_secs(5),
        "{:?}",
        real.elapsed()
    );
    // A wait shorter than the time to the next free slot fails at once, sleeping nothing.
    let before = clock.now_ms();
    let err = pool.generate(HELLO, &waiting(60_000)).unwrap_err();
    assert_eq!(err.retry_after_ms(), Some(60_001), "{err}");
    assert_eq!(clock.now_ms(), before);
}

#[test]
fn server_errors_back_off_on_the_pools_clock_within_the_bounds() {
    let w = World::new("fake-backoff", 1, false, None, 60_000);
    let clock = clock();
    // Backoffs of up to a minute each: slept in real time, this test would take minutes.
    let pool = w.pool_on(
        &clock,
        json!({"max_retries": 3, "retry_base_ms": 60_000, "retry_max_ms": 60_000,
               "timeout_ms": 600_000, "state": "memory"}),
    );
    w.fault(json!({"kind": "http503", "count": 2}));
    let (fake, real) = (clock.now_ms(), Instant::now());
    let r = ask(&pool).unwrap();
    assert_eq!(r.attempts, 3);
    let slept = clock.now_ms() - fake;
    assert!(
        slept <= 120_000,
        "two backoffs of at most 60 s each: {slept} ms"
    );
    assert!(
        real.elapsed() < Duration::from_secs(5),
        "{:?}",
        real.elapsed()
    );
    let s = key_stats(&pool, &w.free[0]);
    assert_eq!(
        (s["server_errors"].as_u64(), s["retries"].as_u64()),
        (Some(2), Some(2))
    );
}

#[test]
fn a_429_cools_the_key_for_exactly_its_retry_delay() {
    let w = World::new("fake-429", 1, false, None, 60_000);
    let clock = clock();
    let pool = w.pool_on(&clock, json!({"state": "memory"}));
    w.fault(json!({"label": "free0", "kind": "quota_minute", "count": 1, "retry_delay": "30s"}));
    let err = ask(&pool).unwrap_err();
    assert_eq!(err.retry_after_ms(), Some(30_000), "{err}");
    let s = key_stats(&pool, &w.free[0]);
    assert_eq!(
        (
            s["cooldown_remaining_ms"].as_u64(),
            s["cooldown_cause"].as_str()
        ),
        (Some(30_000), Some("per_minute"))
    );
    clock.advance(29_999);
    assert_eq!(ask(&pool).unwrap_err().retry_after_ms(), Some(1));
    clock.advance(1);
    assert_eq!(ask(&pool).unwrap().attempts, 1);
    assert_eq!(
        w.received("free0"),
        2,
        "nothing was sent while the key cooled"
    );
}

#[test]
fn a_per_day_quota_cools_the_key_until_pacific_midnight_on_a_23_hour_day() {
    let w = World::new("fake-429-day", 2, false, None, 60_000);
    let clock = clock();
    let pool = w.pool_on(&clock, json!({"state": "memory"}));
    w.fault(json!({"label": "free0", "kind": "quota_day", "count": 1, "retry_delay": "10s"}));
    // The cursor starts at free0: refused there for the day, served by free1.
    let first = ask(&pool).unwrap();
    assert_eq!(
        (first.attempts, w.label_of(&first.key_fingerprint).as_str()),
        (2, "free1")
    );
    let s = key_stats(&pool, &w.free[0]);
    assert_eq!(s["cooldown_cause"], "per_day");
    let day_ms = (22 * 3_600 + 30 * 60) * 1_000;
    assert_eq!(s["cooldown_remaining_ms"].as_u64(), Some(day_ms), "{s}");
    // A second before midnight free1 still serves alone; at midnight free0 is back.
    clock.advance(day_ms - 1_000);
    for _ in 0..3 {
        assert_eq!(w.label_of(&ask(&pool).unwrap().key_fingerprint), "free1");
    }
    clock.advance(1_000);
    let served: Vec<_> = (0..4)
        .map(|_| w.label_of(&ask(&pool).unwrap().key_fingerprint))
        .collect();
    assert_eq!(
        served.iter().filter(|l| *l == "free0").count(),
        2,
        "{served:?}"
    );
    assert_eq!(key_stats(&pool, &w.free[0])["cooldown_remaining_ms"], 0);
}
