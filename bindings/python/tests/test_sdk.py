"""google-genai on top of the pool (HttpxTransport, AsyncHttpxTransport, genai_client), against
the emulator: rotation and limits, 429 failover, stream failover before the first event and a
typed error after it, the placeholder key never sent, the pool's error and the service's own
errors through the SDK, async concurrency. Files, cached contents and the models:
test_sdk_resources.py."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

import gemini_rotator
from gemini_rotator import (
    AllKeysRateLimitedError,
    APIError,
    AsyncHttpxTransport,
    HttpxTransport,
    IncompleteStreamError,
)

MODEL = "gemini-2.5-flash"
FIVE = "one two three four five"
ANSWER = "echo: one two three four five"
PLACEHOLDER = "placeholder-that-must-never-be-sent"


def sdk(pool, emulator, api_version=None) -> genai.Client:
    """The issue's one-line form: the SDK's own client, our transports underneath."""
    return genai.Client(
        api_key=PLACEHOLDER,
        http_options=types.HttpOptions(
            base_url=emulator.base_url,
            api_version=api_version,
            httpx_client=httpx.Client(transport=HttpxTransport(pool)),
            httpx_async_client=httpx.AsyncClient(transport=AsyncHttpxTransport(pool)),
        ),
    )


def cause_chain(error: BaseException):
    while error is not None:
        yield error
        error = error.__cause__ or error.__context__


def in_flight(pool) -> int:
    """Requests in flight on the pool's keys for its default model (each test's pools use MODEL)."""
    return sum(k.in_flight for k in pool.stats().keys)


def test_generate_rotates_over_the_keys_and_never_sends_the_placeholder(emulator, make_pool):
    keys = emulator.add_keys(3)
    client = sdk(make_pool(keys, model=MODEL), emulator)
    unknown_before = emulator.unknown_key_requests()
    for _ in range(6):
        answer = client.models.generate_content(model=MODEL, contents=FIVE)
        assert answer.text == ANSWER
    assert [emulator.requests(k) for k in keys] == [2, 2, 2]
    # The emulator refuses (and counts) any key it does not know: the placeholder never came.
    assert emulator.unknown_key_requests() == unknown_before
    for key in keys:
        assert all(e["model"] == MODEL and e["status"] == 200 for e in emulator.log(key))


def test_the_request_body_passes_through_untouched(emulator, make_pool):
    key = emulator.add_key()
    client = sdk(make_pool([key], model=MODEL), emulator)
    config = types.GenerateContentConfig(temperature=0.25, max_output_tokens=64, seed=7)
    client.models.generate_content(model=MODEL, contents=FIVE, config=config)
    body = emulator.last_body(key)
    assert body["contents"][0]["parts"][0]["text"] == FIVE
    assert body["generationConfig"] == {"temperature": 0.25, "maxOutputTokens": 64, "seed": 7}


def test_a_429_fails_over_to_another_key(emulator, make_pool):
    keys = emulator.add_keys(2)
    client = sdk(make_pool(keys, model=MODEL), emulator)
    emulator.fault(keys[0].label, "quota_minute", count=1)
    assert client.models.generate_content(model=MODEL, contents=FIVE).text == ANSWER
    assert [e["status"] for e in emulator.log(keys[0])] == [429]
    assert [e["status"] for e in emulator.log(keys[1])] == [200]


def test_the_pools_limit_reaches_the_caller_through_the_sdk(emulator, make_pool):
    key = emulator.add_key()
    pool = make_pool([key], free_rate_limit=2, model=MODEL)
    client = sdk(pool, emulator)
    for _ in range(2):
        client.models.generate_content(model=MODEL, contents=FIVE)
    with pytest.raises(Exception) as raised:
        client.models.generate_content(model=MODEL, contents=FIVE)
    assert any(isinstance(e, AllKeysRateLimitedError) for e in cause_chain(raised.value))
    assert emulator.requests(key) == 2  # the third was refused before any request was sent


def test_the_services_own_error_is_the_sdks_error_type(emulator, make_pool):
    key = emulator.add_key()
    client = sdk(make_pool([key], model=MODEL), emulator)
    with pytest.raises(genai_errors.ClientError) as raised:
        client.models.generate_content(model="gemini-1.0-pro", contents=FIVE)  # retired: 404
    assert raised.value.code == 404
    assert raised.value.status == "NOT_FOUND"


def test_stream_events_reach_the_sdks_parser(emulator, make_pool):
    keys = emulator.add_keys(2)
    pool = make_pool(keys, model=MODEL)
    client = sdk(pool, emulator)
    chunks = list(client.models.generate_content_stream(model=MODEL, contents=FIVE))
    assert len(chunks) > 1
    assert "".join(c.text or "" for c in chunks) == ANSWER
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert in_flight(pool) == 0


def test_stream_failover_before_the_first_event_is_unseen(emulator, make_pool):
    keys = emulator.add_keys(2)
    client = sdk(make_pool(keys, model=MODEL), emulator)
    emulator.fault(keys[0].label, "quota_minute", count=1)
    emulator.fault(keys[1].label, "stream_error_mid", after_events=0, error="http503", count=1)
    chunks = client.models.generate_content_stream(model=MODEL, contents=FIVE)
    assert "".join(c.text or "" for c in chunks) == ANSWER


def test_stream_error_after_the_first_event_is_typed_and_not_retried(emulator, make_pool):
    keys = emulator.add_keys(2)
    pool = make_pool(keys, model=MODEL)
    client = sdk(pool, emulator)
    emulator.fault(keys[0].label, "stream_error_mid", after_events=2, error="http503", count=1)
    texts = []
    with pytest.raises(Exception) as raised:
        for chunk in client.models.generate_content_stream(model=MODEL, contents=FIVE):
            texts.append(chunk.text)
    api = [e for e in cause_chain(raised.value) if isinstance(e, APIError)]
    assert api and api[0].status_code == 503
    assert len(texts) == 2
    assert sum(emulator.requests(k) for k in keys) == 1
    emulator.fault(keys[1].label, "stream_cut", after_events=3, count=1)
    with pytest.raises(Exception) as raised:
        list(client.models.generate_content_stream(model=MODEL, contents=FIVE))
    assert any(isinstance(e, IncompleteStreamError) for e in cause_chain(raised.value))
    assert in_flight(pool) == 0


def test_closing_the_sdks_stream_early_frees_the_slot(emulator, make_pool):
    key = emulator.add_key()
    emulator.fault(key.label, "delay", method="streamGenerateContent", gap_ms=100)
    pool = make_pool([key], model=MODEL)
    client = sdk(pool, emulator)
    stream = client.models.generate_content_stream(model=MODEL, contents=FIVE)
    next(stream)
    assert in_flight(pool) == 1
    stream.close()
    deadline = time.monotonic() + 5
    while in_flight(pool) != 0:
        assert time.monotonic() < deadline, "the slot was not freed"
        time.sleep(0.01)


def test_count_tokens_and_embed_content(emulator, make_pool):
    keys = emulator.add_keys(2)
    client = sdk(make_pool(keys, model=MODEL), emulator)
    tokens = client.models.count_tokens(model=MODEL, contents=FIVE)
    assert tokens.total_tokens == 5
    embedded = client.models.embed_content(model="gemini-embedding-001", contents=["a b", "c d"])
    assert len(embedded.embeddings) == 2 and embedded.embeddings[0].values
    methods = [e["method"] for k in keys for e in emulator.log(k)]
    assert sorted(methods) == ["batchEmbedContents", "countTokens"]  # one on each key


@pytest.mark.parametrize("version", ["v1", "v1beta"])
def test_both_api_versions_are_served(emulator, make_pool, version):
    key = emulator.add_key()
    client = sdk(make_pool([key], model=MODEL), emulator, api_version=version)
    assert client.models.generate_content(model=MODEL, contents=FIVE).text == ANSWER


def test_a_path_the_pool_does_not_serve_is_refused_clearly(make_pool, emulator):
    key = emulator.add_key()
    http = httpx.Client(transport=HttpxTransport(make_pool([key], model=MODEL)))
    with pytest.raises(gemini_rotator.InvalidArgumentError) as raised:
        http.get(f"{emulator.base_url}/v1beta/tunedModels?pageSize=5")
    assert "GET" in str(raised.value) and "/v1beta/tunedModels" in str(raised.value)
    assert emulator.requests(key) == 0


def test_async_calls_run_concurrently_and_rotate(emulator, make_pool):
    keys = emulator.add_keys(4)
    for key in keys:
        emulator.fault(key.label, "delay", method="generateContent", latency_ms=300)
    client = sdk(make_pool(keys, model=MODEL), emulator)

    async def main():
        start = time.monotonic()
        answers = await asyncio.gather(
            *(client.aio.models.generate_content(model=MODEL, contents=FIVE) for _ in range(4))
        )
        return answers, time.monotonic() - start

    answers, elapsed = asyncio.run(main())
    assert [a.text for a in answers] == [ANSWER] * 4
    assert [emulator.requests(k) for k in keys] == [1, 1, 1, 1]
    assert elapsed < 4 * 0.3 * 0.8, elapsed  # concurrent, not one after another


def test_async_stream_count_tokens_and_embed(emulator, make_pool):
    keys = emulator.add_keys(2)
    pool = make_pool(keys, model=MODEL)
    client = sdk(pool, emulator)

    async def main():
        chunks = [c async for c in await client.aio.models.generate_content_stream(
            model=MODEL, contents=FIVE)]
        tokens = await client.aio.models.count_tokens(model=MODEL, contents=FIVE)
        embedded = await client.aio.models.embed_content(
            model="gemini-embedding-001", contents="a b")
        return chunks, tokens, embedded

    chunks, tokens, embedded = asyncio.run(main())
    assert "".join(c.text or "" for c in chunks) == ANSWER
    assert tokens.total_tokens == 5
    assert embedded.embeddings[0].values
    assert in_flight(pool) == 0


def test_async_cancellation_stops_the_request(emulator, make_pool):
    key = emulator.add_key()
    emulator.fault(key.label, "delay", method="generateContent", latency_ms=3000)
    pool = make_pool([key], model=MODEL)
    client = sdk(pool, emulator)

    async def main():
        task = asyncio.create_task(client.aio.models.generate_content(model=MODEL, contents=FIVE))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    start = time.monotonic()
    asyncio.run(main())
    deadline = time.monotonic() + 2
    while in_flight(pool) != 0:
        assert time.monotonic() < deadline, "the cancelled request still holds its slot"
        time.sleep(0.01)
    assert time.monotonic() - start < 2.5


def test_genai_client_helper(emulator, make_pool):
    keys = emulator.add_keys(2)
    client = gemini_rotator.genai_client(make_pool(keys, model=MODEL), base_url=emulator.base_url)
    assert client.models.generate_content(model=MODEL, contents=FIVE).text == ANSWER
    assert sum(emulator.requests(k) for k in keys) == 1
