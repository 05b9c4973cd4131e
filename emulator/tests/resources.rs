//! Files (the resumable upload, get, list, delete) and cached contents (create, get, list,
//! patch, delete), held to the project of the key that made them, as the service does.

mod common;

use common::{client, error_of, MODEL};
use gemini_emulator::{Emulator, EmulatorConfig, Fault, FaultKind, KeySpec};
use reqwest::blocking::{RequestBuilder, Response};
use serde_json::{json, Value};

/// The wall clock every test starts from, so that times in answers can be checked.
const START: &str = "2026-03-08T10:00:00Z";
const HOUR_MS: i64 = 3_600_000;

/// Keys "key-a" and "key-a2" of project "a", "key-b" of project "b".
fn emulator() -> Emulator {
    let mut config = EmulatorConfig::with_keys(vec![
        KeySpec::new("key-a", "a"),
        KeySpec::new("key-a2", "a2").in_project("a"),
        KeySpec::new("key-b", "b"),
    ]);
    config.clock = Some(START.to_string());
    Emulator::start(config).unwrap()
}

fn send(request: RequestBuilder, key: &str) -> Response {
    request.header("x-goog-api-key", key).send().unwrap()
}

fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).map(|v| v.to_str().unwrap())
}

/// Status, `x-goog-upload-status` and JSON body (`null` when empty).
fn parts(response: Response) -> (u16, Option<String>, Value) {
    let status = response.status().as_u16();
    let upload = header(&response, "x-goog-upload-status").map(str::to_string);
    let text = response.text().unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    (status, upload, body)
}

/// Starts an upload of `size` bytes of text/plain under `version`; returns the upload URL.
fn start(emulator: &Emulator, key: &str, version: &str, size: usize, name: &str) -> String {
    let url = format!("{}/upload/{version}/files", emulator.base_url());
    let response = send(
        client()
            .post(url)
            .header("x-goog-upload-protocol", "resumable")
            .header("x-goog-upload-command", "start")
            .header("x-goog-upload-header-content-length", size.to_string())
            .header("x-goog-upload-header-content-type", "text/plain")
            .json(&json!({ "file": { "displayName": name } })),
        key,
    );
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-goog-upload-status"), Some("active"));
    let upload_url = header(&response, "x-goog-upload-url").unwrap().to_string();
    assert!(response.text().unwrap().is_empty());
    upload_url
}

/// One request on an upload URL.
fn chunk(upload_url: &str, key: &str, command: &str, offset: u64, bytes: &[u8]) -> Response {
    send(
        client()
            .post(upload_url)
            .header("x-goog-upload-command", command)
            .header("x-goog-upload-offset", offset.to_string())
            .body(bytes.to_vec()),
        key,
    )
}

/// Uploads `bytes` in one finalizing chunk; returns the file resource.
fn upload(emulator: &Emulator, key: &str, bytes: &[u8]) -> Value {
    let url = start(emulator, key, "v1beta", bytes.len(), "notes.txt");
    let (status, upload, body) = parts(chunk(&url, key, "upload, finalize", 0, bytes));
    assert_eq!((status, upload.as_deref()), (200, Some("final")), "{body}");
    body["file"].clone()
}

fn get(emulator: &Emulator, key: &str, path: &str) -> (u16, Value) {
    let response = send(client().get(format!("{}/{path}", emulator.base_url())), key);
    let (status, _, body) = parts(response);
    (status, body)
}

fn delete(emulator: &Emulator, key: &str, path: &str) -> (u16, Value) {
    let response = send(
        client().delete(format!("{}/{path}", emulator.base_url())),
        key,
    );
    let (status, _, body) = parts(response);
    (status, body)
}

fn post(emulator: &Emulator, key: &str, path: &str, body: &Value) -> (u16, Value) {
    let url = format!("{}/{path}", emulator.base_url());
    let (status, _, body) = parts(send(client().post(url).json(body), key));
    (status, body)
}

fn patch(emulator: &Emulator, key: &str, path: &str, body: &Value) -> (u16, Value) {
    let url = format!("{}/{path}", emulator.base_url());
    let (status, _, body) = parts(send(client().patch(url).json(body), key));
    (status, body)
}

/// A generateContent body naming `file` (its uri) and/or a cached content.
fn using(file_uri: Option<&str>, cached: Option<&str>) -> Value {
    let mut parts = vec![json!({ "text": "describe it" })];
    if let Some(uri) = file_uri {
        parts.push(json!({ "fileData": { "fileUri": uri, "mimeType": "text/plain" } }));
    }
    let mut body = json!({ "contents": [{ "role": "user", "parts": parts }] });
    if let Some(cached) = cached {
        body["cachedContent"] = json!(cached);
    }
    body
}

fn file_denied(id: &str) -> String {
    format!("You do not have permission to access the File {id} or it may not exist.")
}

#[test]
fn a_resumable_upload_in_two_chunks_makes_a_file() {
    let emulator = emulator();
    for version in ["v1beta", "v1"] {
        let url = start(&emulator, "key-a", version, 11, "notes.txt");
        let expected_prefix = format!("{}/upload/{version}/files?upload_id=", emulator.base_url());
        assert!(url.starts_with(&expected_prefix), "{url}");

        let (status, upload, body) = parts(chunk(&url, "key-a", "upload", 0, b"hello "));
        assert_eq!(
            (status, upload.as_deref(), body),
            (200, Some("active"), Value::Null)
        );
        // A key of the same project may go on with the upload.
        let (status, upload, body) = parts(chunk(&url, "key-a2", "upload, finalize", 6, b"world"));
        assert_eq!((status, upload.as_deref()), (200, Some("final")), "{body}");
        let file = &body["file"];
        let name = file["name"].as_str().unwrap();
        let id = name.strip_prefix("files/").unwrap();
        assert!(
            id.len() == 12 && id.bytes().all(|b| b.is_ascii_alphanumeric()),
            "{id}"
        );
        assert_eq!(file["displayName"], "notes.txt");
        assert_eq!(file["mimeType"], "text/plain");
        assert_eq!(file["sizeBytes"], "11");
        assert_eq!(file["state"], "ACTIVE");
        assert_eq!(file["source"], "UPLOADED");
        assert_eq!(
            file["uri"],
            format!("{}/{version}/files/{id}", emulator.base_url())
        );
        // base64 of the hex SHA-256 of "hello world", as the service sends it.
        let hex = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";
        assert_eq!(file["sha256Hash"], base64(hex.as_bytes()));
        let created = file["createTime"].as_str().unwrap();
        assert!(created.starts_with("2026-03-08T10:00:0"), "{created}");
        assert_eq!(file["updateTime"], created);
        let expires = file["expirationTime"].as_str().unwrap();
        assert_eq!(expires[10..], created[10..], "{expires} is not 48 h later");
        assert!(expires.starts_with("2026-03-10T"), "{expires}");

        // get, then delete; the upload URL is spent.
        let (status, got) = get(&emulator, "key-a", &format!("{version}/{name}"));
        assert_eq!((status, &got), (200, file));
        let (status, _, body) = parts(chunk(&url, "key-a", "upload, finalize", 11, b""));
        assert_eq!(
            (status, error_of(404, &body)["status"].as_str()),
            (404, Some("NOT_FOUND"))
        );
        assert_eq!(
            delete(&emulator, "key-a2", &format!("{version}/{name}")),
            (200, json!({}))
        );
        let (status, body) = get(&emulator, "key-a", &format!("{version}/{name}"));
        assert_eq!(error_of(status, &body)["message"], file_denied(id));
    }
}

#[test]
fn upload_protocol_errors_name_what_is_wrong() {
    let emulator = emulator();
    let upload_url = format!("{}/upload/v1beta/files", emulator.base_url());
    let message = |response: Response| {
        let (status, _, body) = parts(response);
        assert_eq!(status, 400, "{body}");
        error_of(400, &body)["message"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let bare = || {
        client()
            .post(&upload_url)
            .json(&json!({ "file": { "mimeType": "text/plain" } }))
    };
    assert!(message(send(bare(), "key-a")).contains("x-goog-upload-protocol"));
    let no_command = bare().header("x-goog-upload-protocol", "resumable");
    assert!(message(send(no_command, "key-a")).contains("x-goog-upload-command"));
    let multipart = bare()
        .header("x-goog-upload-protocol", "multipart")
        .header("x-goog-upload-command", "start");
    assert!(message(send(multipart, "key-a")).contains("'multipart'"));
    let bad_length = bare()
        .header("x-goog-upload-protocol", "resumable")
        .header("x-goog-upload-command", "start")
        .header("x-goog-upload-header-content-length", "lots");
    assert!(message(send(bad_length, "key-a")).contains("x-goog-upload-header-content-length"));
    let no_mime = client()
        .post(&upload_url)
        .header("x-goog-upload-protocol", "resumable")
        .header("x-goog-upload-command", "start")
        .json(&json!({}));
    assert!(message(send(no_mime, "key-a")).contains("MIME type"));
    let bad_name = client()
        .post(&upload_url)
        .header("x-goog-upload-protocol", "resumable")
        .header("x-goog-upload-command", "start")
        .json(&json!({ "file": { "name": "files/Not_Valid", "mimeType": "text/plain" } }));
    assert!(message(send(bad_name, "key-a")).contains("files/Not_Valid"));

    let url = start(&emulator, "key-a", "v1beta", 4, "x");
    // Wrong offset: refused, the session stays open and says what it has.
    let response = chunk(&url, "key-a", "upload", 2, b"ab");
    assert_eq!(header(&response, "x-goog-upload-status"), Some("active"));
    assert_eq!(header(&response, "x-goog-upload-size-received"), Some("0"));
    assert!(message(response).contains("x-goog-upload-offset is 2"));
    // Missing offset, missing command.
    let no_offset = client()
        .post(&url)
        .header("x-goog-upload-command", "upload")
        .body("ab");
    assert!(message(send(no_offset, "key-a")).contains("x-goog-upload-offset is required"));
    let no_command = client()
        .post(&url)
        .header("x-goog-upload-offset", "0")
        .body("ab");
    assert!(message(send(no_command, "key-a")).contains("x-goog-upload-command is required"));
    // More than declared, then a finalize short of it.
    assert!(message(chunk(&url, "key-a", "upload", 0, b"abcde")).contains("more than the 4"));
    let (status, upload, _) = parts(chunk(&url, "key-a", "upload", 0, b"ab"));
    assert_eq!((status, upload.as_deref()), (200, Some("active")));
    let short = chunk(&url, "key-a", "finalize", 2, b"");
    assert!(message(short).contains("declared 4"));
    // query says how far it got; PUT works as POST.
    let query = send(
        client().put(&url).header("x-goog-upload-command", "query"),
        "key-a",
    );
    assert_eq!(header(&query, "x-goog-upload-size-received"), Some("2"));
    // Another project's key is refused, and the session is not spent.
    let (status, upload, body) = parts(chunk(&url, "key-b", "upload, finalize", 2, b"cd"));
    assert_eq!((status, upload.as_deref()), (403, Some("final")));
    assert_eq!(error_of(403, &body)["status"], "PERMISSION_DENIED");
    let (status, _, body) = parts(chunk(&url, "key-a", "upload, finalize", 2, b"cd"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["file"]["sizeBytes"], "4");

    // The upload URL is its own credential: google-genai sends its chunks without a key.
    let url = start(&emulator, "key-a2", "v1beta", 3, "x");
    let keyless = client()
        .post(&url)
        .header("x-goog-upload-command", "upload, finalize")
        .header("x-goog-upload-offset", "0")
        .body("abc");
    let (status, upload, body) = parts(keyless.send().unwrap());
    assert_eq!((status, upload.as_deref()), (200, Some("final")), "{body}");
    let entry = emulator.log().pop().unwrap();
    assert_eq!(
        (entry.label.as_deref(), entry.key_fingerprint),
        (Some("a2"), None)
    );
    // Without a key, an unknown upload_id has no owner to stand for one.
    let spent = client().post(&url).header("x-goog-upload-command", "query");
    assert_eq!(spent.send().unwrap().status(), 403);

    // An unknown upload_id: 404, final (so the SDKs stop rather than retry).
    let unknown = format!("{}/upload/v1beta/files?upload_id=nope", emulator.base_url());
    let (status, upload, body) = parts(chunk(&unknown, "key-a", "upload", 0, b"x"));
    assert_eq!((status, upload.as_deref()), (404, Some("final")));
    assert!(error_of(404, &body)["message"]
        .as_str()
        .unwrap()
        .contains("nope"));

    // cancel ends a session.
    let url = start(&emulator, "key-a", "v1beta", 1, "x");
    let (status, upload, _) = parts(chunk(&url, "key-a", "cancel", 0, b""));
    assert_eq!((status, upload.as_deref()), (200, Some("cancelled")));
    assert_eq!(parts(chunk(&url, "key-a", "upload", 0, b"x")).0, 404);

    // A name the caller chose, once.
    let named = || {
        client()
            .post(&upload_url)
            .header("x-goog-upload-protocol", "resumable")
            .header("x-goog-upload-command", "start")
            .json(&json!({ "file": { "name": "files/my-notes", "mimeType": "text/plain" } }))
    };
    assert_eq!(send(named(), "key-a").status(), 200);
    let (status, _, body) = parts(send(named(), "key-b"));
    assert_eq!(error_of(status, &body)["status"], "ALREADY_EXISTS");
    // Wrong HTTP methods are 405s naming the allowed ones.
    let response = client().get(&upload_url).send().unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(header(&response, "allow"), Some("POST"));
}

#[test]
fn files_belong_to_their_project() {
    let emulator = emulator();
    let file = upload(&emulator, "key-a", b"some text");
    let name = file["name"].as_str().unwrap();
    let id = name.strip_prefix("files/").unwrap();
    let uri = file["uri"].as_str().unwrap();

    let (status, body) = get(&emulator, "key-b", &format!("v1beta/{name}"));
    assert_eq!(error_of(status, &body)["status"], "PERMISSION_DENIED");
    assert_eq!(body["error"]["message"], file_denied(id));
    let (status, body) = delete(&emulator, "key-b", &format!("v1beta/{name}"));
    assert_eq!(
        (status, &body["error"]["message"]),
        (403, &json!(file_denied(id)))
    );
    assert_eq!(get(&emulator, "key-a2", &format!("v1/{name}")).0, 200);
    assert_eq!(get(&emulator, "key-b", "v1beta/files").1, json!({}));
    assert_eq!(
        get(&emulator, "key-a2", "v1beta/files").1["files"][0]["name"],
        name
    );
    // An unknown file is answered like another project's.
    let (status, body) = get(&emulator, "key-a", "v1beta/files/nosuchfile");
    assert_eq!(
        (status, &body["error"]["message"]),
        (403, &json!(file_denied("nosuchfile")))
    );

    // Model calls naming the file: by its uri or by its name, in every method's body.
    let generate = format!("v1beta/models/{MODEL}:generateContent");
    assert_eq!(
        post(&emulator, "key-a", &generate, &using(Some(uri), None)).0,
        200
    );
    assert_eq!(
        post(&emulator, "key-a2", &generate, &using(Some(name), None)).0,
        200
    );
    let (status, body) = post(&emulator, "key-b", &generate, &using(Some(uri), None));
    assert_eq!(
        (status, &body["error"]["message"]),
        (403, &json!(file_denied(id)))
    );
    let stream = format!("v1/models/{MODEL}:streamGenerateContent?alt=sse");
    assert_eq!(
        post(&emulator, "key-b", &stream, &using(Some(uri), None)).0,
        403
    );
    let count = format!("v1beta/models/{MODEL}:countTokens");
    assert_eq!(
        post(&emulator, "key-b", &count, &using(Some(uri), None)).0,
        403
    );
    let wrapped = json!({ "generateContentRequest": {
        "model": format!("models/{MODEL}"),
        "contents": using(Some(uri), None)["contents"] } });
    assert_eq!(post(&emulator, "key-b", &count, &wrapped).0, 403);
    assert_eq!(post(&emulator, "key-a", &count, &wrapped).0, 200);
    // A refused call used no quota.
    let stats = emulator.stats();
    assert_eq!(stats.projects["b"].models[MODEL].ok, 0);
    assert_eq!(stats.projects["a"].files, 1);
    assert_eq!(stats.projects["b"].files, 0);
}

#[test]
fn cached_contents_round_trip() {
    let emulator = emulator();
    let create = json!({
        "model": format!("models/{MODEL}"),
        "displayName": "long context",
        "systemInstruction": { "parts": [{ "text": "be brief" }] },
        "contents": [{ "role": "user", "parts": [{ "text": "one two three four" }] }],
        "ttl": "300s",
    });
    for version in ["v1beta", "v1"] {
        let (status, cached) = post(
            &emulator,
            "key-a",
            &format!("{version}/cachedContents"),
            &create,
        );
        assert_eq!(status, 200, "{cached}");
        let name = cached["name"].as_str().unwrap();
        assert!(name.starts_with("cachedContents/"), "{name}");
        assert_eq!(cached["model"], format!("models/{MODEL}"));
        assert_eq!(cached["displayName"], "long context");
        assert_eq!(cached["usageMetadata"]["totalTokenCount"], 6);
        let created = cached["createTime"].as_str().unwrap();
        assert!(created.starts_with("2026-03-08T10:0"), "{created}");
        assert_eq!(cached["updateTime"], created);
        let expire = cached["expireTime"].as_str().unwrap();
        assert!(expire.starts_with("2026-03-08T10:0"), "{expire}");
        assert_ne!(expire, created);

        assert_eq!(
            get(&emulator, "key-a2", &format!("{version}/{name}")),
            (200, cached.clone())
        );
        let (status, patched) = patch(
            &emulator,
            "key-a",
            &format!("{version}/{name}?updateMask=ttl"),
            &json!({ "ttl": "7200s" }),
        );
        assert_eq!(status, 200, "{patched}");
        assert!(patched["expireTime"]
            .as_str()
            .unwrap()
            .starts_with("2026-03-08T12:0"));
        let (status, body) = post(
            &emulator,
            "key-a",
            &format!("{version}/models/{MODEL}:generateContent"),
            &using(None, Some(name)),
        );
        assert_eq!(status, 200, "{body}");
        // Another model: 400; another project: 403.
        let (status, body) = post(
            &emulator,
            "key-a",
            &format!("{version}/models/gemini-3-pro:generateContent"),
            &using(None, Some(name)),
        );
        assert_eq!(error_of(status, &body)["status"], "INVALID_ARGUMENT");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("has to be the same"));
        let (status, body) = post(
            &emulator,
            "key-b",
            &format!("{version}/models/{MODEL}:generateContent"),
            &using(None, Some(name)),
        );
        assert_eq!(status, 403);
        assert_eq!(
            body["error"]["message"],
            "CachedContent not found (or permission denied)"
        );
        for (status, body) in [
            get(&emulator, "key-b", &format!("{version}/{name}")),
            patch(
                &emulator,
                "key-b",
                &format!("{version}/{name}"),
                &json!({ "ttl": "1s" }),
            ),
            delete(&emulator, "key-b", &format!("{version}/{name}")),
        ] {
            assert_eq!(error_of(status, &body)["status"], "PERMISSION_DENIED");
        }
        let listed = get(&emulator, "key-a", &format!("{version}/cachedContents")).1;
        assert_eq!(listed["cachedContents"][0]["name"], name);
        assert_eq!(
            get(&emulator, "key-b", &format!("{version}/cachedContents")).1,
            json!({})
        );
        assert_eq!(
            delete(&emulator, "key-a", &format!("{version}/{name}")),
            (200, json!({}))
        );
        assert_eq!(get(&emulator, "key-a", &format!("{version}/{name}")).0, 403);
    }
}

#[test]
fn cached_content_requests_are_validated() {
    let emulator = emulator();
    let message = |body: Value| {
        let (status, answer) = post(&emulator, "key-a", "v1beta/cachedContents", &body);
        assert_eq!(status, 400, "{answer}");
        answer["error"]["message"].as_str().unwrap().to_string()
    };
    let contents = json!([{ "parts": [{ "text": "x" }] }]);
    assert!(message(json!({ "contents": contents })).contains("model is required"));
    let model = format!("models/{MODEL}");
    assert!(message(json!({ "model": model })).contains("contents or system_instruction"));
    let both = json!({ "model": model, "contents": contents, "ttl": "1s",
                       "expireTime": "2027-01-01T00:00:00Z" });
    assert!(message(both).contains("not both"));
    assert!(
        message(json!({ "model": model, "contents": contents, "ttl": "soon" })).contains("'ttl'")
    );
    let past =
        json!({ "model": model, "contents": contents, "expireTime": "2020-01-01T00:00:00Z" });
    assert!(message(past).contains("in the past"));
    let (status, _) = post(
        &emulator,
        "key-a",
        "v1beta/cachedContents",
        &json!({ "model": "models/gemini-1.5-flash", "contents": contents }),
    );
    assert_eq!(status, 404);
    // A cached content may not hold another project's file.
    let file = upload(&emulator, "key-b", b"theirs");
    let theirs = json!({ "model": model, "contents": [{ "parts": [
        { "fileData": { "fileUri": file["uri"], "mimeType": "text/plain" } }] }] });
    let (status, body) = post(&emulator, "key-a", "v1beta/cachedContents", &theirs);
    assert_eq!(error_of(status, &body)["status"], "PERMISSION_DENIED");
    let (status, body) = post(&emulator, "key-b", "v1beta/cachedContents", &theirs);
    assert_eq!(status, 200, "{body}");
    // An expireTime given is kept.
    let at = json!({ "model": model, "contents": contents, "expireTime": "2026-03-09T00:00:00Z" });
    let (status, body) = post(&emulator, "key-a", "v1beta/cachedContents", &at);
    assert_eq!(
        (status, &body["expireTime"]),
        (200, &json!("2026-03-09T00:00:00.000Z"))
    );
}

#[test]
fn lists_page_through_everything_once() {
    let emulator = emulator();
    let mut made = Vec::new();
    for i in 0..5 {
        made.push(upload(&emulator, "key-a", format!("file {i}").as_bytes())["name"].clone());
    }
    upload(&emulator, "key-b", b"not listed for a");
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = "v1beta/files?pageSize=2".to_string();
        if let Some(token) = &token {
            path.push_str(&format!("&pageToken={token}"));
        }
        let (status, page) = get(&emulator, "key-a2", &path);
        assert_eq!(status, 200, "{page}");
        pages += 1;
        seen.extend(
            page["files"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["name"].clone()),
        );
        match page.get("nextPageToken") {
            Some(next) => token = Some(next.as_str().unwrap().to_string()),
            None => break,
        }
    }
    assert_eq!((pages, seen), (3, made));
    let (status, body) = get(&emulator, "key-a", "v1beta/files?pageToken=bogus");
    assert!(error_of(status, &body)["message"]
        .as_str()
        .unwrap()
        .contains("page_token"));
    let (status, _) = get(&emulator, "key-a", "v1beta/cachedContents?pageSize=many");
    assert_eq!(status, 400);
}

#[test]
fn files_and_cached_contents_expire_by_the_clock() {
    let emulator = emulator();
    let file = upload(&emulator, "key-a", b"short lived");
    let name = file["name"].as_str().unwrap().to_string();
    let (_, cached) = post(
        &emulator,
        "key-a",
        "v1beta/cachedContents",
        &json!({ "model": MODEL, "contents": [{ "parts": [{ "text": "x" }] }], "ttl": "3600s" }),
    );
    let cache_name = cached["name"].as_str().unwrap().to_string();
    assert_eq!(cached["model"], format!("models/{MODEL}"));

    emulator.advance_clock(HOUR_MS + 1000);
    assert_eq!(
        get(&emulator, "key-a", &format!("v1beta/{cache_name}")).0,
        403
    );
    let (status, _) = post(
        &emulator,
        "key-a",
        &format!("v1beta/models/{MODEL}:generateContent"),
        &using(None, Some(&cache_name)),
    );
    assert_eq!(status, 403);
    assert_eq!(get(&emulator, "key-a", &format!("v1beta/{name}")).0, 200);
    assert_eq!(emulator.stats().projects["a"].cached_contents, 0);

    emulator.advance_clock(47 * HOUR_MS);
    assert_eq!(get(&emulator, "key-a", &format!("v1beta/{name}")).0, 403);
    assert_eq!(emulator.stats().projects["a"].files, 0);
    assert!(emulator.resources().is_empty());
}

#[test]
fn the_log_and_stats_name_versions_paths_keys_and_resources() {
    let emulator = emulator();
    let url = start(&emulator, "key-a", "v1", 2, "x");
    let (_, _, body) = parts(chunk(&url, "key-a2", "upload, finalize", 0, b"hi"));
    let name = body["file"]["name"].as_str().unwrap().to_string();
    get(&emulator, "key-b", &format!("v1beta/{name}"));
    let with_key_in_url = format!("{}/v1beta/{name}?key=key-a", emulator.base_url());
    assert_eq!(client().get(with_key_in_url).send().unwrap().status(), 200);

    let log = emulator.log();
    assert_eq!(log.len(), 4);
    let methods: Vec<&str> = log.iter().map(|e| e.method.as_str()).collect();
    assert_eq!(
        methods,
        ["files.create", "files.upload", "files.get", "files.get"]
    );
    assert_eq!(log[0].version, "v1");
    assert_eq!(log[0].path, "/upload/v1/files");
    assert!(
        log[1].path.starts_with("/upload/v1/files?upload_id="),
        "{}",
        log[1].path
    );
    assert_eq!(log[2].version, "v1beta");
    assert!(log.iter().all(|e| e.resources == [name.clone()]), "{log:?}");
    let labels: Vec<Option<&str>> = log.iter().map(|e| e.label.as_deref()).collect();
    assert_eq!(labels, [Some("a"), Some("a2"), Some("b"), Some("a")]);
    assert_eq!(log[2].project.as_deref(), Some("b"));
    assert_eq!((log[2].status, log[3].status), (403, 200));
    assert_eq!(log[0].key_fingerprint.as_deref(), Some("b1f7aed3c596"));
    assert_eq!(log[0].key_fingerprint, log[3].key_fingerprint);
    // The key in the URL is never logged.
    assert_eq!(log[3].path, format!("/v1beta/{name}"));
    assert!(log.iter().all(|e| e.model.is_empty() && e.tokens.is_none()));

    let stats = emulator.stats();
    assert_eq!(stats.by_version["v1"], 2);
    assert_eq!(stats.by_version["v1beta"], 2);
    assert_eq!(stats.by_method["files.get"], 2);
    assert_eq!(stats.keys["a2"].ok, 1);
    // Resource requests use no model quota.
    assert!(stats.projects["a"].models.is_empty());

    // The control API shows the same, keys by label only.
    let base = emulator.base_url();
    let raw: Value = client()
        .get(format!("{base}/_emulator/resources"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(raw[0]["name"], name.as_str());
    // The key that started the upload made the file.
    assert_eq!(
        (raw[0]["project"].as_str(), raw[0]["label"].as_str()),
        (Some("a"), Some("a"))
    );
    assert_eq!(raw[0]["size"], 2);
    let log: Value = client()
        .get(format!("{base}/_emulator/log"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(log[1]["resources"], json!([name]));
    assert!(!log.to_string().contains("key-a"));
    // A model call's log entry names the resources of its body.
    post(
        &emulator,
        "key-a",
        &format!("v1beta/models/{MODEL}:generateContent"),
        &using(Some(&name), None),
    );
    assert_eq!(emulator.log()[4].resources, std::slice::from_ref(&name));

    emulator.reset();
    assert!(emulator.resources().is_empty());
    assert_eq!(get(&emulator, "key-a", &format!("v1beta/{name}")).0, 403);
}

#[test]
fn faults_apply_to_resource_requests() {
    let emulator = emulator();
    // A fault without a method meets model calls only; one naming a resource method meets it.
    emulator.add_fault(Fault::new(FaultKind::Http503).for_label("a").times(1));
    assert_eq!(get(&emulator, "key-a", "v1beta/files").0, 200);
    emulator.reset();
    let fault = Fault::new(FaultKind::Http503).for_method("files.list");
    emulator.add_fault(fault.for_label("a").times(1));
    let (status, body) = get(&emulator, "key-a", "v1beta/files");
    assert_eq!(error_of(status, &body)["status"], "UNAVAILABLE");
    assert_eq!(get(&emulator, "key-a", "v1beta/files").0, 200);
    // Without a key, or with an unknown one, as every request.
    let (status, _, _) = parts(
        client()
            .get(format!("{}/v1beta/files", emulator.base_url()))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 403);
    assert_eq!(get(&emulator, "nope", "v1beta/files").0, 400);
}

/// Standard base64 with padding, for the expected `sha256Hash`.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}
