"""Key handling at poll time: rotation through api_key_file, and the plain-http warning."""

from __future__ import annotations

import time
from pathlib import Path

from structlog.testing import capture_logs

from exporter.poller import TargetPoller
from exporter.runtime import new_client_session, new_store
from exporter.simulators import ChaserSimulator, chaser_row, iso
from tests.conftest import Serve
from tests.harness import poll_all, settings_for

T = float(int(time.time()))
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
