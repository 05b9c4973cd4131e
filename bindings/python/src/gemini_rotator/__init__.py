"""gemini_rotator: spread Gemini API traffic over many API keys.

Python binding of the gemini-rotator library (loaded with ctypes)::

    from gemini_rotator import GeminiClient, KeyPool

    with KeyPool(free_keys=["key-1", "key-2"], paid_key="key-3") as pool:
        gemini = GeminiClient(pool)
        print(gemini.simple_query("Your prompt here"))

See the README for errors, threads, asyncio, fork and spawn, and observability (Prometheus
metrics with ``KeyPool.metrics_prometheus()`` or :mod:`gemini_rotator.prometheus`; log events
with ``enable_logging()`` / ``set_log_handler()``).
"""

from ._errors import (
    AllKeysRateLimitedError,
    APIError,
    CancelledError,
    ConfigError,
    GeminiError,
    GeminiTimeoutError,
    IncompleteStreamError,
    InternalError,
    InvalidArgumentError,
    ModelUnavailableError,
    NoUsableKeysError,
    PoolClosedError,
    StateError,
    StateUnavailableError,
    TransportError,
)
from ._log import enable_logging, set_log_handler, set_log_level
from ._pool import KeyPool, ModelLimits, fingerprint, library_version
from ._client import GeminiClient
from ._options import GenerateOptions
from ._response import GenerateContentResponse, UsageMetadata
from ._stream import AsyncGenerateContentStream, GenerateContentStream
from ._stats import (
    KeyModelStats,
    KeyStats,
    LatencyHistogram,
    PoolCounters,
    PoolModelStats,
    PoolStats,
)

__version__ = "0.2.0"

#: The google-genai transports need httpx, which the package itself does not: imported on first use.
_HTTPX_NAMES = ("AsyncHttpxTransport", "HttpxTransport", "genai_client")


def __getattr__(name: str) -> object:
    if name in _HTTPX_NAMES:
        from . import _httpx

        return getattr(_httpx, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "APIError",
    "AllKeysRateLimitedError",
    "AsyncGenerateContentStream",
    "AsyncHttpxTransport",
    "CancelledError",
    "ConfigError",
    "GeminiClient",
    "GeminiError",
    "GeminiTimeoutError",
    "GenerateContentResponse",
    "GenerateContentStream",
    "GenerateOptions",
    "HttpxTransport",
    "IncompleteStreamError",
    "InternalError",
    "InvalidArgumentError",
    "KeyModelStats",
    "KeyPool",
    "KeyStats",
    "LatencyHistogram",
    "ModelLimits",
    "ModelUnavailableError",
    "NoUsableKeysError",
    "PoolClosedError",
    "PoolCounters",
    "PoolModelStats",
    "PoolStats",
    "StateError",
    "StateUnavailableError",
    "TransportError",
    "UsageMetadata",
    "enable_logging",
    "fingerprint",
    "genai_client",
    "library_version",
    "set_log_handler",
    "set_log_level",
]
