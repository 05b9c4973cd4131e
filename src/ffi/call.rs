//! The C ABI of calls beyond `gr_generate`: any model method (`gr_call`), the models list
//! (`gr_list_models`), and the cancel token that stops a call or a stream from another thread.

use super::error::{gr_error, gr_status};
use super::gr_pool;
use super::guard::{guard, guard_void};
use super::ptr::{c_str, free_handle, into_handle, opt_c_str, opt_ref, try_ref, Out};
use super::response::gr_response;
use crate::cancel::Cancel;
use crate::method::Method;
use crate::pool::CallOptions;
use std::ffi::c_char;

/// A cancel token. Create with `gr_cancel_new`, pass to `gr_call`, `gr_list_models` or
/// `gr_stream_open`, trigger with `gr_cancel_trigger`, free with `gr_cancel_free`.
///
/// Thread safety: trigger it from any thread, while the calls it was given to run on others;
/// free it only when no call that was given it is running (a stream keeps its own reference:
/// the token may be freed while the stream is open).
#[allow(non_camel_case_types)]
pub struct gr_cancel {
    pub(crate) token: Cancel,
}

/// Creates a cancel token, not triggered. On `GR_OK`, `*out_cancel` receives it (free it with
/// `gr_cancel_free`). Errors: `GR_ERR_NULL_ARGUMENT` (`out_cancel`).
///
/// # Safety
/// Every pointer argument is NULL or valid as described above.
#[no_mangle]
pub unsafe extern "C" fn gr_cancel_new(
    out_cancel: *mut *mut gr_cancel,
    out_error: *mut *mut gr_error,
) -> gr_status {
    guard(out_error, || {
        // SAFETY: per the contract above.
        let out = unsafe { Out::new(out_cancel, "out_cancel")? };
        out.write(into_handle(gr_cancel {
            token: Cancel::new(),
        }));
        Ok(())
    })
}

/// Triggers the token, from any thread: every call and stream it was given stops at once with
/// `GR_ERR_CANCELLED`, the HTTP request itself closed and the key's slot released; calls given
/// it later fail at once. Triggering twice, or a NULL token, does nothing.
///
/// # Safety
/// `cancel` is NULL or a live token from `gr_cancel_new`.
#[no_mangle]
pub unsafe extern "C" fn gr_cancel_trigger(cancel: *const gr_cancel) {
    // SAFETY: per the contract above.
    guard_void(|| {
        if let Some(c) = unsafe { opt_ref(cancel) } {
            c.token.trigger()
        }
    })
}

/// Frees a cancel token. Freeing NULL does nothing. No call given it may be running.
///
/// # Safety
/// `cancel` is NULL or a token from `gr_cancel_new` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn gr_cancel_free(cancel: *mut gr_cancel) {
    // SAFETY: per the contract above.
    guard_void(|| unsafe { free_handle(cancel) })
}

/// Sends one request of a model method through the pool, on the key the pool chooses, like
/// `gr_generate`: the same rotation, limits, retries and reactions, under `model`'s limits
/// (embedding models are models like the others).
///
/// - `model`: the model name, or NULL for the pool's default.
/// - `method`: "generateContent", "countTokens", "embedContent" or "batchEmbedContents"
///   (exactly; anything else, and "streamGenerateContent", which is `gr_stream_open`'s, is
///   `GR_ERR_INVALID_ARGUMENT` naming `method`).
/// - `request_json`: the method's request JSON object, sent untouched.
/// - `max_wait_ms`, `timeout_ms`: as for `gr_generate`.
/// - `cancel`: NULL, or a token that stops the call from another thread (`GR_ERR_CANCELLED`).
///
/// On `GR_OK`, `*out_response` receives a `gr_response` (free it with `gr_response_free`)
/// whose body is the service's answer JSON (`{"totalTokens": N}` for countTokens, ...).
/// Errors: those of `gr_generate`, and `GR_ERR_CANCELLED`.
///
/// Thread safety: call it from as many threads as you like on one pool.
///
/// # Safety
/// Every pointer argument is NULL or valid as described above: strings NUL-terminated,
/// handles and out-params from this library or the caller's own live memory.
#[no_mangle]
pub unsafe extern "C" fn gr_call(
    pool: *const gr_pool,
    model: *const c_char,
    method: *const c_char,
    request_json: *const c_char,
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
        let model = unsafe { opt_c_str(model, "model")? };
        let method = Method::parse(unsafe { c_str(method, "method")? })?;
        let request = unsafe { c_str(request_json, "request_json")? };
        let cancel = unsafe { opt_ref(cancel) }.map(|c| &c.token);
        let options = call_options(model, max_wait_ms, timeout_ms);
        let response = pool.pool.call(method, request, &options, cancel)?;
        out_response.write(into_handle(gr_response::new(response)));
        Ok(())
    })
}

/// The options of a call, from the C arguments every call takes.
pub(super) fn call_options(model: Option<&str>, max_wait_ms: u64, timeout_ms: u64) -> CallOptions {
    CallOptions {
        model: model.map(str::to_string),
        max_wait_ms,
        timeout_ms: (timeout_ms > 0).then_some(timeout_ms),
    }
}

/// One page of the models list: `GET models?pageSize=&pageToken=`, asked of a key that is not
/// disabled (the list uses no quota, so no window slot). `page_size` 0: the service's default;
/// `page_token` NULL or "": the first page. `cancel`: NULL or a token, as for `gr_call`.
///
/// On `GR_OK`, `*out_response` receives a `gr_response` whose body is
/// `{"models": [...], "nextPageToken": "..."}` (no token on the last page). Errors:
/// `GR_ERR_API`, `GR_ERR_TRANSPORT`, `GR_ERR_TIMEOUT`, `GR_ERR_NO_USABLE_KEYS`,
/// `GR_ERR_CANCELLED`, `GR_ERR_NULL_ARGUMENT`, `GR_ERR_INVALID_UTF8`.
///
/// # Safety
/// Every pointer argument is NULL or valid as described above: strings NUL-terminated,
/// handles and out-params from this library or the caller's own live memory.
#[no_mangle]
pub unsafe extern "C" fn gr_list_models(
    pool: *const gr_pool,
    page_size: u32,
    page_token: *const c_char,
    cancel: *const gr_cancel,
    out_response: *mut *mut gr_response,
    out_error: *mut *mut gr_error,
) -> gr_status {
    guard(out_error, || {
        // SAFETY (all): per the contract above.
        let pool = unsafe { try_ref(pool, "pool")? };
        let out_response = unsafe { Out::new(out_response, "out_response")? };
        let token = unsafe { opt_c_str(page_token, "page_token")? }.unwrap_or("");
        let cancel = unsafe { opt_ref(cancel) }.map(|c| &c.token);
        let response = pool.pool.list_models(page_size, token, cancel)?;
        out_response.write(into_handle(gr_response::new(response)));
        Ok(())
    })
}
