"""The model methods beyond generateContent (countTokens, embedContent, batchEmbedContents),
the models list, and the cancel token that lets an asyncio cancellation stop the HTTP request
itself, not only the wait for it.

Every call here goes through ``gr_call`` / ``gr_list_models``: the same rotation, limits,
retries and reactions as ``generate_content``, under the model's own limits.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

from . import _ffi
from . import _validate as check
from ._calls import Served, response_call, served_call
from ._errors import GeminiError, check as check_status
from ._managed import Managed
from ._pool import KeyPool
from ._request import encode
from ._threads import run_blocking

T = TypeVar("T")

#: The model embeddings use when none is given (the pool's default model is a generating one).
DEFAULT_EMBEDDING_MODEL = "gemini-embedding-001"


class CancelToken(Managed["_ffi.CancelPtr"]):  # type: ignore[valid-type]
    """A gr_cancel: triggered from the event loop's thread, it stops the C call (and its HTTP
    request) running in a worker thread. Freed only once no call uses it."""

    _free = _ffi.lib.gr_cancel_free

    def __init__(self) -> None:
        ptr = _ffi.CancelPtr()
        error = _ffi.ErrorPtr()
        check_status(_ffi.lib.gr_cancel_new(ctypes.byref(ptr), ctypes.byref(error)), error)
        self._adopt(ptr)

    def trigger(self) -> None:
        with self._borrow() as ptr:
            _ffi.lib.gr_cancel_trigger(ptr)


async def run_cancellable(function: Callable[[Optional[CancelToken]], T]) -> T:
    """Runs ``function(token)`` in a worker thread; cancelling the awaiting task triggers the
    token, so the library closes the HTTP request at once and the thread returns."""
    token = CancelToken()
    try:
        return await run_blocking(_with_token, function, token)
    except asyncio.CancelledError:
        token.trigger()
        raise
    finally:
        token.close()  # freed by the worker's borrow once the call returned, if it still runs


def _with_token(function: Callable[[Optional[CancelToken]], T], token: CancelToken) -> T:
    # Borrowed for the whole call: the token outlives every C call it was given to.
    with token._borrow():
        return function(token)


def cancel_ptr(token: Optional[CancelToken]) -> Any:
    """The token's C pointer (NULL for none); the caller holds a borrow of it."""
    return None if token is None else token._ptr


def call_served(
    pool: KeyPool,
    method: str,
    model: Optional[bytes],
    request_json: bytes,
    max_wait_ms: int = 0,
    timeout_ms: int = 0,
    cancel: Optional[CancelToken] = None,
) -> Served:
    """One gr_call: the answer JSON's bytes, and the key and the model that served it."""
    with pool._borrow() as ptr:
        return served_call(
            _ffi.lib.gr_call,
            ptr,
            model,
            method.encode("ascii"),
            request_json,
            max_wait_ms,
            timeout_ms,
            cancel_ptr(cancel),
        )


def call(
    pool: KeyPool,
    method: str,
    model: Optional[bytes],
    request_json: bytes,
    max_wait_ms: int = 0,
    timeout_ms: int = 0,
    cancel: Optional[CancelToken] = None,
) -> Tuple[bytes, str]:
    """:func:`call_served`'s (the answer JSON's bytes, the serving key's fingerprint)."""
    served = call_served(pool, method, model, request_json, max_wait_ms, timeout_ms, cancel)
    return served.body, served.key_fingerprint


def _json(answer: bytes) -> Dict[str, Any]:
    try:
        value = json.loads(answer)
    except ValueError as e:
        raise GeminiError(f"the service's answer is not valid JSON: {e}") from None
    if not isinstance(value, dict):
        raise GeminiError("the service's answer is not a JSON object")
    return value


def _model(name: str, model: Optional[str]) -> Optional[bytes]:
    value = check.optional_string(name, model)
    return None if value is None else value.encode("utf-8")


def count_tokens(pool: KeyPool, request: Dict[str, Any], model: Optional[str]) -> int:
    answer, _ = call(pool, "countTokens", _model("model", model), encode(request))
    total = _json(answer).get("totalTokens")
    if not isinstance(total, int):
        raise GeminiError("the countTokens answer has no totalTokens")
    return total


def _embed_fields(
    text: str, task_type: Optional[str], output_dimensionality: Optional[int]
) -> Dict[str, Any]:
    body: Dict[str, Any] = {"content": {"parts": [{"text": text}]}}
    if task_type is not None:
        body["taskType"] = check.string("task_type", task_type)
    if output_dimensionality is not None:
        body["outputDimensionality"] = check.integer(
            "output_dimensionality", output_dimensionality, minimum=1
        )
    return body


def _values(embedding: Any) -> List[float]:
    values = embedding.get("values") if isinstance(embedding, dict) else None
    if not isinstance(values, list):
        raise GeminiError("the embedding answer has no values")
    return [float(v) for v in values]


def embed_content(
    pool: KeyPool,
    text: str,
    model: Optional[str],
    task_type: Optional[str],
    output_dimensionality: Optional[int],
) -> List[float]:
    body = _embed_fields(check.string("text", text), task_type, output_dimensionality)
    name = check.optional_string("model", model) or DEFAULT_EMBEDDING_MODEL
    answer, _ = call(pool, "embedContent", name.encode("utf-8"), encode(body))
    return _values(_json(answer).get("embedding"))


def batch_embed_contents(
    pool: KeyPool,
    texts: Sequence[str],
    model: Optional[str],
    task_type: Optional[str],
    output_dimensionality: Optional[int],
) -> List[List[float]]:
    items = check.string_list("texts", texts)
    name = check.optional_string("model", model) or DEFAULT_EMBEDDING_MODEL
    requests = []
    for text in items:
        one = _embed_fields(text, task_type, output_dimensionality)
        one["model"] = f"models/{name.removeprefix('models/')}"
        requests.append(one)
    answer, _ = call(
        pool, "batchEmbedContents", name.encode("utf-8"), encode({"requests": requests})
    )
    embeddings = _json(answer).get("embeddings")
    if not isinstance(embeddings, list) or len(embeddings) != len(items):
        raise GeminiError("the batchEmbedContents answer does not have one embedding per text")
    return [_values(e) for e in embeddings]


def list_models(pool: KeyPool) -> List[Dict[str, Any]]:
    """Every model of the list, page after page."""
    models: List[Dict[str, Any]] = []
    token = b""
    while True:
        with pool._borrow() as ptr:
            answer, _ = response_call(_ffi.lib.gr_list_models, ptr, 0, token, None)
        page = _json(answer)
        models.extend(m for m in page.get("models", []) if isinstance(m, dict))
        next_token = page.get("nextPageToken")
        if not next_token:
            return models
        token = str(next_token).encode("utf-8")
