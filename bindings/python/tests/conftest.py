"""Fixtures: one emulator for the session, and pools on keys unique to each test."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional

import pytest

import gemini_rotator
from gr_emulator import Emulator, Key

SOURCE_TREE = Path(__file__).resolve().parents[1] / "src"


def pytest_sessionstart(session: pytest.Session) -> None:
    # The tests are about the installed package (pip install bindings/python), with the
    # library it ships; a source checkout on sys.path would test something else.
    location = Path(gemini_rotator.__file__).resolve()
    if SOURCE_TREE in location.parents:
        raise pytest.UsageError(
            f"gemini_rotator was imported from the source tree ({location}); "
            "run `pip install bindings/python` and run the tests against the installed package"
        )


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    emu = Emulator()
    try:
        yield emu
    finally:
        emu.stop()


PoolFactory = Callable[..., gemini_rotator.KeyPool]


@pytest.fixture
def make_pool(emulator: Emulator) -> Iterator[PoolFactory]:
    """Builds pools on the emulator with fast retries; closes them after the test."""
    pools: List[gemini_rotator.KeyPool] = []

    def make(free: List[Key], paid: Optional[Key] = None, **options: Any) -> gemini_rotator.KeyPool:
        options.setdefault("base_url", emulator.base_url)
        options.setdefault("retry_base_ms", 1)
        options.setdefault("retry_max_ms", 5)
        pool = gemini_rotator.KeyPool(
            free_keys=[key.secret for key in free],
            paid_key=paid.secret if paid else None,
            **options,
        )
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()
