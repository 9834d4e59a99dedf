"""Hostile clients of ``serve``: half-open connections (slowloris), idle ones, a connection
cap, and accept() failing for want of descriptors. Over real sockets, against the real CLI."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import aiohttp
from structlog.testing import capture_logs

from exporter.simulators import ChaserSimulator, chaser_row
from exporter.web.server import AcceptErrorLog
from tests.conftest import Serve
from tests.harness import KEY, console_script, free_port
from tests.test_cli import child_env

HEADER_TIMEOUT = 1.0
CAP = 40
PARTIAL = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "  # never finished


@asynccontextmanager
async def exporter(
    tmp_path: Path, served: Serve, *, sessions: int = 1, targets: int = 1
) -> AsyncIterator[tuple[str, int]]:
    """`serve` with a 1 s header timeout and a cap of 40 connections: its URL and pid. With
    more than one session, each gets per-session series (a /metrics of about 300 bytes per
    session and target)."""
    rows = [chaser_row(f"s{i:05d}", "running", 1_767_225_600.0 - i) for i in range(sessions)]
    url = await served(ChaserSimulator(sessions=rows, api_key=KEY))
    config = tmp_path / "config.yaml"
    per_session = (
        f", per_session: {{enabled: true, max_series: {sessions}}}" if sessions > 1 else ""
    )
    config.write_text(
        "targets:\n"
        + "".join(
            f'  - {{name: c{n}, provider: chaser, base_url: "{url}", api_key: "{KEY}"'
            f"{per_session}}}\n"
            for n in range(targets)
        ),
        encoding="utf-8",
    )
    port = free_port()
    err = (tmp_path / "serve.err").open("wb")
    proc = await asyncio.create_subprocess_exec(
        console_script(),
        "serve",
        "--config",
        str(config),
        "--listen",
        f"127.0.0.1:{port}",
        "--web.read-header-timeout",
        f"{HEADER_TIMEOUT:g}s",
        "--web.max-connections",
        str(CAP),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=err,
        env=child_env(),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with asyncio.timeout(15):
            while True:
                assert proc.returncode is None, (tmp_path / "serve.err").read_text()
                with suppress(aiohttp.ClientError):
                    async with aiohttp.ClientSession() as http, http.get(base + "/readyz") as r:
                        if r.status == 200:
                            break
                await asyncio.sleep(0.05)
        yield base, proc.pid
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        err.close()


def open_fds(pid: int) -> int:
    """How many descriptors the exporter process has open (Linux: /proc/PID/fd)."""
    return len(os.listdir(f"/proc/{pid}/fd"))


async def half_open(port: int, data: bytes = PARTIAL) -> tuple[Any, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if data:
        writer.write(data)
        await writer.drain()
    return reader, writer


async def closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    """Whether the server closes the connection within ``within`` seconds."""
    try:
        async with asyncio.timeout(within):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        return True
    return True


async def test_slowloris_is_capped_and_healthz_still_answers(tmp_path: Path, served: Serve) -> None:
    """300 connections that never finish their headers: the exporter keeps at most 40 of
    them (its descriptors stay bounded), /healthz and /metrics still answer at once, and
    every one of them is closed by the header timeout."""
    async with exporter(tmp_path, served) as (base, pid):
        port = int(base.rsplit(":", 1)[1])
        baseline = open_fds(pid)
        conns = [await half_open(port) for _ in range(300)]

        async with (
            aiohttp.ClientSession() as http,
            asyncio.timeout(5),
            http.get(base + "/healthz") as response,
        ):
            assert 200 == response.status
        assert open_fds(pid) <= baseline + CAP + 2
        closed = await asyncio.gather(*(closed_by_server(r, 10 * HEADER_TIMEOUT) for r, _ in conns))
        for _, writer in conns:
            writer.close()

    assert [True] * 300 == closed


async def test_idle_connections_are_closed_after_the_header_timeout(
    tmp_path: Path, served: Serve
) -> None:
    """A connection that sends nothing, one that sends half a request line, and a keep-alive
    connection idle after a complete request are all closed, none before the timeout."""
    async with exporter(tmp_path, served) as (base, _):
        port = int(base.rsplit(":", 1)[1])
        started = time.monotonic()
        silent, _ = await half_open(port, b"")
        partial, _ = await half_open(port, b"GE")
        keep_reader, keep_writer = await half_open(
            port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        )
        async with asyncio.timeout(5):
            head = await keep_reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")

        results = await asyncio.gather(
            *(closed_by_server(r, 10 * HEADER_TIMEOUT) for r in (silent, partial, keep_reader))
        )
        elapsed = time.monotonic() - started
        keep_writer.close()

    assert [True, True, True] == results
    assert elapsed >= HEADER_TIMEOUT


async def test_a_slow_but_steady_request_is_still_closed_at_the_deadline(
    tmp_path: Path, served: Serve
) -> None:
    """Dribbling a header byte every 100 ms does not extend the deadline: it is for the whole
    head, not per read."""
    async with exporter(tmp_path, served) as (base, _):
        port = int(base.rsplit(":", 1)[1])
        reader, writer = await half_open(port, b"GET /metrics HTTP/1.1\r\n")

        async def dribble() -> None:
            with suppress(ConnectionError):
                for _ in range(200):
                    writer.write(b"X")
                    await writer.drain()
                    await asyncio.sleep(0.1)

        feeding = asyncio.ensure_future(dribble())
        closed = await closed_by_server(reader, 10 * HEADER_TIMEOUT)
        feeding.cancel()
        writer.close()

    assert closed


async def test_the_next_request_on_a_kept_alive_connection_has_the_same_deadline(
    tmp_path: Path, served: Serve
) -> None:
    """After one complete request, a connection that dribbles the head of its next request
    is closed at the header deadline too (and two pipelined requests are both answered)."""
    async with exporter(tmp_path, served) as (base, _):
        port = int(base.rsplit(":", 1)[1])
        two = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 2
        reader, writer = await half_open(port, two)
        async with asyncio.timeout(5):
            first = await reader.readuntil(b"ok\n")
            second = await reader.readuntil(b"ok\n")
        writer.write(b"GET /metrics HTTP/1.1\r\n")
        await writer.drain()

        async def dribble() -> None:
            with suppress(ConnectionError):
                for _ in range(200):
                    writer.write(b"X")
                    await writer.drain()
                    await asyncio.sleep(0.1)

        feeding = asyncio.ensure_future(dribble())
        closed = await closed_by_server(reader, 10 * HEADER_TIMEOUT)
        feeding.cancel()
        writer.close()

    assert first.startswith(b"HTTP/1.1 200")
    assert second.startswith(b"HTTP/1.1 200")
    assert closed


HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


async def test_idle_keep_alive_connections_cannot_lock_out_new_clients(
    tmp_path: Path, served: Serve
) -> None:
    """40 keep-alive connections (the cap), each sending a GET well within the header timeout
    and then idling: 12 new clients in a row all get their /healthz, each taking the place of
    the connection idle the longest."""
    async with exporter(tmp_path, served) as (base, _):
        port = int(base.rsplit(":", 1)[1])
        keepers = [await half_open(port, HEALTHZ) for _ in range(CAP)]
        for reader, _ in keepers:
            async with asyncio.timeout(5):
                await reader.readuntil(b"ok\n")

        async def keep_asking(reader: asyncio.StreamReader, writer: Any) -> None:
            """Ask again every 0.2 s, well within the header timeout, until evicted."""
            with suppress(ConnectionError, asyncio.IncompleteReadError):
                while True:
                    await asyncio.sleep(0.2 * HEADER_TIMEOUT)
                    writer.write(HEALTHZ)
                    await reader.readuntil(b"ok\n")

        asking = [asyncio.ensure_future(keep_asking(r, w)) for r, w in keepers]
        statuses = []
        try:
            for _ in range(12):
                reader, writer = await half_open(port, HEALTHZ)
                try:
                    async with asyncio.timeout(5):
                        head = await reader.readuntil(b"\r\n")
                    statuses.append(head.split(b" ")[1])
                except (ConnectionError, asyncio.IncompleteReadError):
                    statuses.append(b"reset")
                writer.close()
        finally:
            for task in asking:
                task.cancel()
            for _, writer in keepers:
                writer.close()

    assert [b"200"] * 12 == statuses


async def test_a_client_that_never_reads_its_response_is_closed(
    tmp_path: Path, served: Serve
) -> None:
    """Ten clients that ask for a 7 MB /metrics and never read it (more than the kernel's
    buffers take: the rest waits in the exporter): each is closed once its response has
    waited the write deadline (the header timeout), and the exporter is back to the
    descriptors it had before them."""
    async with exporter(tmp_path, served, sessions=8000, targets=3) as (base, pid):
        port = int(base.rsplit(":", 1)[1])
        baseline = open_fds(pid)
        async with aiohttp.ClientSession() as http, http.get(base + "/metrics") as response:
            assert len(await response.read()) > 6_000_000
        loop = asyncio.get_running_loop()
        stalled = []
        for _ in range(10):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window
            sock.setblocking(False)
            await loop.sock_connect(sock, ("127.0.0.1", port))
            await loop.sock_sendall(sock, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            stalled.append(sock)
        try:
            async with asyncio.timeout(5):  # most are open (the first may be closed already)
                while open_fds(pid) < baseline + 8:
                    await asyncio.sleep(0.02)
            async with asyncio.timeout(10 * HEADER_TIMEOUT):
                while open_fds(pid) > baseline:
                    await asyncio.sleep(0.05)
        finally:
            for sock in stalled:
                sock.close()


async def test_1500_pipelined_requests_are_all_answered(tmp_path: Path, served: Serve) -> None:
    """1,500 GETs sent in one write on one connection are answered, in order, all of them
    (the header scanner follows them in a loop, not one recursion per request)."""
    async with exporter(tmp_path, served) as (base, _):
        port = int(base.rsplit(":", 1)[1])
        reader, writer = await half_open(port, HEALTHZ * 1500)
        answered = 0
        try:
            async with asyncio.timeout(30):
                while answered < 1500:
                    await reader.readuntil(b"ok\n")
                    answered += 1
        finally:
            writer.close()

    assert 1500 == answered


def test_out_of_descriptors_on_accept_is_logged_once_per_interval() -> None:
    """accept() failing with EMFILE a thousand times in a minute is one log line (then one
    per interval, with the count), not a traceback per attempt; other errors pass through."""
    now = [0.0]
    passed: list[dict[str, Any]] = []
    handler = AcceptErrorLog(lambda _loop, ctx: passed.append(ctx), clock=lambda: now[0])
    context = {
        "message": "socket.accept() out of system resource",
        "exception": OSError(errno.EMFILE, "Too many open files"),
    }
    loop = asyncio.new_event_loop()
    try:
        with capture_logs() as logs:
            for _ in range(1000):
                handler(loop, context)
                now[0] += 0.05
            now[0] += 60
            handler(loop, context)
            handler(loop, {"message": "something else", "exception": ValueError("x")})
    finally:
        loop.close()

    failed = [e for e in logs if e["event"] == "server.accept_failed"]
    assert [1, 1000] == [e["failures"] for e in failed]
    assert "Too many open files" == failed[0]["error"]
    assert ["something else"] == [c["message"] for c in passed]
