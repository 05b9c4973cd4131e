"""KeyPool: the library's ``gr_pool`` (keys, their limits, the HTTP client) as a Python object."""

from __future__ import annotations

import ctypes
import json
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, TypedDict

from . import _ffi
from . import _validate as check
from ._calls import response_call, string_call
from ._errors import check as check_status
from ._managed import Managed
from ._stats import PoolStats, parse_stats


class ModelLimits(TypedDict, total=False):
    """One model's entry of ``KeyPool(models=...)``: its own limits (a limit left out is the
    global setting of the same name) and ``fallback``, the models that serve a call, in order,
    when no key can serve this one (a fallback model need not be listed; a cycle is an error)."""

    free_rate_limit: int
    free_daily_limit: int
    free_token_limit: int
    paid_rate_limit: int
    paid_daily_limit: int
    paid_token_limit: int
    fallback: List[str]


#: The fields of a model's entry whose values are counts.
_MODEL_LIMITS = tuple(name for name in ModelLimits.__annotations__ if name != "fallback")


def _models(value: object) -> Optional[Dict[str, Dict[str, Any]]]:
    """``models`` checked for types; names, ranges and cycles are the library's to check (its
    error names the field as a path, ``models."MODEL".free_daily_limit``)."""
    if value is None:
        return None
    out: Dict[str, Dict[str, Any]] = {}
    for model, limits in check.mapping("models", value).items():
        check.string("a key of models", model, empty_ok=True)
        where = f"models[{model!r}]"
        entry = dict(check.mapping(where, limits))
        for name, item in entry.items():
            if name in _MODEL_LIMITS:
                check.integer(f"{where}[{name!r}]", item, minimum=-(2**63))
            elif name == "fallback":
                entry[name] = check.string_list(f"{where}['fallback']", item)
            # Another field is left to the library, which names it as unknown.
        out[model] = entry
    return out


def _key_parts(entries: Sequence[str]) -> Tuple[str, ...]:
    """The keys of ``PROJECT:KEY`` entries, so that an error never shows one on its own."""
    return tuple(entry.split(":", 1)[1].strip() for entry in entries if ":" in entry)


class KeyPool(Managed["_ffi.PoolPtr"]):  # type: ignore[valid-type]
    """A pool of Gemini API keys.

    Free keys are used round-robin, each quota group held to ``free_rate_limit`` requests per
    model in any rolling window of ``window_ms`` milliseconds; the paid key only when no free
    key can serve the model. An entry ``"PROJECT:KEY"`` (of ``free_keys`` or ``paid_key``) puts
    the key in a Cloud project: keys of one project share every limit, a key without one is a
    group of its own. ``free_daily_limit`` / ``paid_daily_limit`` (requests per Pacific day) and
    ``free_token_limit`` / ``paid_token_limit`` (input tokens per window) are off unless set;
    ``models`` maps a model name to its own limits and fallbacks (:class:`ModelLimits`). Key
    state belongs to the key, so every pool of the process with the same key shares its limit.

    Thread-safe: one pool serves any number of threads (calls run in parallel, without the GIL).
    Close it with :meth:`close` or a ``with`` block; see the package README for fork and spawn.

    The arguments are the library's settings (the README's Configuration table), by their JSON
    names. Arguments left at ``None`` take the library's defaults (``base_url``
    "https://generativelanguage.googleapis.com", ``model`` "gemini-3.6-flash", ``timeout_ms``
    120000, ``max_attempts`` 8, ``max_retries`` 3, ``retry_base_ms`` 500, ``retry_max_ms``
    16000, ``state`` "shm": the host's shared memory, or ``GEMINI_ROTATOR_STATE`` when set).
    ``stream_first_event_timeout_ms`` 60000: a stream that sends no event this long is
    abandoned and retried on another key; ``stream_idle_timeout_ms`` 60000: a longer gap
    between events ends it with :class:`GeminiTimeoutError`.
    ``log`` ("off", "error", "warn", "info" or "debug") sets the process-wide log level when
    the pool is created; ``None`` leaves it as it is. Invalid values raise :class:`TypeError`,
    :class:`ValueError` or :class:`ConfigError`, naming the argument.
    """

    _free = _ffi.lib.gr_pool_free

    def __init__(
        self,
        free_keys: Sequence[str],
        paid_key: Optional[str] = None,
        free_rate_limit: int = 60,
        paid_rate_limit: int = 1000,
        window_ms: int = 60000,
        base_url: Optional[str] = None,
        model: Optional[str] = None,
        timeout_ms: Optional[int] = None,
        *,
        max_attempts: Optional[int] = None,
        max_retries: Optional[int] = None,
        retry_base_ms: Optional[int] = None,
        retry_max_ms: Optional[int] = None,
        state: Optional[str] = None,
        log: Optional[str] = None,
        free_daily_limit: Optional[int] = None,
        paid_daily_limit: Optional[int] = None,
        free_token_limit: Optional[int] = None,
        paid_token_limit: Optional[int] = None,
        models: Optional[Mapping[str, ModelLimits]] = None,
        stream_first_event_timeout_ms: Optional[int] = None,
        stream_idle_timeout_ms: Optional[int] = None,
    ) -> None:
        keys = check.string_list("free_keys", free_keys)

        def limit(name: str, value: Optional[int]) -> Optional[int]:
            return check.optional_integer(name, value, minimum=1)

        config: Dict[str, Any] = {
            "free_keys": keys,
            "paid_key": check.optional_string("paid_key", paid_key),
            "free_rate_limit": check.integer("free_rate_limit", free_rate_limit, minimum=1),
            "paid_rate_limit": check.integer("paid_rate_limit", paid_rate_limit, minimum=1),
            "window_ms": check.integer("window_ms", window_ms, minimum=1),
            "base_url": check.optional_string("base_url", base_url),
            "model": check.optional_string("model", model),
            "timeout_ms": check.optional_integer("timeout_ms", timeout_ms, minimum=1),
            "max_attempts": check.optional_integer("max_attempts", max_attempts, minimum=1),
            "max_retries": check.optional_integer("max_retries", max_retries),
            "retry_base_ms": check.optional_integer("retry_base_ms", retry_base_ms),
            "retry_max_ms": check.optional_integer("retry_max_ms", retry_max_ms),
            "state": check.optional_string("state", state),
            "log": check.optional_string("log", log),
            "free_daily_limit": limit("free_daily_limit", free_daily_limit),
            "paid_daily_limit": limit("paid_daily_limit", paid_daily_limit),
            "free_token_limit": limit("free_token_limit", free_token_limit),
            "paid_token_limit": limit("paid_token_limit", paid_token_limit),
            "models": _models(models),
            "stream_first_event_timeout_ms": limit(
                "stream_first_event_timeout_ms", stream_first_event_timeout_ms
            ),
            "stream_idle_timeout_ms": limit("stream_idle_timeout_ms", stream_idle_timeout_ms),
        }
        # Unset settings are left out, so the library's defaults apply.
        body = {name: value for name, value in config.items() if value is not None}
        entries = keys + ([paid_key] if paid_key else [])
        secrets = tuple(entries) + _key_parts(entries)
        self._create(json.dumps(body, ensure_ascii=False).encode("utf-8"), secrets)

    @classmethod
    def from_env(cls) -> "KeyPool":
        """A pool configured by the environment: ``GEMINI_FREE_KEYS`` (comma-separated),
        ``GEMINI_PAID_KEY``, ``GEMINI_FREE_RATE_LIMIT``, ``GEMINI_PAID_RATE_LIMIT``,
        ``GEMINI_RATE_WINDOW_MS``, ``GEMINI_BASE_URL``, ``GEMINI_MODEL``, ``GEMINI_TIMEOUT_MS``,
        ``GEMINI_MAX_ATTEMPTS``, ``GEMINI_MAX_RETRIES``, ``GEMINI_RETRY_BASE_MS``,
        ``GEMINI_RETRY_MAX_MS``, ``GEMINI_ROTATOR_STATE``, ``GEMINI_ROTATOR_LOG``,
        ``GEMINI_FREE_DAILY_LIMIT``, ``GEMINI_PAID_DAILY_LIMIT``, ``GEMINI_FREE_TOKEN_LIMIT``,
        ``GEMINI_PAID_TOKEN_LIMIT``, ``GEMINI_STREAM_FIRST_EVENT_TIMEOUT_MS``,
        ``GEMINI_STREAM_IDLE_TIMEOUT_MS``, the Redis settings of the host
        (``GEMINI_ROTATOR_REDIS_PREFIX``, ``GEMINI_ROTATOR_REDIS_ON_FAILURE``,
        ``GEMINI_ROTATOR_REDIS_TIMEOUT_MS``, ``GEMINI_ROTATOR_REDIS_CA_FILE``, read from the
        environment for every pool, like the state), and ``GEMINI_ROTATOR_CONFIG``: a config file (JSON, or TOML
        when its name ends in ``.toml``) with the fields of ``KeyPool(...)``, ``models``
        included, whose fields a variable that is set overrides. Raises :class:`ConfigError`
        naming the variable (or the file and its field) that is missing or wrong."""
        pool = cls.__new__(cls)
        pool._create(None, ())
        return pool

    def _create(self, config_json: Optional[bytes], secrets: Tuple[str, ...]) -> None:
        ptr = _ffi.PoolPtr()
        error = _ffi.ErrorPtr()
        status = _ffi.lib.gr_pool_new(config_json, ctypes.byref(ptr), ctypes.byref(error))
        check_status(status, error, secrets)
        self._adopt(ptr)

    def stats(self) -> PoolStats:
        """A snapshot of the statistics: per key (by fingerprint) its limit, use of the current
        window, cooldown, disabled reason and counters; pool-wide counters and latency."""
        with self._borrow() as ptr:
            data = string_call(_ffi.lib.gr_stats_json, ptr)
        return parse_stats(json.loads(data or b"{}"))

    def metrics_prometheus(self) -> str:
        """The statistics in the Prometheus text exposition format (version 0.0.4), ready to
        serve on a ``/metrics`` page: ``_total`` counters, seconds, and ``key`` (fingerprint)
        and ``tier`` labels. With shared state (the default) the figures cover every process of
        the host that uses the same keys. See also :mod:`gemini_rotator.prometheus`."""
        with self._borrow() as ptr:
            text = string_call(_ffi.lib.gr_metrics_prometheus, ptr)
        return text.decode("utf-8")

    def _generate(
        self, request_json: bytes, model: Optional[bytes], max_wait_ms: int, timeout_ms: int
    ) -> Tuple[bytes, str]:
        """One gr_generate call: (the response JSON's bytes as received, the fingerprint of the
        key that served it)."""
        with self._borrow() as ptr:
            return response_call(
                _ffi.lib.gr_generate, ptr, model, request_json, max_wait_ms, timeout_ms
            )

    def __repr__(self) -> str:
        return f"<gemini_rotator.KeyPool {'closed' if self.closed else 'open'}>"


def fingerprint(key: str) -> str:
    """The fingerprint (12 hex digits) under which the library shows ``key`` in statistics and
    messages, so a program can match them to its keys without printing the keys."""
    data = check.string("key", key).encode("utf-8")
    return string_call(_ffi.lib.gr_key_fingerprint, data, secrets=(key,)).decode("ascii")


def library_version() -> str:
    """The version of the loaded libgemini_rotator (e.g. "0.2.0")."""
    return _ffi.version()
