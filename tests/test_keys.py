"""Key handling at poll time: rotation through api_key_file, hostile key files, and the
plain-http warning."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from exporter.polling.poller import TargetPoller
from exporter.polling.runtime import new_store
from exporter.simulators import ChaserSimulator, chaser_row, iso
from exporter.upstream.client import new_client_session
from tests.conftest import Serve
from tests.harness import poll_all, settings_for

KEY_FILE_MAX_BYTES = 64 * 1024  # exporter.providers.target.KEY_FILE_MAX_BYTES, the documented cap
T = 1_767_225_600.0  # a fixed "now" (2026-01-01): nothing here depends on the wall clock
ROWS = [chaser_row("a", "running", iso(T))]


async def test_rotated_key_file_is_used_without_restart(tmp_path: Path, served: Serve) -> None:
    """A new key written to api_key_file is used by the next poll; no restart, no reload."""
    key_file = tmp_path / "key"
    key_file.write_text("old-key-123456\n", encoding="utf-8")
    sim = ChaserSimulator(sessions=ROWS, api_key="old-key-123456")
    url = await served(sim)
    settings = settings_for(
        {"name": "c", "provider": "chaser", "base_url": url, "api_key_file": str(key_file)}
    )
    store = await poll_all(settings)
    assert store.snapshots["c"].up

    sim.api_key = "new-key-654321"
    await poll_all(settings, store=store)
    rejected = store.snapshots["c"]
    key_file.write_text("new-key-654321\n", encoding="utf-8")
    await poll_all(settings, store=store)

    assert "auth" == (rejected.error_reason and rejected.error_reason.value)
    assert store.snapshots["c"].up


async def test_unreadable_key_file_at_poll_time_is_reason_key(
    tmp_path: Path, served: Serve
) -> None:
    """A key file that vanishes after start fails the poll with reason key, naming the file."""
    key_file = tmp_path / "key"
    key_file.write_text("some-key-123456", encoding="utf-8")
    url = await served(ChaserSimulator(sessions=ROWS, api_key="some-key-123456"))
    settings = settings_for(
        {"name": "c", "provider": "chaser", "base_url": url, "api_key_file": str(key_file)}
    )
    key_file.unlink()

    store = await poll_all(settings)

    snap = store.snapshots["c"]
    assert "key" == (snap.error_reason and snap.error_reason.value)
    assert f"cannot read api_key_file {key_file}: No such file or directory" == snap.error


async def test_plain_http_to_a_remote_host_warns_once() -> None:
    """http:// to a non-loopback host logs config.plain_http once per target; loopback does not."""
    settings = settings_for(
        {"name": "remote", "provider": "chaser", "base_url": "http://sessions.example.com"},
        {"name": "local", "provider": "chaser", "base_url": "http://127.0.0.1:9"},
        {"name": "local6", "provider": "chaser", "base_url": "http://[::1]:9"},
        {"name": "localname", "provider": "chaser", "base_url": "http://localhost:9"},
        {"name": "tls", "provider": "chaser", "base_url": "https://sessions.example.com"},
        {
            "name": "lookalike",
            "provider": "chaser",
            "base_url": "http://localhost.attacker.example",
        },
        {"name": "lookalike2", "provider": "chaser", "base_url": "http://127.attacker.example"},
    )
    async with new_client_session() as session:
        with capture_logs() as logs:
            for target in settings.targets:
                TargetPoller(target=target, interval=30, session=session, store=new_store(settings))

    warned = [e for e in logs if e["event"] == "config.plain_http"]
    assert [
        ("remote", "sessions.example.com"),
        ("lookalike", "localhost.attacker.example"),
        ("lookalike2", "127.attacker.example"),
    ] == [(e["target"], e["host"]) for e in warned]


def _fifo(path: Path) -> None:
    """A FIFO nobody writes to: a blocking open would wait forever, so a watchdog thread
    opens it for writing after a while, turning such a hang into a failed assert."""
    os.mkfifo(path)

    def rescue() -> None:
        with contextlib.suppress(OSError):  # ENXIO: nobody is waiting, as it should be
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))

    watchdog = threading.Timer(10.0, rescue)
    watchdog.daemon = True
    watchdog.start()


def _huge(path: Path) -> None:
    with path.open("wb") as out:  # sparse: 200 MB on paper, nothing on disk
        out.truncate(200 * 1024 * 1024)


def _just_over(path: Path) -> None:
    path.write_bytes(b"k" * (KEY_FILE_MAX_BYTES + 1))


def _directory(path: Path) -> None:
    path.mkdir()


def _binary(path: Path) -> None:
    path.write_bytes(b"\xff\xfe key")


def _two_lines(path: Path) -> None:
    path.write_bytes(b"key-123456\r\nX-Injected: 1\n")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_fifo, "api_key_file {path} is not a regular file (a FIFO)"),
        (_directory, "api_key_file {path} is not a regular file (a directory)"),
        (_huge, "api_key_file {path} is larger than 64 KiB: not a key"),
        (_just_over, "api_key_file {path} is larger than 64 KiB: not a key"),
        (_binary, "api_key_file {path} is not UTF-8 text"),
        (
            _two_lines,
            "api_key_file {path} contains a control character (CR, LF, NUL, ...): "
            "a key is one line of printable text",
        ),
    ],
    ids=["fifo", "directory", "200MB", "just-over-the-cap", "binary", "crlf"],
)
async def test_hostile_key_file_at_poll_time_is_reason_key(
    tmp_path: Path, served: Serve, make: Callable[[Path], None], message: str
) -> None:
    """A key file replaced after start by a FIFO, a directory, a huge or a multi-line file
    fails that target's poll with reason key at once (no hang, no big read, no crash), while
    a target with a good key is polled as usual."""
    key_file = tmp_path / "key"
    key_file.write_text("some-key-123456", encoding="utf-8")
    url = await served(ChaserSimulator(sessions=ROWS, api_key="some-key-123456"))
    settings = settings_for(
        {"name": "bad", "provider": "chaser", "base_url": url, "api_key_file": str(key_file)},
        {"name": "good", "provider": "chaser", "base_url": url, "api_key": "some-key-123456"},
    )
    key_file.unlink()
    make(key_file)

    store = await asyncio.wait_for(poll_all(settings), 30)

    snap = store.snapshots["bad"]
    assert "key" == (snap.error_reason and snap.error_reason.value)
    assert message.format(path=key_file) == snap.error
    assert store.snapshots["good"].up


async def test_dev_zero_as_key_file_is_reason_key(served: Serve) -> None:
    """/dev/zero (endless) is refused as a character device, not read into memory."""
    url = await served(ChaserSimulator(sessions=ROWS, api_key="k-123456"))
    settings = settings_for({"name": "c", "provider": "chaser", "base_url": url})
    target = settings.targets[0].model_copy(
        update={"api_key": None, "api_key_file": Path("/dev/zero")}
    )
    store = new_store(settings)
    async with new_client_session() as session:
        poller = TargetPoller(
            target=target, interval=30, session=session, store=store, clock=lambda: T
        )
        snap = await asyncio.wait_for(poller.poll(), 10)

    assert "key" == (snap.error_reason and snap.error_reason.value)
    assert "api_key_file /dev/zero is not a regular file (a character device)" == snap.error
