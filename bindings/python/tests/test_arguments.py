"""Arguments: what is sent, what is refused (and how clearly), which pool a client uses."""

from __future__ import annotations

import pytest

from gemini_rotator import (
    ConfigError,
    GeminiClient,
    InvalidArgumentError,
    KeyPool,
    PoolClosedError,
    fingerprint,
)


def test_unset_options_are_not_sent(emulator, make_pool):
    key = emulator.add_key()
    gemini = GeminiClient(make_pool([key]))

    gemini.generate_content("just the prompt")

    assert emulator.last_body(key) == {
        "contents": [{"role": "user", "parts": [{"text": "just the prompt"}]}]
    }


def test_every_option_reaches_the_service_in_its_wire_name(emulator, make_pool):
    key = emulator.add_key()
    gemini = GeminiClient(make_pool([key]))
    safety = [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]
    tools = [{"googleSearch": {}}]

    gemini.generate_content(
        prompt="Your prompt here",
        system_instruction="Be brief.",
        temperature=0.7,
        max_output_tokens=1000,
        top_p=0.9,
        top_k=40,
        stop_sequences=["END"],
        response_mime_type="text/plain",
        safety_settings=safety,
        tools=tools,
        generation_config={"seed": 7, "thinkingConfig": {"thinkingBudget": 0}},
    )

    assert emulator.last_body(key) == {
        "contents": [{"role": "user", "parts": [{"text": "Your prompt here"}]}],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {
            "temperature": 0.7,
            "maxOutputTokens": 1000,
            "topP": 0.9,
            "topK": 40,
            "stopSequences": ["END"],
            "responseMimeType": "text/plain",
            "seed": 7,
            "thinkingConfig": {"thinkingBudget": 0},
        },
        "safetySettings": safety,
        "tools": tools,
    }


def test_contents_are_sent_as_given_and_thoughts_are_not_text(emulator, make_pool):
    key = emulator.add_key()
    gemini = GeminiClient(make_pool([key]))
    contents = [
        {"role": "user", "parts": [{"text": "Hi"}]},
        {"role": "model", "parts": [{"text": "Hello"}]},
        {"role": "user", "parts": [{"text": "How "}, {"text": "are you?"}]},
    ]

    response = gemini.generate_content(
        contents=contents, generation_config={"thinkingConfig": {"includeThoughts": True}}
    )

    assert emulator.last_body(key)["contents"] == contents
    parts = response.candidates[0]["content"]["parts"]
    assert any(part.get("thought") for part in parts)  # The emulator did send a thought...
    assert response.text == "echo: How are you?"  # ...which is not part of the answer.
    usage = response.usage_metadata
    assert usage is not None and usage.thoughts_token_count and usage.total_token_count
    assert response.model_version
    assert response.raw["candidates"] == response.candidates


def test_model_override(emulator, make_pool):
    key = emulator.add_key()
    gemini = GeminiClient(make_pool([key], model="gemini-3.6-flash"))

    gemini.simple_query("default model")
    gemini.simple_query("other model", model="gemini-3.6-pro")

    assert [entry["model"] for entry in emulator.log(key)] == [
        "gemini-3.6-flash",
        "gemini-3.6-pro",
    ]
    with pytest.raises(InvalidArgumentError, match="model"):
        gemini.simple_query("x", model="not/a/model")


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"free_keys": "one-key-as-a-string"}, TypeError, ["free_keys", "list of str", "str"]),
        ({"free_keys": ["ok-key", 3]}, TypeError, ["free_keys[1]", "int"]),
        ({"free_keys": None}, TypeError, ["free_keys", "NoneType"]),
        ({"free_keys": ["k"], "paid_key": 12}, TypeError, ["paid_key", "int"]),
        ({"free_keys": ["k"], "free_rate_limit": "60"}, TypeError, ["free_rate_limit", "str"]),
        ({"free_keys": ["k"], "free_rate_limit": True}, TypeError, ["free_rate_limit", "bool"]),
        ({"free_keys": ["k"], "window_ms": 1.5}, TypeError, ["window_ms", "float"]),
        ({"free_keys": ["k"], "free_rate_limit": 0}, ValueError, ["free_rate_limit", "at least 1"]),
        ({"free_keys": ["k"], "max_retries": -1}, ValueError, ["max_retries"]),
        ({"free_keys": [""]}, ValueError, ["free_keys[0]", "empty"]),
        ({"free_keys": []}, ConfigError, ["free_keys"]),
        ({"free_keys": ["k"], "base_url": "ftp://example"}, ConfigError, ["base_url"]),
        ({"free_keys": ["k"], "retry_base_ms": 0}, ConfigError, ["retry_base_ms"]),
        ({"free_keys": ["k"], "state": "somewhere"}, ConfigError, ["state"]),
    ],
)
def test_bad_pool_arguments(kwargs, error, words):
    with pytest.raises(error) as caught:
        KeyPool(**kwargs)
    for word in words:
        assert word in str(caught.value)


def test_unknown_keyword_is_a_type_error(emulator, make_pool):
    with pytest.raises(TypeError, match="free_limit"):
        KeyPool(["k"], free_limit=3)  # type: ignore[call-arg]
    gemini = GeminiClient(make_pool([emulator.add_key()]))
    with pytest.raises(TypeError, match="temprature"):
        gemini.generate_content("x", temprature=0.1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="max_output_tokens"):
        gemini.simple_query("x", max_output_tokens=5)  # type: ignore[call-arg]


def test_simple_query_checks_its_prompt(emulator, make_pool):
    key = emulator.add_key()
    gemini = GeminiClient(make_pool([key]))
    with pytest.raises(TypeError, match="prompt must be a str, not NoneType"):
        gemini.simple_query(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="prompt must not be empty"):
        gemini.simple_query("")
    assert emulator.requests(key) == 0


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


@pytest.mark.parametrize(
    "args, kwargs, error, words",
    [
        (("",), {}, ValueError, ["prompt", "empty"]),
        ((42,), {}, TypeError, ["prompt", "int"]),
        ((), {}, TypeError, ["prompt or contents"]),
        (("x",), {"contents": [{"parts": [{"text": "y"}]}]}, TypeError, ["not both"]),
        ((), {"contents": []}, ValueError, ["contents", "empty"]),
        ((), {"contents": "text"}, TypeError, ["contents", "list of dict"]),
        ((), {"contents": ["text"]}, TypeError, ["contents[0]", "dict"]),
        (("x",), {"temperature": "hot"}, TypeError, ["temperature", "str"]),
        (("x",), {"temperature": float("nan")}, ValueError, ["temperature", "finite"]),
        (("x",), {"max_output_tokens": 1.5}, TypeError, ["max_output_tokens", "float"]),
        (("x",), {"max_output_tokens": 0}, ValueError, ["max_output_tokens"]),
        (("x",), {"top_k": "5"}, TypeError, ["top_k"]),
        (("x",), {"stop_sequences": "END"}, TypeError, ["stop_sequences", "list of str"]),
        (("x",), {"safety_settings": {"a": 1}}, TypeError, ["safety_settings"]),
        (("x",), {"tools": [1]}, TypeError, ["tools[0]"]),
        (("x",), {"system_instruction": 5}, TypeError, ["system_instruction"]),
        (("x",), {"generation_config": {"temperature": 1}, "temperature": 0.5}, ValueError,
         ["generation_config", "temperature"]),
        (("x",), {"max_wait": -1}, ValueError, ["max_wait"]),
        (("x",), {"max_wait": "1"}, TypeError, ["max_wait", "str"]),
        (("x",), {"timeout": 0}, ValueError, ["timeout"]),
        (("x",), {"model": ""}, ValueError, ["model", "empty"]),
        (("x\ud800",), {}, ValueError, ["prompt", "surrogate"]),
        ((), {"contents": [{"parts": [{"text": object()}]}]}, TypeError, ["JSON"]),
    ],
)
def test_bad_call_arguments_send_nothing(emulator, make_pool, args, kwargs, error, words):
    key = emulator.add_key()
    gemini = GeminiClient(make_pool([key]))

    with pytest.raises(error) as caught:
        gemini.generate_content(*args, **kwargs)

    for word in words:
        assert word in str(caught.value)
    assert emulator.requests(key) == 0


def test_client_pool_resolution(emulator, make_pool, monkeypatch):
    pool = make_pool([emulator.add_key()])
    assert GeminiClient(pool).pool is pool

    class Connection:  # An application's own connection object carrying the pool.
        def __init__(self, key_pool):
            self.key_pool = key_pool

    assert GeminiClient(Connection(pool)).pool is pool
    assert GeminiClient(Connection(pool)).simple_query("via conn") == "echo: via conn"

    with pytest.raises(TypeError, match="int"):
        GeminiClient(42)
    with pytest.raises(TypeError, match="key_pool attribute is a str"):
        GeminiClient(Connection("not a pool"))


def test_client_from_environment(emulator, monkeypatch):
    key = emulator.add_key()
    monkeypatch.setenv("GEMINI_FREE_KEYS", key.secret)
    monkeypatch.setenv("GEMINI_BASE_URL", emulator.base_url)
    monkeypatch.delenv("GEMINI_PAID_KEY", raising=False)

    with GeminiClient() as gemini:
        assert gemini.simple_query("from env") == "echo: from env"
        assert gemini.pool.stats().keys[0].fingerprint == fingerprint(key.secret)
    assert gemini.pool.closed  # The client made that pool, so it closed it.

    with KeyPool.from_env() as pool:
        assert GeminiClient(pool).simple_query("again") == "echo: again"
    assert emulator.requests(key) == 2

    monkeypatch.delenv("GEMINI_FREE_KEYS")
    with pytest.raises(ConfigError, match="GEMINI_FREE_KEYS"):
        KeyPool.from_env()
    with pytest.raises(ConfigError, match="GEMINI_FREE_KEYS"):
        GeminiClient()


def test_closed_pool(emulator, make_pool):
    pool = make_pool([emulator.add_key()])
    gemini = GeminiClient(pool)
    with pool:
        gemini.simple_query("while open")
    assert pool.closed
    pool.close()  # Idempotent.
    with pytest.raises(PoolClosedError, match="closed"):
        gemini.simple_query("after close")
    with pytest.raises(PoolClosedError):
        pool.stats()
    # A client given a pool does not close it.
    other = make_pool([emulator.add_key()])
    GeminiClient(other).close()
    assert not other.closed
