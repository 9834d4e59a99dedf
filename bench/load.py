"""HTTP load: ``wrk`` when installed, else a small asyncio load generator in its own process.

Either runs in a separate process from the server under test, with ``connections``
keep-alive connections (re-opened when the server closes them, as HTTP/1.0 servers do)
issuing ``GET`` requests back to back for ``duration`` seconds.

``python -m bench.load URL CONNECTIONS DURATION HEADERS_JSON`` runs the asyncio generator and
prints its result as JSON.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


@dataclass(frozen=True)
class Load:
    """What one load run measured."""

    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    tool: str


def tool() -> str:
    """``wrk`` when it is on the PATH, else ``python``."""
    return "wrk" if shutil.which("wrk") else "python"


async def run(
    url: str,
    *,
    connections: int,
    duration: float,
    headers: Mapping[str, str] | None = None,
    using: str | None = None,
) -> Load:
    """Load ``url`` for ``duration`` seconds sending ``headers``; ``using``: wrk or python."""
    using = using or tool()
    headers = dict(headers or {})
    if using == "wrk":
        args = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency"]
        for name, value in headers.items():
            args += ["-H", f"{name}: {value}"]
        out = await _output(*args, url)
        return parse_wrk(out)
    out = await _output(
        sys.executable,
        "-m",
        "bench.load",
        url,
        str(connections),
        str(duration),
        json.dumps(headers),
        cwd=ROOT,
    )
    return Load(**json.loads(out))


async def _output(*args: str, cwd: Path | None = None) -> str:
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=cwd
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({proc.returncode}): {err.decode()[-500:]}")
    return out.decode()


def _seconds(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match[1]) * _UNITS[match[2]]


def parse_wrk(out: str) -> Load:
    """The request rate, median and 99th percentile latency and errors of ``wrk --latency``."""
    rate = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE)
    if rate is None or p50 is None or p99 is None:
        raise ValueError(f"unexpected wrk output:\n{out}")
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors += int(non_2xx[1]) if non_2xx else 0
    return Load(
        requests_per_s=float(rate[1]),
        p50_ms=_seconds(p50[1]) * 1e3,
        p99_ms=_seconds(p99[1]) * 1e3,
        errors=errors,
        tool="wrk",
    )


async def _connection(
    host: str, port: int, request: bytes, until: float, latencies: list[float]
) -> int:
    """Requests back to back on one connection (re-opened when closed); returns the errors."""
    errors = 0
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while time.perf_counter() < until:
        try:
            if writer is None or reader is None:
                reader, writer = await asyncio.open_connection(host, port)
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            match = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
            if match is not None:
                await reader.readexactly(int(match[1]))
            else:
                await reader.read()  # no length: the body ends with the connection
            latencies.append(time.perf_counter() - started)
            if head[9:12] != b"200":
                errors += 1
            if not head.startswith(b"HTTP/1.1") or b"connection: close" in head.lower():
                writer.close()  # HTTP/1.0 or closing server: the next request reconnects
                reader = writer = None
        except (OSError, asyncio.IncompleteReadError):
            errors += 1
            reader = writer = None
    if writer is not None:
        writer.close()
    return errors


async def _generate(
    url: str, connections: int, duration: float, headers: Mapping[str, str]
) -> Load:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    lines = [f"GET {parts.path or '/'} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    latencies: list[float] = []
    started = time.perf_counter()
    until = started + duration
    errors = await asyncio.gather(
        *(_connection(host, port, request, until, latencies) for _ in range(connections))
    )
    elapsed = time.perf_counter() - started
    latencies.sort()
    count = len(latencies)

    def pct(q: float) -> float:
        return latencies[min(count - 1, int(q * count))] * 1e3 if count else 0.0

    return Load(
        requests_per_s=count / elapsed,
        p50_ms=pct(0.50),
        p99_ms=pct(0.99),
        errors=sum(errors),
        tool="python",
    )


if __name__ == "__main__":
    result = asyncio.run(
        _generate(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), json.loads(sys.argv[4]))
    )
    print(json.dumps(asdict(result)))
