//! Admission alone: one selection and admission decision (`Pool::try_lease` plus completing the
//! lease), in-process and shared-memory stores, 1 and 2 threads on one key, one key with all
//! three limits on (requests per window, per day, input tokens per window), and 10 / 1,000 /
//! 10,000 keys of which 99% are full; next to `governor`'s check in the same run.
//!
//! Time is a fake clock advanced by the benchmark, so that the window never fills where the
//! benchmark wants admissions (and always is full where it wants full keys).

mod common;

use common::{cleanup, keys, pool, pool_with, State};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

const NO_HTTP: &str = "http://127.0.0.1:9";

/// Limit and window for keys that must never fill: 4,096 slots per 8 fake milliseconds, with the
/// clock advancing one millisecond every 64 admissions.
const LIMIT: u64 = 4096;
const WINDOW: u64 = 8;
const PER_TICK: u64 = 64;
/// The 2-thread benchmarks' limit (same window). Larger, because a slot is refused while the
/// admission it held one lap of the ring ago is still in flight: a thread descheduled between
/// admitting and completing blocks its slot until it runs again, and with 4,096 slots the other
/// thread laps the ring in about 150 µs. 2^18 slots take it some 10 ms.
const LIMIT_2T: u64 = 1 << 18;

fn one_key(c: &mut Criterion) {
    let mut group = c.benchmark_group("admission/one_key");
    for state in [State::Memory, State::Shm] {
        let p = pool(
            &keys(&format!("one-{}", state.name()), 1),
            LIMIT,
            WINDOW,
            state,
            NO_HTTP,
        );
        // Fake time must never go back, across criterion's warm-up and measurement calls.
        let mut i = 0u64;
        group.bench_function(BenchmarkId::new("1_thread", state.name()), |b| {
            b.iter(|| {
                i += 1;
                let now = 1 + i / PER_TICK;
                let lease = p.try_lease(black_box(now)).expect("admitted");
                lease.complete(now).expect("completed");
            })
        });
        // The same with a daily limit (never reached in a run) and a token limit (each
        // admission reserves one token; the window holds at most ~600 of 4,096).
        let p = pool_with(
            &keys(&format!("three-{}", state.name()), 1),
            LIMIT,
            WINDOW,
            state,
            NO_HTTP,
            serde_json::json!({"free_daily_limit": 1_000_000_000u64, "free_token_limit": LIMIT}),
        );
        let mut i = 0u64;
        group.bench_function(
            BenchmarkId::new("1_thread_three_limits", state.name()),
            |b| {
                b.iter(|| {
                    i += 1;
                    let now = 1 + i / PER_TICK;
                    let lease = p.try_lease(black_box(now)).expect("admitted");
                    lease.complete(now).expect("completed");
                })
            },
        );
        let p = Arc::new(pool(
            &keys(&format!("two-{}", state.name()), 1),
            LIMIT_2T,
            WINDOW,
            state,
            NO_HTTP,
        ));
        let clock = Arc::new(AtomicU64::new(1));
        group.bench_function(BenchmarkId::new("2_threads", state.name()), |b| {
            b.iter_custom(|iters| two_threads(&p, &clock, iters))
        });
    }
    group.finish();
}

/// Two threads admitting on one key. Reported: wall time / (2 × iters), the time per admission
/// with both threads busy; each thread's own call takes about twice that.
///
/// Both threads move the fake clock on, each every `PER_TICK` of its own admissions, so that a
/// window never holds more than `2 * WINDOW * PER_TICK` admissions whichever thread runs faster
/// (were only one thread to tick, the other could fill the window while the ticking one is
/// descheduled). Refusals are counted and reported at the end: there should be none, or the
/// benchmark partly timed refusals (cheap: a refused key is skipped through the pool's hint).
fn two_threads(p: &Arc<gemini_rotator::Pool>, clock: &Arc<AtomicU64>, iters: u64) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..2 {
            let (p, clock) = (p.clone(), clock.clone());
            s.spawn(move || {
                let mut refused = 0;
                for i in 0..iters {
                    if i % PER_TICK == 0 {
                        clock.fetch_add(1, Relaxed);
                    }
                    let now = clock.load(Relaxed);
                    match p.try_lease(black_box(now)) {
                        Ok(lease) => lease.complete(now).expect("completed"),
                        Err(_) => refused += 1,
                    }
                }
                REFUSED.fetch_add(refused, Relaxed);
            });
        }
    });
    start.elapsed() / 2
}

/// Admissions refused where the benchmarks expect none (see `two_threads`).
static REFUSED: AtomicU64 = AtomicU64::new(0);

/// `n` keys, 99% of them full (at 10 keys, 9 of 10): the full keys' windows are stamped far in
/// the fake future by a pool of their own, so the benchmark's pool finds them full.
fn many_keys(c: &mut Criterion) {
    let mut group = c.benchmark_group("admission/keys_99pct_full");
    for n in [10usize, 1_000, 10_000] {
        for state in [State::Memory, State::Shm] {
            let all = keys(&format!("many-{n}-{}", state.name()), n);
            // Every 100th key is free (one of ten at n = 10), spread as in a steady state.
            let stride = if n >= 100 { 100 } else { n };
            let full: Vec<String> = all
                .iter()
                .enumerate()
                .filter(|(i, _)| i % stride != 0)
                .map(|(_, k)| k.clone())
                .collect();
            let filler = pool(&full, 64, 32, state, NO_HTTP);
            const FAR: u64 = 1 << 40;
            while let Ok(lease) = filler.try_lease(FAR) {
                lease.complete(FAR).expect("completed");
            }
            let p = pool(&all, 64, 32, state, NO_HTTP);
            // Warm the hints: every full key refuses once, as it would in steady state.
            for i in 0..2 * n as u64 {
                let _ = p.try_lease(1 + i).map(|l| l.complete(1 + i));
            }
            let mut i = 0u64;
            group.bench_function(BenchmarkId::new(state.name(), n), |b| {
                b.iter(|| {
                    i += 1;
                    let now = 1_000_000 + i;
                    let lease = p.try_lease(black_box(now)).expect("a free key admits");
                    lease.complete(now).expect("completed");
                })
            });
        }
    }
    group.finish();
}

/// The `governor` crate's check on one direct limiter with a quota that never runs out. Its
/// guarantee is weaker: GCRA with a burst of the limit lets up to twice the limit through in a
/// rolling window.
fn governor(c: &mut Criterion) {
    use governor::{Quota, RateLimiter};
    let limiter = RateLimiter::direct(Quota::per_second(NonZeroU32::new(u32::MAX).unwrap()));
    c.bench_function("admission/governor_check/1_thread", |b| {
        b.iter(|| black_box(limiter.check().is_ok()))
    });
    let limiter = Arc::new(limiter);
    c.bench_function("admission/governor_check/2_threads", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            std::thread::scope(|s| {
                for _ in 0..2 {
                    let l = limiter.clone();
                    s.spawn(move || {
                        for _ in 0..iters {
                            black_box(l.check().is_ok());
                        }
                    });
                }
            });
            start.elapsed() / 2
        })
    });
}

fn finish(_: &mut Criterion) {
    cleanup();
    let refused = REFUSED.load(Relaxed);
    if refused > 0 {
        eprintln!(
            "warning: {refused} admissions were refused in the 2-thread benchmarks (a thread \
             descheduled while the other lapped the ring); their times include them"
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = one_key, many_keys, governor, finish
}
criterion_main!(benches);
