"""Many hosts: C, Go and Python processes, each in its own mount namespace with a private,
empty /dev/shm (so no two share a state file), share one key set through Redis alone and
drive one emulator that enforces the same limits: any over-admission shows as a 429 and as
a rolling window over the limit in the emulator's own log. Then the same with Redis
SIGKILLed mid-run and restarted empty on the same port."""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from crosslib import KeySet, arrivals_by_label, clean_env, max_in_window, now_ms, read_result, summary
from gemini_rotator import KeyPool
from redislib import IsolatedFleet, RedisServer

LIMIT = 20
WINDOW_MS = 1000
STARTUP_MS = 2500


@pytest.fixture
def redis_server(tmp_path: Path):
    server = RedisServer(tmp_path / "redis")
    yield server
    server.close()


def established(server: RedisServer) -> None:
    """Marks the server's generation as long begun, so that records are trusted at once (a
    fresh server is indistinguishable from one that lost its data: see the restart test)."""
    assert server.command("SET", "gemini-rotator:epoch", "1") == "OK"


def no_secret_in_redis(server: RedisServer, keys: KeySet) -> int:
    names = server.command("KEYS", "*")
    for name in names:
        assert name.startswith(b"gemini-rotator:"), name
        dump = server.command("DUMP", name.decode())
        for secret in keys.all_keys():
            assert secret.encode() not in name and secret.encode() not in dump, name
        assert keys.token.encode() not in dump and keys.token[:12].encode() not in dump, name
    return len(names)


def test_isolated_processes_share_exact_limits_through_redis(
    tmp_path: Path, monkeypatch, redis_server, start_emulator, c_worker, go_worker, cli
):
    established(redis_server)
    keys = KeySet(free_limit=LIMIT, paid_limit=LIMIT, window_ms=WINDOW_MS)
    fp = keys.fingerprints()
    label_of = {v: k for k, v in fp.items()}
    emulator = start_emulator(keys.emulator_keys())
    env = keys.env(emulator.base_url, redis_server.url, GEMINI_TIMEOUT_MS=10000,
                   GEMINI_RETRY_BASE_MS=1)
    out = tmp_path / "workers"
    out.mkdir()
    start = now_ms() + STARTUP_MS
    deadline = start + 4500
    fleet = IsolatedFleet(out, env, c_worker, go_worker, start, deadline, max_wait_ms=3000,
                          timeout_ms=10000)
    try:
        for _ in range(3):
            fleet.start_c(threads=3)
        for _ in range(2):
            fleet.start_go(goroutines=4)
        for _ in range(3):
            fleet.start_py(threads=2)
        for w in fleet.workers:
            code = w.wait(timeout=60)
            assert code == 0, f"{w.kind} worker {w.pid} exited with {code}: {fleet.stderr_of(w)}"
    finally:
        fleet.close()

    results = [read_result(w.result) for w in fleet.workers]
    for r in results:
        assert r["errors"] == 0, f"{r['lang']} worker {r['pid']}: {r['first_error']}"
    assert Counter(r["lang"] for r in results) == {"c": 3, "go": 2, "python": 3}
    assert len({r["pid"] for r in results}) == 8
    calls = sum(r["calls"] for r in results)
    ok = sum(r["ok"] for r in results)

    log = emulator.log()
    emu = emulator.stats()
    rate_limited = {label: emu["keys"][label]["rate_limited"] for label in keys.labels}
    assert sum(rate_limited.values()) == 0, f"the emulator answered 429s: {rate_limited}"
    assert Counter(e["status"] for e in log) == {200: len(log)}
    arrivals = arrivals_by_label(log, keys.labels)
    max_window = {label: max_in_window(t, WINDOW_MS)[0] for label, t in arrivals.items()}
    for label, most in max_window.items():
        assert most <= LIMIT, f"{label}: {most} requests in one rolling window (limit {LIMIT})"
    # Saturated all along (26 callers against 80 slots a second): every key was full.
    assert all(most == LIMIT for most in max_window.values()), max_window
    served = {label: emu["keys"][label]["ok"] for label in keys.labels}
    assert ok == sum(served.values()) == len(log)

    # The shared statistics, read from Redis by a pool of this (unisolated) process.
    monkeypatch.setenv("GEMINI_ROTATOR_STATE", redis_server.url)
    with KeyPool(keys.free, keys.paid, LIMIT, LIMIT, WINDOW_MS,
                 base_url=emulator.base_url) as reader:
        stats = reader.stats()
        assert stats.state == redis_server.url
        for label in keys.labels:
            key = stats.key(fp[label])
            assert key.admitted == emu["keys"][label]["requests"], label
            assert key.succeeded == served[label], label
            assert key.in_flight == 0, label
        assert stats.pool.requests == calls
        assert stats.pool.succeeded == ok
    assert set(label_of) == set(fp.values())

    # The CLI reads every key from Redis, and enables a key there for every host.
    cli_env = clean_env(GEMINI_ROTATOR_STATE=redis_server.url)
    done = subprocess.run([str(cli), "stats", "--all", "--json"], env=cli_env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    listed = {k["fingerprint"]: k for k in json.loads(done.stdout)}
    assert set(fp.values()) <= set(listed), listed
    assert listed[fp["free0"]]["admitted"] == emu["keys"]["free0"]["requests"]
    done = subprocess.run([str(cli), "enable", fp["free1"]], env=cli_env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and fp["free1"] in done.stdout, done.stdout + done.stderr
    keys.assert_no_key(done.stdout + done.stderr, "gemini-rotator enable")

    names = no_secret_in_redis(redis_server, keys)
    summary(
        f"redis stress: {len(log)} requests from 8 isolated processes (3 C x 3, 2 Go x 4, "
        f"3 Python x 2) through Redis alone; max per rolling {WINDOW_MS} ms window per key: "
        + ", ".join(f"{label} {max_window[label]}/{LIMIT}" for label in keys.labels)
        + f"; 429s: 0; Redis keys scanned: {names}, no API key"
    )


def test_redis_killed_and_restarted_empty_mid_run(
    tmp_path: Path, redis_server, start_emulator, c_worker, go_worker
):
    established(redis_server)
    timeout_ms = 2000
    keys = KeySet(free_limit=LIMIT, paid_limit=LIMIT, window_ms=WINDOW_MS)
    emulator = start_emulator(keys.emulator_keys())
    env = keys.env(emulator.base_url, redis_server.url, GEMINI_TIMEOUT_MS=timeout_ms,
                   GEMINI_RETRY_BASE_MS=1, GEMINI_ROTATOR_REDIS_TIMEOUT_MS=500)
    out = tmp_path / "workers"
    out.mkdir()
    start = now_ms() + STARTUP_MS
    deadline = start + 9000
    fleet = IsolatedFleet(out, env, c_worker, go_worker, start, deadline, max_wait_ms=1000,
                          timeout_ms=timeout_ms)
    try:
        for _ in range(2):
            fleet.start_c(threads=2)
        fleet.start_go(goroutines=3)
        for _ in range(2):
            fleet.start_py(threads=2)
        offset_lo, offset_hi = emulator.clock_offset()  # emulator ms = monotonic ms + offset
        time.sleep(max(0.0, (start + 2500 - now_ms()) / 1000))
        redis_server.kill()
        killed_at = time.monotonic() * 1000
        time.sleep(1.0)
        redis_server.restart_empty()
        restarted_at = time.monotonic() * 1000
        for w in fleet.workers:
            code = w.wait(timeout=60)
            assert code == 0, f"{w.kind} worker {w.pid} exited with {code}: {fleet.stderr_of(w)}"
    finally:
        fleet.close()

    results = [read_result(w.result) for w in fleet.workers]
    errors = sum(r["errors"] for r in results)
    for r in results:
        if r["errors"]:
            assert "state" in r["first_error"].lower() or "redis" in r["first_error"].lower(), r
    log = emulator.log()
    emu = emulator.stats()
    rate_limited = {label: emu["keys"][label]["rate_limited"] for label in keys.labels}
    assert sum(rate_limited.values()) == 0, f"the emulator answered 429s: {rate_limited}"
    arrivals = arrivals_by_label(log, keys.labels)
    max_window = {label: max_in_window(t, WINDOW_MS)[0] for label, t in arrivals.items()}
    for label, most in max_window.items():
        assert most <= LIMIT, f"{label}: {most} requests in one rolling window (limit {LIMIT})"
    # Service resumes after the hold (timeout + window) that follows the restart.
    resumed = [t for times in arrivals.values() for t in times
               if t > restarted_at + offset_hi + timeout_ms + WINDOW_MS]
    assert resumed, "no request was served after the restart"
    during = [t for times in arrivals.values() for t in times
              if killed_at + offset_hi + 50 < t < restarted_at + offset_lo]
    assert not during, f"{len(during)} requests admitted while Redis was down"
    summary(
        f"redis restart: killed 2.5 s into the run, restarted empty 1 s later; "
        f"{len(log)} requests, max per window "
        + ", ".join(f"{label} {max_window[label]}/{LIMIT}" for label in keys.labels)
        + f"; 429s: 0; {errors} calls failed with a state error; "
        f"{len(resumed)} served after the hold"
    )
