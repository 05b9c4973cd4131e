"""A ``prometheus_client`` collector for a :class:`~gemini_rotator.KeyPool`.

::

    from prometheus_client import REGISTRY, start_http_server
    from gemini_rotator.prometheus import RotatorCollector

    REGISTRY.register(RotatorCollector(pool))
    start_http_server(9100)

Each scrape reads the pool's statistics (:meth:`KeyPool.metrics_prometheus`) and yields them as
metric families: per key (``key`` label: the fingerprint; ``tier``: free or paid) the requests
admitted and succeeded, local refusals, 429s, errors by class, retries, use of the window,
cooldown and disabled state; for the pool the calls, failures, paid fallbacks, exhaustion and
the upstream latency histogram. Keys never appear, only fingerprints.

Needs the optional ``prometheus_client`` package (``pip install 'gemini_rotator[prometheus]'``).
"""

from __future__ import annotations

try:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.parser import text_string_to_metric_families
except ImportError as error:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "gemini_rotator.prometheus needs the prometheus_client package, which is not "
        "installed: pip install prometheus_client (or pip install 'gemini_rotator[prometheus]')",
        name=__name__,
    ) from error

from typing import Iterator

from ._errors import PoolClosedError
from ._pool import KeyPool

__all__ = ["RotatorCollector"]


class RotatorCollector:
    """A custom collector (``collect()`` yields metric families) for one pool.

    Register one per pool in a registry: two pools' pool-wide series would have the same names
    and labels, which the registry refuses. A closed pool yields nothing, so the rest of the
    registry can still be scraped."""

    def __init__(self, pool: KeyPool) -> None:
        if not isinstance(pool, KeyPool):
            raise TypeError(f"RotatorCollector() takes a KeyPool, not {type(pool).__name__}")
        self._pool = pool

    def collect(self) -> Iterator[Metric]:
        try:
            text = self._pool.metrics_prometheus()
        except PoolClosedError:
            return
        yield from text_string_to_metric_families(text)

    def __repr__(self) -> str:
        return f"<gemini_rotator.prometheus.RotatorCollector for {self._pool!r}>"
