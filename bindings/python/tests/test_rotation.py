"""Which key serves each request: round-robin, paid fallback, exhaustion."""

from __future__ import annotations

import pytest

from gemini_rotator import AllKeysRateLimitedError, GeminiClient, fingerprint


def test_round_robin_over_three_free_keys(emulator, make_pool):
    keys = emulator.add_keys(3)
    gemini = GeminiClient(make_pool(keys))

    served = []
    for i in range(9):
        response = gemini.generate_content(f"question {i}")
        assert response.text == f"echo: question {i}"
        served.append(response.key_fingerprint)

    prints = [fingerprint(key.secret) for key in keys]
    # Strict rotation: each window of three consecutive calls uses every key once.
    assert served[:3] == served[3:6] == served[6:9]
    assert sorted(served[:3]) == sorted(prints)
    assert [emulator.requests(key) for key in keys] == [3, 3, 3]

    stats = gemini.pool.stats()
    assert sorted(key.fingerprint for key in stats.keys) == sorted(prints)
    for key in stats.keys:
        assert (key.tier, key.admitted, key.succeeded, key.in_window) == ("free", 3, 3, 3)
        assert key.usable and key.cooldown_cause is None
    assert (stats.pool.requests, stats.pool.succeeded, stats.pool.failed) == (9, 9, 0)
    assert stats.pool.latency.count == 9
    assert stats.pool.latency.buckets[-1] == (float("inf"), 9)


def test_simple_query_returns_the_text(emulator, make_pool):
    gemini = GeminiClient(make_pool(emulator.add_keys(1)))
    assert gemini.simple_query("Your prompt here") == "echo: Your prompt here"


def test_paid_key_only_when_every_free_key_is_full(emulator, make_pool):
    free = emulator.add_keys(2)
    paid = emulator.add_key("paid")
    gemini = GeminiClient(make_pool(free, paid, free_rate_limit=2))

    served = [gemini.generate_content(f"p{i}").key_fingerprint for i in range(6)]

    free_prints = {fingerprint(key.secret) for key in free}
    assert set(served[:4]) == free_prints
    assert served[4:] == [fingerprint(paid.secret)] * 2
    assert [emulator.requests(key) for key in free] == [2, 2]
    assert emulator.requests(paid) == 2
    stats = gemini.pool.stats()
    assert stats.pool.paid_fallbacks == 2
    assert stats.key(fingerprint(paid.secret)).tier == "paid"


def test_exhaustion_raises_with_retry_after(emulator, make_pool):
    keys = emulator.add_keys(2)
    gemini = GeminiClient(make_pool(keys, free_rate_limit=1, window_ms=60000))
    gemini.simple_query("one")
    gemini.simple_query("two")

    with pytest.raises(AllKeysRateLimitedError) as caught:
        gemini.simple_query("three")

    error = caught.value
    assert "all API keys have reached their rate limits" in str(error)
    assert isinstance(error.retry_after, float)
    # The oldest admission leaves the 60 s window in about 60 s (the library rounds up).
    assert 50.0 < error.retry_after <= 60.1
    # Refused before any HTTP: the emulator saw only the two admitted calls.
    assert [emulator.requests(key) for key in keys] == [1, 1]
    assert gemini.pool.stats().pool.exhausted == 1


def test_max_wait_waits_for_the_window(emulator, make_pool):
    key = emulator.add_key()
    gemini = GeminiClient(make_pool([key], free_rate_limit=1, window_ms=400))
    gemini.simple_query("first")

    with pytest.raises(AllKeysRateLimitedError) as caught:
        gemini.generate_content("too soon", max_wait=0.001)
    assert caught.value.retry_after > 0.001

    # Waiting long enough succeeds once the first call leaves the window.
    response = gemini.generate_content("later", max_wait=5.0)
    assert response.text == "echo: later"
    assert emulator.requests(key) == 2
