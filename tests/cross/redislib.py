"""A real redis-server for the cross-language Redis tests (a free loopback port, a temporary
directory, no persistence, so a restart loses everything), and workers isolated from each
other's shared memory: each runs in its own mount namespace with a private, empty /dev/shm,
so Redis is the only thing they share."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, List

from crosslib import HERE, Fleet, Worker, clean_env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: Any = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.command("PING") == "PONG":
                    return
            except OSError:
                pass
            assert time.monotonic() < deadline, f"redis-server did not start on {self.port}"
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL: the server dies with everything it held."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def restart_empty(self) -> None:
        self.kill()
        self.start()

    def command(self, *args: str) -> Any:
        """One command in RESP, its answer decoded (the tests' own look at the server)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            out = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
            s.sendall(out.encode())
            reader = s.makefile("rb")
            return _read(reader)

    def close(self) -> None:
        self.kill()


def _read(r: Any) -> Any:
    line = r.readline().rstrip(b"\r\n")
    kind, rest = line[:1], line[1:]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = r.read(n + 2)[:-2]
        return data
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read(r) for _ in range(n)]
    raise RuntimeError(f"unexpected RESP {line!r}")


#: Runs argv in a new mount namespace with an empty tmpfs on /dev/shm (tests run as root).
ISOLATE = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
           'mount -t tmpfs tmpfs /dev/shm && [ -z "$(ls -A /dev/shm)" ] && exec "$@"', "isolated"]


class IsolatedFleet(Fleet):
    """A Fleet whose every worker (C, Go and Python) runs isolated (see ISOLATE)."""

    def _popen(self, kind: str, argv: List[str], threads: int, progress: Path,
               result: Path) -> Worker:
        return super()._popen(kind, ISOLATE + argv, threads, progress, result)

    def start_py(self, threads: int = 2) -> Worker:
        self._n += 1
        name = f"py-{self._n}"
        code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import cross_pyworker; "
                "a = json.loads(sys.argv[2]); cross_pyworker.spawn_main(*a)")
        args = [self.env, name] + list(self._loop_args(threads))
        argv = ISOLATE + [sys.executable, "-c", code, str(HERE), json.dumps(args)]
        err = open(self.out_dir / f"{name}.stderr", "wb")
        self._stderr.append(err)
        proc = subprocess.Popen(argv, env=clean_env(), stdout=err, stderr=err)
        # The loop names its files after its own pid, which is this one: unshare and sh exec.
        base = self.out_dir / f"{name}-{proc.pid}"
        worker = Worker("py", threads, proc, proc.pid, Path(f"{base}.progress"),
                        Path(f"{base}.result"))
        self.workers.append(worker)
        return worker
