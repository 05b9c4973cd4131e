"""Streams: ``stream_generate_content`` (an iterator of events) and
``astream_generate_content`` (an async iterator), over a ``gr_stream``.

The library retries a stream on another key until its first event is in, and never after: the
events an iterator gives are never repeated or spliced. Leaving early (``break``, ``close()``,
a ``with`` block, garbage collection, or cancelling the task that awaits an async stream)
closes the HTTP request and releases the key's slot at once.
"""

from __future__ import annotations

import asyncio
import ctypes
from typing import Any, Callable, Optional

from . import _ffi
from ._calls import take_served
from ._endpoints import CancelToken, cancel_ptr, run_cancellable
from ._errors import check
from ._managed import Managed
from ._pool import KeyPool
from ._response import GenerateContentResponse
from ._threads import run_blocking


class _StreamHandle(Managed["_ffi.StreamPtr"]):  # type: ignore[valid-type]
    _free = _ffi.lib.gr_stream_free

    def interrupt(self) -> None:
        """gr_stream_close: safe while another thread is inside gr_stream_next (the borrow
        keeps the handle from being freed meanwhile)."""
        try:
            with self._borrow() as ptr:
                _ffi.lib.gr_stream_close(ptr)
        except ValueError:  # already closed: nothing to interrupt
            pass


def open_stream(
    pool: KeyPool,
    request_json: bytes,
    model: Optional[bytes],
    max_wait_ms: int,
    timeout_ms: int,
    cancel: Optional[CancelToken] = None,
) -> "GenerateContentStream":
    """gr_stream_open: returns once the first event is in."""
    ptr = _ffi.StreamPtr()
    error = _ffi.ErrorPtr()
    with pool._borrow() as pool_ptr:
        status = _ffi.lib.gr_stream_open(
            pool_ptr,
            model,
            request_json,
            max_wait_ms,
            timeout_ms,
            cancel_ptr(cancel),
            ctypes.byref(ptr),
            ctypes.byref(error),
        )
    check(status, error)
    handle = _StreamHandle()
    handle._adopt(ptr)
    # The pool must outlive the stream: the stream keeps it borrowed until it is freed.
    return GenerateContentStream(handle, pool)


class GenerateContentStream:
    """The events of one ``streamGenerateContent`` call, each a
    :class:`GenerateContentResponse` (``.text`` its text), in order, as they arrive.

    The iteration ends normally after the event with ``finishReason``. An error in the middle
    of the stream raises after the events already given (:class:`APIError` for the service's
    error, :class:`IncompleteStreamError` for a stream cut without ``finishReason``,
    :class:`GeminiTimeoutError` for a gap longer than ``GEMINI_STREAM_IDLE_TIMEOUT_MS``).

    ``close()`` (also from another thread: a ``next()`` waiting there raises
    :class:`CancelledError`) ends it at once. Use it in a ``with`` block, or let ``break`` drop
    the last reference.
    """

    def __init__(self, handle: _StreamHandle, pool: KeyPool) -> None:
        self._handle = handle
        self._pool_borrow = pool._borrow()
        self._pool_borrow.__enter__()
        with handle._borrow() as ptr:
            fp = _ffi.lib.gr_stream_key_fingerprint(ptr) or b""
            self.attempts: int = int(_ffi.lib.gr_stream_attempts(ptr))
        #: The fingerprint of the key serving the stream.
        self.key_fingerprint: str = fp.decode("ascii", "replace")
        self._prompt_tokens: Optional[int] = None
        self._total_tokens: Optional[int] = None

    def __iter__(self) -> "GenerateContentStream":
        return self

    def __next__(self) -> GenerateContentResponse:
        event = self._next_or_none()
        if event is None:
            raise StopIteration
        return event

    def _next_or_none(self) -> Optional[GenerateContentResponse]:
        if self._handle.closed:
            return None
        response = _ffi.ResponsePtr()
        error = _ffi.ErrorPtr()
        with self._handle._borrow() as ptr:
            status = _ffi.lib.gr_stream_next(ptr, ctypes.byref(response), ctypes.byref(error))
            self._read_usage(ptr)
        if status == _ffi.GR_STREAM_END:
            self.close()
            return None
        if status != _ffi.GR_OK:
            self.close()
            check(status, error)
        served = take_served(response)
        return GenerateContentResponse.from_json(served.body, served.key_fingerprint, served.model)

    def _read_usage(self, ptr: Any) -> None:
        prompt = int(_ffi.lib.gr_stream_prompt_token_count(ptr))
        total = int(_ffi.lib.gr_stream_total_token_count(ptr))
        self._prompt_tokens = None if prompt < 0 else prompt
        self._total_tokens = None if total < 0 else total

    @property
    def prompt_token_count(self) -> Optional[int]:
        """``usageMetadata.promptTokenCount`` of the last event that carried one (the input
        tokens, for token limits); ``None`` before any."""
        return self._prompt_tokens

    @property
    def total_token_count(self) -> Optional[int]:
        """``usageMetadata.totalTokenCount`` of the last event that carried one."""
        return self._total_tokens

    def close(self) -> None:
        """Ends the stream now: closes the HTTP request and releases the key's slot. Safe to
        call twice, and from another thread."""
        self._handle.interrupt()
        self._handle.close()
        borrow, self._pool_borrow = self._pool_borrow, None
        if borrow is not None:
            borrow.__exit__(None, None, None)

    def __enter__(self) -> "GenerateContentStream":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - a finalizer must not raise
            pass

    def __repr__(self) -> str:
        state = "closed" if self._handle.closed else "open"
        return f"<gemini_rotator.GenerateContentStream {state} key={self.key_fingerprint}>"


class AsyncGenerateContentStream:
    """:class:`GenerateContentStream` for ``async for``: opening and every event run in a
    worker thread, so the event loop keeps running. Cancelling the task that awaits it closes
    the HTTP request itself and releases the key's slot at once. ``aclose()`` or
    ``async with`` end it early."""

    def __init__(self, opener: Callable[[Optional[CancelToken]], GenerateContentStream]) -> None:
        self._opener = opener
        self._stream: Optional[GenerateContentStream] = None
        self._closed = False

    def __aiter__(self) -> "AsyncGenerateContentStream":
        return self

    async def __anext__(self) -> GenerateContentResponse:
        if self._closed:
            raise StopAsyncIteration
        if self._stream is None:
            self._stream = await run_cancellable(self._opener)
        stream = self._stream
        try:
            event = await run_blocking(stream._next_or_none)
        except asyncio.CancelledError:
            # The worker is blocked in gr_stream_next: closing interrupts it.
            stream.close()
            raise
        if event is None:
            self._closed = True
            raise StopAsyncIteration
        return event

    @property
    def stream(self) -> Optional[GenerateContentStream]:
        """The open stream (its key, token counts), once the first event was awaited."""
        return self._stream

    async def aclose(self) -> None:
        self._closed = True
        if self._stream is not None:
            self._stream.close()

    async def __aenter__(self) -> "AsyncGenerateContentStream":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __del__(self) -> None:
        if self._stream is not None:
            try:
                self._stream.close()
            except Exception:  # noqa: BLE001 - a finalizer must not raise
                pass
