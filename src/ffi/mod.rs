//! The C ABI. The doc comments here are the header's documentation (cbindgen copies them into
//! `include/gemini_rotator.h`): they are written for a C programmer.
//!
//! Conventions, for every function:
//! - Fallible functions return a `gr_status`. Results go to trailing out-params, written only on
//!   `GR_OK`. On failure, `*out_error` (when `out_error` is not NULL) receives a `gr_error` with
//!   the details, to be freed with `gr_error_free`; on success it is left untouched.
//! - NULL pointers, invalid UTF-8 and malformed JSON are answered with a status and a message
//!   naming the argument. A panic inside the library never crosses into C: it becomes
//!   `GR_ERR_PANIC`.
//! - Strings the library returns through `char **` out-params are freed with `gr_free`;
//!   `gr_pool` with `gr_pool_free`; `gr_response` with `gr_response_free`; `gr_error` with
//!   `gr_error_free`; `gr_stream` with `gr_stream_free`; `gr_cancel` with `gr_cancel_free`. Freeing NULL does nothing. `const char *` results are borrowed or static,
//!   as each function says: do not free them.
//! - Raw pointers are handled only in `ptr.rs`; the bodies here get references and out slots.
//!
//! Thread safety: every function may be called from any thread. A `gr_pool` may be used by many
//! threads at once (it is shared state by design); it must not be freed while a call on it is
//! running. A `gr_error` is immutable once returned.

pub mod call;
pub mod error;
pub mod forward;
mod guard;
mod ptr;
pub mod response;
pub mod stream;

use crate::pool::{CallOptions, Pool};
use crate::{metrics, Config};
use error::{gr_error, gr_status};
use guard::{guard, guard_void, Failure};
use ptr::{c_str, free_handle, free_string, into_handle, opt_c_str, try_ref, Out};
use response::gr_response;
use std::ffi::{c_char, c_void, CString};

/// The library's major version (Cargo package version).
pub const GR_VERSION_MAJOR: u32 = 0;
/// The library's minor version.
pub const GR_VERSION_MINOR: u32 = 2;
/// The library's patch version.
pub const GR_VERSION_PATCH: u32 = 0;

/// A pool of Gemini API keys with its HTTP client. Create with `gr_pool_new`, free with
/// `gr_pool_free`.
///
/// Thread safety: safe to use from many threads at once; free it only when no call is running.
#[allow(non_camel_case_types)]
pub struct gr_pool {
    pool: Pool,
}

/// The library version, e.g. "0.2.0". Static: do not free.
#[no_mangle]
pub extern "C" fn gr_version() -> *const c_char {
    static VERSION: &std::ffi::CStr = match std::ffi::CStr::from_bytes_with_nul(
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes(),
    ) {
        Ok(v) => v,
        Err(_) => c"unknown",
    };
    VERSION.as_ptr()
}

/// Creates a key pool.
///
/// `config_json` NULL: read the environment (`GEMINI_FREE_KEYS`, `GEMINI_PAID_KEY`,
/// `GEMINI_FREE_RATE_LIMIT`, `GEMINI_PAID_RATE_LIMIT`, `GEMINI_RATE_WINDOW_MS`, `GEMINI_BASE_URL`,
/// `GEMINI_MODEL`, `GEMINI_TIMEOUT_MS`, ...). Otherwise a JSON object with the same settings in
/// lower case (`{"free_keys": ["k1", "k2"], "paid_key": "k3", "free_rate_limit": 60, ...}`); the
/// environment is then not read. Unknown fields are errors.
///
/// On `GR_OK`, `*out_pool` receives the pool (free with `gr_pool_free`). Errors:
/// `GR_ERR_CONFIG` (names the variable or field), `GR_ERR_INVALID_JSON`, `GR_ERR_INVALID_UTF8`,
/// `GR_ERR_NULL_ARGUMENT` (`out_pool`), `GR_ERR_STATE`.
///
/// # Safety
/// Every pointer argument is NULL or valid as described above: strings NUL-terminated,
/// handles and out-params from this library or the caller's own live memory.
#[no_mangle]
pub unsafe extern "C" fn gr_pool_new(
    config_json: *const c_char,
    out_pool: *mut *mut gr_pool,
    out_error: *mut *mut gr_error,
) -> gr_status {
    guard(out_error, || {
        // SAFETY (both): per the contract above.
        let out_pool = unsafe { Out::new(out_pool, "out_pool")? };
        let config = match unsafe { opt_c_str(config_json, "config_json")? } {
            None => Config::from_env()?,
            Some(json) => Config::from_json(json)?,
        };
        out_pool.write(into_handle(gr_pool {
            pool: Pool::new(config)?,
        }));
        Ok(())
    })
}

/// Frees a pool. Freeing NULL does nothing. No call on the pool may be running.
///
/// # Safety
/// Every pointer argument is NULL or valid as described above: strings NUL-terminated,
/// handles and out-params from this library or the caller's own live memory.
#[no_mangle]
pub unsafe extern "C" fn gr_pool_free(pool: *mut gr_pool) {
    // SAFETY: per the contract above.
    guard_void(|| unsafe { free_handle(pool) })
}

/// Sends one `generateContent` request through the pool, on the key the pool chooses.
///
/// - `model`: the model name (e.g. "gemini-3.6-flash"), or NULL for the pool's default.
/// - `request_json`: a GenerateContentRequest JSON object, sent to the service untouched.
/// - `max_wait_ms`: when every key is at its limit, wait up to this long for one (0: fail at
///   once with `GR_ERR_ALL_KEYS_RATE_LIMITED`).
/// - `timeout_ms`: the call's time budget, retries included; 0 for the pool's
///   (`GEMINI_TIMEOUT_MS`). It can shorten the pool's budget, not lengthen it.
///
/// On `GR_OK`, `*out_response` receives a `gr_response` (free it with `gr_response_free`):
/// `gr_response_body` gives the service's response JSON as received, as pointer and length
/// (a NUL byte in it is data), `gr_response_key_fingerprint` the key that served it,
/// `gr_response_attempts` the HTTP attempts it took. A response blocked for safety is a
/// success.
///
/// Changed after 0.1.0 (the ABI may change before 1.0): the answer and the fingerprint came in
/// two `char **` out-params, and a NUL byte in an answer was an error.
///
/// Errors: `GR_ERR_ALL_KEYS_RATE_LIMITED` (message contains "all API keys have reached their
/// rate limits"; see `gr_error_retry_after_ms`), `GR_ERR_NO_USABLE_KEYS`, `GR_ERR_API` (the
/// service's error: `gr_error_http_status`, `gr_error_rpc_status`), `GR_ERR_TRANSPORT`,
/// `GR_ERR_TIMEOUT`, `GR_ERR_INVALID_JSON` / `GR_ERR_INVALID_UTF8` (`request_json`),
/// `GR_ERR_INVALID_ARGUMENT` (`model`), `GR_ERR_NULL_ARGUMENT`.
///
/// Thread safety: call it from as many threads as you like on one pool.
///
/// # Safety
/// Every pointer argument is NULL or valid as described above: strings NUL-terminated,
/// handles and out-params from this library or the caller's own live memory.
#[no_mangle]
pub unsafe extern "C" fn gr_generate(
    pool: *const gr_pool,
    model: *const c_char,
    request_json: *const c_char,
    max_wait_ms: u64,
    timeout_ms: u64,
    out_response: *mut *mut gr_response,
    out_error: *mut *mut gr_error,
) -> gr_status {
    guard(out_error, || {
        // SAFETY (all four): per the contract above.
        let pool = unsafe { try_ref(pool, "pool")? };
        let out_response = unsafe { Out::new(out_response, "out_response")? };
        let model = unsafe { opt_c_str(model, "model")? };
        let request = unsafe { c_str(request_json, "request_json")? };
        let options = CallOptions {
            model: model.map(str::to_string),
            max_wait_ms,
            timeout_ms: (timeout_ms > 0).then_some(timeout_ms),
        };
        let response = pool.pool.generate(request, &options)?;
        out_response.write(into_handle(gr_response::new(response)));
        Ok(())
    })
}

/// A JSON snapshot of the pool's statistics: per key (by fingerprint) its quota group, disabled
/// reason and counters, and per model the pool has used its group's requests in the window /
/// limit, requests today / daily limit, tokens in the window / token limit, cooldown and cause,
/// and whether the model is unavailable to it; per model the requests left today across all
/// keys and the fallbacks it served; pool-wide counters and the latency histogram. The schema
/// is in the README ("Observability"). On `GR_OK`, `*out_json` receives it; free it with
/// `gr_free`.
///
/// # Safety
/// Every pointer argument is NULL or valid as described above: strings NUL-terminated,
/// handles and out-params from this library or the caller's own live memory.
#[no_mangle]
pub unsafe extern "C" fn gr_stats_json(
    pool: *const gr_pool,
    out_json: *mut *mut c_char,
    out_error: *mut *mut gr_error,
) -> gr_status {
    guard(out_error, || {
        // SAFETY (both): per the contract above.
        let pool = unsafe { try_ref(pool, "pool")? };
        let out_json = unsafe { Out::new(out_json, "out_json")? };
        out_json.write_string(metrics::snapshot_json(&pool.pool)?, "statistics")
    })
}

/// The fingerprint the library shows for `key` (12 hex digits), so that a program can match
/// statistics and errors to its keys without printing them. Surrounding white space is trimmed
/// first, as the configuration trims keys. Free the result with `gr_free`.
///
/// # Safety
/// Every pointer argument is NULL or valid as described above: strings NUL-terminated,
/// handles and out-params from this library or the caller's own live memory.
#[no_mangle]
pub unsafe extern "C" fn gr_key_fingerprint(
    key: *const c_char,
    out_fingerprint: *mut *mut c_char,
    out_error: *mut *mut gr_error,
) -> gr_status {
    guard(out_error, || {
        // SAFETY (both): per the contract above.
        let out_fingerprint = unsafe { Out::new(out_fingerprint, "out_fingerprint")? };
        let key = unsafe { c_str(key, "key")? };
        out_fingerprint.write_string(crate::key::fingerprint(key.trim()), "fingerprint")
    })
}

/// The pool's statistics in the Prometheus text exposition format (version 0.0.4), ready to
/// serve on a `/metrics` page: `_total` counters, seconds, `key` (fingerprint) and `tier`
/// labels. With shared state the figures cover every process on the host. On `GR_OK`,
/// `*out_text` receives it; free it with `gr_free`.
///
/// # Safety
/// Every pointer argument is NULL or valid as described above: strings NUL-terminated,
/// handles and out-params from this library or the caller's own live memory.
#[no_mangle]
pub unsafe extern "C" fn gr_metrics_prometheus(
    pool: *const gr_pool,
    out_text: *mut *mut c_char,
    out_error: *mut *mut gr_error,
) -> gr_status {
    guard(out_error, || {
        // SAFETY (both): per the contract above.
        let pool = unsafe { try_ref(pool, "pool")? };
        let out_text = unsafe { Out::new(out_text, "out_text")? };
        out_text.write_string(
            metrics::prometheus(&metrics::snapshot(&pool.pool)?),
            "metrics",
        )
    })
}

/// Receives log events: `level` is 1 (error), 2 (warn), 3 (info) or 4 (debug); `event_json` is
/// one JSON object (`{"level":"warn","event":"key_cooldown","key":"<fingerprint>",...}`),
/// borrowed for the duration of the call. Called on the thread that caused the event, possibly
/// many at once: it must be thread-safe and must not call back into the pool.
#[allow(non_camel_case_types)]
pub type gr_log_fn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, level: i32, event_json: *const c_char)>;

struct UserData(*mut c_void);
// SAFETY: the caller of gr_set_log_callback promises the callback is thread-safe with it.
unsafe impl Send for UserData {}
unsafe impl Sync for UserData {}

impl UserData {
    // A method, so that closures capture the whole (Send + Sync) wrapper, not its raw field.
    fn get(&self) -> *mut c_void {
        self.0
    }
}

/// Sends log events to `callback` (with `user_data`) instead of stderr; NULL restores stderr.
/// It returns once no call of the previous callback is running, so the previous `user_data`
/// may be freed then. The callback must not call `gr_set_log_callback` itself. Which events are
/// emitted is set by `gr_set_log_level` or `GEMINI_ROTATOR_LOG` (process-wide; a pool created
/// with `GEMINI_ROTATOR_LOG` or a `log` field sets the process-wide level).
///
/// # Safety
/// Every pointer argument is NULL or valid as described above: strings NUL-terminated,
/// handles and out-params from this library or the caller's own live memory.
#[no_mangle]
pub unsafe extern "C" fn gr_set_log_callback(callback: gr_log_fn, user_data: *mut c_void) {
    guard_void(|| match callback {
        None => crate::log::set_sink(None),
        Some(cb) => {
            let user = UserData(user_data);
            crate::log::set_sink(Some(std::sync::Arc::new(move |level, json: &str| {
                let Ok(json) = CString::new(json) else { return };
                // SAFETY: the callback's contract above.
                unsafe { cb(user.get(), level as i32, json.as_ptr()) };
            })));
        }
    })
}

/// Sets the most detailed log level emitted, process-wide: 0 off (the default), 1 error,
/// 2 warn, 3 info, 4 debug. Anything else is `GR_ERR_INVALID_ARGUMENT`.
///
/// # Safety
/// Every pointer argument is NULL or valid as described above: strings NUL-terminated,
/// handles and out-params from this library or the caller's own live memory.
#[no_mangle]
pub unsafe extern "C" fn gr_set_log_level(level: i32, out_error: *mut *mut gr_error) -> gr_status {
    use crate::log::Level;
    guard(out_error, || {
        let level = match level {
            0 => None,
            1 => Some(Level::Error),
            2 => Some(Level::Warn),
            3 => Some(Level::Info),
            4 => Some(Level::Debug),
            other => {
                return Err(Failure::new(
                    gr_status::GR_ERR_INVALID_ARGUMENT,
                    format!("argument `level` must be 0 to 4, got {other}"),
                ))
            }
        };
        crate::log::set_level(level);
        Ok(())
    })
}

/// Frees a string the library returned through a `char **` out-param (a `gr_response` has
/// `gr_response_free`). Freeing NULL does nothing. Never pass it memory from anywhere else,
/// and never free library strings with `free()`.
///
/// # Safety
/// Every pointer argument is NULL or valid as described above: strings NUL-terminated,
/// handles and out-params from this library or the caller's own live memory.
#[no_mangle]
pub unsafe extern "C" fn gr_free(s: *mut c_char) {
    // SAFETY: per the contract above.
    guard_void(|| unsafe { free_string(s) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_matches_cargo() {
        // SAFETY: static string.
        let v = unsafe { std::ffi::CStr::from_ptr(gr_version()) }
            .to_str()
            .unwrap();
        assert_eq!(v, env!("CARGO_PKG_VERSION"));
        let parts: Vec<u32> = v.split('.').map(|p| p.parse().unwrap()).collect();
        assert_eq!(
            parts,
            [GR_VERSION_MAJOR, GR_VERSION_MINOR, GR_VERSION_PATCH]
        );
    }

    #[test]
    fn every_status_is_named_by_its_identifier() {
        let name = |n: i32| {
            // SAFETY: static string.
            unsafe { std::ffi::CStr::from_ptr(error::gr_status_name(n)) }
                .to_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(gr_status::ALL.len(), 17);
        for status in gr_status::ALL {
            // Debug prints the identifier on its own: an independent derivation.
            assert_eq!(name(*status as i32), format!("{status:?}"));
            assert_eq!(gr_status::from_number(*status as i32), Some(*status));
        }
        for unknown in [-1, 16, 99, 101, i32::MIN, i32::MAX] {
            assert_eq!(name(unknown), "GR_UNKNOWN_STATUS");
        }
    }

    #[test]
    fn a_panic_becomes_a_status_not_an_unwind() {
        let mut err: *mut gr_error = std::ptr::null_mut();
        let status = guard(&mut err, || panic!("boom"));
        assert_eq!(status, gr_status::GR_ERR_PANIC);
        // SAFETY: `err` was set by guard and is freed once.
        unsafe {
            let msg = std::ffi::CStr::from_ptr(error::gr_error_message(err));
            assert!(msg.to_str().unwrap().contains("boom"));
            error::gr_error_free(err);
        }
    }
}
