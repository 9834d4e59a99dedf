"""End to end: the exporter, a real Prometheus with the shipped rules, a real Alertmanager.

`session-exporter serve` polls simulators served by the test; Prometheus (Debian's
``prometheus``) scrapes it every second with the shipped scrape config and rules (every ``for``
cut to zero), and sends alerts to Alertmanager (``prometheus-alertmanager``) configured from the
shipped routing, whose receivers all point at a webhook inside the test. Every wait is bounded;
the whole test takes about 20 seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from deploy import rules
from exporter.simulators import ChaserSimulator, NotteSimulator, chaser_row, notte_row
from tests.conftest import Serve
from tests.dashboards import queries, substitute
from tests.harness import free_port
from tests.tools import ROOT, require

pytestmark = pytest.mark.slow

KEY = "e2e-key-0123456789"
JOB = rules.load().job
STEP = 0.25
"""How often the waits below look again (seconds)."""


@dataclass
class Webhook:
    """Alertmanager's notifications as they arrive, with the path (receiver) each came to."""

    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((request.path, await request.json()))
        return web.Response(text="ok")

    def alerts(self, name: str, target: str, status: str) -> list[tuple[str, dict[str, Any]]]:
        """(receiver path, alert) of every received alert ``name`` of ``target`` in ``status``."""
        return [
            (path, alert)
            for path, payload in self.received
            for alert in payload["alerts"]
            if alert["labels"].get("alertname") == name
            and alert["labels"].get("target") == target
            and alert["status"] == status
        ]


@dataclass
class Process:
    """A child process whose output goes to a log file (read back when a wait fails)."""

    name: str
    proc: asyncio.subprocess.Process
    log: Path

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace").splitlines()[-lines:]
        return f"--- {self.name} (exit {self.proc.returncode}) ---\n" + "\n".join(text)


class World:
    """The running processes; ``diagnose`` adds their logs to a failure message."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.processes: list[Process] = []

    async def start(self, name: str, *args: str) -> Process:
        log = self.tmp / f"{name}.log"
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                cwd=self.tmp,
                env={k: v for k, v in os.environ.items() if not k.startswith("SESSION_EXPORTER_")},
            )
        process = Process(name, proc, log)
        self.processes.append(process)
        return process

    def diagnose(self) -> str:
        return "\n".join(p.tail() for p in self.processes)

    async def stop(self) -> None:
        for process in reversed(self.processes):
            if process.proc.returncode is None:
                process.proc.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                await asyncio.wait_for(process.proc.wait(), 10)
            except TimeoutError:
                process.proc.kill()
                await process.proc.wait()

    async def until(
        self, what: str, check: Callable[[], Awaitable[bool]], *, timeout: float
    ) -> None:
        """Wait until ``check()`` is true, failing with the logs after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not await check():
            for process in self.processes:
                if process.proc.returncode is not None:
                    raise AssertionError(
                        f"{process.name} exited while waiting for {what}\n{self.diagnose()}"
                    )
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {timeout}s\n{self.diagnose()}")
            await asyncio.sleep(STEP)


@contextlib.asynccontextmanager
async def world(tmp: Path) -> AsyncIterator[World]:
    """A World whose processes are stopped on the way out, whatever happened."""
    running = World(tmp)
    try:
        yield running
    finally:
        await running.stop()


async def answers(http: aiohttp.ClientSession, url: str) -> bool:
    """Whether ``url`` answers 200 (a refused connection is just "not yet")."""
    try:
        async with http.get(url) as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def instant(http: aiohttp.ClientSession, prometheus: str, expr: str) -> list[Any]:
    """The result vector of an instant query."""
    async with http.get(f"{prometheus}/api/v1/query", params={"query": expr}) as response:
        body = await response.json()
    assert "success" == body["status"], (expr, body)
    result: list[Any] = body["data"]["result"]
    return result


def alert_rules(path: Path) -> None:
    """The shipped rules with every ``for`` removed, so alerts fire on the first evaluation."""
    groups = rules.rule_groups(rules.load())
    for group in groups:
        for rule in group["rules"]:
            rule.pop("for", None)
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))


def prometheus_config(path: Path, exporter: int, alertmanager: int) -> None:
    """deploy/prometheus/prometheus.yml with this test's ports and one-second intervals."""
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = ["rules.yml"]
    (scrape,) = config["scrape_configs"]
    scrape["scrape_timeout"] = "1s"
    scrape["static_configs"] = [{"targets": [f"127.0.0.1:{exporter}"]}]
    config["alerting"]["alertmanagers"] = [
        {"static_configs": [{"targets": [f"127.0.0.1:{alertmanager}"]}]}
    ]
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def alertmanager_config(path: Path, webhook: int) -> None:
    """deploy/alertmanager/alertmanager.yml: same routes, every receiver at the test's webhook."""
    config = yaml.safe_load((ROOT / "deploy" / "alertmanager" / "alertmanager.yml").read_text())
    config["route"].update(group_wait="1s", group_interval="1s", repeat_interval="1h")
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            hook["url"] = f"http://127.0.0.1:{webhook}/{receiver['name']}"
            hook["send_resolved"] = True
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def exporter_config(path: Path, chaser: str, notte: str) -> None:
    """Two targets polled every second, with per-session series for the sessions table."""
    detail = {"enabled": True, "max_series": 20}
    config = {
        "poll_interval": "1s",
        "targets": [
            {
                "name": "chaser-e2e",
                "provider": "chaser",
                "base_url": chaser,
                "api_key": KEY,
                "per_session": detail,
            },
            {
                "name": "notte-e2e",
                "provider": "notte",
                "base_url": notte,
                "api_key": KEY,
                "only_active": False,
                "per_session": detail,
            },
        ],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))


async def test_prometheus_scrapes_dashboard_has_data_and_stuck_alert_fires_and_resolves(
    tmp_path: Path, served: Serve
) -> None:
    """Exporter up in Prometheus; every dashboard query has data; SessionStuck fires and resolves.

    A Chaser browser running for six hours (threshold 2h) must reach the webhook as a firing
    SessionStuck through the warning route; once the simulator stops listing it, the webhook
    must get the same alert as resolved.
    """
    prometheus_bin = require("prometheus")
    alertmanager_bin = require("prometheus-alertmanager")
    now = time.time()
    chaser = ChaserSimulator(
        api_key=KEY,
        sessions=[
            chaser_row("chs-stuck", "running", now - 6 * 3600, leases=0),
            chaser_row("chs-busy", "running", now - 120, leases=2),
            chaser_row("chs-new", "starting", now - 10, leases=0),
            chaser_row("chs-crashed", "failed", now - 900, leases=None),
        ],
    )
    notte = NotteSimulator(
        api_key=KEY,
        sessions=[
            # 20 minutes old with the default 15 minute limit: overdue, not yet stuck (30m)
            notte_row("ntt-late", "active", now - 1200, now - 30, idle_timeout_minutes=60),
            notte_row("ntt-fresh", "active", now - 60, now - 5, idle_timeout_minutes=5),
            notte_row("ntt-done", "closed", now - 900, now - 600, closed_at=now - 600),
        ],
    )
    chaser_url, notte_url = await served(chaser), await served(notte)
    exporter_port, prometheus_port, alertmanager_port = free_port(), free_port(), free_port()
    exporter_config(tmp_path / "exporter.yml", chaser_url, notte_url)
    alert_rules(tmp_path / "rules.yml")
    prometheus_config(tmp_path / "prometheus.yml", exporter_port, alertmanager_port)

    webhook = Webhook()
    app = web.Application()
    app.router.add_post("/{receiver}", webhook.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    webhook_port = runner.addresses[0][1]
    alertmanager_config(tmp_path / "alertmanager.yml", webhook_port)

    prometheus = f"http://127.0.0.1:{prometheus_port}"
    alertmanager = f"http://127.0.0.1:{alertmanager_port}"
    exporter = f"http://127.0.0.1:{exporter_port}"
    try:
        async with world(tmp_path) as w, aiohttp.ClientSession() as http:
            await w.start(
                "exporter",
                sys.executable,
                "-m",
                "exporter",
                "serve",
                "--config",
                str(tmp_path / "exporter.yml"),
                "--listen",
                f"127.0.0.1:{exporter_port}",
            )
            await w.start(
                "alertmanager",
                alertmanager_bin,
                f"--config.file={tmp_path / 'alertmanager.yml'}",
                f"--storage.path={tmp_path / 'alertmanager-data'}",
                f"--web.listen-address=127.0.0.1:{alertmanager_port}",
                "--cluster.listen-address=",
            )
            await w.start(
                "prometheus",
                prometheus_bin,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
                "--rules.alert.resend-delay=1s",
            )
            await w.until("ready exporter", lambda: answers(http, f"{exporter}/readyz"), timeout=20)
            await w.until(
                "ready Alertmanager", lambda: answers(http, f"{alertmanager}/-/ready"), timeout=20
            )
            await w.until(
                "ready Prometheus", lambda: answers(http, f"{prometheus}/-/ready"), timeout=20
            )

            async def exporter_up() -> bool:
                result = await instant(http, prometheus, f'up{{job="{JOB}"}}')
                return [1.0] == [float(r["value"][1]) for r in result]

            await w.until("exporter target up in Prometheus", exporter_up, timeout=20)

            empty: list[tuple[str, str]] = []

            async def every_query_has_data() -> bool:
                empty.clear()
                for title, expr in queries():
                    if not await instant(http, prometheus, substitute(expr)):
                        empty.append((title, expr))
                return not empty

            try:
                await w.until("data for every dashboard query", every_query_has_data, timeout=30)
            except AssertionError as failure:
                raise AssertionError(f"queries without data: {empty}\n{failure}") from None

            async def stuck(status: str) -> bool:
                return bool(webhook.alerts("SessionStuck", "chaser-e2e", status))

            await w.until("firing SessionStuck at the webhook", lambda: stuck("firing"), timeout=30)
            path, alert = webhook.alerts("SessionStuck", "chaser-e2e", "firing")[0]
            assert "/team" == path  # severity warning takes the warning route
            assert {
                "severity": "warning",
                "provider": "chaser",
                "status": "running",
            }.items() <= alert["labels"].items()
            assert alert["annotations"]["runbook_url"].endswith("RUNBOOK.md#sessionstuck")
            assert "threshold of 2h 0m 0s" in alert["annotations"]["description"]

            chaser.sessions[:] = [r for r in chaser.sessions if r["id"] != "chs-stuck"]

            await w.until(
                "resolved SessionStuck at the webhook", lambda: stuck("resolved"), timeout=30
            )
            assert not webhook.alerts("SessionStuck", "notte-e2e", "firing")
    finally:
        await runner.cleanup()
