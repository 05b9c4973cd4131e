"""Build step of the gemini_rotator package: build the Rust library and ship it inside.

`pip install ./bindings/python` and `pip wheel ./bindings/python` run, at the repository root,

    cargo build --release --locked -p gemini-rotator --lib

and copy the shared library it reports (libgemini_rotator.so, .dylib on macOS) into the package,
where ctypes loads it. Cargo decides what is stale, so with the library already built this takes
a second. The target directory is cargo's own choice: $CARGO_TARGET_DIR when set (a relative
path is taken from the repository root), else <repo>/target. $CARGO names another cargo.

The wheel is tagged py3-none-<platform>: the package has no Python C-extension, so any Python 3
on the platform can use it. Everything else is in pyproject.toml.

Why not setuptools-rust or maturin: setuptools-rust names a binding-less cdylib after the
running interpreter (libgemini_rotator.cpython-311-x86_64-linux-gnu.so), the opposite of one
file for every Python 3; maturin packages a cdylib only through its cffi binding, which would
add cffi at run time. One cargo command and a copy need neither.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CRATE = "gemini-rotator"


def library_file_name() -> str:
    if sys.platform == "win32":
        return "gemini_rotator.dll"
    if sys.platform == "darwin":
        return "libgemini_rotator.dylib"
    return "libgemini_rotator.so"


def cargo_command() -> List[str]:
    manifest = REPO / "Cargo.toml"
    if not manifest.is_file():
        raise SystemExit(
            f"error: the gemini-rotator crate is missing: expected {manifest}. Build this package "
            "from a checkout of the repository (pip install ./bindings/python or pip wheel "
            "./bindings/python): it compiles the crate two folders up."
        )
    cargo = os.environ.get("CARGO", "cargo")
    if shutil.which(cargo) is None:
        raise SystemExit(
            f"error: building gemini_rotator needs Rust's cargo (1.80 or later), but {cargo!r} "
            "is not on PATH. Install Rust (rustup), or set CARGO to the cargo to use."
        )
    return [
        cargo, "build", "--release", "--locked", "-p", CRATE, "--lib",
        "--manifest-path", str(manifest), "--message-format=json-render-diagnostics",
    ]


def build_library() -> Path:
    """Runs cargo and returns the shared library it built, as its JSON messages name it."""
    command = cargo_command()
    print("building the gemini-rotator library:", " ".join(command), file=sys.stderr, flush=True)
    # Compiler messages and progress go to stderr as usual; stdout carries the JSON records.
    done = subprocess.run(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise SystemExit(
            f"error: building the gemini-rotator library failed (cargo exit status "
            f"{done.returncode}); cargo's messages are above. Command: {' '.join(command)}"
        )
    manifest = str(REPO / "Cargo.toml")
    found = []
    for line in done.stdout.splitlines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        if (
            record.get("reason") == "compiler-artifact"
            and record.get("manifest_path") == manifest
            and "cdylib" in record.get("target", {}).get("kind", [])
        ):
            found += [Path(f) for f in record["filenames"] if Path(f).name == library_file_name()]
    if len(found) != 1:
        raise SystemExit(
            f"error: cargo built the gemini-rotator crate but reported {len(found)} files named "
            f"{library_file_name()} (expected one): {[str(f) for f in found]}"
        )
    return found[0]


class BuildPyWithLibrary(build_py):
    """build_py, plus the shared library, freshly built, next to the package's modules."""

    def run(self) -> None:
        library = build_library()
        super().run()
        destination = Path(self.build_lib) / "gemini_rotator" / library.name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(library, destination)
        destination.chmod(0o755)


class BinaryDistribution(Distribution):
    """The package carries a native library: never a pure-Python wheel."""

    def has_ext_modules(self) -> bool:
        return True


commands = {"build_py": BuildPyWithLibrary}

try:  # setuptools >= 70.1 has its own bdist_wheel; older ones use the wheel package's.
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # pragma: no cover - depends on the build environment
    try:
        from wheel.bdist_wheel import bdist_wheel  # type: ignore[no-redef]
    except ImportError:
        bdist_wheel = None  # type: ignore[assignment,misc]

if bdist_wheel is not None:

    class PlatformWheel(bdist_wheel):  # type: ignore[misc,valid-type]
        """Tagged py3-none-<platform>: the library is loaded with ctypes, not the C API of
        CPython, so any Python 3 on this platform can use it."""

        def get_tag(self):  # type: ignore[no-untyped-def]
            _, _, platform = super().get_tag()
            return "py3", "none", platform

    commands["bdist_wheel"] = PlatformWheel

setup(cmdclass=commands, distclass=BinaryDistribution)
