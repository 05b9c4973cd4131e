//! Quotas as Google applies them: per (project, model), requests and input tokens per rolling
//! window, requests per Pacific day, `limit: 0`, several violations in one answer.

mod common;

use common::{call, client, detail, error_of, prompt};
use gemini_emulator::{Emulator, EmulatorConfig, Fault, FaultKind, KeySpec, ModelLimits};
use serde_json::{json, Value};

const FLASH: &str = "gemini-3.6-flash";
const LITE: &str = "gemini-3.1-flash-lite";

fn generate(emulator: &Emulator, key: &str, model: &str, text: &str) -> (u16, Value) {
    call(emulator, key, model, "generateContent", &prompt(text))
}

fn violations(body: &Value) -> Vec<(String, String)> {
    let error = error_of(429, body);
    detail(error, "QuotaFailure").unwrap()["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            assert_eq!(v["quotaDimensions"]["location"], "global");
            (
                v["quotaId"].as_str().unwrap().to_string(),
                v["quotaValue"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn retry_delay(body: &Value) -> String {
    let error = &body["error"];
    detail(error, "RetryInfo").unwrap()["retryDelay"]
        .as_str()
        .unwrap()
        .to_string()
}

fn seconds(duration: &str) -> f64 {
    duration.strip_suffix('s').unwrap().parse().unwrap()
}

#[test]
fn keys_of_one_project_share_its_quota_and_models_are_separate() {
    let emulator = Emulator::start(EmulatorConfig::with_keys(vec![
        KeySpec::new("key-a", "a")
            .in_project("p")
            .with_limit(2, 60_000),
        KeySpec::new("key-b", "b")
            .in_project("p")
            .with_limit(2, 60_000),
        KeySpec::new("key-c", "c").with_limit(2, 60_000),
    ]))
    .unwrap();
    assert_eq!(generate(&emulator, "key-a", FLASH, "x").0, 200);
    assert_eq!(generate(&emulator, "key-b", FLASH, "x").0, 200);
    // Project p has used its 2 requests on FLASH, whichever key asks.
    let (status, body) = generate(&emulator, "key-a", FLASH, "x");
    assert_eq!(status, 429);
    assert_eq!(
        violations(&body),
        [(
            "GenerateRequestsPerMinutePerProjectPerModel-FreeTier".into(),
            "2".into()
        )]
    );
    let quota = detail(&body["error"], "QuotaFailure").unwrap();
    assert_eq!(quota["violations"][0]["quotaDimensions"]["model"], FLASH);
    assert_eq!(generate(&emulator, "key-b", FLASH, "x").0, 429);
    // Another model of the same project, and another project, are untouched.
    assert_eq!(generate(&emulator, "key-b", LITE, "x").0, 200);
    assert_eq!(generate(&emulator, "key-c", FLASH, "x").0, 200);

    let log = emulator.log();
    let seen: Vec<(Option<&str>, Option<&str>, &str, u16)> = log
        .iter()
        .map(|e| {
            (
                e.label.as_deref(),
                e.project.as_deref(),
                e.model.as_str(),
                e.status,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (Some("a"), Some("p"), FLASH, 200),
            (Some("b"), Some("p"), FLASH, 200),
            (Some("a"), Some("p"), FLASH, 429),
            (Some("b"), Some("p"), FLASH, 429),
            (Some("b"), Some("p"), LITE, 200),
            (Some("c"), Some("c"), FLASH, 200),
        ]
    );
    let stats = emulator.stats();
    assert_eq!(stats.projects["p"].keys, ["a", "b"]);
    let flash = &stats.projects["p"].models[FLASH];
    assert_eq!(
        (
            flash.requests,
            flash.ok,
            flash.rate_limited,
            flash.in_window
        ),
        (4, 2, 2, 2)
    );
    assert_eq!(stats.projects["p"].models[LITE].in_window, 1);
    assert_eq!(stats.keys["a"].project, "p");
}

#[test]
fn token_limit_counts_input_tokens_and_reports_the_tpm_quota() {
    let emulator = Emulator::start(EmulatorConfig::with_keys(vec![
        KeySpec::new("key-a", "a").with_token_limit(10)
    ]))
    .unwrap();
    let (status, body) = generate(&emulator, "key-a", FLASH, "one two three four five six");
    assert_eq!(status, 200);
    assert_eq!(body["usageMetadata"]["promptTokenCount"], 6);
    // 6 + 5 > 10.
    let (status, body) = generate(&emulator, "key-a", FLASH, "a b c d e");
    assert_eq!(status, 429);
    assert_eq!(
        violations(&body),
        [(
            "GenerateContentInputTokensPerModelPerMinute-FreeTier".into(),
            "10".into()
        )]
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("generate_content_free_tier_input_token_count, limit: 10"),
        "{message}"
    );
    assert!(seconds(&retry_delay(&body)) > 59.0);
    // 6 + 4 fits exactly; a system instruction counts too.
    let body = json!({
        "systemInstruction": {"parts": [{"text": "be brief"}]},
        "contents": [{"parts": [{"text": "a b"}]}],
    });
    let (status, answer) = call(&emulator, "key-a", FLASH, "generateContent", &body);
    assert_eq!(status, 200);
    assert_eq!(answer["usageMetadata"]["promptTokenCount"], 4);
    let stats = emulator.stats();
    let usage = &stats.projects["a"].models[FLASH];
    assert_eq!((usage.input_tokens, usage.tokens_in_window), (10, 10));
    let tokens: Vec<Option<u64>> = emulator.log().iter().map(|e| e.tokens).collect();
    assert_eq!(tokens, [Some(6), None, Some(4)]);
}

#[test]
fn daily_limit_resets_at_pacific_midnight_with_a_short_retry_delay() {
    let mut config =
        EmulatorConfig::with_keys(vec![KeySpec::new("key-a", "a").with_daily_limit(2)]);
    // 23:59:59 Pacific standard time on 7 March 2026, the eve of the spring change.
    config.clock = Some("2026-03-08T07:59:59Z".into());
    let emulator = Emulator::start(config).unwrap();
    assert_eq!(emulator.clock().pacific_date, "2026-03-07");
    assert_eq!(generate(&emulator, "key-a", FLASH, "x").0, 200);
    assert_eq!(generate(&emulator, "key-a", FLASH, "x").0, 200);
    let (status, body) = generate(&emulator, "key-a", FLASH, "x");
    assert_eq!(status, 429);
    assert_eq!(
        violations(&body),
        [(
            "GenerateRequestsPerDayPerProjectPerModel-FreeTier".into(),
            "2".into()
        )]
    );
    // Short, as the real service's: trust the quota id, not the delay.
    assert_eq!(retry_delay(&body), "22s");
    assert_eq!(emulator.stats().projects["a"].models[FLASH].today, 2);

    // One second later it is 8 March in Los Angeles: a new day.
    emulator.advance_clock(1_000);
    let clock = emulator.clock();
    assert_eq!(clock.pacific_date, "2026-03-08");
    // The 8th is 23 hours long: it ends at 07:00 UTC on the 9th.
    assert_eq!(clock.next_reset, "2026-03-09T07:00:00.000Z");
    assert_eq!(generate(&emulator, "key-a", FLASH, "x").0, 200);
    assert_eq!(emulator.stats().projects["a"].models[FLASH].today, 1);
}

#[test]
fn the_clock_is_settable_over_http_across_the_fall_change() {
    let emulator = Emulator::start(EmulatorConfig::with_keys(vec![
        KeySpec::new("key-a", "a").with_daily_limit(1)
    ]))
    .unwrap();
    let http = client();
    let clock_url = format!("{}/_emulator/clock", emulator.base_url());
    let set = |body: Value| {
        let response = http.post(&clock_url).json(&body).send().unwrap();
        let status = response.status().as_u16();
        (status, response.json::<Value>().unwrap())
    };
    // 23:59:59.500 Pacific daylight time on 31 October 2026.
    let (status, clock) = set(json!({"now": "2026-11-01T06:59:59.500Z"}));
    assert_eq!(status, 200, "{clock}");
    assert_eq!(clock["pacific_date"], "2026-10-31");
    assert_eq!(clock["utc_offset_minutes"], -420);
    assert_eq!(generate(&emulator, "key-a", FLASH, "x").0, 200);
    assert_eq!(generate(&emulator, "key-a", FLASH, "x").0, 429);
    let (_, clock) = set(json!({"advance_ms": 500}));
    assert_eq!(clock["pacific_date"], "2026-11-01");
    // 1 November is 25 hours long: it ends at 08:00 UTC on the 2nd, in standard time.
    assert_eq!(clock["next_reset"], "2026-11-02T08:00:00.000Z");
    assert_eq!(generate(&emulator, "key-a", FLASH, "x").0, 200);
    let (_, clock) = set(json!({"unix_ms": 1_793_606_400_000i64}));
    assert_eq!(clock["now"], "2026-11-02T08:00:00.000Z");
    assert_eq!(clock["utc_offset_minutes"], -480);
    let got: Value = http.get(&clock_url).send().unwrap().json().unwrap();
    assert_eq!(got["pacific_date"], "2026-11-02");

    for (body, expected) in [
        (json!({"now": "tomorrow"}), "tomorrow"),
        (
            json!({"now": "2026-01-01T00:00:00Z", "advance_ms": 1}),
            "exactly one",
        ),
        (json!({}), "exactly one"),
        (json!({"nwo": "x"}), "nwo"),
    ] {
        let (status, answer) = set(body.clone());
        assert_eq!(status, 400, "{body}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{body}: {message}");
    }
}

#[test]
fn limit_zero_is_the_not_on_your_tier_answer_with_the_retry_trap() {
    let mut config = EmulatorConfig::with_keys(vec![
        KeySpec::new("key-free", "free"),
        KeySpec::new("key-paid", "paid").with_model(
            "gemini-3-pro",
            ModelLimits {
                limit: Some(100),
                ..ModelLimits::default()
            },
        ),
    ]);
    config.models.insert(
        "gemini-3-pro".into(),
        ModelLimits {
            limit: Some(0),
            ..ModelLimits::default()
        },
    );
    let emulator = Emulator::start(config).unwrap();
    let (status, body) = generate(&emulator, "key-free", "gemini-3-pro", "x");
    assert_eq!(status, 429);
    assert_eq!(
        violations(&body),
        [(
            "GenerateRequestsPerMinutePerProjectPerModel-FreeTier".into(),
            "0".into()
        )]
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("limit: 0, model: gemini-3-pro"),
        "{message}"
    );
    assert!(message.ends_with("Please retry in 1.1s."), "{message}");
    assert_eq!(retry_delay(&body), "1.1s");
    // Waiting does not help: it is never admitted.
    std::thread::sleep(std::time::Duration::from_millis(1_150));
    assert_eq!(generate(&emulator, "key-free", "gemini-3-pro", "x").0, 429);
    // The paid project has the model, and the free one has other models.
    assert_eq!(generate(&emulator, "key-paid", "gemini-3-pro", "x").0, 200);
    assert_eq!(generate(&emulator, "key-free", FLASH, "x").0, 200);
    assert_eq!(emulator.stats().keys["free"].rate_limited, 2);
}

#[test]
fn several_exceeded_quotas_come_in_one_answer_the_longest_wait_in_retry_info() {
    let emulator = Emulator::start(EmulatorConfig::with_keys(vec![KeySpec::new("key-a", "a")
        .with_limit(1, 400)
        .with_daily_limit(1)
        .with_token_limit(3)]))
    .unwrap();
    assert_eq!(generate(&emulator, "key-a", FLASH, "a b c").0, 200);
    let (status, body) = generate(&emulator, "key-a", FLASH, "d");
    assert_eq!(status, 429);
    let ids: Vec<String> = violations(&body).into_iter().map(|(id, _)| id).collect();
    assert_eq!(
        ids,
        [
            "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
            "GenerateContentInputTokensPerModelPerMinute-FreeTier",
            "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
        ]
    );
    // The window waits are under 0.4 s; the daily violation's short delay is longer.
    assert_eq!(retry_delay(&body), "22s");
    let message = body["error"]["message"].as_str().unwrap();
    assert_eq!(
        message.matches("* Quota exceeded for metric").count(),
        3,
        "{message}"
    );
}

#[test]
fn quota_fault_kinds_quote_the_project_and_model_limits() {
    let mut config =
        EmulatorConfig::with_keys(vec![KeySpec::new("key-a", "a").with_limit(7, 60_000)]);
    config.models.insert(
        FLASH.into(),
        ModelLimits {
            daily_limit: Some(20),
            token_limit: Some(250_000),
            ..ModelLimits::default()
        },
    );
    let emulator = Emulator::start(config).unwrap();
    let answer = |kind: FaultKind| {
        emulator.add_fault(Fault::new(kind).times(1));
        let (status, body) = generate(&emulator, "key-a", FLASH, "x");
        assert_eq!(status, 429, "{kind:?}");
        body
    };
    assert_eq!(
        violations(&answer(FaultKind::QuotaTokens)),
        [(
            "GenerateContentInputTokensPerModelPerMinute-FreeTier".into(),
            "250000".into()
        )]
    );
    assert_eq!(
        violations(&answer(FaultKind::QuotaMulti)),
        [
            (
                "GenerateRequestsPerMinutePerProjectPerModel-FreeTier".into(),
                "7".into()
            ),
            (
                "GenerateContentInputTokensPerModelPerMinute-FreeTier".into(),
                "250000".into()
            ),
            (
                "GenerateRequestsPerDayPerProjectPerModel-FreeTier".into(),
                "20".into()
            ),
        ]
    );
    let zero = answer(FaultKind::LimitZero);
    assert!(violations(&zero).iter().all(|(_, value)| value == "0"));
    assert_eq!(retry_delay(&zero), "1.1s");
    // The capacity 429: no details at all.
    let bare = answer(FaultKind::QuotaBare);
    assert_eq!(
        bare["error"]["message"],
        "Resource has been exhausted (e.g. check quota)."
    );
    assert!(bare["error"].get("details").is_none());
    // A fault for another model does not match.
    emulator.add_fault(Fault::new(FaultKind::QuotaBare).for_model(LITE));
    assert_eq!(generate(&emulator, "key-a", FLASH, "x").0, 200);
    assert_eq!(generate(&emulator, "key-a", LITE, "x").0, 429);
}

#[test]
fn keys_added_at_run_time_join_projects_and_must_agree_on_quotas() {
    let emulator = Emulator::start(EmulatorConfig::default()).unwrap();
    let http = client();
    let add = |body: Value| {
        let response = http
            .post(format!("{}/_emulator/keys", emulator.base_url()))
            .json(&body)
            .send()
            .unwrap();
        (
            response.status().as_u16(),
            response.json::<Value>().unwrap(),
        )
    };
    let spec = |key: &str, label: &str| {
        json!({"key": key, "label": label, "project": "shared", "limit": 1, "window_ms": 60000,
               "daily_limit": null, "models": {LITE: {"limit": 2}}})
    };
    assert_eq!(add(spec("k1", "one")).0, 200);
    assert_eq!(add(spec("k2", "two")).0, 200);
    let (status, answer) = add(json!({"key": "k3", "label": "three", "project": "shared"}));
    assert_eq!(status, 400);
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("project 'shared'"), "{message}");
    assert!(
        !message.contains("k1") && !message.contains("k3"),
        "{message}"
    );

    assert_eq!(generate(&emulator, "k1", FLASH, "x").0, 200);
    assert_eq!(generate(&emulator, "k2", FLASH, "x").0, 429);
    assert_eq!(generate(&emulator, "k2", LITE, "x").0, 200);
    assert_eq!(generate(&emulator, "k1", LITE, "x").0, 200);
    assert_eq!(generate(&emulator, "k1", LITE, "x").0, 429);
}

#[test]
fn concurrent_keys_of_one_project_never_exceed_its_window_together() {
    let (limit, window_ms) = (4u32, 150u64);
    let emulator = Emulator::start(EmulatorConfig::with_keys(vec![
        KeySpec::new("key-a", "a")
            .in_project("p")
            .with_limit(limit, window_ms),
        KeySpec::new("key-b", "b")
            .in_project("p")
            .with_limit(limit, window_ms),
    ]))
    .unwrap();
    std::thread::scope(|scope| {
        for thread in 0..6 {
            let emulator = &emulator;
            scope.spawn(move || {
                let key = if thread % 2 == 0 { "key-a" } else { "key-b" };
                for _ in 0..30 {
                    let status = generate(emulator, key, FLASH, "x").0;
                    assert!(status == 200 || status == 429, "{status}");
                    std::thread::sleep(std::time::Duration::from_millis(12));
                }
            });
        }
    });
    let accepted: Vec<f64> = emulator
        .log()
        .iter()
        .filter(|e| e.status == 200)
        .map(|e| e.t_ms)
        .collect();
    // Log times are truncated to the microsecond: allow that much slack.
    for (i, &end) in accepted.iter().enumerate() {
        let in_window = accepted[..=i]
            .iter()
            .filter(|&&t| t > end - window_ms as f64 + 0.001)
            .count();
        assert!(in_window <= limit as usize, "window ending at {end} ms");
    }
    let stats = emulator.stats();
    assert!(
        stats.keys["a"].ok > 0 && stats.keys["b"].ok > 0,
        "{stats:?}"
    );
    // The test ran for well over one window, so more than one window's worth got through.
    assert!(accepted.len() > limit as usize, "{accepted:?}");
}
