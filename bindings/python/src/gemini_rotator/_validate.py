"""Argument checks shared by the pool and the client.

Each check names the argument and says what it wanted and what it got (its type, never its
value: the value could be an API key).
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Optional, Sequence


def type_name(value: object) -> str:
    return type(value).__name__


def _is_int(value: object) -> bool:
    # bool is an int subclass, but True is not a sensible rate limit.
    return isinstance(value, int) and not isinstance(value, bool)


def string(name: str, value: object, *, empty_ok: bool = False) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type_name(value)}")
    if not empty_ok and not value:
        raise ValueError(f"{name} must not be empty")
    if "\x00" in value:
        raise ValueError(f"{name} must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{name} is not valid Unicode text (it has a lone surrogate)") from None
    return value


def optional_string(name: str, value: object) -> Optional[str]:
    return None if value is None else string(name, value)


def string_list(name: str, value: object) -> List[str]:
    """A list (or tuple) of non-empty str; a lone str is refused, not split into characters."""
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a list of str, not a single {type_name(value)}")
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{name} must be a list of str, not {type_name(value)}")
    return [string(f"{name}[{i}]", item) for i, item in enumerate(value)]


def integer(name: str, value: object, *, minimum: int = 0) -> int:
    if not _is_int(value):
        raise TypeError(f"{name} must be an int, not {type_name(value)}")
    assert isinstance(value, int)
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    if value >= 2**64:
        raise ValueError(f"{name} is too large: {value}")
    return value


def optional_integer(name: str, value: object, *, minimum: int = 0) -> Optional[int]:
    return None if value is None else integer(name, value, minimum=minimum)


def number(name: str, value: object) -> float:
    """A finite int or float."""
    if not (_is_int(value) or isinstance(value, float)):
        raise TypeError(f"{name} must be a float, not {type_name(value)}")
    assert isinstance(value, (int, float))
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    return value


def seconds_to_ms(name: str, value: object, *, zero_ok: bool) -> int:
    """Seconds (int or float) to whole milliseconds, rounded up so a wait is never shortened."""
    seconds = number(name, value)
    if seconds < 0 or (seconds == 0 and not zero_ok):
        wanted = "at least 0" if zero_ok else "greater than 0"
        raise ValueError(f"{name} must be {wanted} seconds, got {value}")
    ms = math.ceil(seconds * 1000)
    if ms >= 2**64:
        raise ValueError(f"{name} is too large: {value}")
    return ms


def dict_list(name: str, value: object) -> List[Any]:
    """A list of JSON objects (dicts), passed to the service as they are."""
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{name} must be a list of dict, not {type_name(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise TypeError(f"{name}[{i}] must be a dict, not {type_name(item)}")
    return list(value)


def mapping(name: str, value: object) -> Dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"{name} must be a dict, not {type_name(value)}")
    return value


def no_conflict(name: str, extra: Mapping[str, Any], set_fields: Sequence[str]) -> None:
    for field in set_fields:
        if field in extra:
            raise ValueError(
                f"{name} sets {field!r}, which a keyword argument of this call also sets"
            )
