"""Fixtures of the cross-language process tests: the C and Go workers, built once per run from
this folder's sources against the release build, and the emulator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import crosslib  # noqa: E402


def _require(path: Path) -> None:
    # A missing artifact is a failure, never a skip: the suite is useless without the build.
    if not path.exists():
        pytest.fail(f"{path} is missing: run `cargo build --release --workspace` first")


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cross-build")


@pytest.fixture(scope="session")
def c_worker(build_dir: Path) -> Path:
    """tests/cross/worker.c, compiled with warnings as errors and linked to the static library."""
    _require(crosslib.STATIC_LIB)
    out = build_dir / "worker"
    cmd = [
        os.environ.get("CC", "cc"), "-O2", "-Wall", "-Wextra", "-Werror", "-std=c11",
        f"-I{crosslib.INCLUDE}", str(crosslib.HERE / "worker.c"), str(crosslib.STATIC_LIB),
        "-lm", "-ldl", "-lpthread", "-o", str(out),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stdout}{done.stderr}"
    return out


@pytest.fixture(scope="session")
def go_worker(build_dir: Path) -> Path:
    """tests/cross/goworker (module with a replace directive to bindings/go), built once."""
    _require(crosslib.STATIC_LIB)
    out = build_dir / "goworker"
    env = dict(os.environ, GOTOOLCHAIN="local", CGO_ENABLED="1")
    done = subprocess.run(
        ["go", "build", "-o", str(out), "."],
        cwd=crosslib.HERE / "goworker", env=env, capture_output=True, text=True,
    )
    assert done.returncode == 0, f"go build failed:\n{done.stdout}{done.stderr}"
    return out


@pytest.fixture(scope="session")
def cli() -> Path:
    _require(crosslib.CLI_BIN)
    return crosslib.CLI_BIN


@pytest.fixture
def start_emulator(tmp_path: Path):
    """start_emulator(keys=[...], faults=[...], record_bodies=False) -> Emulator, stopped at the
    end of the test."""
    started = []

    def start(keys, faults=(), record_bodies=False):
        emulator = crosslib.Emulator(
            {"keys": list(keys), "faults": list(faults), "record_bodies": record_bodies},
            tmp_path,
        )
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.close()


def pytest_terminal_summary(terminalreporter):
    if crosslib.SUMMARY:
        terminalreporter.section("cross-language process tests")
        for line in crosslib.SUMMARY:
            terminalreporter.write_line(line)
