"""Many threads on one client: right answers, exact counts, calls in parallel without the GIL."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from gemini_rotator import GeminiClient, fingerprint

THREADS = 32
CALLS_PER_THREAD = 4


def test_32_threads_share_one_client(emulator, make_pool):
    keys = emulator.add_keys(4)
    gemini = GeminiClient(make_pool(keys))
    start = threading.Barrier(THREADS)

    def worker(t: int) -> list:
        start.wait()
        results = []
        for c in range(CALLS_PER_THREAD):
            prompt = f"thread {t} call {c}"
            response = gemini.generate_content(prompt)
            results.append((prompt, response.text, response.key_fingerprint))
        return results

    with ThreadPoolExecutor(THREADS) as executor:
        results = [r for rs in executor.map(worker, range(THREADS)) for r in rs]

    total = THREADS * CALLS_PER_THREAD
    assert len(results) == total
    for prompt, text, _ in results:
        assert text == f"echo: {prompt}"
    # The pool's round-robin spreads the calls evenly, and the emulator agrees.
    per_key = total // len(keys)
    served = [r[2] for r in results]
    assert sorted(served.count(fingerprint(key.secret)) for key in keys) == [per_key] * len(keys)
    assert [emulator.requests(key) for key in keys] == [per_key] * len(keys)
    assert [emulator.key_stats(key)["ok"] for key in keys] == [per_key] * len(keys)
    stats = gemini.pool.stats()
    assert (stats.pool.requests, stats.pool.succeeded) == (total, total)
    assert all(key.in_flight == 0 for key in stats.keys)


def test_calls_run_in_parallel_without_the_gil(emulator, make_pool):
    """Eight slow calls are in flight at once while this thread keeps reading statistics:
    possible only if each C call releases the GIL."""
    keys = emulator.add_keys(2)
    for key in keys:
        emulator.fault(key.label, "delay", latency_ms=1500, count=4)
    pool = make_pool(keys)
    gemini = GeminiClient(pool)

    with ThreadPoolExecutor(8) as executor:
        futures = [executor.submit(gemini.simple_query, f"slow {i}") for i in range(8)]
        peak = 0
        deadline = time.monotonic() + 30  # A safety net against a hang, not a speed bound.
        while peak < 8 and time.monotonic() < deadline and not all(f.done() for f in futures):
            peak = max(peak, sum(key.in_flight for key in pool.stats().keys))
            time.sleep(0.01)
        answers = sorted(f.result() for f in futures)

    assert peak == 8
    assert answers == sorted(f"echo: slow {i}" for i in range(8))
