"""The answer of ``generate_content``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Union

from ._errors import GeminiError


@dataclass(frozen=True)
class UsageMetadata:
    """Token counts of one call (``usageMetadata``); counts the service left out are None."""

    prompt_token_count: Optional[int] = None
    candidates_token_count: Optional[int] = None
    total_token_count: Optional[int] = None
    thoughts_token_count: Optional[int] = None
    cached_content_token_count: Optional[int] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "UsageMetadata":
        return cls(
            prompt_token_count=data.get("promptTokenCount"),
            candidates_token_count=data.get("candidatesTokenCount"),
            total_token_count=data.get("totalTokenCount"),
            thoughts_token_count=data.get("thoughtsTokenCount"),
            cached_content_token_count=data.get("cachedContentTokenCount"),
            raw=data,
        )


class GenerateContentResponse:
    """A ``GenerateContentResponse`` from the service, and which key and model served it.

    A response blocked for safety is a success: it may have no candidates (then ``text`` is
    ``""``, and ``prompt_feedback["blockReason"]`` says why) or a candidate whose
    ``finishReason`` is ``"SAFETY"``.
    """

    __slots__ = ("raw", "key_fingerprint", "model")

    def __init__(
        self, raw: Dict[str, Any], key_fingerprint: Optional[str], model: Optional[str] = None
    ) -> None:
        #: The response as the service sent it (camelCase keys).
        self.raw = raw
        #: Fingerprint of the key that served the call (see :func:`fingerprint`).
        self.key_fingerprint = key_fingerprint
        #: The model that served the call (without ``models/``): the one asked for or, when no
        #: key could serve that one, the first of its configured ``fallback`` models that could
        #: (see ``ModelLimits``). On a stream's events, the stream's model. Not
        #: :attr:`model_version`, the service's own name of the version that answered. None
        #: only for a response built by hand.
        self.model = model

    @classmethod
    def from_json(
        cls, data: Union[bytes, str], key_fingerprint: Optional[str], model: Optional[str] = None
    ) -> "GenerateContentResponse":
        """Parses the response JSON, as the service's bytes (UTF-8, decoded by the parser
        itself) or as text."""
        try:
            raw = json.loads(data)
        except ValueError as e:
            raise GeminiError(f"the service's response is not valid JSON: {e}") from None
        if not isinstance(raw, dict):
            raise GeminiError(
                f"the service's response is not a JSON object but a {type(raw).__name__}"
            )
        return cls(raw, key_fingerprint, model)

    @property
    def candidates(self) -> List[Dict[str, Any]]:
        """The candidates as sent (``content``, ``finishReason``, ``safetyRatings``, ...)."""
        candidates = self.raw.get("candidates")
        return candidates if isinstance(candidates, list) else []

    @property
    def text(self) -> str:
        """The answer: the text parts of the first candidate, without thought summaries
        (parts marked ``"thought": true``), joined. ``""`` when there is none."""
        candidates = self.candidates
        if not candidates or not isinstance(candidates[0], dict):
            return ""
        content = candidates[0].get("content") or {}
        parts = content.get("parts") if isinstance(content, dict) else None
        if not isinstance(parts, list):
            return ""
        return "".join(
            part["text"]
            for part in parts
            if isinstance(part, dict)
            and isinstance(part.get("text"), str)
            and not part.get("thought")
        )

    @property
    def finish_reason(self) -> Optional[str]:
        """The first candidate's ``finishReason`` ("STOP", "MAX_TOKENS", "SAFETY", ...)."""
        candidates = self.candidates
        if candidates and isinstance(candidates[0], dict):
            return candidates[0].get("finishReason")
        return None

    @property
    def usage_metadata(self) -> Optional[UsageMetadata]:
        usage = self.raw.get("usageMetadata")
        return UsageMetadata.from_json(usage) if isinstance(usage, dict) else None

    @property
    def prompt_feedback(self) -> Optional[Dict[str, Any]]:
        """``promptFeedback`` as sent (``blockReason``, ``safetyRatings``), or None."""
        feedback = self.raw.get("promptFeedback")
        return feedback if isinstance(feedback, dict) else None

    @property
    def model_version(self) -> Optional[str]:
        return self.raw.get("modelVersion")

    @property
    def response_id(self) -> Optional[str]:
        return self.raw.get("responseId")

    def __repr__(self) -> str:
        text = self.text
        shown = text if len(text) <= 60 else text[:57] + "..."
        return (
            f"<GenerateContentResponse text={shown!r} finish_reason={self.finish_reason!r} "
            f"key={self.key_fingerprint} model={self.model}>"
        )
