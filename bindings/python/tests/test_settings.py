"""KeyPool's arguments against the library's table of settings (src/config/settings.rs, dumped to
bindings/settings.json): a setting added to the library and not to Python, or a default that
drifted, fails here."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any, Dict, List

import pytest

from gemini_rotator import ConfigError, KeyPool

TABLE = Path(__file__).resolve().parents[2] / "settings.json"


def json_settings() -> Dict[str, Dict[str, Any]]:
    """The table's rows that a JSON configuration (so KeyPool) can give, by JSON name."""
    rows: List[Dict[str, Any]] = json.loads(TABLE.read_text(encoding="utf-8"))
    by_name = {row["json"]: row for row in rows if row["json"] is not None}
    assert len(by_name) >= 10, f"{TABLE} lists only {len(by_name)} settings"
    return by_name


def pool_parameters() -> Dict[str, inspect.Parameter]:
    params = dict(inspect.signature(KeyPool.__init__).parameters)
    del params["self"]
    return params


def test_key_pool_takes_exactly_the_settings_of_the_table():
    assert sorted(pool_parameters()) == sorted(json_settings())


def test_key_pool_defaults_are_the_tables_or_none():
    table = json_settings()
    for name, param in pool_parameters().items():
        default = param.default
        if default is inspect.Parameter.empty or default is None:
            continue  # Required, or left out of the JSON so that the library's default applies.
        assert default == table[name]["default"], (
            f"KeyPool({name}=) defaults to {default!r}; the library's default is "
            f"{table[name]['default']!r}"
        )


def test_key_pool_documents_the_defaults_it_leaves_to_the_library():
    table = json_settings()
    doc = " ".join((KeyPool.__doc__ or "").split())
    for name, param in pool_parameters().items():
        wanted = table[name]["default"]
        if param.default is not None or wanted is None:
            continue
        shown = f'"{wanted}"' if isinstance(wanted, str) else str(wanted)
        assert f"``{name}`` {shown}" in doc, f"KeyPool's docstring does not say ``{name}`` {shown}"


def test_from_env_names_every_variable_of_the_table():
    rows = json.loads(TABLE.read_text(encoding="utf-8"))
    doc = KeyPool.from_env.__doc__ or ""
    missing = [row["env"] for row in rows if row["env"] and f"``{row['env']}``" not in doc]
    assert not missing, f"KeyPool.from_env's docstring does not name {missing}"


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"free_keys": ["k"], "log": "loud"}, ConfigError, ["log", "unknown log level"]),
        ({"free_keys": ["k"], "log": 3}, TypeError, ["log", "int"]),
        ({"free_keys": ["k"], "log": ""}, ValueError, ["log", "empty"]),
    ],
)
def test_a_bad_log_level_names_the_argument(kwargs, error, words):
    with pytest.raises(error) as caught:
        KeyPool(**kwargs)
    for word in words:
        assert word in str(caught.value)
