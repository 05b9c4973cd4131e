//! countTokens, embedContent, batchEmbedContents and the models list, under v1 and v1beta:
//! answers, authentication, quotas and the log.

mod common;

use common::{call, client, error_of, prompt};
use gemini_emulator::{Emulator, EmulatorConfig, Fault, FaultKind, KeySpec, ModelLimits};
use serde_json::{json, Value};

const EMBED: &str = "gemini-embedding-001";
const FLASH: &str = "gemini-3.6-flash";

fn emulator() -> Emulator {
    Emulator::start(EmulatorConfig::with_keys(vec![KeySpec::new("key-a", "a")])).unwrap()
}

fn get(emulator: &Emulator, path: &str, key: Option<&str>) -> (u16, Value) {
    let mut request = client().get(format!("{}{path}", emulator.base_url()));
    if let Some(key) = key {
        request = request.header("x-goog-api-key", key);
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap())
}

fn embed_body(text: &str) -> Value {
    json!({ "content": { "parts": [{ "text": text }] } })
}

#[test]
fn count_tokens_uses_the_generate_rule() {
    let emulator = emulator();
    let body = json!({
        "systemInstruction": { "parts": [{ "text": "be brief" }] },
        "contents": [{ "role": "user", "parts": [{ "text": "how many tokens here" }] }],
    });
    let (status, answer) = call(&emulator, "key-a", FLASH, "countTokens", &body);
    assert_eq!(status, 200);
    assert_eq!(answer, json!({ "totalTokens": 6 }));
    let (_, generated) = call(&emulator, "key-a", FLASH, "generateContent", &body);
    assert_eq!(generated["usageMetadata"]["promptTokenCount"], 6);
    let wrapped = json!({ "generateContentRequest": { "model": format!("models/{FLASH}"),
                          "contents": [{ "parts": [{ "text": "a b" }] }] } });
    assert_eq!(
        call(&emulator, "key-a", FLASH, "countTokens", &wrapped).1["totalTokens"],
        2
    );
    let (status, answer) = call(&emulator, "key-a", FLASH, "countTokens", &json!({}));
    assert_eq!(status, 400);
    assert!(error_of(400, &answer)["message"]
        .as_str()
        .unwrap()
        .contains("contents"));
}

#[test]
fn embeddings_are_deterministic_and_honour_output_dimensionality() {
    let emulator = emulator();
    let (status, one) = call(
        &emulator,
        "key-a",
        EMBED,
        "embedContent",
        &embed_body("hello"),
    );
    assert_eq!(status, 200);
    let values = one["embedding"]["values"].as_array().unwrap();
    assert_eq!(values.len(), 3072);
    let (_, again) = call(
        &emulator,
        "key-a",
        EMBED,
        "embedContent",
        &embed_body("hello"),
    );
    assert_eq!(again, one);
    let mut short = embed_body("hello");
    short["outputDimensionality"] = json!(16);
    let (_, short) = call(&emulator, "key-a", EMBED, "embedContent", &short);
    assert_eq!(
        short["embedding"]["values"].as_array().unwrap()[..],
        values[..16]
    );

    let batch = json!({ "requests": [
        { "model": format!("models/{EMBED}"), "content": { "parts": [{ "text": "hello" }] },
          "outputDimensionality": 16 },
        { "model": format!("models/{EMBED}"), "content": { "parts": [{ "text": "other" }] },
          "taskType": "RETRIEVAL_DOCUMENT", "outputDimensionality": 4 },
    ]});
    let (status, answer) = call(&emulator, "key-a", EMBED, "batchEmbedContents", &batch);
    assert_eq!(status, 200, "{answer}");
    let embeddings = answer["embeddings"].as_array().unwrap();
    assert_eq!(embeddings.len(), 2);
    assert_eq!(embeddings[0]["values"], short["embedding"]["values"]);
    assert_eq!(embeddings[1]["values"].as_array().unwrap().len(), 4);
    assert_ne!(embeddings[1]["values"][0], embeddings[0]["values"][0]);

    for (method, body, expected) in [
        ("embedContent", json!({ "content": {} }), "content.parts"),
        (
            "embedContent",
            json!({ "content": { "parts": [{ "text": "x" }] }, "outputDimensionality": 5000 }),
            "output_dimensionality",
        ),
        (
            "batchEmbedContents",
            json!({ "requests": [{ "model": "models/other", "content": { "parts": [{ "text": "x" }] } }] }),
            "requests[0].model",
        ),
    ] {
        let (status, answer) = call(&emulator, "key-a", EMBED, method, &body);
        assert_eq!(status, 400, "{body}");
        let message = error_of(400, &answer)["message"].as_str().unwrap();
        assert!(message.contains(expected), "{body}: {message}");
    }
}

#[test]
fn models_serve_only_their_methods() {
    let emulator = emulator();
    let (status, answer) = call(&emulator, "key-a", FLASH, "embedContent", &embed_body("x"));
    assert_eq!(status, 404);
    let message = error_of(404, &answer)["message"].as_str().unwrap();
    assert!(message.contains(&format!("models/{FLASH} is not found for API version v1beta, or is not supported for embedContent")), "{message}");
    assert_eq!(
        call(&emulator, "key-a", EMBED, "generateContent", &prompt("x")).0,
        404
    );
    assert_eq!(
        call(
            &emulator,
            "key-a",
            "gemini-1.5-flash",
            "countTokens",
            &prompt("x")
        )
        .0,
        404
    );
}

#[test]
fn every_model_call_counts_against_the_same_project_model_quota() {
    let mut config =
        EmulatorConfig::with_keys(vec![KeySpec::new("key-a", "a").with_limit(3, 60_000)]);
    config.models.insert(
        EMBED.into(),
        ModelLimits {
            limit: Some(2),
            ..ModelLimits::default()
        },
    );
    let emulator = Emulator::start(config).unwrap();
    // Generating, counting and streaming share FLASH's 3.
    assert_eq!(
        call(&emulator, "key-a", FLASH, "generateContent", &prompt("x")).0,
        200
    );
    assert_eq!(
        call(&emulator, "key-a", FLASH, "countTokens", &prompt("x y")).0,
        200
    );
    assert_eq!(
        call(&emulator, "key-a", FLASH, "countTokens", &prompt("x")).0,
        200
    );
    let (status, body) = call(
        &emulator,
        "key-a",
        FLASH,
        "streamGenerateContent",
        &prompt("x"),
    );
    assert_eq!(status, 429, "{body}");
    // The embedding model is its own quota: here the key's 3 per window, since the key's
    // own field comes before the configuration-wide one.
    for _ in 0..3 {
        assert_eq!(
            call(&emulator, "key-a", EMBED, "embedContent", &embed_body("x")).0,
            200
        );
    }
    let batch = json!({ "requests": [{ "content": { "parts": [{ "text": "a b" }] } },
                                     { "content": { "parts": [{ "text": "c" }] } }] });
    assert_eq!(
        call(&emulator, "key-a", EMBED, "batchEmbedContents", &batch).0,
        429
    );
    // Listing models uses no quota at all.
    assert_eq!(get(&emulator, "/v1beta/models", Some("key-a")).0, 200);

    let methods: Vec<(String, String, Option<u64>)> = emulator
        .log()
        .into_iter()
        .map(|e| (e.method, e.model, e.tokens))
        .collect();
    let expected = [
        ("generateContent", FLASH, Some(1)),
        ("countTokens", FLASH, Some(2)),
        ("countTokens", FLASH, Some(1)),
        ("streamGenerateContent", FLASH, None),
        ("embedContent", EMBED, Some(1)),
        ("embedContent", EMBED, Some(1)),
        ("embedContent", EMBED, Some(1)),
        ("batchEmbedContents", EMBED, None),
        ("models.list", "", None),
    ];
    let expected: Vec<(String, String, Option<u64>)> = expected
        .iter()
        .map(|(m, model, t)| (m.to_string(), model.to_string(), *t))
        .collect();
    assert_eq!(methods, expected);
    let stats = emulator.stats();
    assert_eq!(stats.total, 9);
    assert_eq!(stats.projects["a"].models[FLASH].in_window, 3);
    assert_eq!(stats.projects["a"].models[EMBED].rate_limited, 1);
    assert!(!stats.projects["a"].models.contains_key(""));
}

#[test]
fn models_list_pages_through_the_catalog_in_both_versions() {
    let mut config = EmulatorConfig::with_keys(vec![KeySpec::new("key-a", "a")]);
    config
        .models
        .insert("custom-model".into(), ModelLimits::default());
    let emulator = Emulator::start(config).unwrap();
    for version in ["v1", "v1beta"] {
        let mut names = Vec::new();
        let mut path = format!("/{version}/models?pageSize=2");
        let mut pages = 0;
        loop {
            let (status, page) = get(&emulator, &path, Some("key-a"));
            assert_eq!(status, 200, "{page}");
            pages += 1;
            for model in page["models"].as_array().unwrap() {
                assert!(model["supportedGenerationMethods"].is_array());
                names.push(model["name"].as_str().unwrap().to_string());
            }
            match page["nextPageToken"].as_str() {
                Some(token) => path = format!("/{version}/models?pageSize=2&pageToken={token}"),
                None => break,
            }
        }
        assert_eq!(pages, names.len().div_ceil(2));
        assert!(names.contains(&format!("models/{FLASH}")));
        assert!(names.contains(&"models/custom-model".to_string()));
        let mut unique = names.clone();
        unique.dedup();
        assert_eq!(unique, names);
    }
    let (status, model) = get(&emulator, &format!("/v1/models/{EMBED}"), Some("key-a"));
    assert_eq!(status, 200);
    assert_eq!(model["name"], format!("models/{EMBED}"));
    assert_eq!(model["supportedGenerationMethods"][0], "embedContent");
    assert_eq!(
        get(&emulator, "/v1beta/models/gemini-pro", Some("key-a")).0,
        404
    );

    let (status, answer) = get(&emulator, "/v1beta/models?pageToken=bogus", Some("key-a"));
    assert_eq!(status, 400);
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("page_token"));
    assert_eq!(
        get(&emulator, "/v1beta/models?pageSize=many", Some("key-a")).0,
        400
    );
}

#[test]
fn every_endpoint_authenticates() {
    let emulator = emulator();
    assert_eq!(get(&emulator, "/v1beta/models", None).0, 403);
    assert_eq!(get(&emulator, "/v1beta/models", Some("nope")).0, 400);
    assert_eq!(get(&emulator, &format!("/v1/models/{FLASH}"), None).0, 403);
    for (model, method, body) in [
        (FLASH, "countTokens", prompt("x")),
        (FLASH, "streamGenerateContent", prompt("x")),
        (EMBED, "embedContent", embed_body("x")),
        (
            EMBED,
            "batchEmbedContents",
            json!({ "requests": [embed_body("x")] }),
        ),
    ] {
        let (status, answer) = call(&emulator, "wrong", model, method, &body);
        assert_eq!(status, 400, "{method}");
        assert_eq!(answer["error"]["details"][0]["reason"], "API_KEY_INVALID");
    }
    let stats = emulator.stats();
    assert_eq!((stats.missing_key, stats.unknown_key), (2, 5));
}

#[test]
fn faults_reach_every_method_and_list_faults_need_the_method() {
    let emulator = emulator();
    emulator.add_fault(Fault::new(FaultKind::Http503).times(2));
    assert_eq!(get(&emulator, "/v1beta/models", Some("key-a")).0, 200);
    assert_eq!(
        call(&emulator, "key-a", EMBED, "embedContent", &embed_body("x")).0,
        503
    );
    assert_eq!(
        call(&emulator, "key-a", FLASH, "countTokens", &prompt("x")).0,
        503
    );
    emulator.add_fault(
        Fault::new(FaultKind::Http500)
            .for_method("models.list")
            .times(1),
    );
    assert_eq!(get(&emulator, "/v1beta/models", Some("key-a")).0, 500);
    emulator.add_fault(
        Fault::new(FaultKind::Leaked)
            .for_method("countTokens")
            .times(1),
    );
    assert_eq!(
        call(&emulator, "key-a", FLASH, "generateContent", &prompt("x")).0,
        200
    );
    assert_eq!(
        call(&emulator, "key-a", FLASH, "countTokens", &prompt("x")).0,
        403
    );

    let response = client()
        .post(format!("{}/_emulator/faults", emulator.base_url()))
        .json(&json!({ "kind": "http500", "method": "fooBar" }))
        .send()
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = client()
        .post(format!("{}/_emulator/faults", emulator.base_url()))
        .json(&json!({ "kind": "stream_error_mid", "error": "stream_cut" }))
        .send()
        .unwrap();
    assert_eq!(response.status(), 400);
    let answer: Value = response.json().unwrap();
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("`error`"));
}
