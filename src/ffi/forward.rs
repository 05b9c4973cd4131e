//! The C ABI of the SDK transports: one HTTP request exactly as an SDK built it
//! (google-genai, go-genai) goes to `gr_forward` (or `gr_forward_stream` for a stream), and
//! the core routes it, chooses the key and performs it.

use super::call::{call_options, gr_cancel};
use super::error::{gr_error, gr_status};
use super::gr_pool;
use super::guard::{guard, Failure};
use super::ptr::{byte_slice, c_str, into_handle, opt_c_str, opt_ref, try_ref, Out};
use super::response::gr_response;
use super::stream::gr_stream;
use crate::pool::ForwardRequest;
use std::ffi::c_char;

/// The headers of `headers_json`: NULL, or a JSON object of strings.
fn headers(json: Option<&str>) -> Result<Vec<(String, String)>, Failure> {
    let Some(json) = json else {
        return Ok(Vec::new());
    };
    let bad = |why: String| Failure::new(gr_status::GR_ERR_INVALID_JSON, why);
    let value: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| bad(format!("argument `headers_json`: not valid JSON: {e}")))?;
    let serde_json::Value::Object(map) = value else {
        return Err(bad(
            "argument `headers_json` must be a JSON object {\"name\": \"value\", ...}".into(),
        ));
    };
    map.into_iter()
        .map(|(name, value)| match value {
            serde_json::Value::String(v) => Ok((name, v)),
            other => Err(bad(format!(
                "argument `headers_json`: header {name:?} must be a string, got {other}"
            ))),
        })
        .collect()
}

/// Forwards one HTTP request exactly as an SDK built it through the pool: the core routes it
/// by its path, chooses the key and performs it.
///
/// - `http_method`: "GET", "POST", "PATCH", "PUT" or "DELETE".
/// - `path`: the URL's path and query as the SDK built it (a whole URL also does). Anything
///   before `/{version}/` or `/upload/{version}/` (a base URL's own prefix) is dropped; the
///   API version (`v1`, `v1beta`, `v1alpha`, ...) is kept: the request goes to
///   `{pool base URL}/{version}/...`. A `key=` query parameter is dropped; others are kept.
/// - `headers_json`: NULL, or a JSON object `{"name": "value", ...}` of the SDK's headers. Only
///   `content-type` and `x-goog-upload-*` are forwarded; every other (the SDK's placeholder
///   `x-goog-api-key`, `authorization`, user agents) is dropped. The pool's key goes in
///   `x-goog-api-key`, never in the URL.
/// - `body`, `body_len`: the request body, sent untouched (`body` may be NULL when
///   `body_len` is 0).
/// - `max_wait_ms`, `timeout_ms`, `cancel`: as for `gr_call`.
///
/// Routing:
/// - `POST /{v}/models/{m}:generateContent` (and `countTokens`, `embedContent`,
///   `batchEmbedContents`): the pool's model call under m's limits (rotation, admission per
///   group and model, reactions, failover), in API version v. `streamGenerateContent` is
///   `gr_forward_stream`'s: here it is `GR_ERR_INVALID_ARGUMENT` naming it.
/// - `GET /{v}/models[/m]`, and resource requests (`files`, `/upload/{v}/files`,
///   `cachedContents`, `operations`, `batches`): on one key, no model admission (they use no
///   model quota), to another allowed key after a dead key, a 429, a 5xx or no answer.
/// - Any other path: `GR_ERR_INVALID_ARGUMENT` naming the method and path.
///
/// Pins: a resource lives in the project of the key that made it. When an answer creates one
/// (a file, a cached content, an operation), its name is pinned to the serving key's quota
/// group in the pool's state (shared like the rest of it; 48 hours, or a cached content's
/// `expireTime`); an upload session to the exact key that started it. A request naming a
/// pinned resource (in its path, or in its body: `cachedContent`, `fileData.fileUri`) is served
/// only by keys of that group; when none can, the usual `GR_ERR_ALL_KEYS_RATE_LIMITED` with
/// its retry time, never another project's key. A resource with no pin goes to any key; when
/// the answer is a 403/404 about it, one key of each other group is asked before the
/// service's answer is returned, and the resource is pinned where it was found. Deleting a
/// resource removes its pin.
///
/// On `GR_OK`, `*out_response` receives a `gr_response` (free it with `gr_response_free`):
/// `gr_response_body` is the service's answer bytes (JSON or anything), `gr_response_http_status`
/// its 2xx status, `gr_response_header` its `content-type` and `x-goog-upload-*` headers.
/// Errors: the service's final error is `GR_ERR_API` with `gr_error_http_status`,
/// `gr_error_rpc_status`, `gr_error_api_message` and `gr_error_api_body` (the raw body, every
/// `details` entry intact); the pool's own errors as for `gr_call`
/// (`GR_ERR_ALL_KEYS_RATE_LIMITED`, `GR_ERR_MODEL_UNAVAILABLE`, `GR_ERR_NO_USABLE_KEYS`,
/// `GR_ERR_STATE`, `GR_ERR_CANCELLED`, `GR_ERR_TIMEOUT`, `GR_ERR_TRANSPORT`);
/// `GR_ERR_INVALID_ARGUMENT` (`path`, or a model call's `body` that is not UTF-8),
/// `GR_ERR_INVALID_JSON` (`headers_json`, a model call's `body`), `GR_ERR_NULL_ARGUMENT`,
/// `GR_ERR_INVALID_UTF8`.
///
/// Thread safety: call it from as many threads as you like on one pool.
///
/// # Safety
/// Every pointer argument is NULL or valid as described above: strings NUL-terminated, `body`
/// `body_len` readable bytes, handles and out-params from this library or the caller's own
/// live memory.
#[no_mangle]
pub unsafe extern "C" fn gr_forward(
    pool: *const gr_pool,
    http_method: *const c_char,
    path: *const c_char,
    headers_json: *const c_char,
    body: *const u8,
    body_len: usize,
    max_wait_ms: u64,
    timeout_ms: u64,
    cancel: *const gr_cancel,
    out_response: *mut *mut gr_response,
    out_error: *mut *mut gr_error,
) -> gr_status {
    guard(out_error, || {
        // SAFETY (all): per the contract above.
        let pool = unsafe { try_ref(pool, "pool")? };
        let out_response = unsafe { Out::new(out_response, "out_response")? };
        let method = unsafe { c_str(http_method, "http_method")? };
        let path = unsafe { c_str(path, "path")? };
        let headers = headers(unsafe { opt_c_str(headers_json, "headers_json")? })?;
        let body = unsafe { byte_slice(body, body_len, "body")? };
        let cancel = unsafe { opt_ref(cancel) }.map(|c| &c.token);
        if !["GET", "POST", "PATCH", "PUT", "DELETE"].contains(&method) {
            return Err(Failure::new(
                gr_status::GR_ERR_INVALID_ARGUMENT,
                format!(
                    "argument `http_method` must be GET, POST, PATCH, PUT or DELETE, got {method:?}"
                ),
            ));
        }
        let request = ForwardRequest {
            method,
            path,
            headers: &headers,
            body,
        };
        let options = call_options(None, max_wait_ms, timeout_ms);
        let forwarded = pool.pool.forward(&request, &options, cancel)?;
        out_response.write(into_handle(gr_response::forwarded(forwarded)));
        Ok(())
    })
}

/// Forwards `POST .../{version}/models/{m}:streamGenerateContent` as an SDK built it (sent with
/// `alt=sse`, in the path's API version): the stream `gr_stream_open` gives, events through
/// `gr_stream_next`, failover only before the first event, and the pins of `gr_forward` (a
/// body naming a pinned file or cached content streams from that group's keys). Any other
/// path is `GR_ERR_INVALID_ARGUMENT` naming it. `headers_json` is checked as for `gr_forward`
/// (the stream's request needs none of them: it is JSON).
///
/// On `GR_OK`, `*out_stream` receives the stream (free it with `gr_stream_free`). Errors: those
/// of `gr_forward`.
///
/// # Safety
/// As for `gr_forward`; the pool stays alive until the stream is freed.
#[no_mangle]
pub unsafe extern "C" fn gr_forward_stream(
    pool: *const gr_pool,
    path: *const c_char,
    headers_json: *const c_char,
    body: *const u8,
    body_len: usize,
    max_wait_ms: u64,
    timeout_ms: u64,
    cancel: *const gr_cancel,
    out_stream: *mut *mut gr_stream,
    out_error: *mut *mut gr_error,
) -> gr_status {
    guard(out_error, || {
        // SAFETY (all): per the contract above; the pool outlives the stream, so the stream
        // may borrow it for as long as it lives.
        let pool: &'static gr_pool = unsafe { try_ref(pool, "pool")? };
        let out_stream = unsafe { Out::new(out_stream, "out_stream")? };
        let path = unsafe { c_str(path, "path")? };
        headers(unsafe { opt_c_str(headers_json, "headers_json")? })?;
        let body = unsafe { byte_slice(body, body_len, "body")? };
        let cancel = unsafe { opt_ref(cancel) }.map(|c| &c.token);
        let options = call_options(None, max_wait_ms, timeout_ms);
        let stream = pool.pool.forward_stream(path, body, &options, cancel)?;
        out_stream.write(into_handle(gr_stream::new(stream)));
        Ok(())
    })
}
