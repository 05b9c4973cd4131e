"""Functions that run in child processes (importable by name, as spawn requires)."""

from __future__ import annotations

import gc
import os
from typing import List, Optional, Tuple

from gemini_rotator import GeminiClient, KeyPool

#: The client of this process: set by `init` (spawn) or inherited from the parent (fork).
client: Optional[GeminiClient] = None


def init(base_url: str, secrets: List[str]) -> None:
    global client
    client = GeminiClient(KeyPool(secrets, base_url=base_url, retry_base_ms=1, retry_max_ms=5))


def query(prompt: str) -> Tuple[int, str, Optional[str]]:
    assert client is not None
    response = client.generate_content(prompt)
    return os.getpid(), response.text, response.key_fingerprint


def query_close_and_collect(prompt: str) -> None:
    """In a forked child: use the inherited pool, close it, let it be collected. Raises (exit
    code 1) on a wrong answer; a double free or a deadlock would crash or hang the child."""
    global client
    assert client is not None
    text = client.simple_query(prompt)
    if text != f"echo: {prompt}":
        raise AssertionError(f"wrong answer in the child: {text!r}")
    pool = client.pool
    pool.close()
    pool.close()
    if pool._ptr is not None:  # Forgotten, not freed: the parent owns the C pool.
        raise AssertionError("the child kept the pool pointer after close()")
    client = None
    del pool
    gc.collect()
