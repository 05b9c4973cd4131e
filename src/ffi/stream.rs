//! The C ABI of streams: `gr_stream_open` returns a handle once the first event is in,
//! `gr_stream_next` gives the events one at a time and `GR_STREAM_END` at the normal end,
//! `gr_stream_close` ends it from any thread, `gr_stream_free` frees it.

use super::call::{call_options, gr_cancel};
use super::error::{gr_error, gr_status};
use super::gr_pool;
use super::guard::{guard, guard_void};
use super::ptr::{c_str, free_handle, into_handle, opt_c_str, opt_ref, try_ref, Out};
use super::response::gr_response;
use crate::pool::{Response, Stream};
use std::ffi::{c_char, CString};

/// An open `streamGenerateContent` stream. Created by `gr_stream_open`, read with
/// `gr_stream_next`, ended early with `gr_stream_close`, freed with `gr_stream_free`. It holds
/// its key's window slot until it ends; the pool must outlive it.
///
/// Thread safety: `gr_stream_next` from one thread at a time; `gr_stream_close` and the
/// accessors from any thread, at any time, also while `gr_stream_next` runs on another.
#[allow(non_camel_case_types)]
pub struct gr_stream {
    stream: Stream<'static>,
    key_fingerprint: CString,
}

/// Opens a `streamGenerateContent` stream (sent with `alt=sse`) through the pool, and returns
/// once its first event is in. Until then, every failure is retried on another key, unseen: a
/// 429, a dead key, a 5xx, a transport error, an error as the first thing in the body, and a
/// stream that sends no event within `GEMINI_STREAM_FIRST_EVENT_TIMEOUT_MS` (abandoned), within
/// the call's budget. After it, nothing is retried: no output is ever repeated or spliced.
///
/// Arguments as for `gr_generate` (`request_json`: a GenerateContentRequest), and `cancel`:
/// NULL, or a token that stops the stream from another thread, opening or reading
/// (`GR_ERR_CANCELLED`).
///
/// On `GR_OK`, `*out_stream` receives the stream (free it with `gr_stream_free`). Errors: those
/// of `gr_generate`, and `GR_ERR_CANCELLED`.
///
/// # Safety
/// Every pointer argument is NULL or valid as described above: strings NUL-terminated,
/// handles and out-params from this library or the caller's own live memory. The pool stays
/// alive until the stream is freed.
#[no_mangle]
pub unsafe extern "C" fn gr_stream_open(
    pool: *const gr_pool,
    model: *const c_char,
    request_json: *const c_char,
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
        let model = unsafe { opt_c_str(model, "model")? };
        let request = unsafe { c_str(request_json, "request_json")? };
        let cancel = unsafe { opt_ref(cancel) }.map(|c| &c.token);
        let options = call_options(model, max_wait_ms, timeout_ms);
        let stream = pool.pool.stream(request, &options, cancel)?;
        out_stream.write(into_handle(gr_stream::new(stream)));
        Ok(())
    })
}

impl gr_stream {
    pub(super) fn new(stream: Stream<'static>) -> gr_stream {
        let key_fingerprint = CString::new(stream.key_fingerprint()).unwrap_or_default();
        gr_stream {
            stream,
            key_fingerprint,
        }
    }
}

/// The next event. On `GR_OK`, `*out_event` receives it as a `gr_response` (free it with
/// `gr_response_free`): its body is one GenerateContentResponse JSON as received, its key
/// fingerprint the stream's key. `GR_STREAM_END` (not an error: nothing is written, not even
/// `*out_error`): the stream ended normally, after the event with `finishReason`; calling again
/// answers `GR_STREAM_END` again.
///
/// Errors end the stream (the events delivered before are all there is): `GR_ERR_TIMEOUT` (no
/// event within `GEMINI_STREAM_IDLE_TIMEOUT_MS`), `GR_ERR_API` (the service's error in the
/// middle of the stream), `GR_ERR_INCOMPLETE_STREAM` (the body ended without `finishReason`),
/// `GR_ERR_TRANSPORT` (the connection broke), `GR_ERR_CANCELLED` (closed or cancelled while
/// waiting). After an error or `gr_stream_close`: `GR_ERR_INVALID_ARGUMENT` naming `stream`.
/// `GR_ERR_NULL_ARGUMENT`: `stream` or `out_event` is NULL.
///
/// # Safety
/// `stream` is NULL or a live stream; `out_event`, `out_error` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn gr_stream_next(
    stream: *const gr_stream,
    out_event: *mut *mut gr_response,
    out_error: *mut *mut gr_error,
) -> gr_status {
    let mut ended = false;
    let status = guard(out_error, || {
        // SAFETY (both): per the contract above.
        let stream = unsafe { try_ref(stream, "stream")? };
        let out_event = unsafe { Out::new(out_event, "out_event")? };
        match stream.stream.next()? {
            None => ended = true,
            Some(body) => out_event.write(into_handle(gr_response::new(Response {
                body,
                key_fingerprint: stream.stream.key_fingerprint().to_string(),
                attempts: stream.stream.attempts(),
                model: stream.stream.model().to_string(),
            }))),
        }
        Ok(())
    });
    match (status, ended) {
        (gr_status::GR_OK, true) => gr_status::GR_STREAM_END,
        _ => status,
    }
}

/// Ends the stream now, from any thread: a `gr_stream_next` waiting on another thread returns
/// `GR_ERR_CANCELLED`, and before this returns the connection is closed and the key's window
/// slot released. Closing twice, after the end, or a NULL stream does nothing. The handle
/// stays valid until `gr_stream_free`.
///
/// # Safety
/// `stream` is NULL or a live stream.
#[no_mangle]
pub unsafe extern "C" fn gr_stream_close(stream: *const gr_stream) {
    // SAFETY: per the contract above.
    guard_void(|| {
        if let Some(s) = unsafe { opt_ref(stream) } {
            s.stream.close()
        }
    })
}

/// Closes (as `gr_stream_close`) and frees the stream. Freeing NULL does nothing. No other
/// call on the stream may be running.
///
/// # Safety
/// `stream` is NULL or a stream from `gr_stream_open` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn gr_stream_free(stream: *mut gr_stream) {
    // SAFETY: per the contract above.
    guard_void(|| unsafe { free_handle(stream) })
}

/// The fingerprint of the key serving the stream. Borrowed: valid until `gr_stream_free`; do
/// not free it. "" for a NULL `stream`.
///
/// # Safety
/// `stream` is NULL or a live stream.
#[no_mangle]
pub unsafe extern "C" fn gr_stream_key_fingerprint(stream: *const gr_stream) -> *const c_char {
    // SAFETY: per the contract above.
    unsafe { opt_ref(stream) }.map_or(c"".as_ptr(), |s| s.key_fingerprint.as_ptr())
}

/// The HTTP attempts opening the stream took (1 when nothing went wrong). 0 for NULL.
///
/// # Safety
/// `stream` is NULL or a live stream.
#[no_mangle]
pub unsafe extern "C" fn gr_stream_attempts(stream: *const gr_stream) -> u32 {
    // SAFETY: per the contract above.
    unsafe { opt_ref(stream) }.map_or(0, |s| s.stream.attempts())
}

/// The `usageMetadata.promptTokenCount` of the last event delivered that carried one (the
/// request's input tokens, for token limits); -1 before any, or for a NULL `stream`.
///
/// # Safety
/// `stream` is NULL or a live stream.
#[no_mangle]
pub unsafe extern "C" fn gr_stream_prompt_token_count(stream: *const gr_stream) -> i64 {
    // SAFETY: per the contract above.
    let usage = unsafe { opt_ref(stream) }.and_then(|s| s.stream.usage());
    count_or_minus_one(usage.and_then(|u| u.prompt_token_count))
}

/// The `usageMetadata.totalTokenCount` of the last event delivered that carried one; -1
/// before any, or for a NULL `stream`.
///
/// # Safety
/// `stream` is NULL or a live stream.
#[no_mangle]
pub unsafe extern "C" fn gr_stream_total_token_count(stream: *const gr_stream) -> i64 {
    // SAFETY: per the contract above.
    let usage = unsafe { opt_ref(stream) }.and_then(|s| s.stream.usage());
    count_or_minus_one(usage.and_then(|u| u.total_token_count))
}

fn count_or_minus_one(n: Option<u64>) -> i64 {
    n.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX))
}
