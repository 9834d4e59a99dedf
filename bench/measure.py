"""The measurements: each figure of the exporter next to its baseline, taken in the same run."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import gzip
import itertools
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from bench import load
from bench import upstream as upstream_module
from bench.upstream import KEY, Spec
from exporter.config.settings import Settings
from exporter.exposition.cache import GZIP_LEVEL, ExpositionCache
from exporter.exposition.collector import SessionCollector
from exporter.polling.runtime import new_pollers, new_store
from exporter.polling.state import Store
from exporter.providers.catalog import BUILTIN
from exporter.providers.target import TargetBase
from exporter.upstream.client import new_client_session
from exporter.web.app import EXPOSITION, STORE, create_app

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
_ONCE = (sys.executable, "-m", "exporter", "once")


@dataclass(frozen=True)
class Profile:
    """How big and how long: the full run, or ``--quick`` for the smoke test."""

    load_seconds: float
    rounds: int
    scrape_targets: int
    scrape_detail: int
    poll_sessions: int
    poll_repeats: int
    growth_sessions: tuple[int, ...]
    growth_targets: tuple[int, ...]
    latency_seconds: float
    scaling_targets: tuple[int, ...] = (10, 100, 1_000)
    scaling_shards: tuple[int, ...] = (1, 2, 3)
    render_targets: int = 100
    render_changes: int = 20
    render_seconds: float = 10
    memory_sessions: int = 1_000_000


FULL = Profile(
    load_seconds=5,
    rounds=3,
    scrape_targets=10,
    scrape_detail=50,
    poll_sessions=100_000,
    poll_repeats=5,
    growth_sessions=(1_000, 10_000, 100_000),
    growth_targets=(1, 10, 100),
    latency_seconds=2,
)
QUICK = Profile(
    load_seconds=1,
    rounds=1,
    scrape_targets=2,
    scrape_detail=10,
    poll_sessions=2_000,
    poll_repeats=2,
    growth_sessions=(100, 1_000),
    growth_targets=(1, 3),
    latency_seconds=1,
    scaling_targets=(10, 30),
    scaling_shards=(1, 2),
    render_targets=4,
    render_changes=4,
    render_seconds=2,
    memory_sessions=2_000,
)
SCRAPE_SESSIONS = 1_000
"""Sessions of each target behind the /metrics measurements."""
SCALING_SESSIONS = 100
"""Sessions of each target in the scaling measurements (one page each)."""
RENDER_DETAIL = 100
"""``per_session.max_series`` of each target in the render-on-change measurements."""


# --- the simulated upstream -------------------------------------------------------------------


class Upstream:
    """The simulated accounts, served by ``bench.upstream`` in a process of their own."""

    def __init__(self, base: str, session: aiohttp.ClientSession) -> None:
        self.base = base
        self._session = session

    def url(self, name: str) -> str:
        """The ``base_url`` of population ``name``."""
        return f"{self.base}/{name}"

    async def stats(self) -> dict[str, dict[str, int]]:
        """Per population: requests served so far, and sessions a default poll lists."""
        async with self._session.get(f"{self.base}/_stats") as response:
            stats: dict[str, dict[str, int]] = await response.json()
            return stats

    async def requests(self, name: str) -> int:
        """Requests served so far for population ``name``."""
        return (await self.stats())[name]["requests"]

    async def get(self, name: str, path: str, params: Mapping[str, str]) -> bytes:
        """One page of population ``name``, as the exporter would get it."""
        headers = {"Authorization": f"Bearer {KEY}"}
        url = f"{self.base}/{name}{path}"
        async with self._session.get(url, params=params, headers=headers) as response:
            response.raise_for_status()
            return await response.read()


@contextlib.asynccontextmanager
async def _process(module: str, *args: str) -> AsyncIterator[str]:
    """Run ``python -m module args``, which prints ``PORT <n>``; yields its base URL.

    The process stops when its stdin closes, on exit.
    """
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    try:
        line = (await proc.stdout.readline()).decode()
        if not line.startswith("PORT "):
            raise RuntimeError(f"{module} did not start: {line!r}")
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


@contextlib.asynccontextmanager
async def client_server(targets: Sequence[dict[str, Any]]) -> AsyncIterator[str]:
    """prometheus_client's own server polling ``targets`` (``bench.client_server``)."""
    config = json.dumps({"targets": list(targets), "poll_interval": "1h"})
    async with _process("bench.client_server", config) as url:
        yield url


@contextlib.asynccontextmanager
async def upstream(specs: Sequence[Spec]) -> AsyncIterator[Upstream]:
    """Start ``bench.upstream`` with ``specs`` and stop it on exit."""
    async with (
        _process("bench.upstream", *map(str, specs)) as base,
        aiohttp.ClientSession() as session,
    ):
        yield Upstream(base, session)


def target(name: str, provider: str, base_url: str, **options: Any) -> dict[str, Any]:
    """A target entry for a simulated account, without a rate limit (the benchmark is local)."""
    entry: dict[str, Any] = {
        "name": name,
        "provider": provider,
        "base_url": base_url,
        "api_key": KEY,
        "max_pages": 100_000,
        **options,
    }
    if "rate_limit" in TargetBase.model_fields:
        entry.setdefault("rate_limit", 0)
    return entry


_CHASER_API: dict[str, Any] = {
    "path": "/v1/sessions",
    "paging": {"style": "offset", "size_param": "limit", "size": 100, "total": "/total"},
    "rows": ["/sessions", ""],
    "fields": {
        "id": "/id",
        "status": "/status",
        "created": "/created_at",
        "leases": "/active_connection_leases",
        "kind": "/session_type",
    },
    "statuses": {
        "pending": "pending",
        "starting": "pending",
        "ready": "live",
        "running": "live",
        "active": "live",
        "idle": "live",
        "stopping": "live",
        "stopped": "ended",
        "terminated": "ended",
        "completed": "ended",
        "expired": "ended",
        "failed": "failed",
        "error": "failed",
    },
}
DEFINITIONS: dict[str, dict[str, Any]] = {
    "chaser_def": _CHASER_API,
    "chaser_def_1000": _CHASER_API | {"paging": _CHASER_API["paging"] | {"size": 1000}},
    "notte_def": {
        "path": "/sessions/",
        "query": {"only_active": "true"},
        "paging": {
            "style": "page",
            "size_param": "page_size",
            "size": 100,
            "has_next": "/has_next",
        },
        "rows": ["/items", ""],
        "fields": {
            "id": "/session_id",
            "status": "/status",
            "created": "/created_at",
            "last_activity": "/last_accessed_at",
            "kind": "/browser_type",
        },
        "statuses": {
            "authenticating": "pending",
            "active": "live",
            "closed": "ended",
            "timed_out": "ended",
            "error": "failed",
        },
        "deadline": {
            "earliest": [
                {
                    "time": "/created_at",
                    "plus": "/max_duration_minutes",
                    "unit": "min",
                    "default": 15,
                },
                {"time": "/last_accessed_at", "plus": "/idle_timeout_minutes", "unit": "min"},
            ]
        },
    },
    "trigger_def": {
        "path": "/api/v1/sessions",
        "paging": {
            "style": "cursor",
            "size_param": "page[size]",
            "size": 100,
            "cursor_param": "page[after]",
            "next": "/pagination/next",
        },
        "rows": "/data",
        "fields": {
            "id": "/id",
            "created": "/createdAt",
            "deadline": "/expiresAt",
            "last_activity": "/updatedAt",
            "kind": "/type",
        },
        "statuses": {"active": "live", "closed": "ended", "expired": "ended"},
        "status_filter": {"param": "filter[status]", "join": "each", "case": "upper"},
    },
}
"""Definitions of the hand-written providers' APIs, polled beside them (same simulators)."""
API = {"chaser_def": "chaser", "chaser_def_1000": "chaser", "notte_def": "notte"}
"""The API (simulator) each definition reads."""


def settings(*targets: dict[str, Any]) -> Settings:
    """Settings polling hourly, so nothing polls behind a measurement's back."""
    return Settings(targets=list(targets), poll_interval="1h", providers=DEFINITIONS)


async def fill(store: Store, config: Settings) -> float:
    """Poll every target of ``config`` into ``store`` concurrently; the wall time it took."""
    async with new_client_session() as session:
        pollers = new_pollers(config, session, store)
        started = time.perf_counter()
        snapshots = await asyncio.gather(*(p.poll() for p in pollers))
        elapsed = time.perf_counter() - started
    failed = [f"{s.name}: {s.error}" for s in snapshots if not s.up]
    if failed:
        raise RuntimeError("poll failed: " + "; ".join(failed))
    return elapsed


@contextlib.asynccontextmanager
async def served(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on loopback as ``serve`` does (no access log); yields its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def bare_app(body: bytes, response_headers: Mapping[str, str]) -> web.Application:
    """The baseline: a bare aiohttp handler returning pre-rendered bytes (and their headers)."""
    headers = dict(response_headers)

    async def handler(_request: web.Request) -> web.Response:
        return web.Response(body=body, headers=headers)

    app = web.Application()
    app.router.add_get("/metrics", handler)
    return app


def series(body: bytes) -> int:
    """Samples in a text exposition."""
    return sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))


# --- /metrics -----------------------------------------------------------------------------------


PROMETHEUS = {
    "Accept": "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
    "application/openmetrics-text;version=0.0.1;q=0.4,"
    "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,"
    "*/*;q=0.1",
    "Accept-Encoding": "gzip",
}
"""What Prometheus sends with each scrape: OpenMetrics preferred, gzip accepted."""
VARIANTS: Mapping[str, Mapping[str, str]] = {"prometheus": PROMETHEUS, "plain": {}}
"""Scrape request headers measured: as Prometheus scrapes, and a bare ``GET`` (text, no gzip)."""


@dataclass(frozen=True)
class ScrapeFigures:
    """/metrics under load with one set of request headers: the exporter and both baselines.

    Each figure is the round of median request rate among the rounds.
    """

    variant: str
    series: int
    body_bytes: int
    connections: int
    tool: str
    exporter: load.Load
    bare: load.Load
    client: load.Load


def _median(loads: Sequence[load.Load]) -> load.Load:
    """The run of median request rate (its latencies belong to that same run)."""
    ordered = sorted(loads, key=lambda x: x.requests_per_s)
    return ordered[len(ordered) // 2]


async def scrape(up: Upstream, profile: Profile, *, connections: int = 32) -> list[ScrapeFigures]:
    """The exporter's /metrics vs a bare handler and vs prometheus_client's own server.

    The rounds interleave the three servers, so a disturbance hits all of them alike.
    """
    targets = [
        target(
            f"scrape-{i}",
            "chaser",
            up.url("scrape"),
            per_session={"enabled": True, "max_series": profile.scrape_detail},
        )
        for i in range(profile.scrape_targets)
    ]
    config = settings(*targets)
    app = create_app(config, poll=False)
    store = app[STORE]
    await fill(store, config)
    text, _ = app[EXPOSITION].response("", "")
    figures = []
    async with served(app) as ours, client_server(targets) as client:
        for variant, headers in VARIANTS.items():
            body, response_headers = app[EXPOSITION].response(
                headers.get("Accept", ""), headers.get("Accept-Encoding", "")
            )
            runs: dict[str, list[load.Load]] = {"exporter": [], "bare": [], "client": []}
            async with served(bare_app(body, response_headers)) as bare:
                urls = {
                    "exporter": f"{ours}/metrics",
                    "bare": f"{bare}/metrics",
                    "client": f"{client}/metrics",
                }
                for _ in range(profile.rounds):
                    for name, url in urls.items():
                        runs[name].append(
                            await load.run(
                                url,
                                connections=connections,
                                duration=profile.load_seconds,
                                headers=headers,
                            )
                        )
            figures.append(
                ScrapeFigures(
                    variant=variant,
                    series=series(text),
                    body_bytes=len(body),
                    connections=connections,
                    tool=runs["exporter"][0].tool,
                    exporter=_median(runs["exporter"]),
                    bare=_median(runs["bare"]),
                    client=_median(runs["client"]),
                )
            )
    return figures


# --- polls --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PollFigures:
    """One target's poll: sessions/s vs decoding the same pages, and requests per poll."""

    provider: str
    sessions: int
    page_size: int
    page_concurrency: int
    seconds: float
    baseline_seconds: float
    loopback_seconds: float
    requests: int
    minimum_pages: int
    gc_collections: float = 0.0
    """Cyclic-GC collections (any generation) per poll, median of the rounds."""
    gc_ms: float = 0.0
    """Milliseconds spent in those collections per poll, median of the rounds."""

    @property
    def rate(self) -> float:
        """Sessions aggregated per second by a whole poll."""
        return self.sessions / self.seconds

    @property
    def baseline_rate(self) -> float:
        """Sessions per second of the orjson-decode-and-count baseline."""
        return self.sessions / self.baseline_seconds

    @property
    def loopback_rate(self) -> float:
        """Sessions per second of fetching the same pages, then decoding and counting."""
        return self.sessions / self.loopback_seconds


def _page_params(provider: str, listed: int, page_size: int) -> list[tuple[str, Mapping[str, str]]]:
    """The (path, query) of every page a poll needs, in the provider's paging scheme."""
    pages = max(1, math.ceil(listed / page_size))
    if provider == "chaser":
        return [
            ("/v1/sessions", {"limit": str(page_size), "offset": str(i * page_size)})
            for i in range(pages)
        ]
    return [
        ("/sessions/", {"page": str(i + 1), "page_size": str(page_size), "only_active": "true"})
        for i in range(pages)
    ]


def decode_and_count(bodies: Sequence[bytes], key: str) -> int:
    """The baseline: decode each page with orjson and count its rows."""
    count = 0
    for body in bodies:
        for _row in orjson.loads(body)[key]:
            count += 1
    return count


async def fetch_and_count(
    up: Upstream,
    name: str,
    pages: Sequence[tuple[str, Mapping[str, str]]],
    key: str,
    concurrency: int,
) -> float:
    """The loopback baseline: fetch the pages (``concurrency`` at a time, with the exporter's
    HTTP client settings), decode each with orjson and count its rows; the seconds it took."""
    headers = {"Authorization": f"Bearer {KEY}"}
    gate = asyncio.Semaphore(concurrency)
    count = 0

    async def one(session: aiohttp.ClientSession, path: str, params: Mapping[str, str]) -> None:
        nonlocal count
        async with gate, session.get(f"{up.url(name)}{path}", params=params, headers=headers) as r:
            body = await r.read()
        for _row in orjson.loads(body)[key]:
            count += 1

    async with new_client_session() as session:
        started = time.perf_counter()
        await asyncio.gather(*(one(session, path, params) for path, params in pages))
        return time.perf_counter() - started


async def poll(up: Upstream, name: str, provider: str, repeats: int, **options: Any) -> PollFigures:
    """Median of ``repeats`` rounds, each a poll of population ``name``, the in-memory
    baseline and the loopback baseline in turn (after one warm-up of each), so a disturbance
    of the machine hits all three alike."""
    config = settings(target("poll", provider, up.url(name), **options))
    defined = DEFINITIONS.get(provider)
    size = defined["paging"]["size"] if defined else options.get("page_size", 100)
    page_size = int(size)
    concurrency = int(options.get("page_concurrency", _default_concurrency(config)))
    api = API.get(provider, provider)
    key = "sessions" if api == "chaser" else "items"
    store = new_store(config)
    seconds: list[float] = []
    baseline: list[float] = []
    loopback: list[float] = []
    requests: list[int] = []
    async with new_client_session() as session:
        poller = new_pollers(config, session, store)[0]
        await poller.poll()  # fills the upstream's page cache (and any paging hint)
        listed = (await up.stats())[name]["listed"]
        pages = _page_params(api, listed, page_size)
        bodies = [await up.get(name, path, params) for path, params in pages]
        await fetch_and_count(up, name, pages, key, concurrency)  # warm-up
        collections: list[int] = []
        gc_seconds: list[float] = []
        for _ in range(repeats):
            gc.collect()  # each side starts from the same heap
            before = await up.requests(name)
            with GcClock() as clock:
                started = time.perf_counter()
                snapshot = await poller.poll()
                seconds.append(time.perf_counter() - started)
            collections.append(clock.collections)
            gc_seconds.append(clock.seconds)
            requests.append(await up.requests(name) - before)
            if not snapshot.up:
                raise RuntimeError(f"poll of {name} failed: {snapshot.error}")
            gc.collect()
            started = time.perf_counter()
            counted = decode_and_count(bodies, key)
            baseline.append(time.perf_counter() - started)
            gc.collect()
            loopback.append(await fetch_and_count(up, name, pages, key, concurrency))
    aggregate = snapshot.aggregate
    assert aggregate is not None
    if counted != aggregate.sessions:
        raise RuntimeError(f"poll counted {aggregate.sessions} sessions, the pages hold {counted}")
    return PollFigures(
        provider=provider,
        sessions=aggregate.sessions,
        page_size=page_size,
        page_concurrency=concurrency,
        seconds=statistics.median(seconds),
        baseline_seconds=statistics.median(baseline),
        loopback_seconds=statistics.median(loopback),
        requests=max(requests),
        minimum_pages=len(pages),
        gc_collections=statistics.median(collections),
        gc_ms=statistics.median(gc_seconds) * 1e3,
    )


class GcClock:
    """Counts the cyclic GC's collections and the time they take, while entered."""

    def __init__(self) -> None:
        self.collections = 0
        self.seconds = 0.0
        self._started = 0.0

    def _callback(self, phase: str, _info: Mapping[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.collections += 1
            self.seconds += time.perf_counter() - self._started

    def __enter__(self) -> GcClock:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *_exc: object) -> None:
        gc.callbacks.remove(self._callback)


@dataclass(frozen=True)
class HeapFigures:
    """A full collection of ``serve``'s heap after startup, before and after ``settle_heap``."""

    tracked: int
    full_ms: float
    frozen_tracked: int
    frozen_full_ms: float
    frozen: int


def gc_heap(targets: int = 10) -> HeapFigures:
    """``bench.gcheap`` in a fresh process, on ``targets`` Chaser targets."""
    config = {
        "poll_interval": "1h",
        "targets": [
            {
                "name": f"t{i}",
                "provider": "chaser",
                "api_key": KEY,
                "base_url": "http://127.0.0.1:9",
            }
            for i in range(targets)
        ],
    }
    done = subprocess.run(
        [sys.executable, "-m", "bench.gcheap", json.dumps(config)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    return HeapFigures(**json.loads(done.stdout))


def _default_concurrency(config: Settings) -> int:
    value = getattr(config.targets[0], "page_concurrency", 1)
    return int(value)


# --- latency: what a real account feels ---------------------------------------------------------

LATENCY_MS = 50
"""The simulated round trip of each request in the latency rows."""
LATENCY_SESSIONS = 2_000
"""Sessions of each latency population: 20 pages of 100."""


@dataclass(frozen=True)
class LatencyFigures:
    """A poll's wall time with every answer ``delay_ms`` late, against the floor its paging
    allows: what the pages cost if each round trip were the only cost."""

    provider: str
    rule: str
    pages: tuple[int, ...]
    """Pages of each listing."""
    page_concurrency: int
    delay_ms: int
    seconds: float
    floor_seconds: float
    requests: int


def latency_floor(rule: str, pages: Sequence[int], concurrency: int, delay: float) -> float:
    """The least wall time of a poll under its paging rule, with ``delay`` per request.

    ``total``: the first page, then the rest ``concurrency`` at a time; ``ahead``: every page
    ``concurrency`` at a time (fetched ahead as far as the previous poll went); ``cursor``:
    one page after another; several listings side by side: the longest, and never less than
    all their pages ``concurrency`` at a time.
    """
    longest = 0
    for n in pages:
        if rule == "total":
            trips = 1 + math.ceil((n - 1) / concurrency)
        elif rule == "ahead":
            trips = math.ceil(n / concurrency)
        else:
            trips = n
        longest = max(longest, trips)
    return max(longest, math.ceil(sum(pages) / concurrency)) * delay


_STATUS_KEY = {"e2b": "state", "daytona": "state"}


def _defined_pages(provider: str, sessions: int) -> tuple[int, ...]:
    """The pages of each listing a default poll of a built-in definition makes."""
    definition = BUILTIN[provider]
    rows = upstream_module.population(provider, sessions)
    key = _STATUS_KEY.get(provider, "status")
    counts = Counter(str(row.get(key)).lower() for row in rows)
    size = definition.paging.size
    flt = definition.status_filter
    assert flt is not None
    wanted = list(definition.active)
    groups = [[s] for s in wanted] if flt.join == "each" else [wanted]

    def pages(n: int) -> int:
        if size is None:
            return 1
        return max(1, math.ceil(n / size))

    return tuple(pages(sum(counts[s] for s in group)) for group in groups)


def _listing_pages(api: str, sessions: int, page_size: int, each_status: bool) -> tuple[int, ...]:
    if api in BUILTIN:
        return _defined_pages(api, sessions)
    if api == "trigger" and each_status:
        population = upstream_module.trigger_population(sessions)
        counts = [
            sum(1 for r in population if r["status"] == s) for s in ("ACTIVE", "CLOSED", "EXPIRED")
        ]
        return tuple(max(1, math.ceil(c / page_size)) for c in counts)
    if api == "notte":
        population = upstream_module.notte_population(sessions)
        sessions = sum(1 for r in population if r["status"] == "active")
    return (max(1, math.ceil(sessions / page_size)),)


async def latency(
    up: Upstream, name: str, provider: str, rule: str, repeats: int, **options: Any
) -> LatencyFigures:
    """The median wall time of ``repeats`` polls (after one that warms the caches and the
    paging hint), and the floor of the provider's paging rule."""
    base = up.url(name) + ("/api" if provider == "daytona" else "")
    config = settings(target("latency", provider, base, **options))
    # a provider without the option (Trigger.dev) is held to the engine's default
    concurrency = int(
        options.get("page_concurrency", getattr(config.targets[0], "page_concurrency", 4))
    )
    api = API.get(provider, provider.removesuffix("_def"))
    each = provider in ("trigger", "trigger_def")
    pages = _listing_pages(api, LATENCY_SESSIONS, 100, each)
    store = new_store(config)
    seconds: list[float] = []
    requests: list[int] = []
    async with new_client_session() as session:
        poller = new_pollers(config, session, store)[0]
        await poller.poll()
        for _ in range(repeats):
            before = await up.requests(name)
            started = time.perf_counter()
            snapshot = await poller.poll()
            seconds.append(time.perf_counter() - started)
            requests.append(await up.requests(name) - before)
            if not snapshot.up:
                raise RuntimeError(f"poll of {name} failed: {snapshot.error}")
    return LatencyFigures(
        provider=provider,
        rule=rule,
        pages=pages,
        page_concurrency=concurrency,
        delay_ms=LATENCY_MS,
        seconds=statistics.median(seconds),
        floor_seconds=latency_floor(rule, pages, concurrency, LATENCY_MS / 1000),
        requests=max(requests),
    )


# --- memory -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryFigures:
    """Peak RSS of ``session-exporter once`` over a big account and over an empty one."""

    sessions: int
    peak_bytes: int
    empty_peak_bytes: int


def once_peak_rss(config: Mapping[str, Any]) -> int:
    """Run ``python -m exporter once`` on ``config``; its peak resident set size in bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(json.dumps(config))  # JSON is YAML
        done = subprocess.run(
            [sys.executable, "-m", "bench.rss", *_ONCE, "--config", str(path)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        )
    code, kib = done.stdout.split()
    if code != "0":
        raise RuntimeError(f"once failed ({code}): {done.stderr[-800:]}")
    return int(kib) * 1024  # ru_maxrss is in KiB on Linux


async def memory(up: Upstream, name: str, empty: str, sessions: int) -> MemoryFigures:
    """Peak RSS of ``once`` over population ``name`` vs the empty population (best of 2 each)."""

    def config(population: str) -> dict[str, Any]:
        return {
            "poll_interval": "1h",
            "log_level": "error",
            "targets": [target("rss", "chaser", up.url(population))],
        }

    loop = asyncio.get_running_loop()

    async def peak(population: str) -> int:
        runs = [await loop.run_in_executor(None, once_peak_rss, config(population)) for _ in "ab"]
        return min(runs)

    return MemoryFigures(
        sessions=sessions, peak_bytes=await peak(name), empty_peak_bytes=await peak(empty)
    )


# --- growth -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GrowthFigures:
    """How cost grows with sessions and targets: one poll, one render, one scrape."""

    sessions: int
    targets: int
    series: int
    poll_seconds: float
    render_ms: float
    scrape: load.Load


def _best_of(times: int, action: Callable[[], object]) -> float:
    best = math.inf
    for _ in range(times):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best


async def growth(
    up: Upstream, name: str, sessions: int, targets: int, profile: Profile
) -> GrowthFigures:
    """``targets`` targets polling population ``name`` (``sessions`` each), polled concurrently."""
    config = settings(*(target(f"t{i}", "chaser", up.url(name)) for i in range(targets)))
    app = create_app(config, poll=False)
    store = app[STORE]
    await fill(store, config)  # warm-up: the upstream's page cache
    poll_seconds = await fill(store, config)

    def render() -> None:
        ExpositionCache(store).response("", "")

    render_seconds = _best_of(3, render)
    body, _ = app[EXPOSITION].response("", "")
    async with served(app) as url:
        scraped = await load.run(f"{url}/metrics", connections=1, duration=profile.latency_seconds)
    return GrowthFigures(
        sessions=sessions * targets,
        targets=targets,
        series=series(body),
        poll_seconds=poll_seconds,
        render_ms=render_seconds * 1e3,
        scrape=scraped,
    )


# --- scaling: targets and shards -------------------------------------------------------------


@dataclass(frozen=True)
class ScalingFigures:
    """One config of ``targets`` targets split into ``shards`` shards: the slowest shard's poll
    cycle and the largest shard's peak RSS (each shard measured alone, as on its own core)."""

    targets: int
    shards: int
    largest_shard: int
    cycle_seconds: float
    peak_bytes: int
    requests_per_cycle: int


async def scaling(up: Upstream, name: str, targets: int, shards: int) -> ScalingFigures:
    """``targets`` targets on population ``name``, split into ``shards`` shards.

    For each shard: one poll cycle of its own targets in this process (after a warm-up), and
    the peak RSS of ``once --shard i --total-shards shards`` in a process of its own.
    """
    entries = [target(f"acct-{i:04d}", "chaser", up.url(name)) for i in range(targets)]
    loop = asyncio.get_running_loop()
    cycles: list[float] = []
    peaks: list[int] = []
    sizes: list[int] = []
    before = await up.requests(name)
    for shard in range(shards):
        config = Settings(targets=entries, poll_interval="1h", shard=shard, total_shards=shards)
        sizes.append(len(config.own_targets()))
        await fill(new_store(config), config)  # warm-up
        cycles.append(await fill(new_store(config), config))
        document = {
            "poll_interval": "1h",
            "log_level": "error",
            "shard": shard,
            "total_shards": shards,
            "targets": entries,
        }
        peaks.append(await loop.run_in_executor(None, once_peak_rss, document))
    requests = await up.requests(name) - before
    return ScalingFigures(
        targets=targets,
        shards=shards,
        largest_shard=max(sizes),
        cycle_seconds=max(cycles),
        peak_bytes=max(peaks),
        requests_per_cycle=requests // 3,  # warm-up, measured cycle and `once` of every shard
    )


# --- render on change -------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderFigures:
    """One target of many changing: the cost of the next scrape, against rendering every
    target at once (what each change cost before per-target fragments); and scrape latency
    with one change a second, against the same scrapes without any change."""

    targets: int
    sessions: int
    series: int
    text_bytes: int
    gzip_bytes: int
    whole_gzip_bytes: int
    full_ms: dict[str, float]
    change_ms: dict[str, list[float]]
    changing: load.Load
    still: load.Load


def render_everything(store: Store, accept: str, accept_encoding: str) -> bytes:
    """The baseline: one rendering of every target with prometheus_client's encoder (and
    gzip of the whole), as /metrics did on each change before."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(SessionCollector(store))
    encoder, _ = choose_encoder(accept)
    body = encoder(registry)
    return gzip.compress(body, GZIP_LEVEL) if "gzip" in accept_encoding else body


def _touch(store: Store, name: str) -> None:
    """Publish a new snapshot of target ``name`` (a poll's worth of change: a new object)."""
    snapshot = store.snapshots[name]
    store.publish(replace(snapshot, polls=snapshot.polls + 1))


async def render(up: Upstream, profile: Profile) -> RenderFigures:
    """``render_targets`` targets of ``SCRAPE_SESSIONS`` sessions each, per_session on.

    For each scrape variant: the median of three full renders, then ``render_changes`` times a
    change of one target (in turn) followed by the scrape's response, timed. Then
    ``render_seconds`` of back-to-back scrapes as Prometheus sends them on one connection,
    with one change a second and without any, in ``rounds`` interleaved rounds.
    """
    detail = {"enabled": True, "max_series": RENDER_DETAIL}
    names = [f"render-{i:03d}" for i in range(profile.render_targets)]
    config = settings(*(target(n, "chaser", up.url("scrape"), per_session=detail) for n in names))
    app = create_app(config, poll=False)
    store = app[STORE]
    cache = app[EXPOSITION]
    await fill(store, config)
    full: dict[str, float] = {}
    change: dict[str, list[float]] = {}
    for variant, headers in VARIANTS.items():
        accept, encoding = headers.get("Accept", ""), headers.get("Accept-Encoding", "")
        times = []
        for _ in range(3):
            started = time.perf_counter()
            render_everything(store, accept, encoding)
            times.append(time.perf_counter() - started)
        full[variant] = statistics.median(times) * 1e3
        cache.response(accept, encoding)
        change[variant] = []
        for i in range(profile.render_changes):
            _touch(store, names[i % len(names)])
            started = time.perf_counter()
            cache.response(accept, encoding)
            change[variant].append((time.perf_counter() - started) * 1e3)
    text, _ = cache.response("", "")
    zipped, _ = cache.response(PROMETHEUS["Accept"], "gzip")

    async def one_change_a_second() -> None:
        for i in itertools.count():
            await asyncio.sleep(1)
            _touch(store, names[i % len(names)])

    runs: dict[str, list[load.Load]] = {"changing": [], "still": []}
    async with served(app) as url:
        for _ in range(profile.rounds):  # interleaved, so both see the same machine
            changer = asyncio.create_task(one_change_a_second())
            try:
                runs["changing"].append(await _scrape_one(url, profile.render_seconds))
            finally:
                changer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await changer
            runs["still"].append(await _scrape_one(url, profile.render_seconds))
    return RenderFigures(
        targets=len(names),
        sessions=SCRAPE_SESSIONS,
        series=series(text),
        text_bytes=len(text),
        gzip_bytes=len(zipped),
        full_ms=full,
        change_ms=change,
        whole_gzip_bytes=len(gzip.compress(gzip.decompress(zipped), GZIP_LEVEL)),
        changing=_median_p99(runs["changing"]),
        still=_median_p99(runs["still"]),
    )


async def _scrape_one(url: str, seconds: float) -> load.Load:
    """Back-to-back scrapes of ``url`` on one connection, as Prometheus asks."""
    return await load.run(f"{url}/metrics", connections=1, duration=seconds, headers=PROMETHEUS)


def _median_p99(loads: Sequence[load.Load]) -> load.Load:
    """The run of median p99 latency."""
    return sorted(loads, key=lambda x: x.p99_ms)[len(loads) // 2]
