"""``python -m bench.hostile_clients [--only ATTACK...]``: hostile clients against ``serve``.

Each attack starts ``session-exporter serve`` (the one next to this Python) with the default
connection flags on a loopback port, over a Chaser simulator in this process, runs a bounded
loop against it, prints what it measured and stops the server. The figures in
``docs/security.md`` (hostile clients) come from this script, run on the code before and
after each fix (``PYTHONPATH=<a checkout of the older code>`` makes the server run that code).

- ``keepalive``: 512 keep-alive connections (the default cap) each ask ``/healthz`` every
  5 s; how many of 12 new clients get an answer.
- ``unread``: 60 clients ask for a 4.3 MB ``/metrics`` and never read it; the server's open
  descriptors and RSS before, 5 s after and 20 s after (past the 15 s write deadline).
- ``versions``: the p50 of a text scrape while another client cycles ``Accept:
  application/openmetrics-text; version=1.0.N``, and the status of ``version=1.0.x``.
- ``landing``: at 1,000 targets, the time ``/`` takes, and the ``/metrics`` p50 while 4
  clients loop on ``/``.
- ``pipeline``: 1,500 GETs pipelined on one connection: how many are answered, how fast.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import aiohttp

from exporter.simulators import ChaserSimulator, chaser_row, serve

KEY = "sk-hostile-bench-0123456789"
SCRIPT = Path(sys.executable).parent / "session-exporter"
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
T0 = 1_767_225_600.0


def _rows(count: int) -> list[dict[str, object]]:
    return [chaser_row(f"s{i:05d}", "running", T0 - i) for i in range(count)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """A running ``serve``: its base URL, port and pid, and its config file."""

    def __init__(self, base: str, port: int, proc: asyncio.subprocess.Process, config: Path):
        self.base = base
        self.port = port
        self.proc = proc
        self.config = config

    @property
    def pid(self) -> int:
        return self.proc.pid

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0


@asynccontextmanager
async def exporter(url: str, *, targets: int, sessions: int) -> AsyncIterator[Server]:
    """``serve`` over ``targets`` Chaser targets at ``url``, each with per-session series for
    ``sessions`` sessions, until every target polled once."""
    per_session = (
        f", per_session: {{enabled: true, max_series: {sessions}}}" if sessions > 1 else ""
    )
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(
            "poll_interval: 1h\ntargets:\n"
            + "".join(
                f'  - {{name: t{n}, provider: chaser, base_url: "{url}", api_key: "{KEY}"'
                f"{per_session}}}\n"
                for n in range(targets)
            ),
            encoding="utf-8",
        )
        port = _free_port()
        proc = await asyncio.create_subprocess_exec(
            str(SCRIPT),
            "serve",
            "--config",
            str(config),
            "--listen",
            f"127.0.0.1:{port}",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as http, asyncio.timeout(120):
                while True:
                    with suppress(aiohttp.ClientError):
                        async with http.get(base + "/readyz") as response:
                            if response.status == 200:
                                break
                    await asyncio.sleep(0.2)
            yield Server(base, port, proc, config)
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), 10)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


async def _get(port: int, request: bytes, *, within: float = 2.0) -> str:
    """The status of one request on a new connection, or ``reset``/``timeout``."""
    try:
        async with asyncio.timeout(within):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(request)
                head = await reader.readuntil(b"\r\n")
            finally:
                writer.close()
        return head.split(b" ")[1].decode()
    except (ConnectionError, asyncio.IncompleteReadError):
        return "reset"
    except TimeoutError:
        return "timeout"


async def keepalive(urls: dict[str, str]) -> None:
    """512 keep-alive connections asking every 5 s; then 12 new clients."""
    async with exporter(urls["small"], targets=1, sessions=1) as server:
        keepers = []
        for _ in range(512):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(HEALTHZ)
            await reader.readuntil(b"ok\n")
            keepers.append((reader, writer))

        async def keep(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with suppress(ConnectionError, asyncio.IncompleteReadError):
                while True:
                    await asyncio.sleep(5)
                    writer.write(HEALTHZ)
                    await reader.readuntil(b"ok\n")

        tasks = [asyncio.ensure_future(keep(r, w)) for r, w in keepers]
        await asyncio.sleep(1)
        statuses = [await _get(server.port, HEALTHZ) for _ in range(12)]
        for task in tasks:
            task.cancel()
        alive = sum(not r.at_eof() for r, _ in keepers)
        for _, writer in keepers:
            writer.close()
    answered = statuses.count("200")
    print(
        f"keepalive: {answered} of 12 new /healthz clients answered ({statuses}); "
        f"{alive} of 512 keep-alive connections still open"
    )


async def unread(urls: dict[str, str]) -> None:
    """60 clients that never read a 4.3 MB /metrics."""
    async with exporter(urls["big"], targets=2, sessions=7000) as server:
        async with aiohttp.ClientSession() as http, http.get(server.base + "/metrics") as r:
            size = len(await r.read())
        await asyncio.sleep(1)
        before = (server.fds(), server.rss_mib())
        socks = []
        loop = asyncio.get_running_loop()
        for _ in range(60):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.setblocking(False)
            await loop.sock_connect(sock, ("127.0.0.1", server.port))
            await loop.sock_sendall(sock, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            socks.append(sock)
        await asyncio.sleep(5)
        after5 = (server.fds(), server.rss_mib())
        await asyncio.sleep(15)
        after20 = (server.fds(), server.rss_mib())
        for sock in socks:
            sock.close()
    print(
        f"unread: /metrics {size / 1e6:.1f} MB; descriptors and RSS before {before[0]}, "
        f"{before[1]:.0f} MiB; 5 s after 60 unread requests {after5[0]}, {after5[1]:.0f} MiB; "
        f"20 s after {after20[0]}, {after20[1]:.0f} MiB"
    )


async def _p50(http: aiohttp.ClientSession, url: str, headers: dict[str, str], count: int) -> float:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        async with http.get(url, headers=headers) as response:
            await response.read()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


async def versions(urls: dict[str, str]) -> None:
    """Text scrapes while another client cycles OpenMetrics versions."""
    async with (
        exporter(urls["big"], targets=2, sessions=7000) as server,
        aiohttp.ClientSession() as http,
    ):
        metrics = server.base + "/metrics"
        prometheus = {"Accept": "text/plain;version=0.0.4", "Accept-Encoding": "gzip"}
        await _p50(http, metrics, prometheus, 3)
        quiet = await _p50(http, metrics, prometheus, 50)
        stop = asyncio.Event()

        async def cycle() -> None:
            n = 0
            while not stop.is_set():
                accept = f"application/openmetrics-text; version=1.0.{n}"
                async with http.get(metrics, headers={"Accept": accept}) as response:
                    await response.read()
                n += 1

        cycler = asyncio.ensure_future(cycle())
        busy = await _p50(http, metrics, prometheus, 50)
        stop.set()
        await cycler
        async with http.get(
            metrics, headers={"Accept": "application/openmetrics-text; version=1.0.x"}
        ) as response:
            status = response.status
    print(
        f"versions: text scrape p50 {quiet:.1f} ms alone, {busy:.1f} ms while a client cycles "
        f"version=1.0.N; version=1.0.x answered HTTP {status}"
    )


async def landing(urls: dict[str, str]) -> None:
    """/ at 1,000 targets, alone and against /metrics."""
    async with (
        exporter(urls["small"], targets=1000, sessions=1) as server,
        aiohttp.ClientSession() as http,
    ):
        page = await _p50(http, server.base + "/", {}, 10)
        alone = await _p50(http, server.base + "/metrics", {}, 30)
        stop = asyncio.Event()

        async def loop_landing() -> None:
            while not stop.is_set():
                async with http.get(server.base + "/") as response:
                    await response.read()

        loopers = [asyncio.ensure_future(loop_landing()) for _ in range(4)]
        busy = await _p50(http, server.base + "/metrics", {}, 30)
        stop.set()
        await asyncio.gather(*loopers)
    print(
        f"landing: / p50 {page:.1f} ms at 1,000 targets; /metrics p50 {alone:.1f} ms alone, "
        f"{busy:.1f} ms while 4 clients loop on /"
    )


async def pipeline(urls: dict[str, str]) -> None:
    """1,500 pipelined GETs on one connection."""
    async with exporter(urls["small"], targets=1, sessions=1) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        started = time.perf_counter()
        writer.write(HEALTHZ * 1500)
        answered = 0
        with suppress(TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            async with asyncio.timeout(10):
                while answered < 1500:
                    await reader.readuntil(b"ok\n")
                    answered += 1
        took = time.perf_counter() - started
        writer.close()
    print(f"pipeline: {answered} of 1,500 pipelined GETs answered, in {took * 1000:.0f} ms")


ATTACKS: dict[str, Callable[[dict[str, str]], Awaitable[None]]] = {
    "keepalive": keepalive,
    "unread": unread,
    "versions": versions,
    "landing": landing,
    "pipeline": pipeline,
}


async def _main(only: list[str]) -> None:
    big = ChaserSimulator(sessions=_rows(7000), api_key=KEY)
    small = ChaserSimulator(sessions=_rows(1), api_key=KEY)
    async with serve(big) as big_url, serve(small) as small_url:
        for name in only:
            await ATTACKS[name]({"big": big_url, "small": small_url})


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hostile_clients", description=__doc__)
    parser.add_argument("--only", nargs="+", choices=list(ATTACKS), default=list(ATTACKS))
    args = parser.parse_args()
    asyncio.run(_main(args.only))


if __name__ == "__main__":
    main()
