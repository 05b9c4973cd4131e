//! Helpers shared by the integration tests: a real HTTP client against a real emulator.

#![allow(dead_code)] // Each test binary uses a different subset.

use gemini_emulator::{Emulator, EmulatorConfig, KeySpec};
use reqwest::blocking::Client;
use serde_json::{json, Value};

pub const MODEL: &str = "gemini-3-flash";

/// A client that talks straight to loopback, whatever proxy the environment names.
pub fn client() -> Client {
    Client::builder().no_proxy().build().unwrap()
}

/// An emulator with unlimited keys "key-a" (label "a") and "key-b" (label "b").
pub fn two_keys() -> Emulator {
    Emulator::start(EmulatorConfig::with_keys(vec![
        KeySpec::new("key-a", "a"),
        KeySpec::new("key-b", "b"),
    ]))
    .unwrap()
}

/// A minimal valid request body.
pub fn prompt(text: &str) -> Value {
    json!({ "contents": [{ "role": "user", "parts": [{ "text": text }] }] })
}

/// A generateContent call with an optional key header; returns the status and JSON body.
pub fn generate(emulator: &Emulator, key: Option<&str>, body: &Value) -> (u16, Value) {
    let mut request = client().post(emulator.generate_url(MODEL)).json(body);
    if let Some(key) = key {
        request = request.header("x-goog-api-key", key);
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap())
}

/// The `error` object of an error body, checking the envelope's invariants on the way.
pub fn error_of(status: u16, body: &Value) -> &Value {
    let error = &body["error"];
    assert_eq!(error["code"], status, "{body}");
    assert!(error["message"].is_string(), "{body}");
    assert!(error["status"].is_string(), "{body}");
    error
}

/// The detail of type `google.rpc.{kind}`, if present.
pub fn detail<'a>(error: &'a Value, kind: &str) -> Option<&'a Value> {
    let wanted = format!("type.googleapis.com/google.rpc.{kind}");
    error["details"]
        .as_array()?
        .iter()
        .find(|detail| detail["@type"] == wanted.as_str())
}

/// A POST of `body` to `model`:`method` with key `key` (API version v1beta); returns the
/// status and JSON body.
pub fn call(
    emulator: &Emulator,
    key: &str,
    model: &str,
    method: &str,
    body: &Value,
) -> (u16, Value) {
    let url = format!("{}/v1beta/models/{model}:{method}", emulator.base_url());
    let response = client()
        .post(url)
        .header("x-goog-api-key", key)
        .json(body)
        .send()
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap())
}
