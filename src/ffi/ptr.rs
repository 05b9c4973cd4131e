//! Every raw pointer the C ABI receives is read, written or freed here and nowhere else, so
//! that each `extern "C"` function body deals in references, `Out` slots and owned values.
//!
//! The `unsafe fn`s here take the caller's word (each function's `# Safety` contract) that a
//! non-NULL pointer is valid; what they add is the NULL checks, named after the argument, and
//! the one place where each kind of pointer is turned into something safe.

use super::error::gr_status;
use super::guard::Failure;
use std::ffi::{c_char, CStr, CString};

/// The `GR_ERR_NULL_ARGUMENT` failure for argument `name`.
fn null(name: &str) -> Failure {
    Failure::new(
        gr_status::GR_ERR_NULL_ARGUMENT,
        format!("argument `{name}` is NULL"),
    )
}

/// The object behind a handle argument (`pool`, ...); NULL is `GR_ERR_NULL_ARGUMENT`.
///
/// # Safety
/// `ptr` is NULL or points to a live `T` this library handed out, for the whole call.
pub unsafe fn try_ref<'a, T>(ptr: *const T, name: &str) -> Result<&'a T, Failure> {
    // SAFETY: the caller's contract above.
    unsafe { ptr.as_ref() }.ok_or_else(|| null(name))
}

/// The object behind a handle argument of an accessor that answers NULL with a default.
///
/// # Safety
/// As for [`try_ref`].
pub unsafe fn opt_ref<'a, T>(ptr: *const T) -> Option<&'a T> {
    // SAFETY: the caller's contract above.
    unsafe { ptr.as_ref() }
}

/// An out-param: checked for NULL when the call starts, written once when it succeeds, so that
/// a failed call never leaves one half-written.
pub struct Out<T> {
    ptr: *mut T,
}

impl<T> Out<T> {
    /// A required out-param; NULL is `GR_ERR_NULL_ARGUMENT` naming it.
    ///
    /// # Safety
    /// `ptr` is NULL or valid for one write of a `T` for the whole call.
    pub unsafe fn new(ptr: *mut T, name: &str) -> Result<Out<T>, Failure> {
        if ptr.is_null() {
            Err(null(name))
        } else {
            Ok(Out { ptr })
        }
    }

    /// An optional out-param: `None` when the caller passed NULL (does not want the result).
    ///
    /// # Safety
    /// As for [`Out::new`].
    pub unsafe fn optional(ptr: *mut T) -> Option<Out<T>> {
        (!ptr.is_null()).then_some(Out { ptr })
    }

    /// Writes the result. Whatever the slot held is overwritten, not dropped: it is the
    /// caller's memory, not a value of ours.
    pub fn write(self, value: T) {
        // SAFETY: non-NULL and valid for a write, as promised to `new`/`optional`.
        unsafe { self.ptr.write(value) }
    }
}

impl Out<*mut c_char> {
    /// Writes `s` as a string for C (freed with `gr_free`).
    pub fn write_string(self, s: String, what: &str) -> Result<(), Failure> {
        self.write(to_c(s, what)?);
        Ok(())
    }
}

/// A NUL-terminated UTF-8 string argument.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string valid for the call.
pub unsafe fn c_str<'a>(ptr: *const c_char, name: &str) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(null(name));
    }
    // SAFETY: non-NULL and NUL-terminated per the contract above.
    unsafe { CStr::from_ptr(ptr) }.to_str().map_err(|e| {
        Failure::new(
            gr_status::GR_ERR_INVALID_UTF8,
            format!(
                "argument `{name}` is not valid UTF-8 (bad byte at offset {})",
                e.valid_up_to()
            ),
        )
    })
}

/// A byte-buffer argument given as pointer and length: NULL is allowed only with length 0.
///
/// # Safety
/// `ptr` is NULL or points to `len` readable bytes valid for the call.
pub unsafe fn byte_slice<'a>(ptr: *const u8, len: usize, name: &str) -> Result<&'a [u8], Failure> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Failure::new(
            gr_status::GR_ERR_NULL_ARGUMENT,
            format!("argument `{name}` is NULL with length {len}"),
        ));
    }
    // SAFETY: non-NULL and `len` readable bytes per the contract above.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Like [`c_str`], but NULL is `None`.
///
/// # Safety
/// As for [`c_str`].
pub unsafe fn opt_c_str<'a>(ptr: *const c_char, name: &str) -> Result<Option<&'a str>, Failure> {
    if ptr.is_null() {
        Ok(None)
    } else {
        // SAFETY: the caller's contract.
        unsafe { c_str(ptr, name) }.map(Some)
    }
}

/// A string for C, to be freed with `gr_free`. Interior NULs (impossible in JSON output and
/// fingerprints) are reported rather than truncated.
fn to_c(s: String, what: &str) -> Result<*mut c_char, Failure> {
    CString::new(s).map(CString::into_raw).map_err(|_| {
        Failure::new(
            gr_status::GR_ERR_PANIC,
            format!("{what} contains a NUL byte"),
        )
    })
}

/// A new handle for C, freed with [`free_handle`] (by the type's `gr_*_free`).
pub fn into_handle<T>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// Frees a handle made by [`into_handle`]; NULL does nothing.
///
/// # Safety
/// `ptr` is NULL or a handle of type `T` from [`into_handle`] not yet freed.
pub unsafe fn free_handle<T>(ptr: *mut T) {
    if !ptr.is_null() {
        // SAFETY: the caller's contract: ours, and freed once.
        drop(unsafe { Box::from_raw(ptr) });
    }
}

/// Frees a string written by [`Out::write_string`]; NULL does nothing.
///
/// # Safety
/// `ptr` is NULL or a string from [`Out::write_string`] not yet freed.
pub unsafe fn free_string(ptr: *mut c_char) {
    if !ptr.is_null() {
        // SAFETY: the caller's contract: made by CString::into_raw, freed once.
        drop(unsafe { CString::from_raw(ptr) });
    }
}
