//! The generateContent endpoint: answers, authentication errors and request validation.

mod common;

use common::{client, detail, error_of, generate, prompt, two_keys, MODEL};
use gemini_emulator::{Emulator, EmulatorConfig, KeySpec};
use serde_json::json;

#[test]
fn answers_with_the_service_shape() {
    let emulator = two_keys();
    let body = json!({ "contents": [
        { "role": "user", "parts": [{ "text": "first turn" }] },
        { "role": "model", "parts": [{ "text": "ok" }] },
        { "role": "user", "parts": [{ "text": "say " }, { "text": "hello world" }] },
    ]});
    let response = client()
        .post(emulator.generate_url(MODEL))
        .header("x-goog-api-key", "key-a")
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=UTF-8"
    );
    let answer: serde_json::Value = response.json().unwrap();
    let candidate = &answer["candidates"][0];
    assert_eq!(
        candidate["content"]["parts"],
        json!([{ "text": "echo: say hello world" }])
    );
    assert_eq!(candidate["content"]["role"], "model");
    assert_eq!(candidate["finishReason"], "STOP");
    assert_eq!(candidate["index"], 0);
    // 6 words in all of `contents`; "echo: say hello world" is 4 words.
    assert_eq!(
        answer["usageMetadata"],
        json!({ "promptTokenCount": 6, "candidatesTokenCount": 4, "totalTokenCount": 10 })
    );
    assert_eq!(answer["modelVersion"], MODEL);
    assert!(answer["responseId"].as_str().unwrap().starts_with("emu-"));
}

#[test]
fn includes_thoughts_when_asked() {
    let emulator = two_keys();
    let mut body = prompt("think");
    body["generationConfig"] = json!({ "thinkingConfig": { "includeThoughts": true } });
    let (status, answer) = generate(&emulator, Some("key-a"), &body);
    assert_eq!(status, 200);
    let parts = answer["candidates"][0]["content"]["parts"]
        .as_array()
        .unwrap();
    assert_eq!(
        parts[0],
        json!({ "text": "(thinking about it)", "thought": true })
    );
    assert_eq!(parts[1], json!({ "text": "echo: think" }));
    assert_eq!(answer["usageMetadata"]["thoughtsTokenCount"], 3);
}

#[test]
fn unknown_key_is_400_api_key_invalid() {
    let emulator = two_keys();
    let (status, body) = generate(&emulator, Some("not-a-key"), &prompt("hi"));
    assert_eq!(status, 400);
    let error = error_of(status, &body);
    assert_eq!(error["status"], "INVALID_ARGUMENT");
    assert_eq!(
        error["message"],
        "API key not valid. Please pass a valid API key."
    );
    assert_eq!(
        error["details"],
        json!([
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": { "service": "generativelanguage.googleapis.com" }
            },
            {
                "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                "locale": "en-US",
                "message": "API key not valid. Please pass a valid API key."
            }
        ])
    );
    let stats = emulator.stats();
    assert_eq!((stats.total, stats.unknown_key), (1, 1));
    assert_eq!(emulator.log()[0].label, None);
}

#[test]
fn missing_key_is_403() {
    let emulator = two_keys();
    let (status, body) = generate(&emulator, None, &prompt("hi"));
    assert_eq!(status, 403);
    let error = error_of(status, &body);
    assert_eq!(error["status"], "PERMISSION_DENIED");
    assert!(error["message"]
        .as_str()
        .unwrap()
        .starts_with("Method doesn't allow unregistered callers"));
    assert_eq!(emulator.stats().missing_key, 1);
}

#[test]
fn key_in_url_is_counted_and_served() {
    let emulator = two_keys();
    let url = format!("{}?key=key-b", emulator.generate_url(MODEL));
    let response = client().post(url).json(&prompt("hi")).send().unwrap();
    assert_eq!(response.status(), 200);
    let stats = emulator.stats();
    assert_eq!(stats.key_in_url, 1);
    assert_eq!(stats.keys["b"].ok, 1);
    // The key itself never shows up.
    let text = serde_json::to_string(&stats).unwrap() + &format!("{:?}", emulator.log());
    assert!(!text.contains("key-b"), "{text}");
}

#[test]
fn retired_models_are_404() {
    let emulator = two_keys();
    for model in ["gemini-pro", "gemini-1.5-flash"] {
        let response = client()
            .post(format!(
                "{}/v1/models/{model}:generateContent",
                emulator.base_url()
            ))
            .header("x-goog-api-key", "key-a")
            .json(&prompt("hi"))
            .send()
            .unwrap();
        assert_eq!(response.status(), 404);
        let body: serde_json::Value = response.json().unwrap();
        let error = error_of(404, &body);
        assert_eq!(error["status"], "NOT_FOUND");
        assert_eq!(
            error["message"],
            format!(
                "models/{model} is not found for API version v1, or is not supported for \
                 generateContent. Call ListModels to see the list of available models and \
                 their supported methods."
            )
        );
    }
}

#[test]
fn invalid_bodies_are_400_and_name_the_problem() {
    let emulator = two_keys();
    let cases = [
        ("{not json", "Invalid JSON payload received."),
        ("[]", "Root element must be a message"),
        ("{}", "contents is not specified"),
        (r#"{"contents":"hello"}"#, "Invalid value at 'contents'"),
        (r#"{"contents":[{"role":"user"}]}"#, "contents[0].parts"),
    ];
    for (body, expected) in cases {
        let response = client()
            .post(emulator.generate_url(MODEL))
            .header("x-goog-api-key", "key-a")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let answer: serde_json::Value = response.json().unwrap();
        let error = error_of(400, &answer);
        assert_eq!(error["status"], "INVALID_ARGUMENT");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(expected), "{body}: {message}");
        assert!(detail(error, "BadRequest").is_some(), "{answer}");
    }
}

#[test]
fn unknown_paths_and_methods_are_json_errors() {
    let emulator = two_keys();
    let http = client();
    for path in [
        "/",
        "/v1beta/modelsx",
        "/v1beta/models/m:nope",
        "/v1beta/models/a/b",
        "/v2/models/m:generateContent",
        "/_emulator/nope",
    ] {
        let response = http.get(format!("{}{path}", emulator.base_url())).send();
        let response = response.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        let body: serde_json::Value = response.json().unwrap();
        assert_eq!(error_of(404, &body)["status"], "NOT_FOUND");
    }
    let response = http.get(emulator.generate_url(MODEL)).send().unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    let body: serde_json::Value = response.json().unwrap();
    error_of(405, &body);
    let response = http
        .post(format!("{}/v1/models", emulator.base_url()))
        .send()
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET");
    // Only requests that reach an API method are counted.
    assert_eq!(emulator.stats().total, 0);
}

#[test]
fn records_bodies_only_when_asked() {
    let mut config = EmulatorConfig::with_keys(vec![KeySpec::new("key-a", "a")]);
    config.record_bodies = true;
    let emulator = Emulator::start(config).unwrap();
    assert_eq!(emulator.last_body("a"), None);
    generate(&emulator, Some("key-a"), &prompt("one"));
    generate(&emulator, Some("key-a"), &prompt("two"));
    let body: serde_json::Value = serde_json::from_str(&emulator.last_body("a").unwrap()).unwrap();
    assert_eq!(body, prompt("two"));

    let emulator = two_keys();
    generate(&emulator, Some("key-a"), &prompt("one"));
    assert_eq!(emulator.last_body("a"), None);
}

#[test]
fn serves_many_clients_at_once() {
    let emulator = two_keys();
    std::thread::scope(|scope| {
        for thread in 0..8 {
            let emulator = &emulator;
            scope.spawn(move || {
                let http = client();
                for i in 0..25 {
                    let text = format!("t{thread} r{i}");
                    let response = http
                        .post(emulator.generate_url(MODEL))
                        .header("x-goog-api-key", "key-a")
                        .json(&prompt(&text))
                        .send()
                        .unwrap();
                    assert_eq!(response.status(), 200);
                    let body: serde_json::Value = response.json().unwrap();
                    let echoed = &body["candidates"][0]["content"]["parts"][0]["text"];
                    assert_eq!(echoed.as_str().unwrap(), format!("echo: {text}"));
                }
            });
        }
    });
    let log = emulator.log();
    assert_eq!(log.len(), 200);
    assert!(log.windows(2).all(|pair| pair[0].t_ms <= pair[1].t_ms));
    assert_eq!(emulator.stats().keys["a"].ok, 200);
}
