"""The worker threads that run the blocking C calls of the async methods.

A dedicated executor rather than the event loop's default one: a cancelled call keeps running
until the library returns (promptly for the calls given a cancel token, see ``_endpoints``), and
``asyncio.run`` waits for the default executor's threads when it finishes, which would turn a
cancellation into a wait after all. The interpreter still waits for running calls at exit (each is bounded by its timeout).

The executor belongs to the process that made it: its threads do not exist in a forked child,
which makes its own on first use.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Optional, TypeVar

T = TypeVar("T")

#: Calls running at once in the background; more wait in the executor's queue.
MAX_WORKERS = 64

_lock = threading.Lock()
_executor: Optional[ThreadPoolExecutor] = None
_executor_pid = 0


def _get_executor() -> ThreadPoolExecutor:
    global _executor, _executor_pid
    with _lock:
        if _executor is None or _executor_pid != os.getpid():
            _executor = ThreadPoolExecutor(
                max_workers=MAX_WORKERS, thread_name_prefix="gemini-rotator"
            )
            _executor_pid = os.getpid()
        return _executor


def _after_fork_in_child() -> None:
    global _lock, _executor
    _lock = threading.Lock()
    _executor = None  # The parent's threads are gone; never touch its executor here.


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


async def run_blocking(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Runs ``function`` in a worker thread (with the caller's context variables) and awaits it.

    Cancelling the awaiting task returns at once; the call then finishes in the background and
    its result is discarded (the C memory it used is freed by the call itself).
    """
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    call = functools.partial(context.run, function, *args, **kwargs)
    return await loop.run_in_executor(_get_executor(), call)
