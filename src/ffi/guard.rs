//! The boundary every `extern "C"` function goes through: a panic catcher, so that no panic
//! ever unwinds into C, and the one place a failure becomes a status and a `gr_error`.

use super::error::{gr_error, gr_status};
use super::ptr::{into_handle, Out};
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
    // SAFETY: every caller passes the `gr_error **` of its own caller: NULL or valid.
    if let Some(out) = unsafe { Out::optional(out_error) } {
        out.write(into_handle(failure.error));
    }
    failure.status
}

/// Runs a function that cannot fail (a destructor) without letting a panic cross into C.
pub fn guard_void(body: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(body));
}
