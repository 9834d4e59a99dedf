"""End-to-end helpers: child processes with logs, bounded waits, Prometheus and a webhook."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

STEP = 0.25
"""How often the waits below look again (seconds)."""


@dataclass
class Webhook:
    """Alertmanager's notifications as they arrive, with the path (receiver) each came to."""

    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    arrived: list[float] = field(default_factory=list)
    """time.monotonic() at the arrival of each notification of ``received``."""

    async def handle(self, request: web.Request) -> web.Response:
        payload = await request.json()
        self.arrived.append(time.monotonic())
        self.received.append((request.path, payload))
        return web.Response(text="ok")

    def first(self, name: str, status: str, **labels: str) -> tuple[float, dict[str, Any]] | None:
        """Arrival time and alert of the first ``name`` in ``status`` carrying ``labels``."""
        for at, (_, payload) in zip(self.arrived, self.received, strict=True):
            for alert in payload["alerts"]:
                if (
                    alert["labels"].get("alertname") == name
                    and alert["status"] == status
                    and labels.items() <= alert["labels"].items()
                ):
                    return at, alert
        return None

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


async def instant(
    http: aiohttp.ClientSession, prometheus: str, expr: str, *, at: float | None = None
) -> list[Any]:
    """The result vector of an instant query (evaluated at unix time ``at`` when given)."""
    params = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
    async with http.get(f"{prometheus}/api/v1/query", params=params) as response:
        body = await response.json()
    assert "success" == body["status"], (expr, body)
    result: list[Any] = body["data"]["result"]
    return result


@contextlib.asynccontextmanager
async def webhook_server() -> AsyncIterator[tuple[Webhook, int]]:
    """A Webhook served on a loopback port: yields it and the port."""
    webhook = Webhook()
    app = web.Application()
    app.router.add_post("/{receiver}", webhook.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield webhook, runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def start_prometheus(w: World, name: str, binary: str, config: Path, port: int) -> str:
    """Start a Prometheus on ``config``, storing under the world's directory; its base URL."""
    await w.start(
        name,
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={w.tmp / (name + '-data')}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--rules.alert.resend-delay=1s",
    )
    return f"http://127.0.0.1:{port}"
