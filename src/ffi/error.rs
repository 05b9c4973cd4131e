//! Statuses and the error object that carries the details of a failure to C.

use super::ptr::{free_handle, opt_ref};
use crate::Error;
use std::ffi::{c_char, CStr, CString};

/// Derives, from the variant identifiers, every status's name (`name`), the list of all
/// statuses (`ALL`) and the reverse of `as i32` (`from_number`).
macro_rules! status_names {
    ($enum:ident { $($variant:ident),+ $(,)? }) => {
        impl $enum {
            /// Every status, in declaration order.
            pub const ALL: &'static [$enum] = &[$($enum::$variant),+];

            /// The variant's own identifier, as a static C string.
            pub fn name(self) -> &'static CStr {
                match self {
                    $($enum::$variant => {
                        // Evaluated at compile time: an identifier never contains a NUL.
                        const NAME: &CStr = match CStr::from_bytes_with_nul(
                            concat!(stringify!($variant), "\0").as_bytes(),
                        ) {
                            Ok(name) => name,
                            Err(_) => panic!("a status name contains a NUL byte"),
                        };
                        NAME
                    })+
                }
            }

            /// The status whose number is `n`, if there is one.
            pub fn from_number(n: i32) -> Option<$enum> {
                $enum::ALL.iter().copied().find(|s| *s as i32 == n)
            }
        }
    };
}

/// What a `gr_*` call did. The numbers are part of the ABI: never reused, never renumbered.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum gr_status {
    /// Success; the out-params are written.
    GR_OK = 0,
    /// A required pointer argument was NULL (the message names it).
    GR_ERR_NULL_ARGUMENT = 1,
    /// A string argument was not valid UTF-8 (the message names it).
    GR_ERR_INVALID_UTF8 = 2,
    /// A JSON argument did not parse (the message names it and says where).
    GR_ERR_INVALID_JSON = 3,
    /// An argument had a bad value (the message names it).
    GR_ERR_INVALID_ARGUMENT = 4,
    /// The configuration is invalid (the message names the variable or field).
    GR_ERR_CONFIG = 5,
    /// No key can admit the request now: "all API keys have reached their rate limits".
    /// `gr_error_retry_after_ms` says when one can.
    GR_ERR_ALL_KEYS_RATE_LIMITED = 6,
    /// Every key of the pool is disabled (invalid, leaked, suspended, API disabled).
    GR_ERR_NO_USABLE_KEYS = 7,
    /// The Gemini API answered with an error for the caller (see `gr_error_http_status`,
    /// `gr_error_rpc_status`), or kept failing after the allowed retries.
    GR_ERR_API = 8,
    /// The connection failed after the allowed retries.
    GR_ERR_TRANSPORT = 9,
    /// The call's time budget ran out.
    GR_ERR_TIMEOUT = 10,
    /// The shared state store is unusable.
    GR_ERR_STATE = 11,
    /// Not an error: `gr_stream_next` reached the normal end of the stream (its last event,
    /// with `finishReason`, was delivered before).
    GR_STREAM_END = 12,
    /// The call was cancelled (`gr_cancel_trigger`) or its stream closed (`gr_stream_close`)
    /// while it was running.
    GR_ERR_CANCELLED = 13,
    /// A stream ended without `finishReason`: the events delivered are an incomplete answer.
    GR_ERR_INCOMPLETE_STREAM = 14,
    /// No key of the pool has the model (nor any of its configured fallbacks): the service
    /// answered "limit: 0", the model is not on their tier. Not a rate limit: waiting does not
    /// help; the message names the model.
    GR_ERR_MODEL_UNAVAILABLE = 15,
    /// A bug in the library: a panic was caught at the boundary.
    GR_ERR_PANIC = 100,
}

// The names and the number check come from the variants themselves. cbindgen reads the enum
// above as a plain item (it expands no macro but `bitflags!`), so the enum cannot live inside
// a macro; instead this list is held to it by the compiler: the `match` in `name` is
// exhaustive, so a variant missing here does not compile, and each name is its identifier.
status_names!(gr_status {
    GR_OK,
    GR_ERR_NULL_ARGUMENT,
    GR_ERR_INVALID_UTF8,
    GR_ERR_INVALID_JSON,
    GR_ERR_INVALID_ARGUMENT,
    GR_ERR_CONFIG,
    GR_ERR_ALL_KEYS_RATE_LIMITED,
    GR_ERR_NO_USABLE_KEYS,
    GR_ERR_API,
    GR_ERR_TRANSPORT,
    GR_ERR_TIMEOUT,
    GR_ERR_STATE,
    GR_STREAM_END,
    GR_ERR_CANCELLED,
    GR_ERR_INCOMPLETE_STREAM,
    GR_ERR_MODEL_UNAVAILABLE,
    GR_ERR_PANIC,
});

/// The details of a failure. Created by the library, read with the `gr_error_*` functions,
/// freed with `gr_error_free`.
///
/// Thread safety: an error object is immutable; it may be read from any thread.
#[allow(non_camel_case_types)]
pub struct gr_error {
    pub(crate) status: gr_status,
    pub(crate) message: CString,
    pub(crate) retry_after_ms: u64,
    pub(crate) http_status: u16,
    pub(crate) rpc_status: CString,
    pub(crate) api_message: CString,
    pub(crate) key_fingerprint: CString,
    /// For `GR_ERR_API`: the service's error body as received, then one NUL not part of it.
    pub(crate) api_body: Vec<u8>,
}

fn c_string(s: String) -> CString {
    CString::new(s.replace('\0', "\u{fffd}")).unwrap_or_default()
}

impl gr_error {
    pub fn new(status: gr_status, message: String) -> gr_error {
        gr_error {
            status,
            message: c_string(message),
            retry_after_ms: 0,
            http_status: 0,
            rpc_status: CString::default(),
            api_message: CString::default(),
            key_fingerprint: CString::default(),
            api_body: vec![0],
        }
    }

    pub fn from_error(e: &Error) -> gr_error {
        let status = match e {
            Error::Config { .. } => gr_status::GR_ERR_CONFIG,
            Error::InvalidJson { .. } => gr_status::GR_ERR_INVALID_JSON,
            Error::InvalidArgument { .. } => gr_status::GR_ERR_INVALID_ARGUMENT,
            Error::AllKeysRateLimited { .. } => gr_status::GR_ERR_ALL_KEYS_RATE_LIMITED,
            Error::NoUsableKeys { .. } => gr_status::GR_ERR_NO_USABLE_KEYS,
            Error::Api(_) => gr_status::GR_ERR_API,
            Error::Transport { .. } => gr_status::GR_ERR_TRANSPORT,
            Error::Timeout { .. } => gr_status::GR_ERR_TIMEOUT,
            Error::State { .. } => gr_status::GR_ERR_STATE,
            Error::ModelUnavailable { .. } => gr_status::GR_ERR_MODEL_UNAVAILABLE,
            Error::Cancelled => gr_status::GR_ERR_CANCELLED,
            Error::IncompleteStream { .. } => gr_status::GR_ERR_INCOMPLETE_STREAM,
        };
        let mut error = gr_error::new(status, e.to_string());
        error.retry_after_ms = e.retry_after_ms().unwrap_or(0);
        if let Error::Api(api) = e {
            error.http_status = api.http_status;
            error.rpc_status = c_string(api.rpc_status.clone());
            error.api_message = c_string(api.message.clone());
            error.key_fingerprint = c_string(api.key_fingerprint.clone().unwrap_or_default());
            error.api_body = Vec::with_capacity(api.body.len() + 1);
            error.api_body.extend_from_slice(&api.body);
            error.api_body.push(0);
        }
        error
    }
}

/// The status of an error (`GR_ERR_PANIC` for a NULL `error`).
///
/// # Safety
/// Every pointer argument is NULL or valid as described above: strings NUL-terminated,
/// handles and out-params from this library or the caller's own live memory.
#[no_mangle]
pub unsafe extern "C" fn gr_error_status(error: *const gr_error) -> gr_status {
    // SAFETY: NULL or a live error from this library.
    unsafe { opt_ref(error) }.map_or(gr_status::GR_ERR_PANIC, |e| e.status)
}

/// The error's message, one line, naming what was wrong. Never contains an API key.
/// Borrowed: valid until `gr_error_free(error)`; do not free it. "" for a NULL `error`.
///
/// # Safety
/// Every pointer argument is NULL or valid as described above: strings NUL-terminated,
/// handles and out-params from this library or the caller's own live memory.
#[no_mangle]
pub unsafe extern "C" fn gr_error_message(error: *const gr_error) -> *const c_char {
    // SAFETY: NULL or a live error from this library.
    unsafe { opt_ref(error) }.map_or(c"".as_ptr(), |e| e.message.as_ptr())
}

/// For `GR_ERR_ALL_KEYS_RATE_LIMITED`: milliseconds until a key can admit again (at least 1,
/// at most the rate window plus 1 ms unless a key is cooling down after a 429). 0 for any other
/// error.
///
/// # Safety
/// Every pointer argument is NULL or valid as described above: strings NUL-terminated,
/// handles and out-params from this library or the caller's own live memory.
#[no_mangle]
pub unsafe extern "C" fn gr_error_retry_after_ms(error: *const gr_error) -> u64 {
    // SAFETY: NULL or a live error from this library.
    unsafe { opt_ref(error) }.map_or(0, |e| e.retry_after_ms)
}

/// For `GR_ERR_API`: the HTTP status the service answered (e.g. 400). 0 otherwise.
///
/// # Safety
/// Every pointer argument is NULL or valid as described above: strings NUL-terminated,
/// handles and out-params from this library or the caller's own live memory.
#[no_mangle]
pub unsafe extern "C" fn gr_error_http_status(error: *const gr_error) -> u16 {
    // SAFETY: NULL or a live error from this library.
    unsafe { opt_ref(error) }.map_or(0, |e| e.http_status)
}

/// For `GR_ERR_API`: the RPC status of the error body (e.g. "INVALID_ARGUMENT"), "" if none.
/// Borrowed: valid until `gr_error_free(error)`; do not free it.
///
/// # Safety
/// Every pointer argument is NULL or valid as described above: strings NUL-terminated,
/// handles and out-params from this library or the caller's own live memory.
#[no_mangle]
pub unsafe extern "C" fn gr_error_rpc_status(error: *const gr_error) -> *const c_char {
    // SAFETY: NULL or a live error from this library.
    unsafe { opt_ref(error) }.map_or(c"".as_ptr(), |e| e.rpc_status.as_ptr())
}

/// For `GR_ERR_API`: the service's own message alone (keys redacted), without the status
/// prefix `gr_error_message` adds. "" otherwise. Borrowed: valid until `gr_error_free(error)`.
///
/// # Safety
/// Every pointer argument is NULL or valid as described above: strings NUL-terminated,
/// handles and out-params from this library or the caller's own live memory.
#[no_mangle]
pub unsafe extern "C" fn gr_error_api_message(error: *const gr_error) -> *const c_char {
    // SAFETY: NULL or a live error from this library.
    unsafe { opt_ref(error) }.map_or(c"".as_ptr(), |e| e.api_message.as_ptr())
}

/// For `GR_ERR_API`: the fingerprint of the key that received the answer. "" otherwise.
/// Borrowed: valid until `gr_error_free(error)`.
///
/// # Safety
/// Every pointer argument is NULL or valid as described above: strings NUL-terminated,
/// handles and out-params from this library or the caller's own live memory.
#[no_mangle]
pub unsafe extern "C" fn gr_error_key_fingerprint(error: *const gr_error) -> *const c_char {
    // SAFETY: NULL or a live error from this library.
    unsafe { opt_ref(error) }.map_or(c"".as_ptr(), |e| e.key_fingerprint.as_ptr())
}

/// For `GR_ERR_API`: the service's error body, byte for byte as received (the JSON
/// `{"error": {"code", "message", "status", "details": [...]}}` with every `details` entry),
/// so that a transport can hand the caller's SDK the service's own answer; any key of the
/// pool quoted in it is redacted. "" (length 0) for any other error, an error in the middle
/// of a stream that came without a body, or a NULL `error`. `*out_len` (when `out_len` is not
/// NULL) receives the length in bytes; one NUL byte follows the body (not counted).
/// Borrowed: valid until `gr_error_free(error)`; do not free it.
///
/// # Safety
/// `error` is NULL or a live error from this library; `out_len` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn gr_error_api_body(
    error: *const gr_error,
    out_len: *mut usize,
) -> *const c_char {
    // SAFETY: NULL or a live error from this library.
    let (body, len) = match unsafe { opt_ref(error) } {
        // `api_body` always ends with its NUL.
        Some(e) => (e.api_body.as_ptr().cast::<c_char>(), e.api_body.len() - 1),
        None => (c"".as_ptr(), 0),
    };
    // SAFETY: per the contract above.
    if let Some(out) = unsafe { super::ptr::Out::optional(out_len) } {
        out.write(len);
    }
    body
}

/// Frees an error. Freeing NULL does nothing.
///
/// # Safety
/// Every pointer argument is NULL or valid as described above: strings NUL-terminated,
/// handles and out-params from this library or the caller's own live memory.
#[no_mangle]
pub unsafe extern "C" fn gr_error_free(error: *mut gr_error) {
    // SAFETY: NULL or an error this library returned, freed once.
    super::guard::guard_void(|| unsafe { free_handle(error) })
}

/// The name of a `gr_status` value ("GR_ERR_API"), or "GR_UNKNOWN_STATUS" for a number that
/// is not one. Static: do not free. (Takes an `int32_t` so that any number is safe to pass.)
#[no_mangle]
pub extern "C" fn gr_status_name(status: i32) -> *const c_char {
    gr_status::from_number(status)
        .map_or(c"GR_UNKNOWN_STATUS", gr_status::name)
        .as_ptr()
}
