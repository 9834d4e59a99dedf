"""``python -m bench.hostile``: what hostile inputs cost the exporter (issue 22's attacks).

Each case runs in a fresh process (so its peak RSS is its own), on loopback only, once:

- ``error-body``: a Notte target answered HTTP 503 with 16 MiB of ``{"detail": [{}, ...]}``
  sent as ~16 KiB of gzip;
- ``together-errors``: a Together answer whose ``errors`` array has 2,000,000 items (16 MiB);
- ``flat-yaml``: ``check-config`` of a config with a 1 MB flat YAML list (250,000 items).

Printed per case: the longest hold of the event loop (CPU time between two of its turns),
the peak RSS over the same process's baseline, and the wall time.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from aiohttp import web

MIB = 1024 * 1024
CASES = ("error-body", "together-errors", "flat-yaml")


class LoopProbe:
    """The longest CPU time the loop's thread spent between two of its turns."""

    def __init__(self) -> None:
        self.longest = 0.0

    async def run(self) -> None:
        while True:
            before = time.thread_time()
            await asyncio.sleep(0.005)
            self.longest = max(self.longest, time.thread_time() - before)


async def _serve(path: str, body: bytes, status: int, headers: dict[str, str]) -> web.AppRunner:
    async def handler(_request: web.Request) -> web.Response:
        return web.Response(body=body, status=status, headers=headers)

    app = web.Application()
    app.router.add_get(path, handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


async def _poll_case(case: str) -> dict[str, float]:
    from exporter.config.settings import Settings  # noqa: PLC0415 - after the baseline
    from exporter.polling.runtime import new_pollers, new_store  # noqa: PLC0415
    from exporter.upstream.client import new_client_session  # noqa: PLC0415

    if case == "error-body":
        count = 16 * MIB // 3
        body = gzip.compress(b'{"detail":[' + b",".join([b"{}"] * count) + b"]}", 9)
        headers = {"Content-Encoding": "gzip", "x-should-retry": "false"}
        runner = await _serve("/sessions/", body, 503, headers)
        del body
        target = {"name": "n", "provider": "notte"}
    else:
        errors = ["x" * 4] * 2_000_000
        body = orjson.dumps({"data": {"sessions": []}, "errors": errors})
        del errors
        runner = await _serve("/v1/tci/sessions", body, 200, {})
        target = {"name": "t", "provider": "together"}
    port = runner.addresses[0][1]
    base = f"http://127.0.0.1:{port}" + ("/v1" if case == "together-errors" else "")
    settings = Settings(
        targets=[target | {"base_url": base, "api_key": "k" * 16, "max_response_bytes": 64 * MIB}]
    )
    store = new_store(settings)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    probe = LoopProbe()
    probing = asyncio.create_task(probe.run())
    started = time.monotonic()
    async with new_client_session() as session:
        (poller,) = new_pollers(settings, session, store)
        await poller.poll()
    wall = time.monotonic() - started
    probing.cancel()
    await runner.cleanup()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"hold_s": probe.longest, "rss_mib": (peak - baseline) / 1024, "wall_s": wall}


def _flat_yaml() -> dict[str, float]:
    one = 'targets:\n  - name: a\n    provider: chaser\n    api_key: "abcdefgh1234"\n'
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "flat.yaml"
        path.write_text(one + "junk:\n" + "- a\n" * 250_000, encoding="utf-8")
        from exporter.config.settings import ConfigError, load_settings  # noqa: PLC0415

        baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.monotonic()
        with contextlib.suppress(ConfigError):
            load_settings(path)
        wall = time.monotonic() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"hold_s": wall, "rss_mib": (peak - baseline) / 1024, "wall_s": wall}


def child(case: str) -> None:
    """Run one case in this process and print its figures as JSON."""
    figures = _flat_yaml() if case == "flat-yaml" else asyncio.run(_poll_case(case))
    print(json.dumps({k: round(v, 3) for k, v in figures.items()}))


def main() -> int:
    """Run every case in its own process and print a line each."""
    for case in CASES:
        out = subprocess.run(
            [sys.executable, "-m", "bench.hostile", "--case", case],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        ).stdout
        figures = json.loads(out.strip().splitlines()[-1])
        print(
            f"{case:16} loop hold {figures['hold_s']:.3f} s  "
            f"RSS +{figures['rss_mib']:.0f} MiB  wall {figures['wall_s']:.2f} s"
        )
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--case":
        child(sys.argv[2])
    else:
        sys.exit(main())
