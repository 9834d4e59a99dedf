"""The fault matrix: every upstream fault beside a healthy target, in `serve`, over real sockets.

Each faulty target must report down with the right reason while the healthy one stays exact;
each must recover once its fault is cleared; and the key must appear nowhere in the output.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path

import aiohttp
from aiohttp import web

from exporter.simulators import (
    ChaserSimulator,
    Fault,
    NotteSimulator,
    Simulator,
    TriggerSimulator,
    chaser_row,
    iso,
    notte_row,
    serve,
    trigger_row,
)
from tests.conftest import Serve
from tests.harness import KEY, NOW, Exposition, console_script, free_port

T = NOW  # a fixed "now" for the data: nothing here reads the wall clock at import
HEALTHY = [
    chaser_row("h1", "running", iso(T - 600), leases=2),
    chaser_row("h2", "idle", iso(T - 300), leases=0),
    chaser_row("h3", "stopped", iso(T - 900)),
]
ROWS = [chaser_row(f"r{i}", "running", iso(T - i)) for i in range(3)]


@dataclass
class Case:
    """One faulty target: its simulator (None: no server), options, reason, and how to clear."""

    name: str
    provider: str
    reason: str
    sim: Simulator | None = None
    base_url: str = ""
    options: str = ""
    clear: Callable[[], None] | None = None


def chaser_fault(name: str, reason: str, fault: Fault, options: str = "") -> Case:
    """A Chaser target whose simulator answers with ``fault`` until cleared."""
    sim = ChaserSimulator(sessions=ROWS, api_key=KEY)
    sim.fault = fault

    def clear() -> None:
        sim.fault = None

    return Case(name, "chaser", reason, sim=sim, options=options, clear=clear)


def cases() -> list[Case]:
    """Every fault of the issue's list, one target each."""
    big = ChaserSimulator(
        sessions=[chaser_row(f"b{i}", "running", iso(T)) for i in range(60)], api_key=KEY
    )
    endless = NotteSimulator(sessions=[notte_row("n1", "active", T, T)], api_key=KEY, endless=True)
    looping = TriggerSimulator(sessions=[trigger_row("session_a", "ACTIVE", T, T)], api_key=KEY)
    looping.fault = Fault(
        body=json.dumps(
            {
                "data": [
                    {
                        k: v
                        for k, v in trigger_row("session_a", "ACTIVE", T, T).items()
                        if k != "status"
                    }
                ],
                "pagination": {"next": "session_a"},
            }
        ).encode()
    )

    def shrink() -> None:
        del big.sessions[2:]

    def finish() -> None:
        endless.endless = False

    def unloop() -> None:
        looping.fault = None

    echo = f'{{"detail": "invalid api key {KEY}"}}'.encode()
    return [
        chaser_fault("http-503", "http_5xx", Fault(status=503)),
        chaser_fault(
            "http-429-seconds", "http_4xx", Fault(status=429, headers={"Retry-After": "3600"})
        ),
        chaser_fault(
            "http-429-date",
            "http_4xx",
            Fault(status=429, headers={"Retry-After": formatdate(time.time() + 3600, usegmt=True)}),
        ),
        chaser_fault("auth-401-echo", "auth", Fault(status=401, body=echo)),
        chaser_fault("auth-403", "auth", Fault(status=403)),
        chaser_fault("read-timeout", "timeout", Fault(delay=5.0)),
        chaser_fault("trickle", "timeout", Fault(trickle=0.4)),
        chaser_fault("truncated", "decode", Fault(truncate=True)),
        chaser_fault("dropped", "connect", Fault(drop=True)),
        chaser_fault("malformed", "decode", Fault(body=b'{"sessions": [{"id": ')),
        chaser_fault("wrong-shape", "schema", Fault(body=b'{"sessions": {}, "total": 1}')),
        Case(
            "too-large",
            "chaser",
            "too_large",
            sim=big,
            options="    max_response_bytes: 2048\n",
            clear=shrink,
        ),
        Case(
            "cursor-loop",
            "trigger",
            "schema",
            sim=looping,
            options="    ended_window: 0\n",
            clear=unloop,
        ),
        Case(
            "endless-has-next",
            "notte",
            "too_many_pages",
            sim=endless,
            options="    max_pages: 5\n",
            clear=finish,
        ),
        Case("refused", "chaser", "connect"),
        Case("connect-timeout", "chaser", "timeout"),
        Case("dns", "chaser", "connect", base_url="http://no-such-provider.invalid"),
    ]


def target_yaml(case: Case, url: str) -> str:
    """One target entry of the config."""
    return (
        f"  - name: {case.name}\n    provider: {case.provider}\n    base_url: {url}\n"
        f'    api_key: "{KEY}"\n    timeout: 500ms\n    retries: 1\n    rate_limit: 0\n'
        # a whole poll may take 3 s: a retry never races the poll's own deadline here (which
        # would add a `timeout` to a fault's reason on a loaded machine)
        f"    poll_timeout: 3s\n{case.options}"
    )


def jammed_listener() -> tuple[socket.socket, list[socket.socket]]:
    """A loopback listener whose backlog is full (so a connect cannot complete), and its jam."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    return listener, fillers


async def target_urls(
    matrix: list[Case], served: Serve, *, refused_port: int, jammed: socket.socket
) -> dict[str, str]:
    """Each target's base URL: its served simulator, a closed port, a jammed one, or a name."""
    urls = {"healthy": await served(ChaserSimulator(sessions=HEALTHY, api_key=KEY))}
    for case in matrix:
        if case.sim is not None:
            urls[case.name] = await served(case.sim)
        elif case.name == "refused":
            urls[case.name] = f"http://127.0.0.1:{refused_port}"
        elif case.name == "connect-timeout":
            urls[case.name] = f"http://127.0.0.1:{jammed.getsockname()[1]}"
        else:
            urls[case.name] = case.base_url
    return urls


async def scrape(base: str) -> tuple[Exposition, str]:
    """/metrics parsed, and the landing page's text."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/metrics") as response:
            metrics = Exposition.parse(await response.text())
        async with http.get(f"{base}/") as response:
            landing = await response.text()
    return metrics, landing


def assert_healthy_exact(metrics: Exposition) -> None:
    """The healthy target's data is exactly its dataset's."""
    assert 1.0 == metrics.get("sessions_target_up", target="healthy")
    counts = metrics.by("sessions", "status", target="healthy")
    assert {"running": 1.0, "idle": 1.0, "stopped": 1.0} == {s: v for s, v in counts.items() if v}
    assert 2.0 == metrics.get("sessions_connection_leases", target="healthy")
    assert 1.0 == metrics.get("sessions_unleased", target="healthy")
    assert T - 600 == metrics.get(
        "sessions_oldest_created_timestamp_seconds", target="healthy", status="running"
    )


async def test_fault_matrix(tmp_path: Path, served: Serve) -> None:
    """Every fault: down with its reason, healthy target exact throughout, then recovery."""
    matrix = cases()
    refused_port = free_port()
    jammed, jam = jammed_listener()
    urls = await target_urls(matrix, served, refused_port=refused_port, jammed=jammed)
    healthy = Case("healthy", "chaser", "")
    config = tmp_path / "config.yaml"
    config.write_text(
        "poll_interval: 300ms\ntargets:\n"
        + target_yaml(healthy, urls["healthy"])
        + "".join(target_yaml(c, urls[c.name]) for c in matrix),
        encoding="utf-8",
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = await asyncio.create_subprocess_exec(
        console_script(),
        "serve",
        "--config",
        str(config),
        "--listen",
        f"127.0.0.1:{port}",
        "--log-format",
        "json",
        "--log-level",
        "debug",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    pages: list[str] = []
    late_servers: list[web.AppRunner] = []
    try:
        async with asyncio.timeout(30):
            while True:
                await asyncio.sleep(0.2)
                try:
                    metrics, landing = await scrape(base)
                except aiohttp.ClientConnectionError:
                    continue
                pages += [metrics.text, landing]
                down = {
                    c.name
                    for c in matrix
                    if metrics.get("sessions_target_up", target=c.name) == 0.0
                    and (
                        metrics.get(
                            "sessions_exporter_poll_errors_total", target=c.name, reason=c.reason
                        )
                        or 0
                    )
                    >= 1
                }
                if (
                    len(down) == len(matrix)
                    and metrics.get("sessions_target_up", target="healthy") == 1.0
                ):
                    break
        assert_healthy_exact(metrics)
        for case in matrix:
            errors = metrics.by("sessions_exporter_poll_errors_total", "reason", target=case.name)
            assert {case.reason} == {r for r, v in errors.items() if v}, case.name

        for case in matrix:
            if case.clear is not None:
                case.clear()
        refused_sim = ChaserSimulator(sessions=ROWS, api_key=KEY)
        async with serve(refused_sim, port=refused_port):
            runner = web.AppRunner(ChaserSimulator(sessions=ROWS, api_key=KEY).app())
            await runner.setup()
            late_servers.append(runner)
            await web.SockSite(runner, jammed).start()
            recoverable = {c.name for c in matrix if c.name != "dns"}
            async with asyncio.timeout(30):
                while True:
                    await asyncio.sleep(0.2)
                    metrics, landing = await scrape(base)
                    pages += [metrics.text, landing]
                    assert_healthy_exact(metrics)
                    up = {
                        name
                        for name in recoverable
                        if metrics.get("sessions_target_up", target=name) == 1.0
                    }
                    if up == recoverable:
                        break
        assert 0.0 == metrics.get("sessions_target_up", target="dns")
    finally:
        for runner in late_servers:
            await runner.cleanup()
        for filler in jam:
            filler.close()
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 10)

    assert 0 == proc.returncode
    everything = out.decode() + err.decode() + "".join(pages)
    assert KEY not in everything
    assert "[REDACTED]" in everything  # the echoed key was masked, not dropped silently
