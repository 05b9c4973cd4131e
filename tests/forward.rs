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

/// `generateContent` of gemini-3-flash forwarded with `body`.
fn generate(pool: &Pool, body: &str) -> Result<Forwarded, Error> {
    forward(
        pool,
        "POST",
        "/v1beta/models/gemini-3-flash:generateContent",
        &[],
        body.as_bytes(),
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
    // The version reaches the service: its 404 for a retired model names it.
    let e = forward(
        &pool,
        "POST",
        "/v1/models/gemini-1.0-pro:generateContent",
        &[],
        GENERATE.as_bytes(),
    )
    .unwrap_err();
    let Error::Api(api) = e else { panic!("{e:?}") };
    assert_eq!(api.http_status, 404);
    assert!(api.message.contains("API version v1"), "{}", api.message);
    let log = w.emu.log();
    assert!(
        log.iter().all(|e| e.label.is_some()),
        "the pool's keys, never the placeholder"
    );
    assert_eq!(log.len(), 3);
}

#[test]
fn the_raw_error_body_is_kept_with_its_details() {
    let w = World::new("fwd-error", 1, false, None, 60_000);
    let pool = w.pool(json!({}));
    w.fault(json!({"kind": "bad_request", "count": 1}));
    let e = generate(&pool, GENERATE).unwrap_err();
    let Error::Api(api) = e else { panic!("{e:?}") };
    assert_eq!(api.http_status, 400);
    let raw: Value = serde_json::from_slice(&api.body).unwrap();
    assert_eq!(raw["error"]["code"], 400);
    assert_eq!(raw["error"]["message"], api.message);
    let details = raw["error"]["details"].as_array().unwrap();
    assert!(
        details[0]["@type"]
            .as_str()
            .unwrap()
            .ends_with("google.rpc.BadRequest"),
        "{raw}"
    );
    assert!(details[0]["fieldViolations"].is_array(), "{raw}");
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

/// An emulator with keys in two projects ("pa": a0, a1; "pb": b0, b1), and pools over them.
struct Projects {
    emu: gemini_emulator::Emulator,
    /// Secret, label, project ("pa" or "pb"); projects are named after the test apart from
    /// that (a quota group's state is the process's and the host's).
    keys: Vec<(String, &'static str, &'static str)>,
    test: String,
}

impl Projects {
    fn new(test: &str) -> Projects {
        let secrets = unique_keys(test, 4);
        let layout = [("a0", "pa"), ("a1", "pa"), ("b0", "pb"), ("b1", "pb")];
        let keys: Vec<_> = secrets
            .into_iter()
            .zip(layout)
            .map(|(k, (label, project))| (k, label, project))
            .collect();
        let specs: Vec<Value> = keys
            .iter()
            .map(|(k, label, project)| {
                json!({"key": k, "label": label, "project": format!("{test}-{project}")})
            })
            .collect();
        let config =
            gemini_emulator::EmulatorConfig::from_json(&json!({"keys": specs}).to_string())
                .expect("emulator config");
        Projects {
            emu: gemini_emulator::Emulator::start(config).expect("emulator starts"),
            keys,
            test: format!("{test}-{}", std::process::id()),
        }
    }

    /// A pool of the keys with these labels (each as `project:key`), with `overrides`.
    fn pool(&self, labels: &[&str], overrides: Value) -> Pool {
        let free: Vec<String> = self
            .keys
            .iter()
            .filter(|(_, label, _)| labels.contains(label))
            .map(|(k, _, project)| format!("{}-{project}:{k}", self.test))
            .collect();
        let mut c = json!({
            "free_keys": free,
            "base_url": self.emu.base_url(),
            "retry_base_ms": 1,
            "retry_max_ms": 5,
            "timeout_ms": 10_000,
            "state": state_path(),
        });
        for (k, v) in overrides.as_object().unwrap() {
            c[k] = v.clone();
        }
        Pool::new(gemini_rotator::Config::from_json(&c.to_string()).unwrap()).unwrap()
    }

    fn project_of(&self, fingerprint: &str) -> &'static str {
        self.keys
            .iter()
            .find(|(k, _, _)| gemini_rotator::key::fingerprint(k) == fingerprint)
            .map(|(_, _, p)| *p)
            .expect("a key of the world")
    }
}

/// Uploads `text` as a file through the pool by the resumable protocol, as both SDKs do:
/// the file's name and the project of the key that made it.
fn upload(pool: &Pool, p: &Projects, text: &str) -> (String, String, &'static str) {
    // A name of the test's own: the emulator's ids are the same in every emulator, and pins
    // are the process's (and the state file's).
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let start_body = json!({"file": {"displayName": "notes",
        "name": format!("files/t{}-{seq}", std::process::id())}})
    .to_string();
    let len = text.len().to_string();
    let start = forward(
        pool,
        "POST",
        "/upload/v1beta/files",
        &[
            ("x-goog-api-key", "placeholder"),
            ("content-type", "application/json"),
            ("x-goog-upload-protocol", "resumable"),
            ("x-goog-upload-command", "start"),
            ("x-goog-upload-header-content-length", &len),
            ("x-goog-upload-header-content-type", "text/plain"),
        ],
        start_body.as_bytes(),
    )
    .unwrap();
    let started_by = p.project_of(&start.response.key_fingerprint);
    let url = start
        .headers
        .iter()
        .find(|(n, _)| n == "x-goog-upload-url")
        .map(|(_, v)| v.clone())
        .expect("the start names the upload URL");
    let path = &url[url.find("/upload/").unwrap()..];
    let done = forward(
        pool,
        "POST",
        path,
        &[
            ("x-goog-upload-command", "upload, finalize"),
            ("x-goog-upload-offset", "0"),
        ],
        text.as_bytes(),
    )
    .unwrap();
    assert_eq!(
        done.response.key_fingerprint, start.response.key_fingerprint,
        "the upload session stays on the key that started it"
    );
    let file = json_of(&done)["file"].clone();
    (
        file["name"].as_str().unwrap().to_string(),
        file["uri"].as_str().unwrap().to_string(),
        started_by,
    )
}

fn with_file(uri: &str) -> String {
    json!({"contents": [{"parts": [
        {"text": "summarize"},
        {"fileData": {"fileUri": uri, "mimeType": "text/plain"}}]}]})
    .to_string()
}

#[test]
fn a_file_is_used_only_with_keys_of_the_project_that_made_it() {
    let p = Projects::new("fwd-pin");
    let pool = p.pool(&["a0", "a1", "b0", "b1"], json!({}));
    let (name, uri, project) = upload(&pool, &p, "some notes");
    // Get, and model calls naming the file in their body: always that project's keys.
    for _ in 0..3 {
        let f = forward(&pool, "GET", &format!("/v1beta/{name}"), &[], b"").unwrap();
        assert_eq!(p.project_of(&f.response.key_fingerprint), project);
        assert_eq!(json_of(&f)["name"], name.as_str());
    }
    for _ in 0..6 {
        let f = generate(&pool, &with_file(&uri)).unwrap();
        assert_eq!(p.project_of(&f.response.key_fingerprint), project);
    }
    // A call naming nothing still rotates over every key.
    let mut projects = std::collections::BTreeSet::new();
    for _ in 0..4 {
        let f = generate(&pool, GENERATE).unwrap();
        projects.insert(p.project_of(&f.response.key_fingerprint));
    }
    assert_eq!(projects.len(), 2, "{projects:?}");
    // The upload session and the file were the pool's only pins; deleting the file unpins it.
    let pins = pool.store_handle().pins();
    let now = pool.now();
    assert!(pins.lookup(&name, now).unwrap().is_some());
    let f = forward(&pool, "DELETE", &format!("/v1beta/{name}"), &[], b"").unwrap();
    assert_eq!(p.project_of(&f.response.key_fingerprint), project);
    assert_eq!(pins.lookup(&name, pool.now()).unwrap(), None, "unpinned");
    // Every request carried a key of the pool, never the placeholder.
    assert!(p.emu.log().iter().all(|e| e.label.is_some()));
}

#[test]
fn a_full_pinned_group_is_all_rate_limited_never_another_project() {
    let p = Projects::new("fwd-pin-full");
    // Per project, 2 requests a minute.
    let pool = p.pool(&["a0", "a1", "b0", "b1"], json!({"free_rate_limit": 2}));
    let (_, uri, project) = upload(&pool, &p, "notes");
    for _ in 0..2 {
        let f = generate(&pool, &with_file(&uri)).unwrap();
        assert_eq!(p.project_of(&f.response.key_fingerprint), project);
    }
    let e = generate(&pool, &with_file(&uri)).unwrap_err();
    assert!(
        matches!(e, Error::AllKeysRateLimited { retry_after_ms, .. } if retry_after_ms > 0),
        "{e:?}"
    );
    // The other project still serves calls that name nothing.
    let f = generate(&pool, GENERATE).unwrap();
    assert_ne!(p.project_of(&f.response.key_fingerprint), project);
}

#[test]
fn a_resource_made_elsewhere_is_found_in_its_project_and_pinned_there() {
    let p = Projects::new("fwd-discover");
    // Made through a pool of project b's key alone, whose pins are its own (memory).
    let maker = p.pool(&["b1"], json!({"state": "memory"}));
    let (name, uri, project) = upload(&maker, &p, "made elsewhere");
    assert_eq!(project, "pb");
    // A pool of both projects on its own state: no pin for the file.
    let pool = p.pool(&["a0", "a1", "b0"], json!({}));
    assert_eq!(
        pool.store_handle()
            .pins()
            .lookup(&name, pool.now())
            .unwrap(),
        None
    );
    for _ in 0..2 {
        let f = forward(&pool, "GET", &format!("/v1beta/{name}"), &[], b"").unwrap();
        assert_eq!(p.project_of(&f.response.key_fingerprint), "pb");
    }
    assert!(
        pool.store_handle()
            .pins()
            .lookup(&name, pool.now())
            .unwrap()
            .is_some(),
        "pinned where found"
    );
    // No key was held against the 403 of the other project.
    for key in pool.keys() {
        assert_eq!(key.disabled().unwrap(), None);
    }
    // A model call naming an unknown cached content or file elsewhere: the same search.
    let other = p.pool(&["a0", "b0"], json!({"state": "memory"}));
    let f = generate(&other, &with_file(&uri)).unwrap();
    assert_eq!(p.project_of(&f.response.key_fingerprint), "pb");
    // A resource nobody has: the service's answer, once per group.
    let e = forward(&pool, "GET", "/v1beta/files/nosuchfile", &[], b"").unwrap_err();
    let Error::Api(api) = e else { panic!("{e:?}") };
    assert_eq!(api.http_status, 403);
    let raw: Value = serde_json::from_slice(&api.body).unwrap();
    assert_eq!(raw["error"]["status"], "PERMISSION_DENIED");
    for key in pool.keys() {
        assert_eq!(key.disabled().unwrap(), None);
    }
}

#[test]
fn cached_contents_are_pinned_until_their_expiry() {
    let p = Projects::new("fwd-cache");
    let pool = p.pool(&["a0", "b0"], json!({}));
    let body = json!({"model": "models/gemini-3-flash", "ttl": "600s",
        "contents": [{"role": "user", "parts": [{"text": "a long document"}]}]})
    .to_string();
    let made = forward(&pool, "POST", "/v1/cachedContents", &[], body.as_bytes()).unwrap();
    let project = p.project_of(&made.response.key_fingerprint);
    let name = json_of(&made)["name"].as_str().unwrap().to_string();
    assert!(name.starts_with("cachedContents/"), "{name}");
    let ask = json!({"cachedContent": name, "contents": [{"parts": [{"text": "q"}]}]}).to_string();
    for _ in 0..4 {
        let f = forward(
            &pool,
            "POST",
            "/v1/models/gemini-3-flash:generateContent",
            &[],
            ask.as_bytes(),
        )
        .unwrap();
        assert_eq!(p.project_of(&f.response.key_fingerprint), project);
    }
    let pins = pool.store_handle().pins();
    let now = pool.now();
    assert!(pins.lookup(&name, now + 590_000).unwrap().is_some());
    assert_eq!(
        pins.lookup(&name, now + 610_000).unwrap(),
        None,
        "expires with the cache"
    );
    let gone = forward(&pool, "DELETE", &format!("/v1/{name}"), &[], b"").unwrap();
    assert_eq!(gone.http_status, 200);
    assert_eq!(pins.lookup(&name, pool.now()).unwrap(), None);
}
