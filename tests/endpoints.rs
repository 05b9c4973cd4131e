//! countTokens, embedContent, batchEmbedContents and the models list through the pool: they
//! rotate and count against the limits of their model like generateContent.

mod common;

use common::*;
use gemini_rotator::method::Method;
use gemini_rotator::{CallOptions, Error};
use serde_json::{json, Value};

fn options(model: &str) -> CallOptions {
    CallOptions {
        model: Some(model.into()),
        ..CallOptions::default()
    }
}

fn body(r: &gemini_rotator::Response) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

#[test]
fn count_tokens_rotates_over_the_keys() {
    let w = World::new("count-tokens", 3, false, None, 60_000);
    let pool = w.pool(json!({}));
    let req = r#"{"contents":[{"parts":[{"text":"one two three"}]}]}"#;
    let mut served = Vec::new();
    for _ in 0..3 {
        let r = pool
            .call(Method::CountTokens, req, &CallOptions::default(), None)
            .unwrap();
        assert_eq!(body(&r)["totalTokens"], 3);
        served.push(w.label_of(&r.key_fingerprint));
    }
    served.sort();
    assert_eq!(served, ["free0", "free1", "free2"]);
    assert_eq!(w.emu.log().last().unwrap().method, "countTokens");
}

#[test]
fn embeddings_rotate_and_count_under_their_model() {
    let w = World::new("embeddings", 2, false, None, 60_000);
    let pool = w.pool(json!({"free_rate_limit": 2}));
    let model = "gemini-embedding-001";
    let one = r#"{"content":{"parts":[{"text":"hello world"}]},"outputDimensionality":8}"#;
    let a = pool
        .call(Method::EmbedContent, one, &options(model), None)
        .unwrap();
    assert_eq!(body(&a)["embedding"]["values"].as_array().unwrap().len(), 8);
    let batch = json!({"requests": [
        {"model": format!("models/{model}"), "content": {"parts": [{"text": "a"}]}},
        {"model": format!("models/{model}"), "content": {"parts": [{"text": "b"}]}},
    ]})
    .to_string();
    let b = pool
        .call(Method::BatchEmbedContents, &batch, &options(model), None)
        .unwrap();
    assert_eq!(body(&b)["embeddings"].as_array().unwrap().len(), 2);
    assert_ne!(a.key_fingerprint, b.key_fingerprint, "the keys rotate");
    let log = w.emu.log();
    assert!(log.iter().all(|e| e.model == model));
    // Two keys of two requests each: the fifth request within the window is refused here.
    for _ in 0..2 {
        pool.call(Method::EmbedContent, one, &options(model), None)
            .unwrap();
    }
    assert!(matches!(
        pool.call(Method::EmbedContent, one, &options(model), None),
        Err(Error::AllKeysRateLimited { .. })
    ));
}

#[test]
fn a_failing_key_gets_the_same_reactions_as_for_generate_content() {
    let w = World::new("endpoints-failover", 2, false, None, 60_000);
    let pool = w.pool(json!({}));
    w.fault(json!({"kind": "invalid_key", "label": "free0", "method": "countTokens"}));
    let req = r#"{"contents":[{"parts":[{"text":"x"}]}]}"#;
    let r = pool
        .call(Method::CountTokens, req, &CallOptions::default(), None)
        .unwrap();
    assert_eq!(
        (r.attempts, w.label_of(&r.key_fingerprint).as_str()),
        (2, "free1")
    );
    assert_eq!(key_stats(&pool, &w.free[0])["disabled"], "API_KEY_INVALID");
}

#[test]
fn bad_methods_and_bodies_are_named() {
    let w = World::new("endpoints-bad", 1, false, None, 60_000);
    let pool = w.pool(json!({}));
    let e = Method::parse("countTokenz").unwrap_err();
    assert!(e.to_string().contains("`method`"), "{e}");
    let e = pool
        .call(
            Method::StreamGenerateContent,
            HELLO,
            &CallOptions::default(),
            None,
        )
        .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidArgument { argument, .. } if argument == "method"),
        "{e}"
    );
    let e = pool
        .call(Method::CountTokens, "[1]", &CallOptions::default(), None)
        .unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
    assert_eq!(w.stats()["total"], 0, "nothing was sent");
}

#[test]
fn the_models_list_pages_and_skips_disabled_keys() {
    let w = World::new("models-list", 2, false, None, 60_000);
    let pool = w.pool(json!({}));
    let first = pool.list_models(2, "", None).unwrap();
    let page = body(&first);
    assert_eq!(page["models"].as_array().unwrap().len(), 2);
    let token = page["nextPageToken"].as_str().unwrap().to_string();
    let next = body(&pool.list_models(2, &token, None).unwrap());
    assert_ne!(next["models"][0], page["models"][0]);
    // A dead key is disabled and the list asked of the next.
    w.fault(json!({"kind": "invalid_key", "label": "free0", "method": "models.list"}));
    let r = pool.list_models(0, "", None).unwrap();
    assert_eq!(w.label_of(&r.key_fingerprint), "free1");
    assert_eq!(key_stats(&pool, &w.free[0])["disabled"], "API_KEY_INVALID");
    let r = pool.list_models(0, "", None).unwrap();
    assert_eq!(
        (r.attempts, w.label_of(&r.key_fingerprint).as_str()),
        (1, "free1")
    );
    // The list takes no window slot.
    assert_eq!(key_stats(&pool, &w.free[1])["in_window"], 0);
}
