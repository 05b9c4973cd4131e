//! The control API under /_emulator/, as tests in C, Go and Python use it.

mod common;

use common::{client, error_of, generate, prompt, MODEL};
use gemini_emulator::{Emulator, EmulatorConfig, KeySpec, LogEntry, Stats};
use reqwest::blocking::Response;
use serde_json::{json, Value};

fn get(emulator: &Emulator, path: &str) -> Response {
    client()
        .get(format!("{}/_emulator/{path}", emulator.base_url()))
        .send()
        .unwrap()
}

fn post(emulator: &Emulator, path: &str, body: &str) -> Response {
    client()
        .post(format!("{}/_emulator/{path}", emulator.base_url()))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .unwrap()
}

fn ok(response: Response) {
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().unwrap(), json!({ "ok": true }));
}

#[test]
fn stats_and_log_match_the_library_snapshots() {
    let emulator = Emulator::start(EmulatorConfig::with_keys(vec![
        KeySpec::new("key-a", "a").with_limit(1, 60_000),
        KeySpec::new("key-b", "b"),
    ]))
    .unwrap();
    generate(&emulator, Some("key-a"), &prompt("x"));
    generate(&emulator, Some("key-a"), &prompt("x"));
    generate(&emulator, Some("nope"), &prompt("x"));
    generate(&emulator, None, &prompt("x"));

    let stats: Value = get(&emulator, "stats").json().unwrap();
    assert_eq!(
        stats,
        json!({
            "total": 4, "unknown_key": 1, "missing_key": 1, "key_in_url": 0,
            "keys": {
                "a": { "project": "a", "requests": 2, "ok": 1, "rate_limited": 1, "injected": 0,
                       "by_status": { "200": 1, "429": 1 } },
                "b": { "project": "b", "requests": 0, "ok": 0, "rate_limited": 0, "injected": 0,
                       "by_status": {} },
            },
            "projects": {
                "a": { "keys": ["a"], "models": { MODEL: {
                    "requests": 2, "ok": 1, "rate_limited": 1, "input_tokens": 1,
                    "in_window": 1, "tokens_in_window": 1, "today": 1,
                } }, "files": 0, "cached_contents": 0, "upload_sessions": 0 },
                "b": { "keys": ["b"], "models": {},
                       "files": 0, "cached_contents": 0, "upload_sessions": 0 },
            },
            "open_streams": 0,
            "by_version": { "v1beta": 4 },
            "by_method": { "generateContent": 4 },
        })
    );
    assert_eq!(
        serde_json::from_value::<Stats>(stats).unwrap(),
        emulator.stats()
    );

    let log: Vec<LogEntry> = get(&emulator, "log").json().unwrap();
    assert_eq!(log, emulator.log());
    let summary: Vec<(Option<&str>, u16)> =
        log.iter().map(|e| (e.label.as_deref(), e.status)).collect();
    assert_eq!(
        summary,
        [(Some("a"), 200), (Some("a"), 429), (None, 400), (None, 403)]
    );
    assert!(log.iter().all(|e| e.model == MODEL && e.fault.is_none()));
    let raw: Value = get(&emulator, "log").json().unwrap();
    assert!(raw[0]["t_ms"].is_f64());
    assert!(raw[2]["label"].is_null());
    assert_eq!(raw[0]["project"], "a");
    assert_eq!(raw[0]["method"], "generateContent");
    assert_eq!(raw[0]["tokens"], 1);
    // Rejected requests count no tokens; unknown keys have no project.
    assert!(raw[1]["tokens"].is_null());
    assert!(raw[2]["project"].is_null());
    // Keys by fingerprint (the core's rule), known or not; the path and version used.
    assert_eq!(raw[0]["key_fingerprint"], "b1f7aed3c596");
    assert_eq!(raw[2]["key_fingerprint"].as_str().unwrap().len(), 12);
    assert!(raw[3]["key_fingerprint"].is_null());
    assert_eq!(raw[0]["version"], "v1beta");
    assert_eq!(
        raw[0]["path"],
        format!("/v1beta/models/{MODEL}:generateContent")
    );
    assert_eq!(raw[0]["resources"], json!([]));
}

#[test]
fn faults_keys_and_reset() {
    let emulator = Emulator::start(EmulatorConfig::default()).unwrap();
    // No keys yet.
    assert_eq!(generate(&emulator, Some("secret"), &prompt("x")).0, 400);

    ok(post(
        &emulator,
        "keys",
        r#"{"key":"secret","label":"new","limit":1}"#,
    ));
    assert_eq!(generate(&emulator, Some("secret"), &prompt("x")).0, 200);
    assert_eq!(generate(&emulator, Some("secret"), &prompt("x")).0, 429);

    ok(post(
        &emulator,
        "faults",
        r#"{"kind":"http503","label":"new","count":1}"#,
    ));
    assert_eq!(generate(&emulator, Some("secret"), &prompt("x")).0, 503);

    ok(post(&emulator, "reset", ""));
    let stats = emulator.stats();
    assert_eq!(stats.total, 0);
    assert_eq!(stats.keys["new"].requests, 0, "labels stay after a reset");
    assert!(emulator.log().is_empty());
    // The window was cleared too, and the key stays.
    assert_eq!(generate(&emulator, Some("secret"), &prompt("x")).0, 200);

    // Faults are cleared by a reset.
    ok(post(&emulator, "faults", r#"{"kind":"leaked"}"#));
    ok(post(&emulator, "reset", "{}"));
    ok(post(
        &emulator,
        "keys",
        r#"{"key":"secret","label":"new","limit":null}"#,
    ));
    assert_eq!(generate(&emulator, Some("secret"), &prompt("x")).0, 200);
}

#[test]
fn bad_control_requests_name_the_problem() {
    let emulator = Emulator::start(EmulatorConfig::default()).unwrap();
    for (path, body, expected) in [
        ("faults", r#"{"kind":"http999"}"#, "http999"),
        ("faults", "not json", "invalid fault"),
        ("keys", r#"{"key":"x"}"#, "label"),
        ("keys", r#"{"key":"","label":"a"}"#, "empty `key`"),
        ("keys", r#"{"key":"x","label":"a","limt":1}"#, "limt"),
    ] {
        let response = post(&emulator, path, body);
        assert_eq!(response.status(), 400, "{body}");
        let answer: Value = response.json().unwrap();
        let message = error_of(400, &answer)["message"].as_str().unwrap();
        assert!(message.contains(expected), "{body}: {message}");
    }
    let response = get(&emulator, "faults");
    assert_eq!(response.status(), 405);
    let response = post(&emulator, "stats", "");
    assert_eq!(response.status(), 405);
}

#[test]
fn last_body_over_http() {
    let mut config = EmulatorConfig::with_keys(vec![KeySpec::new("key-a", "my label")]);
    config.record_bodies = true;
    let emulator = Emulator::start(config).unwrap();
    assert_eq!(get(&emulator, "last_body?label=my%20label").status(), 404);
    assert_eq!(get(&emulator, "last_body").status(), 400);
    generate(&emulator, Some("key-a"), &prompt("remember me"));
    let response = get(&emulator, "last_body?label=my+label");
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().unwrap(), prompt("remember me"));

    // Without record_bodies there is never a body.
    let emulator =
        Emulator::start(EmulatorConfig::with_keys(vec![KeySpec::new("key-a", "a")])).unwrap();
    generate(&emulator, Some("key-a"), &prompt("x"));
    assert_eq!(get(&emulator, "last_body?label=a").status(), 404);
}

#[test]
fn control_api_is_never_rate_limited_or_counted() {
    let emulator = Emulator::start(EmulatorConfig::with_keys(vec![
        KeySpec::new("key-a", "a").with_limit(0, 60_000)
    ]))
    .unwrap();
    for _ in 0..20 {
        assert_eq!(get(&emulator, "stats").status(), 200);
    }
    assert_eq!(emulator.stats().total, 0);
    assert!(emulator.log().is_empty());
}

#[test]
fn invalid_configurations_are_refused() {
    let config = EmulatorConfig::with_keys(vec![KeySpec::new("k", "a"), KeySpec::new("k", "b")]);
    let error = Emulator::start(config).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    assert!(error.to_string().contains("'b'"), "{error}");
}

#[test]
fn drop_shuts_down_promptly_even_with_open_connections() {
    let emulator =
        Emulator::start(EmulatorConfig::with_keys(vec![KeySpec::new("key-a", "a")])).unwrap();
    let url = emulator.generate_url(MODEL);
    // This client keeps its connection alive in its pool.
    let http = client();
    let send = || {
        http.post(&url)
            .header("x-goog-api-key", "key-a")
            .json(&prompt("x"))
            .send()
    };
    assert_eq!(send().unwrap().status(), 200);

    let started = std::time::Instant::now();
    drop(emulator);
    assert!(
        started.elapsed() < std::time::Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    assert!(send().is_err(), "the port should be closed");
}
