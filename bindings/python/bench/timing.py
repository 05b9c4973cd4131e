"""How much a call through gemini_rotator costs, next to a plain HTTP client, in the same run.

Starts the Gemini emulator (target/release/gemini-emulator, or $GEMINI_EMULATOR_BIN) and times:
- one generate_content call through the pool, against a plain `requests` POST of the same body
  to the same emulator (and `httpx` when it is installed), all parsing the JSON answer;
- the ctypes crossing alone: fingerprint() (one C call, one string out and freed) and
  library_version() (one C call, nothing to free);
- 8 threads sharing one client, against 8 threads with a requests.Session each.

The variants of a comparison run in interleaved rounds (one batch of each per round, the order
rotating from round to round), and each ratio is taken within a round, so that a slow spell of
the machine hits both sides. Reported: the median over rounds, and the 25th-75th percentile of
the rounds' ratios. Run after `pip install bindings/python` (or with PYTHONPATH pointing at
bindings/python/src and GEMINI_ROTATOR_LIB at the library):

    python bindings/python/bench/timing.py [--rounds 9] [--calls 300] [--json]

--json prints one JSON object instead of the tables (benches/run turns it into markdown).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import gemini_rotator  # noqa: E402
from gemini_rotator import GeminiClient, KeyPool, fingerprint, library_version  # noqa: E402
from gr_emulator import Emulator  # noqa: E402

PROMPT = "Your prompt here"
THREADS = 8

Call = Callable[[], object]


def batch_us(function: Call, calls: int) -> float:
    """Mean time of one call over `calls` calls, in microseconds."""
    started = time.perf_counter()
    for _ in range(calls):
        function()
    return (time.perf_counter() - started) / calls * 1e6


def threaded_batch_us(workers: Sequence[Call], calls: int) -> float:
    """Wall time per call with one thread per worker sharing `calls` calls, in microseconds."""
    per_thread = calls // len(workers)
    barrier = threading.Barrier(len(workers) + 1)

    def run(worker: Call) -> None:
        barrier.wait()
        for _ in range(per_thread):
            worker()

    with ThreadPoolExecutor(len(workers)) as executor:
        futures = [executor.submit(run, w) for w in workers]
        barrier.wait()
        started = time.perf_counter()
        for future in futures:
            future.result()
        elapsed = time.perf_counter() - started
    return elapsed / (per_thread * len(workers)) * 1e6


def interleaved(
    batches: Dict[str, Callable[[], float]], rounds: int
) -> Dict[str, List[float]]:
    """Runs one batch of every variant per round, the order rotating; one warm-up round first."""
    names = list(batches)
    for name in names:
        batches[name]()
    times: Dict[str, List[float]] = {name: [] for name in names}
    for r in range(rounds):
        for j in range(len(names)):
            name = names[(r + j) % len(names)]
            times[name].append(batches[name]())
    return times


def quartiles(values: Sequence[float]) -> Tuple[float, float, float]:
    """(25th percentile, median, 75th percentile)."""
    if len(values) == 1:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def summarize(times: Dict[str, List[float]], reference: str) -> Dict[str, Dict[str, float]]:
    """Per variant: median µs per call, and the reference's time over this variant's, per round
    (for the reference: this variant's over the reference's)."""
    out = {}
    for name, values in times.items():
        ratios = [r / v for r, v in zip(times[reference], values)]
        if name == reference:
            ratios = [1.0] * len(values)
        q1, q2, q3 = quartiles(ratios)
        out[name] = {"us": statistics.median(values), "ratio": q2, "ratio_q1": q1, "ratio_q3": q3}
    return out


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--calls", type=int, default=300, help="calls per batch")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    try:
        import requests
    except ImportError:
        sys.exit("this benchmark needs `requests` (pip install requests)")
    try:
        import httpx
    except ImportError:
        httpx = None

    # A key and a state file of this run only: key state is shared by every pool on the host.
    secret = f"bench-python-{uuid.uuid4().hex}"
    state_dir = tempfile.TemporaryDirectory(prefix="gemini-rotator-bench-", dir="/dev/shm")
    emulator = Emulator({"keys": [{"key": secret, "label": "bench", "limit": None}]})
    try:
        pool = KeyPool(
            [secret],
            base_url=emulator.base_url,
            free_rate_limit=100_000,
            window_ms=1000,
            state=f"shm:{state_dir.name}/state",
        )
        client = GeminiClient(pool)
        url = f"{emulator.base_url}/v1beta/models/gemini-3.6-flash:generateContent"
        body = json.dumps(
            {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]},
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        headers = {"x-goog-api-key": secret, "content-type": "application/json"}

        def via_rotator() -> object:
            return client.generate_content(PROMPT).text

        def requests_caller(s: "requests.Session") -> Call:
            def call() -> object:
                r = s.post(url, data=body, headers=headers)
                r.raise_for_status()
                return r.json()["candidates"][0]["content"]["parts"][0]["text"]

            return call

        via_requests = requests_caller(requests.Session())
        assert via_rotator() == via_requests() == f"echo: {PROMPT}"

        calls = args.calls
        one: Dict[str, Callable[[], float]] = {
            "gemini_rotator generate_content": lambda: batch_us(via_rotator, calls),
            "requests.Session.post": lambda: batch_us(via_requests, calls),
        }
        if httpx is not None:
            hclient = httpx.Client()

            def via_httpx() -> object:
                r = hclient.post(url, content=body, headers=headers)
                r.raise_for_status()
                return r.json()["candidates"][0]["content"]["parts"][0]["text"]

            assert via_httpx() == f"echo: {PROMPT}"
            one["httpx.Client.post"] = lambda: batch_us(via_httpx, calls)
        one_thread = summarize(interleaved(one, args.rounds), "gemini_rotator generate_content")

        crossing_calls = calls * 20
        crossing = {
            name: statistics.median(
                batch_us(function, crossing_calls) for _ in range(args.rounds)
            )
            for name, function in [
                ("fingerprint() (string out, freed)", lambda: fingerprint("bench-key")),
                ("library_version() (static)", library_version),
            ]
        }

        threaded_calls = calls * 2 - calls * 2 % THREADS
        sessions = [requests_caller(requests.Session()) for _ in range(THREADS)]
        eight = {
            "gemini_rotator (one shared client)": lambda: threaded_batch_us(
                [via_rotator] * THREADS, threaded_calls
            ),
            "requests (a Session per thread)": lambda: threaded_batch_us(
                sessions, threaded_calls
            ),
        }
        threads = summarize(interleaved(eight, args.rounds), "gemini_rotator (one shared client)")
        pool.close()
    finally:
        emulator.stop()
        state_dir.cleanup()

    result = {
        "python": sys.version.split()[0],
        "binding": gemini_rotator.__version__,
        "library": library_version(),
        "requests": requests.__version__,
        "httpx": httpx.__version__ if httpx is not None else None,
        "rounds": args.rounds,
        "calls": calls,
        "threaded_calls": threaded_calls,
        "one_thread": one_thread,
        "crossing_us": crossing,
        "threads": THREADS,
        "eight_threads": threads,
    }
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"gemini_rotator {result['binding']}, library {result['library']}, Python "
          f"{result['python']}; medians of {args.rounds} interleaved rounds of {calls} calls; "
          "ratio = rotator's time / this row's, per round, median [25th-75th percentile]")
    print()
    print(f"{'one call, 1 thread':<36} {'us/call':>9}  {'rotator/this row':>24}")
    for name, s in one_thread.items():
        print(f"{name:<36} {s['us']:>9.1f}  "
              f"{s['ratio']:>6.3f} [{s['ratio_q1']:.3f}-{s['ratio_q3']:.3f}]")
    print()
    print(f"{'ctypes crossing alone':<36} {'us/call':>9}")
    for name, us in crossing.items():
        print(f"{name:<36} {us:>9.2f}")
    print()
    title = f"{THREADS} threads, wall time per call"
    print(f"{title:<36} {'us/call':>9}  {'rotator/this row':>24}")
    for name, s in threads.items():
        print(f"{name:<36} {s['us']:>9.1f}  "
              f"{s['ratio']:>6.3f} [{s['ratio_q1']:.3f}-{s['ratio_q3']:.3f}]")
    if httpx is None:
        print("\n(httpx is not installed: pip install httpx to compare with it too)")


if __name__ == "__main__":
    main()
