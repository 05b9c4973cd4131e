//! Quotas as Google applies them, end to end against the emulator: per (quota group, model),
//! per rolling window, per Pacific day and per input token; 429s read by what they say; model
//! fallback.

mod common;

use common::*;
use gemini_emulator::{Emulator, EmulatorConfig};
use gemini_rotator::clock::FakeClock;
use gemini_rotator::{CallOptions, Error, Pool, Response};
use serde_json::{json, Value};
use std::sync::Arc;

const DEFAULT: &str = "gemini-3.6-flash";
const OTHER: &str = "gemini-3.1-flash-lite";

/// A world of `specs.len()` free keys (labels free0..), each known to the emulator with its
/// spec's fields, and `top` merged into the emulator's configuration.
fn world(test: &str, specs: Vec<Value>, top: Value) -> World {
    let keys = unique_keys(test, specs.len());
    let mut list = Vec::new();
    for (i, (key, mut spec)) in keys.iter().zip(specs).enumerate() {
        spec["key"] = json!(key);
        spec["label"] = json!(format!("free{i}"));
        list.push(spec);
    }
    let mut config = json!({"keys": list});
    for (k, v) in top.as_object().unwrap() {
        config[k] = v.clone();
    }
    let config = EmulatorConfig::from_json(&config.to_string()).expect("emulator config");
    World {
        emu: Emulator::start(config).expect("emulator starts"),
        free: keys,
        paid: None,
    }
}

fn ask_model(pool: &Pool, model: &str) -> Result<Response, Error> {
    pool.generate(
        HELLO,
        &CallOptions {
            model: Some(model.into()),
            ..Default::default()
        },
    )
}

/// The key's group's statistics for `model`.
fn key_model(pool: &Pool, key: &str, model: &str) -> Value {
    let k = key_stats(pool, key);
    k["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"] == model)
        .cloned()
        .unwrap_or_else(|| panic!("no {model} in {k}"))
}

fn all_stats(pool: &Pool) -> Value {
    serde_json::from_str(&gemini_rotator::metrics::snapshot_json(pool).unwrap()).unwrap()
}

fn pool_model(pool: &Pool, model: &str) -> Value {
    all_stats(pool)["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"] == model)
        .cloned()
        .unwrap_or_else(|| panic!("no {model}"))
}

/// Unix seconds of a UTC time in 2026.
fn utc_2026(month: u32, day: u32, hour: i64, minute: i64) -> i64 {
    let days_before_month = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let days = 20_454 + days_before_month[month as usize - 1] + day as i64 - 1;
    days * 86_400 + hour * 3_600 + minute * 60
}

#[test]
fn a_per_day_429_for_one_model_spends_only_that_model_of_the_group() {
    let w = world("q-permodel", vec![json!({})], json!({}));
    let pool = w.pool(json!({}));
    w.fault(json!({"label": "free0", "kind": "quota_day", "model": DEFAULT, "count": 1}));
    let err = ask(&pool).unwrap_err();
    let retry = err.retry_after_ms().expect("rate limited");
    assert!(
        retry > 60_000,
        "until Pacific midnight, not its short retryDelay: {retry}"
    );
    // The other model of the same key is untouched.
    let r = ask_model(&pool, OTHER).unwrap();
    assert_eq!((r.model.as_str(), r.attempts), (OTHER, 1));
    assert_eq!(
        key_model(&pool, &w.free[0], DEFAULT)["cooldown_cause"],
        "per_day"
    );
    assert_eq!(
        key_model(&pool, &w.free[0], OTHER)["cooldown_cause"],
        Value::Null
    );
    assert_eq!(w.received("free0"), 2);
}

#[test]
fn the_daily_limit_is_never_exceeded_and_resets_at_pacific_midnight_on_the_injected_clock() {
    // 2026-03-07 23:00 PST (07:00 UTC on the 8th): midnight is an hour away, and the next day
    // is the 23-hour day daylight saving time starts on.
    let unix = utc_2026(3, 8, 7, 0);
    let w = world(
        "q-daily",
        vec![json!({"daily_limit": 3})],
        json!({"clock": "2026-03-08T07:00:00Z"}),
    );
    let clock = Arc::new(FakeClock::new(1_000_000, unix));
    let pool = w.pool_on(&clock, json!({"free_daily_limit": 3, "state": "memory"}));
    for _ in 0..3 {
        ask(&pool).unwrap();
    }
    let err = ask(&pool).unwrap_err();
    assert!(matches!(err, Error::AllKeysRateLimited { .. }), "{err}");
    assert_eq!(err.retry_after_ms(), Some(3_600_000), "until 08:00 UTC");
    assert_eq!(
        w.received("free0"),
        3,
        "the 4th request of the day is never sent"
    );
    assert_eq!(w.stats()["keys"]["free0"]["rate_limited"], 0);
    let s = key_model(&pool, &w.free[0], DEFAULT);
    assert_eq!(
        (s["today"].as_u64(), s["daily_limit"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(pool_model(&pool, DEFAULT)["requests_left_today"], 0);

    // Midnight: a new day, of 23 hours.
    clock.advance(3_600_000);
    w.emu.advance_clock(3_600_000);
    for _ in 0..3 {
        ask(&pool).unwrap();
    }
    assert_eq!(
        ask(&pool).unwrap_err().retry_after_ms(),
        Some(23 * 3_600_000)
    );
    assert_eq!(pool_model(&pool, DEFAULT)["requests_left_today"], 0);

    // The day daylight saving time ends (1 November 2026) has 25 hours.
    let w = world("q-daily-nov", vec![json!({})], json!({}));
    let clock = Arc::new(FakeClock::new(1_000_000, utc_2026(11, 1, 7, 0) - 1));
    let pool = w.pool_on(&clock, json!({"free_daily_limit": 1, "state": "memory"}));
    ask(&pool).unwrap();
    assert_eq!(ask(&pool).unwrap_err().retry_after_ms(), Some(1_000));
    clock.advance(1_000);
    ask(&pool).unwrap();
    assert_eq!(
        ask(&pool).unwrap_err().retry_after_ms(),
        Some(25 * 3_600_000)
    );
}

#[test]
fn keys_of_one_project_share_every_limit() {
    let w = world(
        "q-project",
        vec![
            json!({"project": "p", "limit": 2, "window_ms": 60_000}),
            json!({"project": "p", "limit": 2, "window_ms": 60_000}),
        ],
        json!({}),
    );
    let keys: Vec<String> = w.free.iter().map(|k| format!("p:{k}")).collect();
    let pool = w.pool(json!({"free_keys": keys, "free_rate_limit": 2}));
    ask(&pool).unwrap();
    ask(&pool).unwrap();
    let err = ask(&pool).unwrap_err();
    assert!(err.retry_after_ms().is_some(), "{err}");
    assert_eq!(w.stats()["total"], 2, "the project's 2, not 2 per key");
    assert_eq!(w.stats()["keys"]["free0"]["rate_limited"], 0);
    assert_eq!(w.stats()["keys"]["free1"]["rate_limited"], 0);
    let a = key_stats(&pool, &w.free[0]);
    let b = key_stats(&pool, &w.free[1]);
    assert_eq!(
        (a["group"].as_str(), b["group"].as_str()),
        (Some("p"), Some("p"))
    );
    assert_eq!(
        (a["in_window"].as_u64(), b["in_window"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(
        (a["admitted"].as_u64(), b["admitted"].as_u64()),
        (Some(1), Some(1)),
        "fingerprints and counters stay per key"
    );
}

#[test]
fn a_model_not_on_a_keys_tier_moves_to_another_key_or_is_a_clear_error() {
    let zero = json!({"models": {"gemini-3-pro": {"limit": 0}}});
    let w = world("q-limit0", vec![zero.clone(), json!({})], json!({}));
    let pool = w.pool(json!({}));
    for _ in 0..3 {
        let r = ask_model(&pool, "gemini-3-pro").unwrap();
        assert_eq!(w.label_of(&r.key_fingerprint), "free1");
    }
    assert_eq!(
        w.received("free0"),
        1,
        "asked once, then known to lack the model"
    );
    let s = key_model(&pool, &w.free[0], "gemini-3-pro");
    assert_eq!(s["unavailable"], true, "{s}");
    assert!(s["unavailable_remaining_ms"].as_u64().unwrap() > 86_000_000);
    // The key still serves its other models.
    assert_eq!(w.label_of(&ask(&pool).unwrap().key_fingerprint), "free0");

    // No key has it: the error names the model, and is not "rate limited".
    let w = world("q-limit0-all", vec![zero.clone(), zero], json!({}));
    let pool = w.pool(json!({}));
    let err = ask_model(&pool, "gemini-3-pro").unwrap_err();
    assert!(matches!(err, Error::ModelUnavailable { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("model gemini-3-pro is not available"),
        "{err}"
    );
    assert!(err.retry_after_ms().is_none());
    assert!(matches!(
        ask_model(&pool, "gemini-3-pro").unwrap_err(),
        Error::ModelUnavailable { .. }
    ));
    assert_eq!(w.stats()["total"], 2, "each key asked once");
}

#[test]
fn a_spent_model_falls_back_to_the_first_fallback_that_can_serve() {
    let w = world("q-fallback", vec![json!({})], json!({}));
    let pool = w.pool(json!({"models": {
        DEFAULT: {"free_daily_limit": 1, "fallback": ["gemini-3.5-flash", OTHER]},
        "gemini-3.5-flash": {"free_daily_limit": 1}
    }}));
    let served: Vec<String> = (0..3).map(|_| ask(&pool).unwrap().model).collect();
    assert_eq!(served, [DEFAULT, "gemini-3.5-flash", OTHER]);
    assert_eq!(pool_model(&pool, "gemini-3.5-flash")["fallbacks"], 1);
    assert_eq!(pool_model(&pool, OTHER)["fallbacks"], 1);
    assert_eq!(pool_stats(&pool)["model_fallbacks"], 2);
    // Without a fallback list, a spent model is a rate limit.
    let err = ask_model(&pool, "gemini-3.5-flash").unwrap_err();
    assert!(err.retry_after_ms().is_some(), "{err}");
}

#[test]
fn input_tokens_are_reserved_by_estimate_and_corrected_from_the_answer() {
    let w = world("q-tokens", vec![json!({"token_limit": 200})], json!({}));
    let pool = w.pool(json!({"free_token_limit": 200}));
    // HELLO is 58 bytes: reserved as 29 tokens, corrected to the service's count (1 word).
    ask(&pool).unwrap();
    let s = key_model(&pool, &w.free[0], DEFAULT);
    assert_eq!(
        (s["tokens_in_window"].as_u64(), s["token_limit"].as_u64()),
        (Some(1), Some(200))
    );
    // 40 words in 238 bytes: reserved as 119, counted by the service as 40.
    let big = json!({"contents": [{"parts": [{"text": "word ".repeat(40)}]}]}).to_string();
    assert_eq!(gemini_rotator::pool::estimate_tokens(big.as_bytes()), 119);
    for n in 1..=2u64 {
        pool.generate(&big, &CallOptions::default()).unwrap();
        let s = key_model(&pool, &w.free[0], DEFAULT);
        assert_eq!(
            s["tokens_in_window"],
            1 + 40 * n,
            "corrected each time: {s}"
        );
    }
    // 81 counted + 119 estimated fit in 200; once more would not (an over-estimate holds back
    // a request the service would take: safe), and it is never sent.
    pool.generate(&big, &CallOptions::default()).unwrap();
    let err = pool.generate(&big, &CallOptions::default()).unwrap_err();
    assert!(err.retry_after_ms().is_some(), "{err}");
    assert_eq!(w.received("free0"), 4);
    assert_eq!(w.stats()["keys"]["free0"]["rate_limited"], 0);
}

#[test]
fn a_capacity_429_backs_the_group_off_briefly_and_the_call_moves_on() {
    let w = world("q-capacity", vec![json!({}), json!({})], json!({}));
    let pool = w.pool(json!({}));
    w.fault(json!({"label": "free0", "kind": "quota_bare", "count": 2}));
    let r = ask(&pool).unwrap();
    assert_eq!(
        (w.label_of(&r.key_fingerprint).as_str(), r.attempts),
        ("free1", 2)
    );
    let s = key_model(&pool, &w.free[0], DEFAULT);
    assert_eq!(s["cooldown_cause"], "capacity");
    let first = s["cooldown_remaining_ms"].as_u64().unwrap();
    assert!(first > 500 && first <= 1_000, "{first}");
    // Another in a row, once the first backoff is over: twice as long.
    std::thread::sleep(std::time::Duration::from_millis(first + 5));
    // Round robin: one of the two calls lands on free0 and meets the second fault.
    for _ in 0..2 {
        ask(&pool).unwrap();
    }
    let s = key_model(&pool, &w.free[0], DEFAULT);
    let second = s["cooldown_remaining_ms"].as_u64().unwrap();
    assert!(second > 1_000 && second <= 2_000, "{s}");
}

#[test]
fn a_service_limit_lower_than_configured_is_used_from_then_on() {
    let w = world(
        "q-lower",
        vec![json!({"limit": 2, "window_ms": 60_000})],
        json!({}),
    );
    let pool = w.pool(json!({"free_rate_limit": 5}));
    ask(&pool).unwrap();
    ask(&pool).unwrap();
    assert!(ask(&pool).unwrap_err().retry_after_ms().is_some());
    assert_eq!(w.stats()["keys"]["free0"]["rate_limited"], 1);
    let s = key_model(&pool, &w.free[0], DEFAULT);
    assert_eq!(s["rate_limit"], 2, "the service said 2: {s}");
    assert_eq!(key_stats(&pool, &w.free[0])["limit"], 2);
}

#[test]
fn of_several_violations_the_longest_wait_wins() {
    let w = world(
        "q-multi",
        vec![json!({"limit": 1, "daily_limit": 1, "window_ms": 60_000})],
        json!({}),
    );
    // The pool knows no limit: the emulator's answer names both quotas.
    let pool = w.pool(json!({}));
    ask(&pool).unwrap();
    let err = ask(&pool).unwrap_err();
    assert!(err.retry_after_ms().unwrap() > 60_000, "{err}");
    let s = key_model(&pool, &w.free[0], DEFAULT);
    assert_eq!(s["cooldown_cause"], "per_day", "{s}");
    assert_eq!(
        (s["rate_limit"].as_u64(), s["daily_limit"].as_u64()),
        (Some(1), None)
    );
}

#[test]
fn the_paid_key_serves_only_a_model_no_free_key_can() {
    let w = world("q-paid", vec![json!({}), json!({})], json!({}));
    let w = World {
        paid: Some(w.free[1].clone()),
        free: vec![w.free[0].clone()],
        emu: w.emu,
    };
    let pool = w.pool(json!({"free_daily_limit": 1, "paid_daily_limit": 10}));
    assert_eq!(w.label_of(&ask(&pool).unwrap().key_fingerprint), "free0");
    assert_eq!(
        w.label_of(&ask_model(&pool, OTHER).unwrap().key_fingerprint),
        "free0"
    );
    // The free key's day is spent for DEFAULT only.
    assert_eq!(w.label_of(&ask(&pool).unwrap().key_fingerprint), "paid");
    assert_eq!(pool_stats(&pool)["paid_fallbacks"], 1);
}

#[test]
fn prometheus_and_json_show_each_key_and_model() {
    let w = world("q-obs", vec![json!({})], json!({}));
    let pool = w.pool(json!({"free_daily_limit": 20, "free_token_limit": 1000}));
    ask(&pool).unwrap();
    ask_model(&pool, OTHER).unwrap();
    let text =
        gemini_rotator::metrics::prometheus(&gemini_rotator::metrics::snapshot(&pool).unwrap());
    let fp = gemini_rotator::key::fingerprint(&w.free[0]);
    for line in [
        format!("gemini_rotator_key_model_requests_today{{key=\"{fp}\",tier=\"free\",model=\"{DEFAULT}\"}} 1"),
        format!("gemini_rotator_key_model_daily_limit_requests{{key=\"{fp}\",tier=\"free\",model=\"{OTHER}\"}} 20"),
        format!("gemini_rotator_key_model_window_limit_tokens{{key=\"{fp}\",tier=\"free\",model=\"{DEFAULT}\"}} 1000"),
        format!("gemini_rotator_model_requests_left_today{{model=\"{OTHER}\"}} 19"),
    ] {
        assert!(text.contains(&line), "{line} not in\n{text}");
    }
    assert!(!text.contains(w.free[0].as_str()));
    assert_eq!(pool_model(&pool, DEFAULT)["requests_left_today"], 19);
}
