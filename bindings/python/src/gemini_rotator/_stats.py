"""The pool's statistics snapshot (``KeyPool.stats()``) as Python objects.

Field names follow the library's JSON (``gr_stats_json``) one for one: per key its quota group
and, per model the pool has used, the group's record (:class:`KeyModelStats`); per model
pool-wide, the requests left today and the fallbacks it served (:class:`PoolModelStats`).
Fields a newer library adds are kept in ``raw``; fields an older one lacks read as 0 / None.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, TypeVar


@dataclass(frozen=True)
class KeyModelStats:
    """One model's quotas for a key's quota group (``keys[].models[]``): the limits in force
    (lowered when the service said so) and what the group has used of them. Keys of one
    project show the same figures."""

    #: The model (without ``models/``).
    model: str
    #: Requests allowed per window, and the requests in the current rolling window (finished
    #: or in flight), of which ``in_flight`` are running now.
    rate_limit: int
    window_ms: int
    in_window: int
    in_flight: int
    #: Requests allowed per Pacific day (None: no daily limit), and those counted today.
    daily_limit: Optional[int]
    today: int
    #: Input tokens allowed per window (None: no token limit), and those reserved in it.
    token_limit: Optional[int]
    tokens_in_window: int
    #: Milliseconds left of a cooldown (0: none), and its cause: None, "per_minute",
    #: "per_day" or "capacity".
    cooldown_remaining_ms: int
    cooldown_cause: Optional[str]
    #: The service answered "limit: 0": the model is not on the group's tier (for
    #: ``unavailable_remaining_ms`` still), so the pool asks other keys.
    unavailable: bool
    unavailable_remaining_ms: int
    #: Calls this model served on the group as another model's fallback.
    fallbacks: int


@dataclass(frozen=True)
class PoolModelStats:
    """One model's pool-wide figures (``models[]``)."""

    model: str
    #: Requests the pool's quota groups may still send today for the model (each group
    #: counted once, groups without the model left out); None when some group has no daily
    #: limit.
    requests_left_today: Optional[int]
    #: Calls this model served in place of another (its fallbacks).
    fallbacks: int


_Model = TypeVar("_Model", KeyModelStats, PoolModelStats)


def _find_model(models: Sequence[_Model], model: str) -> _Model:
    name = model.removeprefix("models/")
    for entry in models:
        if entry.model == name:
            return entry
    raise KeyError(f"no statistics for model {name!r}: the pool has not used it")


@dataclass(frozen=True)
class KeyStats:
    """One key, named by its fingerprint (never by the key itself). ``limit`` ..
    ``cooldown_cause`` are the key's group's figures of the pool's default model (the first
    of ``models``)."""

    fingerprint: str
    #: "free" or "paid".
    tier: str
    #: The key's quota group: its project (``PROJECT:KEY``), or ``key:`` and an identity of
    #: the key for a key without one. Keys of one group share every limit.
    group: str
    #: Requests allowed per window.
    limit: int
    window_ms: int
    #: Requests admitted within the current window.
    in_window: int
    #: Requests running now.
    in_flight: int
    #: Milliseconds until a cooldown (after a 429) ends; 0 when none.
    cooldown_remaining_ms: int
    #: None, "per_minute", "per_day" or "capacity".
    cooldown_cause: Optional[str]
    #: None, or why the key is disabled: "API_KEY_INVALID", "LEAKED", "CONSUMER_SUSPENDED",
    #: "SERVICE_DISABLED", "PERMISSION_DENIED".
    disabled: Optional[str]
    #: The key's group's quotas per model the pool has used, the default model first.
    models: List[KeyModelStats]
    admitted: int
    succeeded: int
    refused: int
    upstream_429: int
    invalid_key: int
    permission_denied: int
    server_errors: int
    transport_errors: int
    timeouts: int
    client_errors: int
    retries: int

    @property
    def usable(self) -> bool:
        return self.disabled is None

    def model(self, model: str) -> KeyModelStats:
        """The group's quotas of ``model`` (``models/`` optional); KeyError if the pool has
        not used it."""
        return _find_model(self.models, model)


@dataclass(frozen=True)
class LatencyHistogram:
    count: int
    sum_seconds: float
    #: Cumulative counts: (upper bound in seconds, requests at most that long); the last bound
    #: is ``float("inf")``.
    buckets: Tuple[Tuple[float, int], ...]


@dataclass(frozen=True)
class PoolCounters:
    requests: int
    succeeded: int
    failed: int
    paid_fallbacks: int
    #: Calls served by a fallback of the model they asked for (per model: ``PoolStats.models``).
    model_fallbacks: int
    #: Calls refused because every key was at its limit.
    exhausted: int
    latency: LatencyHistogram


@dataclass(frozen=True)
class PoolStats:
    #: The library version that made the snapshot.
    version: str
    #: Where key state is kept ("memory", ...).
    state: str
    keys: List[KeyStats]
    #: Per model the pool has used (the default first): requests left today, fallbacks.
    models: List[PoolModelStats]
    pool: PoolCounters
    #: The snapshot as the library gave it.
    raw: Dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    def key(self, fingerprint: str) -> KeyStats:
        """The statistics of the key with this fingerprint (see :func:`fingerprint`)."""
        for key in self.keys:
            if key.fingerprint == fingerprint:
                return key
        raise KeyError(f"no key with fingerprint {fingerprint!r} in this pool")

    def model(self, model: str) -> PoolModelStats:
        """The pool-wide figures of ``model`` (``models/`` optional); KeyError if the pool has
        not used it."""
        return _find_model(self.models, model)


_INT_FIELDS = (
    "limit",
    "window_ms",
    "in_window",
    "in_flight",
    "cooldown_remaining_ms",
    "admitted",
    "succeeded",
    "refused",
    "upstream_429",
    "invalid_key",
    "permission_denied",
    "server_errors",
    "transport_errors",
    "timeouts",
    "client_errors",
    "retries",
)


_MODEL_INT_FIELDS = (
    "rate_limit",
    "window_ms",
    "in_window",
    "in_flight",
    "today",
    "tokens_in_window",
    "cooldown_remaining_ms",
    "unavailable_remaining_ms",
    "fallbacks",
)


def _optional_int(value: Any) -> Optional[int]:
    return None if value is None else int(value)


def _key_model_stats(data: Dict[str, Any]) -> KeyModelStats:
    ints = {name: int(data.get(name) or 0) for name in _MODEL_INT_FIELDS}
    return KeyModelStats(
        model=str(data.get("model", "")),
        daily_limit=_optional_int(data.get("daily_limit")),
        token_limit=_optional_int(data.get("token_limit")),
        cooldown_cause=data.get("cooldown_cause"),
        unavailable=bool(data.get("unavailable")),
        **ints,
    )


def _pool_model_stats(data: Dict[str, Any]) -> PoolModelStats:
    return PoolModelStats(
        model=str(data.get("model", "")),
        requests_left_today=_optional_int(data.get("requests_left_today")),
        fallbacks=int(data.get("fallbacks") or 0),
    )


def _key_stats(data: Dict[str, Any]) -> KeyStats:
    ints = {name: int(data.get(name) or 0) for name in _INT_FIELDS}
    return KeyStats(
        fingerprint=str(data.get("fingerprint", "")),
        tier=str(data.get("tier", "")),
        group=str(data.get("group", "")),
        cooldown_cause=data.get("cooldown_cause"),
        disabled=data.get("disabled"),
        models=[_key_model_stats(m) for m in data.get("models") or ()],
        **ints,
    )


def _bound(value: Any) -> float:
    return float("inf") if value == "+Inf" else float(value)


def _latency(data: Dict[str, Any]) -> LatencyHistogram:
    return LatencyHistogram(
        count=int(data.get("count") or 0),
        sum_seconds=float(data.get("sum_seconds") or 0.0),
        buckets=tuple((_bound(bound), int(n)) for bound, n in data.get("buckets") or ()),
    )


def parse_stats(data: Dict[str, Any]) -> PoolStats:
    pool = data.get("pool") or {}
    return PoolStats(
        version=str(data.get("version", "")),
        state=str(data.get("state", "")),
        keys=[_key_stats(key) for key in data.get("keys") or ()],
        models=[_pool_model_stats(m) for m in data.get("models") or ()],
        pool=PoolCounters(
            requests=int(pool.get("requests") or 0),
            succeeded=int(pool.get("succeeded") or 0),
            failed=int(pool.get("failed") or 0),
            paid_fallbacks=int(pool.get("paid_fallbacks") or 0),
            model_fallbacks=int(pool.get("model_fallbacks") or 0),
            exhausted=int(pool.get("exhausted") or 0),
            latency=_latency(pool.get("latency") or {}),
        ),
        raw=data,
    )
