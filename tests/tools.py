"""External programs the deployment tests drive: found on PATH, or the test skips saying why.

CI installs Debian's ``prometheus``, ``prometheus-alertmanager`` and ``tinyproxy``
(``.ci/run``) and sets
``SESSION_EXPORTER_NO_SKIP=1``, which turns these skips into failures.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEBIAN_PACKAGE = {
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "amtool": "prometheus-alertmanager",
    "systemd-analyze": "systemd",
    "tinyproxy": "tinyproxy",
}


def require(name: str) -> str:
    """The path of program ``name``, or skip the test naming the package that provides it."""
    path = shutil.which(name)
    if path is None:
        package = DEBIAN_PACKAGE.get(name, name)
        pytest.skip(f"{name} not on PATH: install Debian's {package} (apt-get install {package})")
    return path


def run(
    args: Sequence[str], *, cwd: Path = ROOT, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run a program to completion, capturing its output as text (never raises on exit codes)."""
    return subprocess.run(
        list(args), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
