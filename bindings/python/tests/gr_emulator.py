"""The Gemini emulator as a child process, and its control API (stdlib only).

Every test registers keys of its own (unique secrets and labels) on the one emulator of the
session: key state belongs to the key, in the library and in the emulator, so nothing leaks
between tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

REPO = Path(__file__).resolve().parents[3]


def emulator_binary() -> Path:
    override = os.environ.get("GEMINI_EMULATOR_BIN")
    path = Path(override) if override else REPO / "target" / "release" / "gemini-emulator"
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
    def __init__(self, config: Optional[Dict[str, Any]] = None) -> None:
        config = config if config is not None else {"keys": [], "record_bodies": True}
        self._config_file = tempfile.NamedTemporaryFile(
            "w", suffix=".json", prefix="gemini-emulator-", delete=False
        )
        json.dump(config, self._config_file)
        self._config_file.close()
        self._stderr = tempfile.TemporaryFile()
        # stdin stays a pipe: when this process dies, the emulator sees EOF and exits.
        self.process = subprocess.Popen(
            [str(emulator_binary()), "--config", self._config_file.name, "--exit-on-stdin-eof"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        line = self._first_line(timeout=15)
        prefix = "listening on "
        if not line.startswith(prefix):
            self.stop()
            raise RuntimeError(f"the emulator did not start: {line!r} {self._stderr_text()}")
        self.base_url = line[len(prefix) :].strip()

    def _first_line(self, timeout: float) -> str:
        assert self.process.stdout is not None
        result: List[str] = []
        reader = threading.Thread(
            target=lambda: result.append(self.process.stdout.readline().decode()),  # type: ignore[union-attr]
            daemon=True,
        )
        reader.start()
        reader.join(timeout)
        return result[0] if result else ""

    def _stderr_text(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def stop(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()
        self._stderr.close()
        os.unlink(self._config_file.name)

    # Control API.

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def add_key(
        self,
        prefix: str = "free",
        *,
        limit: Optional[int] = None,
        window_ms: int = 60000,
        daily_limit: Optional[int] = None,
    ) -> Key:
        key = Key(secret=unique(f"{prefix}-secret"), label=unique(prefix))
        self._request(
            "POST",
            "/_emulator/keys",
            {
                "key": key.secret,
                "label": key.label,
                "limit": limit,
                "window_ms": window_ms,
                "daily_limit": daily_limit,
            },
        )
        return key

    def add_keys(self, n: int, prefix: str = "free", **spec: Any) -> List[Key]:
        return [self.add_key(f"{prefix}{i}", **spec) for i in range(n)]

    def fault(self, label: str, kind: str, **options: Any) -> None:
        """Adds a fault for one label (never for all: other tests share the emulator)."""
        self._request("POST", "/_emulator/faults", {"label": label, "kind": kind, **options})

    def stats(self) -> Dict[str, Any]:
        return self._request("GET", "/_emulator/stats")

    def key_stats(self, key: Key) -> Dict[str, Any]:
        """The emulator's counters for one key (zeros when it never saw a request)."""
        empty = {"requests": 0, "ok": 0, "rate_limited": 0, "injected": 0, "by_status": {}}
        return self.stats()["keys"].get(key.label, empty)

    def requests(self, key: Key) -> int:
        return int(self.key_stats(key)["requests"])

    def log(self, key: Key) -> List[Dict[str, Any]]:
        return [entry for entry in self._request("GET", "/_emulator/log") if entry["label"] == key.label]

    def last_body(self, key: Key) -> Dict[str, Any]:
        return self._request("GET", f"/_emulator/last_body?label={key.label}")

    def unknown_key_requests(self) -> int:
        return int(self.stats()["unknown_key"])
