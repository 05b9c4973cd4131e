"""httpx transports that put the pool under Google's google-genai SDK.

google-genai builds every request itself and hands it to ``httpx.Client.send`` (streams with
``stream=True``); a transport sees each one. Ours does not send it over HTTP: it reads the model
and method from the URL the SDK built (``.../v1/models/M:method`` or ``.../v1beta/...``), and the
core performs the request through ``gr_call`` / ``gr_stream_open``, so the rotation, limits,
reactions and failover are the pool's one implementation, in Rust. The request's headers, the
SDK's placeholder ``x-goog-api-key`` among them, and any ``key=`` query parameter never leave
the process: the pool sends its own key in the header. The body goes through untouched.

What the SDK sees:
- the service's answer (status 200, the answer's JSON);
- the service's own errors (400, 404, ...) as that status and an error body, so the SDK raises
  its own ``errors.ClientError``;
- the pool's refusals (:class:`AllKeysRateLimitedError`, ...) raised from ``send``, so they
  reach the caller as they are;
- a stream as SSE (``data: <event>\\n\\n``) fed by the pool's events; failover happens before
  the first event only, an error after it raises from the SDK's iteration.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any, AsyncIterator, Callable, Iterator, Optional, Tuple

import httpx

from ._endpoints import CancelToken, call, run_cancellable
from ._errors import APIError, InvalidArgumentError
from ._pool import KeyPool
from ._stream import GenerateContentStream, open_stream
from ._threads import run_blocking

#: ``[prefix]/{version}/models/{model}:{method}``: the only requests the pool can admit under a
#: model's limits.
_MODEL_METHOD = re.compile(r"/(v1[a-z0-9]*)/models/([^/:]+):([A-Za-z]+)$")
_CALLS = ("generateContent", "countTokens", "embedContent", "batchEmbedContents")
_STREAM = "streamGenerateContent"


def _route(request: httpx.Request) -> Tuple[bytes, str]:
    """(model, method) of a request the SDK built, or a clear error naming what is unsupported."""
    match = _MODEL_METHOD.search(request.url.path)
    if request.method != "POST" or match is None:
        raise InvalidArgumentError(
            f"gemini_rotator's transport serves the model methods (POST .../models/M:method); "
            f"{request.method} {request.url.path} is not one of them"
        )
    model, method = match.group(2), match.group(3)
    if method not in _CALLS and method != _STREAM:
        raise InvalidArgumentError(f"unsupported model method {method!r} in {request.url.path}")
    return model.encode("utf-8"), method


def _error_response(error: APIError, request: httpx.Request) -> httpx.Response:
    """The service's own error as the SDK expects it: its status and a Gemini error body."""
    body = {"error": {"code": error.status_code, "message": error.message, "status": error.status}}
    return httpx.Response(
        error.status_code,
        headers={"content-type": "application/json"},
        content=json.dumps(body).encode("utf-8"),
        request=request,
    )


def _json_response(answer: bytes, request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200, headers={"content-type": "application/json"}, content=answer, request=request
    )


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

    def _run(
        self, request: httpx.Request, body: bytes, token: Optional[CancelToken]
    ) -> Tuple[str, Any]:
        """("call", answer bytes) or ("stream", an open stream); raises the pool's errors."""
        model, method = _route(request)
        if method == _STREAM:
            return "stream", open_stream(
                self._pool, body, model, self._max_wait_ms, self._timeout_ms, token
            )
        answer, _ = call(
            self._pool, method, model, body, self._max_wait_ms, self._timeout_ms, token
        )
        return "call", answer


class HttpxTransport(_Base, httpx.BaseTransport):
    """An ``httpx.BaseTransport`` sending google-genai's requests through ``pool``:
    ``httpx.Client(transport=HttpxTransport(pool))`` as ``HttpOptions(httpx_client=...)``."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        try:
            kind, value = self._run(request, body, None)
        except APIError as error:
            return _error_response(error, request)
        if kind == "stream":
            return _stream_response(request, _SyncEvents(value))
        return _json_response(value, request)


class AsyncHttpxTransport(_Base, httpx.AsyncBaseTransport):
    """An ``httpx.AsyncBaseTransport`` for ``client.aio``: the call runs in a worker thread (the
    event loop keeps running) and cancelling the awaiting task stops the HTTP request itself."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        run: Callable[[Optional[CancelToken]], Tuple[str, Any]] = lambda token: self._run(
            request, body, token
        )
        try:
            kind, value = await run_cancellable(run)
        except APIError as error:
            return _error_response(error, request)
        if kind == "stream":
            return _stream_response(request, _AsyncEvents(value))
        return _json_response(value, request)


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
