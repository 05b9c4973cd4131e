//! The boundary every `extern "C"` function goes through: argument checks that name the
//! argument, and a panic catcher, so that no panic ever unwinds into C.

use super::error::{gr_error, gr_status};
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A failure on its way to C: the status and its message.
pub struct Failure {
    pub status: gr_status,
    pub error: gr_error,
}

impl Failure {
    pub fn new(status: gr_status, message: impl Into<String>) -> Failure {
        Failure {
            status,
            error: gr_error::new(status, message.into()),
        }
    }
}

impl From<crate::Error> for Failure {
    fn from(e: crate::Error) -> Failure {
        let error = gr_error::from_error(&e);
        Failure {
            status: error.status,
            error,
        }
    }
}

/// Runs `body`; on failure or panic stores a `gr_error` in `out_error` (when not NULL) and
/// returns its status.
pub fn guard(
    out_error: *mut *mut gr_error,
    body: impl FnOnce() -> Result<(), Failure>,
) -> gr_status {
    let failure = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return gr_status::GR_OK,
        Ok(Err(failure)) => failure,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Failure::new(
                gr_status::GR_ERR_PANIC,
                format!("internal error (a bug in gemini-rotator): {what}"),
            )
        }
    };
    if !out_error.is_null() {
        // SAFETY: the caller passes a valid `gr_error **` or NULL.
        unsafe { *out_error = Box::into_raw(Box::new(failure.error)) };
    }
    failure.status
}

/// Runs a function that cannot fail (a destructor) without letting a panic cross into C.
pub fn guard_void(body: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(body));
}

/// Checks that an argument pointer is not NULL.
pub fn non_null<T>(ptr: *const T, name: &str) -> Result<(), Failure> {
    if ptr.is_null() {
        Err(Failure::new(
            gr_status::GR_ERR_NULL_ARGUMENT,
            format!("argument `{name}` is NULL"),
        ))
    } else {
        Ok(())
    }
}

/// Reads a NUL-terminated UTF-8 string argument.
///
/// # Safety
/// `ptr` must be NULL or point to a NUL-terminated string valid for the call.
pub unsafe fn c_str<'a>(ptr: *const c_char, name: &str) -> Result<&'a str, Failure> {
    non_null(ptr, name)?;
    CStr::from_ptr(ptr).to_str().map_err(|e| {
        Failure::new(
            gr_status::GR_ERR_INVALID_UTF8,
            format!(
                "argument `{name}` is not valid UTF-8 (bad byte at offset {})",
                e.valid_up_to()
            ),
        )
    })
}

/// Like [`c_str`], but NULL is `None`.
///
/// # Safety
/// As for [`c_str`].
pub unsafe fn opt_c_str<'a>(ptr: *const c_char, name: &str) -> Result<Option<&'a str>, Failure> {
    if ptr.is_null() {
        Ok(None)
    } else {
        c_str(ptr, name).map(Some)
    }
}

/// A string for C, to be freed with `gr_free`. Interior NULs (impossible in JSON output and
/// fingerprints) are reported rather than truncated.
pub fn to_c(s: String, what: &str) -> Result<*mut c_char, Failure> {
    CString::new(s).map(CString::into_raw).map_err(|_| {
        Failure::new(
            gr_status::GR_ERR_PANIC,
            format!("{what} contains a NUL byte"),
        )
    })
}
