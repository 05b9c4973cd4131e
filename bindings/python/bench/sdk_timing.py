"""What the pool's transport costs under google-genai, next to google-genai alone, in the same run.

Starts the Gemini emulator (target/release/gemini-emulator, or $GEMINI_EMULATOR_BIN) with 4 keys
it never limits, and times the same SDK calls two ways against it:
- *pool*: ``genai.Client`` with ``httpx.Client(transport=gemini_rotator.HttpxTransport(pool))``
  and ``httpx.AsyncClient(transport=gemini_rotator.AsyncHttpxTransport(pool))``, the pool
  holding the 4 keys (limits far above what the run sends);
- *alone* (the baseline): ``genai.Client`` with one of the keys and a plain ``httpx.Client`` /
  ``httpx.AsyncClient``, so that only the transport differs; and, for reference, the SDK with
  its own default client (httpx2 when installed).

Comparisons: ``models.generate_content`` (sync), ``aio.models.generate_content`` (awaited one at
a time on one event loop), the time to the first event of ``generate_content_stream`` (sync and
``aio``; every stream is then read to its end, so connections are reused alike), and, to split
the SDK's own work from the transport's, an ``httpx.Client.post`` of the same body without the
SDK, through the pool's transport and through httpx's own.

The variants of a comparison run in interleaved rounds (one batch of each per round, the order
rotating from round to round, the emulator's counters and log cleared before each batch). A
batch's figure is the median latency of its calls; a round's ratio is the variant's figure over
the baseline's in that round. Reported: the median over rounds of the batches' figures, the
client process's CPU time per call, and the median and 25th-75th percentile of the ratios. Run
with the tests' environment (google-genai is pinned in tests/requirements.txt):

    PYTHONPATH=bindings/python/src GEMINI_ROTATOR_LIB=target/release/libgemini_rotator.so \\
        target/venv/bin/python bindings/python/bench/sdk_timing.py [--rounds 9] [--calls 200]

It prints markdown (benches/run includes it in its report).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from importlib import metadata
from typing import Awaitable, Callable, Dict, List, Optional, Sequence, Tuple

import httpx
from google import genai
from google.genai import types

from timing import interleaved, quartiles  # this directory's binding benchmark: same method

from gemini_rotator import AsyncHttpxTransport, HttpxTransport, KeyPool  # noqa: E402
from gr_emulator import Emulator  # noqa: E402  (timing put bindings/python/tests on the path)

MODEL = "gemini-3.6-flash"
PROMPT = "Your prompt here"
ANSWER = f"echo: {PROMPT}"
KEYS = 4
PLACEHOLDER = "placeholder-never-sent"

# A batch: (median latency of its calls in µs, client CPU µs per call).
Batch = Tuple[float, float]


def sync_batch(call: Callable[[], float], calls: int) -> Batch:
    """Runs `call` (which returns its own latency, in seconds) `calls` times."""
    cpu = time.process_time()
    latencies = [call() for _ in range(calls)]
    return statistics.median(latencies) * 1e6, (time.process_time() - cpu) / calls * 1e6


def async_batch(loop: asyncio.AbstractEventLoop, call: Callable[[], Awaitable[float]],
                calls: int) -> Batch:
    """sync_batch for a coroutine, awaited one call at a time on `loop`."""

    async def run() -> List[float]:
        return [await call() for _ in range(calls)]

    cpu = time.process_time()
    latencies = loop.run_until_complete(run())
    return statistics.median(latencies) * 1e6, (time.process_time() - cpu) / calls * 1e6


def first_event_sync(client: genai.Client) -> float:
    """Seconds to the stream's first event; the stream is then read to its end and checked."""
    started = time.perf_counter()
    chunks = client.models.generate_content_stream(model=MODEL, contents=PROMPT)
    text = [next(chunks).text or ""]
    first = time.perf_counter() - started
    text += [c.text or "" for c in chunks]
    if "".join(text) != ANSWER:
        raise AssertionError(f"stream text {''.join(text)!r}")
    return first


async def first_event_async(client: genai.Client) -> float:
    started = time.perf_counter()
    chunks = await client.aio.models.generate_content_stream(model=MODEL, contents=PROMPT)
    text = [(await chunks.__anext__()).text or ""]
    first = time.perf_counter() - started
    text += [c.text or "" async for c in chunks]
    if "".join(text) != ANSWER:
        raise AssertionError(f"stream text {''.join(text)!r}")
    return first


def generate_sync(client: genai.Client) -> float:
    started = time.perf_counter()
    text = client.models.generate_content(model=MODEL, contents=PROMPT).text
    latency = time.perf_counter() - started
    if text != ANSWER:
        raise AssertionError(f"answer {text!r}")
    return latency


async def generate_async(client: genai.Client) -> float:
    started = time.perf_counter()
    text = (await client.aio.models.generate_content(model=MODEL, contents=PROMPT)).text
    latency = time.perf_counter() - started
    if text != ANSWER:
        raise AssertionError(f"answer {text!r}")
    return latency


def post_caller(
    client: httpx.Client, url: str, body: bytes, headers: Dict[str, str]
) -> Callable[[], float]:
    """An httpx POST of the request, its JSON answer parsed and checked, as the SDK's calls."""

    def call() -> float:
        started = time.perf_counter()
        r = client.post(url, content=body, headers=headers)
        r.raise_for_status()
        text = r.json()["candidates"][0]["content"]["parts"][0]["text"]
        latency = time.perf_counter() - started
        if text != ANSWER:
            raise AssertionError(r.text)
        return latency

    return call


def summarize(batches: Dict[str, List[Batch]], baseline: str) -> List[Dict[str, object]]:
    rows = []
    for name, values in batches.items():
        ratios = [v[0] / b[0] for v, b in zip(values, batches[baseline])]
        q1, q2, q3 = quartiles(ratios)
        rows.append({
            "name": name,
            "us": statistics.median(v[0] for v in values),
            "cpu_us": statistics.median(v[1] for v in values),
            "ratio": (q2, q1, q3),
            "baseline": name == baseline,
        })
    return rows


def table(title: str, rows: Sequence[Dict[str, object]]) -> List[str]:
    lines = [
        f"| {title} | median µs per call | client CPU µs/call | ratio to the baseline |",
        "| --- | ---: | ---: | ---: |",
    ]
    for r in rows:
        q2, q1, q3 = r["ratio"]  # type: ignore[misc]
        name = f"{r['name']} (baseline)" if r["baseline"] else f"**{r['name']}**"
        ratio = "1" if r["baseline"] else f"{q2:.3f} [{q1:.3f} – {q3:.3f}]"
        lines.append(f"| {name} | {r['us']:.1f} | {r['cpu_us']:.1f} | {ratio} |")
    return lines


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--calls", type=int, default=200, help="calls per batch")
    parser.add_argument("--heading", default="google-genai on the pool's transport vs alone",
                        help="the markdown heading of the output")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.calls < 1:
        sys.exit("--rounds and --calls must be at least 1")

    # Keys and a state file of this run only: key state is shared by every pool on the host.
    secrets = [f"bench-sdk-{uuid.uuid4().hex}" for _ in range(KEYS)]
    state_dir = tempfile.TemporaryDirectory(prefix="gemini-rotator-bench-", dir="/dev/shm")
    emulator = Emulator({"keys": [{"key": s, "label": f"k{i}", "limit": None}
                                  for i, s in enumerate(secrets)]})
    loop = asyncio.new_event_loop()
    try:
        pool = KeyPool(secrets, base_url=emulator.base_url, free_rate_limit=100_000,
                       window_ms=1000, model=MODEL, state=f"shm:{state_dir.name}/state")
        pool_http = httpx.Client(transport=HttpxTransport(pool))
        plain_http = httpx.Client()
        on_pool = genai.Client(api_key=PLACEHOLDER, http_options=types.HttpOptions(
            base_url=emulator.base_url, httpx_client=pool_http,
            httpx_async_client=httpx.AsyncClient(transport=AsyncHttpxTransport(pool))))
        alone = genai.Client(api_key=secrets[0], http_options=types.HttpOptions(
            base_url=emulator.base_url, httpx_client=plain_http,
            httpx_async_client=httpx.AsyncClient()))
        sdk_default = genai.Client(api_key=secrets[0],
                                   http_options=types.HttpOptions(base_url=emulator.base_url))

        url = f"{emulator.base_url}/v1beta/models/{MODEL}:generateContent"
        body = json.dumps({"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}).encode()
        content_type = {"content-type": "application/json"}
        pool_post = post_caller(pool_http, url, body, {**content_type, "x-goog-api-key": PLACEHOLDER})
        plain_post = post_caller(plain_http, url, body, {**content_type, "x-goog-api-key": secrets[0]})

        def batch(run: Callable[[], Batch]) -> Callable[[], Batch]:
            def cleared() -> Batch:
                emulator.post("reset", {})  # every batch meets the same (empty) emulator log
                return run()

            return cleared

        n = args.calls
        comparisons = [
            ("generate_content, sync", "SDK + httpx.Client, one key", {
                "SDK + pool (HttpxTransport)": lambda: sync_batch(lambda: generate_sync(on_pool), n),
                "SDK + httpx.Client, one key": lambda: sync_batch(lambda: generate_sync(alone), n),
                "SDK, its default client, one key": lambda: sync_batch(
                    lambda: generate_sync(sdk_default), n),
            }),
            ("aio generate_content", "SDK + httpx.AsyncClient, one key", {
                "SDK + pool (AsyncHttpxTransport)": lambda: async_batch(
                    loop, lambda: generate_async(on_pool), n),
                "SDK + httpx.AsyncClient, one key": lambda: async_batch(
                    loop, lambda: generate_async(alone), n),
            }),
            ("stream, time to first event, sync", "SDK + httpx.Client, one key", {
                "SDK + pool (HttpxTransport)": lambda: sync_batch(lambda: first_event_sync(on_pool), n),
                "SDK + httpx.Client, one key": lambda: sync_batch(lambda: first_event_sync(alone), n),
            }),
            ("aio stream, time to first event", "SDK + httpx.AsyncClient, one key", {
                "SDK + pool (AsyncHttpxTransport)": lambda: async_batch(
                    loop, lambda: first_event_async(on_pool), n),
                "SDK + httpx.AsyncClient, one key": lambda: async_batch(
                    loop, lambda: first_event_async(alone), n),
            }),
            ("no SDK: httpx.Client.post", "httpx's own transport, one key", {
                "the pool's transport": lambda: sync_batch(pool_post, n),
                "httpx's own transport, one key": lambda: sync_batch(plain_post, n),
            }),
        ]

        tables = []
        for title, baseline, variants in comparisons:
            times = interleaved({k: batch(v) for k, v in variants.items()}, args.rounds)
            tables.append(table(title, summarize(times, baseline)))
        pool.close()
    finally:
        loop.close()
        emulator.stop()
        state_dir.cleanup()

    versions = ", ".join(f"{p} {metadata.version(p)}" for p in ("google-genai", "httpx", "httpx2")
                         if _installed(p))
    print(f"## {args.heading}\n")
    print(f"bindings/python/bench/sdk_timing.py: Python {sys.version.split()[0]}, {versions}; "
          f"model {MODEL}; {args.rounds} interleaved rounds of {n} calls per variant, the order "
          "rotating every round. A batch's figure is its median call; ratio: the variant's "
          "median over the baseline's in the same round, median [25th – 75th percentile] over "
          "rounds. Client CPU: this process's CPU time per call (for a stream: the whole stream), "
          "the pool's Rust threads included, the emulator's not. The pool holds 4 keys, the "
          "baseline uses one.")
    for lines in tables:
        print()
        print("\n".join(lines))


def _installed(package: str) -> bool:
    try:
        metadata.version(package)
        return True
    except metadata.PackageNotFoundError:
        return False


if __name__ == "__main__":
    main()
