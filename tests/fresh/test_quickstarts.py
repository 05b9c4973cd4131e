"""The quickstarts of examples/, built from this working tree and run against the emulator:
Python with the package installed in this venv, Go through its `replace` of bindings/go
(the default static link of target/release), C against target/release's shared library."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO

from gr_emulator import Key
from quickstarts import (
    RUN_TIMEOUT_S, check_c_output, check_prompt_output, environment, run, served,
)

RELEASE = REPO / "target" / "release"


def test_python_quickstart(emulator, keys, quickstart_env):
    out = run([sys.executable, REPO / "examples/python/quickstart.py"], env=quickstart_env,
              timeout=RUN_TIMEOUT_S)
    check_prompt_output(out, keys)
    assert served(emulator, keys) == 2


def test_go_quickstart(emulator, keys, quickstart_env, tmp_path):
    binary = tmp_path / "quickstart-go"
    run(["go", "build", "-o", binary, "."], env=quickstart_env, cwd=REPO / "examples/go")
    out = run([binary], env=quickstart_env, timeout=RUN_TIMEOUT_S)
    check_prompt_output(out, keys)
    assert served(emulator, keys) == 2


def test_c_quickstart(emulator, keys, quickstart_env, tmp_path):
    binary = tmp_path / "quickstart-c"
    cc = os.environ.get("CC", "cc")
    run([cc, "-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{REPO / 'include'}",
         REPO / "examples/c/quickstart.c", RELEASE / "libgemini_rotator.so",
         f"-Wl,-rpath,{RELEASE}", "-o", binary], env=quickstart_env)
    out = run([binary], env=quickstart_env, timeout=RUN_TIMEOUT_S)
    check_c_output(out, keys)
    assert served(emulator, keys) == 1


def test_a_quickstart_reports_a_failure_with_a_nonzero_status(emulator, tmp_path):
    # No key can serve: the program must say so and fail, not print an empty answer.
    unknown = [Key(secret="quickstart-unknown-key", label="none")]
    env = environment(emulator.base_url, unknown, tmp_path / "state")
    done = subprocess.run(
        [sys.executable, str(REPO / "examples/python/quickstart.py")], env=env,
        capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
    )
    assert done.returncode != 0
    assert done.stdout == ""
    assert "gemini-rotator:" in done.stderr and "quickstart-unknown-key" not in done.stderr
