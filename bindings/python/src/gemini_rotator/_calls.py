"""The two shapes of a fallible C call, each written once: a call whose result is a string
(``char **``: gr_stats_json, gr_metrics_prometheus, gr_key_fingerprint, ...) and a call whose
result is a ``gr_response`` (gr_generate, gr_call). Both pass the out-params and the
``gr_error **`` last, raise the mapped exception on failure, and copy the result once."""

from __future__ import annotations

import ctypes
from typing import Any, Callable, NamedTuple, Tuple

from . import _ffi
from ._errors import check


class Served(NamedTuple):
    """What a ``gr_response`` holds, copied out of it."""

    #: The answer's bytes as the service sent them (NUL bytes included).
    body: bytes
    #: The fingerprint of the key that served the call.
    key_fingerprint: str
    #: The model that served it (``gr_response_model``): the one asked for, or a configured
    #: fallback of it.
    model: str


def take_served(response: Any) -> Served:
    """Copies a live gr_response's body, key fingerprint and model, then frees it."""
    try:
        model = (_ffi.lib.gr_response_model(response) or b"").decode("ascii", "replace")
    except BaseException:
        _ffi.lib.gr_response_free(response)
        raise
    body, fingerprint = _ffi.take_response(response)  # frees the response
    return Served(body, fingerprint, model)


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


def served_call(function: Callable[..., int], *args: Any) -> Served:
    """``function(*args, &response, &error)``: what the gr_response held (it is freed)."""
    response = _ffi.ResponsePtr()
    error = _ffi.ErrorPtr()
    # The GIL is released for the whole call (ctypes.CDLL).
    status = function(*args, ctypes.byref(response), ctypes.byref(error))
    if status != _ffi.GR_OK and response:
        _ffi.lib.gr_response_free(response)  # never written on failure per the ABI
    check(status, error)
    return take_served(response)


def response_call(function: Callable[..., int], *args: Any) -> Tuple[bytes, str]:
    """:func:`served_call`'s (the answer's bytes, the serving key's fingerprint)."""
    served = served_call(function, *args)
    return served.body, served.key_fingerprint
