"""Fixtures of the quickstart and fresh-clone tests: the emulator, keys of each test's own, and
the environment a quickstart runs in."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
# The Python binding's tests already drive the emulator as a child process (stdlib only).
sys.path.insert(0, str(REPO / "bindings" / "python" / "tests"))

from gr_emulator import Emulator, Key  # noqa: E402

import quickstarts  # noqa: E402


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    emu = Emulator()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def keys(emulator: Emulator) -> List[Key]:
    """Two free keys unique to the test, unlimited in the emulator."""
    return emulator.add_keys(2, prefix="quickstart")


@pytest.fixture
def quickstart_env(emulator: Emulator, keys: List[Key], tmp_path: Path) -> Dict[str, str]:
    return quickstarts.environment(emulator.base_url, keys, tmp_path / "state")
