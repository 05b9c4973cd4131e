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
//!   `gr_pool` with `gr_pool_free`; `gr_error` with `gr_error_free`. Freeing NULL does nothing.
//!   `const char *` results are borrowed or static, as each function says: do not free them.
//!
//! Thread safety: every function may be called from any thread. A `gr_pool` may be used by many
//! threads at once (it is shared state by design); it must not be freed while a call on it is
//! running. A `gr_error` is immutable once returned.

pub mod error;
mod guard;

use crate::pool::{CallOptions, Pool};
use crate::{metrics, Config};
use error::{gr_error, gr_status};
use guard::{c_str, guard, guard_void, non_null, opt_c_str, to_c, Failure};
use std::ffi::{c_char, c_void, CString};

/// The library's major version (Cargo package version).
pub const GR_VERSION_MAJOR: u32 = 0;
/// The library's minor version.
pub const GR_VERSION_MINOR: u32 = 1;
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

/// The library version, e.g. "0.1.0". Static: do not free.
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
        non_null(out_pool, "out_pool")?;
        // SAFETY: NULL or a NUL-terminated string, per the contract above.
        let config = match unsafe { opt_c_str(config_json, "config_json")? } {
            None => Config::from_env()?,
            Some(json) => Config::from_json(json)?,
        };
        let pool = Pool::new(config)?;
        // SAFETY: checked non-NULL above.
        unsafe { *out_pool = Box::into_raw(Box::new(gr_pool { pool })) };
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
    guard_void(|| {
        if !pool.is_null() {
            // SAFETY: a pointer gr_pool_new returned, freed once.
            drop(unsafe { Box::from_raw(pool) });
        }
    })
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
/// On `GR_OK`: `*out_response_json` receives the service's response JSON as received, and
/// `*out_key_fingerprint` (if not NULL) the fingerprint of the key that served it; free both
/// with `gr_free`. A response blocked for safety is a success.
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
    out_response_json: *mut *mut c_char,
    out_key_fingerprint: *mut *mut c_char,
    out_error: *mut *mut gr_error,
) -> gr_status {
    guard(out_error, || {
        non_null(pool, "pool")?;
        non_null(out_response_json, "out_response_json")?;
        // SAFETY: per the contract above.
        let (model, request) = unsafe {
            (
                opt_c_str(model, "model")?,
                c_str(request_json, "request_json")?,
            )
        };
        let options = CallOptions {
            model: model.map(str::to_string),
            max_wait_ms,
            timeout_ms: (timeout_ms > 0).then_some(timeout_ms),
        };
        // SAFETY: a live pool from gr_pool_new.
        let pool = unsafe { &(*pool).pool };
        let response = pool.generate(request, &options)?;
        let fingerprint = if out_key_fingerprint.is_null() {
            None
        } else {
            Some(to_c(response.key_fingerprint, "fingerprint")?)
        };
        let body = match CString::new(response.body) {
            Ok(b) => b.into_raw(),
            Err(_) => {
                if let Some(fp) = fingerprint {
                    // SAFETY: a string this library just made.
                    unsafe { gr_free(fp) };
                }
                // Not a bug of ours: the service sent what a C string cannot carry.
                return Err(Failure::new(
                    gr_status::GR_ERR_API,
                    "the service's answer contains a NUL byte, which a C string cannot carry",
                ));
            }
        };
        // SAFETY: checked non-NULL above (the fingerprint only when wanted).
        unsafe {
            *out_response_json = body;
            if let Some(fp) = fingerprint {
                *out_key_fingerprint = fp;
            }
        }
        Ok(())
    })
}

/// A JSON snapshot of the pool's statistics: per key (by fingerprint) its limit, current use of
/// the window, cooldown, disabled reason and counters; pool-wide counters and the latency
/// histogram. On `GR_OK`, `*out_json` receives it; free it with `gr_free`.
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
        non_null(pool, "pool")?;
        non_null(out_json, "out_json")?;
        // SAFETY: a live pool from gr_pool_new.
        let json = metrics::snapshot_json(unsafe { &(*pool).pool })?;
        let json = to_c(json, "statistics")?;
        // SAFETY: checked non-NULL above.
        unsafe { *out_json = json };
        Ok(())
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
        non_null(out_fingerprint, "out_fingerprint")?;
        // SAFETY: per the contract above.
        let key = unsafe { c_str(key, "key")? };
        let fp = to_c(crate::key::fingerprint(key.trim()), "fingerprint")?;
        // SAFETY: checked non-NULL above.
        unsafe { *out_fingerprint = fp };
        Ok(())
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
        non_null(pool, "pool")?;
        non_null(out_text, "out_text")?;
        // SAFETY: a live pool from gr_pool_new.
        let text = metrics::prometheus(&metrics::snapshot(unsafe { &(*pool).pool })?);
        let text = to_c(text, "metrics")?;
        // SAFETY: checked non-NULL above.
        unsafe { *out_text = text };
        Ok(())
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

/// Frees a string the library returned through a `char **` out-param. Freeing NULL does
/// nothing. Never pass it memory from anywhere else, and never free library strings with
/// `free()`.
///
/// # Safety
/// Every pointer argument is NULL or valid as described above: strings NUL-terminated,
/// handles and out-params from this library or the caller's own live memory.
#[no_mangle]
pub unsafe extern "C" fn gr_free(s: *mut c_char) {
    guard_void(|| {
        if !s.is_null() {
            // SAFETY: a string this library returned (CString::into_raw), freed once.
            drop(unsafe { CString::from_raw(s) });
        }
    })
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
