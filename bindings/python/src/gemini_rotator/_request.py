"""Building a ``GenerateContentRequest`` body from keyword arguments.

Only what the caller set is sent: an option left at ``None`` does not appear in the body, so
the service's own defaults apply. Dicts the caller passes (``contents``, ``safety_settings``,
``tools``, ``generation_config``, a dict ``system_instruction``) are sent as they are, so new API
fields never need a new release of this package.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence

from . import _validate as check

if TYPE_CHECKING:
    from ._options import GenerateOptions

#: A ``Content``: ``{"role": "user"|"model", "parts": [{"text": ...}, ...]}``.
Content = Mapping[str, Any]


def build_request(prompt: Optional[str], options: "GenerateOptions") -> Dict[str, Any]:
    """The request body for ``prompt`` and the request fields of ``options`` (its ``model``,
    ``max_wait`` and ``timeout`` are the caller's business)."""
    body: Dict[str, Any] = {"contents": _contents(prompt, options.get("contents"))}
    system_instruction = options.get("system_instruction")
    temperature = options.get("temperature")
    max_output_tokens = options.get("max_output_tokens")
    top_p = options.get("top_p")
    top_k = options.get("top_k")
    stop_sequences = options.get("stop_sequences")
    response_mime_type = options.get("response_mime_type")
    safety_settings = options.get("safety_settings")
    tools = options.get("tools")
    generation_config = options.get("generation_config")

    if system_instruction is not None:
        if isinstance(system_instruction, str):
            text = check.string("system_instruction", system_instruction)
            body["systemInstruction"] = {"parts": [{"text": text}]}
        elif isinstance(system_instruction, dict):
            body["systemInstruction"] = system_instruction
        else:
            raise TypeError(
                "system_instruction must be a str or a dict (a Content), not "
                f"{check.type_name(system_instruction)}"
            )

    config: Dict[str, Any] = {}
    if temperature is not None:
        config["temperature"] = check.number("temperature", temperature)
    if max_output_tokens is not None:
        config["maxOutputTokens"] = check.integer(
            "max_output_tokens", max_output_tokens, minimum=1
        )
    if top_p is not None:
        config["topP"] = check.number("top_p", top_p)
    if top_k is not None:
        config["topK"] = check.integer("top_k", top_k, minimum=1)
    if stop_sequences is not None:
        config["stopSequences"] = check.string_list("stop_sequences", stop_sequences)
    if response_mime_type is not None:
        config["responseMimeType"] = check.string("response_mime_type", response_mime_type)
    if generation_config is not None:
        extra = check.mapping("generation_config", generation_config)
        check.no_conflict("generation_config", extra, list(config))
        config.update(extra)
    if config:
        body["generationConfig"] = config

    if safety_settings is not None:
        body["safetySettings"] = check.dict_list("safety_settings", safety_settings)
    if tools is not None:
        body["tools"] = check.dict_list("tools", tools)
    return body


def _contents(
    prompt: Optional[str], contents: Optional[Sequence[Content]]
) -> List[Any]:
    if prompt is None and contents is None:
        raise TypeError("generate_content() needs prompt or contents")
    if prompt is not None and contents is not None:
        raise TypeError("generate_content() takes prompt or contents, not both")
    if prompt is not None:
        return [{"role": "user", "parts": [{"text": check.string("prompt", prompt)}]}]
    items = check.dict_list("contents", contents)
    if not items:
        raise ValueError("contents must not be empty")
    return items


def encode(body: Dict[str, Any]) -> bytes:
    """The request as UTF-8 JSON."""
    try:
        text = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except TypeError as e:
        raise TypeError(f"the request is not JSON-serializable: {e}") from None
    except ValueError as e:  # NaN or infinity inside a passed-through dict
        raise ValueError(f"the request cannot be sent as JSON: {e}") from None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            "the request contains text that is not valid Unicode (a lone surrogate)"
        ) from None
