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
    InvalidArgumentError,
    KeyPool,
    NoUsableKeysError,
    TransportError,
    fingerprint,
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


def _check_api_error_parts(error: APIError, key: Key) -> None:
    """``message`` is the service's text alone; ``str(error)`` the library's whole line."""
    assert error.key_fingerprint == fingerprint(key.secret)
    assert error.message
    assert not error.message.startswith("Gemini API error")
    assert "(key " not in error.message
    assert str(error) == (
        f"Gemini API error {error.status_code} {error.status}: {error.message} "
        f"(key {error.key_fingerprint})"
    )
    assert key.secret not in _texts(error)
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.message, copy.key_fingerprint, copy.status_code, copy.status) == (
        str(error),
        error.message,
        error.key_fingerprint,
        error.status_code,
        error.status,
    )


def test_api_error_fields_of_a_bad_request(emulator, make_pool):
    key = emulator.add_key()
    emulator.fault(key.label, "bad_request")
    client = GeminiClient(make_pool([key], max_retries=3))

    with pytest.raises(APIError) as caught:
        client.simple_query("malformed")

    assert (caught.value.status_code, caught.value.status) == (400, "INVALID_ARGUMENT")
    assert emulator.requests(key) == 1
    _check_api_error_parts(caught.value, key)


def test_api_error_fields_of_a_503_that_outlasts_the_retries(emulator, make_pool):
    key = emulator.add_key()
    emulator.fault(key.label, "http503")
    client = GeminiClient(make_pool([key], max_retries=2))

    with pytest.raises(APIError) as caught:
        client.simple_query("overloaded")

    assert (caught.value.status_code, caught.value.status) == (503, "UNAVAILABLE")
    assert emulator.key_stats(key)["by_status"] == {"503": 3}
    assert client.pool.stats().key(fingerprint(key.secret)).retries == 2
    _check_api_error_parts(caught.value, key)


def test_a_hand_made_api_error_keeps_its_text_as_message():
    error = APIError("Gemini API error 400", 400, "INVALID_ARGUMENT")
    assert (error.message, error.key_fingerprint, str(error)) == (
        "Gemini API error 400",
        "",
        "Gemini API error 400",
    )


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"contents": [', "not valid JSON"),  # GR_ERR_INVALID_JSON: does not parse
        (b"[1, 2, 3]", "must be a JSON object"),  # GR_ERR_INVALID_ARGUMENT: the wrong kind
    ],
)
def test_invalid_json_and_json_of_the_wrong_kind_are_invalid_arguments(
    emulator, make_pool, body, words
):
    # The public API always sends a JSON object; the pool's raw call shows how the two
    # statuses of a refused request body reach Python.
    key = emulator.add_key()
    pool = make_pool([key])
    with pytest.raises(InvalidArgumentError) as caught:
        pool._generate(body, None, 0, 0)
    assert "request_json" in str(caught.value) and words in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert emulator.requests(key) == 0
