//! The result of a successful call, as one object with accessors: the answer's bytes (pointer
//! and length, so a NUL byte in the answer is data), the key that served it, the attempts it
//! took. New facts about a call (the model that served it, ...) become new accessors, never a
//! new signature of the calls that return it.

use super::ptr::{free_handle, opt_ref, Out};
use crate::pool::Response;
use std::ffi::{c_char, CString};

/// A successful call's result: the service's answer and how it was obtained. Returned by
/// `gr_generate`, read with the `gr_response_*` functions, freed with `gr_response_free`.
///
/// Later versions add accessors for more facts about the call; the functions that return a
/// `gr_response` keep their signatures.
///
/// Thread safety: a response is immutable; it may be read from any thread.
#[allow(non_camel_case_types)]
pub struct gr_response {
    /// The answer followed by one NUL byte that is not part of it (see `gr_response_body`).
    body: Vec<u8>,
    key_fingerprint: CString,
    attempts: u32,
}

impl gr_response {
    pub fn new(response: Response) -> gr_response {
        let mut body = response.body;
        body.push(0);
        gr_response {
            body,
            // A fingerprint is 12 hex digits: never a NUL.
            key_fingerprint: CString::new(response.key_fingerprint).unwrap_or_default(),
            attempts: response.attempts,
        }
    }
}

/// The service's answer (for `gr_generate`: the GenerateContentResponse JSON), byte for byte as
/// received. `*out_len` (when `out_len` is not NULL) receives its length in bytes. The answer
/// may contain NUL bytes: they are data, counted in the length. One NUL byte follows the answer
/// (not counted), so an answer without NUL bytes may also be read as a C string.
///
/// Borrowed: valid until `gr_response_free(response)`; do not free it. For a NULL `response`:
/// "" and length 0.
///
/// # Safety
/// `response` is NULL or a live response from this library; `out_len` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn gr_response_body(
    response: *const gr_response,
    out_len: *mut usize,
) -> *const c_char {
    // SAFETY: per the contract above.
    let (body, len) = match unsafe { opt_ref(response) } {
        // `body` always ends with the NUL that `new` added.
        Some(r) => (r.body.as_ptr().cast::<c_char>(), r.body.len() - 1),
        None => (c"".as_ptr(), 0),
    };
    // SAFETY: per the contract above.
    if let Some(out) = unsafe { Out::optional(out_len) } {
        out.write(len);
    }
    body
}

/// The fingerprint (12 hex digits) of the key that served the call. Borrowed: valid until
/// `gr_response_free(response)`; do not free it. "" for a NULL `response`.
///
/// # Safety
/// `response` is NULL or a live response from this library.
#[no_mangle]
pub unsafe extern "C" fn gr_response_key_fingerprint(response: *const gr_response) -> *const c_char {
    // SAFETY: per the contract above.
    unsafe { opt_ref(response) }.map_or(c"".as_ptr(), |r| r.key_fingerprint.as_ptr())
}

/// The HTTP attempts the call took: 1 when nothing went wrong, more after retries or moves to
/// another key. 0 for a NULL `response`.
///
/// # Safety
/// `response` is NULL or a live response from this library.
#[no_mangle]
pub unsafe extern "C" fn gr_response_attempts(response: *const gr_response) -> u32 {
    // SAFETY: per the contract above.
    unsafe { opt_ref(response) }.map_or(0, |r| r.attempts)
}

/// Frees a response (and with it what its accessors returned). Freeing NULL does nothing.
///
/// # Safety
/// `response` is NULL or a response from this library not yet freed.
#[no_mangle]
pub unsafe extern "C" fn gr_response_free(response: *mut gr_response) {
    // SAFETY: per the contract above.
    super::guard::guard_void(|| unsafe { free_handle(response) })
}
