"""How much a call through gemini_rotator costs, next to a plain HTTP client, in the same run.

Starts the Gemini emulator (target/release/gemini-emulator, or $GEMINI_EMULATOR_BIN) and times:
- one generate_content call through the pool, against a plain `requests` POST of the same body
  to the same emulator (and `httpx` when it is installed), both parsing the JSON answer;
- the ctypes crossing alone: fingerprint() (one C call, one string out and freed) and
  library_version() (one C call, nothing to free);
- 8 threads sharing one client, against 8 threads with a requests.Session each.

Each figure is the median over several rounds. Run after `pip install bindings/python`:

    python bindings/python/bench/timing.py [--rounds 7] [--calls 300]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import gemini_rotator  # noqa: E402
from gemini_rotator import GeminiClient, KeyPool, fingerprint, library_version  # noqa: E402
from gr_emulator import Emulator  # noqa: E402

PROMPT = "Your prompt here"


def per_call_us(function: Callable[[], object], calls: int, rounds: int) -> float:
    """Median over rounds of the mean time of one call, in microseconds."""
    for _ in range(min(calls, 50)):  # Warm up connections and caches.
        function()
    results = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            function()
        results.append((time.perf_counter() - started) / calls * 1e6)
    return statistics.median(results)


def threaded_per_call_us(
    make_worker: Callable[[], Callable[[], object]], threads: int, calls: int, rounds: int
) -> float:
    """Median over rounds of wall time per call with `threads` threads sharing `calls` calls."""
    per_thread = calls // threads
    results = []
    for round_number in range(rounds + 1):
        workers = [make_worker() for _ in range(threads)]
        barrier = threading.Barrier(threads + 1)

        def run(worker: Callable[[], object]) -> None:
            barrier.wait()
            for _ in range(per_thread):
                worker()

        with ThreadPoolExecutor(threads) as executor:
            futures = [executor.submit(run, w) for w in workers]
            barrier.wait()
            started = time.perf_counter()
            for future in futures:
                future.result()
            elapsed = time.perf_counter() - started
        if round_number > 0:  # Round 0 warms up.
            results.append(elapsed / (per_thread * threads) * 1e6)
    return statistics.median(results)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=300, help="calls per round")
    args = parser.parse_args(argv)

    try:
        import requests
    except ImportError:
        sys.exit("this benchmark needs `requests` (pip install requests)")
    try:
        import httpx
    except ImportError:
        httpx = None

    emulator = Emulator({"keys": [{"key": "bench-key", "label": "bench", "limit": None}]})
    try:
        pool = KeyPool(
            ["bench-key"],
            base_url=emulator.base_url,
            free_rate_limit=1_000_000,
            window_ms=1000,
        )
        client = GeminiClient(pool)
        url = f"{emulator.base_url}/v1beta/models/gemini-3.6-flash:generateContent"
        body = json.dumps(
            {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]},
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        headers = {"x-goog-api-key": "bench-key", "content-type": "application/json"}

        def via_rotator() -> object:
            return client.generate_content(PROMPT).text

        session = requests.Session()

        def via_requests(s: "requests.Session" = session) -> object:
            r = s.post(url, data=body, headers=headers)
            r.raise_for_status()
            return r.json()["candidates"][0]["content"]["parts"][0]["text"]

        assert via_rotator() == via_requests() == f"echo: {PROMPT}"

        rows = []
        rotator_us = per_call_us(via_rotator, args.calls, args.rounds)
        requests_us = per_call_us(via_requests, args.calls, args.rounds)
        rows.append(("gemini_rotator generate_content", rotator_us, "1.00"))
        rows.append(("requests.Session.post", requests_us, f"{rotator_us / requests_us:.2f}"))
        if httpx is not None:
            hclient = httpx.Client()

            def via_httpx() -> object:
                r = hclient.post(url, content=body, headers=headers)
                r.raise_for_status()
                return r.json()["candidates"][0]["content"]["parts"][0]["text"]

            httpx_us = per_call_us(via_httpx, args.calls, args.rounds)
            rows.append(("httpx.Client.post", httpx_us, f"{rotator_us / httpx_us:.2f}"))

        crossing = args.calls * 20
        fingerprint_us = per_call_us(lambda: fingerprint("bench-key"), crossing, args.rounds)
        version_us = per_call_us(library_version, crossing, args.rounds)

        threads = 8
        calls = args.calls - args.calls % threads
        rotator_8 = threaded_per_call_us(lambda: via_rotator, threads, calls, args.rounds)

        def requests_worker() -> Callable[[], object]:
            own = requests.Session()
            return lambda: via_requests(own)

        requests_8 = threaded_per_call_us(requests_worker, threads, calls, args.rounds)
    finally:
        emulator.stop()

    print(f"gemini_rotator {gemini_rotator.__version__}, library {library_version()}, "
          f"Python {sys.version.split()[0]}; medians of {args.rounds} rounds of {args.calls} calls")
    print()
    print(f"{'one call, 1 thread':<34} {'us/call':>9}  {'rotator/this row':>16}")
    for name, us, ratio in rows:
        print(f"{name:<34} {us:>9.1f}  {ratio:>16}")
    print()
    print(f"{'ctypes crossing alone':<34} {'us/call':>9}")
    print(f"{'fingerprint() (string out, freed)':<34} {fingerprint_us:>9.2f}")
    print(f"{'library_version() (static)':<34} {version_us:>9.2f}")
    print()
    print(f"{f'{threads} threads, wall time per call':<34} {'us/call':>9}  {'speed-up vs 1':>14}")
    print(f"{'gemini_rotator (one shared client)':<34} {rotator_8:>9.1f}  "
          f"{rotator_us / rotator_8:>14.2f}")
    print(f"{'requests (a Session per thread)':<34} {requests_8:>9.1f}  "
          f"{requests_us / requests_8:>14.2f}")
    if httpx is None:
        print("\n(httpx is not installed: pip install httpx to compare with it too)")


if __name__ == "__main__":
    main()
