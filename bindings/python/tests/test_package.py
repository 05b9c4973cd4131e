"""The installed package: the library it ships, its version, loading failures, fingerprints."""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import _ctypes
import pytest

import gemini_rotator
from gemini_rotator import KeyPool, fingerprint, library_version
from gr_emulator import REPO

PACKAGE_DIR = Path(gemini_rotator.__file__).resolve().parent


def cargo_version() -> str:
    text = (REPO / "Cargo.toml").read_text()
    match = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
    assert match, "no version in Cargo.toml"
    return match.group(1)


def test_library_ships_inside_the_installed_package():
    assert (PACKAGE_DIR / "py.typed").is_file()
    shipped = list(PACKAGE_DIR.glob("libgemini_rotator.*")) + list(
        PACKAGE_DIR.glob("gemini_rotator.dll")
    )
    assert len(shipped) == 1
    if "GEMINI_ROTATOR_LIB" not in os.environ:
        from gemini_rotator import _ffi

        assert Path(_ffi.LIB_PATH) == shipped[0]


def test_versions_match_cargo_toml():
    assert library_version() == cargo_version()
    assert gemini_rotator.__version__ == cargo_version()


def _import_with_library(path: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, GEMINI_ROTATOR_LIB=path)
    return subprocess.run(
        [sys.executable, "-c", "import gemini_rotator"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_missing_library_is_an_import_error_saying_where_it_looked(tmp_path):
    missing = tmp_path / "nowhere" / "libgemini_rotator.so"
    done = _import_with_library(str(missing))
    assert done.returncode != 0
    assert "ImportError" in done.stderr
    assert str(missing) in done.stderr
    assert "GEMINI_ROTATOR_LIB" in done.stderr


def test_a_file_that_is_no_library_is_an_import_error(tmp_path):
    bogus = tmp_path / "libgemini_rotator.so"
    bogus.write_text("not a shared library")
    done = _import_with_library(str(bogus))
    assert done.returncode != 0
    assert "ImportError" in done.stderr
    assert "cannot load" in done.stderr and str(bogus) in done.stderr


def _foreign_library() -> str:
    """A real shared library without any gr_* function: _ctypes, or the C library."""
    path = getattr(_ctypes, "__file__", None)
    if path:
        return path
    with open("/proc/self/maps") as maps:
        for line in maps:
            if "/libc.so" in line or "/libc-" in line:
                return line.split()[-1]
    raise AssertionError("no shared library found to stand in for a foreign one")


def test_a_foreign_library_is_an_import_error():
    foreign = _foreign_library()
    done = _import_with_library(foreign)
    assert done.returncode != 0
    assert "ImportError" in done.stderr
    assert "not the gemini-rotator library" in done.stderr and foreign in done.stderr


def test_the_library_can_be_overridden(tmp_path):
    copy = tmp_path / "renamed.so"
    copy.write_bytes((PACKAGE_DIR / "libgemini_rotator.so").read_bytes())
    env = dict(os.environ, GEMINI_ROTATOR_LIB=str(copy))
    done = subprocess.run(
        [sys.executable, "-c", "from gemini_rotator import _ffi; print(_ffi.LIB_PATH)"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(copy)


def test_fingerprint():
    one = fingerprint("some-api-key")
    assert re.fullmatch(r"[0-9a-f]{12}", one)
    assert fingerprint("some-api-key") == one
    assert fingerprint("some-other-key") != one
    with pytest.raises(TypeError, match="key"):
        fingerprint(b"bytes-key")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="key"):
        fingerprint("")


def test_pools_do_not_pickle(emulator):
    with KeyPool(["k-pickle"], base_url=emulator.base_url) as pool:
        with pytest.raises(TypeError, match="create one in each process"):
            pickle.dumps(pool)
        assert "k-pickle" not in repr(pool)
