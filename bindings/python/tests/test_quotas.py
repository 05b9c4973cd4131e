"""Quotas as Google applies them (issue 10), end to end from Python against the emulator:
per (quota group, model) cooldowns, the daily limit, project groups, "limit: 0", and model
fallback with ``response.model``. Each test checks what the emulator saw as well as what the
binding returned."""

from __future__ import annotations

import time
import uuid
from typing import Any, Iterator, List

import pytest

from gemini_rotator import (
    AllKeysRateLimitedError,
    GeminiClient,
    KeyPool,
    ModelLimits,
    ModelUnavailableError,
    fingerprint,
)
from gr_emulator import Emulator, Key

DEFAULT = "gemini-3.6-flash"  # the pool's default model
OTHER = "gemini-3.1-flash-lite"
PRO = "gemini-3-pro"


@pytest.fixture
def pools(emulator: Emulator) -> Iterator[Any]:
    """``pools(free_keys, **options)``: a pool on the emulator whose free keys are given as
    written (``"PROJECT:KEY"`` allowed), with fast retries; closed after the test."""
    made: List[KeyPool] = []

    def make(free_keys: List[str], **options: Any) -> KeyPool:
        options.setdefault("base_url", emulator.base_url)
        options.setdefault("retry_base_ms", 1)
        options.setdefault("retry_max_ms", 5)
        pool = KeyPool(free_keys=free_keys, **options)
        made.append(pool)
        return pool

    yield make
    for pool in made:
        pool.close()


def unique_project() -> str:
    """A project of this test alone: quota records belong to (project, model), in the state
    file every test of the session shares and in the emulator."""
    return f"p-{uuid.uuid4().hex[:16]}"


def away_from_pacific_midnight(emulator: Emulator) -> None:
    """Waits past the next Pacific midnight when it is less than a minute away, so that a
    test's requests and its expectations fall on one quota day."""
    left_ms = emulator.clock()["ms_to_next_reset"]
    if left_ms < 60_000:
        time.sleep(left_ms / 1000 + 1)


def log_of(emulator: Emulator, key: Key) -> List[tuple]:
    return [(e["method"], e["model"], e["status"]) for e in emulator.log(key)]


@pytest.mark.parametrize(
    "kind, cause",
    [("quota_minute", "per_minute"), ("quota_day", "per_day")],
)
def test_a_429_for_one_model_leaves_another_model_of_the_key_usable(
    emulator, pools, kind, cause
):
    away_from_pacific_midnight(emulator)
    key = emulator.add_key()
    gemini = GeminiClient(pools([key.secret]))
    emulator.fault(key.label, kind, model=DEFAULT, retry_delay="30s", count=1)

    with pytest.raises(AllKeysRateLimitedError):
        gemini.generate_content("hello")
    response = gemini.generate_content("hello", model=OTHER)
    assert (response.model, response.key_fingerprint) == (OTHER, fingerprint(key.secret))
    # The cooled model is refused here, without a request.
    with pytest.raises(AllKeysRateLimitedError):
        gemini.generate_content("hello", model=DEFAULT)

    assert log_of(emulator, key) == [
        ("generateContent", DEFAULT, 429),
        ("generateContent", OTHER, 200),
    ]
    stats = gemini.pool.stats().key(fingerprint(key.secret))
    cooled, spared = stats.model(DEFAULT), stats.model(OTHER)
    if cause == "per_minute":  # the service's retryDelay
        expected = (20_000, 30_000)
    else:  # until Pacific midnight, whatever retryDelay says
        midnight = emulator.clock()["ms_to_next_reset"]
        expected = (midnight - 60_000, midnight + 1_000)
    assert cooled.cooldown_cause == cause
    assert expected[0] <= cooled.cooldown_remaining_ms <= expected[1], cooled
    assert (spared.cooldown_cause, spared.cooldown_remaining_ms, spared.in_window) == (None, 0, 1)


def test_the_daily_limit_never_sends_the_next_request_of_the_day(emulator, pools):
    away_from_pacific_midnight(emulator)
    daily = 3
    key = emulator.add_key(daily_limit=daily)
    gemini = GeminiClient(pools([key.secret], free_daily_limit=daily))
    for i in range(daily):
        gemini.generate_content(f"request {i}")

    before = emulator.clock()["ms_to_next_reset"]
    with pytest.raises(AllKeysRateLimitedError) as refused:
        gemini.generate_content("one too many")
    after = emulator.clock()["ms_to_next_reset"]
    # Until the next Pacific midnight, to the second (give or take the call's own duration).
    assert after / 1000 - 1 <= refused.value.retry_after <= before / 1000 + 1

    assert emulator.key_stats(key)["requests"] == daily
    assert emulator.key_stats(key)["rate_limited"] == 0
    label_project = emulator.key_stats(key)["project"]
    assert emulator.project_model_stats(label_project, DEFAULT)["today"] == daily
    stats = gemini.pool.stats()
    mine = stats.key(fingerprint(key.secret)).model(DEFAULT)
    assert (mine.today, mine.daily_limit) == (daily, daily)
    assert stats.model(DEFAULT).requests_left_today == 0
    # Another model has a day of its own.
    assert gemini.generate_content("hello", model=OTHER).model == OTHER


def test_keys_of_one_project_share_one_quota(emulator, pools):
    limit = 2
    project = unique_project()
    shared = [emulator.add_key(project=project, limit=limit) for _ in range(2)]
    alone = emulator.add_key(limit=limit)
    gemini = GeminiClient(
        pools(
            [f"{project}:{shared[0].secret}", f"{project}:{shared[1].secret}", alone.secret],
            free_rate_limit=limit,
        )
    )
    for i in range(2 * limit):
        gemini.generate_content(f"request {i}")
    with pytest.raises(AllKeysRateLimitedError):
        gemini.generate_content("one too many")

    seen = emulator.project_model_stats(project, DEFAULT)
    assert (seen["requests"], seen["rate_limited"]) == (limit, 0), "the project's limit, not 2 per key"
    assert (emulator.requests(alone), emulator.key_stats(alone)["rate_limited"]) == (limit, 0)
    stats = gemini.pool.stats()
    for key in shared:
        mine = stats.key(fingerprint(key.secret))
        assert (mine.group, mine.model(DEFAULT).in_window) == (project, limit)
        assert mine.admitted == 1, "fingerprints and counters stay per key"
    assert stats.key(fingerprint(alone.secret)).group not in ("", project)


def test_a_model_not_on_a_keys_tier_is_skipped_or_a_clear_error(emulator, pools):
    zero = {PRO: {"limit": 0}}
    lacking = emulator.add_key(models=zero)
    having = emulator.add_key()
    gemini = GeminiClient(pools([lacking.secret, having.secret]))
    for _ in range(3):
        response = gemini.generate_content("hello", model=PRO)
        assert (response.key_fingerprint, response.model) == (fingerprint(having.secret), PRO)
    assert log_of(emulator, lacking) == [("generateContent", PRO, 429)], "asked once"
    assert emulator.requests(having) == 3
    unavailable = gemini.pool.stats().key(fingerprint(lacking.secret)).model(PRO)
    assert unavailable.unavailable
    assert unavailable.unavailable_remaining_ms > 23 * 3_600_000
    # The key still serves its other models.
    assert gemini.generate_content("hello").model == DEFAULT

    none = [emulator.add_key(models=zero) for _ in range(2)]
    gemini = GeminiClient(pools([key.secret for key in none]))
    for _ in range(2):
        with pytest.raises(ModelUnavailableError, match=PRO) as caught:
            gemini.generate_content("hello", model=PRO)
        assert not isinstance(caught.value, AllKeysRateLimitedError)
    assert sum(emulator.requests(key) for key in none) == 2, "each key asked once"


def test_a_fallback_serves_the_call_and_says_so(emulator, pools):
    key = emulator.add_key()
    models = {DEFAULT: ModelLimits(free_daily_limit=1, fallback=[OTHER])}
    gemini = GeminiClient(pools([key.secret], models=models))

    served = [gemini.generate_content("hello").model for _ in range(2)]
    assert served == [DEFAULT, OTHER]
    events = list(gemini.stream_generate_content("one two three"))
    assert events and all(event.model == OTHER for event in events)

    assert log_of(emulator, key) == [
        ("generateContent", DEFAULT, 200),
        ("generateContent", OTHER, 200),
        ("streamGenerateContent", OTHER, 200),
    ]
    stats = gemini.pool.stats()
    assert stats.pool.model_fallbacks == 2
    assert (stats.model(OTHER).fallbacks, stats.model(f"models/{OTHER}").fallbacks) == (2, 2)
    assert (stats.model(DEFAULT).fallbacks, stats.model(DEFAULT).requests_left_today) == (0, 0)
    assert stats.key(fingerprint(key.secret)).model(OTHER).fallbacks == 2
    with pytest.raises(KeyError, match=PRO):
        stats.model(PRO)
