"""A pool whose state is on a Redis server that does not answer: made at once (it works once
Redis is up); a call fails promptly with StateUnavailableError naming the address, never the
password; a malformed URL is a ConfigError naming the setting."""

from __future__ import annotations

import socket
import time

import pytest

from gemini_rotator import (
    ConfigError,
    GeminiClient,
    GeminiError,
    KeyPool,
    StateError,
    StateUnavailableError,
)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_redis_is_state_unavailable():
    port = closed_port()
    pool = KeyPool(["py-redis-state-key"], base_url="http://127.0.0.1:9",
                   state=f"redis://:py-pw-secret@127.0.0.1:{port}/0")
    started = time.monotonic()
    with pytest.raises(StateUnavailableError) as caught:
        GeminiClient(pool).generate_content("hello")
    assert time.monotonic() - started < 10
    assert isinstance(caught.value, GeminiError) and isinstance(caught.value, StateError)
    text = str(caught.value)
    assert f"127.0.0.1:{port}" in text and "py-pw-secret" not in text
    pool.close()


def test_a_bad_redis_url_names_the_setting():
    with pytest.raises(ConfigError) as caught:
        KeyPool(["py-redis-state-key-2"], state="redis://:py-pw-secret@127.0.0.1:1/x")
    text = str(caught.value)
    assert "state" in text and "database" in text and "py-pw-secret" not in text
