"""A fresh clone of this repository, installed the way the README tells a user to.

The clone is of the working tree's HEAD (committed work only: that is what a user clones), in a
temporary directory. From it, with only the toolchains and the system packages:

- Python: a bare virtual environment's `python3` first on PATH, one `pip install
  <clone>/bindings/python` (which builds the Rust library), then the Python quickstart;
  `pip wheel` gives a py3-none-<platform> wheel that works in another fresh environment;
- C: `make install PREFIX=<tmp>`, then the C quickstart built with `pkg-config --cflags --libs
  gemini_rotator` (and statically, with the .pc file's Libs.private); DESTDIR stages;
- Go: the Go quickstart copied to a directory outside the checkout, its go.mod pointing at the
  clone's bindings/go with a `replace`, built with the gemini_rotator_pkgconfig tag.

The clone's cargo builds share one target directory, target/fresh-clone of this tree, so that
after the first run only the clone's own crate compiles (its path changes every run; the
registry crates do not).
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

from conftest import REPO
from quickstarts import RUN_TIMEOUT_S, check_c_output, check_prompt_output, run, served


def crate_version() -> str:
    """The library's version, from the [package] table of the repository's Cargo.toml."""
    in_package = False
    for line in (REPO / "Cargo.toml").read_text().splitlines():
        if line.startswith("["):
            in_package = line.strip() == "[package]"
        elif in_package and line.startswith("version"):
            return line.split("=", 1)[1].strip().strip('"')
    raise AssertionError("Cargo.toml has no [package] version")


CLONE_TARGET = REPO / "target" / "fresh-clone"


def _prune_earlier_clones() -> None:
    """Each run's clone has a new path, so its crate's outputs would pile up: drop theirs."""
    release = CLONE_TARGET / "release"
    patterns = [
        "deps/libgemini_rotator*", "deps/gemini_rotator*", ".fingerprint/gemini-rotator-*",
        "build/gemini-rotator-*",
    ]
    for pattern in patterns:
        for path in release.glob(pattern):
            shutil.rmtree(path) if path.is_dir() else path.unlink()


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="gemini-rotator-fresh-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def clone(workdir: Path) -> Path:
    head = run(["git", "-C", REPO, "rev-parse", "HEAD"], env=os.environ).strip()
    checkout = workdir / "gemini-rotator"
    # --no-checkout, then the commit itself: tests/run may run in a worktree, whose HEAD is not
    # the repository's.
    run(["git", "clone", "--quiet", "--no-checkout", REPO, checkout], env=os.environ)
    run(["git", "-C", checkout, "checkout", "--quiet", "--detach", head], env=os.environ)
    assert not (checkout / "target").exists()
    _prune_earlier_clones()
    return checkout


@pytest.fixture
def fresh_env(quickstart_env: Dict[str, str]) -> Dict[str, str]:
    """The quickstart environment, with the clone's builds in the shared target directory and
    nothing of this tree's Python environment on PATH."""
    env = dict(quickstart_env, CARGO_TARGET_DIR=str(CLONE_TARGET))
    venv_bin = str(Path(sys.prefix) / "bin")
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != venv_bin)
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    return env


def bare_venv(path: Path, env: Dict[str, str]) -> Dict[str, str]:
    """A new virtual environment with nothing installed; an env with its python3 first."""
    run([sys.executable, "-m", "venv", "--clear", path], env=env)
    return dict(env, VIRTUAL_ENV=str(path), PATH=f"{path / 'bin'}{os.pathsep}{env['PATH']}")


def installed_from(venv: Path, env: Dict[str, str]) -> Path:
    out = run(["python3", "-c", "import gemini_rotator; print(gemini_rotator.__file__)"], env=env,
              timeout=RUN_TIMEOUT_S)
    location = Path(out.strip()).resolve()
    assert venv.resolve() in location.parents, f"gemini_rotator imported from {location}"
    return location.parent


def test_one_pip_install_in_a_bare_venv(clone, workdir, fresh_env, emulator, keys):
    venv = workdir / "venv-pip"
    env = bare_venv(venv, fresh_env)
    run(["python3", "-m", "pip", "install", "--quiet", clone / "bindings" / "python"], env=env)

    package = installed_from(venv, env)
    assert (package / "libgemini_rotator.so").is_file()
    out = run(["python3", clone / "examples/python/quickstart.py"], env=env, timeout=RUN_TIMEOUT_S)
    check_prompt_output(out, keys)
    assert served(emulator, keys) == 2


def test_pip_wheel_is_for_any_python3_and_works_in_a_fresh_venv(clone, workdir, fresh_env,
                                                                 emulator, keys):
    builder = bare_venv(workdir / "venv-wheel-build", fresh_env)
    wheels = workdir / "wheels"
    run(["python3", "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", wheels,
         clone / "bindings" / "python"], env=builder)
    built = sorted(wheels.glob("*.whl"))
    assert len(built) == 1, built
    platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    assert built[0].name == f"gemini_rotator-{crate_version()}-py3-none-{platform}.whl"

    venv = workdir / "venv-wheel"
    env = bare_venv(venv, fresh_env)
    run(["python3", "-m", "pip", "install", "--quiet", "--no-index", built[0]], env=env)
    installed_from(venv, env)
    out = run(["python3", clone / "examples/python/quickstart.py"], env=env, timeout=RUN_TIMEOUT_S)
    check_prompt_output(out, keys)
    assert served(emulator, keys) == 2


@pytest.fixture(scope="module")
def prefix(clone: Path, workdir: Path) -> Path:
    """`make install PREFIX=<tmp>` from the clone."""
    path = workdir / "prefix"
    env = dict(os.environ, CARGO_TARGET_DIR=str(CLONE_TARGET))
    run(["make", "-C", clone, "--no-print-directory", "install", f"PREFIX={path}"], env=env)
    return path


INSTALLED = [
    "include/gemini_rotator.h", "lib/libgemini_rotator.so", "lib/libgemini_rotator.a",
    "lib/pkgconfig/gemini_rotator.pc",
]


def pkg_config(prefix: Path, *args: str) -> List[str]:
    env = dict(os.environ, PKG_CONFIG_PATH=str(prefix / "lib" / "pkgconfig"))
    return run(["pkg-config", *args, "gemini_rotator"], env=env, timeout=RUN_TIMEOUT_S).split()


def test_make_install_puts_header_libraries_and_pc_file_under_the_prefix(clone, prefix):
    for relative in INSTALLED:
        assert (prefix / relative).is_file(), relative
    assert (prefix / "include/gemini_rotator.h").read_bytes() == (
        clone / "include/gemini_rotator.h").read_bytes()
    assert pkg_config(prefix, "--modversion") == [crate_version()]
    assert pkg_config(prefix, "--cflags") == [f"-I{prefix / 'include'}"]
    assert pkg_config(prefix, "--libs") == [f"-L{prefix / 'lib'}", "-lgemini_rotator"]


def test_c_quickstart_builds_with_pkg_config_and_runs(clone, prefix, workdir, fresh_env,
                                                      emulator, keys):
    binary = workdir / "quickstart-c"
    cc = os.environ.get("CC", "cc")
    flags = pkg_config(prefix, "--cflags", "--libs")
    run([cc, "-std=c11", "-Wall", "-Wextra", "-Werror", clone / "examples/c/quickstart.c",
         *flags, "-o", binary], env=fresh_env)
    out = run([binary], env=dict(fresh_env, LD_LIBRARY_PATH=str(prefix / "lib")),
              timeout=RUN_TIMEOUT_S)
    check_c_output(out, keys)
    assert served(emulator, keys) == 1


def test_c_quickstart_links_statically_with_libs_private(clone, prefix, workdir, fresh_env,
                                                         emulator, keys):
    # The archive, then what Libs.private lists: if the .pc file missed a system library the
    # static library needs, this link fails.
    binary = workdir / "quickstart-c-static"
    cc = os.environ.get("CC", "cc")
    system_libs = [f for f in pkg_config(prefix, "--static", "--libs-only-l")
                   if f != "-lgemini_rotator"]
    run([cc, "-std=c11", *pkg_config(prefix, "--cflags"), clone / "examples/c/quickstart.c",
         prefix / "lib/libgemini_rotator.a", *system_libs, "-o", binary], env=fresh_env)
    assert "libgemini_rotator" not in run(["ldd", binary], env=fresh_env, timeout=RUN_TIMEOUT_S)
    out = run([binary], env=fresh_env, timeout=RUN_TIMEOUT_S)
    check_c_output(out, keys)
    assert served(emulator, keys) == 1


def test_make_install_honours_destdir(clone, prefix, workdir):
    # After `prefix`, the library is built: this is the install step alone.
    stage = workdir / "stage"
    env = dict(os.environ, CARGO_TARGET_DIR=str(CLONE_TARGET))
    run(["make", "-C", clone, "--no-print-directory", "install", "PREFIX=/opt/gemini-rotator",
         f"DESTDIR={stage}"], env=env)
    for relative in INSTALLED:
        assert (stage / "opt/gemini-rotator" / relative).is_file(), relative
    pc = (stage / "opt/gemini-rotator/lib/pkgconfig/gemini_rotator.pc").read_text()
    assert "prefix=/opt/gemini-rotator\n" in pc and str(stage) not in pc
    assert not Path("/opt/gemini-rotator").exists()


def test_go_quickstart_outside_the_checkout_through_pkg_config(clone, prefix, workdir,
                                                               fresh_env, emulator, keys):
    app = workdir / "elsewhere" / "app"
    app.mkdir(parents=True)
    shutil.copy(clone / "examples/go/main.go", app / "main.go")
    (app / "go.mod").write_text(
        "module example.com/app\n\ngo 1.23\n\n"
        "require gemini-rotator/bindings/go v0.0.0\n\n"
        f"replace gemini-rotator/bindings/go => {clone / 'bindings' / 'go'}\n"
    )
    assert clone not in app.parents
    env = dict(fresh_env, PKG_CONFIG_PATH=str(prefix / "lib" / "pkgconfig"))
    binary = workdir / "quickstart-go"
    run(["go", "build", "-tags", "gemini_rotator_pkgconfig", "-o", binary, "."], env=env, cwd=app)
    # It links the installed library (no checkout path in the binary's needs), found at run time
    # through LD_LIBRARY_PATH as the README says.
    needed = run(["ldd", binary], env=dict(env, LD_LIBRARY_PATH=str(prefix / "lib")),
                 timeout=RUN_TIMEOUT_S)
    assert f"{prefix / 'lib' / 'libgemini_rotator.so'}" in needed, needed
    out = run([binary], env=dict(env, LD_LIBRARY_PATH=str(prefix / "lib")), timeout=RUN_TIMEOUT_S)
    check_prompt_output(out, keys)
    assert served(emulator, keys) == 2
