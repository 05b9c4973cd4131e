"""asyncio: calls run in worker threads; the loop stays responsive; cancellation is prompt."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time

import pytest

from gemini_rotator import GeminiClient


def test_async_calls_answer(emulator, make_pool):
    keys = emulator.add_keys(2)
    gemini = GeminiClient(make_pool(keys))

    async def main():
        single = await gemini.asimple_query("async hello")
        many = await asyncio.gather(
            *(gemini.agenerate_content(f"n{i}", temperature=0.5) for i in range(8))
        )
        return single, [r.text for r in many]

    single, many = asyncio.run(main())

    assert single == "echo: async hello"
    assert many == [f"echo: n{i}" for i in range(8)]
    assert sum(emulator.requests(key) for key in keys) == 9


def test_event_loop_stays_responsive_during_a_slow_call(emulator, make_pool):
    key = emulator.add_key()
    emulator.fault(key.label, "delay", latency_ms=1200, count=1)
    gemini = GeminiClient(make_pool([key]))

    async def main():
        ticks = 0
        call = asyncio.ensure_future(gemini.asimple_query("slow"))
        while not call.done():
            await asyncio.sleep(0.01)
            ticks += 1
        return await call, ticks

    answer, ticks = asyncio.run(main())

    assert answer == "echo: slow"
    # 1.2 s of 10 ms sleeps: a blocked loop would tick once or twice. Even a heavily loaded
    # machine manages far more than 20.
    assert ticks >= 20


def test_cancellation_returns_promptly(emulator, make_pool):
    key = emulator.add_key()
    emulator.fault(key.label, "delay", latency_ms=2000, count=1)
    pool = make_pool([key])
    gemini = GeminiClient(pool)

    async def main():
        task = asyncio.ensure_future(gemini.agenerate_content("never awaited to the end"))
        while pool.stats().keys[0].in_flight == 0:  # The C call is running.
            await asyncio.sleep(0.005)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - started

    elapsed = asyncio.run(main())

    # The promptness bound the binding promises: the await does not wait for the request.
    assert elapsed < 0.5
    # Cancelling stopped the HTTP request itself: the key's slot is free at once and the pool
    # is freed as soon as it is closed (no call is left running in the background).
    deadline = time.monotonic() + 1
    while pool.stats().keys[0].in_flight and time.monotonic() < deadline:
        time.sleep(0.005)
    assert pool.stats().keys[0].in_flight == 0
    pool.close()
    deadline = time.monotonic() + 1
    while pool._ptr is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool._ptr is None
    # The emulator saw its client go before it answered.
    assert emulator.key_stats(key)["ok"] == 0


def test_cancelled_call_outliving_its_event_loop_is_quiet(emulator):
    """asyncio.run returns without waiting for the cancelled call, whose HTTP request the
    cancellation stopped (its slot is freed at once); the interpreter exits cleanly."""
    key = emulator.add_key()
    emulator.fault(key.label, "delay", latency_ms=800, count=1)
    script = textwrap.dedent(
        f"""
        import asyncio
        from gemini_rotator import GeminiClient, KeyPool

        pool = KeyPool([{key.secret!r}], base_url={emulator.base_url!r})
        gemini = GeminiClient(pool)

        async def main():
            task = asyncio.ensure_future(gemini.asimple_query("abandoned"))
            await asyncio.sleep(0.2)
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

        import time
        asyncio.run(main())
        deadline = time.monotonic() + 1
        while pool.stats().keys[0].in_flight and time.monotonic() < deadline:
            time.sleep(0.005)
        print("in flight after asyncio.run:", pool.stats().keys[0].in_flight)
        pool.close()
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30
    )

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    # The cancellation stopped the request: nothing is left in flight, nothing was answered.
    assert "in flight after asyncio.run: 0" in done.stdout
    assert emulator.key_stats(key)["ok"] == 0


def test_bad_arguments_raise_before_anything_runs(emulator, make_pool):
    key = emulator.add_key()
    gemini = GeminiClient(make_pool([key]))

    async def main():
        with pytest.raises(ValueError, match="prompt"):
            await gemini.asimple_query("")
        with pytest.raises(TypeError, match="temperature"):
            await gemini.agenerate_content("x", temperature="hot")

    asyncio.run(main())
    assert emulator.requests(key) == 0
