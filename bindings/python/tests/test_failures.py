"""Each class of upstream failure, as the Python caller sees it."""

from __future__ import annotations

import socket

import pytest

from gemini_rotator import (
    APIError,
    GeminiClient,
    GeminiError,
    GeminiTimeoutError,
    NoUsableKeysError,
    TransportError,
    fingerprint,
)
from gr_emulator import Key, unique


def test_429_cools_the_key_down_and_moves_to_another(emulator, make_pool):
    hot, cool = emulator.add_keys(2)
    emulator.fault(hot.label, "quota_minute", count=1, retry_delay="30s")
    gemini = GeminiClient(make_pool([hot, cool]))

    served = [gemini.generate_content(f"q{i}") for i in range(3)]

    # Whichever key the rotation started with, every answer came from `cool`: `hot` answered
    # 429 once and is cooling down for 30 s.
    assert [r.text for r in served] == ["echo: q0", "echo: q1", "echo: q2"]
    assert {r.key_fingerprint for r in served} == {fingerprint(cool.secret)}
    assert emulator.key_stats(hot)["by_status"] == {"429": 1}
    assert emulator.requests(cool) == 3
    hot_stats = gemini.pool.stats().key(fingerprint(hot.secret))
    assert hot_stats.upstream_429 == 1
    assert hot_stats.cooldown_cause == "per_minute"
    assert 20_000 < hot_stats.cooldown_remaining_ms <= 30_000
    assert hot_stats.usable


def test_invalid_key_is_disabled_and_the_call_moves_on(emulator, make_pool):
    good = emulator.add_key()
    unknown = Key(secret=unique("never-registered"), label="(unknown)")
    gemini = GeminiClient(make_pool([unknown, good]))

    assert [gemini.simple_query(f"q{i}") for i in range(3)] == ["echo: q0", "echo: q1", "echo: q2"]

    stats = gemini.pool.stats()
    assert stats.key(fingerprint(unknown.secret)).disabled == "API_KEY_INVALID"
    assert stats.key(fingerprint(unknown.secret)).invalid_key == 1
    assert stats.key(fingerprint(good.secret)).succeeded == 3
    assert emulator.requests(good) == 3


def test_leaked_key_is_disabled(emulator, make_pool):
    leaked, good = emulator.add_keys(2)
    emulator.fault(leaked.label, "leaked")
    gemini = GeminiClient(make_pool([leaked, good]))

    for i in range(4):
        assert gemini.generate_content(f"q{i}").key_fingerprint == fingerprint(good.secret)

    assert emulator.key_stats(leaked)["by_status"] == {"403": 1}
    assert gemini.pool.stats().key(fingerprint(leaked.secret)).disabled == "LEAKED"


def test_every_key_disabled_raises_no_usable_keys(emulator, make_pool):
    keys = emulator.add_keys(2)
    for key in keys:
        emulator.fault(key.label, "suspended")
    gemini = GeminiClient(make_pool(keys))

    with pytest.raises(NoUsableKeysError):
        gemini.simple_query("anyone?")
    with pytest.raises(NoUsableKeysError):
        gemini.simple_query("still nobody?")
    assert [emulator.requests(key) for key in keys] == [1, 1]


def test_503_is_retried_then_succeeds(emulator, make_pool):
    key = emulator.add_key()
    emulator.fault(key.label, "http503", count=2)
    gemini = GeminiClient(make_pool([key], max_retries=3))

    assert gemini.simple_query("overloaded?") == "echo: overloaded?"

    assert emulator.key_stats(key)["by_status"] == {"503": 2, "200": 1}
    stats = gemini.pool.stats().key(fingerprint(key.secret))
    assert (stats.server_errors, stats.retries, stats.succeeded) == (2, 2, 1)
    assert stats.usable  # A 503 says nothing against the key.


def test_persistent_503_raises_api_error(emulator, make_pool):
    key = emulator.add_key()
    emulator.fault(key.label, "http503")
    gemini = GeminiClient(make_pool([key], max_retries=2))

    with pytest.raises(APIError) as caught:
        gemini.simple_query("overloaded")

    assert caught.value.status_code == 503
    assert caught.value.status == "UNAVAILABLE"
    # `message` is the service's text; str() the library's whole line around it.
    assert caught.value.message and caught.value.message in str(caught.value)
    assert caught.value.key_fingerprint == fingerprint(key.secret)
    assert emulator.requests(key) == 3  # The first attempt and two retries.
    assert gemini.pool.stats().key(fingerprint(key.secret)).usable


def test_bad_request_raises_api_error_at_once(emulator, make_pool):
    keys = emulator.add_keys(2)
    for key in keys:
        emulator.fault(key.label, "bad_request")
    gemini = GeminiClient(make_pool(keys))

    with pytest.raises(APIError) as caught:
        gemini.simple_query("malformed")

    assert (caught.value.status_code, caught.value.status) == (400, "INVALID_ARGUMENT")
    # Not retried, not tried on the other key: the request is the problem, not the key.
    assert sum(emulator.requests(key) for key in keys) == 1
    assert all(key.usable for key in gemini.pool.stats().keys)


def test_safety_block_is_a_success(emulator, make_pool):
    key = emulator.add_key()
    emulator.fault(key.label, "safety_block", count=1)
    gemini = GeminiClient(make_pool([key]))

    response = gemini.generate_content("something unsafe")

    assert response.text == ""
    assert response.candidates == []
    assert response.finish_reason is None
    assert response.prompt_feedback is not None
    assert response.prompt_feedback["blockReason"] == "SAFETY"
    assert response.key_fingerprint == fingerprint(key.secret)
    assert gemini.simple_query("harmless") == "echo: harmless"
    assert emulator.requests(key) == 2


def test_dropped_connection_is_retried(emulator, make_pool):
    key = emulator.add_key()
    emulator.fault(key.label, "close", count=1)
    gemini = GeminiClient(make_pool([key]))

    assert gemini.simple_query("again") == "echo: again"
    assert emulator.requests(key) == 2
    assert gemini.pool.stats().key(fingerprint(key.secret)).transport_errors == 1


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_unreachable_service_raises_transport_error(emulator, make_pool):
    key = emulator.add_key()
    gemini = GeminiClient(make_pool([key], base_url=_closed_port_url(), max_retries=1))

    with pytest.raises(TransportError) as caught:
        gemini.simple_query("hello?")

    assert isinstance(caught.value, ConnectionError)
    assert isinstance(caught.value, GeminiError)
    assert str(caught.value)
    stats = gemini.pool.stats().key(fingerprint(key.secret))
    assert stats.transport_errors == 2
    assert stats.usable


def test_time_budget_raises_timeout_error(emulator, make_pool):
    key = emulator.add_key()
    emulator.fault(key.label, "delay", latency_ms=3000, count=1)
    gemini = GeminiClient(make_pool([key]))

    with pytest.raises(GeminiTimeoutError) as caught:
        gemini.generate_content("slow", timeout=0.3)

    assert isinstance(caught.value, TimeoutError)
    assert gemini.pool.stats().key(fingerprint(key.secret)).timeouts >= 1
