"""GeminiClient: ``simple_query`` / ``generate_content`` (and async twins), streams,
countTokens, embeddings and the models list, over a KeyPool."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from . import _endpoints
from . import _validate as check
from ._options import GenerateOptions, checked
from ._pool import KeyPool
from ._request import Content, build_request, encode
from ._response import GenerateContentResponse
from ._stream import AsyncGenerateContentStream, GenerateContentStream, open_stream

if sys.version_info >= (3, 11):
    from typing import Unpack
elif TYPE_CHECKING:  # annotations are never evaluated at run time (postponed evaluation)
    from typing_extensions import Unpack


def _resolve_pool(pool: object) -> Tuple[KeyPool, bool]:
    """(the pool, whether the client owns it)."""
    if pool is None:
        return KeyPool.from_env(), True
    if isinstance(pool, KeyPool):
        return pool, False
    carried = getattr(pool, "key_pool", None)
    if isinstance(carried, KeyPool):
        return carried, False
    if hasattr(pool, "key_pool"):
        raise TypeError(
            f"GeminiClient() got a {check.type_name(pool)} whose key_pool attribute is a "
            f"{check.type_name(carried)}, not a KeyPool"
        )
    raise TypeError(
        "GeminiClient() takes a KeyPool, an object with a key_pool attribute, or None "
        f"(a pool from the environment), not {check.type_name(pool)}"
    )


class _Call:
    """One checked, encoded request, ready to send (checked in the caller's thread, so bad
    arguments raise at once even for the async methods)."""

    __slots__ = ("request_json", "model", "max_wait_ms", "timeout_ms")

    def __init__(
        self, request_json: bytes, model: Optional[bytes], max_wait_ms: int, timeout_ms: int
    ) -> None:
        self.request_json = request_json
        self.model = model
        self.max_wait_ms = max_wait_ms
        self.timeout_ms = timeout_ms

    @classmethod
    def prepare(cls, method: str, prompt: Optional[str], options: Mapping[str, Any]) -> "_Call":
        """Checks and encodes one call of ``method`` (named in a bad keyword's TypeError)."""
        opts = checked(method, options)
        request_json = encode(build_request(prompt, opts))
        model_name = check.optional_string("model", opts.get("model"))
        max_wait, timeout = opts.get("max_wait"), opts.get("timeout")
        return cls(
            request_json,
            None if model_name is None else model_name.encode("utf-8"),
            0 if max_wait is None else check.seconds_to_ms("max_wait", max_wait, zero_ok=True),
            0 if timeout is None else check.seconds_to_ms("timeout", timeout, zero_ok=False),
        )

    def send(
        self, pool: KeyPool, cancel: Optional[_endpoints.CancelToken] = None
    ) -> GenerateContentResponse:
        served = _endpoints.call_served(
            pool,
            "generateContent",
            self.model,
            self.request_json,
            self.max_wait_ms,
            self.timeout_ms,
            cancel,
        )
        return GenerateContentResponse.from_json(served.body, served.key_fingerprint, served.model)

    def open_stream(
        self, pool: KeyPool, cancel: Optional[_endpoints.CancelToken] = None
    ) -> GenerateContentStream:
        return open_stream(
            pool, self.request_json, self.model, self.max_wait_ms, self.timeout_ms, cancel
        )


class GeminiClient:
    """Sends Gemini ``generateContent`` requests through a :class:`KeyPool`.

    ``GeminiClient()`` builds a pool from the environment (and closes it in :meth:`close`);
    ``GeminiClient(pool)`` uses the given pool, and ``GeminiClient(conn)`` the pool an
    application object carries in its ``key_pool`` attribute (neither is closed by the client).

    Thread-safe: share one client between threads.
    """

    def __init__(self, pool: Union[KeyPool, Any, None] = None) -> None:
        self._pool, self._owns_pool = _resolve_pool(pool)

    @property
    def pool(self) -> KeyPool:
        return self._pool

    def simple_query(self, prompt: str, *, model: Optional[str] = None) -> str:
        """Sends ``prompt`` as one user turn and returns the answer's text."""
        return self.generate_content(check.string("prompt", prompt), model=model).text

    def generate_content(
        self, prompt: Optional[str] = None, **options: Unpack[GenerateOptions]
    ) -> GenerateContentResponse:
        """Sends one ``generateContent`` request on the key the pool chooses.

        Give exactly one of ``prompt`` (one user turn) or ``contents`` (a list of Content
        dicts, sent as they are). The other keyword options are those of
        :class:`GenerateOptions` (``system_instruction``, ``temperature``,
        ``max_output_tokens``, ``top_p``, ``top_k``, ``stop_sequences``, ``response_mime_type``,
        ``safety_settings``, ``tools``, ``generation_config``, ``model``, ``max_wait``,
        ``timeout``); options left at ``None`` are not sent. ``generation_config`` adds further
        ``generationConfig`` fields (camelCase, e.g. ``{"seed": 1}``).

        ``model`` overrides the pool's default model. ``max_wait`` (seconds): when every key is
        at its limit, wait up to this long for one instead of raising
        :class:`AllKeysRateLimitedError` at once. ``timeout`` (seconds) shortens the pool's
        time budget for this call.
        """
        return _Call.prepare("generate_content", prompt, options).send(self._pool)

    async def asimple_query(self, prompt: str, *, model: Optional[str] = None) -> str:
        """:meth:`simple_query` in a worker thread: the event loop keeps running meanwhile."""
        response = await self.agenerate_content(check.string("prompt", prompt), model=model)
        return response.text

    async def agenerate_content(
        self, prompt: Optional[str] = None, **options: Unpack[GenerateOptions]
    ) -> GenerateContentResponse:
        """:meth:`generate_content` in a worker thread (same arguments); the event loop keeps
        running meanwhile.

        Arguments are checked before anything is sent. Cancelling the awaiting task stops the
        HTTP request itself at once (and frees the key's slot).
        """
        call = _Call.prepare("agenerate_content", prompt, options)
        pool = self._pool
        return await _endpoints.run_cancellable(lambda cancel: call.send(pool, cancel))

    def stream_generate_content(
        self, prompt: Optional[str] = None, **options: Unpack[GenerateOptions]
    ) -> GenerateContentStream:
        """Sends one ``streamGenerateContent`` request (same arguments as
        :meth:`generate_content`) and returns once the first event is in: an iterator of
        :class:`GenerateContentResponse`, one per event (``.text`` its text).

        Until the first event, failures (429, dead key, 5xx, connection, a stream that sends
        nothing within ``stream_first_event_timeout_ms``) are retried on another key unseen;
        after it, never: an error ends the iteration with an exception after the events
        already given. ``break`` (dropping the stream), ``close()`` or a ``with`` block end it
        early and free the key's slot at once.
        """
        return _Call.prepare("stream_generate_content", prompt, options).open_stream(self._pool)

    def astream_generate_content(
        self, prompt: Optional[str] = None, **options: Unpack[GenerateOptions]
    ) -> AsyncGenerateContentStream:
        """:meth:`stream_generate_content` for ``async for`` (same arguments, checked now; the
        stream opens on the first ``__anext__``). Cancelling the awaiting task stops the HTTP
        request itself and frees the key's slot."""
        call = _Call.prepare("astream_generate_content", prompt, options)
        pool = self._pool
        return AsyncGenerateContentStream(lambda cancel: call.open_stream(pool, cancel))

    def count_tokens(
        self,
        prompt: Optional[str] = None,
        *,
        contents: Optional[Sequence[Content]] = None,
        model: Optional[str] = None,
    ) -> int:
        """The ``totalTokens`` of ``prompt`` (one user turn) or ``contents``, by
        ``countTokens`` on the key the pool chooses (it counts against the model's limits)."""
        request = build_request(prompt, checked("count_tokens", {"contents": contents}))
        return _endpoints.count_tokens(self._pool, request, model)

    def embed_content(
        self,
        text: str,
        *,
        model: Optional[str] = None,
        task_type: Optional[str] = None,
        output_dimensionality: Optional[int] = None,
    ) -> List[float]:
        """The embedding of ``text`` (``embedContent``; ``model`` defaults to
        ``gemini-embedding-001``). ``task_type``: e.g. ``"RETRIEVAL_DOCUMENT"``."""
        return _endpoints.embed_content(
            self._pool, text, model, task_type, output_dimensionality
        )

    def batch_embed_contents(
        self,
        texts: Sequence[str],
        *,
        model: Optional[str] = None,
        task_type: Optional[str] = None,
        output_dimensionality: Optional[int] = None,
    ) -> List[List[float]]:
        """The embeddings of ``texts``, in order, in one ``batchEmbedContents`` request."""
        return _endpoints.batch_embed_contents(
            self._pool, texts, model, task_type, output_dimensionality
        )

    def list_models(self) -> List[Dict[str, Any]]:
        """Every model the service lists (all pages), as its JSON objects."""
        return _endpoints.list_models(self._pool)

    def close(self) -> None:
        """Closes the pool if the client made it (``GeminiClient()``); otherwise nothing."""
        if self._owns_pool:
            self._pool.close()

    def __enter__(self) -> "GeminiClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<gemini_rotator.GeminiClient pool={self._pool!r}>"
