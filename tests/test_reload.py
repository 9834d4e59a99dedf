"""Reloading the config: validated first, targets added, removed and changed without a restart."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from structlog.testing import capture_logs

import exporter.providers.target as target_module
from exporter.config.settings import load_settings
from exporter.polling.runtime import new_store
from exporter.polling.state import Store
from exporter.polling.supervisor import Supervisor
from exporter.simulators import AgiSimulator, ChaserSimulator, agi_row, chaser_row, iso
from exporter.upstream.client import new_client_session
from tests.conftest import Serve
from tests.harness import KEY, NOW, Exposition, alias_bomb, console_script, free_port, scrape

T = NOW  # a fixed "now" for the data: nothing here reads the wall clock at import


def config(path: Path, *targets: str, interval: str = "50ms") -> Path:
    """Write a config with ``targets`` (YAML list items) and return its path."""
    path.write_text(f"poll_interval: {interval}\ntargets:\n" + "".join(targets), encoding="utf-8")
    return path


def target(name: str, provider: str, url: str, extra: str = "") -> str:
    """One YAML target item."""
    return (
        f"  - name: {name}\n    provider: {provider}\n    base_url: {url}\n"
        f'    api_key: "{KEY}"\n{extra}'
    )


async def until(store: Store, *names: str) -> None:
    """Wait (bounded) until every named target has polled successfully."""
    async with asyncio.timeout(5):
        while not all(n in store.snapshots and store.snapshots[n].up for n in names):
            await asyncio.sleep(0.01)


@pytest.fixture
async def urls(served: Serve) -> dict[str, str]:
    """Two Chaser accounts and one AGI account served on loopback."""
    return {
        "a": await served(
            ChaserSimulator(sessions=[chaser_row("a1", "running", iso(T))], api_key=KEY)
        ),
        "b": await served(
            ChaserSimulator(
                sessions=[chaser_row("b1", "running", iso(T)), chaser_row("b2", "idle", iso(T))],
                api_key=KEY,
            )
        ),
        "agi": await served(AgiSimulator(sessions=[agi_row("g1", "running", T)], api_key=KEY)),
    }


async def test_targets_added_removed_and_changed(tmp_path: Path, urls: dict[str, str]) -> None:
    """A reload stops removed targets, starts added ones, restarts changed ones only."""
    path = config(
        tmp_path / "c.yaml",
        target("keep", "chaser", urls["a"]),
        target("change", "chaser", urls["a"]),
        target("drop", "chaser", urls["a"]),
    )
    settings = load_settings(path)
    store = new_store(settings)
    async with new_client_session() as session:
        supervisor = Supervisor(settings=settings, session=session, store=store)
        supervisor.start()
        await until(store, "keep", "change", "drop")
        keep_task = supervisor.tasks()["keep"]
        hash_before = store.config.hash

        config(
            path,
            target("keep", "chaser", urls["a"]),
            target("change", "chaser", urls["b"]),
            target("new", "agi", urls["agi"]),
        )
        assert await supervisor.reload(path)
        await until(store, "keep", "change", "new")
        metrics = scrape(store)
        tasks = supervisor.tasks()
        await supervisor.stop()

    assert ["keep", "change", "new"] == list(store.snapshots)
    assert keep_task is tasks["keep"]
    assert {"keep", "change", "new"} == set(tasks)
    changed = metrics.by("sessions", "status", target="change")
    assert {"running": 1.0, "idle": 1.0} == {s: v for s, v in changed.items() if v}
    assert 1.0 == metrics.get("sessions", target="new", status="running")
    assert {} == metrics.select("sessions_target_up", target="drop")
    assert hash_before != store.config.hash
    assert hash_before != metrics.get("sessions_exporter_config_hash")
    assert 1.0 == metrics.get("sessions_exporter_config_last_reload_successful")
    assert 1.0 == metrics.get("sessions_exporter_config_reloads_total", result="success")
    assert all(task.done() for task in tasks.values())


async def test_invalid_config_keeps_the_old_one(tmp_path: Path, urls: dict[str, str]) -> None:
    """An invalid new config changes nothing; the failure is logged and counted."""
    path = config(tmp_path / "c.yaml", target("keep", "chaser", urls["a"]))
    settings = load_settings(path)
    store = new_store(settings)
    async with new_client_session() as session:
        supervisor = Supervisor(settings=settings, session=session, store=store)
        supervisor.start()
        await until(store, "keep")
        before = supervisor.tasks()["keep"]
        hash_before = store.config.hash
        path.write_text("poll_interval: soon\ntargets: []\n", encoding="utf-8")

        with capture_logs() as logs:
            assert not await supervisor.reload(path)
        metrics = scrape(store)
        after = supervisor.tasks()["keep"]
        await supervisor.stop()

    assert before is after
    assert settings is supervisor.settings
    assert hash_before == metrics.get("sessions_exporter_config_hash")
    assert 0.0 == metrics.get("sessions_exporter_config_last_reload_successful")
    assert 1.0 == metrics.get("sessions_exporter_config_reloads_total", result="failure")
    assert 1.0 == metrics.get("sessions_target_up", target="keep")
    failed = [e for e in logs if e["event"] == "config.reload_failed"]
    assert 1 == len(failed)
    assert 2 == len(failed[0]["problems"])


async def test_inherited_interval_change_restarts_the_target(
    tmp_path: Path, urls: dict[str, str]
) -> None:
    """A target is changed when the global interval it inherits changes."""
    path = config(tmp_path / "c.yaml", target("t", "chaser", urls["a"]), interval="1s")
    settings = load_settings(path)
    store = new_store(settings)
    async with new_client_session() as session:
        supervisor = Supervisor(settings=settings, session=session, store=store)
        supervisor.start()
        await until(store, "t")
        before = supervisor.tasks()["t"]
        config(path, target("t", "chaser", urls["a"]), interval="2s")

        assert await supervisor.reload(path)
        after = supervisor.tasks()["t"]
        await supervisor.stop()

    assert before is not after
    assert 6.0 == store.snapshots["t"].stale_after


async def test_many_reloads_leak_no_task(tmp_path: Path, urls: dict[str, str]) -> None:
    """Fifty reloads that swap targets in and out leave exactly one poll task per target: every
    task a reload replaced has ended, and no other poll task runs (counted by name, so the
    simulators' own connection handlers, which come and go, do not enter the count)."""
    path = config(tmp_path / "c.yaml", target("t0", "chaser", urls["a"]))
    settings = load_settings(path)
    store = new_store(settings)
    async with new_client_session() as session:
        supervisor = Supervisor(settings=settings, session=session, store=store)
        supervisor.start()
        replaced: list[asyncio.Task[None]] = []
        for i in range(1, 51):
            before = supervisor.tasks()
            config(path, target(f"t{i % 3}", "chaser", urls["a"]), target("x", "agi", urls["agi"]))
            assert await supervisor.reload(path)
            after = supervisor.tasks()
            replaced += [task for name, task in before.items() if after.get(name) is not task]
        polls = sorted(
            task.get_name()
            for task in asyncio.all_tasks()
            if task.get_name().startswith("poll:") and not task.done()
        )
        current = sorted(f"poll:{name}" for name in supervisor.tasks())
        await supervisor.stop()

    assert ["poll:t2", "poll:x"] == current  # the last config: t{50 % 3} and x
    assert current == polls
    assert 50 == len(replaced)
    assert [] == [task.get_name() for task in replaced if not task.done()]
    assert 50.0 == store.config.reloads_ok


async def get(url: str) -> tuple[int, str]:
    """GET ``url``: status and text."""
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.text()


async def wait_for_metrics(base: str, predicate: Callable[[Exposition], bool]) -> Exposition:
    """Scrape until ``predicate`` holds (bounded)."""
    async with asyncio.timeout(10):
        while True:
            try:
                status, text = await get(f"{base}/metrics")
            except aiohttp.ClientConnectionError:
                status, text = 0, ""
            if status == 200:
                metrics = Exposition.parse(text)
                if predicate(metrics):
                    return metrics
            await asyncio.sleep(0.05)


async def test_sighup_and_post_reload_in_serve(tmp_path: Path, urls: dict[str, str]) -> None:
    """`serve` reloads on SIGHUP and on POST /-/reload (with --web.enable-lifecycle)."""
    path = config(tmp_path / "c.yaml", target("a", "chaser", urls["a"]), interval="100ms")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = await asyncio.create_subprocess_exec(
        console_script(),
        "serve",
        "--config",
        str(path),
        "--listen",
        f"127.0.0.1:{port}",
        "--web.enable-lifecycle",
        "--log-format",
        "json",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await wait_for_metrics(base, lambda m: m.get("sessions_target_up", target="a") == 1.0)

        config(
            path,
            target("a", "chaser", urls["a"]),
            target("g", "agi", urls["agi"]),
            interval="100ms",
        )
        proc.send_signal(signal.SIGHUP)
        added = await wait_for_metrics(
            base, lambda m: m.get("sessions_target_up", target="g") == 1.0
        )

        path.write_text("targets: 7\n", encoding="utf-8")
        async with aiohttp.ClientSession() as http, http.post(f"{base}/-/reload") as response:
            failed_status = response.status
        after_failure = await wait_for_metrics(
            base, lambda m: m.get("sessions_exporter_config_last_reload_successful") == 0.0
        )

        config(path, target("g", "agi", urls["agi"]), interval="100ms")
        async with aiohttp.ClientSession() as http, http.post(f"{base}/-/reload") as response:
            ok_status = response.status
        removed = await wait_for_metrics(
            base, lambda m: m.get("sessions_target_up", target="a") is None
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 10)

    assert 0 == proc.returncode
    assert 1.0 == added.get("sessions_exporter_config_reloads_total", result="success")
    assert 500 == failed_status
    assert 1.0 == after_failure.get("sessions_target_up", target="g")
    assert 200 == ok_status
    assert 1.0 == removed.get("sessions_target_up", target="g")
    assert 2.0 == removed.get("sessions_exporter_config_reloads_total", result="success")
    assert 1.0 == removed.get("sessions_exporter_config_reloads_total", result="failure")
    events = [json.loads(line)["event"] for line in err.decode().splitlines() if line]
    assert 2 == events.count("config.reloaded")
    assert 1 == events.count("config.reload_failed")


async def test_post_reload_is_off_by_default(tmp_path: Path, urls: dict[str, str]) -> None:
    """Without --web.enable-lifecycle, POST /-/reload does not exist."""
    path = config(tmp_path / "c.yaml", target("a", "chaser", urls["a"]), interval="100ms")
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        console_script(),
        "serve",
        "--config",
        str(path),
        "--listen",
        f"127.0.0.1:{port}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await wait_for_metrics(f"http://127.0.0.1:{port}", lambda m: True)
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"http://127.0.0.1:{port}/-/reload") as response,
        ):
            status = response.status
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 10)

    assert status in (404, 405)


async def test_sighup_with_an_alias_bomb_or_a_pasted_key_in_serve(
    tmp_path: Path, urls: dict[str, str]
) -> None:
    """A SIGHUP with an alias bomb fails the reload at once: /healthz keeps answering within
    a second throughout (the bomb used to freeze serve for a minute). A reload with a key
    pasted into api_key_env logs the problem without the key."""
    path = config(tmp_path / "c.yaml", target("a", "chaser", urls["a"]), interval="100ms")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = await asyncio.create_subprocess_exec(
        console_script(),
        "serve",
        "--config",
        str(path),
        "--listen",
        f"127.0.0.1:{port}",
        "--log-format",
        "json",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    pasted = "tr_prod_AbCd1234EfGh5678IjKl"
    try:
        await wait_for_metrics(base, lambda m: m.get("sessions_target_up", target="a") == 1.0)
        path.write_text(path.read_text() + alias_bomb(), encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        for _ in range(10):
            async with asyncio.timeout(1):
                assert (200, "ok\n") == await get(f"{base}/healthz")
        await wait_for_metrics(
            base, lambda m: m.get("sessions_exporter_config_reloads_total", result="failure") == 1
        )

        path.write_text(
            f"targets:\n  - {{name: a, provider: trigger, api_key_env: {pasted}}}\n",
            encoding="utf-8",
        )
        proc.send_signal(signal.SIGHUP)
        after = await wait_for_metrics(
            base, lambda m: m.get("sessions_exporter_config_reloads_total", result="failure") == 2
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 10)

    assert 1.0 == after.get("sessions_target_up", target="a")  # the old config stays
    failed = [
        e
        for e in map(json.loads, err.decode().splitlines())
        if e["event"] == ("config.reload_failed")
    ]
    assert 2 == len(failed)
    assert "too many YAML nodes" in failed[0]["problems"][0]
    assert "tr_prod_… (28 characters, not shown: it may be a key)" in failed[1]["problems"][0]
    assert "AbCd1234" not in err.decode()


async def test_a_reload_reads_key_files_off_the_event_loop(
    tmp_path: Path, urls: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reload whose key file is slow to read (a hung mount) leaves the event loop free:
    other work goes on while it waits, and the reload applies once the read returns. A
    second read of the same file while the first still hangs is refused at once."""
    key_file = tmp_path / "key"
    key_file.write_text(KEY, encoding="utf-8")
    path = config(tmp_path / "c.yaml", target("keep", "chaser", urls["a"]))
    settings = load_settings(path)
    store = new_store(settings)
    release = threading.Event()
    real = target_module._read_key_file_now

    def hung(file: Path) -> str:
        assert release.wait(timeout=10), "the test never released the read"
        return real(file)

    async with new_client_session() as session:
        supervisor = Supervisor(settings=settings, session=session, store=store)
        supervisor.start()
        await until(store, "keep")
        config(
            path,
            target("keep", "chaser", urls["a"]),
            target("filed", "chaser", urls["b"]).replace(
                f'    api_key: "{KEY}"\n', f"    api_key_file: {key_file}\n"
            ),
        )
        monkeypatch.setattr(target_module, "_read_key_file_now", hung)
        reload = asyncio.create_task(supervisor.reload(path))
        ticks = 0
        async with asyncio.timeout(5):
            while ticks < 20:  # the loop keeps turning while the key file hangs
                await asyncio.sleep(0.005)
                ticks += 1
        assert not reload.done()
        with pytest.raises(target_module.KeyUnavailableError, match="not read within"):
            target_module._submit(key_file)  # the first read still hangs: refused, not queued
        release.set()
        assert await reload
        await until(store, "keep", "filed")
        await supervisor.stop()


async def test_a_reloaded_log_level_is_applied(tmp_path: Path, urls: dict[str, str]) -> None:
    """A SIGHUP that changes ``log_level`` from info to debug makes ``serve`` log its debug
    events (``poll.succeeded``) from then on; it used to report success and keep info."""
    path = tmp_path / "c.yaml"
    items = target("a", "chaser", urls["a"])
    path.write_text(f"log_level: info\npoll_interval: 50ms\ntargets:\n{items}", encoding="utf-8")
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        console_script(),
        "serve",
        "--config",
        str(path),
        "--listen",
        f"127.0.0.1:{port}",
        "--log-format",
        "json",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    seen: list[str] = []

    async def next_event() -> str:
        assert proc.stderr is not None
        event = str(json.loads(await proc.stderr.readline())["event"])
        seen.append(event)
        return event

    try:
        async with asyncio.timeout(10):
            while await next_event() != "server.started":
                pass
        await wait_for_metrics(
            f"http://127.0.0.1:{port}", lambda m: (m.get("sessions_exporter_polls_total") or 0) >= 2
        )
        path.write_text(
            f"log_level: debug\npoll_interval: 50ms\ntargets:\n{items}", encoding="utf-8"
        )
        proc.send_signal(signal.SIGHUP)
        async with asyncio.timeout(10):
            while await next_event() != "poll.succeeded":
                pass
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.communicate(), 10)

    assert "poll.succeeded" not in seen[: seen.index("config.reloaded")]


async def test_a_config_replaced_by_a_fifo_fails_the_reload_at_once(
    tmp_path: Path, urls: dict[str, str]
) -> None:
    """A config that is (or links to) a FIFO fails its reload at once, located, and the next
    reload goes through: the read used to wait for a writer forever, holding the reload lock."""
    path = config(tmp_path / "c.yaml", target("keep", "chaser", urls["a"]))
    settings = load_settings(path)
    store = new_store(settings)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "link.yaml"
    link.symlink_to(fifo)
    async with new_client_session() as session:
        supervisor = Supervisor(settings=settings, session=session, store=store)
        supervisor.start()
        await until(store, "keep")
        with capture_logs() as logs:
            async with asyncio.timeout(5):
                refused = [await supervisor.reload(fifo), await supervisor.reload(link)]
                accepted = await supervisor.reload(path)
        await supervisor.stop()

    assert [False, False] == refused
    assert accepted
    assert [
        [f"{fifo}: not a regular file (a FIFO): a config must be a file"],
        [f"{link}: not a regular file (a FIFO): a config must be a file"],
    ] == [e["problems"] for e in logs if e["event"] == "config.reload_failed"]
