"""The Makefile a new user runs first: help by default, clear errors, the right venv per target.

``make -n`` (dry run) prints what a target would run without running it, so these tests see
which packages each target installs without installing anything.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tools import require

ROOT = Path(__file__).resolve().parent.parent


def make(*args: str, venv: Path) -> subprocess.CompletedProcess[str]:
    """``make ARGS`` in the repository with its venv at ``venv`` and this test's Python."""
    return subprocess.run(
        [
            require("make"),
            "--no-print-directory",
            *args,
            f"VENV={venv}",
            f"PYTHON={sys.executable}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_make_alone_lists_the_targets(tmp_path: Path) -> None:
    """`make` with no target prints every target with what it does, and builds nothing."""
    result = make(venv=tmp_path / "venv")

    assert 0 == result.returncode, result.stderr
    described = dict(re.findall(r"^  (\S+(?: \S+)?)\s{2,}(.+)$", result.stdout, flags=re.MULTILINE))
    assert {"help", "sdk", "run demo", "serve", "test", "bench", "lint", "fmt", "clean"} == set(
        described
    )
    assert "make serve CONFIG=config.yaml" in described["serve"]
    assert not (tmp_path / "venv").exists()


def test_serve_without_config_says_what_to_do(tmp_path: Path) -> None:
    """`make serve` without CONFIG exits 2 with a sentence, before building any venv."""
    result = make("serve", venv=tmp_path / "venv")

    assert 2 == result.returncode
    assert result.stderr.startswith("make serve needs a config file: make serve CONFIG=config.yaml")
    assert not (tmp_path / "venv").exists()


@pytest.mark.parametrize(
    ("target", "extras"),
    [("run", "-e ."), ("serve", "-e ."), ("test", "-e '.[test]'"), ("lint", "-e '.[dev]'")],
)
def test_each_target_installs_only_what_it_needs(tmp_path: Path, target: str, extras: str) -> None:
    """run and serve install the runtime alone; test the test extras; lint the dev tools."""
    result = make("-n", target, "CONFIG=c.yaml", venv=tmp_path / "venv")

    assert 0 == result.returncode, result.stderr
    installs = [line for line in result.stdout.splitlines() if "-m pip install" in line]
    assert ["--upgrade pip", extras] == [
        line.rsplit("--disable-pip-version-check ", 1)[1] for line in installs
    ]


def test_a_venv_from_another_python_is_rebuilt(tmp_path: Path) -> None:
    """A venv stamped by another interpreter is removed and made anew; a current one is kept."""
    venv = tmp_path / "venv"
    fresh = make("-n", "run", venv=venv)
    (stamp,) = re.findall(r"^touch (\S+/\.python-\S+)$", fresh.stdout, flags=re.MULTILINE)
    venv.mkdir()
    (venv / ".python-3.10.12-0123456789").touch()
    (venv / ".runtime").touch()

    stale = make("-n", "run", venv=venv)
    Path(stamp).touch()
    (venv / ".runtime").touch()  # newer than the interpreter stamp and pyproject.toml
    current = make("-n", "run", venv=venv)

    assert f"rm -rf {venv}" in stale.stdout.splitlines()
    assert f"{sys.executable} -m venv {venv}" in stale.stdout.splitlines()
    assert "-m venv" not in current.stdout
    assert "install" not in current.stdout
