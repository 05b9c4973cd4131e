"""Prometheus: the pool's exposition text, and the prometheus_client collector."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Dict, FrozenSet, Tuple

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gemini_rotator import AllKeysRateLimitedError, GeminiClient, KeyPool, fingerprint
from gemini_rotator.prometheus import RotatorCollector

SampleId = Tuple[str, FrozenSet[Tuple[str, str]]]

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')


def sample(name: str, **labels: str) -> SampleId:
    return name, frozenset(labels.items())


def parse_text(text: str) -> Tuple[Dict[SampleId, float], Dict[str, str]]:
    """The exposition, read line by line and strictly: samples, and the TYPE of each family."""
    samples: Dict[SampleId, float] = {}
    types: Dict[str, str] = {}
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line[len("# TYPE "):].split(" ")
            assert name not in types, f"repeated TYPE: {line}"
            types[name] = kind
            continue
        if line.startswith("# HELP "):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, label_text, value = match.groups()
        labels = LABEL.findall(label_text or "")
        assert ",".join(f'{k}="{v}"' for k, v in labels) == (label_text or ""), line
        sid = (name, frozenset(labels))
        assert sid not in samples, f"repeated sample: {line}"
        samples[sid] = float(value)
    return samples, types


def run_scenario(emulator, make_pool):
    """One free key (limit 2) and a paid key (limit 2): four calls served, two by each; the
    fifth finds every key full."""
    free, paid = emulator.add_keys(2)
    pool = make_pool([free], paid, free_rate_limit=2, paid_rate_limit=2, window_ms=3_600_000)
    client = GeminiClient(pool)
    for i in range(4):
        assert client.simple_query(f"q{i}") == f"echo: q{i}"
    with pytest.raises(AllKeysRateLimitedError):
        client.simple_query("one too many")
    return pool, free, paid


def expected(free, paid) -> Dict[SampleId, float]:
    f = {"key": fingerprint(free.secret), "tier": "free"}
    p = {"key": fingerprint(paid.secret), "tier": "paid"}
    return {
        sample("gemini_rotator_key_admitted_total", **f): 2,
        sample("gemini_rotator_key_admitted_total", **p): 2,
        sample("gemini_rotator_key_succeeded_total", **f): 2,
        sample("gemini_rotator_key_succeeded_total", **p): 2,
        sample("gemini_rotator_key_upstream_rate_limited_total", **f): 0,
        sample("gemini_rotator_key_errors_total", class_="server_error", **f): 0,
        sample("gemini_rotator_key_window_requests", **f): 2,
        sample("gemini_rotator_key_window_limit_requests", **p): 2,
        sample("gemini_rotator_key_window_seconds", **f): 3600,
        sample("gemini_rotator_key_disabled", reason="none", **p): 0,
        sample("gemini_rotator_requests_total"): 5,
        sample("gemini_rotator_requests_succeeded_total"): 4,
        sample("gemini_rotator_requests_failed_total"): 1,
        sample("gemini_rotator_paid_fallbacks_total"): 2,
        sample("gemini_rotator_exhausted_total"): 1,
        sample("gemini_rotator_upstream_latency_seconds_count"): 4,
        sample("gemini_rotator_upstream_latency_seconds_bucket", le="+Inf"): 4,
    }


def fix_class_label(wanted: Dict[SampleId, float]) -> Dict[SampleId, float]:
    # `class` is a Python keyword: written class_ above.
    return {
        (name, frozenset((k.rstrip("_"), v) for k, v in labels)): value
        for (name, labels), value in wanted.items()
    }


def test_metrics_text_counts_the_calls(emulator, make_pool):
    pool, free, paid = run_scenario(emulator, make_pool)

    text = pool.metrics_prometheus()

    assert free.secret not in text and paid.secret not in text
    samples, types = parse_text(text)
    for sid, value in fix_class_label(expected(free, paid)).items():
        assert samples.get(sid) == value, f"{sid}: {samples.get(sid)} != {value}"
    fingerprints = {fingerprint(free.secret), fingerprint(paid.secret)}
    for name, labels in samples:
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        assert family in types, f"{name} has no TYPE"
        if types[family] == "counter":
            assert name.endswith("_total")
        key = dict(labels).get("key")
        assert key is None or key in fingerprints, f"{name} names a key not of the pool"
    # The same figures as stats().
    refused = pool.stats().key(fingerprint(free.secret)).refused
    local_refusals = sample(
        "gemini_rotator_key_local_refusals_total", key=fingerprint(free.secret), tier="free"
    )
    assert samples[local_refusals] == refused > 0


def collected(registry: CollectorRegistry) -> Dict[SampleId, float]:
    """generate_latest()'s output, parsed back by prometheus_client's own parser."""
    out = generate_latest(registry).decode("utf-8")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(out)
        for s in family.samples
    }


def test_collector_in_a_registry(emulator, make_pool):
    pool, free, paid = run_scenario(emulator, make_pool)
    registry = CollectorRegistry()
    registry.register(RotatorCollector(pool))

    got = collected(registry)

    for sid, value in fix_class_label(expected(free, paid)).items():
        assert got.get(sid) == value, f"{sid}: {got.get(sid)} != {value}"
    # Every sample of the library's text, and nothing else, with the same value.
    direct, _ = parse_text(pool.metrics_prometheus())
    assert got == direct
    assert fingerprint(free.secret) in generate_latest(registry).decode()

    # A closed pool yields nothing; the registry can still be scraped.
    pool.close()
    assert collected(registry) == {}


def test_collector_takes_only_a_pool():
    with pytest.raises(TypeError, match="KeyPool"):
        RotatorCollector("not a pool")  # type: ignore[arg-type]


def test_without_prometheus_client_only_the_collector_module_fails():
    blocked = "import sys; sys.modules['prometheus_client'] = None; "
    plain = subprocess.run(
        [sys.executable, "-c", blocked + "import gemini_rotator; print(gemini_rotator.KeyPool)"],
        capture_output=True,
        text=True,
    )
    assert plain.returncode == 0, plain.stderr
    collector = subprocess.run(
        [sys.executable, "-c", blocked + "import gemini_rotator.prometheus"],
        capture_output=True,
        text=True,
    )
    assert collector.returncode != 0
    assert "ImportError" in collector.stderr
    assert "pip install prometheus_client" in collector.stderr


def test_metrics_of_a_closed_pool_raise(make_pool, emulator):
    from gemini_rotator import PoolClosedError

    pool: KeyPool = make_pool([emulator.add_key()])
    pool.close()
    with pytest.raises(PoolClosedError):
        pool.metrics_prometheus()
