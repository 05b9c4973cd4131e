"""The Python worker of the cross-language process tests: the same loop as worker.c and
goworker, through the gemini_rotator binding, run in multiprocessing children.

- ``spawn_main``: the target of a ``spawn`` process. It sets the environment it is given and
  makes its pool with ``KeyPool.from_env()``.
- ``run_loop`` with a pool the parent made before forking: the target of ``fork`` processes and
  the task of a ``fork`` ``multiprocessing.Pool`` (see ``INHERITED``), which use the parent's pool.

A worker's threads wait until ``start_ms`` (Unix time, ms), then call the pool until
``deadline_ms``; each call waits at most ``min(max_wait_ms, deadline_ms - now)`` for a key, so
nothing is admitted after the deadline. The prompt names the process, thread and call
(``p<pid> t<thread> n<seq>``) and the answer must echo it. Each success appends
``<fingerprint> <thread> <seq>`` to ``<out_dir>/<name>-<pid>.progress`` with one ``os.write`` on
an ``O_APPEND`` descriptor, so a process killed at any moment leaves a record of what it got;
``<out_dir>/<name>-<pid>.result`` receives the totals as JSON at the end.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any, Dict, Optional

from gemini_rotator import AllKeysRateLimitedError, GeminiClient, GeminiError, KeyPool

#: The pool a ``fork`` multiprocessing.Pool's tasks use: set by the parent before it forks.
INHERITED: Optional[KeyPool] = None


def _now_ms() -> int:
    return int(time.time() * 1000)


def run_loop(
    pool: KeyPool,
    name: str,
    threads: int,
    start_ms: int,
    deadline_ms: int,
    max_wait_ms: int,
    timeout_ms: int,
    out_dir: str,
) -> Dict[str, Any]:
    pid = os.getpid()
    base = os.path.join(out_dir, f"{name}-{pid}")
    fd = os.open(base + ".progress", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    totals = {"calls": 0, "ok": 0, "exhausted": 0, "errors": 0, "first_error": ""}
    lock = threading.Lock()

    def loop(index: int) -> None:
        client = GeminiClient(pool)
        counts = {"calls": 0, "ok": 0, "exhausted": 0, "errors": 0}
        first = ""
        time.sleep(max(0, start_ms - _now_ms()) / 1000)
        seq = 0
        while True:
            left = deadline_ms - _now_ms()
            if left <= 0:
                break
            text = f"p{pid} t{index} n{seq}"
            counts["calls"] += 1
            try:
                response = client.generate_content(
                    prompt=text,
                    max_wait=min(left, max_wait_ms) / 1000,
                    timeout=timeout_ms / 1000,
                )
            except AllKeysRateLimitedError as e:
                # No key frees before the deadline (or within the wait): sleep until one does.
                counts["exhausted"] += 1
                time.sleep(max(0.0, min(e.retry_after, (deadline_ms - _now_ms()) / 1000)))
            except GeminiError as e:
                counts["errors"] += 1
                first = first or f"{type(e).__name__}: {e}"
            else:
                if response.text == "echo: " + text:
                    os.write(fd, f"{response.key_fingerprint} {index} {seq}\n".encode())
                    counts["ok"] += 1
                else:
                    counts["errors"] += 1
                    first = first or f"the answer {response.text!r} does not echo {text!r}"
            seq += 1
        with lock:
            for k, v in counts.items():
                totals[k] += v
            totals["first_error"] = totals["first_error"] or first

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    os.close(fd)
    result = dict(totals, lang="python", name=name, pid=pid)
    with open(base + ".result.tmp", "w") as f:
        json.dump(result, f)
    os.rename(base + ".result.tmp", base + ".result")
    return result


def spawn_main(env: Dict[str, str], name: str, *args: Any) -> None:
    """Target of a ``spawn`` process: the given environment, a pool from it, the loop."""
    for k in [k for k in os.environ if k.startswith("GEMINI_")]:
        del os.environ[k]
    os.environ.update(env)
    with KeyPool.from_env() as pool:
        run_loop(pool, name, *args)


def fork_process_main(pool: KeyPool, name: str, *args: Any) -> None:
    """Target of a ``fork`` process: the pool inherited from the parent."""
    run_loop(pool, name, *args)


def fork_pool_task(args: tuple) -> Dict[str, Any]:
    """Task of a ``fork`` multiprocessing.Pool: the loop on the parent's pool (``INHERITED``)."""
    assert INHERITED is not None, "set cross_pyworker.INHERITED before forking the pool"
    return run_loop(INHERITED, *args)


def fork_calls(n: int) -> Dict[str, Any]:
    """Task of the fork-after-use test: ``n`` calls on the parent's pool (``INHERITED``), and
    the fingerprints that served them."""
    assert INHERITED is not None
    client = GeminiClient(INHERITED)
    served = []
    for i in range(n):
        text = f"fork p{os.getpid()} n{i}"
        response = client.generate_content(prompt=text)
        assert response.text == "echo: " + text, response.text
        served.append(response.key_fingerprint)
    return {"pid": os.getpid(), "served": served}
