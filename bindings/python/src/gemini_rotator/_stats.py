"""The pool's statistics snapshot (``KeyPool.stats()``) as Python objects.

Field names follow the library's JSON (``gr_stats_json``) one for one. Fields a newer library
adds are kept in ``raw``; fields an older one lacks read as 0 / None.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple


@dataclass(frozen=True)
class KeyStats:
    """One key, named by its fingerprint (never by the key itself)."""

    fingerprint: str
    #: "free" or "paid".
    tier: str
    #: Requests allowed per window.
    limit: int
    window_ms: int
    #: Requests admitted within the current window.
    in_window: int
    #: Requests running now.
    in_flight: int
    #: Milliseconds until a cooldown (after a 429) ends; 0 when none.
    cooldown_remaining_ms: int
    #: None, "per_minute" or "per_day".
    cooldown_cause: Optional[str]
    #: None, or why the key is disabled: "API_KEY_INVALID", "LEAKED", "CONSUMER_SUSPENDED",
    #: "SERVICE_DISABLED", "PERMISSION_DENIED".
    disabled: Optional[str]
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
    pool: PoolCounters
    #: The snapshot as the library gave it.
    raw: Dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    def key(self, fingerprint: str) -> KeyStats:
        """The statistics of the key with this fingerprint (see :func:`fingerprint`)."""
        for key in self.keys:
            if key.fingerprint == fingerprint:
                return key
        raise KeyError(f"no key with fingerprint {fingerprint!r} in this pool")


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


def _key_stats(data: Dict[str, Any]) -> KeyStats:
    ints = {name: int(data.get(name) or 0) for name in _INT_FIELDS}
    return KeyStats(
        fingerprint=str(data.get("fingerprint", "")),
        tier=str(data.get("tier", "")),
        cooldown_cause=data.get("cooldown_cause"),
        disabled=data.get("disabled"),
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
        pool=PoolCounters(
            requests=int(pool.get("requests") or 0),
            succeeded=int(pool.get("succeeded") or 0),
            failed=int(pool.get("failed") or 0),
            paid_fallbacks=int(pool.get("paid_fallbacks") or 0),
            exhausted=int(pool.get("exhausted") or 0),
            latency=_latency(pool.get("latency") or {}),
        ),
        raw=data,
    )
