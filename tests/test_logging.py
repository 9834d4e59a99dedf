"""Logging never blocks the event loop nor raises into it: lines go through a bounded queue
to a writer thread; lines that cannot be written are dropped and counted."""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import termios
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from exporter.simulators import ChaserSimulator, chaser_row, iso
from tests.conftest import Serve
from tests.harness import KEY, NOW, Exposition, console_script, free_port

F_SETPIPE_SZ = 1031  # Linux: set a pipe's capacity (fcntl.F_SETPIPE_SZ from Python 3.10 on)


def write_config(path: Path, url: str) -> Path:
    """Three Chaser targets polled every 50 ms (each poll logs a debug line)."""
    targets = "".join(
        f'  - name: t{i}\n    provider: chaser\n    base_url: {url}\n    api_key: "{KEY}"\n'
        for i in range(3)
    )
    path.write_text(f"poll_interval: 50ms\ntargets:\n{targets}", encoding="utf-8")
    return path


@asynccontextmanager
async def serve_logging_to(
    config: Path, stderr: int
) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    """``serve`` at debug level with its stderr on the descriptor ``stderr``."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        console_script(),
        "serve",
        "--config",
        str(config),
        "--listen",
        f"127.0.0.1:{port}",
        "--log-level",
        "debug",
        "--log-format",
        "json",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=stderr,
    )
    try:
        yield f"http://127.0.0.1:{port}", proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def metrics(base: str) -> Exposition:
    """One scrape of ``/metrics`` (within 2 s)."""
    timeout = aiohttp.ClientTimeout(total=2)
    async with (
        aiohttp.ClientSession(timeout=timeout) as http,
        http.get(f"{base}/metrics") as response,
    ):
        return Exposition.parse(await response.text())


def polls(exposition: Exposition) -> float:
    """Successful polls of every target, summed."""
    return sum(exposition.select("sessions_exporter_polls_total").values())


async def until(base: str, predicate: object, *, seconds: float = 10) -> Exposition:
    """Scrape until ``predicate(exposition)`` holds (bounded)."""
    assert callable(predicate)
    async with asyncio.timeout(seconds):
        while True:
            try:
                exposition = await metrics(base)
            except (aiohttp.ClientError, TimeoutError):
                exposition = None
            if exposition is not None and predicate(exposition):
                return exposition
            await asyncio.sleep(0.05)


async def test_closed_stderr_neither_stops_polling_nor_the_exit(
    tmp_path: Path, served: Serve
) -> None:
    """With its stderr a pipe nobody reads any more (every write fails with EPIPE), every
    target keeps polling, the lost lines are counted, and SIGTERM exits 0. A failed log
    write used to kill the poll task (its target frozen at up 1) and make the exit 1."""
    url = await served(
        ChaserSimulator(sessions=[chaser_row("a", "running", iso(NOW))], api_key=KEY)
    )
    read, write = os.pipe()
    os.close(read)
    try:
        async with serve_logging_to(write_config(tmp_path / "c.yaml", url), write) as (base, proc):
            first = await until(base, lambda m: polls(m) >= 3)
            later = await until(
                base,
                lambda m: all(
                    (m.get("sessions_exporter_polls_total", target=t) or 0)
                    > (first.get("sessions_exporter_polls_total", target=t) or 0)
                    for t in ("t0", "t1", "t2")
                ),
            )
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(proc.wait(), 10)
    finally:
        os.close(write)

    assert 0 < (later.get("sessions_exporter_log_lines_dropped_total") or 0)
    assert 0 == code


async def test_a_stalled_log_reader_does_not_block_the_loop(tmp_path: Path, served: Serve) -> None:
    """With its stderr a full pipe nobody reads, /healthz answers each of 10 calls within a
    second, polls go on, and SIGTERM still ends the process with 0. The loop used to block
    in the write: 9 of 10 /healthz calls timed out and SIGTERM was ignored."""
    url = await served(
        ChaserSimulator(sessions=[chaser_row("a", "running", iso(NOW))], api_key=KEY)
    )
    read, write = os.pipe()
    fcntl.fcntl(write, F_SETPIPE_SZ, 4096)  # the smallest pipe: full after a few lines
    try:
        async with serve_logging_to(write_config(tmp_path / "c.yaml", url), write) as (base, proc):
            async with asyncio.timeout(20):
                while _queued(read) < 3072:  # a line more would not fit
                    await asyncio.sleep(0.05)
            answered = 0
            timeout = aiohttp.ClientTimeout(total=1)
            async with aiohttp.ClientSession(timeout=timeout) as http:
                for _ in range(10):
                    try:
                        async with http.get(f"{base}/healthz") as response:
                            answered += response.status == 200
                    except (aiohttp.ClientError, TimeoutError):
                        pass
            before = polls(await metrics(base))
            after = await until(base, lambda m: polls(m) > before)
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(proc.wait(), 10)
    finally:
        os.close(read)
        os.close(write)

    assert 10 == answered
    assert before < polls(after)
    assert 0 == code


def _queued(fd: int) -> int:
    """Bytes waiting in a pipe (``FIONREAD`` on its read end)."""
    buffer = bytearray(4)
    fcntl.ioctl(fd, termios.FIONREAD, buffer)
    return int.from_bytes(buffer, "little")
