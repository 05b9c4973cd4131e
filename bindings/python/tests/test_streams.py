"""Streams from Python: events as they are sent, failover before the first event and never
after, the first-event timeout, break / close / asyncio cancellation freeing the slot, async
streams running concurrently, and streams in forked children."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time

import pytest

from gemini_rotator import (
    APIError,
    CancelledError,
    GeminiClient,
    GeminiTimeoutError,
    IncompleteStreamError,
    fingerprint,
)

FIVE = "one two three four five"
ANSWER = "echo: one two three four five"


def in_flight(pool) -> int:
    return sum(k.in_flight for k in pool.stats().keys)


def wait_until(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_events_arrive_as_they_are_sent(emulator, make_pool):
    key = emulator.add_key()
    emulator.fault(key.label, "delay", method="streamGenerateContent", gap_ms=80)
    pool = make_pool([key])
    gemini = GeminiClient(pool)
    times, texts = [], []
    with gemini.stream_generate_content(FIVE, temperature=0.2) as stream:
        assert in_flight(pool) == 1  # the open stream holds its slot
        for event in stream:
            times.append(time.monotonic())
            texts.append(event.text)
        assert stream.prompt_token_count == 5
        assert stream.key_fingerprint == fingerprint(key.secret)
    assert "".join(texts) == ANSWER
    assert len(texts) == 6
    # Five gaps of 80 ms between the first event and the last: they came as they were sent.
    assert times[-1] - times[0] >= 5 * 0.08 * 0.8
    assert in_flight(pool) == 0


def test_failover_before_the_first_event_is_unseen(emulator, make_pool):
    keys = emulator.add_keys(2)
    pool = make_pool(keys)
    gemini = GeminiClient(pool)
    # The cursor starts at the first key: a 429 there (it cools down), then an error as the
    # first thing in a 200 body on the second (a transient failure: retried), then success.
    emulator.fault(keys[0].label, "quota_minute", count=1)
    emulator.fault(keys[1].label, "stream_error_mid", after_events=0, error="http503", count=1)
    stream = gemini.stream_generate_content(FIVE)
    assert "".join(e.text for e in stream) == ANSWER
    assert stream.attempts == 3
    assert stream.key_fingerprint == fingerprint(keys[1].secret)
    assert in_flight(pool) == 0


def test_no_failover_after_the_first_event(emulator, make_pool):
    keys = emulator.add_keys(2)
    pool = make_pool(keys)
    gemini = GeminiClient(pool)
    # The cursor starts at the first key, then goes to the second.
    emulator.fault(keys[0].label, "stream_error_mid", after_events=2, error="http503", count=1)
    emulator.fault(keys[1].label, "stream_cut", after_events=3, count=1)
    texts = []
    with pytest.raises(APIError) as raised:
        for event in gemini.stream_generate_content(FIVE):
            texts.append(event.text)
    assert raised.value.status_code == 503
    assert len(texts) == 2
    assert sum(emulator.requests(k) for k in keys) == 1  # not retried
    with pytest.raises(IncompleteStreamError):
        list(gemini.stream_generate_content(FIVE))
    assert in_flight(pool) == 0


def test_streams_that_all_stall_use_up_the_calls_budget_and_no_more(emulator, make_pool):
    keys = emulator.add_keys(2)
    pool = make_pool(keys, stream_first_event_timeout_ms=300)
    gemini = GeminiClient(pool)
    for key in keys:
        emulator.fault(key.label, "stream_stall_first")
    started = time.monotonic()
    with pytest.raises(GeminiTimeoutError):
        gemini.stream_generate_content(FIVE, timeout=1.0)
    # Every attempt was abandoned at the first-event timeout, within the call's budget.
    assert time.monotonic() - started < 2.0
    assert in_flight(pool) == 0


def test_a_stalled_stream_moves_to_another_key_within_the_first_event_timeout(
    emulator, make_pool
):
    keys = emulator.add_keys(2)
    pool = make_pool(keys, stream_first_event_timeout_ms=300)
    gemini = GeminiClient(pool)
    # The cursor starts at the first key: its stream opens and never sends an event.
    emulator.fault(keys[0].label, "stream_stall_first")
    started = time.monotonic()
    stream = gemini.stream_generate_content(FIVE)
    took = time.monotonic() - started
    assert "".join(e.text for e in stream) == ANSWER
    assert stream.attempts == 2
    assert 0.3 <= took < 1.3
    assert stream.key_fingerprint == fingerprint(keys[1].secret)
    assert [emulator.requests(k) for k in keys] == [1, 1]
    assert in_flight(pool) == 0


def test_break_and_close_free_the_slot_at_once(emulator, make_pool):
    key = emulator.add_key()
    emulator.fault(key.label, "delay", method="streamGenerateContent", gap_ms=300)
    pool = make_pool([key])
    gemini = GeminiClient(pool)
    for event in gemini.stream_generate_content(FIVE):
        break
    assert in_flight(pool) == 0
    stream = gemini.stream_generate_content(FIVE)
    next(stream)
    stream.close()
    assert in_flight(pool) == 0
    assert list(stream) == []  # a closed stream gives nothing more
    stream.close()
    wait_until(lambda: emulator.stats()["open_streams"] == 0)


def test_close_from_another_thread_interrupts_a_waiting_next(emulator, make_pool):
    key = emulator.add_key()
    emulator.fault(key.label, "stream_stall_mid", after_events=1)
    pool = make_pool([key])
    stream = GeminiClient(pool).stream_generate_content(FIVE)
    next(stream)
    threading.Timer(0.15, stream.close).start()
    started = time.monotonic()
    with pytest.raises(CancelledError):
        next(stream)
    assert time.monotonic() - started < 1.0
    assert in_flight(pool) == 0


def test_async_streams_run_concurrently(emulator, make_pool):
    keys = emulator.add_keys(4)
    for key in keys:
        emulator.fault(key.label, "delay", method="streamGenerateContent", gap_ms=100)
    gemini = GeminiClient(make_pool(keys))

    async def one(i):
        texts = []
        async for event in gemini.astream_generate_content(f"{FIVE} {i}"):
            texts.append(event.text)
        return "".join(texts)

    async def main():
        return await asyncio.gather(*(one(i) for i in range(4)))

    started = time.monotonic()
    answers = asyncio.run(main())
    took = time.monotonic() - started
    assert answers == [f"{ANSWER} {i}" for i in range(4)]
    # Each stream takes six gaps of 100 ms; four one after the other would take 2.4 s.
    assert took < 1.5, took


def test_asyncio_cancellation_stops_the_stream_and_frees_the_slot(emulator, make_pool):
    key = emulator.add_key()
    emulator.fault(key.label, "stream_stall_mid", after_events=1)
    pool = make_pool([key])
    gemini = GeminiClient(pool)

    async def reader(got):
        async for event in gemini.astream_generate_content(FIVE):
            got.append(event.text)

    async def main():
        got = []
        task = asyncio.ensure_future(reader(got))
        while not got:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return got

    started = time.monotonic()
    got = asyncio.run(main())
    assert len(got) == 1
    assert time.monotonic() - started < 2.0
    assert in_flight(pool) == 0
    wait_until(lambda: emulator.stats()["open_streams"] == 0)


_client = None


def _stream_in_child(prompt):
    return os.getpid(), "".join(e.text for e in _client.stream_generate_content(prompt))


def test_streams_in_forked_children_after_the_parent_streamed(emulator, make_pool):
    global _client
    keys = emulator.add_keys(2)
    _client = GeminiClient(make_pool(keys))
    assert "".join(e.text for e in _client.stream_generate_content(FIVE)) == ANSWER
    try:
        with multiprocessing.get_context("fork").Pool(2) as workers:
            results = workers.map(_stream_in_child, [f"child {i}" for i in range(4)])
    finally:
        _client = None
    assert [text for _, text in results] == [f"echo: child {i}" for i in range(4)]
    assert os.getpid() not in {pid for pid, _ in results}
