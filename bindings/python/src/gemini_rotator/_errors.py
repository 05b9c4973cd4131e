"""The exceptions of gemini_rotator, and their construction from a C ``gr_error``.

Every exception copies what it needs out of the ``gr_error`` and the error is freed before the
exception is raised, whatever happens: no Python object ever holds a C error.

No message ever contains an API key: the library's messages name keys by fingerprint only, and
the Python-side checks never print the value of a key argument.

All exceptions pickle (so that :mod:`multiprocessing` can send them from a worker to its parent).
"""

from __future__ import annotations

import builtins
import ctypes
from typing import Any, Optional, Tuple

from . import _ffi


class GeminiError(Exception):
    """Base class of every error gemini_rotator raises about a request or a pool."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self) -> Tuple[Any, ...]:
        return (type(self), (self.message,))


class ConfigError(GeminiError, ValueError):
    """The pool's configuration (arguments or environment variables) is invalid; the message
    names the argument, field or variable."""


class InvalidArgumentError(GeminiError, ValueError):
    """The library refused an argument of a call (the message names it)."""


class AllKeysRateLimitedError(GeminiError):
    """No key can take a request now: every free key is at its limit (and the paid key too, or
    there is none). ``retry_after`` is the number of seconds until one can."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def __reduce__(self) -> Tuple[Any, ...]:
        return (type(self), (self.message, self.retry_after))


class NoUsableKeysError(GeminiError):
    """Every key of the pool is disabled (invalid, leaked, suspended, API not enabled)."""


class APIError(GeminiError):
    """The Gemini API answered with an error meant for the caller (e.g. 400 INVALID_ARGUMENT),
    or kept failing (e.g. 503) after the allowed retries.

    ``str(error)`` is the library's one-line message (``"Gemini API error 400
    INVALID_ARGUMENT: <the service's message> (key <fingerprint>)"``). The parts:
    ``status_code`` is the HTTP status, ``status`` the RPC status of the error body
    (``"INVALID_ARGUMENT"``, ``""`` when the body had none), ``message`` the service's own
    message (keys redacted), ``key_fingerprint`` the fingerprint of the key that received
    the answer (``""`` if unknown), and ``body`` the service's error body byte for byte as
    received (its JSON, every ``details`` entry included; ``b""`` when there is none).
    """

    def __init__(
        self,
        text: str,
        status_code: int,
        status: str,
        message: Optional[str] = None,
        key_fingerprint: str = "",
        body: bytes = b"",
    ) -> None:
        super().__init__(text)
        self.message = text if message is None else message
        self.status_code = status_code
        self.status = status
        self.key_fingerprint = key_fingerprint
        self.body = body

    def __reduce__(self) -> Tuple[Any, ...]:
        return (
            type(self),
            (
                str(self),
                self.status_code,
                self.status,
                self.message,
                self.key_fingerprint,
                self.body,
            ),
        )


class TransportError(GeminiError, ConnectionError):
    """No answer from the service (connection refused, reset, ...) after the allowed retries."""

    def __init__(self, message: str) -> None:
        # OSError subclasses keep a single argument as their text.
        GeminiError.__init__(self, message)


class GeminiTimeoutError(GeminiError, builtins.TimeoutError):
    """The call's time budget ran out (``timeout`` of the call, or the pool's ``timeout_ms``)."""

    def __init__(self, message: str) -> None:
        GeminiError.__init__(self, message)


class StateError(GeminiError):
    """The shared key-state store is unusable: its file, or a Redis server that is unreachable
    or did not answer in time (the message names its address, never its password)."""


#: The name the Redis documentation uses: the same class (the library has one status for an
#: unusable store, ``GR_ERR_STATE``), so ``except StateUnavailableError`` catches every one.
StateUnavailableError = StateError


class ModelUnavailableError(GeminiError):
    """No key of the pool has the model nor any of its fallbacks (the service answered
    "limit: 0": the model is not on their tier). Waiting does not help; the message names it."""


class InternalError(GeminiError):
    """A bug in the library (a panic was caught at the C boundary). Please report it."""


class CancelledError(GeminiError):
    """The call or stream was cancelled (its stream closed from another thread) while it ran."""


class IncompleteStreamError(GeminiError):
    """A stream ended without ``finishReason``: the events delivered are an incomplete answer,
    not a success."""


class PoolClosedError(GeminiError, ValueError):
    """The :class:`KeyPool` was closed; create a new one."""


# INVALID_JSON (text that does not parse) and INVALID_ARGUMENT (valid JSON of the wrong kind, or
# a bad value) are both a refused argument: InvalidArgumentError, whose message names it.
_SIMPLE = {
    _ffi.GR_ERR_NULL_ARGUMENT: InvalidArgumentError,
    _ffi.GR_ERR_INVALID_UTF8: InvalidArgumentError,
    _ffi.GR_ERR_INVALID_JSON: InvalidArgumentError,
    _ffi.GR_ERR_INVALID_ARGUMENT: InvalidArgumentError,
    _ffi.GR_ERR_CONFIG: ConfigError,
    _ffi.GR_ERR_NO_USABLE_KEYS: NoUsableKeysError,
    _ffi.GR_ERR_TRANSPORT: TransportError,
    _ffi.GR_ERR_TIMEOUT: GeminiTimeoutError,
    _ffi.GR_ERR_STATE: StateError,
    _ffi.GR_ERR_CANCELLED: CancelledError,
    _ffi.GR_ERR_INCOMPLETE_STREAM: IncompleteStreamError,
    _ffi.GR_ERR_MODEL_UNAVAILABLE: ModelUnavailableError,
    _ffi.GR_ERR_PANIC: InternalError,
}


def _redact(message: str, secrets: Tuple[str, ...]) -> str:
    # Defence in depth: the library never puts a key in a message, but where the caller's keys
    # are at hand (building a pool) make sure of it. Strings too short to be a real key are
    # left alone: replacing "a" would garble the message and protect nothing.
    for secret in secrets:
        if len(secret) >= 8:
            message = message.replace(secret, "<redacted>")
    return message


def take_error(status: int, error: Any, secrets: Tuple[str, ...] = ()) -> GeminiError:
    """The exception for a failed call; frees ``error`` (which may be NULL) in every case."""
    try:
        if error:
            lib = _ffi.lib
            message = (lib.gr_error_message(error) or b"").decode("utf-8", "replace")
            retry_after_ms = int(lib.gr_error_retry_after_ms(error))
            http_status = int(lib.gr_error_http_status(error))
            rpc_status = (lib.gr_error_rpc_status(error) or b"").decode("utf-8", "replace")
            api_message = (lib.gr_error_api_message(error) or b"").decode("utf-8", "replace")
            fp = lib.gr_error_key_fingerprint(error) or b""
            key_fingerprint = fp.decode("ascii", "replace")
            length = ctypes.c_size_t(0)
            raw = lib.gr_error_api_body(error, ctypes.byref(length))
            body = ctypes.string_at(raw, length.value) if raw else b""
        else:
            message, retry_after_ms, http_status, rpc_status = "", 0, 0, ""
            api_message, key_fingerprint, body = "", "", b""
    finally:
        _ffi.lib.gr_error_free(error)
    message = _redact(message, secrets) or f"gemini-rotator call failed ({_ffi.status_name(status)})"
    if status == _ffi.GR_ERR_ALL_KEYS_RATE_LIMITED:
        return AllKeysRateLimitedError(message, retry_after_ms / 1000.0)
    if status == _ffi.GR_ERR_API:
        return APIError(
            message, http_status, rpc_status, _redact(api_message, secrets), key_fingerprint, body
        )
    cls = _SIMPLE.get(status)
    if cls is None:
        return GeminiError(f"{message} (unknown status {_ffi.status_name(status)} = {status})")
    return cls(message)


def check(status: int, error: Any, secrets: Tuple[str, ...] = ()) -> None:
    """Raises the exception for ``status`` unless it is GR_OK (freeing ``error`` either way)."""
    if status != _ffi.GR_OK:
        raise take_error(status, error, secrets)
    if error:  # Not written on success per the ABI; free it should that ever change.
        _ffi.lib.gr_error_free(error)
