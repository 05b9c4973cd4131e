//! Every class of upstream failure, against the emulator's real error shapes.

mod common;

use common::*;
use gemini_rotator::{CallOptions, Error, NoKey};
use serde_json::json;

fn api_error(e: &Error) -> (u16, String) {
    match e {
        Error::Api(a) => (a.http_status, a.rpc_status.clone()),
        other => panic!("expected an API error, got {other}"),
    }
}

#[test]
fn a_429_cools_the_key_for_the_retry_delay_and_the_call_moves_on() {
    let w = World::new("429-minute", 3, false, None, 60_000);
    let pool = w.pool(json!({}));
    w.fault(json!({"label": "free0", "kind": "quota_minute", "count": 1, "retry_delay": "2s"}));
    // The cursor starts at free0: the first call is refused there and served by free1.
    let first = ask(&pool).unwrap();
    assert_eq!(
        (first.attempts, w.label_of(&first.key_fingerprint).as_str()),
        (2, "free1")
    );
    let s = key_stats(&pool, &w.free[0]);
    assert_eq!(s["upstream_429"], 1);
    let left = s["cooldown_remaining_ms"].as_u64().unwrap();
    assert!(left > 1_500 && left <= 2_000, "{s}");
    assert_eq!(s["cooldown_cause"], "per_minute");
    assert_eq!(s["disabled"], serde_json::Value::Null);
    // While it cools, the other keys serve, with no further attempt on it.
    for _ in 0..6 {
        let r = ask(&pool).unwrap();
        assert_eq!(r.attempts, 1);
        assert_ne!(w.label_of(&r.key_fingerprint), "free0");
    }
    assert_eq!(w.received("free0"), 1);
}

#[test]
fn retry_delay_sources_in_order_retryinfo_message_default() {
    for (kind, delay, expect_max, expect_min) in [
        ("quota_minute", Some("3s"), 3_000, 2_500),
        ("quota_message", Some("4.5s"), 4_500, 4_000),
        // No quota named at all (the service's capacity): a short backoff (1 s first), not a
        // window.
        ("quota_bare", None, 1_000, 500),
    ] {
        let w = World::new(kind, 2, false, None, 60_000);
        let pool = w.pool(json!({"window_ms": 7_000}));
        let mut fault = json!({"label": "free0", "kind": kind, "count": 1});
        if let Some(d) = delay {
            fault["retry_delay"] = json!(d);
        }
        w.fault(fault);
        ask(&pool).unwrap();
        ask(&pool).unwrap();
        let s = key_stats(&pool, &w.free[0]);
        assert_eq!(s["upstream_429"], 1, "{kind}: {s}");
        let left = s["cooldown_remaining_ms"].as_u64().unwrap();
        assert!(
            left > expect_min && left <= expect_max,
            "{kind}: {left} ms left"
        );
    }
}

#[test]
fn a_per_day_quota_cools_the_key_until_pacific_midnight() {
    let w = World::new("429-day", 2, false, None, 60_000);
    let pool = w.pool(json!({}));
    w.fault(json!({"label": "free0", "kind": "quota_day", "count": 1, "retry_delay": "10s"}));
    ask(&pool).unwrap();
    ask(&pool).unwrap();
    let s = key_stats(&pool, &w.free[0]);
    assert_eq!(s["cooldown_cause"], "per_day");
    let now = gemini_rotator::clock::unix_now_secs();
    let expected_ms = ((gemini_rotator::clock::next_pacific_midnight(now) - now) * 1000) as u64;
    let left = s["cooldown_remaining_ms"].as_u64().unwrap();
    assert!(
        left.abs_diff(expected_ms) < 5_000,
        "{left} ms left, midnight in {expected_ms} ms"
    );
}

#[test]
fn dead_keys_are_disabled_with_their_reason_and_the_call_moves_on() {
    for (kind, reason) in [
        ("invalid_key", "API_KEY_INVALID"),
        ("leaked", "LEAKED"),
        ("suspended", "CONSUMER_SUSPENDED"),
        ("service_disabled", "SERVICE_DISABLED"),
    ] {
        let w = World::new(kind, 2, false, None, 60_000);
        let pool = w.pool(json!({}));
        w.fault(json!({"label": "free0", "kind": kind}));
        for _ in 0..4 {
            let r = ask(&pool).unwrap();
            assert_eq!(w.label_of(&r.key_fingerprint), "free1");
        }
        let s = key_stats(&pool, &w.free[0]);
        assert_eq!(s["disabled"], reason, "{kind}: {s}");
        assert_eq!(
            w.received("free0"),
            1,
            "{kind}: a disabled key gets no more traffic"
        );
    }
}

#[test]
fn a_key_the_service_does_not_know_is_disabled_and_then_nothing_is_usable() {
    let w = World::new("unknown", 1, false, None, 60_000);
    let mut config: serde_json::Value = serde_json::from_str(&w.config_json(json!({}))).unwrap();
    config["free_keys"] = json!([format!("{}-not-registered", w.free[0])]);
    let pool =
        gemini_rotator::Pool::new(gemini_rotator::Config::from_json(&config.to_string()).unwrap())
            .unwrap();
    let err = ask(&pool).unwrap_err();
    assert!(matches!(err, Error::NoUsableKeys { .. }), "{err}");
    assert!(err.to_string().contains("API_KEY_INVALID"), "{err}");
    assert!(!err.to_string().contains("not-registered"), "{err}");
    assert_eq!(w.stats()["unknown_key"], 1);
}

#[test]
fn server_errors_are_retried_with_backoff_and_never_held_against_the_key() {
    let w = World::new("503", 1, false, None, 60_000);
    let pool = w.pool(json!({"max_retries": 3}));
    w.fault(json!({"kind": "http503", "count": 2}));
    let r = ask(&pool).unwrap();
    assert_eq!(r.attempts, 3);
    let s = key_stats(&pool, &w.free[0]);
    assert_eq!(
        (s["server_errors"].as_u64(), s["retries"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(s["disabled"], serde_json::Value::Null);
    assert_eq!(s["cooldown_remaining_ms"], 0);
    for kind in ["http500", "http502", "http504"] {
        w.fault(json!({"kind": kind, "count": 1}));
        assert_eq!(ask(&pool).unwrap().attempts, 2, "{kind}");
    }
}

#[test]
fn persistent_server_errors_end_in_the_services_error_after_the_retries() {
    let w = World::new("503-forever", 2, false, None, 60_000);
    let pool = w.pool(json!({"max_retries": 2}));
    w.fault(json!({"kind": "http503"}));
    let err = ask(&pool).unwrap_err();
    assert_eq!(api_error(&err), (503, "UNAVAILABLE".into()));
    assert_eq!(w.stats()["total"], 3, "one try and two retries");
    for k in &w.free {
        assert_eq!(key_stats(&pool, k)["disabled"], serde_json::Value::Null);
    }
}

#[test]
fn the_callers_own_errors_come_back_at_once_without_penalty() {
    for (kind, status, rpc) in [
        ("bad_request", 400, "INVALID_ARGUMENT"),
        ("location", 400, "FAILED_PRECONDITION"),
    ] {
        let w = World::new(kind, 2, false, None, 60_000);
        let pool = w.pool(json!({}));
        w.fault(json!({"kind": kind, "count": 1}));
        let err = ask(&pool).unwrap_err();
        assert_eq!(api_error(&err), (status, rpc.to_string()), "{kind}");
        assert_eq!(w.stats()["total"], 1, "{kind}: no retry");
        ask(&pool).unwrap();
        ask(&pool).unwrap();
        for k in &w.free {
            let s = key_stats(&pool, k);
            assert_eq!(s["disabled"], serde_json::Value::Null, "{kind}");
            assert_eq!(s["cooldown_remaining_ms"], 0, "{kind}");
        }
    }
}

#[test]
fn a_retired_model_is_a_404_for_the_caller() {
    let w = World::new("404", 1, false, None, 60_000);
    let pool = w.pool(json!({}));
    let opts = CallOptions {
        model: Some("gemini-pro".into()),
        ..Default::default()
    };
    let err = pool.generate(HELLO, &opts).unwrap_err();
    assert_eq!(api_error(&err), (404, "NOT_FOUND".into()));
    assert!(err.to_string().contains("gemini-pro"));
}

#[test]
fn a_safety_block_is_a_success() {
    let w = World::new("safety", 2, false, None, 60_000);
    let pool = w.pool(json!({}));
    w.fault(json!({"kind": "safety_block", "count": 1}));
    let r = ask(&pool).unwrap();
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["promptFeedback"]["blockReason"], "SAFETY");
    assert_eq!(r.attempts, 1);
}

#[test]
fn a_dropped_connection_is_retried() {
    let w = World::new("close", 1, false, None, 60_000);
    let pool = w.pool(json!({}));
    w.fault(json!({"kind": "close", "count": 1}));
    let r = ask(&pool).unwrap();
    assert_eq!(r.attempts, 2);
    assert_eq!(key_stats(&pool, &w.free[0])["transport_errors"], 1);
}

#[test]
fn an_unreachable_service_is_a_transport_error() {
    // A port nobody listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let w = World::new("unreachable", 1, false, None, 60_000);
    let pool = w.pool(json!({"base_url": format!("http://127.0.0.1:{port}"), "max_retries": 1}));
    let err = ask(&pool).unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err}");
    assert!(!err.to_string().contains(&w.free[0]));
}

#[test]
fn the_call_budget_bounds_a_slow_answer() {
    let w = World::new("slow", 1, false, None, 60_000);
    let pool = w.pool(json!({}));
    w.fault(json!({"kind": "delay", "latency_ms": 3_000, "count": 1}));
    let err = pool
        .generate(
            HELLO,
            &CallOptions {
                timeout_ms: Some(200),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert_eq!(key_stats(&pool, &w.free[0])["timeouts"], 1);
}

#[test]
fn bad_requests_are_refused_before_any_key_is_spent() {
    let w = World::new("badjson", 1, false, None, 60_000);
    let pool = w.pool(json!({}));
    for body in ["{", "", "not json"] {
        let err = pool.generate(body, &CallOptions::default()).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidJson { argument, .. } if argument == "request_json"),
            "{body:?}: {err}"
        );
    }
    for body in ["[1]", "null", "42"] {
        let err = pool.generate(body, &CallOptions::default()).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidArgument { argument, reason } if argument == "request_json" && reason.contains("must be a JSON object")),
            "{body:?}: {err}"
        );
    }
    assert_eq!(w.stats()["total"], 0);
    assert_eq!(key_stats(&pool, &w.free[0])["admitted"], 0);
}

#[test]
fn a_key_quoted_by_the_service_is_redacted_from_the_error() {
    // The real service quotes the key of a suspended consumer; so does the emulator.
    let w = World::new("redact", 1, false, None, 60_000);
    let pool = w.pool(json!({"max_attempts": 1}));
    w.fault(json!({"kind": "suspended"}));
    let err = ask(&pool).unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(!text.contains(&w.free[0]), "{text}");
    let fp = gemini_rotator::key::fingerprint(&w.free[0]);
    assert!(text.contains(&format!("api_key:<key {fp}>")), "{text}");
}

#[test]
fn a_key_enabled_again_is_taken_back_by_running_pools_within_ten_seconds() {
    let w = World::new("reenable", 1, false, None, 60_000);
    let pool = w.pool(json!({}));
    w.fault(json!({"kind": "service_disabled", "count": 1}));
    assert!(matches!(
        ask(&pool).unwrap_err(),
        Error::NoUsableKeys { .. }
    ));
    let now = pool.now();
    assert_eq!(
        pool.try_lease(now).err(),
        Some(NoKey::AllDisabled),
        "disabled: never"
    );
    // An operator enables it (what `gemini-rotator enable` does, in the shared file).
    let key = pool.keys().next().unwrap();
    assert_eq!(
        key.record.enable().unwrap().map(|r| r.as_str()),
        Some("SERVICE_DISABLED")
    );
    // This pool still holds it back for a while, then asks the record again.
    assert_eq!(pool.try_lease(now + 5_000).err(), Some(NoKey::AllDisabled));
    assert!(pool.try_lease(now + 10_001).is_ok());
}
