"""Helpers of the cross-language process tests: where the build's artifacts are, the emulator
(the shared driver of bindings/python/tests/gr_emulator.py), worker processes of every
language, and the offline analysis of the emulator's request log."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target") / "release"
CLI_BIN = TARGET / "gemini-rotator"
STATIC_LIB = TARGET / "libgemini_rotator.a"
INCLUDE = ROOT / "include"
HERE = Path(__file__).resolve().parent

#: Lines the suite prints at the end of the run (see conftest.pytest_terminal_summary).
SUMMARY: List[str] = []


def summary(line: str) -> None:
    print(line)
    SUMMARY.append(line)


def now_ms() -> int:
    """Unix time in ms: the clock the workers' start and deadline are given in."""
    return int(time.time() * 1000)


def clean_env(**extra: str) -> Dict[str, str]:
    """This process's environment without any GEMINI_* variable (the suite may run under
    tests/run, which sets GEMINI_ROTATOR_STATE), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEMINI_")}
    env.update(extra)
    return env


# ---- the emulator -------------------------------------------------------------------------------

# The one emulator driver of the Python tests lives with the binding's tests; import it from
# there rather than keep a second copy.
sys.path.insert(0, str(ROOT / "bindings" / "python" / "tests"))
from gr_emulator import Emulator  # noqa: E402

__all__ = ["Emulator"]


# ---- keys and configuration ---------------------------------------------------------------------


@dataclass
class KeySet:
    """Three free keys and a paid key, unique to one test run (key state belongs to the key,
    and the state file outlives nothing, but the emulator and logs must never mix tests)."""

    free_limit: int
    paid_limit: int
    window_ms: int
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def free(self) -> List[str]:
        return [f"cross-{self.token}-free{i}" for i in range(3)]

    @property
    def paid(self) -> str:
        return f"cross-{self.token}-paid"

    @property
    def labels(self) -> List[str]:
        return ["free0", "free1", "free2", "paid"]

    def all_keys(self) -> List[str]:
        return self.free + [self.paid]

    def emulator_keys(self) -> List[Dict[str, Any]]:
        """The emulator enforces the same limits, so any over-admission shows as a 429."""
        keys = [
            {"key": k, "label": f"free{i}", "limit": self.free_limit, "window_ms": self.window_ms}
            for i, k in enumerate(self.free)
        ]
        keys.append(
            {"key": self.paid, "label": "paid", "limit": self.paid_limit,
             "window_ms": self.window_ms}
        )
        return keys

    def env(self, base_url: str, state: str, **extra: Any) -> Dict[str, str]:
        """The GEMINI_* variables of a pool of these keys (for workers, readers and the CLI)."""
        env = {
            "GEMINI_FREE_KEYS": ",".join(self.free),
            "GEMINI_PAID_KEY": self.paid,
            "GEMINI_FREE_RATE_LIMIT": str(self.free_limit),
            "GEMINI_PAID_RATE_LIMIT": str(self.paid_limit),
            "GEMINI_RATE_WINDOW_MS": str(self.window_ms),
            "GEMINI_BASE_URL": base_url,
            "GEMINI_ROTATOR_STATE": state,
        }
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def fingerprints(self) -> Dict[str, str]:
        """label -> fingerprint."""
        from gemini_rotator import fingerprint

        return {label: fingerprint(k) for label, k in zip(self.labels, self.all_keys())}

    def assert_no_key(self, text: str, where: str) -> None:
        """No key, nor the token that makes the keys unique, appears in ``text``."""
        assert self.token not in text, f"{where} contains an API key"
        for k in self.all_keys():
            assert k not in text, f"{where} contains an API key"


# ---- workers ------------------------------------------------------------------------------------


@dataclass
class Worker:
    kind: str  # "c", "go", "py-spawn", "py-fork", "py-forkpool"
    threads: int
    handle: Any  # subprocess.Popen or multiprocessing.Process (None for fork-pool tasks)
    pid: int
    progress: Path
    result: Path
    killed: bool = False

    def alive(self) -> bool:
        if isinstance(self.handle, subprocess.Popen):
            return self.handle.poll() is None
        return self.handle.is_alive()

    def kill(self) -> None:
        os.kill(self.pid, 9)
        self.killed = True

    def wait(self, timeout: float) -> int:
        if isinstance(self.handle, subprocess.Popen):
            return self.handle.wait(timeout=timeout)
        self.handle.join(timeout)
        assert self.handle.exitcode is not None, f"{self.kind} worker {self.pid} did not exit"
        return self.handle.exitcode


class Fleet:
    """Worker processes of every language on one key set, with common start and deadline."""

    def __init__(self, out_dir: Path, env: Dict[str, str], c_worker: Path, go_worker: Path,
                 start_ms: int, deadline_ms: int, max_wait_ms: int, timeout_ms: int) -> None:
        self.out_dir = out_dir
        self.env = env
        self.c_worker, self.go_worker = c_worker, go_worker
        self.start_ms, self.deadline_ms = start_ms, deadline_ms
        self.max_wait_ms, self.timeout_ms = max_wait_ms, timeout_ms
        self.workers: List[Worker] = []
        self._n = 0
        self._stderr: List[Any] = []

    def _paths(self, stem: str) -> Tuple[Path, Path]:
        return self.out_dir / f"{stem}.progress", self.out_dir / f"{stem}.result"

    def _popen(self, kind: str, argv: List[str], threads: int, progress: Path,
               result: Path) -> Worker:
        err = open(self.out_dir / (progress.stem + ".stderr"), "wb")
        self._stderr.append(err)
        proc = subprocess.Popen(argv, env=clean_env(**self.env), stdout=err, stderr=err)
        worker = Worker(kind, threads, proc, proc.pid, progress, result)
        self.workers.append(worker)
        return worker

    def start_c(self, threads: int = 3) -> Worker:
        self._n += 1
        progress, result = self._paths(f"c-{self._n}")
        argv = [str(self.c_worker), "run", str(threads), str(self.start_ms),
                str(self.deadline_ms), str(self.max_wait_ms), str(self.timeout_ms),
                str(progress), str(result)]
        return self._popen("c", argv, threads, progress, result)

    def start_go(self, goroutines: int = 4) -> Worker:
        # Go calls run on the pool's own budget, GEMINI_TIMEOUT_MS (set in the fleet's env).
        self._n += 1
        progress, result = self._paths(f"go-{self._n}")
        argv = [str(self.go_worker), "run", str(goroutines), str(self.start_ms),
                str(self.deadline_ms), str(self.max_wait_ms), str(progress), str(result)]
        return self._popen("go", argv, goroutines, progress, result)

    def _loop_args(self, threads: int) -> tuple:
        return (threads, self.start_ms, self.deadline_ms, self.max_wait_ms, self.timeout_ms,
                str(self.out_dir))

    def start_py_spawn(self, threads: int = 2) -> Worker:
        import cross_pyworker

        ctx = multiprocessing.get_context("spawn")
        proc = ctx.Process(
            target=cross_pyworker.spawn_main,
            args=(self.env, "py-spawn") + self._loop_args(threads),
        )
        proc.start()
        progress, result = self._paths(f"py-spawn-{proc.pid}")
        worker = Worker("py-spawn", threads, proc, proc.pid, progress, result)
        self.workers.append(worker)
        return worker

    def start_py_fork(self, pool: Any, threads: int = 2) -> Worker:
        """A ``fork`` child that uses ``pool``, made by this (the parent) process."""
        import cross_pyworker

        ctx = multiprocessing.get_context("fork")
        proc = ctx.Process(
            target=cross_pyworker.fork_process_main,
            args=(pool, "py-fork") + self._loop_args(threads),
        )
        proc.start()
        progress, result = self._paths(f"py-fork-{proc.pid}")
        worker = Worker("py-fork", threads, proc, proc.pid, progress, result)
        self.workers.append(worker)
        return worker

    def close(self) -> None:
        for w in self.workers:
            if w.alive():
                os.kill(w.pid, 9)
                w.wait(10)
        for f in self._stderr:
            f.close()

    def stderr_of(self, worker: Worker) -> str:
        path = self.out_dir / (worker.progress.stem + ".stderr")
        return path.read_text(errors="replace") if path.exists() else ""


def read_progress(path: Path) -> List[Tuple[str, int, int]]:
    """(fingerprint, thread, seq) of every success a worker recorded. A line cut short by a
    SIGKILL cannot exist (each is one write(2) of a few bytes on an O_APPEND file), but a
    torn last line is tolerated rather than trusted."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and len(parts[0]) == 12:
            out.append((parts[0], int(parts[1]), int(parts[2])))
    return out


def read_result(path: Path) -> Dict[str, Any]:
    return json.loads(path.read_text())


# ---- analysis of the emulator's log -------------------------------------------------------------


def arrivals_by_label(log: Iterable[Dict[str, Any]], labels: Sequence[str]) -> Dict[str, List[float]]:
    out: Dict[str, List[float]] = {label: [] for label in labels}
    for entry in log:
        if entry["label"] in out:
            out[entry["label"]].append(entry["t_ms"])
    for times in out.values():
        times.sort()
    return out


def max_in_window(times: Sequence[float], window_ms: float,
                  lo: float = float("-inf"), hi: float = float("inf")) -> Tuple[int, float]:
    """The most arrivals in any half-open window [t, t + window_ms) that lies inside [lo, hi],
    and the t of such a window. Sliding check: for every arrival t_i (a window holding the
    maximum can always be moved right until it starts at an arrival), count the arrivals in
    [t_i, t_i + window_ms)."""
    times = sorted(times)
    best, best_t = 0, lo
    j = 0
    for i, t in enumerate(times):
        if t < lo or t + window_ms > hi:
            continue
        j = max(j, i)
        while j < len(times) and times[j] < t + window_ms:
            j += 1
        if j - i > best:
            best, best_t = j - i, t
    return best, best_t


def count_in(times: Sequence[float], lo: float, hi: float) -> int:
    """Arrivals in [lo, hi]."""
    return sum(1 for t in times if lo <= t <= hi)


def latency_bound_s(stats: Any) -> float:
    """An upper bound of every upstream attempt's latency, from the pool's shared histogram:
    the smallest bucket bound that already counts every attempt."""
    latency = stats.pool.latency
    for bound, cumulative in latency.buckets:
        if cumulative == latency.count:
            return bound
    return float("inf")


def sparse_copy(src: Path, dst: Path) -> None:
    """Copies a (256 MiB, mostly hole) state file without filling its holes, mode 0600."""
    size = src.stat().st_size
    with open(src, "rb") as fin:
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, size)
            offset = 0
            while offset < size:
                try:
                    data_at = os.lseek(fin.fileno(), offset, os.SEEK_DATA)
                except OSError:  # ENXIO: only a hole is left
                    break
                hole_at = os.lseek(fin.fileno(), data_at, os.SEEK_HOLE)
                fin.seek(data_at)
                remaining = hole_at - data_at
                os.lseek(fd, data_at, os.SEEK_SET)
                while remaining > 0:
                    chunk = fin.read(min(remaining, 1 << 20))
                    os.write(fd, chunk)
                    remaining -= len(chunk)
                offset = hole_at
        finally:
            os.close(fd)
