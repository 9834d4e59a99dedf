"""The exporter's series about itself, from the real console script over real sockets.

``serve`` and ``demo`` export the standard process, platform and GC series of
prometheus_client; ``once`` does not (a process that exits at once has nothing to watch), but
it shows the same config hash as ``serve``.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import platform
import signal
import sys
import time
from pathlib import Path

import aiohttp
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from exporter.config.settings import load_settings
from exporter.polling.supervisor import config_hash
from exporter.simulators import ChaserSimulator, chaser_row
from tests.conftest import Serve
from tests.harness import Exposition, console_script, free_port
from tests.test_cli import KEY, get_text, run, serving, wait_ready, write_config

PROCESS_FAMILIES = {
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_start_time_seconds",
    "process_open_fds",
    "process_max_fds",
    "process_cpu_seconds",
    "python_info",
    "python_gc_objects_collected",
    "python_gc_objects_uncollectable",
    "python_gc_collections",
}
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.2"
)
MIB = 1024 * 1024


def config(tmp_path: Path, url: str) -> Path:
    return write_config(
        tmp_path,
        f"""
        poll_interval: 30s
        targets:
          - name: ch
            provider: chaser
            base_url: {url}
            api_key: "{KEY}"
        """,
    )


def assert_sane_process_series(metrics: Exposition, *, started: float, now: float) -> None:
    """The process series of a process started within [started, now], with fds and memory."""
    start = metrics.get("process_start_time_seconds")
    assert start is not None
    assert started - 1 <= start <= now  # /proc's boot time is whole seconds
    fds = metrics.get("process_open_fds")
    limit = metrics.get("process_max_fds")
    assert fds is not None
    assert limit is not None
    assert 3 <= fds <= limit  # stdin, stdout, stderr at least, and the listening socket
    resident = metrics.get("process_resident_memory_bytes")
    assert resident is not None
    assert 10 * MIB < resident < 2048 * MIB
    cpu = metrics.get("process_cpu_seconds_total")
    assert cpu is not None
    assert 0 < cpu < now - started + 1  # imports took some; no more than wall time on 1 core
    assert 1.0 == metrics.get(
        "python_info", implementation="CPython", version=platform.python_version()
    )
    for generation in ("0", "1", "2"):
        collections = metrics.get("python_gc_collections_total", generation=generation)
        assert collections is not None
        assert collections >= 0


async def test_serve_exports_sane_process_series(tmp_path: Path, served: Serve) -> None:
    """`serve` shows its own memory, fds, CPU, start time, Python and GC on /metrics, in both
    formats and gzipped as Prometheus asks; /probe (a target's view) leaves them out."""
    chaser = ChaserSimulator(sessions=[chaser_row("c1", "running", time.time() - 60)], api_key=KEY)
    path = config(tmp_path, await served(chaser))
    started = time.time()
    async with serving(tmp_path, path) as server, aiohttp.ClientSession() as http:
        await wait_ready(http, server)
        status, text = await get_text(http, f"{server.base}/metrics")
        now = time.time()
        headers = {"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"}
        async with http.get(
            f"{server.base}/metrics", headers=headers, auto_decompress=False
        ) as response:
            assert "gzip" == response.headers["Content-Encoding"]
            openmetrics = gzip.decompress(await response.read()).decode()
        _, probe = await get_text(http, f"{server.base}/probe?target=ch")

    assert 200 == status
    metrics = Exposition.parse(text)
    assert_sane_process_series(metrics, started=started, now=now)
    assert 1.0 == metrics.get("sessions", target="ch", status="running")
    families = {f.name for f in text_string_to_metric_families(openmetrics)}  # type: ignore[no-untyped-call]
    assert PROCESS_FAMILIES <= families
    assert openmetrics.endswith("# EOF\n")
    assert "process_" not in probe
    assert "python_" not in probe.replace("python_version", "")


async def test_demo_exports_sane_process_series() -> None:
    """`demo` shows the same process series as `serve`."""
    port = free_port()
    started = time.time()
    proc = await asyncio.create_subprocess_exec(
        console_script(),
        "demo",
        "--listen",
        f"127.0.0.1:{port}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "SESSION_EXPORTER_CONFIG": ""},
    )
    try:
        async with aiohttp.ClientSession() as http, asyncio.timeout(30):
            while True:
                try:
                    status, text = await get_text(http, f"http://127.0.0.1:{port}/metrics")
                    break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
        now = time.time()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 10)

    assert 0 == proc.returncode, err.decode()[-2000:]
    assert 200 == status
    assert_sane_process_series(Exposition.parse(text), started=started, now=now)


async def test_once_shows_the_config_hash_serve_shows(tmp_path: Path, served: Serve) -> None:
    """`once` prints the config's real hash, the one `serve` exports for the same file (not
    0), and no process series."""
    chaser = ChaserSimulator(sessions=[chaser_row("c1", "running", time.time() - 60)], api_key=KEY)
    path = config(tmp_path, await served(chaser))
    expected = config_hash(load_settings(path))

    once = await run("once", "--config", str(path))
    async with serving(tmp_path, path) as server, aiohttp.ClientSession() as http:
        await wait_ready(http, server)
        _, text = await get_text(http, f"{server.base}/metrics")

    assert 0 == once.returncode, once.stderr
    printed = Exposition.parse(once.stdout)
    assert 0 < expected
    assert expected == printed.get("sessions_exporter_config_hash")
    assert expected == Exposition.parse(text).get("sessions_exporter_config_hash")
    assert "process_" not in once.stdout


async def test_the_same_file_gives_the_same_hash_in_every_process(tmp_path: Path) -> None:
    """The config hash does not depend on the process's string-hash seed (per_session's phases
    are a set, iterated in another order under another seed)."""
    path = config(tmp_path, "http://127.0.0.1:9")
    script = (
        "import sys; from pathlib import Path; from exporter.config.settings import load_settings; "
        "from exporter.polling.supervisor import config_hash; "
        "print(config_hash(load_settings(Path(sys.argv[1]))))"
    )
    hashes = set()
    for seed in ("0", "1", "2"):
        done = await run(
            "-c", script, str(path), program=(sys.executable,), env={"PYTHONHASHSEED": seed}
        )
        assert 0 == done.returncode, done.stderr
        hashes.add(float(done.stdout))

    assert {config_hash(load_settings(path))} == hashes
