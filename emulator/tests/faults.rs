//! Fault injection: every kind's status and shape, and count/skip/latency semantics.

mod common;

use std::time::{Duration, Instant};

use common::{client, detail, error_of, generate, prompt, two_keys, MODEL};
use gemini_emulator::{Emulator, EmulatorConfig, Fault, FaultKind, KeySpec};
use serde_json::Value;

/// Status and body of one request with key "a" while only `fault` is active.
fn answer_with(kind: FaultKind) -> (u16, Value) {
    let emulator = two_keys();
    emulator.add_fault(Fault::new(kind).for_label("a").with_retry_delay("2s"));
    let answer = generate(&emulator, Some("key-a"), &prompt("hi there"));
    let stats = emulator.stats();
    assert_eq!(stats.keys["a"].injected, 1, "{kind:?}");
    assert_eq!(emulator.log()[0].fault.as_deref(), Some(kind.as_str()));
    answer
}

fn reason(error: &Value) -> &str {
    detail(error, "ErrorInfo").unwrap()["reason"]
        .as_str()
        .unwrap()
}

#[test]
fn server_errors() {
    for (kind, code, status) in [
        (FaultKind::Http500, 500, "INTERNAL"),
        (FaultKind::Http502, 502, "UNAVAILABLE"),
        (FaultKind::Http503, 503, "UNAVAILABLE"),
        (FaultKind::Http504, 504, "DEADLINE_EXCEEDED"),
    ] {
        let (got, body) = answer_with(kind);
        assert_eq!(got, code, "{kind:?}");
        assert_eq!(error_of(got, &body)["status"], status, "{kind:?}");
    }
    let (_, body) = answer_with(FaultKind::Http503);
    assert_eq!(
        body["error"]["message"],
        "The model is overloaded. Please try again later."
    );
}

#[test]
fn quota_shapes() {
    // quota_minute: QuotaFailure (per minute) + Help + RetryInfo with the given delay.
    let (status, body) = answer_with(FaultKind::QuotaMinute);
    assert_eq!(status, 429);
    let error = error_of(status, &body);
    assert_eq!(error["status"], "RESOURCE_EXHAUSTED");
    let violation = &detail(error, "QuotaFailure").unwrap()["violations"][0];
    assert_eq!(
        violation["quotaId"],
        "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
    );
    assert_eq!(violation["quotaDimensions"]["model"], MODEL);
    assert!(detail(error, "Help").is_some());
    assert_eq!(detail(error, "RetryInfo").unwrap()["retryDelay"], "2s");
    assert!(error["message"]
        .as_str()
        .unwrap()
        .ends_with("Please retry in 2s."));

    // quota_day: the per-day quota id, still with RetryInfo.
    let (status, body) = answer_with(FaultKind::QuotaDay);
    let error = error_of(status, &body);
    assert_eq!(
        detail(error, "QuotaFailure").unwrap()["violations"][0]["quotaId"],
        "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
    );
    assert_eq!(detail(error, "RetryInfo").unwrap()["retryDelay"], "2s");

    // quota_message: Help then QuotaFailure, no RetryInfo; the delay is only in the message.
    let (status, body) = answer_with(FaultKind::QuotaMessage);
    let error = error_of(status, &body);
    let types: Vec<&str> = error["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["@type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "type.googleapis.com/google.rpc.Help",
            "type.googleapis.com/google.rpc.QuotaFailure"
        ]
    );
    assert!(error["message"]
        .as_str()
        .unwrap()
        .ends_with("Please retry in 2s."));

    // quota_bare: nothing but the status.
    let (status, body) = answer_with(FaultKind::QuotaBare);
    let error = error_of(status, &body);
    assert_eq!(error["status"], "RESOURCE_EXHAUSTED");
    assert!(error.get("details").is_none());
}

#[test]
fn dead_key_shapes() {
    let (status, body) = answer_with(FaultKind::Leaked);
    assert_eq!(status, 403);
    let error = error_of(status, &body);
    assert_eq!(error["status"], "PERMISSION_DENIED");
    assert_eq!(
        error["message"],
        "Your API key was reported as leaked. Please use another API key."
    );

    let (status, body) = answer_with(FaultKind::Suspended);
    assert_eq!(status, 403);
    let error = error_of(status, &body);
    assert_eq!(reason(error), "CONSUMER_SUSPENDED");
    let message = error["message"].as_str().unwrap();
    // Like the real service, the message quotes the key: clients must redact it.
    assert_eq!(
        message,
        "Permission denied: Consumer 'api_key:key-a' has been suspended."
    );

    let (status, body) = answer_with(FaultKind::ServiceDisabled);
    assert_eq!(status, 403);
    let error = error_of(status, &body);
    assert_eq!(reason(error), "SERVICE_DISABLED");
    assert!(error["message"]
        .as_str()
        .unwrap()
        .starts_with("Generative Language API has not been used in project 123456789"));

    let (status, body) = answer_with(FaultKind::InvalidKey);
    assert_eq!(status, 400);
    let error = error_of(status, &body);
    assert_eq!(error["status"], "INVALID_ARGUMENT");
    assert_eq!(reason(error), "API_KEY_INVALID");
}

#[test]
fn request_and_location_errors() {
    let (status, body) = answer_with(FaultKind::BadRequest);
    assert_eq!(status, 400);
    let error = error_of(status, &body);
    assert_eq!(error["status"], "INVALID_ARGUMENT");
    assert!(error["message"]
        .as_str()
        .unwrap()
        .starts_with("Invalid value at 'contents'"));

    let (status, body) = answer_with(FaultKind::Location);
    assert_eq!(status, 400);
    let error = error_of(status, &body);
    assert_eq!(error["status"], "FAILED_PRECONDITION");
    assert_eq!(
        error["message"],
        "User location is not supported for the API use."
    );
}

#[test]
fn safety_block_is_a_200_without_candidates() {
    let (status, body) = answer_with(FaultKind::SafetyBlock);
    assert_eq!(status, 200);
    assert!(body.get("candidates").is_none());
    assert_eq!(body["promptFeedback"]["blockReason"], "SAFETY");
    assert!(!body["promptFeedback"]["safetyRatings"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(body["usageMetadata"]["promptTokenCount"], 2);
    assert_eq!(body["modelVersion"], MODEL);
}

#[test]
fn close_drops_the_connection() {
    let emulator = two_keys();
    emulator.add_fault(Fault::new(FaultKind::Close).times(1));
    let result = client()
        .post(emulator.generate_url(MODEL))
        .header("x-goog-api-key", "key-a")
        .json(&prompt("hi"))
        .send();
    let error = result.expect_err("the connection should have been closed");
    assert!(error.is_request() || error.is_connect(), "{error:?}");
    // The next request is served normally.
    assert_eq!(generate(&emulator, Some("key-a"), &prompt("hi")).0, 200);
    let log = emulator.log();
    assert_eq!((log[0].status, log[0].fault.as_deref()), (0, Some("close")));
    assert_eq!(emulator.stats().keys["a"].by_status["0"], 1);
}

#[test]
fn count_and_skip() {
    let emulator = two_keys();
    emulator.add_fault(
        Fault::new(FaultKind::Http503)
            .for_label("a")
            .after(2)
            .times(2),
    );
    let statuses: Vec<u16> = (0..6)
        .map(|_| generate(&emulator, Some("key-a"), &prompt("x")).0)
        .collect();
    assert_eq!(statuses, [200, 200, 503, 503, 200, 200]);
    // Requests with another key do not match, and do not count toward skip.
    assert_eq!(generate(&emulator, Some("key-b"), &prompt("x")).0, 200);
    let stats = emulator.stats();
    assert_eq!(stats.keys["a"].injected, 2);
    assert_eq!(stats.keys["b"].injected, 0);
}

#[test]
fn first_matching_fault_applies_in_insertion_order() {
    let emulator = two_keys();
    emulator.add_fault(Fault::new(FaultKind::Http500).times(1));
    emulator.add_fault(Fault::new(FaultKind::Http503).times(1));
    emulator.add_fault(Fault::new(FaultKind::Leaked).for_label("b"));
    let statuses: Vec<u16> = (0..3)
        .map(|_| generate(&emulator, Some("key-a"), &prompt("x")).0)
        .collect();
    assert_eq!(statuses, [500, 503, 200]);
    assert_eq!(generate(&emulator, Some("key-b"), &prompt("x")).0, 403);
    assert_eq!(generate(&emulator, Some("key-b"), &prompt("x")).0, 403);
}

#[test]
fn injected_answers_do_not_use_quota() {
    let emulator = Emulator::start(EmulatorConfig::with_keys(vec![
        KeySpec::new("key-a", "a").with_limit(1, 60_000)
    ]))
    .unwrap();
    emulator.add_fault(Fault::new(FaultKind::Http503).times(3));
    for _ in 0..3 {
        assert_eq!(generate(&emulator, Some("key-a"), &prompt("x")).0, 503);
    }
    assert_eq!(generate(&emulator, Some("key-a"), &prompt("x")).0, 200);
    assert_eq!(generate(&emulator, Some("key-a"), &prompt("x")).0, 429);
}

#[test]
fn latency_delays_the_answer() {
    let emulator = two_keys();
    emulator.add_fault(
        Fault::new(FaultKind::Delay)
            .for_label("a")
            .with_latency_ms(150)
            .times(1),
    );
    emulator.add_fault(Fault::new(FaultKind::Http503).with_latency_ms(100).times(1));

    let started = Instant::now();
    assert_eq!(generate(&emulator, Some("key-a"), &prompt("x")).0, 200);
    assert!(started.elapsed() >= Duration::from_millis(150));

    let started = Instant::now();
    assert_eq!(generate(&emulator, Some("key-a"), &prompt("x")).0, 503);
    assert!(started.elapsed() >= Duration::from_millis(100));

    let log = emulator.log();
    assert_eq!(log[0].fault.as_deref(), Some("delay"));
    assert_eq!(log[1].fault.as_deref(), Some("http503"));
    assert_eq!(emulator.stats().keys["a"].injected, 2);
}

#[test]
fn delayed_requests_are_logged_at_arrival() {
    let emulator = two_keys();
    emulator.add_fault(
        Fault::new(FaultKind::Delay)
            .for_label("a")
            .with_latency_ms(200)
            .times(1),
    );
    std::thread::scope(|scope| {
        let slow = scope.spawn(|| generate(&emulator, Some("key-a"), &prompt("slow")).0);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(generate(&emulator, Some("key-b"), &prompt("fast")).0, 200);
        assert_eq!(slow.join().unwrap(), 200);
    });
    let labels: Vec<Option<String>> = emulator.log().into_iter().map(|e| e.label).collect();
    assert_eq!(labels, [Some("a".to_string()), Some("b".to_string())]);
}

#[test]
fn delay_also_slows_rate_limited_answers() {
    let emulator = Emulator::start(EmulatorConfig::with_keys(vec![
        KeySpec::new("key-a", "a").with_limit(1, 60_000)
    ]))
    .unwrap();
    assert_eq!(generate(&emulator, Some("key-a"), &prompt("x")).0, 200);
    emulator.add_fault(Fault::new(FaultKind::Delay).with_latency_ms(100));
    let started = Instant::now();
    assert_eq!(generate(&emulator, Some("key-a"), &prompt("x")).0, 429);
    assert!(started.elapsed() >= Duration::from_millis(100));
    let a = &emulator.stats().keys["a"];
    assert_eq!((a.rate_limited, a.injected), (1, 1));
}
