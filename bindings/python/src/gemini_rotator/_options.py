"""The keyword options of ``generate_content`` and ``agenerate_content``, declared once.

Both methods take ``**options: Unpack[GenerateOptions]``: type checkers and IDEs see each
keyword with its type, and this TypedDict is the only place that lists them. At run time an
unknown keyword raises :class:`TypeError` naming it, as a missing parameter would.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence, TypedDict, Union

from ._request import Content

__all__ = ["GenerateOptions", "checked"]


class GenerateOptions(TypedDict, total=False):
    """Options of one ``generateContent`` call. All are optional; ``None`` (or leaving one
    out) means "not sent" for the request fields, "the pool's" for the others."""

    #: The conversation, a list of Content dicts sent as they are (instead of ``prompt``).
    contents: Optional[Sequence[Content]]
    #: A system instruction: text, or a Content dict.
    system_instruction: Union[str, Content, None]
    temperature: Optional[float]
    max_output_tokens: Optional[int]
    top_p: Optional[float]
    top_k: Optional[int]
    stop_sequences: Optional[Sequence[str]]
    response_mime_type: Optional[str]
    safety_settings: Optional[Sequence[Mapping[str, Any]]]
    tools: Optional[Sequence[Mapping[str, Any]]]
    #: Further ``generationConfig`` fields (camelCase, e.g. ``{"seed": 1}``).
    generation_config: Optional[Mapping[str, Any]]
    #: The model, instead of the pool's default.
    model: Optional[str]
    #: Seconds to wait for a key when every key is at its limit (default: raise at once).
    max_wait: Optional[float]
    #: Seconds: shortens the pool's time budget for this call.
    timeout: Optional[float]


_NAMES = frozenset(GenerateOptions.__annotations__)


def checked(method: str, options: Mapping[str, Any]) -> GenerateOptions:
    """``options`` as GenerateOptions, or a TypeError naming a keyword that is not one."""
    for name in options:
        if name not in _NAMES:
            raise TypeError(f"{method}() got an unexpected keyword argument {name!r}")
    return options  # type: ignore[return-value]
