"""The installed ``session-exporter`` console script, run as a real subprocess.

Simulators are served in this test's event loop while the exporter runs in a child
process, so every subprocess is driven through asyncio and bounded by timeouts: a hang
fails the test instead of blocking the suite.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from exporter import __version__
from exporter.cli.arguments import parser
from exporter.simulators import ChaserSimulator, Fault, NotteSimulator, chaser_row, notte_row
from tests.conftest import Serve
from tests.harness import Exposition, alias_bomb, console_script, free_port

KEY = "sk-test-cli-5e1f9a2b7c3d8e40"
WRONG_KEY = "sk-test-wrong-0a9b8c7d6e5f"
KEY_ENV = "SESSION_EXPORTER_TEST_CLI_KEY"
RUN_TIMEOUT = 30.0
READY_TIMEOUT = 15.0
STOP_LIMIT = 5.0

TARGET_LABELS = {"provider", "target"}
STATUS_LABELS = {"provider", "target", "status", "phase"}

CHASER_STATUSES = {
    "creating": "pending",
    "pending": "pending",
    "starting": "pending",
    "ready": "live",
    "running": "live",
    "active": "live",
    "idle": "live",
    "stopping": "live",
    "stopped": "ended",
    "terminated": "ended",
    "completed": "ended",
    "expired": "ended",
    "failed": "failed",
    "error": "failed",
}
NOTTE_STATUSES = {
    "authenticating": "pending",
    "active": "live",
    "closed": "ended",
    "timed_out": "ended",
    "error": "failed",
}


# --- running the console script --------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """What a finished command left behind."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any SESSION_EXPORTER_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_EXPORTER_")}
    env.update(extra or {})
    return env


async def run(
    *args: str,
    env: Mapping[str, str] | None = None,
    program: tuple[str, ...] | None = None,
    limit: float = RUN_TIMEOUT,
) -> Result:
    """Run the console script (or ``program``) to completion, bounded by ``limit`` seconds."""
    proc = await asyncio.create_subprocess_exec(
        *(program or (console_script(),)),
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=child_env(env),
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"{args} did not finish within {limit}s") from None
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` as a JSON object (a line that is not one fails the test)."""
    events = []
    for line in text.splitlines():
        event = json.loads(line)
        assert isinstance(event, dict), line
        events.append(event)
    return events


def labels_of(exposition: Exposition, name: str) -> set[frozenset[str]]:
    """The distinct label-name sets used by the series of ``name``."""
    return {frozenset(k for k, _ in labels) for labels in exposition.select(name)}


# --- a small dataset with unambiguous values --------------------------------------------


@dataclass(frozen=True)
class Dataset:
    """Two simulators with known sessions, relative to a whole-second ``base`` time."""

    base: int
    chaser: ChaserSimulator
    notte: NotteSimulator


def dataset(*, notte_key: str = KEY) -> Dataset:
    """Sessions whose metric values each come out only if the rules are applied exactly.

    Chaser (leases sum over pending+live, unleased counts live sessions with exactly 0):
    running x3 (one upper-case), idle with an unknown (null) lease count, pending x2
    (one with 0 leases, which is not "unleased": not live), stopped with 5 leases and
    an unknown status with 3 leases (both excluded). leases = 2+0+0+1+0 = 3, unleased = 2.

    Notte (all four statuses counted): an active session long past its idle deadline, an
    active one without max_duration_minutes (15 min default -> overdue), a fresh active
    one, two closed (with early deadlines that must not count) and one error.
    overdue = 2, next deadline = base - 3600 + 3 min.
    """
    base = int(time.time())
    chaser = ChaserSimulator(
        api_key=KEY,
        sessions=[
            chaser_row("c-run-1", "running", base - 600, 2),
            chaser_row("c-run-2", "running", base - 300, 0),
            chaser_row("c-run-3", "RUNNING", base - 900, 0),
            chaser_row("c-idle", "idle", base - 200, None),
            chaser_row("c-pend-1", "pending", base - 50, 1),
            chaser_row("c-pend-2", "pending", base - 20, 0),
            chaser_row("c-stop", "stopped", base - 9000, 5),
            chaser_row("c-odd", "Hibernating", base - 400, 3),
        ],
    )
    notte = NotteSimulator(
        api_key=notte_key,
        sessions=[
            notte_row(
                "n-over",
                "active",
                base - 3600,
                base - 3600,
                idle_timeout_minutes=3,
                max_duration_minutes=15,
            ),
            notte_row(
                "n-default",
                "active",
                base - 1000,
                base - 10,
                idle_timeout_minutes=60,
                max_duration_minutes=None,
            ),
            notte_row(
                "n-fresh",
                "active",
                base - 60,
                base - 30,
                idle_timeout_minutes=30,
                max_duration_minutes=120,
            ),
            notte_row(
                "n-closed-1",
                "closed",
                base - 7200,
                base - 7200,
                idle_timeout_minutes=3,
                max_duration_minutes=15,
            ),
            notte_row(
                "n-closed-2",
                "closed",
                base - 5000,
                base - 5000,
                idle_timeout_minutes=3,
                max_duration_minutes=15,
            ),
            notte_row(
                "n-err",
                "error",
                base - 100,
                base - 100,
                idle_timeout_minutes=3,
                max_duration_minutes=15,
            ),
        ],
    )
    return Dataset(base, chaser, notte)


def two_target_config(tmp_path: Path, chaser_url: str, notte_url: str) -> Path:
    return write_config(
        tmp_path,
        f"""
        poll_interval: 30s
        targets:
          - name: chaser-a
            provider: chaser
            base_url: {chaser_url}
            api_key: "{KEY}"
            page_size: 3
            timeout: 5s
          - name: notte-b
            provider: notte
            base_url: {notte_url}
            api_key_env: {KEY_ENV}
            only_active: false
            timeout: 5s
        """,
    )


def assert_chaser_data(exp: Exposition, base: int) -> None:
    """Every contract series of the Chaser target holds the dataset's exact values."""
    who = {"provider": "chaser", "target": "chaser-a"}
    expected_counts = dict.fromkeys(CHASER_STATUSES.items(), 0.0) | {
        ("running", "live"): 3.0,
        ("idle", "live"): 1.0,
        ("pending", "pending"): 2.0,
        ("stopped", "ended"): 1.0,
        ("hibernating", "unknown"): 1.0,
    }
    counts = {
        (dict(lbl)["status"], dict(lbl)["phase"]): v
        for lbl, v in exp.select("sessions", **who).items()
    }
    assert expected_counts == counts
    oldest = {
        (dict(lbl)["status"], dict(lbl)["phase"]): v
        for lbl, v in exp.select("sessions_oldest_created_timestamp_seconds", **who).items()
    }
    assert {
        ("running", "live"): base - 900.0,
        ("idle", "live"): base - 200.0,
        ("pending", "pending"): base - 50.0,
        ("stopped", "ended"): base - 9000.0,
        ("hibernating", "unknown"): base - 400.0,
    } == oldest
    assert 3.0 == exp.get("sessions_connection_leases", **who)
    assert 2.0 == exp.get("sessions_unleased", **who)
    assert exp.get("sessions_overdue", **who) is None
    assert exp.get("sessions_next_deadline_timestamp_seconds", **who) is None


def assert_notte_data(exp: Exposition, base: int) -> None:
    """Every contract series of the Notte target holds the dataset's exact values."""
    who = {"provider": "notte", "target": "notte-b"}
    counts = {
        (dict(lbl)["status"], dict(lbl)["phase"]): v
        for lbl, v in exp.select("sessions", **who).items()
    }
    assert {
        ("authenticating", "pending"): 0.0,
        ("active", "live"): 3.0,
        ("closed", "ended"): 2.0,
        ("timed_out", "ended"): 0.0,
        ("error", "failed"): 1.0,
    } == counts
    oldest = {
        (dict(lbl)["status"], dict(lbl)["phase"]): v
        for lbl, v in exp.select("sessions_oldest_created_timestamp_seconds", **who).items()
    }
    assert {
        ("active", "live"): base - 3600.0,
        ("closed", "ended"): base - 7200.0,
        ("error", "failed"): base - 100.0,
    } == oldest
    assert 2.0 == exp.get("sessions_overdue", **who)
    assert base - 3600.0 + 180.0 == exp.get("sessions_next_deadline_timestamp_seconds", **who)
    assert exp.get("sessions_connection_leases", **who) is None
    assert exp.get("sessions_unleased", **who) is None


def assert_contract_labels(exp: Exposition) -> None:
    """The contract's metrics carry exactly the labels it lists."""
    for name in ("sessions", "sessions_oldest_created_timestamp_seconds"):
        assert {frozenset(STATUS_LABELS)} == labels_of(exp, name), name
    for name in (
        "sessions_overdue",
        "sessions_next_deadline_timestamp_seconds",
        "sessions_connection_leases",
        "sessions_unleased",
        "sessions_target_up",
        "sessions_target_last_success_timestamp_seconds",
    ):
        assert {frozenset(TARGET_LABELS)} == labels_of(exp, name), name


# --- check-config -----------------------------------------------------------------------


async def test_check_config_valid_lists_targets(tmp_path: Path) -> None:
    """A valid config exits 0 and lists each target with provider, url and interval."""
    path = write_config(
        tmp_path,
        f"""
        poll_interval: 1m30s
        targets:
          - name: chaser-a
            provider: chaser
            api_key: "{KEY}"
          - name: notte-b
            provider: notte
            base_url: http://127.0.0.1:9/
            api_key_env: {KEY_ENV}
            poll_interval: 10s
        """,
    )
    result = await run("check-config", "--config", str(path), env={KEY_ENV: KEY})
    assert 0 == result.returncode, result.stderr
    assert [
        "config ok: 2 target(s)",
        "  chaser-a: chaser at https://api.chaser.sh, every 1m30s",
        "  notte-b: notte at http://127.0.0.1:9, every 10s",
    ] == result.stdout.splitlines()
    assert KEY not in result.output


async def test_check_config_invalid_prints_every_problem(tmp_path: Path) -> None:
    """An invalid config exits 2 with one located problem per stderr line and no traceback."""
    path = write_config(
        tmp_path,
        f"""
        poll_interval: often
        targets:
          - name: chaser-a
            provider: chaser
            api_key: "{KEY}"
            page_size: 0
          - name: chaser-a
            provider: notte
            api_key: "{KEY}"
            only_active: maybe
          - name: no-key
            provider: notte
            api_key_env: {KEY_ENV}
        """,
    )
    result = await run("check-config", "--config", str(path))
    assert 2 == result.returncode
    assert "" == result.stdout
    units = "use a number of seconds or units like 500ms, 30s, 5m, 1h, 1d, 1m30s"
    assert [
        f"{path}:1:16: poll_interval: invalid duration 'often': {units}",
        f"{path}:6:16: targets[0].page_size: must be at least 1",
        f"{path}:7:11: targets[1].name: duplicate target name 'chaser-a' "
        "(first used by targets[0])",
        f"{path}:10:18: targets[1].only_active: must be true or false, not 'maybe'",
        f"{path}:13:18: targets[2].api_key_env: environment variable {KEY_ENV} "
        "named by api_key_env is unset or empty",
    ] == result.stderr.splitlines()
    assert "Traceback" not in result.output
    assert KEY not in result.output


async def test_check_config_yaml_error_is_one_line(tmp_path: Path) -> None:
    """Broken YAML is reported on one line with its line:column, exit 2, no traceback."""
    path = write_config(tmp_path, f'targets:\n  - name: a\n    api_key: "{KEY}\n')
    result = await run("check-config", "--config", str(path))
    assert 2 == result.returncode
    assert [f"{path}:3:14: a quoted value is never closed: add the closing quote on this line"] == (
        result.stderr.splitlines()
    )
    assert KEY not in result.output


def _fifo_file(tmp_path: Path) -> Path:
    path = tmp_path / "fifo-key"
    os.mkfifo(path)  # nobody writes: a blocking open would wait forever
    return path


def _huge_file(tmp_path: Path) -> Path:
    path = tmp_path / "huge-key"
    with path.open("wb") as out:  # sparse: 200 MB on paper
        out.truncate(200 * 1024 * 1024)
    return path


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (_fifo_file, "is not a regular file (a FIFO)"),
        (lambda _: Path("/dev/zero"), "is not a regular file (a character device)"),
        (lambda tmp: tmp, "is not a regular file (a directory)"),
        (_huge_file, "is larger than 64 KiB: not a key"),
    ],
    ids=["fifo", "dev-zero", "directory", "200MB"],
)
@pytest.mark.parametrize("command", ["check-config", "serve"])
async def test_hostile_key_file_is_exit_2_at_once(
    tmp_path: Path, make: Any, why: str, command: str
) -> None:
    """A FIFO, /dev/zero, a directory or a huge file as api_key_file: check-config and serve
    exit 2 with the located problem within the run bound (no hang, no MemoryError traceback)."""
    key_file = make(tmp_path)
    path = write_config(
        tmp_path,
        f"""
        targets:
          - name: c
            provider: chaser
            api_key_file: {key_file}
        """,
    )
    args = ("--listen", f"127.0.0.1:{free_port()}") if command == "serve" else ()

    result = await run(command, "--config", str(path), *args, limit=20)

    assert 2 == result.returncode, result.output
    assert [f"{path}:4:19: targets[0].api_key_file: api_key_file {key_file} {why}"] == (
        result.stderr.splitlines()
    )


@pytest.mark.parametrize("which", ["config", "web-config"])
async def test_check_config_on_an_alias_bomb_exits_2_at_once(tmp_path: Path, which: str) -> None:
    """check-config on a 510-byte alias bomb (config or web config) exits 2 with one located
    line within a few seconds; it used to follow the aliases for minutes."""
    good = write_config(tmp_path, f'targets: [{{name: c, provider: chaser, api_key: "{KEY}"}}]\n')
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb(), encoding="utf-8")
    args: tuple[str, ...] = ("--config", str(bomb))
    if which == "web-config":
        args = ("--config", str(good), "--web.config.file", str(bomb))

    started = time.monotonic()
    result = await run("check-config", *args, limit=20)

    assert 2 == result.returncode, result.output
    assert [
        f"{bomb}:7:7: too many YAML nodes: this expands to more than 100,000 with its aliases "
        "(an alias bomb?); write the values out or use fewer aliases"
    ] == result.stderr.splitlines()
    assert time.monotonic() - started < 20


async def test_missing_config_is_a_one_line_usage_error() -> None:
    """Without --config and SESSION_EXPORTER_CONFIG every config command exits 2 on one line."""
    for command in ("check-config", "once", "serve"):
        result = await run(command)
        assert 2 == result.returncode, command
        assert [
            "config: no config file given: pass --config FILE or set SESSION_EXPORTER_CONFIG"
        ] == result.stderr.splitlines(), command
        assert "" == result.stdout


async def test_nonexistent_config_file(tmp_path: Path) -> None:
    """A --config that does not exist is one line naming it, exit 2."""
    path = tmp_path / "absent.yaml"
    result = await run("check-config", "--config", str(path))
    assert 2 == result.returncode
    assert [f"{path}: cannot read: No such file or directory"] == result.stderr.splitlines()


async def test_config_from_environment_variable(tmp_path: Path) -> None:
    """SESSION_EXPORTER_CONFIG names the config when --config is absent."""
    path = write_config(
        tmp_path,
        f"""
        targets:
          - name: env-chosen
            provider: notte
            api_key: "{KEY}"
        """,
    )
    result = await run("check-config", env={"SESSION_EXPORTER_CONFIG": str(path)})
    assert 0 == result.returncode, result.stderr
    assert "  env-chosen: notte at https://api.notte.cc, every 30s" in result.stdout.splitlines()


async def test_config_argument_wins_over_environment(tmp_path: Path) -> None:
    """--config takes precedence over SESSION_EXPORTER_CONFIG."""
    path = write_config(
        tmp_path,
        f"""
        targets:
          - name: from-flag
            provider: chaser
            api_key: "{KEY}"
        """,
    )
    result = await run(
        "check-config",
        "--config",
        str(path),
        env={"SESSION_EXPORTER_CONFIG": str(tmp_path / "absent.yaml")},
    )
    assert 0 == result.returncode, result.stderr
    assert "from-flag" in result.stdout


async def test_environment_override_error_names_the_variable(tmp_path: Path) -> None:
    """A bad SESSION_EXPORTER_* override is reported at the variable, exit 2."""
    path = write_config(
        tmp_path,
        f"""
        targets:
          - name: a
            provider: chaser
            api_key: "{KEY}"
        """,
    )
    result = await run(
        "check-config", "--config", str(path), env={"SESSION_EXPORTER_POLL_INTERVAL": "-5s"}
    )
    assert 2 == result.returncode
    assert [
        "environment SESSION_EXPORTER_POLL_INTERVAL: poll_interval: invalid duration '-5s': "
        "use a number of seconds or units like 500ms, 30s, 5m, 1h, 1d, 1m30s"
    ] == result.stderr.splitlines()


async def test_unparsable_targets_json_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    """SESSION_EXPORTER_TARGETS that is not JSON exits 2 with one line naming the variable."""
    path = write_config(
        tmp_path,
        f"""
        targets:
          - name: a
            provider: chaser
            api_key: "{KEY}"
        """,
    )
    result = await run(
        "check-config", "--config", str(path), env={"SESSION_EXPORTER_TARGETS": "[not json"}
    )
    assert 2 == result.returncode
    assert [
        "environment SESSION_EXPORTER_TARGETS: targets: "
        "cannot parse the value: a list or mapping must be valid JSON"
    ] == result.stderr.splitlines()
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("--bogus",),
        ("launch",),
        ("check-config", "--bogus"),
        ("once", "--log-level", "loud"),
        ("serve", "--listen"),
    ],
)
async def test_usage_errors_exit_2_with_one_line(args: tuple[str, ...]) -> None:
    """No subcommand, unknown subcommand/flag or a bad flag value: exit 2, a single line."""
    result = await run(*args)
    assert 2 == result.returncode
    lines = result.stderr.splitlines()
    assert 1 == len(lines), result.stderr
    assert lines[0].startswith("session-exporter")
    assert "Traceback" not in result.output


async def test_bad_listen_flag_is_a_usage_error(tmp_path: Path) -> None:
    """serve --listen with an impossible address exits 2 on one line before starting."""
    path = write_config(
        tmp_path,
        f"""
        targets:
          - name: a
            provider: chaser
            api_key: "{KEY}"
        """,
    )
    result = await run("serve", "--config", str(path), "--listen", "127.0.0.1:99999")
    assert 2 == result.returncode
    assert [
        "session-exporter: listen must be HOST:PORT, got '127.0.0.1:99999'"
    ] == result.stderr.splitlines()


async def test_version() -> None:
    """`python -m exporter --version` and the console script print the same version."""
    module = await run("--version", program=(sys.executable, "-m", "exporter"))
    script = await run("--version")
    assert 0 == module.returncode
    assert 0 == script.returncode
    assert f"session-exporter {__version__}" == module.stdout.strip()
    assert module.stdout == script.stdout


@pytest.mark.parametrize("command", ["once", "serve"])
async def test_serve_and_once_refuse_a_missing_key_like_check_config(
    tmp_path: Path, command: str
) -> None:
    """An unset api_key_env stops once/serve before starting, with check-config's message."""
    path = write_config(
        tmp_path,
        f"""
        targets:
          - name: a
            provider: notte
            api_key_env: {KEY_ENV}
            base_url: http://127.0.0.1:{free_port()}
        """,
    )
    checked = await run("check-config", "--config", str(path))
    listen = ("--listen", f"127.0.0.1:{free_port()}") if command == "serve" else ()
    result = await run(command, "--config", str(path), *listen)
    assert 2 == result.returncode
    assert checked.stderr == result.stderr
    assert [
        f"{path}:4:18: targets[0].api_key_env: environment variable {KEY_ENV} "
        "named by api_key_env is unset or empty"
    ] == result.stderr.splitlines()
    assert "" == result.stdout


# --- once -------------------------------------------------------------------------------


async def test_once_prints_every_contract_metric(tmp_path: Path, served: Serve) -> None:
    """`once` against a Chaser and a Notte simulator exits 0 with exact values for both."""
    data = dataset()
    path = two_target_config(tmp_path, await served(data.chaser), await served(data.notte))
    started = time.time()
    result = await run("once", "--config", str(path), "--log-level", "debug", env={KEY_ENV: KEY})
    finished = time.time()
    assert 0 == result.returncode, result.stderr

    exp = Exposition.parse(result.stdout)
    assert_chaser_data(exp, data.base)
    assert_notte_data(exp, data.base)
    assert_contract_labels(exp)
    for provider, target in (("chaser", "chaser-a"), ("notte", "notte-b")):
        assert 1.0 == exp.get("sessions_target_up", provider=provider, target=target)
        last = exp.get(
            "sessions_target_last_success_timestamp_seconds", provider=provider, target=target
        )
        assert last is not None
        assert started <= last <= finished
    # Chaser paged with page_size 3: 8 sessions in 3 pages
    assert [str(o) for o in (0, 3, 6)] == [r.query["offset"] for r in data.chaser.requests]
    assert all(r.authorized for r in data.chaser.requests + data.notte.requests)

    events = json_lines(result.stderr)
    assert events, "debug logging should report the polls"
    assert KEY not in result.output


async def test_once_with_a_failing_target(tmp_path: Path, served: Serve) -> None:
    """One target answering 500: exit 1, both health series, the good target's data intact."""
    data = dataset()
    data.notte.fault = Fault(status=500)
    path = two_target_config(tmp_path, await served(data.chaser), await served(data.notte))
    result = await run("once", "--config", str(path), env={KEY_ENV: KEY})
    assert 1 == result.returncode, result.stderr

    exp = Exposition.parse(result.stdout)
    assert_chaser_data(exp, data.base)
    notte = {"provider": "notte", "target": "notte-b"}
    assert 1.0 == exp.get("sessions_target_up", provider="chaser", target="chaser-a")
    assert 0.0 == exp.get("sessions_target_up", **notte)
    assert exp.get("sessions_target_last_success_timestamp_seconds", **notte) is None
    assert {} == exp.select("sessions", **notte)
    assert {} == exp.select("sessions_overdue", **notte)
    assert 1.0 == exp.get("sessions_exporter_poll_errors_total", reason="http_5xx", **notte)

    events = json_lines(result.stderr)
    failed = [e for e in events if e.get("event") == "poll.failed"]
    assert ["notte-b"] == [e.get("target") for e in failed]
    assert KEY not in result.output


async def test_once_with_a_wrong_key(tmp_path: Path, served: Serve) -> None:
    """A rejected key fails that target (reason auth, exit 1) and is never printed."""
    data = dataset(notte_key=WRONG_KEY)
    path = two_target_config(tmp_path, await served(data.chaser), await served(data.notte))
    result = await run("once", "--config", str(path), env={KEY_ENV: KEY})
    assert 1 == result.returncode, result.stderr

    exp = Exposition.parse(result.stdout)
    notte = {"provider": "notte", "target": "notte-b"}
    assert 1.0 == exp.get("sessions_target_up", provider="chaser", target="chaser-a")
    assert 0.0 == exp.get("sessions_target_up", **notte)
    assert exp.get("sessions_target_last_success_timestamp_seconds", **notte) is None
    assert 1.0 == exp.get("sessions_exporter_poll_errors_total", reason="auth", **notte)
    assert_chaser_data(exp, data.base)
    json_lines(result.stderr)
    assert KEY not in result.output
    assert WRONG_KEY not in result.output


# --- serve ------------------------------------------------------------------------------


@dataclass
class Server:
    """A running `serve` child process and where it listens."""

    proc: asyncio.subprocess.Process
    base: str
    stderr_path: Path

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")


@asynccontextmanager
async def serving(
    tmp_path: Path,
    config: Path,
    env: Mapping[str, str] | None = None,
    *,
    listen_from_env: bool = False,
    aliases: bool = False,
    extra: tuple[str, ...] = (),
) -> AsyncIterator[Server]:
    """Start `serve` on a free loopback port; kill it on the way out if still running.

    The port is given with --listen, or with ``listen_from_env`` as SESSION_EXPORTER_LISTEN;
    with ``aliases`` the Prometheus spellings (--config.file, --web.listen-address) are used.
    """
    port = free_port()
    listen = f"127.0.0.1:{port}"
    config_flag, listen_flag = (
        ("--config.file", "--web.listen-address")
        if aliases
        else (
            "--config",
            "--listen",
        )
    )
    flags = (() if listen_from_env else (listen_flag, listen)) + extra
    env = {**(env or {}), **({"SESSION_EXPORTER_LISTEN": listen} if listen_from_env else {})}
    out_path, err_path = tmp_path / "serve.out", tmp_path / "serve.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            console_script(),
            "serve",
            config_flag,
            str(config),
            *flags,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=child_env(env),
        )
    try:
        yield Server(proc, f"http://127.0.0.1:{port}", err_path)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def wait_ready(http: aiohttp.ClientSession, server: Server) -> None:
    """Poll /readyz until 200, failing after READY_TIMEOUT or if the process exits."""
    deadline = time.monotonic() + READY_TIMEOUT
    last = "no answer"
    while time.monotonic() < deadline:
        if server.proc.returncode is not None:
            raise AssertionError(f"serve exited with {server.proc.returncode}: {server.stderr()}")
        try:
            async with http.get(f"{server.base}/readyz") as response:
                last = f"{response.status} {await response.text()}"
                if response.status == 200:
                    return
        except aiohttp.ClientConnectionError as exc:
            last = repr(exc)
        await asyncio.sleep(0.05)
    raise AssertionError(f"not ready within {READY_TIMEOUT}s (last: {last}): {server.stderr()}")


async def get_text(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with http.get(url) as response:
        return response.status, await response.text()


async def stop(server: Server, sig: signal.Signals) -> float:
    """Send ``sig`` and return how long the process took to exit (bounded)."""
    started = time.monotonic()
    server.proc.send_signal(sig)
    try:
        await asyncio.wait_for(server.proc.wait(), STOP_LIMIT * 2)
    except TimeoutError:
        raise AssertionError(f"serve ignored {sig.name}: {server.stderr()}") from None
    return time.monotonic() - started


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_serve_end_to_end_and_graceful_stop(
    tmp_path: Path, served: Serve, sig: signal.Signals
) -> None:
    """serve becomes ready, serves the data on /metrics and / and stops cleanly on a signal."""
    data = dataset()
    path = two_target_config(tmp_path, await served(data.chaser), await served(data.notte))
    async with (
        serving(tmp_path, path, env={KEY_ENV: KEY}) as server,
        aiohttp.ClientSession() as http,
    ):
        await wait_ready(http, server)

        status, body = await get_text(http, f"{server.base}/metrics")
        assert 200 == status
        exp = Exposition.parse(body)
        assert_chaser_data(exp, data.base)
        assert_notte_data(exp, data.base)
        assert_contract_labels(exp)
        assert 1.0 == exp.get("sessions_target_up", provider="chaser", target="chaser-a")
        assert 1.0 == exp.get("sessions_target_up", provider="notte", target="notte-b")

        status, page = await get_text(http, f"{server.base}/")
        assert 200 == status
        assert __version__ in page
        assert "chaser-a" in page
        assert "notte-b" in page

        status, _ = await get_text(http, f"{server.base}/healthz")
        assert 200 == status

        # the scrape connection is still open (keep-alive) when the signal arrives
        took = await stop(server, sig)
        assert 0 == server.proc.returncode, server.stderr()
        assert took < STOP_LIMIT

    log = server.stderr()
    events = json_lines(log)
    assert "server.started" in [e.get("event") for e in events]
    assert "Traceback" not in log
    assert KEY not in log


async def test_serve_with_unreachable_target_becomes_ready(tmp_path: Path) -> None:
    """A target on a closed port still lets /readyz turn 200, with up 0 and a connect error."""
    path = write_config(
        tmp_path,
        f"""
        targets:
          - name: gone
            provider: chaser
            base_url: http://127.0.0.1:{free_port()}
            api_key: "{KEY}"
            timeout: 5s
        """,
    )
    async with serving(tmp_path, path) as server, aiohttp.ClientSession() as http:
        await wait_ready(http, server)
        status, body = await get_text(http, f"{server.base}/metrics")
        assert 200 == status
        exp = Exposition.parse(body)
        who = {"provider": "chaser", "target": "gone"}
        assert 0.0 == exp.get("sessions_target_up", **who)
        assert 1.0 == exp.get("sessions_exporter_poll_errors_total", reason="connect", **who)
        assert exp.get("sessions_target_last_success_timestamp_seconds", **who) is None
        assert {} == exp.select("sessions", **who)

        status, page = await get_text(http, f"{server.base}/")
        assert 200 == status
        assert "gone" in page
        assert "connect" in page

        took = await stop(server, signal.SIGTERM)
        assert 0 == server.proc.returncode, server.stderr()
        assert took < STOP_LIMIT
    assert KEY not in server.stderr()


async def test_serve_listens_where_the_environment_says(tmp_path: Path, served: Serve) -> None:
    """Without --listen, SESSION_EXPORTER_LISTEN overrides the file's listen address."""
    chaser = ChaserSimulator(api_key=KEY)
    path = write_config(
        tmp_path,
        f"""
        listen: "127.0.0.1:{free_port()}"
        targets:
          - name: only
            provider: chaser
            base_url: {await served(chaser)}
            api_key: "{KEY}"
        """,
    )
    async with (
        serving(tmp_path, path, listen_from_env=True) as server,
        aiohttp.ClientSession() as http,
    ):
        await wait_ready(http, server)
        status, body = await get_text(http, f"{server.base}/metrics")
        assert 200 == status
        exp = Exposition.parse(body)
        assert 1.0 == exp.get("sessions_target_up", provider="chaser", target="only")
        assert 0.0 == exp.get("sessions", target="only", status="running")
        took = await stop(server, signal.SIGTERM)
        assert 0 == server.proc.returncode, server.stderr()
        assert took < STOP_LIMIT


async def test_key_echoed_by_the_provider_is_not_shown(tmp_path: Path, served: Serve) -> None:
    """A provider error body that repeats the key does not carry it into logs or pages.

    Some APIs answer 401 with "invalid API key <key>"; the poll error is shown on the
    landing page and logged, and neither may reveal the key.
    """
    chaser = ChaserSimulator(api_key=KEY)
    chaser.fault = Fault(status=401, body=json.dumps({"detail": f"invalid key {KEY}"}).encode())
    path = write_config(
        tmp_path,
        f"""
        targets:
          - name: echo
            provider: chaser
            base_url: {await served(chaser)}
            api_key: "{KEY}"
        """,
    )
    async with serving(tmp_path, path) as server, aiohttp.ClientSession() as http:
        await wait_ready(http, server)
        _, body = await get_text(http, f"{server.base}/metrics")
        _, page = await get_text(http, f"{server.base}/")
        took = await stop(server, signal.SIGTERM)
        assert took < STOP_LIMIT
    assert KEY not in body
    assert KEY not in server.stderr()
    assert "auth" in page
    assert KEY not in page


async def test_serve_stops_promptly_during_a_hanging_poll(tmp_path: Path, served: Serve) -> None:
    """SIGTERM while a poll waits on a stalled provider still exits 0 within 5 s.

    Until that first poll ends /readyz answers 503 naming the target.
    """
    notte = NotteSimulator(api_key=KEY)
    notte.fault = Fault(delay=60)
    url = await served(notte)
    path = write_config(
        tmp_path,
        f"""
        targets:
          - name: stalled
            provider: notte
            base_url: {url}
            api_key: "{KEY}"
            timeout: 60s
        """,
    )
    async with serving(tmp_path, path) as server, aiohttp.ClientSession() as http:
        deadline = time.monotonic() + READY_TIMEOUT
        while not notte.requests:
            assert time.monotonic() < deadline, f"no poll arrived: {server.stderr()}"
            assert server.proc.returncode is None, server.stderr()
            await asyncio.sleep(0.05)
        status, text = await get_text(http, f"{server.base}/readyz")
        assert 503 == status
        assert "stalled" in text

        took = await stop(server, signal.SIGTERM)
        assert 0 == server.proc.returncode, server.stderr()
        assert took < STOP_LIMIT


async def test_serve_on_a_busy_port_fails_without_traceback(tmp_path: Path) -> None:
    """A listen address already in use is reported on one line, not as a traceback."""
    path = write_config(
        tmp_path,
        f"""
        targets:
          - name: a
            provider: chaser
            base_url: http://127.0.0.1:{free_port()}
            api_key: "{KEY}"
        """,
    )
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = await run("serve", "--config", str(path), "--listen", f"127.0.0.1:{port}")
    assert 0 != result.returncode
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith(
        f"session-exporter: cannot listen on 127.0.0.1:{port}: "
    ), result.stderr
    assert "address already in use" in result.stderr.splitlines()[-1].lower()
    assert KEY not in result.output


# --- the command line an operator expects -----------------------------------------------


async def test_prometheus_flag_spellings_run_serve(tmp_path: Path, served: Serve) -> None:
    """--config.file, --web.listen-address, --log.level and --log.format work like the originals."""
    data = dataset()
    path = two_target_config(tmp_path, await served(data.chaser), await served(data.notte))
    async with (
        serving(
            tmp_path,
            path,
            env={KEY_ENV: KEY},
            aliases=True,
            extra=("--log.level", "debug", "--log.format", "json"),
        ) as server,
        aiohttp.ClientSession() as http,
    ):
        await wait_ready(http, server)
        status, body = await get_text(http, f"{server.base}/metrics")
        took = await stop(server, signal.SIGTERM)

    assert 200 == status
    assert_chaser_data(Exposition.parse(body), data.base)
    assert 0 == server.proc.returncode, server.stderr()
    assert took < STOP_LIMIT
    events = json_lines(server.stderr())  # --log.format json: every line is a JSON object
    assert "debug" in {e["level"] for e in events}  # --log.level debug


@pytest.mark.parametrize("command", ["once", "check-config"])
async def test_config_file_alias_for_once_and_check_config(
    tmp_path: Path, served: Serve, command: str
) -> None:
    """`--config.file` is accepted wherever `--config` is."""
    chaser = ChaserSimulator(sessions=[chaser_row("c1", "running", 1_700_000_000)], api_key=KEY)
    path = write_config(
        tmp_path,
        f"""
        targets:
          - name: only
            provider: chaser
            base_url: {await served(chaser)}
            api_key: "{KEY}"
        """,
    )
    result = await run(command, "--config.file", str(path))
    assert 0 == result.returncode, result.output
    if command == "once":
        assert 1.0 == Exposition.parse(result.stdout).get("sessions", status="running")
    else:
        assert result.stdout.startswith("config ok: 1 target(s)")


@pytest.mark.parametrize("command", ["serve", "once", "check-config", "demo", "healthcheck"])
async def test_help_shows_defaults_variables_and_exit_codes(command: str) -> None:
    """Every option has help text; defaults, the environment variables and exit codes are shown."""
    result = await run(command, "--help")
    assert 0 == result.returncode
    text = " ".join(result.stdout.split())  # argparse wraps to the terminal width
    assert "exit codes:" in text
    assert "(default:" in text
    if command in ("serve", "once"):
        assert "--log-level LEVEL, --log.level LEVEL" in text
        assert "--log-format FORMAT, --log.format FORMAT" in text
        assert "SESSION_EXPORTER_CONFIG" in text
    if command == "serve":
        assert "--listen HOST:PORT, --web.listen-address HOST:PORT" in text
        assert "(default: the config's listen, 0.0.0.0:9864)" in text
        assert "1 cannot listen" in text
    if command == "demo":
        assert "(default: 127.0.0.1:9864, this machine only)" in text


def test_every_option_has_help_text() -> None:
    """No option of any command is left without a help string (argparse shows none then)."""
    top = parser()
    subcommands = next(
        a
        for a in top._actions
        if a.dest == "command"  # argparse has no API for its actions
    )
    missing = [
        f"{name} {action.option_strings[0]}"
        for name, sub in subcommands.choices.items()  # type: ignore[union-attr]
        for action in sub._actions
        if action.option_strings and not action.help
    ]
    assert [] == missing


async def test_version_does_not_import_the_server_stack() -> None:
    """`--version` through the console script loads neither aiohttp, pydantic nor the exporter's
    own server modules (measured with -X importtime, which lists every module imported)."""
    result = await run("-X", "importtime", console_script(), "--version", program=(sys.executable,))
    assert 0 == result.returncode
    assert f"session-exporter {__version__}" == result.stdout.strip()
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    heavy = {
        "aiohttp",
        "pydantic",
        "prometheus_client",
        "structlog",
        "yaml",
        "exporter.cli.commands",
    }
    assert set() == heavy & imported
    assert "exporter.cli.arguments" in imported


async def test_misspelt_variable_is_warned_about(tmp_path: Path) -> None:
    """check-config names a SESSION_EXPORTER_* variable that is no setting, with a suggestion."""
    path = write_config(
        tmp_path,
        f"""
        targets:
          - name: a
            provider: chaser
            api_key: "{KEY}"
        """,
    )
    result = await run(
        "check-config", "--config", str(path), env={"SESSION_EXPORTER_POLL_INTERVALL": "5s"}
    )
    assert 0 == result.returncode
    assert [
        "warning: environment SESSION_EXPORTER_POLL_INTERVALL: not a setting, so it is ignored "
        "(did you mean SESSION_EXPORTER_POLL_INTERVAL?)"
    ] == result.stderr.splitlines()
    assert "every 30s" in result.stdout  # the misspelt value was not applied


async def test_misspelt_config_variable_is_named_when_no_config_is_found() -> None:
    """Without a config, the error is followed by the likely typo of SESSION_EXPORTER_CONFIG."""
    result = await run("check-config", env={"SESSION_EXPORTER_CONFG": "/etc/x.yaml"})
    assert 2 == result.returncode
    assert [
        "config: no config file given: pass --config FILE or set SESSION_EXPORTER_CONFIG",
        "warning: environment SESSION_EXPORTER_CONFG: not a setting, so it is ignored "
        "(did you mean SESSION_EXPORTER_CONFIG?)",
    ] == result.stderr.splitlines()


async def test_check_config_on_deep_nesting_exits_2_without_a_traceback(tmp_path: Path) -> None:
    """check-config on a YAML nested 5,000 deep exits 2 with one located line; it used to
    print a RecursionError traceback and exit 1."""
    path = write_config(tmp_path, "deep: " + "[" * 5_000 + "]" * 5_000 + "\n")

    result = await run("check-config", "--config", str(path))

    assert 2 == result.returncode, result.stderr
    assert [
        f"{path}:1:70: nested more than 64 levels deep: a config needs 5"
    ] == result.stderr.splitlines()


async def test_a_target_variable_naming_several_targets_is_an_error(tmp_path: Path) -> None:
    """``SESSION_EXPORTER_TARGETS__PROD_A__TIMEOUT`` with targets ``prod-a``, ``prod.a`` and
    ``PROD_A`` is one problem naming all three (exit 2); it used to set the first one's
    timeout silently."""
    path = write_config(
        tmp_path,
        "targets:\n"
        + "".join(
            f'  - {{name: "{name}", provider: chaser, api_key: "{KEY}"}}\n'
            for name in ("prod-a", "prod.a", "PROD_A")
        ),
    )

    result = await run(
        "check-config",
        "--config",
        str(path),
        env={"SESSION_EXPORTER_TARGETS__PROD_A__TIMEOUT": "7s"},
    )

    assert 2 == result.returncode, result.stderr
    assert [
        "environment SESSION_EXPORTER_TARGETS__PROD_A__TIMEOUT: 'PROD_A' names 3 targets "
        "(targets[0] 'prod-a', targets[1] 'prod.a', targets[2] 'PROD_A'): give its index"
    ] == result.stderr.splitlines()


async def test_a_poll_interval_under_a_second_is_a_located_warning(tmp_path: Path) -> None:
    """``poll_interval: 1ms`` (meant for ``1m``) is accepted with a located warning that says
    what it does and suggests ``1m``; a target's own 500ms is warned of too. It used to be
    accepted silently (polling 1,000 times a second)."""
    path = write_config(
        tmp_path,
        f"""
        poll_interval: 1ms
        targets:
          - name: a
            provider: chaser
            api_key: "{KEY}"
            poll_interval: 500ms
            stale_after: 1m
        """,
    )

    result = await run("check-config", "--config", str(path))

    assert 0 == result.returncode, result.stderr
    assert [
        f"warning: {path}:1:16: poll_interval: 0.001s is shorter than 1s (did you mean 1m?): "
        "each target it applies to is polled 1000 times a second",
        f"warning: {path}:6:20: targets[0].poll_interval: 0.5s is shorter than 1s: "
        "each target it applies to is polled 2 times a second",
    ] == result.stderr.splitlines()
