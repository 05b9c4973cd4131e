"""KeyPool's quota settings: PROJECT:KEY entries, daily and token limits, per-model limits and
fallbacks (``models``), and the config file named by GEMINI_ROTATOR_CONFIG; every bad value is
an error naming the setting (or the file and the field's path), never showing a key."""

from __future__ import annotations

import json

import pytest

from gemini_rotator import ConfigError, KeyPool, ModelLimits, fingerprint


def test_keys_of_a_project_and_model_limits_are_accepted(emulator):
    keys = [emulator.add_key() for _ in range(3)]
    models = {
        "gemini-3.6-flash": ModelLimits(free_daily_limit=25, fallback=["gemini-3.1-flash-lite"]),
        "models/gemini-3.1-flash-lite": {"free_rate_limit": 15, "free_daily_limit": 500},
    }
    with KeyPool(
        free_keys=[f"alpha:{keys[0].secret}", f"alpha:{keys[1].secret}", keys[2].secret],
        base_url=emulator.base_url,
        state="memory",
        free_daily_limit=20,
        paid_daily_limit=300,
        free_token_limit=250_000,
        paid_token_limit=4_000_000,
        models=models,
    ) as pool:
        shown = [key.fingerprint for key in pool.stats().keys]
    # The project is no part of the key: each is named by the fingerprint of the key alone.
    assert shown == [fingerprint(key.secret) for key in keys]


@pytest.mark.parametrize(
    "options, words",
    [
        (
            {"models": {"gemini-3.6-flash": {"free_daily_limit": 0}}},
            ['models."gemini-3.6-flash".free_daily_limit', "must be a positive integer, got 0"],
        ),
        ({"models": {"m": {"free_daily": 3}}}, ['models."m".free_daily', "unknown field"]),
        ({"models": {"bad/m": {}}}, ['models."bad/m"', "is not a model name"]),
        (
            {"models": {"a": {"fallback": ["b"]}, "b": {"fallback": ["a"]}}},
            ['models."b".fallback', "the fallbacks form a cycle: a → b → a"],
        ),
        ({"models": {"m": {"fallback": ["m"]}}}, ["m cannot fall back to itself"]),
        ({"paid_token_limit": 2 * 10**12}, ["paid_token_limit", "must be at most"]),
        ({"free_daily_limit": 2 * 10**9}, ["free_daily_limit", "must be at most 1000000000"]),
    ],
)
def test_a_bad_quota_setting_is_a_config_error_naming_it(options, words):
    with pytest.raises(ConfigError) as caught:
        KeyPool(free_keys=["k"], state="memory", **options)
    for word in words:
        assert word in str(caught.value)


@pytest.mark.parametrize(
    "options, error, words",
    [
        ({"free_daily_limit": 0}, ValueError, ["free_daily_limit", "at least 1"]),
        ({"free_token_limit": "many"}, TypeError, ["free_token_limit", "str"]),
        ({"models": ["m"]}, TypeError, ["models", "dict", "list"]),
        ({"models": {"m": 5}}, TypeError, ["models['m']", "dict", "int"]),
        (
            {"models": {"m": {"paid_rate_limit": 1.5}}},
            TypeError,
            ["models['m']['paid_rate_limit']", "float"],
        ),
        (
            {"models": {"m": {"fallback": "n"}}},
            TypeError,
            ["models['m']['fallback']", "list of str"],
        ),
    ],
)
def test_a_quota_setting_of_the_wrong_type_names_the_argument(options, error, words):
    with pytest.raises(error) as caught:
        KeyPool(free_keys=["k"], state="memory", **options)
    for word in words:
        assert word in str(caught.value)


@pytest.mark.parametrize(
    "free_keys, paid_key, words",
    [
        ([":secret-key-aaaa"], None, ["free_keys", "key 1: the project before ':' is empty"]),
        (["ok-key", "secret-project:"], None, ["free_keys", "key 2: the key after"]),
        (["secret/project:k"], None, ["free_keys", "key 1: the project name is not one"]),
        (["p:secret-key-bbbb"], "p:secret-key-cccc", ["paid_key", "a project has one tier"]),
        (
            ["p:secret-key-dddd", "q:secret-key-dddd"],
            None,
            ["free_keys", "key 2", "more than once"],
        ),
    ],
)
def test_a_bad_project_entry_is_named_by_position_never_shown(free_keys, paid_key, words):
    with pytest.raises(ConfigError) as caught:
        KeyPool(free_keys=free_keys, paid_key=paid_key, state="memory")
    message = str(caught.value)
    for word in words:
        assert word in message
    assert "secret" not in message


@pytest.fixture
def file_env(monkeypatch, tmp_path):
    """Writes a config file and points GEMINI_ROTATOR_CONFIG at it, with no other setting."""
    for name in ("GEMINI_FREE_KEYS", "GEMINI_PAID_KEY", "GEMINI_FREE_RATE_LIMIT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GEMINI_ROTATOR_STATE", "memory")

    def write(name: str, text: str):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        monkeypatch.setenv("GEMINI_ROTATOR_CONFIG", str(path))
        return path

    return write


@pytest.mark.parametrize(
    "name, text, words",
    [
        (
            "limits.toml",
            'free_keys = ["k"]\n[models."gemini-3.6-flash"]\nfree_daily_limit = -20\n',
            ['field `models."gemini-3.6-flash".free_daily_limit`', "got -20"],
        ),
        (
            "unknown.json",
            json.dumps({"free_keys": ["k"], "models": {"m": {"fallbacks": ["n"]}}}),
            ['field `models."m".fallbacks`', "unknown field"],
        ),
        (
            "top.json",
            json.dumps({"free_keys": ["k"], "free_keyz": 1}),
            ["field `free_keyz`", "unknown field"],
        ),
        (
            "syntax.toml",
            'free_keys = ["secret-key-eeee"\nwindow_ms = 5\n',
            ["(GEMINI_ROTATOR_CONFIG): not valid TOML at line 2"],
        ),
        (
            "syntax.json",
            '{"free_keys": ["secret-key-ffff"],}',
            ["(GEMINI_ROTATOR_CONFIG): not valid JSON at line 1, column"],
        ),
    ],
)
def test_a_bad_config_file_is_a_config_error_naming_the_file_and_field(
    file_env, name, text, words
):
    path = file_env(name, text)
    with pytest.raises(ConfigError) as caught:
        KeyPool.from_env()
    message = str(caught.value)
    assert json.dumps(str(path)) in message, message
    for word in words:
        assert word in message, message
    assert "secret" not in message


def test_a_variable_that_is_set_overrides_the_config_file(file_env, emulator, monkeypatch):
    file_key, env_key = emulator.add_key(), emulator.add_key()
    file_env(
        "rotator.toml",
        f'free_keys = ["p:{file_key.secret}"]\nfree_rate_limit = 3\n'
        f'base_url = "{emulator.base_url}"\n'
        '[models."gemini-3.6-flash"]\nfallback = ["gemini-3.1-flash-lite"]\n',
    )
    with KeyPool.from_env() as pool:
        stats = pool.stats().keys
        assert [(k.fingerprint, k.limit) for k in stats] == [(fingerprint(file_key.secret), 3)]
    monkeypatch.setenv("GEMINI_FREE_KEYS", f"p:{env_key.secret}")
    monkeypatch.setenv("GEMINI_FREE_RATE_LIMIT", "7")
    with KeyPool.from_env() as pool:
        stats = pool.stats().keys
        assert [(k.fingerprint, k.limit) for k in stats] == [(fingerprint(env_key.secret), 7)]
