"""Big and hostile answers: memory follows ``max_response_bytes``, the loop keeps turning.

Real sockets throughout: the upstream is an aiohttp handler serving prepared bytes (gzip
encoded where the case says so), ``once`` runs as a subprocess whose own peak RSS is read
(``bench.rss`` starts it from a small process, so the figure is its own), and the loop test
runs a real server polling the big answer while ``/healthz`` is asked over a socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from exporter.web.app import STORE, create_app
from tests.harness import KEY, settings_for

MIB = 1024 * 1024
ROOT = Path(__file__).resolve().parent.parent
LOOP_BLOCK_GOAL = 0.5
"""Seconds: no poll holds the event loop longer than this at a time (issue 11)."""


def rows_body(size: int) -> bytes:
    """A Chaser answer of about ``size`` bytes of real-looking valid rows (~75 bytes each)."""
    row = '{"id":"s-%08d","status":"running","created_at":"2026-01-01T00:00:00Z"}'
    count = size // (len(row % 0) + 1)
    rows = ",".join(row % i for i in range(count))
    return f'{{"sessions":[{rows}],"total":{count}}}'.encode()


def empty_rows_body(size: int) -> bytes:
    """A Chaser answer of about ``size`` bytes of ``{}`` rows (every row invalid)."""
    count = size // 3
    return b'{"sessions":[' + b",".join([b"{}"] * count) + b'],"total":%d}' % count


@contextlib.asynccontextmanager
async def upstream(body: bytes, *, gzipped: bool) -> AsyncIterator[str]:
    """Serve ``body`` at ``/v1/sessions`` (gzip-encoded on the wire if ``gzipped``)."""
    wire = gzip.compress(body, 6) if gzipped else body
    headers = {"Content-Type": "application/json"}
    if gzipped:
        headers["Content-Encoding"] = "gzip"

    async def handler(_request: web.Request) -> web.Response:
        return web.Response(body=wire, headers=headers)

    app = web.Application()
    app.router.add_get("/v1/sessions", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def once_peak_rss(url: str, max_bytes: int, tmp_path: Path) -> tuple[int, int]:
    """Run ``once`` on one Chaser target at ``url``: its exit code and peak RSS in bytes."""
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "log_level": "error",
                "targets": [
                    {
                        "name": "big",
                        "provider": "chaser",
                        "base_url": url,
                        "api_key": KEY,
                        "max_response_bytes": max_bytes,
                        "page_size": 1000,
                    }
                ],
            }
        )
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.rss",
        sys.executable,
        "-m",
        "exporter",
        "once",
        "--config",
        str(config),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    code, kib = out.decode().split()
    return int(code), int(kib) * 1024


MAX_BYTES = 8 * MIB


@pytest.mark.slow
@pytest.mark.parametrize(
    ("case", "gzipped"),
    [("empty rows", True), ("valid rows", False), ("valid rows", True)],
)
async def test_peak_rss_stays_within_four_times_max_response_bytes(
    case: str, gzipped: bool, tmp_path: Path
) -> None:
    """An answer just under ``max_response_bytes`` (8 MiB) costs ``once`` at most 4 x that
    over a poll of an empty list, whatever it holds: ~2.8 million ``{}`` rows sent as a
    ~40 KB gzip (each row invalid), or ~110,000 valid rows, plain or gzip."""
    size = MAX_BYTES - 64 * 1024
    body = empty_rows_body(size) if case == "empty rows" else rows_body(size)
    assert len(body) < MAX_BYTES
    async with upstream(b'{"sessions":[],"total":0}', gzipped=gzipped) as url:
        base_code, base = await once_peak_rss(url, MAX_BYTES, tmp_path)
    async with upstream(body, gzipped=gzipped) as url:
        code, peak = await once_peak_rss(url, MAX_BYTES, tmp_path)

    assert (0, 0) == (base_code, code)
    assert peak <= base + 4 * MAX_BYTES, (
        f"{case}: +{(peak - base) / MIB:.1f} MiB over {base / MIB:.1f} MiB, "
        f"bound +{4 * MAX_BYTES / MIB:.0f} MiB"
    )


class LoopProbe:
    """Wakes every few milliseconds and records the CPU time the loop's thread spent
    between two of its turns: the longest single hold of the loop, independent of how
    busy the machine is (a starved process waits, but does not spend CPU, in between)."""

    def __init__(self) -> None:
        self.longest = 0.0
        self.turns = 0

    async def run(self) -> None:
        """Probe until cancelled."""
        while True:
            before = time.thread_time()
            await asyncio.sleep(0.005)
            self.longest = max(self.longest, time.thread_time() - before)
            self.turns += 1


@pytest.mark.slow
@pytest.mark.parametrize(
    ("case", "size", "gzipped"),
    [("valid rows", 30 * MIB, False), ("empty rows", 8 * MIB, True)],
)
async def test_a_big_poll_never_holds_the_loop(case: str, size: int, gzipped: bool) -> None:
    """While a running server polls a 30 MiB answer of valid rows (or 8 MiB of ``{}`` rows,
    every one read field by field), the loop is never held for more than 0.5 s at a time,
    and ``/healthz`` keeps answering over its socket."""
    body = empty_rows_body(size) if case == "empty rows" else rows_body(size)
    async with upstream(body, gzipped=gzipped) as url:
        settings = settings_for(
            {
                "name": "big",
                "provider": "chaser",
                "base_url": url,
                "max_response_bytes": 64 * MIB,
                "page_size": 1000,
            },
            poll_interval="1h",
        )
        app = create_app(settings)
        runner = web.AppRunner(app, access_log=None)
        probe = LoopProbe()
        latencies: list[float] = []
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            base = f"http://127.0.0.1:{runner.addresses[0][1]}"
            probing = asyncio.create_task(probe.run())
            async with aiohttp.ClientSession() as client:
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    started = time.monotonic()
                    async with client.get(f"{base}/healthz") as response:
                        await response.read()
                    latencies.append(time.monotonic() - started)
                    if polled(app):
                        break
                    await asyncio.sleep(0.02)
            probing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probing
        finally:
            await runner.cleanup()

    assert polled(app), "the poll did not finish within 120 s"
    assert probe.longest <= LOOP_BLOCK_GOAL, (
        f"{case}: the loop was held for {probe.longest:.3f} s of CPU at once "
        f"({probe.turns} turns; /healthz max {max(latencies):.3f} s)"
    )
    assert len(latencies) >= 3


def polled(app: web.Application) -> bool:
    """Whether the app's one target has finished a poll (successful or not)."""
    return bool(app[STORE].snapshots["big"].polls)
