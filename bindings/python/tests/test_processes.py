"""multiprocessing with the fork and spawn start methods, including a fork after use."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time

import pytest

import gr_workers
from gemini_rotator import AllKeysRateLimitedError, GeminiClient, fingerprint


@pytest.fixture
def inherited_client(make_pool):
    """Sets the client that forked children inherit, and clears it afterwards."""

    def set_client(pool):
        gr_workers.client = GeminiClient(pool)
        return gr_workers.client

    yield set_client
    gr_workers.client = None


def test_spawn_workers_make_their_own_pools(emulator):
    keys = emulator.add_keys(2)
    secrets = [key.secret for key in keys]
    context = multiprocessing.get_context("spawn")
    prompts = [f"spawned {i}" for i in range(8)]

    with context.Pool(2, initializer=gr_workers.init, initargs=(emulator.base_url, secrets)) as pool:
        results = pool.map(gr_workers.query, prompts)

    assert [text for _, text, _ in results] == [f"echo: {p}" for p in prompts]
    assert {pid for pid, _, _ in results} - {os.getpid()}
    assert os.getpid() not in {pid for pid, _, _ in results}
    assert {served for _, _, served in results} <= {fingerprint(s) for s in secrets}
    assert sum(emulator.requests(key) for key in keys) == 8


def test_fork_after_the_pool_was_used(emulator, make_pool, inherited_client):
    keys = emulator.add_keys(3)
    gemini = inherited_client(make_pool(keys))
    # The parent uses the pool (and its HTTP client) before forking.
    for i in range(3):
        assert gemini.simple_query(f"parent {i}") == f"echo: parent {i}"

    prompts = [f"forked {i}" for i in range(12)]
    with multiprocessing.get_context("fork").Pool(3) as workers:
        results = workers.map(gr_workers.query, prompts)

    assert [text for _, text, _ in results] == [f"echo: {p}" for p in prompts]
    assert os.getpid() not in {pid for pid, _, _ in results}
    assert sum(emulator.requests(key) for key in keys) == 3 + 12
    # The parent's pool is untouched by its children and keeps working.
    assert gemini.simple_query("parent again") == "echo: parent again"
    assert sum(emulator.requests(key) for key in keys) == 3 + 12 + 1


def test_forked_child_closing_the_inherited_pool_is_safe(emulator, make_pool, inherited_client):
    keys = emulator.add_keys(2)
    gemini = inherited_client(make_pool(keys))
    gemini.simple_query("before the fork")

    child = multiprocessing.get_context("fork").Process(
        target=gr_workers.query_close_and_collect, args=("from the child",)
    )
    child.start()
    child.join(30)

    assert child.exitcode == 0
    assert not gemini.pool.closed
    assert gemini.simple_query("after the child") == "echo: after the child"
    assert sum(emulator.requests(key) for key in keys) == 3


def test_fork_while_a_call_is_in_flight(emulator, make_pool, inherited_client):
    """A thread of the parent is inside a call when the fork happens: that thread does not
    exist in the child, which must still be able to use and close the pool."""
    key = emulator.add_key()
    emulator.fault(key.label, "delay", latency_ms=1500, count=1)
    gemini = inherited_client(make_pool([key]))
    in_flight = threading.Thread(target=gemini.simple_query, args=("slow one",))
    in_flight.start()
    try:
        deadline = time.monotonic() + 10
        while gemini.pool.stats().keys[0].in_flight == 0:
            assert time.monotonic() < deadline, "the slow call never started"
            time.sleep(0.005)
        child = multiprocessing.get_context("fork").Process(
            target=gr_workers.query_close_and_collect, args=("child during a call",)
        )
        child.start()
        child.join(30)
    finally:
        in_flight.join(30)

    assert child.exitcode == 0
    assert emulator.key_stats(key)["ok"] == 2
    assert gemini.pool.stats().keys[0].in_flight == 0


def test_os_fork_child_uses_the_pool(emulator, make_pool):
    keys = emulator.add_keys(2)
    gemini = GeminiClient(make_pool(keys))
    gemini.simple_query("parent")

    pid = os.fork()
    if pid == 0:  # The child: report through the exit status, never return into pytest.
        code = 1
        try:
            ok = gemini.simple_query("child") == "echo: child"
            gemini.pool.close()
            code = 0 if ok else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    assert gemini.simple_query("parent after") == "echo: parent after"
    assert sum(emulator.requests(key) for key in keys) == 3


def test_errors_cross_process_boundaries(emulator, make_pool, inherited_client):
    key = emulator.add_key()
    gemini = inherited_client(make_pool([key], free_rate_limit=1))
    gemini.simple_query("uses the only slot")

    with multiprocessing.get_context("fork").Pool(1) as workers:
        with pytest.raises(AllKeysRateLimitedError) as caught:
            workers.apply(gr_workers.query, ("no slot left",))

    assert caught.value.retry_after > 0
    assert "all API keys have reached their rate limits" in str(caught.value)
