//! The emulator's own per-key limiter: an exact sliding log, like the real service's.

mod common;

use std::time::Duration;

use common::{client, detail, error_of, generate, prompt, MODEL};
use gemini_emulator::{Emulator, EmulatorConfig, KeySpec};
use serde_json::json;

/// Parses a protobuf Duration string such as "0.412s".
fn seconds(duration: &str) -> f64 {
    duration.strip_suffix('s').unwrap().parse().unwrap()
}

#[test]
fn sliding_window_admits_limit_then_429_until_the_oldest_leaves() {
    let emulator = Emulator::start(EmulatorConfig::with_keys(vec![
        KeySpec::new("key-a", "a").with_limit(3, 300)
    ]))
    .unwrap();
    for _ in 0..3 {
        assert_eq!(generate(&emulator, Some("key-a"), &prompt("hi")).0, 200);
    }
    let (status, body) = generate(&emulator, Some("key-a"), &prompt("hi"));
    assert_eq!(status, 429);
    let error = error_of(status, &body);
    assert_eq!(error["status"], "RESOURCE_EXHAUSTED");

    let retry_delay = detail(error, "RetryInfo").unwrap()["retryDelay"]
        .as_str()
        .unwrap();
    let wait = seconds(retry_delay);
    assert!(wait > 0.0 && wait <= 0.3, "{retry_delay}");
    let message = error["message"].as_str().unwrap();
    assert!(message.starts_with("You exceeded your current quota"));
    assert!(
        message.ends_with(&format!(
            "limit: 3, model: {MODEL}\nPlease retry in {retry_delay}."
        )),
        "{message}"
    );
    assert_eq!(
        detail(error, "QuotaFailure").unwrap()["violations"],
        json!([{
            "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
            "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
            "quotaDimensions": { "location": "global", "model": MODEL },
            "quotaValue": "3",
        }])
    );
    assert_eq!(
        detail(error, "Help").unwrap()["links"][0]["url"],
        "https://ai.google.dev/gemini-api/docs/rate-limits"
    );

    // Waiting exactly the advertised delay is enough.
    std::thread::sleep(Duration::from_secs_f64(wait));
    assert_eq!(generate(&emulator, Some("key-a"), &prompt("hi")).0, 200);

    let stats = emulator.stats();
    let a = &stats.keys["a"];
    assert_eq!((a.requests, a.ok, a.rate_limited), (5, 4, 1));
    assert_eq!(a.by_status["429"], 1);
}

#[test]
fn keys_are_limited_independently() {
    let emulator = Emulator::start(EmulatorConfig::with_keys(vec![
        KeySpec::new("key-a", "a").with_limit(1, 60_000),
        KeySpec::new("key-b", "b").with_limit(1, 60_000),
    ]))
    .unwrap();
    assert_eq!(generate(&emulator, Some("key-a"), &prompt("x")).0, 200);
    assert_eq!(generate(&emulator, Some("key-a"), &prompt("x")).0, 429);
    assert_eq!(generate(&emulator, Some("key-b"), &prompt("x")).0, 200);
    let (status, body) = generate(&emulator, Some("key-b"), &prompt("x"));
    assert_eq!(status, 429);
    // Nearly a whole minute to wait.
    let retry_delay = &detail(&body["error"], "RetryInfo").unwrap()["retryDelay"];
    assert!(seconds(retry_delay.as_str().unwrap()) > 59.0);
}

#[test]
fn daily_limit_answers_per_day_quota() {
    let emulator = Emulator::start(EmulatorConfig::with_keys(vec![
        KeySpec::new("key-a", "a").with_daily_limit(2)
    ]))
    .unwrap();
    assert_eq!(generate(&emulator, Some("key-a"), &prompt("x")).0, 200);
    assert_eq!(generate(&emulator, Some("key-a"), &prompt("x")).0, 200);
    let (status, body) = generate(&emulator, Some("key-a"), &prompt("x"));
    assert_eq!(status, 429);
    let error = error_of(status, &body);
    let violation = &detail(error, "QuotaFailure").unwrap()["violations"][0];
    assert_eq!(
        violation["quotaId"],
        "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
    );
    assert_eq!(violation["quotaValue"], "2");
    assert!(detail(error, "RetryInfo").is_some());
    assert_eq!(emulator.stats().keys["a"].rate_limited, 1);

    // Only a reset brings it back.
    emulator.reset();
    assert_eq!(generate(&emulator, Some("key-a"), &prompt("x")).0, 200);
}

#[test]
fn invalid_requests_do_not_use_quota() {
    let emulator = Emulator::start(EmulatorConfig::with_keys(vec![
        KeySpec::new("key-a", "a").with_limit(1, 60_000)
    ]))
    .unwrap();
    assert_eq!(generate(&emulator, Some("key-a"), &json!({})).0, 400);
    assert_eq!(generate(&emulator, Some("key-a"), &prompt("x")).0, 200);
    assert_eq!(generate(&emulator, Some("key-a"), &prompt("x")).0, 429);
}

#[test]
fn concurrent_requests_never_exceed_the_limit_in_any_window() {
    let (limit, window_ms) = (4u32, 150u64);
    let emulator = Emulator::start(EmulatorConfig::with_keys(vec![
        KeySpec::new("key-a", "a").with_limit(limit, window_ms)
    ]))
    .unwrap();
    std::thread::scope(|scope| {
        for _ in 0..6 {
            let emulator = &emulator;
            scope.spawn(move || {
                let http = client();
                for _ in 0..30 {
                    let status = http
                        .post(emulator.generate_url(MODEL))
                        .header("x-goog-api-key", "key-a")
                        .json(&prompt("x"))
                        .send()
                        .unwrap()
                        .status();
                    assert!(status == 200 || status == 429, "{status}");
                    std::thread::sleep(Duration::from_millis(5));
                }
            });
        }
    });

    let log = emulator.log();
    assert_eq!(log.len(), 180);
    let accepted: Vec<f64> = log
        .iter()
        .filter(|entry| entry.status == 200)
        .map(|entry| entry.t_ms)
        .collect();
    // Log times are truncated to the microsecond: allow that much slack.
    for (i, &end) in accepted.iter().enumerate() {
        let in_window = accepted[..=i]
            .iter()
            .filter(|&&t| t > end - window_ms as f64 + 0.001)
            .count();
        assert!(in_window <= limit as usize, "window ending at {end} ms");
    }
    let a = &emulator.stats().keys["a"];
    assert_eq!(a.ok as usize, accepted.len());
    assert_eq!(a.ok + a.rate_limited, 180);
    // The test ran for well over one window, so more than one window's worth got through.
    assert!(a.ok > u64::from(limit), "{a:?}");
}
