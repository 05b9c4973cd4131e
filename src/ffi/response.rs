//! The result of a successful call, as one object with accessors: the answer's bytes (pointer
//! and length, so a NUL byte in the answer is data), the key that served it, the attempts it
//! took, the model that served it. New facts about a call (the model that served it, ...) become new accessors, never a
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
    model: CString,
    /// The service's HTTP status: 200 but for a forwarded request (`gr_forward`).
    http_status: u16,
    /// A forwarded answer's `content-type` and `x-goog-upload-*` headers.
    headers: Vec<(String, CString)>,
}

impl gr_response {
    pub fn new(response: Response) -> gr_response {
        // One copy at most (none when the body's buffer is not shared), then the NUL.
        let mut body = Vec::from(response.body);
        body.push(0);
        gr_response {
            body,
            // A fingerprint is 12 hex digits: never a NUL.
            key_fingerprint: CString::new(response.key_fingerprint).unwrap_or_default(),
            attempts: response.attempts,
            // A model name is checked to be letters, digits, '-', '.', '_': never a NUL.
            model: CString::new(response.model).unwrap_or_default(),
            http_status: 200,
            headers: Vec::new(),
        }
    }

    /// A forwarded request's answer, with its status and headers.
    pub fn forwarded(forwarded: crate::pool::Forwarded) -> gr_response {
        let mut response = gr_response::new(forwarded.response);
        response.http_status = forwarded.http_status;
        response.headers = forwarded
            .headers
            .into_iter()
            // A header value is visible ASCII: never a NUL.
            .filter_map(|(name, value)| Some((name, CString::new(value).ok()?)))
            .collect();
        response
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
pub unsafe extern "C" fn gr_response_key_fingerprint(
    response: *const gr_response,
) -> *const c_char {
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

/// The model that served the call (without `models/`): the one asked for, or, when every key
/// was spent or cooling for it, the first of its configured fallbacks that could serve.
/// Borrowed: valid until `gr_response_free(response)`; do not free it. "" for a NULL
/// `response`.
///
/// # Safety
/// `response` is NULL or a live response from this library.
#[no_mangle]
pub unsafe extern "C" fn gr_response_model(response: *const gr_response) -> *const c_char {
    // SAFETY: per the contract above.
    unsafe { opt_ref(response) }.map_or(c"".as_ptr(), |r| r.model.as_ptr())
}

/// The service's HTTP status of the answer: 200 for `gr_generate`, `gr_call`, the models list
/// and stream events; for `gr_forward` the service's own 2xx status. 0 for a NULL `response`.
///
/// # Safety
/// `response` is NULL or a live response from this library.
#[no_mangle]
pub unsafe extern "C" fn gr_response_http_status(response: *const gr_response) -> u16 {
    // SAFETY: per the contract above.
    unsafe { opt_ref(response) }.map_or(0, |r| r.http_status)
}

/// A header of the service's answer, by `name` (case-insensitive), or NULL when the answer
/// had none of that name. Only a `gr_forward` answer has headers: its `content-type` and
/// `x-goog-upload-*` (the upload protocol's, e.g. `x-goog-upload-url`); any other response
/// answers NULL. A NULL `response` or `name` (or a `name` that is not UTF-8) answers NULL.
/// Borrowed: valid until `gr_response_free(response)`; do not free it.
///
/// # Safety
/// `response` is NULL or a live response from this library; `name` NULL or a NUL-terminated
/// string.
#[no_mangle]
pub unsafe extern "C" fn gr_response_header(
    response: *const gr_response,
    name: *const c_char,
) -> *const c_char {
    // SAFETY: per the contract above.
    let Some(r) = (unsafe { opt_ref(response) }) else {
        return std::ptr::null();
    };
    // SAFETY: per the contract above.
    let Ok(Some(name)) = (unsafe { super::ptr::opt_c_str(name, "name") }) else {
        return std::ptr::null();
    };
    r.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map_or(std::ptr::null(), |(_, v)| v.as_ptr())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::ptr::into_handle;

    #[test]
    fn the_body_is_pointer_and_length_with_nul_bytes_as_data() {
        let answer = b"{\"a\":\"x\0y\"}\0tail".to_vec();
        let handle = into_handle(gr_response::new(Response {
            body: answer.clone().into(),
            key_fingerprint: "0123456789ab".into(),
            attempts: 2,
            model: "gemini-3-flash".into(),
        }));
        let mut len = 0usize;
        // SAFETY: a live response, freed once at the end.
        unsafe {
            let body = gr_response_body(handle, &mut len);
            assert_eq!(std::slice::from_raw_parts(body.cast::<u8>(), len), answer);
            assert_eq!(*body.add(len), 0, "one NUL follows the answer");
            assert_eq!(gr_response_body(handle, std::ptr::null_mut()), body);
            let fp = std::ffi::CStr::from_ptr(gr_response_key_fingerprint(handle));
            assert_eq!(fp.to_str().unwrap(), "0123456789ab");
            assert_eq!(gr_response_attempts(handle), 2);
            let model = std::ffi::CStr::from_ptr(gr_response_model(handle));
            assert_eq!(model.to_str().unwrap(), "gemini-3-flash");
            gr_response_free(handle);
        }
    }

    #[test]
    fn accessors_answer_null_with_empty_values() {
        let mut len = 7usize;
        // SAFETY: NULL is allowed by every accessor.
        unsafe {
            assert_eq!(*gr_response_body(std::ptr::null(), &mut len), 0);
            assert_eq!(len, 0);
            assert_eq!(*gr_response_key_fingerprint(std::ptr::null()), 0);
            assert_eq!(gr_response_attempts(std::ptr::null()), 0);
            assert_eq!(*gr_response_model(std::ptr::null()), 0);
            gr_response_free(std::ptr::null_mut());
        }
    }
}
