"""Observability: a scripted workload with known numbers, then the statistics of the same key
set read from the same state file by four other processes (C, Go, Python, the CLI), as JSON,
as Go values, as Prometheus text and as the CLI's table. Every figure must agree everywhere,
and no output may contain a key."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, Tuple

import pytest
from prometheus_client.parser import text_string_to_metric_families

from crosslib import KeySet, clean_env
from gemini_rotator import AllKeysRateLimitedError, GeminiClient, KeyPool

WINDOW_MS = 60_000
ZERO = {"permission_denied": 0, "transport_errors": 0, "timeouts": 0, "client_errors": 0}
# The workload (six sequential calls, max_wait 0):
# 1. free0 -> 429 (cooldown 60 s, per minute); free1 -> 400 API_KEY_INVALID (disabled);
#    free2 -> 503, retried; free0 refused (cooldown), free1 refused (disabled), free2 -> 200.
#    Four attempts.
# 2, 3. free2 -> 200 (free0 and free1 are skipped on the process's hints, not asked again).
# 4. free2 refused (4 of 4 used) -> paid 200 (fallback). 5. paid 200 (fallback).
# 6. paid refused (2 of 2) -> "all API keys have reached their rate limits" (exhausted).
EXPECTED_KEYS: Dict[str, Dict[str, Any]] = {
    "free0": dict(tier="free", limit=4, admitted=1, succeeded=0, refused=1, upstream_429=1,
                  invalid_key=0, server_errors=0, retries=0, in_window=1,
                  cooldown_cause="per_minute", disabled=None, **ZERO),
    "free1": dict(tier="free", limit=4, admitted=1, succeeded=0, refused=1, upstream_429=0,
                  invalid_key=1, server_errors=0, retries=0, in_window=1,
                  cooldown_cause=None, disabled="API_KEY_INVALID", **ZERO),
    "free2": dict(tier="free", limit=4, admitted=4, succeeded=3, refused=1, upstream_429=0,
                  invalid_key=0, server_errors=1, retries=1, in_window=4,
                  cooldown_cause=None, disabled=None, **ZERO),
    "paid": dict(tier="paid", limit=2, admitted=2, succeeded=2, refused=1, upstream_429=0,
                 invalid_key=0, server_errors=0, retries=0, in_window=2,
                 cooldown_cause=None, disabled=None, **ZERO),
}
EXPECTED_POOL = dict(requests=6, succeeded=5, failed=1, paid_fallbacks=2, exhausted=1,
                     latency_count=8)

Figures = Tuple[Dict[str, Dict[str, Any]], Dict[str, Any]]


def _from_library_json(data: Dict[str, Any], label_of: Dict[str, str]) -> Figures:
    """gr_stats_json's shape (C, the CLI's --json, and Python's dataclasses, which keep its
    names) -> (per label, pool)."""
    keys = {}
    for key in data["keys"]:
        label = label_of[key["fingerprint"]]
        keys[label] = {name: key[name] for name in EXPECTED_KEYS[label]}
        assert key["window_ms"] == WINDOW_MS and key["in_flight"] == 0, key
        cooling = key["cooldown_remaining_ms"]
        assert (cooling > 0) == (label == "free0"), key
    pool = data["pool"]
    figures = {name: pool[name] for name in EXPECTED_POOL if name != "latency_count"}
    figures["latency_count"] = pool["latency"]["count"]
    buckets = pool["latency"]["buckets"]
    assert buckets[-1][0] in ("+Inf", float("inf")) and buckets[-1][1] == 8, buckets
    return keys, figures


def _from_go(data: Dict[str, Any], label_of: Dict[str, str]) -> Figures:
    names = dict(tier="Tier", limit="Limit", admitted="Admitted", succeeded="Succeeded",
                 refused="Refused", upstream_429="Upstream429", invalid_key="InvalidKey",
                 server_errors="ServerErrors", retries="Retries", in_window="InWindow",
                 cooldown_cause="CooldownCause", disabled="Disabled",
                 permission_denied="PermissionDenied", transport_errors="TransportErrors",
                 timeouts="Timeouts", client_errors="ClientErrors")
    buckets = data["Buckets"]
    data = data["Stats"]
    assert buckets[-1] == {"UpperBound": "+Inf", "Count": 8}, buckets
    keys = {}
    for key in data["Keys"]:
        label = label_of[key["Fingerprint"]]
        # Go says "" where the library says null.
        keys[label] = {name: key[go] if key[go] != "" else None for name, go in names.items()}
        assert key["Window"] == WINDOW_MS * 1_000_000 and key["InFlight"] == 0, key
        assert (key["CooldownRemaining"] > 0) == (label == "free0"), key
    pool = data["Pool"]
    figures = dict(requests=pool["Requests"], succeeded=pool["Succeeded"], failed=pool["Failed"],
                   paid_fallbacks=pool["PaidFallbacks"], exhausted=pool["Exhausted"],
                   latency_count=pool["Latency"]["Count"])
    return keys, figures


def _from_prometheus(text: str, label_of: Dict[str, str]) -> Figures:
    samples: Dict[str, list] = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name].append((sample.labels, sample.value))

    def per_key(metric: str, **match: str) -> Dict[str, Tuple[Dict[str, str], float]]:
        out = {}
        for labels, value in samples[metric]:
            if all(labels.get(k) == v for k, v in match.items()):
                label = label_of[labels["key"]]
                assert label not in out, (metric, labels)
                out[label] = (labels, value)
        assert set(out) == set(EXPECTED_KEYS), (metric, out)
        return out

    keys: Dict[str, Dict[str, Any]] = {label: {} for label in EXPECTED_KEYS}
    simple = dict(admitted="gemini_rotator_key_admitted_total",
                  succeeded="gemini_rotator_key_succeeded_total",
                  refused="gemini_rotator_key_local_refusals_total",
                  upstream_429="gemini_rotator_key_upstream_rate_limited_total",
                  retries="gemini_rotator_key_retries_total",
                  in_window="gemini_rotator_key_window_requests",
                  limit="gemini_rotator_key_window_limit_requests")
    for name, metric in simple.items():
        for label, (labels, value) in per_key(metric).items():
            keys[label][name] = int(value)
            keys[label]["tier"] = labels["tier"]
    classes = dict(invalid_key="invalid_key", server_errors="server_error",
                   permission_denied="permission_denied", transport_errors="transport",
                   timeouts="timeout", client_errors="client_error")
    for name, cls in classes.items():
        for label, (_, value) in per_key("gemini_rotator_key_errors_total", **{"class": cls}).items():
            keys[label][name] = int(value)
    for label, (labels, value) in per_key("gemini_rotator_key_disabled").items():
        assert (value == 1) == (labels["reason"] != "none"), labels
        keys[label]["disabled"] = None if labels["reason"] == "none" else labels["reason"]
    for label, (labels, value) in per_key("gemini_rotator_key_cooldown_remaining_seconds").items():
        assert (value > 0) == (labels["cause"] != "none"), labels
        keys[label]["cooldown_cause"] = None if labels["cause"] == "none" else labels["cause"]
    for label, (_, value) in per_key("gemini_rotator_key_window_seconds").items():
        assert value == WINDOW_MS / 1000
    for label, (_, value) in per_key("gemini_rotator_key_in_flight_requests").items():
        assert value == 0

    def one(metric: str) -> int:
        [(labels, value)] = samples[metric]
        return int(value)

    figures = dict(requests=one("gemini_rotator_requests_total"),
                   succeeded=one("gemini_rotator_requests_succeeded_total"),
                   failed=one("gemini_rotator_requests_failed_total"),
                   paid_fallbacks=one("gemini_rotator_paid_fallbacks_total"),
                   exhausted=one("gemini_rotator_exhausted_total"),
                   latency_count=one("gemini_rotator_upstream_latency_seconds_count"))
    buckets = {labels["le"]: value for labels, value
               in samples["gemini_rotator_upstream_latency_seconds_bucket"]}
    assert buckets["+Inf"] == 8 and sorted(buckets.values()) == list(buckets.values()), buckets
    assert one("gemini_rotator_upstream_latency_seconds_sum") >= 0
    return keys, figures


def _from_cli_table(text: str, label_of: Dict[str, str]) -> Figures:
    """The CLI's plain table: key, tier, limit/window, in window, admitted, ok, refused, 429,
    5xx, retries, cooldown, disabled; then the "Pool: ..." line."""
    keys = {}
    model_lines = set()
    for line in text.splitlines():
        cells = line.split()
        if cells and cells[0] in label_of and cells[1] == "gemini-3.6-flash":
            # The per-(key, model) table below the key table: one line per model used.
            model_lines.add(label_of[cells[0]])
        elif cells and cells[0] in label_of:
            label = label_of[cells[0]]
            keys[label] = dict(tier=cells[1], in_window=int(cells[3]), admitted=int(cells[4]),
                               succeeded=int(cells[5]), refused=int(cells[6]),
                               upstream_429=int(cells[7]), server_errors=int(cells[8]),
                               retries=int(cells[9]),
                               disabled=None if cells[-1] == "-" else cells[-1])
            assert cells[2] == f"{EXPECTED_KEYS[label]['limit']}/{WINDOW_MS}ms", line
    assert model_lines == set(label_of.values()), text
    pool = re.search(r"Pool: (\d+) requests, (\d+) succeeded, (\d+) failed, (\d+) paid "
                     r"fallbacks, 0 model fallbacks, (\d+) refused as exhausted; .* over (\d+) attempts", text)
    assert pool, text
    figures = dict(zip(("requests", "succeeded", "failed", "paid_fallbacks", "exhausted",
                        "latency_count"), map(int, pool.groups())))
    return keys, figures


#: What the CLI's table shows of each key (every other source shows every figure).
TABLE_FIELDS = {"tier", "in_window", "admitted", "succeeded", "refused", "upstream_429",
                "server_errors", "retries", "disabled"}


def _check(source: str, figures: Figures, fields=None) -> None:
    keys, pool = figures
    assert set(keys) == set(EXPECTED_KEYS), f"{source}: keys {sorted(keys)}"
    for label, expected in EXPECTED_KEYS.items():
        got = keys[label]
        assert set(got) == set(fields or expected), f"{source}: {label} fields {sorted(got)}"
        wrong = {name: (got[name], value) for name, value in expected.items()
                 if name in got and got[name] != value}
        assert not wrong, f"{source}: {label} (got, expected): {wrong}"
    wrong = {name: (pool[name], value) for name, value in EXPECTED_POOL.items()
             if pool[name] != value}
    assert not wrong, f"{source}: pool (got, expected): {wrong}"


def test_statistics_agree_in_every_language(tmp_path: Path, start_emulator, c_worker, go_worker,
                                            cli):
    keys = KeySet(free_limit=4, paid_limit=2, window_ms=WINDOW_MS)
    fp = keys.fingerprints()
    label_of = {v: k for k, v in fp.items()}
    emulator = start_emulator(keys.emulator_keys(), faults=[
        {"kind": "quota_minute", "label": "free0", "count": 1, "retry_delay": "60s"},
        {"kind": "invalid_key", "label": "free1"},
        {"kind": "http503", "label": "free2", "count": 1},
    ])
    state = f"shm:{tmp_path}/state"

    # ---- the workload, in this process ----
    pool = KeyPool(keys.free, keys.paid, 4, 2, WINDOW_MS, base_url=emulator.base_url,
                   retry_base_ms=1, max_retries=3, state=state)
    client = GeminiClient(pool)
    served = [client.generate_content(prompt=f"call {i}").key_fingerprint for i in range(5)]
    assert [label_of[f] for f in served] == ["free2", "free2", "free2", "paid", "paid"]
    with pytest.raises(AllKeysRateLimitedError) as raised:
        client.generate_content(prompt="call 5")
    assert "all API keys have reached their rate limits" in str(raised.value)
    assert raised.value.retry_after > 0
    keys.assert_no_key(str(raised.value), "the exhaustion error")
    emu = emulator.stats()["keys"]
    assert {label: (emu[label]["requests"], emu[label]["ok"]) for label in keys.labels} == {
        "free0": (1, 0), "free1": (1, 0), "free2": (4, 3), "paid": (2, 2)}

    outputs: Dict[str, str] = {}
    _check("Python (the workload's pool)", _from_library_json(pool.stats().raw, label_of))

    # ---- four other processes read the same key set from the same state file ----
    # The env configuration has the workload's limits and window: a key has one limit, and a
    # pool that configured another would be refused.
    env = clean_env(**keys.env(emulator.base_url, state))

    def run(name: str, argv) -> str:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{name}: exit {done.returncode}\n{done.stderr}"
        outputs[name] = done.stdout + done.stderr
        return done.stdout

    _check("C gr_stats_json", _from_library_json(
        json.loads(run("C gr_stats_json", [str(c_worker), "stats-json"])), label_of))
    _check("C gr_metrics_prometheus", _from_prometheus(
        run("C gr_metrics_prometheus", [str(c_worker), "prometheus"]), label_of))
    _check("Go KeyPool.Stats()", _from_go(
        json.loads(run("Go KeyPool.Stats()", [str(go_worker), "stats"])), label_of))
    python = ("import dataclasses, json, gemini_rotator as g\n"
              "with g.KeyPool.from_env() as p:\n"
              "    s = p.stats()\n"
              "    d = dataclasses.asdict(s); d.pop('raw')\n"
              "    d['pool']['latency']['buckets'] = [['+Inf' if b == float('inf') else b, n]"
              " for b, n in d['pool']['latency']['buckets']]\n"
              "    print(json.dumps(d))\n")
    _check("Python KeyPool.stats() (fresh process)", _from_library_json(
        json.loads(run("Python KeyPool.stats()", [sys.executable, "-c", python])), label_of))
    _check("CLI stats --json", _from_library_json(
        json.loads(run("CLI stats --json", [str(cli), "stats", "--json"])), label_of))
    _check("CLI stats --prometheus", _from_prometheus(
        run("CLI stats --prometheus", [str(cli), "stats", "--prometheus"]), label_of))
    _check("CLI stats", _from_cli_table(run("CLI stats", [str(cli), "stats"]), label_of),
           TABLE_FIELDS)
    # Every key of the state file (only this test's keys are in it).
    listed = json.loads(run("CLI stats --all --json", [str(cli), "stats", "--all", "--json"]))
    assert sorted(label_of[k["fingerprint"]] for k in listed) == sorted(EXPECTED_KEYS)
    for k in listed:
        label = label_of[k["fingerprint"]]
        assert {name: k[name] for name in EXPECTED_KEYS[label]} == EXPECTED_KEYS[label], label

    # ---- no key anywhere ----
    for name, text in outputs.items():
        keys.assert_no_key(text, name)
    pool.close()
