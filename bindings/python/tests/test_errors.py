"""Exceptions: the hierarchy, their attributes, pickling, and never a key in their text."""

from __future__ import annotations

import pickle
import traceback

import pytest

from gemini_rotator import (
    AllKeysRateLimitedError,
    APIError,
    ConfigError,
    GeminiClient,
    GeminiError,
    GeminiTimeoutError,
    KeyPool,
    NoUsableKeysError,
    TransportError,
)
from gr_emulator import Key, unique


def _texts(error: BaseException) -> str:
    """Everything a program might print about an exception."""
    return "\n".join(
        [str(error), repr(error), repr(error.args), *traceback.format_exception(type(error), error, error.__traceback__)]
        + [repr(value) for value in vars(error).values()]
    )


def test_no_key_in_any_exception_text(emulator, make_pool):
    secrets = []
    errors = []

    def expect(error_type, call):
        with pytest.raises(error_type) as caught:
            call()
        errors.append(caught.value)

    # Rate limited.
    key = emulator.add_key()
    secrets.append(key.secret)
    limited = GeminiClient(make_pool([key], free_rate_limit=1))
    limited.simple_query("one")
    expect(AllKeysRateLimitedError, lambda: limited.simple_query("two"))

    # Every key invalid (unknown to the service) or leaked.
    unknown = unique("unknown-secret")
    leaked = emulator.add_key()
    emulator.fault(leaked.label, "leaked")
    secrets += [unknown, leaked.secret]
    dead = GeminiClient(make_pool([Key(unknown, "(unknown)"), leaked]))
    expect(NoUsableKeysError, lambda: dead.simple_query("anyone"))

    # API errors: the caller's request, a persistent 503, a quota message naming the model.
    for kind in ("bad_request", "http503", "location"):
        key = emulator.add_key()
        emulator.fault(key.label, kind)
        secrets.append(key.secret)
        client = GeminiClient(make_pool([key], max_retries=1))
        expect(APIError, lambda: client.simple_query(f"fails with {kind}"))

    # Transport and timeout.
    key = emulator.add_key()
    emulator.fault(key.label, "close")
    secrets.append(key.secret)
    client = GeminiClient(make_pool([key], max_retries=1))
    expect(TransportError, lambda: client.simple_query("dropped"))
    key = emulator.add_key()
    emulator.fault(key.label, "delay", latency_ms=2000, count=1)
    secrets.append(key.secret)
    client = GeminiClient(make_pool([key]))
    expect(GeminiTimeoutError, lambda: client.generate_content("slow", timeout=0.2))

    # Configuration errors, with the keys right there in the arguments.
    duplicate = unique("duplicate-secret")
    secrets.append(duplicate)
    expect(ConfigError, lambda: KeyPool([duplicate, duplicate]))
    wrong_type = unique("wrong-type-secret")
    secrets.append(wrong_type)
    expect(TypeError, lambda: KeyPool(wrong_type))
    expect(TypeError, lambda: KeyPool(["k"], paid_key=[wrong_type]))  # type: ignore[arg-type]

    assert len(errors) == 10
    for error in errors:
        text = _texts(error)
        assert text.strip()
        for secret in secrets:
            assert secret not in text, f"{type(error).__name__} shows a key: {text}"
            # Not even a recognisable part of one.
            assert secret.split("-")[-1] not in text


def test_hierarchy():
    for cls in (
        AllKeysRateLimitedError,
        APIError,
        ConfigError,
        GeminiTimeoutError,
        NoUsableKeysError,
        TransportError,
    ):
        assert issubclass(cls, GeminiError)
    assert issubclass(GeminiTimeoutError, TimeoutError)
    assert issubclass(TransportError, ConnectionError)
    assert issubclass(ConfigError, ValueError)


@pytest.mark.parametrize(
    "error",
    [
        AllKeysRateLimitedError("all API keys have reached their rate limits", 1.5),
        APIError("Gemini API error 400", 400, "INVALID_ARGUMENT"),
        TransportError("connection refused"),
        GeminiTimeoutError("time budget exhausted"),
        NoUsableKeysError("every key is disabled"),
        ConfigError("free_keys: empty"),
    ],
)
def test_exceptions_pickle(error):
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)
