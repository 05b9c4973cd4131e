"""The C pool is freed exactly once, never while a call runs, and never in a forked child."""

from __future__ import annotations

import gc
import os
import threading
import time

import pytest

from gemini_rotator import GeminiClient, KeyPool


@pytest.fixture
def frees(monkeypatch):
    """Counts gr_pool_free calls (still freeing for real)."""
    calls = []
    real = KeyPool._free

    def counting_free(ptr):
        calls.append(os.getpid())
        real(ptr)

    monkeypatch.setattr(KeyPool, "_free", counting_free)
    return calls


def new_pool(emulator, **options):
    return KeyPool([emulator.add_key().secret], base_url=emulator.base_url, **options)


def test_close_frees_once(emulator, frees):
    pool = new_pool(emulator)
    pool.close()
    pool.close()
    del pool
    gc.collect()
    assert frees == [os.getpid()]


def test_with_block_frees(emulator, frees):
    with new_pool(emulator) as pool:
        assert not pool.closed
    assert pool.closed
    assert frees == [os.getpid()]


def test_garbage_collection_frees_a_forgotten_pool(emulator, frees):
    new_pool(emulator)
    gc.collect()
    assert frees == [os.getpid()]


def test_failed_construction_frees_nothing(frees):
    with pytest.raises(ValueError):
        KeyPool([])
    gc.collect()
    assert frees == []


def test_close_during_a_call_frees_after_it(emulator, frees):
    key = emulator.add_key()
    emulator.fault(key.label, "delay", latency_ms=600, count=1)
    pool = KeyPool([key.secret], base_url=emulator.base_url)
    answers = []
    caller = threading.Thread(target=lambda: answers.append(GeminiClient(pool).simple_query("q")))
    caller.start()
    deadline = time.monotonic() + 10
    while pool.stats().keys[0].in_flight == 0:
        assert time.monotonic() < deadline
        time.sleep(0.005)

    pool.close()
    assert frees == []  # The running call still uses the C pool.
    caller.join(10)

    assert answers == ["echo: q"]
    assert frees == [os.getpid()]


def test_a_forked_child_never_frees_the_parents_pool(emulator, frees):
    pool = new_pool(emulator)
    GeminiClient(pool).simple_query("parent")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            pool.close()
            del_ok = pool._ptr is None
            gc.collect()
            os.write(write_end, f"{len(frees)} {del_ok}".encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    report = os.read(read_end, 100).decode()
    os.close(read_end)

    assert os.waitstatus_to_exitcode(status) == 0
    assert report == "0 True"  # Forgotten in the child, not freed.
    assert frees == []
    pool.close()
    assert frees == [os.getpid()]
