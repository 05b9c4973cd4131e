//! Requests forwarded as an SDK built them (`Pool::forward`, `gr_forward`'s core): routing of
//! every path kind, the API version kept, the SDK's headers dropped, the service's raw error
//! body kept, and resources pinned to the project that made them.

mod common;

use common::*;
use gemini_rotator::{CallOptions, Error, ForwardRequest, Forwarded, Pool};
use serde_json::{json, Value};

const GENERATE: &str = r#"{"contents":[{"parts":[{"text":"hello"}]}]}"#;

fn forward(
    pool: &Pool,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Forwarded, Error> {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    pool.forward(
        &ForwardRequest {
            method,
            path,
            headers: &headers,
            body,
        },
        &CallOptions::default(),
        None,
    )
}

fn json_of(f: &Forwarded) -> Value {
    serde_json::from_slice(&f.response.body).unwrap()
}

#[test]
fn model_methods_keep_the_api_version_and_rotate() {
    let w = World::new("fwd-model", 2, false, None, 60_000);
    let pool = w.pool(json!({}));
    let mut served = Vec::new();
    for version in ["v1", "v1beta"] {
        let path = format!("/{version}/models/gemini-3-flash:generateContent?key=placeholder");
        let f = forward(
            &pool,
            "POST",
            &path,
            &[
                ("x-goog-api-key", "placeholder"),
                ("content-type", "application/json"),
            ],
            GENERATE.as_bytes(),
        )
        .unwrap();
        assert_eq!(f.http_status, 200);
        assert!(json_of(&f)["candidates"].is_array());
        assert_eq!(f.response.model, "gemini-3-flash");
        served.push(w.label_of(&f.response.key_fingerprint));
    }
    served.sort();
    assert_eq!(served, ["free0", "free1"], "the keys rotate");
    let log = w.emu.log();
    assert!(
        log.iter().all(|e| e.label.is_some()),
        "the pool's keys, never the placeholder"
    );
    assert_eq!(log.len(), 2);
}

#[test]
fn the_raw_error_body_is_kept_with_its_details() {
    let w = World::new("fwd-error", 1, false, None, 60_000);
    let pool = w.pool(json!({}));
    let e = forward(
        &pool,
        "POST",
        "/v1beta/models/gemini-3-flash:generateContent",
        &[],
        br#"{"contents":[]}"#,
    )
    .unwrap_err();
    let Error::Api(api) = e else { panic!("{e:?}") };
    assert_eq!(api.http_status, 400);
    let raw: Value = serde_json::from_slice(&api.body).unwrap();
    assert_eq!(raw["error"]["code"], 400);
    assert_eq!(raw["error"]["message"], api.message);
}

#[test]
fn unroutable_paths_name_the_method_and_path() {
    let w = World::new("fwd-refused", 1, false, None, 60_000);
    let pool = w.pool(json!({}));
    let e = forward(&pool, "POST", "/v1beta/tunedModels/x:generate", &[], b"{}")
        .unwrap_err()
        .to_string();
    assert!(e.contains("POST /v1beta/tunedModels/x:generate"), "{e}");
    let e = forward(
        &pool,
        "POST",
        "/v1beta/models/gemini-3-flash:streamGenerateContent?alt=sse",
        &[],
        GENERATE.as_bytes(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("streamGenerateContent"), "{e}");
    assert!(w.emu.log().is_empty(), "nothing was sent");
}

#[test]
fn streams_are_forwarded_in_their_version() {
    let w = World::new("fwd-stream", 1, false, None, 60_000);
    let pool = w.pool(json!({}));
    let stream = pool
        .forward_stream(
            "/v1/models/gemini-3-flash:streamGenerateContent?alt=sse",
            GENERATE.as_bytes(),
            &CallOptions::default(),
            None,
        )
        .unwrap();
    let mut events = 0;
    while let Some(_event) = stream.next().unwrap() {
        events += 1;
    }
    assert!(events >= 1);
    assert!(pool
        .forward_stream(
            "/v1/models/gemini-3-flash:generateContent",
            b"{}",
            &CallOptions::default(),
            None
        )
        .is_err());
}

#[test]
fn the_models_list_goes_on_one_key_without_admission() {
    let w = World::new("fwd-models", 1, false, None, 60_000);
    let pool = w.pool(json!({}));
    let f = forward(&pool, "GET", "/v1/models?pageSize=2", &[], b"").unwrap();
    assert_eq!(f.http_status, 200);
    assert!(json_of(&f)["models"].is_array());
    let f = forward(&pool, "GET", "/v1beta/models/gemini-3-flash", &[], b"").unwrap();
    assert_eq!(json_of(&f)["name"], "models/gemini-3-flash");
}
