"""The C ABI of libgemini_rotator, declared in one place.

Every function of ``include/gemini_rotator.h`` gets its ``argtypes`` and ``restype`` here and
nowhere else; the rest of the package calls ``lib.gr_*`` only through this module's names.

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
from ctypes import CFUNCTYPE, POINTER, c_char_p, c_int32, c_uint16, c_uint64, c_void_p
from pathlib import Path
from typing import Optional

#: Environment variable that overrides the path of the shared library.
LIB_ENV = "GEMINI_ROTATOR_LIB"

#: The library's (major, minor) this package was written against. For a 0.x library a minor
#: release may change the ABI, so both must match; from 1.0 on, only the major.
ABI_VERSION = (0, 1)


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
GR_ERR_PANIC = 100


class gr_pool(ctypes.Structure):
    """Opaque: a pool of API keys with its HTTP client (freed with gr_pool_free)."""


class gr_error(ctypes.Structure):
    """Opaque: the details of a failure (freed with gr_error_free)."""


PoolPtr = POINTER(gr_pool)
ErrorPtr = POINTER(gr_error)

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
    """Sets argtypes/restype of every function of the header."""
    out_error = POINTER(ErrorPtr)
    out_str = POINTER(OwnedStr)

    def declare(name: str, restype: object, *argtypes: object) -> None:
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = list(argtypes)

    declare("gr_version", c_char_p)
    declare("gr_pool_new", gr_status, c_char_p, POINTER(PoolPtr), out_error)
    declare("gr_pool_free", None, PoolPtr)
    declare(
        "gr_generate",
        gr_status,
        PoolPtr,  # pool
        c_char_p,  # model, NULL for the pool's default
        c_char_p,  # request_json
        c_uint64,  # max_wait_ms
        c_uint64,  # timeout_ms, 0 for the pool's
        out_str,  # out_response_json (gr_free)
        out_str,  # out_key_fingerprint (gr_free), may be NULL
        out_error,
    )
    declare("gr_stats_json", gr_status, PoolPtr, out_str, out_error)
    declare("gr_key_fingerprint", gr_status, c_char_p, out_str, out_error)
    declare("gr_metrics_prometheus", gr_status, PoolPtr, out_str, out_error)
    # Called through ctypes.CDLL, so the GIL is released while it waits for running callbacks.
    declare("gr_set_log_callback", None, LogFn, c_void_p)
    declare("gr_set_log_level", gr_status, c_int32, out_error)
    declare("gr_free", None, OwnedStr)
    declare("gr_error_status", gr_status, ErrorPtr)
    declare("gr_error_message", c_char_p, ErrorPtr)  # borrowed: copied by ctypes
    declare("gr_error_retry_after_ms", c_uint64, ErrorPtr)
    declare("gr_error_http_status", c_uint16, ErrorPtr)
    declare("gr_error_rpc_status", c_char_p, ErrorPtr)  # borrowed: copied by ctypes
    declare("gr_error_api_message", c_char_p, ErrorPtr)  # borrowed: copied by ctypes
    declare("gr_error_key_fingerprint", c_char_p, ErrorPtr)  # borrowed: copied by ctypes
    declare("gr_error_free", None, ErrorPtr)
    declare("gr_status_name", c_char_p, c_int32)  # static


lib: ctypes.CDLL = _load()
LIB_PATH: str = str(_where()[0])


def take_string(ptr: OwnedStr) -> Optional[str]:
    """Copies a string the library returned through `char **`, then frees it with gr_free."""
    if not ptr.value:
        return None
    try:
        return ctypes.string_at(ptr.value).decode("utf-8")
    finally:
        lib.gr_free(ptr)
        ptr.value = None


def free_string(ptr: OwnedStr) -> None:
    """Frees a library string without reading it (gr_free ignores NULL)."""
    if ptr.value:
        lib.gr_free(ptr)
        ptr.value = None


def status_name(status: int) -> str:
    return (lib.gr_status_name(status) or b"GR_UNKNOWN_STATUS").decode("ascii", "replace")


def version() -> str:
    return (lib.gr_version() or b"").decode("utf-8", "replace")
