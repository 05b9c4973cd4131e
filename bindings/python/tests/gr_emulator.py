"""The Gemini emulator as a child process, and its control API (stdlib only).

The one emulator driver of the Python tests: bindings/python/tests and tests/cross (which
imports this module by path) both use it.

The binding's tests register keys of their own (unique secrets and labels) on the one emulator
of the session: key state belongs to the key, in the library and in the emulator, so nothing
leaks between tests. The cross tests start an emulator per test with its keys in the
configuration.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[3]


def emulator_binary() -> Path:
    override = os.environ.get("GEMINI_EMULATOR_BIN")
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    path = Path(override) if override else target / "release" / "gemini-emulator"
    if not path.is_file():
        raise RuntimeError(
            f"the Gemini emulator is missing: expected {path} "
            "(run `cargo build --release --workspace` at the repository root, "
            "or set GEMINI_EMULATOR_BIN)"
        )
    return path


@dataclass(frozen=True)
class Key:
    """A key the emulator knows: the secret the pool sends, the label the emulator reports."""

    secret: str
    label: str


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


class Emulator:
    """``gemini-emulator --config FILE --exit-on-stdin-eof``. Its stdin is a pipe only this
    object holds, so it dies with the test process whatever happens.

    ``config`` defaults to no keys with request bodies recorded; ``work_dir`` (default: a
    temporary file each) keeps the configuration and the emulator's stderr for a post-mortem.
    """

    def __init__(
        self, config: Optional[Dict[str, Any]] = None, work_dir: Optional[Path] = None
    ) -> None:
        config = config if config is not None else {"keys": [], "record_bodies": True}
        name = f"gemini-emulator-{uuid.uuid4().hex[:8]}"
        self._temporary_config = work_dir is None
        if work_dir is None:
            with tempfile.NamedTemporaryFile("w", suffix=".json", prefix=name, delete=False) as f:
                json.dump(config, f)
            self._config_path = Path(f.name)
            self._stderr: IO[bytes] = tempfile.TemporaryFile()
        else:
            self._config_path = work_dir / f"{name}.json"
            self._config_path.write_text(json.dumps(config))
            self._stderr = open(work_dir / f"{name}.stderr", "wb")
        self.process = subprocess.Popen(
            [str(emulator_binary()), "--config", str(self._config_path), "--exit-on-stdin-eof"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self._lock = threading.Lock()
        self._conn: Optional[http.client.HTTPConnection] = None
        line = self._first_line(timeout=15)
        prefix = "listening on http://"
        if not line.startswith(prefix):
            self.stop()
            raise RuntimeError(f"the emulator did not start: {line!r} {self._stderr_text()}")
        self.base_url = line[len("listening on ") :].strip()
        host, port = self.base_url[len("http://") :].split(":")
        self._host, self._port = host, int(port)

    def _first_line(self, timeout: float) -> str:
        stdout = self.process.stdout
        assert stdout is not None
        result: List[str] = []
        reader = threading.Thread(
            target=lambda: result.append(stdout.readline().decode()), daemon=True
        )
        reader.start()
        reader.join(timeout)
        return result[0] if result else ""

    def _stderr_text(self) -> str:
        try:
            self._stderr.seek(0)
            return self._stderr.read().decode(errors="replace")
        except OSError:  # a write-only file in work_dir: read it there
            return ""

    def stop(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        if self.process.poll() is None and self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()
        self._stderr.close()
        if self._temporary_config:
            self._config_path.unlink(missing_ok=True)

    close = stop

    # ---- HTTP to the emulator: one kept-alive connection, shared under a lock ----------------

    def request(
        self,
        method: str,
        path: str,
        body: Optional[bytes] = None,
        headers: Optional[Dict[str, str]] = None,
    ) -> Tuple[int, bytes]:
        """(status, body) of one request to any path of the emulator."""
        with self._lock:
            for attempt in range(2):
                if self._conn is None:
                    self._conn = http.client.HTTPConnection(self._host, self._port, timeout=30)
                try:
                    self._conn.request(method, path, body=body, headers=headers or {})
                    response = self._conn.getresponse()
                    return response.status, response.read()
                except (http.client.HTTPException, ConnectionError):
                    # A kept-alive connection the server closed: once more on a new one.
                    self._conn.close()
                    self._conn = None
                    if attempt == 1:
                        raise
        raise AssertionError("unreachable")

    # ---- the control API ------------------------------------------------------------------

    def get(self, endpoint: str) -> Any:
        status, data = self.request("GET", "/_emulator/" + endpoint)
        assert status == 200, (endpoint, status, data)
        return json.loads(data)

    def post(self, endpoint: str, body: Dict[str, Any]) -> None:
        status, data = self.request(
            "POST",
            "/_emulator/" + endpoint,
            json.dumps(body).encode(),
            {"Content-Type": "application/json"},
        )
        assert status == 200, (endpoint, status, data)

    def add_key(
        self,
        prefix: str = "free",
        *,
        limit: Optional[int] = None,
        window_ms: int = 60000,
        daily_limit: Optional[int] = None,
        token_limit: Optional[int] = None,
        project: Optional[str] = None,
        models: Optional[Dict[str, Dict[str, int]]] = None,
    ) -> Key:
        """A new key. Its quotas (``limit`` per ``window_ms``, ``daily_limit``,
        ``token_limit``, and per model in ``models``, e.g. ``{"gemini-3-pro": {"limit": 0}}``)
        belong to its ``project`` (default: a project of its own, named by its label); every
        key of a project must carry the same quotas."""
        key = Key(secret=unique(f"{prefix}-secret"), label=unique(prefix))
        spec: Dict[str, Any] = {
            "key": key.secret,
            "label": key.label,
            "limit": limit,
            "window_ms": window_ms,
            "daily_limit": daily_limit,
            "token_limit": token_limit,
        }
        if project is not None:
            spec["project"] = project
        if models:
            spec["models"] = models
        self.post("keys", spec)
        return key

    def add_keys(self, n: int, prefix: str = "free", **spec: Any) -> List[Key]:
        return [self.add_key(f"{prefix}{i}", **spec) for i in range(n)]

    def add_fault(self, **fault: Any) -> None:
        """Adds a fault as the configuration writes one (``kind``, ``label``, ``count``, ...)."""
        self.post("faults", fault)

    def fault(self, label: str, kind: str, **options: Any) -> None:
        """Adds a fault for one label (never for all: other tests share the emulator)."""
        self.add_fault(label=label, kind=kind, **options)

    def stats(self) -> Dict[str, Any]:
        return self.get("stats")  # type: ignore[no-any-return]

    def key_stats(self, key: Key) -> Dict[str, Any]:
        """The emulator's counters for one key (zeros when it never saw a request)."""
        empty = {"requests": 0, "ok": 0, "rate_limited": 0, "injected": 0, "by_status": {}}
        return self.stats()["keys"].get(key.label, empty)  # type: ignore[no-any-return]

    def requests(self, key: Key) -> int:
        return int(self.key_stats(key)["requests"])

    def project_model_stats(self, project: str, model: str) -> Dict[str, Any]:
        """The emulator's counters and quota state of one (project, model): ``requests``,
        ``ok``, ``rate_limited``, ``in_window``, ``today``, ... (zeros when it saw none)."""
        empty = {"requests": 0, "ok": 0, "rate_limited": 0, "in_window": 0, "today": 0}
        project_stats = self.stats().get("projects", {}).get(project, {})
        return project_stats.get("models", {}).get(model, empty)  # type: ignore[no-any-return]

    def clock(self) -> Dict[str, Any]:
        """The emulator's wall clock: ``now``, ``pacific_date``, ``ms_to_next_reset`` (the
        time to the next Pacific midnight, when daily quotas reset), ..."""
        return self.get("clock")  # type: ignore[no-any-return]

    def log(self, key: Optional[Key] = None) -> List[Dict[str, Any]]:
        """The request log: every entry, or those of one key."""
        entries: List[Dict[str, Any]] = self.get("log")
        return entries if key is None else [e for e in entries if e["label"] == key.label]

    def last_body_text(self, label: str) -> Optional[str]:
        """The last request body of that label, verbatim; None if none was recorded."""
        status, data = self.request("GET", f"/_emulator/last_body?label={label}")
        if status == 404:
            return None
        assert status == 200, (status, data)
        return data.decode()

    def last_body(self, key: Key) -> Dict[str, Any]:
        """The last request body of a key, parsed (it must have one)."""
        text = self.last_body_text(key.label)
        assert text is not None, f"no body recorded for {key.label}"
        return json.loads(text)  # type: ignore[no-any-return]

    def unknown_key_requests(self) -> int:
        return int(self.stats()["unknown_key"])

    def clock_offset(self) -> Tuple[float, float]:
        """(lo, hi) such that emulator time (the log's t_ms) = time.monotonic() * 1000 + offset
        for some offset in [lo, hi]: one request with an unknown key is logged (label null) at
        its arrival, which lies between the two readings of our clock around it."""
        marker = f"clock-probe-{uuid.uuid4().hex}"
        before = time.monotonic() * 1000
        status, _ = self.request(
            "POST",
            "/v1beta/models/gemini-3.6-flash:generateContent",
            b'{"contents":[{"parts":[{"text":"probe"}]}]}',
            {"x-goog-api-key": marker, "Content-Type": "application/json"},
        )
        after = time.monotonic() * 1000
        assert status == 400, status
        arrival = [e for e in self.log() if e["label"] is None][-1]["t_ms"]
        return arrival - after, arrival - before
