"""What the quickstarts of examples/ must print, and the environment they run in.

Every quickstart takes its keys and the service's URL from the environment (GEMINI_FREE_KEYS,
GEMINI_BASE_URL), as a user's program would, and sends "Your prompt here" (Go, Python: a simple
query, then a request with a generation config) or "Hello" (C), which the emulator echoes.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Dict, List, Mapping, Sequence

from gemini_rotator import fingerprint
from gr_emulator import Emulator, Key

#: Each build or run gets this long (a cold cargo build of the library on 2 cores included).
BUILD_TIMEOUT_S = 1800
RUN_TIMEOUT_S = 60


def environment(base_url: str, keys: Sequence[Key], state: Path, **extra: str) -> Dict[str, str]:
    """The caller's environment without any GEMINI_* setting of the shell (never the real
    service, never another library), pointed at the emulator."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("GEMINI_")}
    env.update(
        GEMINI_BASE_URL=base_url,
        GEMINI_FREE_KEYS=",".join(key.secret for key in keys),
        GEMINI_ROTATOR_STATE=f"shm:{state}",
        GOTOOLCHAIN="local",
        CGO_ENABLED="1",
    )
    env.update(extra)
    return env


def run(command: Sequence[str], *, env: Mapping[str, str], cwd: Path | None = None,
        timeout: float = BUILD_TIMEOUT_S) -> str:
    """Runs a command; a failure shows the command and everything it printed."""
    done = subprocess.run(
        [str(part) for part in command], env=dict(env), cwd=cwd, capture_output=True,
        text=True, timeout=timeout,
    )
    assert done.returncode == 0, (
        f"`{' '.join(map(str, command))}` exited with {done.returncode}\n"
        f"--- stdout\n{done.stdout[-6000:]}\n--- stderr\n{done.stderr[-6000:]}"
    )
    return done.stdout


def fingerprints(keys: Sequence[Key]) -> List[str]:
    return [fingerprint(key.secret) for key in keys]


def served(emulator: Emulator, keys: Sequence[Key]) -> int:
    """Requests the emulator answered with 200 on these keys."""
    return sum(int(emulator.key_stats(key)["ok"]) for key in keys)


def check_prompt_output(stdout: str, keys: Sequence[Key]) -> None:
    """The Go and Python quickstarts: the echoed prompt, then again with the key's fingerprint."""
    lines = stdout.splitlines()
    assert len(lines) == 2, stdout
    assert lines[0] == "echo: Your prompt here"
    text, _, fp = lines[1].rpartition(" (key ")
    assert text == "echo: Your prompt here", stdout
    assert fp.endswith(")") and fp[:-1] in fingerprints(keys), stdout
    assert all(key.secret not in stdout for key in keys)


def check_c_output(stdout: str, keys: Sequence[Key]) -> None:
    """The C quickstart: `key <fingerprint> answered: <the response JSON>`."""
    prefix, _, body = stdout.strip().partition(" answered: ")
    assert prefix.startswith("key ") and prefix[4:] in fingerprints(keys), stdout
    response = json.loads(body)
    assert response["candidates"][0]["content"]["parts"][0]["text"] == "echo: Hello"
    assert all(key.secret not in stdout for key in keys)
