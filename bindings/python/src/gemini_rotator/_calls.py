"""The two shapes of a fallible C call, each written once: a call whose result is a string
(``char **``: gr_stats_json, gr_metrics_prometheus, gr_key_fingerprint, ...) and a call whose
result is a ``gr_response`` (gr_generate). Both pass the out-params and the ``gr_error **``
last, raise the mapped exception on failure, and copy the result once."""

from __future__ import annotations

import ctypes
from typing import Any, Callable, Tuple

from . import _ffi
from ._errors import check


def string_call(
    function: Callable[..., int], *args: Any, secrets: Tuple[str, ...] = ()
) -> bytes:
    """``function(*args, &out, &error)``: the string it wrote, as bytes (freed with gr_free)."""
    out = _ffi.OwnedStr()
    error = _ffi.ErrorPtr()
    status = function(*args, ctypes.byref(out), ctypes.byref(error))
    if status != _ffi.GR_OK:
        _ffi.take_string(out)  # never written on failure per the ABI; freed should that change
    check(status, error, secrets)
    return _ffi.take_string(out)


def response_call(function: Callable[..., int], *args: Any) -> Tuple[bytes, str]:
    """``function(*args, &response, &error)``: (the answer's bytes, the serving key's
    fingerprint); the gr_response is freed."""
    response = _ffi.ResponsePtr()
    error = _ffi.ErrorPtr()
    # The GIL is released for the whole call (ctypes.CDLL).
    status = function(*args, ctypes.byref(response), ctypes.byref(error))
    if status != _ffi.GR_OK and response:
        _ffi.lib.gr_response_free(response)  # never written on failure per the ABI
    check(status, error)
    return _ffi.take_response(response)
