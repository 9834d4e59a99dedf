"""``python -m tests.soak --minutes 3``: a long run under churn and faults; is it flat?

The five simulated providers of the demo run with their churning populations and AGI
outage schedule, and on top of that intermittent random faults of every kind (HTTP
errors, 429s with both ``Retry-After`` forms, timeouts, trickling, truncated and dropped
answers, malformed JSON, the wrong shape, oversized bodies, a looping cursor, a
``has_next`` that never ends, a ``total`` that lies), plus two targets that never answer
(connection refused, DNS failure). The real exporter app polls them all in this process
every ``--poll-interval`` while /metrics is scraped continuously.

RSS and the asyncio task count are reported at boot, after the warm-up (the baseline),
every minute and at the end; the verdict is *flat* when the end RSS is within the
tolerance of the baseline, the steady task count (without aiohttp's per-connection and
per-request server tasks, which come and go with keep-alive) is unchanged, and no task
is left once everything has shut down. Exit status 0 when flat, 1 otherwise.

Not collected by pytest (the name does not start with ``test_``); a 5-second run of the
same core is ``tests/test_soak_smoke.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import random
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
from structlog.typing import EventDict, WrappedLogger

from exporter.cli.demo import DEMO_KEY, DemoWorld, Outage
from exporter.config.settings import Settings
from exporter.simulators import (
    ChaserSimulator,
    Fault,
    NotteSimulator,
    Simulator,
    TriggerSimulator,
    chaser_row,
    trigger_row,
)
from exporter.web.app import create_app

MIB = 1024 * 1024
TIMEOUT = 1.0
"""Each target's request timeout (s): the delay and trickle faults outlast it."""
MAX_BYTES = 256 * 1024
"""Each target's max_response_bytes: the oversized-body fault exceeds it."""
MAX_PAGES = 50
TRANSIENT = frozenset({"RequestHandler.start", "RequestHandler._handle_request", "Event.wait"})
"""Coroutines of long tasks that come and go with keep-alive connections, slow requests and
fault delays (their number is bounded by the connection pools)."""

FaultMaker = Callable[[Simulator], Fault | None]
"""Starts one kind of fault on a simulator: returns the `Fault` to set, or None when it
changed the simulator itself (Notte's endless paging)."""

COMMON_FAULTS: dict[str, FaultMaker] = {
    "http_500": lambda _: Fault(status=500),
    "http_503": lambda _: Fault(status=503),
    "http_502_html": lambda _: Fault(
        status=502, body=b"<html>bad gateway</html>", headers={"Content-Type": "text/html"}
    ),
    "http_429_seconds": lambda _: Fault(status=429, headers={"Retry-After": "1"}),
    "http_429_date": lambda _: Fault(
        status=429, headers={"Retry-After": formatdate(time.time() + 1, usegmt=True)}
    ),
    "http_401": lambda _: Fault(status=401),
    "http_403": lambda _: Fault(status=403),
    "timeout": lambda _: Fault(delay=2 * TIMEOUT),
    "trickle": lambda _: Fault(trickle=0.1),
    "truncate": lambda _: Fault(truncate=True),
    "drop": lambda _: Fault(drop=True),
    "malformed_json": lambda _: Fault(body=b'{"sessions": [{"id": '),
    "wrong_shape": lambda _: Fault(body=b'{"unexpected": ["shape"]}'),
    "too_large": lambda _: Fault(body=b"[" + b" " * MAX_BYTES + b"]"),
}


def _chaser_total_lie(_: Simulator) -> Fault:
    """One row on every page and a `total` the walk never reaches."""
    page = {"sessions": [chaser_row("chs-lie", "running", time.time())], "total": 1_000_000}
    return Fault(body=json.dumps(page).encode())


def _trigger_cursor_loop(_: Simulator) -> Fault:
    """Every page names the same `next` cursor, so the walk would loop back on itself."""
    row = trigger_row("session_loop", "ACTIVE", time.time(), time.time())
    del row["status"]
    page = {"data": [row], "pagination": {"next": "session_loop"}}
    return Fault(body=json.dumps(page).encode())


def _notte_endless(sim: Simulator) -> None:
    """`has_next: true` on every page, for ever."""
    assert isinstance(sim, NotteSimulator)
    sim.endless = True


@dataclass
class Chaos:
    """Switches random faults on and off in the simulators, each for a few seconds."""

    sims: list[Simulator]
    rng: random.Random
    period: float = 1.0
    rate: float = 0.5
    injected: Counter[str] = field(default_factory=Counter)
    _active: dict[int, tuple[Simulator, Fault | None, float]] = field(default_factory=dict)

    def kinds(self, sim: Simulator) -> dict[str, FaultMaker]:
        """Every fault that applies to ``sim``."""
        kinds = dict(COMMON_FAULTS)
        if isinstance(sim, ChaserSimulator):
            kinds["total_lie"] = _chaser_total_lie
        if isinstance(sim, TriggerSimulator):
            kinds["cursor_loop"] = _trigger_cursor_loop
        if isinstance(sim, NotteSimulator):
            kinds["endless_has_next"] = _notte_endless
        return kinds

    def step(self, now: float) -> None:
        """Clear faults whose time is up; maybe start a new one on a quiet simulator."""
        for sim in self.sims:
            sim.requests.clear()  # the simulators' request logs would grow without end
        for key, (sim, fault, until) in list(self._active.items()):
            if now >= until:
                self._clear(sim, fault)
                del self._active[key]
        quiet = [s for s in self.sims if id(s) not in self._active and s.fault is None]
        if quiet and self.rng.random() < self.rate:
            sim = self.rng.choice(quiet)
            kinds = self.kinds(sim)
            fewest = min(self.injected[k] for k in kinds)  # so every kind gets its turn
            kind = self.rng.choice(sorted(k for k in kinds if self.injected[k] == fewest))
            make = kinds[kind]
            fault = make(sim)
            if fault is not None:
                sim.fault = fault
            self._active[id(sim)] = (sim, fault, now + self.rng.uniform(0.5, 4.0))
            self.injected[kind] += 1

    def clear_all(self) -> None:
        """End every fault still on."""
        for sim, fault, _ in self._active.values():
            self._clear(sim, fault)
        self._active.clear()

    @staticmethod
    def _clear(sim: Simulator, fault: Fault | None) -> None:
        if isinstance(sim, NotteSimulator):
            sim.endless = False
        if fault is not None and sim.fault is fault:  # the demo's outage may own it now
            sim.fault = None

    async def run(self) -> None:
        """Step every ``period`` until cancelled, then clear what is still on."""
        try:
            while True:
                await asyncio.sleep(self.period)
                self.step(time.monotonic())
        finally:
            self.clear_all()


@dataclass
class Scraper:
    """Scrapes /metrics without pause (text, OpenMetrics and gzip), and now and then / too."""

    url: str
    pause: float = 0.05
    ok: int = 0
    failed: int = 0
    last: str = ""

    async def run(self) -> None:
        """Scrape until cancelled; keeps the last text-format /metrics body."""
        accepts = ["text/plain", "application/openmetrics-text; version=1.0.0"]
        async with aiohttp.ClientSession() as session:
            while True:
                n = self.ok + self.failed
                path = "/" if n % 25 == 24 else ("/readyz" if n % 25 == 12 else "/metrics")
                headers = {"Accept": accepts[n % 2]}
                if n % 3 == 0:
                    headers["Accept-Encoding"] = "gzip"  # aiohttp decompresses it again
                try:
                    async with session.get(self.url + path, headers=headers) as response:
                        body = await response.read()
                    self.ok += 1
                    if path == "/metrics" and n % 2 == 0:
                        self.last = body.decode()
                except aiohttp.ClientError:
                    self.failed += 1
                await asyncio.sleep(self.pause)


@dataclass(frozen=True)
class Sample:
    """Memory and tasks at one moment of the run."""

    label: str
    elapsed: float
    rss_kib: int
    tasks: int
    steady_tasks: int
    scrapes: int


@dataclass
class Report:
    """What a soak run saw."""

    duration: float
    warmup: float
    targets: int
    baseline_tasks: int
    samples: list[Sample] = field(default_factory=list)
    after_tasks: int = 0
    leftover: list[str] = field(default_factory=list)
    scrapes_ok: int = 0
    scrapes_failed: int = 0
    injected: Counter[str] = field(default_factory=Counter)
    poll_errors: Counter[str] = field(default_factory=Counter)
    logs: Counter[str] = field(default_factory=Counter)

    @property
    def start(self) -> Sample:
        """The baseline: the sample taken after the warm-up."""
        return next(s for s in self.samples if s.label == "start")

    @property
    def end(self) -> Sample:
        """The last sample."""
        return self.samples[-1]

    def verdict(self, tolerance_kib: int) -> tuple[bool, str]:
        """Whether the run was flat, and why in one line."""
        growth = self.end.rss_kib - self.start.rss_kib
        rss_ok = growth <= tolerance_kib
        tasks_ok = self.start.steady_tasks == self.end.steady_tasks
        after_ok = self.after_tasks == self.baseline_tasks
        why = (
            f"RSS {growth / 1024:+.1f} MiB (tolerance {tolerance_kib / 1024:g} MiB), "
            f"steady tasks {self.start.steady_tasks} -> {self.end.steady_tasks}, "
            f"tasks after shutdown {self.after_tasks} (baseline {self.baseline_tasks})"
        )
        return rss_ok and tasks_ok and after_ok, why


def rss_kib() -> int:
    """This process's resident set size in KiB (Linux; 0 where /proc is missing)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _coro_name(task: asyncio.Task[Any]) -> str:
    return getattr(task.get_coro(), "__qualname__", "?")


async def settled_task_counts(
    window: float = 1.5, ignore: frozenset[str] = TRANSIENT
) -> tuple[int, int]:
    """All tasks now, and the steady ones: alive ``window`` seconds ago and still now, less
    those running a coroutine in ``ignore`` (the current task counts). Polls and requests
    in flight end within the window (the soak's timeout is shorter), so are not steady."""
    before = asyncio.all_tasks()
    await asyncio.sleep(window)
    now = asyncio.all_tasks()
    steady = sum(1 for t in now & before if _coro_name(t) not in ignore)
    return len(now), steady


class _CountingHandler(logging.Handler):
    def __init__(self, counts: Counter[str]) -> None:
        super().__init__(logging.WARNING)
        self.counts = counts

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[f"{record.levelname.lower()} {record.name}: {record.getMessage()[:60]}"] += 1


@contextlib.contextmanager
def counted_logs() -> Iterator[Counter[str]]:
    """Count log events by level and name instead of printing them; restore logging after."""
    counts: Counter[str] = Counter()

    def count(_logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
        counts[f"{method} {event.get('event')}"] += 1
        raise structlog.DropEvent

    old = structlog.get_config()["processors"]
    structlog.configure(processors=[count])
    handler = _CountingHandler(counts)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield counts
    finally:
        root.removeHandler(handler)
        structlog.configure(processors=old)


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def soak_settings(world: DemoWorld, urls: dict[str, str], poll_interval: float) -> Settings:
    """The demo's targets tightened for the soak, plus a refused and an unresolvable one."""
    limits = {"timeout": TIMEOUT, "max_pages": MAX_PAGES, "max_response_bytes": MAX_BYTES}
    targets = [target | limits for target in world.targets(urls)]
    for name, url in (
        ("refused", f"http://127.0.0.1:{_closed_port()}"),
        ("unresolvable", "http://soak.invalid"),
    ):
        targets.append(
            {"name": name, "provider": "chaser", "base_url": url, "api_key": DEMO_KEY} | limits
        )
    return Settings(poll_interval=poll_interval, targets=targets)


def poll_errors(exposition: str) -> Counter[str]:
    """``sessions_exporter_poll_errors_total`` summed by reason."""
    errors: Counter[str] = Counter()
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == "sessions_exporter_poll_errors_total" and sample.value:
                errors[sample.labels.get("reason", "?")] += int(sample.value)
    return errors


async def run_soak(
    duration: float,
    *,
    warmup: float,
    sample_every: float = 60.0,
    poll_interval: float = 0.2,
    fault_period: float = 1.0,
    seed: int = 1,
    settle: float = 1.5,
    on_sample: Callable[[Sample], None] = lambda _: None,
) -> Report:
    """Run the soak for ``duration`` seconds and report what it saw.

    Each sample watches the tasks for ``settle`` seconds to tell steady ones from those
    in flight (see :func:`settled_task_counts`).
    """
    _, baseline = await settled_task_counts(0.1, frozenset())
    rng = random.Random(seed)  # noqa: S311 - simulated faults, not cryptography
    world = DemoWorld(seed=seed, outage=Outage(start=10.0, length=15.0, period=40.0))
    with counted_logs() as logs:
        async with world.running(tick=0.25) as urls:
            settings = soak_settings(world, urls, poll_interval)
            report = Report(duration, warmup, len(settings.targets), baseline, logs=logs)
            runner = web.AppRunner(create_app(settings), access_log=None)
            await runner.setup()
            try:
                site = web.TCPSite(runner, "127.0.0.1", 0)
                await site.start()
                url = f"http://127.0.0.1:{runner.addresses[0][1]}"
                chaos = Chaos([p.sim for p in world.populations], rng, period=fault_period)
                scraper = Scraper(url)
                helpers = [
                    asyncio.create_task(chaos.run(), name="soak:chaos"),
                    asyncio.create_task(scraper.run(), name="soak:scraper"),
                ]
                began = time.monotonic()

                async def sample(label: str) -> None:
                    gc.collect()
                    tasks, steady = await settled_task_counts(settle)
                    elapsed = time.monotonic() - began
                    taken = Sample(label, elapsed, rss_kib(), tasks, steady, scraper.ok)
                    report.samples.append(taken)
                    on_sample(taken)

                await sample("boot")
                await asyncio.sleep(max(0.0, warmup - (time.monotonic() - began)))
                await sample("start")
                marks = (sample_every * i for i in range(1, int(duration // sample_every) + 1))
                for mark in (m for m in marks if warmup < m < duration):
                    await asyncio.sleep(max(0.0, mark - (time.monotonic() - began)))
                    await sample(f"{mark / 60:g} min")
                await asyncio.sleep(max(0.0, duration - (time.monotonic() - began)))
                await sample("end")
                for task in helpers:
                    task.cancel()
                for task in helpers:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                report.scrapes_ok, report.scrapes_failed = scraper.ok, scraper.failed
                report.injected = chaos.injected
                report.poll_errors = poll_errors(scraper.last)
            finally:
                await runner.cleanup()
    gc.collect()
    _, report.after_tasks = await settled_task_counts(0.1, frozenset())
    current = asyncio.current_task()
    report.leftover = sorted(
        f"{t.get_name()} ({_coro_name(t)})" for t in asyncio.all_tasks() if t is not current
    )
    return report


def _row(sample: Sample) -> str:
    return (
        f"  {sample.label:<8} {sample.elapsed:7.1f}s {sample.rss_kib / 1024:9.1f} "
        f"{sample.tasks:6d} {sample.steady_tasks:7d} {sample.scrapes:8d}"
    )


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{name} x{n}" for name, n in sorted(counter.items())) or "none"


async def _main(args: argparse.Namespace) -> int:
    duration = args.minutes * 60
    warmup = args.warmup if args.warmup is not None else min(30.0, duration / 6)
    print(
        f"soak: {args.minutes:g} min, poll_interval {args.poll_interval:g}s, "
        f"warm-up {warmup:g}s, faults every ~{args.fault_period:g}s",
        flush=True,
    )
    print(
        f"  {'sample':<8} {'elapsed':>8} {'RSS MiB':>9} {'tasks':>6} {'steady':>7} {'scrapes':>8}"
    )
    report = await run_soak(
        duration,
        warmup=warmup,
        poll_interval=args.poll_interval,
        fault_period=args.fault_period,
        seed=args.seed,
        on_sample=lambda s: print(_row(s), flush=True),
    )
    print(f"targets: {report.targets} (5 simulated, 1 refused, 1 unresolvable)")
    print(f"scrapes: {report.scrapes_ok} ok, {report.scrapes_failed} failed")
    print(f"faults injected: {_counts(report.injected)}")
    print(f"poll errors by reason (/metrics): {_counts(report.poll_errors)}")
    print(f"log events: {_counts(report.logs)}")
    if report.leftover:
        print(f"tasks left after shutdown: {', '.join(report.leftover)}")
    flat, why = report.verdict(int(args.rss_tolerance_mib * 1024))
    print(f"verdict: {'FLAT' if flat else 'NOT FLAT'}: {why}")
    return 0 if flat else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--minutes", type=float, default=3.0, help="length of the run")
    parser.add_argument("--warmup", type=float, help="seconds before the baseline (default 30)")
    parser.add_argument("--poll-interval", type=float, default=0.2, help="seconds between polls")
    parser.add_argument("--fault-period", type=float, default=1.0, help="seconds between faults")
    parser.add_argument("--rss-tolerance-mib", type=float, default=8.0, help="allowed growth")
    parser.add_argument("--seed", type=int, default=1)
    return asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
