"""The C ABI of libgemini_rotator, declared in one place.

Every function of ``include/gemini_rotator.h`` gets its ``argtypes`` and ``restype`` here
(:data:`SIGNATURES`) and nowhere else, and so does every status number; a test parses the
header and fails when they differ. The rest of the package calls ``lib.gr_*`` only through
this module's names.

The library is loaded with :class:`ctypes.CDLL`, which releases the GIL for the duration of each
call: Python threads calling ``gr_generate`` on one pool really run in parallel.

Which file is loaded:
- ``$GEMINI_ROTATOR_LIB`` when it is set (a path to the shared library);
- otherwise the copy shipped inside this package (put there by ``pip install``).
A missing, unloadable or foreign library raises :class:`ImportError` saying where it looked.
"""

from __future__ import annotations

import ctypes
import os
import sys
from ctypes import (
    CFUNCTYPE,
    POINTER,
    c_char_p,
    c_int32,
    c_int64,
    c_size_t,
    c_uint16,
    c_uint8,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path
from typing import Any, Dict, Tuple

#: Environment variable that overrides the path of the shared library.
LIB_ENV = "GEMINI_ROTATOR_LIB"

#: The library's (major, minor) this package was written against. For a 0.x library a minor
#: release may change the ABI, so both must match; from 1.0 on, only the major.
ABI_VERSION = (0, 2)


def library_file_name() -> str:
    """The shared library's file name on this platform."""
    if sys.platform == "win32":
        return "gemini_rotator.dll"
    if sys.platform == "darwin":
        return "libgemini_rotator.dylib"
    return "libgemini_rotator.so"


# Status numbers (gr_status). Part of the ABI: never reused, never renumbered.
GR_OK = 0
GR_ERR_NULL_ARGUMENT = 1
GR_ERR_INVALID_UTF8 = 2
GR_ERR_INVALID_JSON = 3
GR_ERR_INVALID_ARGUMENT = 4
GR_ERR_CONFIG = 5
GR_ERR_ALL_KEYS_RATE_LIMITED = 6
GR_ERR_NO_USABLE_KEYS = 7
GR_ERR_API = 8
GR_ERR_TRANSPORT = 9
GR_ERR_TIMEOUT = 10
GR_ERR_STATE = 11
GR_STREAM_END = 12  # not an error: gr_stream_next reached the normal end
GR_ERR_CANCELLED = 13
GR_ERR_INCOMPLETE_STREAM = 14
GR_ERR_MODEL_UNAVAILABLE = 15
GR_ERR_PANIC = 100


class gr_pool(ctypes.Structure):
    """Opaque: a pool of API keys with its HTTP client (freed with gr_pool_free)."""


class gr_error(ctypes.Structure):
    """Opaque: the details of a failure (freed with gr_error_free)."""


class gr_response(ctypes.Structure):
    """Opaque: a successful call's answer and how it was served (freed with gr_response_free)."""


class gr_cancel(ctypes.Structure):
    """Opaque: a cancel token (freed with gr_cancel_free)."""


class gr_stream(ctypes.Structure):
    """Opaque: an open streamGenerateContent stream (freed with gr_stream_free)."""


PoolPtr = POINTER(gr_pool)
ErrorPtr = POINTER(gr_error)
ResponsePtr = POINTER(gr_response)
CancelPtr = POINTER(gr_cancel)
StreamPtr = POINTER(gr_stream)

#: `const uint8_t *`: bytes handed to the library for the duration of a call.
BytePtr = POINTER(c_uint8)

# `gr_status` is a C enum; its values fit an int32 and every platform we build for passes it
# as an int.
gr_status = c_int32

# Strings the library hands out through `char **` are declared as `void *`, not `c_char_p`:
# ctypes would otherwise copy them into `bytes` and lose the pointer that gr_free needs.
OwnedStr = c_void_p

#: `gr_log_fn`: void (*)(void *user_data, int32_t level, const char *event_json). The event text
#: is borrowed for the duration of the call; ctypes copies it into `bytes`.
LogFn = CFUNCTYPE(None, c_void_p, c_int32, c_char_p)


def _where() -> tuple[Path, str]:
    override = os.environ.get(LIB_ENV)
    if override:
        return Path(override), f"${LIB_ENV}"
    return Path(__file__).resolve().parent / library_file_name(), "the gemini_rotator package"


def _load() -> ctypes.CDLL:
    path, source = _where()
    hint = (
        f"Set {LIB_ENV} to the path of {library_file_name()}, or reinstall the package "
        "after `cargo build --release` (pip install bindings/python)."
    )
    if not path.is_file():
        raise ImportError(
            f"gemini_rotator: the shared library is missing: looked for {path} "
            f"(from {source}). {hint}",
            path=str(path),
        )
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as e:
        raise ImportError(
            f"gemini_rotator: cannot load the shared library {path} (from {source}): {e}. "
            f"{hint}",
            path=str(path),
        ) from e
    try:
        _declare(lib)
    except AttributeError as e:
        raise ImportError(
            f"gemini_rotator: {path} (from {source}) is not the gemini-rotator library: {e}. "
            f"{hint}",
            path=str(path),
        ) from e
    version = (lib.gr_version() or b"").decode("utf-8", "replace")
    if not _compatible(version):
        wanted = ".".join(map(str, ABI_VERSION))
        raise ImportError(
            f"gemini_rotator: {path} (from {source}) is gemini-rotator {version}, but this "
            f"package needs version {wanted}.x of the library. {hint}",
            path=str(path),
        )
    return lib


def _compatible(version: str) -> bool:
    try:
        major, minor = (int(part) for part in version.split(".")[:2])
    except ValueError:
        return False
    if major != ABI_VERSION[0]:
        return False
    return major > 0 or minor == ABI_VERSION[1]


def _declare(lib: ctypes.CDLL) -> None:
    """Sets argtypes/restype of every function of the header, from :data:`SIGNATURES`."""
    for name, (restype, argtypes) in SIGNATURES.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = list(argtypes)


_OutError = POINTER(ErrorPtr)
_OutStr = POINTER(OwnedStr)

#: Every function of ``include/gemini_rotator.h``: name -> (restype, argtypes). The tests hold
#: this table to the header (bindings/python/tests/test_header.py), type by type.
SIGNATURES: Dict[str, Tuple[Any, Tuple[Any, ...]]] = {
    "gr_version": (c_char_p, ()),  # static
    "gr_pool_new": (gr_status, (c_char_p, POINTER(PoolPtr), _OutError)),
    "gr_pool_free": (None, (PoolPtr,)),
    # (pool, model or NULL, request_json, max_wait_ms, timeout_ms, out_response, out_error)
    "gr_generate": (
        gr_status,
        (PoolPtr, c_char_p, c_char_p, c_uint64, c_uint64, POINTER(ResponsePtr), _OutError),
    ),
    "gr_stats_json": (gr_status, (PoolPtr, _OutStr, _OutError)),
    "gr_key_fingerprint": (gr_status, (c_char_p, _OutStr, _OutError)),
    "gr_metrics_prometheus": (gr_status, (PoolPtr, _OutStr, _OutError)),
    # Called through ctypes.CDLL, so the GIL is released while it waits for running callbacks.
    "gr_set_log_callback": (None, (LogFn, c_void_p)),
    "gr_set_log_level": (gr_status, (c_int32, _OutError)),
    "gr_free": (None, (OwnedStr,)),
    "gr_error_status": (gr_status, (ErrorPtr,)),
    # The borrowed `const char *` of the accessors are copied into bytes by ctypes (c_char_p).
    "gr_error_message": (c_char_p, (ErrorPtr,)),
    "gr_error_retry_after_ms": (c_uint64, (ErrorPtr,)),
    "gr_error_http_status": (c_uint16, (ErrorPtr,)),
    "gr_error_rpc_status": (c_char_p, (ErrorPtr,)),
    "gr_error_api_message": (c_char_p, (ErrorPtr,)),
    "gr_error_key_fingerprint": (c_char_p, (ErrorPtr,)),
    # The raw error body is bytes with a length: `void *`, read with string_at(ptr, len).
    "gr_error_api_body": (c_void_p, (ErrorPtr, POINTER(c_size_t))),
    "gr_error_free": (None, (ErrorPtr,)),
    "gr_status_name": (c_char_p, (c_int32,)),  # static
    # The body is bytes with a length, not a C string: `void *`, read with string_at(ptr, len).
    "gr_response_body": (c_void_p, (ResponsePtr, POINTER(c_size_t))),
    "gr_response_key_fingerprint": (c_char_p, (ResponsePtr,)),
    "gr_response_attempts": (c_uint32, (ResponsePtr,)),
    "gr_response_model": (c_char_p, (ResponsePtr,)),
    "gr_response_http_status": (c_uint16, (ResponsePtr,)),
    "gr_response_header": (c_char_p, (ResponsePtr, c_char_p)),
    "gr_response_free": (None, (ResponsePtr,)),
    "gr_cancel_new": (gr_status, (POINTER(CancelPtr), _OutError)),
    "gr_cancel_trigger": (None, (CancelPtr,)),
    "gr_cancel_free": (None, (CancelPtr,)),
    # (pool, model or NULL, method, request_json, max_wait_ms, timeout_ms, cancel or NULL,
    #  out_response, out_error)
    "gr_call": (
        gr_status,
        (
            PoolPtr,
            c_char_p,
            c_char_p,
            c_char_p,
            c_uint64,
            c_uint64,
            CancelPtr,
            POINTER(ResponsePtr),
            _OutError,
        ),
    ),
    "gr_list_models": (
        gr_status,
        (PoolPtr, c_uint32, c_char_p, CancelPtr, POINTER(ResponsePtr), _OutError),
    ),
    "gr_stream_open": (
        gr_status,
        (
            PoolPtr,
            c_char_p,
            c_char_p,
            c_uint64,
            c_uint64,
            CancelPtr,
            POINTER(StreamPtr),
            _OutError,
        ),
    ),
    # (pool, http_method, path, headers_json or NULL, body, body_len, max_wait_ms, timeout_ms,
    #  cancel or NULL, out_response, out_error); the body is bytes: see `byte_buffer`.
    "gr_forward": (
        gr_status,
        (
            PoolPtr,
            c_char_p,
            c_char_p,
            c_char_p,
            BytePtr,
            c_size_t,
            c_uint64,
            c_uint64,
            CancelPtr,
            POINTER(ResponsePtr),
            _OutError,
        ),
    ),
    # (pool, path, headers_json or NULL, body, body_len, max_wait_ms, timeout_ms, cancel or
    #  NULL, out_stream, out_error)
    "gr_forward_stream": (
        gr_status,
        (
            PoolPtr,
            c_char_p,
            c_char_p,
            BytePtr,
            c_size_t,
            c_uint64,
            c_uint64,
            CancelPtr,
            POINTER(StreamPtr),
            _OutError,
        ),
    ),
    "gr_stream_next": (gr_status, (StreamPtr, POINTER(ResponsePtr), _OutError)),
    "gr_stream_close": (None, (StreamPtr,)),
    "gr_stream_free": (None, (StreamPtr,)),
    "gr_stream_key_fingerprint": (c_char_p, (StreamPtr,)),
    "gr_stream_attempts": (c_uint32, (StreamPtr,)),
    "gr_stream_prompt_token_count": (c_int64, (StreamPtr,)),
    "gr_stream_total_token_count": (c_int64, (StreamPtr,)),
}


lib: ctypes.CDLL = _load()
LIB_PATH: str = str(_where()[0])


def take_string(ptr: OwnedStr) -> bytes:
    """Copies a string the library returned through `char **` (once), then frees it with
    gr_free. NULL is ``b""``."""
    if not ptr.value:
        return b""
    try:
        return ctypes.string_at(ptr.value)
    finally:
        lib.gr_free(ptr)
        ptr.value = None


def take_response(ptr: Any) -> Tuple[bytes, str]:
    """(the answer's bytes, the serving key's fingerprint) of a gr_response, copied once each,
    NUL bytes included; then frees the response."""
    try:
        length = c_size_t(0)
        body = lib.gr_response_body(ptr, ctypes.byref(length))
        answer = ctypes.string_at(body, length.value) if body else b""
        fingerprint = (lib.gr_response_key_fingerprint(ptr) or b"").decode("ascii", "replace")
        return answer, fingerprint
    finally:
        lib.gr_response_free(ptr)


def byte_buffer(data: bytes) -> Any:
    """``data`` as a ``const uint8_t *`` argument, without a copy: valid while ``data`` is
    referenced (the caller keeps it for the call)."""
    return ctypes.cast(c_char_p(data), BytePtr)


def status_name(status: int) -> str:
    return (lib.gr_status_name(status) or b"GR_UNKNOWN_STATUS").decode("ascii", "replace")


def version() -> str:
    return (lib.gr_version() or b"").decode("utf-8", "replace")
