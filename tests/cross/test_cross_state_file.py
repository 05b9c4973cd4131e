"""The shared state file across fork, and its failure modes seen from Python, Go and C: a file
of another layout version, a file from an earlier boot, a missing directory, a directory that
refuses new files."""

from __future__ import annotations

import multiprocessing
import os
import struct
import subprocess
from collections import Counter
from pathlib import Path

import pytest

import cross_pyworker
from crosslib import KeySet, clean_env, sparse_copy
from gemini_rotator import GeminiClient, KeyPool, StateError

WINDOW_MS = 60_000
VERSION_AT = 8  # the layout version word: the u64 at byte 8
BOOT_ID_AT = slice(24, 40)  # the boot id: two u64 at bytes 24..40


def _pool(keys: KeySet, state: str, base_url: str = "http://127.0.0.1:9") -> KeyPool:
    return KeyPool(keys.free, keys.paid, keys.free_limit, keys.paid_limit, WINDOW_MS,
                   base_url=base_url, retry_base_ms=1, state=state)


def test_fork_after_use_children_share_the_parents_counts(tmp_path: Path, start_emulator):
    keys = KeySet(free_limit=50, paid_limit=50, window_ms=WINDOW_MS)
    fp = keys.fingerprints()
    emulator = start_emulator(keys.emulator_keys())
    state = f"shm:{tmp_path}/state"
    pool = _pool(keys, state, emulator.base_url)
    client = GeminiClient(pool)
    parent_served = [client.generate_content(prompt=f"parent {i}").key_fingerprint for i in range(2)]

    # Forked after use: the children inherit the pool (and its HTTP client, which the library
    # rebuilds in the child), call through it, and count into the same shared records.
    cross_pyworker.INHERITED = pool
    try:
        with multiprocessing.get_context("fork").Pool(3) as workers:
            results = workers.map(cross_pyworker.fork_calls, [3, 3, 3], chunksize=1)
    finally:
        cross_pyworker.INHERITED = None
    assert os.getpid() not in {r["pid"] for r in results}
    child_served = [f for r in results for f in r["served"]]
    assert len(child_served) == 9

    stats = pool.stats()  # the parent's view
    assert stats.state == state
    assert stats.pool.requests == 11 and stats.pool.succeeded == 11 and stats.pool.failed == 0
    served = Counter(parent_served + child_served)
    emu = emulator.stats()
    for label, f in fp.items():
        key = stats.key(f)
        assert key.admitted == key.succeeded == served[f] == emu["keys"][label]["ok"], label
    # One round-robin cursor per key set, shared by the parent and the children: the 11
    # calls (none waits: the limits are far away) went to free0, free1, free2, free0, ... in
    # cursor order, whichever process made them.
    assert [stats.key(fp[f"free{i}"]).admitted for i in range(3)] == [4, 4, 3]
    assert stats.key(fp["paid"]).admitted == 0 and stats.pool.paid_fallbacks == 0
    pool.close()


@pytest.fixture
def real_state_file(tmp_path: Path, start_emulator):
    """A state file in real use: a pool made it and sent 2 requests through it."""
    keys = KeySet(free_limit=5, paid_limit=5, window_ms=WINDOW_MS)
    emulator = start_emulator(keys.emulator_keys())
    path = tmp_path / "real.state"
    with _pool(keys, f"shm:{path}", emulator.base_url) as pool:
        client = GeminiClient(pool)
        for i in range(2):
            client.generate_content(prompt=f"real {i}")
        assert sum(k.admitted for k in pool.stats().keys) == 2
    return keys, path


def _go_pool_new(go_worker: Path, keys: KeySet, state: str):
    env = clean_env(**keys.env("http://127.0.0.1:9", state))
    done = subprocess.run([str(go_worker), "pool-new"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    keys.assert_no_key(done.stdout + done.stderr, "the Go error")
    flags, message = done.stdout.split("\n", 1)
    return flags, message.strip()


def _c_pool_new(c_worker: Path, keys: KeySet, state: str):
    env = clean_env(**keys.env("http://127.0.0.1:9", state))
    done = subprocess.run([str(c_worker), "pool-new"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    keys.assert_no_key(done.stdout + done.stderr, "the C error")
    status, message = done.stdout.split("\n", 1)
    return status, message.strip()


def test_state_file_of_another_layout_version(tmp_path, real_state_file, go_worker, c_worker):
    keys, real = real_state_file
    wrong = tmp_path / "version4.state"
    sparse_copy(real, wrong)
    with open(wrong, "r+b") as f:
        f.seek(VERSION_AT)
        assert struct.unpack("<Q", f.read(8))[0] == 3  # layout 3: quotas per (group, model), pins
        f.seek(VERSION_AT)
        f.write(struct.pack("<Q", 4))
    original = wrong.read_bytes()[:4096]

    with pytest.raises(StateError) as raised:
        _pool(keys, f"shm:{wrong}")
    message = str(raised.value)
    keys.assert_no_key(message, "the Python error")
    assert str(wrong) in message and "version 4" in message, message

    flags, message = _go_pool_new(go_worker, keys, f"shm:{wrong}")
    assert flags == "true false", (flags, message)  # errors.Is(err, ErrState), not ErrConfig
    assert str(wrong) in message and "version 4" in message, message

    status, message = _c_pool_new(c_worker, keys, f"shm:{wrong}")
    assert status == "11 GR_ERR_STATE", (status, message)
    assert str(wrong) in message and "version 4" in message, message

    # Refused, not repaired: another version's file is left as it was.
    assert wrong.read_bytes()[:4096] == original


def test_state_file_from_an_earlier_boot_is_rebuilt(tmp_path, real_state_file):
    keys, real = real_state_file
    header = real.read_bytes()[:64]
    # Control: an exact copy keeps its counts (so what follows is the boot id's doing).
    same = tmp_path / "same-boot.state"
    sparse_copy(real, same)
    with _pool(keys, f"shm:{same}") as pool:
        assert sum(k.admitted for k in pool.stats().keys) == 2

    earlier = tmp_path / "earlier-boot.state"
    sparse_copy(real, earlier)
    with open(earlier, "r+b") as f:
        f.seek(BOOT_ID_AT.start + 3)
        byte = f.read(1)
        f.seek(BOOT_ID_AT.start + 3)
        f.write(bytes([byte[0] ^ 0xFF]))
    # This process has never mapped `earlier`, so the pool maps it now, sees another boot's
    # file (its monotonic times mean nothing in this boot) and rebuilds it from zero.
    with _pool(keys, f"shm:{earlier}") as pool:
        stats = pool.stats()
        assert [(k.admitted, k.in_window, k.succeeded) for k in stats.keys] == [(0, 0, 0)] * 4
        assert stats.pool.requests == 0
    rebuilt = earlier.read_bytes()[:64]
    assert rebuilt[BOOT_ID_AT] == header[BOOT_ID_AT], "the rebuilt file has this boot's id"
    assert rebuilt[:16] == header[:16], "magic number and layout version"


def test_state_file_in_missing_or_read_only_directory(tmp_path, go_worker, c_worker):
    keys = KeySet(free_limit=5, paid_limit=5, window_ms=WINDOW_MS)
    missing = tmp_path / "no-such-directory" / "state"
    # /sys refuses new files, even to root.
    read_only = Path(f"/sys/gemini-rotator-cross-{os.getpid()}.state")

    # The message names the file and the system's reason (EACCES on sysfs; EROFS where /sys
    # is mounted read-only, as in some containers).
    refused = ("Permission denied", "Read-only file system", "Operation not permitted")
    for path, reasons in ((missing, ("No such file or directory",)), (read_only, refused)):
        with pytest.raises(StateError) as raised:
            _pool(keys, f"shm:{path}")
        message = str(raised.value)
        keys.assert_no_key(message, "the Python error")
        assert str(path) in message and any(r in message for r in reasons), message

        status, message = _c_pool_new(c_worker, keys, f"shm:{path}")
        assert status == "11 GR_ERR_STATE", (status, message)
        assert str(path) in message and any(r in message for r in reasons), message

    flags, message = _go_pool_new(go_worker, keys, f"shm:{missing}")
    assert flags == "true false", (flags, message)
    assert str(missing) in message and "No such file or directory" in message, message
    assert not missing.parent.exists()
