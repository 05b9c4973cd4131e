"""httpx transports that put the pool under Google's google-genai SDK.

google-genai builds every request itself and hands it to ``httpx.Client.send`` (streams with
``stream=True``); a transport sees each one. Ours does not send it over HTTP: it hands the
request as the SDK built it (method, path and query, headers, body bytes) to the core through
``gr_forward`` / ``gr_forward_stream``, and the core routes it (a model method under the
model's limits; files, cached contents, operations and the models list on one key, pinned to
the project that made the resource), chooses the key and performs it. The rotation, limits,
reactions, failover and pins are the pool's one implementation, in Rust. The SDK's
credentials (its placeholder ``x-goog-api-key``, an ``authorization`` header) never leave the
process, nor does a ``key=`` query parameter: the core sends its own key in the header. The
body goes through untouched, and so does the API version the SDK chose.

What the SDK sees:
- the service's answer: its status, body, ``content-type`` and ``x-goog-upload-*`` headers;
- the service's own errors (400, 404, ...) as that status and the service's body byte for byte,
  so the SDK raises its own ``errors.ClientError`` with every ``details`` entry;
- the pool's refusals (:class:`AllKeysRateLimitedError`, ...) raised from ``send``, so they
  reach the caller as they are;
- a stream as SSE (``data: <event>\\n\\n``) fed by the pool's events; failover happens before
  the first event only, an error after it raises from the SDK's iteration.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
from typing import Any, AsyncIterator, Callable, Dict, Iterator, Optional, Tuple

import httpx

from . import _ffi
from ._endpoints import CancelToken, cancel_ptr, run_cancellable
from ._errors import APIError, InvalidArgumentError, check
from ._pool import KeyPool
from ._stream import GenerateContentStream, _StreamHandle
from ._threads import run_blocking

#: The only decision left to the transport: a stream has its own C call. The core routes the
#: rest (and refuses a stream given to gr_forward).
_STREAM_SUFFIX = ":streamGenerateContent"

#: Never handed to the core: the pool's key replaces them.
_CREDENTIALS = frozenset({"x-goog-api-key", "authorization"})

#: The answer's headers the SDKs read (the core keeps content-type and x-goog-upload-*).
_ANSWER_HEADERS = (
    "content-type",
    "x-goog-upload-url",
    "x-goog-upload-status",
    "x-goog-upload-size-received",
    "x-goog-upload-chunk-granularity",
    "x-goog-upload-control-url",
)


class _Forwarded:
    """One request's C arguments, as the SDK built it."""

    def __init__(self, request: httpx.Request, body: bytes) -> None:
        self.method = request.method.encode("ascii")
        self.path = request.url.raw_path  # the path and query, as sent on the wire
        headers: Dict[str, str] = {}
        for name, value in request.headers.multi_items():
            name = name.lower()
            if name not in _CREDENTIALS:
                headers[name] = f"{headers[name]}, {value}" if name in headers else value
        self.headers = json.dumps(headers).encode("utf-8")
        self.body = body
        self.stream = request.method == "POST" and request.url.path.endswith(_STREAM_SUFFIX)


def _forward(
    pool: KeyPool, request: _Forwarded, max_wait_ms: int, timeout_ms: int,
    token: Optional[CancelToken],
) -> Tuple[int, Dict[str, str], bytes]:
    """gr_forward: (the service's status, the answer's headers, its body)."""
    response = _ffi.ResponsePtr()
    error = _ffi.ErrorPtr()
    with pool._borrow() as ptr:
        # The GIL is released for the whole call (ctypes.CDLL); request.body stays referenced.
        status = _ffi.lib.gr_forward(
            ptr, request.method, request.path, request.headers,
            _ffi.byte_buffer(request.body), len(request.body),
            max_wait_ms, timeout_ms, cancel_ptr(token),
            ctypes.byref(response), ctypes.byref(error),
        )
    if status != _ffi.GR_OK and response:
        _ffi.lib.gr_response_free(response)  # never written on failure per the ABI
    check(status, error)
    try:
        code = int(_ffi.lib.gr_response_http_status(response))
        headers = {}
        for name in _ANSWER_HEADERS:
            value = _ffi.lib.gr_response_header(response, name.encode("ascii"))
            if value is not None:
                headers[name] = value.decode("latin-1")
    except BaseException:
        _ffi.lib.gr_response_free(response)
        raise
    answer, _ = _ffi.take_response(response)
    return code, headers, answer


def _forward_stream(
    pool: KeyPool, request: _Forwarded, max_wait_ms: int, timeout_ms: int,
    token: Optional[CancelToken],
) -> GenerateContentStream:
    """gr_forward_stream: returns once the first event is in."""
    ptr = _ffi.StreamPtr()
    error = _ffi.ErrorPtr()
    with pool._borrow() as pool_ptr:
        status = _ffi.lib.gr_forward_stream(
            pool_ptr, request.path, request.headers,
            _ffi.byte_buffer(request.body), len(request.body),
            max_wait_ms, timeout_ms, cancel_ptr(token),
            ctypes.byref(ptr), ctypes.byref(error),
        )
    check(status, error)
    handle = _StreamHandle()
    handle._adopt(ptr)
    return GenerateContentStream(handle, pool)


def _error_response(error: APIError, request: httpx.Request) -> httpx.Response:
    """The service's own error as it sent it: its status and body (every ``details`` entry)."""
    body = error.body or json.dumps(  # not expected from the core; still parseable by the SDK
        {"error": {"code": error.status_code, "message": error.message, "status": error.status}}
    ).encode("utf-8")
    return httpx.Response(
        error.status_code,
        headers={"content-type": "application/json; charset=UTF-8"},
        content=body,
        request=request,
    )


def _answer_response(
    answer: Tuple[int, Dict[str, str], bytes], request: httpx.Request
) -> httpx.Response:
    status, headers, body = answer
    return httpx.Response(status, headers=headers, content=body, request=request)


def _sse(event_raw: Any) -> bytes:
    return b"data: " + json.dumps(event_raw, separators=(",", ":")).encode("utf-8") + b"\n\n"


class _SyncEvents(httpx.SyncByteStream):
    """The pool's stream re-framed as SSE; closing it (the SDK closes the response) closes the
    pool's stream and frees the key's slot."""

    def __init__(self, stream: GenerateContentStream) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        for event in self._stream:
            yield _sse(event.raw)

    def close(self) -> None:
        self._stream.close()


class _AsyncEvents(httpx.AsyncByteStream):
    """:class:`_SyncEvents` for asyncio: every event is awaited in a worker thread; a cancelled
    task closes the stream, which interrupts the worker."""

    def __init__(self, stream: GenerateContentStream) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            try:
                event = await run_blocking(self._stream._next_or_none)
            except asyncio.CancelledError:
                self._stream.close()
                raise
            if event is None:
                return
            yield _sse(event.raw)

    async def aclose(self) -> None:
        self._stream.close()


def _stream_response(request: httpx.Request, body: Any) -> httpx.Response:
    return httpx.Response(
        200, headers={"content-type": "text/event-stream"}, stream=body, request=request
    )


class _Base:
    def __init__(self, pool: KeyPool, *, max_wait_ms: int = 0, timeout_ms: int = 0) -> None:
        if not isinstance(pool, KeyPool):
            raise InvalidArgumentError(f"pool must be a gemini_rotator.KeyPool, not {type(pool).__name__}")
        self._pool = pool
        self._max_wait_ms = max_wait_ms
        self._timeout_ms = timeout_ms

    def _run(self, request: _Forwarded, token: Optional[CancelToken]) -> Any:
        """An open stream, or (status, headers, body); raises the pool's errors."""
        if request.stream:
            return _forward_stream(
                self._pool, request, self._max_wait_ms, self._timeout_ms, token
            )
        return _forward(self._pool, request, self._max_wait_ms, self._timeout_ms, token)


class HttpxTransport(_Base, httpx.BaseTransport):
    """An ``httpx.BaseTransport`` sending google-genai's requests through ``pool``:
    ``httpx.Client(transport=HttpxTransport(pool))`` as ``HttpOptions(httpx_client=...)``."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        forwarded = _Forwarded(request, request.read())
        try:
            value = self._run(forwarded, None)
        except APIError as error:
            return _error_response(error, request)
        if forwarded.stream:
            return _stream_response(request, _SyncEvents(value))
        return _answer_response(value, request)


class AsyncHttpxTransport(_Base, httpx.AsyncBaseTransport):
    """An ``httpx.AsyncBaseTransport`` for ``client.aio``: the call runs in a worker thread (the
    event loop keeps running) and cancelling the awaiting task stops the HTTP request itself."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        forwarded = _Forwarded(request, await request.aread())
        run: Callable[[Optional[CancelToken]], Any] = lambda token: self._run(forwarded, token)
        try:
            value = await run_cancellable(run)
        except APIError as error:
            return _error_response(error, request)
        if forwarded.stream:
            return _stream_response(request, _AsyncEvents(value))
        return _answer_response(value, request)


def genai_client(pool: Optional[KeyPool] = None, **http_options: Any) -> Any:
    """A ``google.genai.Client`` whose sync and async requests go through ``pool`` (by default
    ``KeyPool.from_env()``). ``http_options`` are the SDK's ``HttpOptions`` fields
    (``base_url``, ``api_version``, ...). Needs the ``genai`` extra (google-genai)."""
    try:
        from google import genai
        from google.genai import types
    except ImportError as e:
        raise ImportError(
            "gemini_rotator.genai_client needs google-genai: pip install 'gemini_rotator[genai]'"
        ) from e
    if pool is None:
        pool = KeyPool.from_env()
    options = types.HttpOptions(
        httpx_client=httpx.Client(transport=HttpxTransport(pool)),
        httpx_async_client=httpx.AsyncClient(transport=AsyncHttpxTransport(pool)),
        **http_options,
    )
    # The SDK insists on a key; this placeholder never leaves the process.
    return genai.Client(api_key="gemini-rotator-placeholder", http_options=options)
