//! Key selection against the emulator: round-robin, paid fallback, exhaustion, waiting, the
//! rolling-window bound as the service sees it, and what goes over the wire.

mod common;

use common::*;
use gemini_rotator::{CallOptions, Config, Error, Pool};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

#[test]
fn free_keys_serve_in_round_robin() {
    let w = World::new("rr", 3, false, None, 60_000);
    let pool = w.pool(json!({}));
    let mut served: HashMap<String, u32> = HashMap::new();
    for _ in 0..30 {
        let r = ask(&pool).unwrap();
        *served.entry(w.label_of(&r.key_fingerprint)).or_default() += 1;
        assert_eq!(r.attempts, 1);
    }
    for label in ["free0", "free1", "free2"] {
        assert_eq!(served[label], 10, "{served:?}");
        assert_eq!(w.received(label), 10);
    }
}

#[test]
fn round_robin_stays_even_under_threads() {
    let w = World::new("rr-threads", 3, false, None, 60_000);
    let pool = Arc::new(w.pool(json!({"free_rate_limit": 1000})));
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                (0..50)
                    .map(|_| ask(&pool).unwrap().key_fingerprint)
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut served: HashMap<String, u32> = HashMap::new();
    for h in handles {
        for fp in h.join().unwrap() {
            *served.entry(fp).or_default() += 1;
        }
    }
    // The cursor is one atomic counter: 300 requests over 3 keys are 100 each, exactly.
    assert_eq!(
        served.values().copied().collect::<Vec<_>>(),
        [100, 100, 100]
    );
}

#[test]
fn the_request_body_goes_through_untouched_and_the_key_only_in_a_header() {
    let w = World::new("passthrough", 1, false, None, 60_000);
    let pool = w.pool(json!({}));
    // Odd spacing, key order, and a field this library has never heard of.
    let body = r#"{ "futureField" : {"x":[1,2.50,"é"]},"contents":[{"parts":[{"text":"hi"}],"role":"user"}] }"#;
    let r = pool.generate(body, &CallOptions::default()).unwrap();
    assert_eq!(w.emu.last_body("free0").as_deref(), Some(body));
    let answer: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(gemini_rotator::gemini::response_text(&answer), "echo: hi");
    let stats = w.stats();
    assert_eq!(stats["key_in_url"], 0);
    assert_eq!(stats["unknown_key"], 0);
}

#[test]
fn the_model_is_a_per_call_parameter_with_a_configured_default() {
    let w = World::new("model", 1, false, None, 60_000);
    let pool = w.pool(json!({"model": "gemini-3.5-flash"}));
    ask(&pool).unwrap();
    let opts = CallOptions {
        model: Some("models/gemini-3.1-flash-lite".into()),
        ..Default::default()
    };
    pool.generate(HELLO, &opts).unwrap();
    let models: Vec<_> = w
        .emu
        .log()
        .iter()
        .map(|e| serde_json::to_value(e).unwrap()["model"].clone())
        .collect();
    assert_eq!(
        models,
        [json!("gemini-3.5-flash"), json!("gemini-3.1-flash-lite")]
    );
    let bad = CallOptions {
        model: Some("../admin".into()),
        ..Default::default()
    };
    let err = pool.generate(HELLO, &bad).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArgument { argument, .. } if argument == "model"),
        "{err}"
    );
}

#[test]
fn the_paid_key_serves_only_when_every_free_key_is_full() {
    let w = World::new("paid", 2, true, None, 60_000);
    let pool = w.pool(json!({"free_rate_limit": 2, "paid_rate_limit": 3}));
    let labels: Vec<_> = (0..7)
        .map(|_| ask(&pool).map(|r| w.label_of(&r.key_fingerprint)))
        .collect();
    let served: Vec<_> = labels[..6]
        .iter()
        .map(|l| l.as_ref().unwrap().as_str())
        .collect();
    assert!(
        served[..4].iter().all(|l| l.starts_with("free")),
        "{served:?}"
    );
    assert_eq!(&served[4..], ["paid", "paid"]);
    // Free keys full and paid key at 2 of 3: the 7th goes to paid too.
    assert_eq!(labels[6].as_deref().unwrap(), "paid");
    assert_eq!(pool_stats(&pool)["paid_fallbacks"], 3);
    let err = ask(&pool).unwrap_err();
    assert!(
        err.to_string()
            .contains("all API keys have reached their rate limits"),
        "{err}"
    );
}

#[test]
fn exhaustion_says_when_to_retry() {
    let w = World::new("exhausted", 2, false, None, 60_000);
    let pool = w.pool(json!({"free_rate_limit": 1, "window_ms": 5_000}));
    ask(&pool).unwrap();
    ask(&pool).unwrap();
    let err = ask(&pool).unwrap_err();
    let retry = err.retry_after_ms().expect("a rate-limit error");
    assert!(retry > 4_000 && retry <= 5_002, "retry after {retry} ms");
    assert!(err
        .to_string()
        .contains("all API keys have reached their rate limits"));
    assert_eq!(pool_stats(&pool)["exhausted"], 1);
    assert_eq!(
        w.stats()["total"],
        2,
        "a refused request never reaches the service"
    );
}

#[test]
fn a_caller_can_wait_for_a_key_instead_of_failing() {
    let w = World::new("wait", 1, false, None, 60_000);
    let pool = w.pool(json!({"free_rate_limit": 1, "window_ms": 300}));
    ask(&pool).unwrap();
    let started = std::time::Instant::now();
    let r = pool.generate(
        HELLO,
        &CallOptions {
            max_wait_ms: 5_000,
            ..Default::default()
        },
    );
    assert!(r.is_ok(), "{r:?}");
    assert!(
        started.elapsed().as_millis() >= 250,
        "it must have waited for the window"
    );
    // A wait shorter than the time to the next free slot fails at once.
    let err = pool
        .generate(
            HELLO,
            &CallOptions {
                max_wait_ms: 10,
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(err.retry_after_ms().is_some(), "{err}");
}

#[test]
fn the_service_never_sees_more_than_the_limit_in_any_rolling_window() {
    // The emulator enforces the same limit exactly; any over-admission would be a 429 there.
    const LIMIT: u32 = 5;
    const WINDOW: u64 = 200;
    let w = World::new("bound", 2, false, Some(LIMIT), WINDOW);
    let pool = Arc::new(w.pool(json!({"free_rate_limit": LIMIT, "window_ms": WINDOW})));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let mut ok = 0;
                for _ in 0..12 {
                    let r = pool.generate(
                        HELLO,
                        &CallOptions {
                            max_wait_ms: 5_000,
                            ..Default::default()
                        },
                    );
                    ok += r.map(|_| 1).unwrap();
                }
                ok
            })
        })
        .collect();
    let ok: u32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(ok, 96);
    let stats = w.stats();
    assert_eq!(stats["total"], 96);
    for label in ["free0", "free1"] {
        assert_eq!(stats["keys"][label]["rate_limited"], 0, "{stats}");
    }
    // And offline, from the emulator's arrival log.
    let mut by_label: HashMap<String, Vec<f64>> = HashMap::new();
    for e in w.emu.log() {
        let e = serde_json::to_value(e).unwrap();
        by_label
            .entry(e["label"].as_str().unwrap().into())
            .or_default()
            .push(e["t_ms"].as_f64().unwrap());
    }
    for (label, times) in by_label {
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .take_while(|u| **u - t < WINDOW as f64)
                .count();
            assert!(
                in_window <= LIMIT as usize,
                "{label}: {in_window} requests within {WINDOW} ms of {t}"
            );
        }
    }
}

#[test]
fn two_pools_sharing_a_key_share_its_count() {
    let w = World::new("shared", 1, false, None, 60_000);
    let a = w.pool(json!({"free_rate_limit": 3}));
    let b = w.pool(json!({"free_rate_limit": 3}));
    ask(&a).unwrap();
    ask(&b).unwrap();
    ask(&a).unwrap();
    assert!(ask(&b).unwrap_err().retry_after_ms().is_some());
    assert_eq!(key_stats(&b, &w.free[0])["in_window"], 3);
}

#[test]
fn one_key_cannot_be_configured_with_two_limits() {
    let w = World::new("conflict", 1, false, None, 60_000);
    let _a = w.pool(json!({"free_rate_limit": 3}));
    let err = Pool::new(Config::from_json(&w.config_json(json!({"free_rate_limit": 30}))).unwrap())
        .err()
        .expect("a conflicting limit is an error");
    let msg = err.to_string();
    assert!(
        msg.contains("with 3 requests per 60000 ms")
            && msg.contains("configures 30 requests per 60000 ms"),
        "{msg}"
    );
    assert!(!msg.contains(&w.free[0]), "{msg}");
}

#[test]
fn statistics_name_keys_by_fingerprint_only() {
    let w = World::new("stats", 2, true, None, 60_000);
    let pool = w.pool(json!({}));
    ask(&pool).unwrap();
    let json = gemini_rotator::metrics::snapshot_json(&pool).unwrap();
    for key in w.free.iter().chain(w.paid.iter()) {
        assert!(!json.contains(key.as_str()));
        assert!(json.contains(&gemini_rotator::key::fingerprint(key)));
    }
    let s = pool_stats(&pool);
    assert_eq!(
        (s["requests"].as_u64(), s["succeeded"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(s["latency"]["count"], 1);
}
