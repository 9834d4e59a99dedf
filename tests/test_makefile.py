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
    assert {
        "help",
        "sdk",
        "run demo",
        "serve",
        "check-config",
        "once",
        "diagnose",
        "test",
        "bench",
        "lint",
        "fmt",
        "clean",
    } == set(described)
    assert "make serve CONFIG=config.yaml" in described["serve"]
    assert "make check-config CONFIG=config.yaml" in described["check-config"]
    assert not (tmp_path / "venv").exists()


@pytest.mark.parametrize("target", ["serve", "check-config", "once", "diagnose"])
def test_a_command_without_config_says_what_to_do(tmp_path: Path, target: str) -> None:
    """`make serve` (check-config, once, diagnose) without CONFIG exits 2 with a sentence
    naming that target, before building any venv."""
    result = make(target, venv=tmp_path / "venv")

    assert 2 == result.returncode
    assert result.stderr.startswith(
        f"make {target} needs a config file: make {target} CONFIG=config.yaml"
    )
    assert not (tmp_path / "venv").exists()


@pytest.mark.parametrize("command", ["check-config", "once", "diagnose"])
def test_the_commands_run_from_the_venv_with_config_and_args(tmp_path: Path, command: str) -> None:
    """`make diagnose CONFIG=c.yaml ARGS="--target t"` runs the venv's session-exporter with
    that config and those arguments, unechoed (stdout stays the command's own)."""
    venv = tmp_path / "venv"
    result = make("-n", command, "CONFIG=c.yaml", "ARGS=--target t", venv=venv)

    assert 0 == result.returncode, result.stderr
    assert (
        f"{venv}/bin/session-exporter {command} --config c.yaml --target t"
        == result.stdout.splitlines()[-1]
    )
    assert "@" not in result.stdout  # make -n shows a silent line as it would run it


@pytest.mark.parametrize(
    ("target", "extras"),
    [
        ("run", "-e ."),
        ("serve", "-e ."),
        ("check-config", "-e ."),
        ("once", "-e ."),
        ("diagnose", "-e ."),
        ("test", "-e '.[test]'"),
        ("lint", "-e '.[dev]'"),
    ],
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


@pytest.mark.slow
def test_the_editable_install_prints_no_setuptools_warning(tmp_path: Path) -> None:
    """The install every make target runs (``pip install -e .``, quiet) prints nothing from
    setuptools: the project root goes on sys.path by one .pth line, with no meta path finder
    and its 10-line "Editable installation" warning."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--ignore-installed",  # never uninstall the running environment's own install
            "--prefix",
            str(tmp_path),
            "-e",
            ".",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert 0 == result.returncode, result.stderr
    assert "BuildBackendWarning" not in result.stderr
    assert "Editable installation" not in result.stderr
    (pth,) = tmp_path.glob("lib/python*/site-packages/__editable__.session_exporter-*.pth")
    assert [str(ROOT)] == pth.read_text(encoding="utf-8").split()


def test_every_shell_example_in_the_docs_runs_from_a_fresh_clone() -> None:
    """No shell example in the README or docs starts with ``session-exporter`` or a bare
    ``python``: on a fresh clone neither has the exporter (it lives in ``.venv/bin``); the
    examples use ``make`` targets or ``.venv/bin/...``."""
    docs = [
        ROOT / "README.md",
        ROOT / "deploy" / "README.md",
        *sorted((ROOT / "docs").glob("*.md")),
    ]
    bare = []
    for doc in docs:
        for block in re.findall(r"```(?:sh|bash|shell|console)\n(.*?)```", doc.read_text(), re.S):
            for line in block.splitlines():
                words = line.split()
                if words and words[0] in ("session-exporter", "python", "python3"):
                    bare.append(f"{doc.relative_to(ROOT)}: {line}")

    assert [] == bare
