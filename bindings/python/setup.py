"""Build step of the gemini_rotator package: ship the Rust library inside it.

`cargo build --release` (at the repository root) must run first; `build_py` then copies
target/release/libgemini_rotator.so (or $CARGO_TARGET_DIR/release/...) into the package, and the
wheel is tagged for this platform (the library does not depend on the Python version).
Everything else is in pyproject.toml.
"""

import os
import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def library_file_name() -> str:
    if sys.platform == "win32":
        return "gemini_rotator.dll"
    if sys.platform == "darwin":
        return "libgemini_rotator.dylib"
    return "libgemini_rotator.so"


def built_library() -> Path:
    target = os.environ.get("CARGO_TARGET_DIR")
    target_dir = (REPO / target) if target else (REPO / "target")
    return target_dir / "release" / library_file_name()


class BuildPyWithLibrary(build_py):
    """build_py, plus the shared library copied next to the package's modules."""

    def run(self) -> None:
        library = built_library()
        if not library.is_file():
            raise SystemExit(
                f"error: the gemini-rotator shared library is missing: expected {library}.\n"
                f"Build it first at the repository root ({REPO}): cargo build --release"
            )
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
