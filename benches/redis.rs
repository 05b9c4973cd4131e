//! The Redis store's cost, against a redis-server this benchmark starts on a free loopback
//! port: one admission (`try_admit`, one `EVALSHA` of the admission script) and one
//! completion, each next to a bare round trip from the same client (an `EVALSHA` of a script
//! that returns 1) and to the floor of any exact admission (a script that reads a record,
//! the server's clock and writes one word); admission + completion from 8 threads; and, when
//! Go is installed, go-redis/redis_rate (benches/redis_rate) against the same server.
//!
//! A plain timing loop (no criterion): the figures are round trips on loopback, tens of
//! microseconds, far above a loop's overhead.

#[path = "../tests/redis_support/mod.rs"]
#[allow(dead_code)]
mod redis_support;

use gemini_rotator::clock::SystemClock;
use gemini_rotator::key::{fingerprint, key_id, Tier};
use gemini_rotator::quota::{Limits, Quota};
use gemini_rotator::store::redis::{RedisStore, Target};
use gemini_rotator::store::{quota_id, Moment, QuotaSpec, Store};
use std::sync::Arc;
use std::time::{Duration, Instant};

const N: u32 = 20_000;

/// A (group, model) record with a rate limit only, never full: a slot frees 1 ms after its
/// completion, and there are 4,096.
fn spec(secret: &str) -> QuotaSpec {
    let group = key_id(secret);
    QuotaSpec {
        id: quota_id(&group, "gemini-bench"),
        group,
        group_name: format!("key:{}", fingerprint(secret)),
        model: "gemini-bench".into(),
        tier: Tier::Free,
        limits: Limits {
            rate: Quota::requests_per_window(4096, 1),
            daily: None,
            tokens: None,
        },
        max_inflight_ms: 1000,
        limit_setting: "limit".into(),
        window_setting: "window".into(),
    }
}

/// The store's time now, with its Pacific day.
fn at(store: &RedisStore) -> Moment {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    Moment::of(store.now(), unix)
}

fn micros(d: Duration, n: u32) -> f64 {
    d.as_secs_f64() * 1e6 / n as f64
}

fn main() {
    let server = redis_support::Server::start(&[]);
    let mut conn = server.client(None);
    // An established generation: no hold-back for the new records.
    let _: () = redis::cmd("SET")
        .arg("gemini-rotator:epoch")
        .arg(1)
        .query(&mut conn)
        .unwrap();
    let target = Target::parse(&server.url(), "GEMINI_ROTATOR_STATE").unwrap();
    let store = Arc::new(RedisStore::open(&target, Arc::new(SystemClock)).unwrap());
    let key = store.quota(&spec("bench-one")).unwrap().record;

    let trivial = redis::Script::new("return 1");
    // The least any exact admission must do in one script: read its record, read the
    // server's clock, write what it took. On a scratch string of the header's size.
    let floor = redis::Script::new(
        "redis.call('GETRANGE', KEYS[1], 0, 151) redis.call('TIME') \
         redis.call('SETRANGE', KEYS[1], 152, 'eight by') return 1",
    );
    let floor_key = "gemini-rotator:bench-floor";
    for _ in 0..2000 {
        let _: i64 = trivial.invoke(&mut conn).unwrap();
        let _: i64 = floor.key(floor_key).invoke(&mut conn).unwrap();
        let t = key.try_admit(&at(&store), 0).unwrap();
        key.complete(t, store.now(), None).unwrap();
    }
    let [mut bare, mut least, mut admit, mut complete] = [Duration::ZERO; 4];
    for _ in 0..N {
        let t0 = Instant::now();
        let _: i64 = trivial.invoke(&mut conn).unwrap();
        let t1 = Instant::now();
        let _: i64 = floor.key(floor_key).invoke(&mut conn).unwrap();
        let t2 = Instant::now();
        let ticket = key.try_admit(&at(&store), 0).expect("never full");
        let t3 = Instant::now();
        key.complete(ticket, store.now(), None).unwrap();
        bare += t1 - t0;
        least += t2 - t1;
        admit += t3 - t2;
        complete += t3.elapsed();
    }
    println!(
        "bare round trip (EVALSHA of `return 1`): {:.1} µs",
        micros(bare, N)
    );
    println!(
        "the floor (EVALSHA of GETRANGE + TIME + SETRANGE): {:.1} µs, {:.2}x",
        micros(least, N),
        least.as_secs_f64() / bare.as_secs_f64()
    );
    println!(
        "admission (EVALSHA of admit.lua): {:.1} µs, {:.2}x the bare round trip",
        micros(admit, N),
        admit.as_secs_f64() / bare.as_secs_f64()
    );
    println!(
        "completion (EVALSHA of complete.lua): {:.1} µs, {:.2}x",
        micros(complete, N),
        complete.as_secs_f64() / bare.as_secs_f64()
    );

    // Where the time goes: the server's own time per script, from its statistics.
    let server_us = |conn: &mut redis::Connection| -> f64 {
        let info: String = redis::cmd("INFO").arg("commandstats").query(conn).unwrap();
        info.lines()
            .find(|l| l.starts_with("cmdstat_evalsha:"))
            .and_then(|l| l.split("usec_per_call=").nth(1))
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    let reset = |conn: &mut redis::Connection| {
        let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(conn).unwrap();
    };
    reset(&mut conn);
    for _ in 0..4000 {
        let _: i64 = trivial.invoke(&mut conn).unwrap();
    }
    let trivial_us = server_us(&mut conn);
    reset(&mut conn);
    for _ in 0..4000 {
        // The key of the loop above: its ring is full size, every slot free (as in service).
        key.try_admit(&at(&store), 0).expect("4,096 slots");
    }
    println!(
        "inside the server: {:.1} µs per admission script, {:.1} µs per trivial script",
        server_us(&mut conn),
        trivial_us
    );

    let eight = store.quota(&spec("bench-eight")).unwrap().record;
    let per = N / 2;
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..8 {
            let (eight, store) = (&eight, &store);
            s.spawn(move || {
                for _ in 0..per {
                    let t = eight.try_admit(&at(&store), 0).expect("never full");
                    eight.complete(t, store.now(), None).unwrap();
                }
            });
        }
    });
    let secs = started.elapsed().as_secs_f64();
    println!(
        "8 threads, one key: {:.0} admissions/s (each with its completion: {:.0} scripts/s)",
        8.0 * per as f64 / secs,
        16.0 * per as f64 / secs
    );

    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/redis_rate");
    match std::process::Command::new("go")
        .args(["run", ".", "-addr", &format!("127.0.0.1:{}", server.port)])
        .current_dir(dir)
        .status()
    {
        Ok(s) if s.success() => {}
        Ok(s) => eprintln!("benches/redis_rate failed: {s}"),
        Err(e) => eprintln!("benches/redis_rate not run (go: {e})"),
    }
}
