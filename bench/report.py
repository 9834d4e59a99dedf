"""The benchmark's output: the goals table, the growth table and the machine, as text and JSON."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.measure import (
    MIB,
    GrowthFigures,
    HeapFigures,
    LatencyFigures,
    MemoryFigures,
    PollFigures,
    RenderFigures,
    ScalingFigures,
    ScrapeFigures,
)

P99_GOAL_MS = 10.0
CHANGE_GOAL_MS = 25.0
CHANGING_P99_GOAL_MS = 20.0
MEMORY_GOAL_MIB = 64.0
HEAP_GOAL_MS = 1.0


@dataclass(frozen=True)
class Row:
    """One line of the goals table: a figure, its baseline from the same run, ratio and goal."""

    what: str
    result: str
    baseline: str
    baseline_result: str
    ratio: str
    goal: str
    met: bool


def _rate(value: float, unit: str) -> str:
    return f"{value:,.0f} {unit}"


def _times(value: float) -> str:
    return f"{value:.2f}x" if value < 10 else f"{value:,.0f}x"


def _yes(met: bool) -> str:
    return "yes" if met else "**no**"


def scrape_rows(s: ScrapeFigures) -> list[Row]:
    """/metrics vs the bare handler, and vs prometheus_client's server."""
    vs_bare = s.exporter.requests_per_s / s.bare.requests_per_s
    vs_client = s.exporter.requests_per_s / s.client.requests_per_s
    ours = f"{_rate(s.exporter.requests_per_s, 'req/s')}, p99 {s.exporter.p99_ms:.1f} ms"
    how = {
        "prometheus": "as Prometheus scrapes (OpenMetrics, gzip)",
        "plain": "plain GET (text format, no gzip)",
    }[s.variant]
    what = (
        f"`/metrics` requests/s, {how}, {s.connections} connections, {s.series:,} series, "
        f"{s.body_bytes / 1024:,.0f} KiB"
    )
    return [
        Row(
            what=what,
            result=ours,
            baseline="bare aiohttp handler returning the same bytes",
            baseline_result=f"{_rate(s.bare.requests_per_s, 'req/s')}, p99 {s.bare.p99_ms:.1f} ms",
            ratio=_times(vs_bare),
            goal=f">= 0.8x, p99 < {P99_GOAL_MS:g} ms",
            met=vs_bare >= 0.8 and s.exporter.p99_ms < P99_GOAL_MS,
        ),
        Row(
            what="same",
            result=ours,
            baseline="prometheus_client `start_http_server`, collector rendering per scrape",
            baseline_result=f"{_rate(s.client.requests_per_s, 'req/s')}, "
            f"p99 {s.client.p99_ms:.1f} ms",
            ratio=_times(vs_client),
            goal=">= 50x",
            met=vs_client >= 50,
        ),
    ]


def poll_goal(page_size: int) -> float:
    """The goal ratio to the loopback baseline: 0.8x at page size 1000, else 0.6x."""
    return 0.8 if page_size >= 1000 else 0.6


def poll_rows(p: PollFigures) -> list[Row]:
    """A whole poll's sessions/s vs fetching the same pages over loopback and decoding and
    counting them (decoding alone, in memory, shown beside it)."""
    what = (
        f"poll aggregation, {p.provider} {p.sessions:,} sessions, page size {p.page_size}, "
        f"{p.page_concurrency} pages at a time, loopback"
    )
    loopback = p.rate / p.loopback_rate
    goal = poll_goal(p.page_size)
    return [
        Row(
            what=what,
            result=f"{_rate(p.rate, 'sessions/s')} (cyclic GC: {p.gc_collections:g} "
            f"collections, {p.gc_ms:.1f} ms per poll)",
            baseline="the same pages fetched over loopback (same client, same concurrency), "
            "orjson decode + count",
            baseline_result=f"{_rate(p.loopback_rate, 'sessions/s')} (decoding alone, in "
            f"memory: {_rate(p.baseline_rate, 'sessions/s')})",
            ratio=_times(loopback),
            goal=f">= {goal:g}x",
            met=loopback >= goal,
        )
    ]


LATENCY_GOAL = 1.2
_RULES = {
    "total": "the first page, then the rest {c} at a time",
    "ahead": "every page {c} at a time (as far as the last poll went)",
    "cursor": "one page after another",
}


def latency_row(f: LatencyFigures) -> Row:
    """A poll's wall time with a round trip per request, vs the floor its paging allows."""
    listings = " + ".join(str(n) for n in f.pages)
    rule = _RULES[f.rule].format(c=f.page_concurrency)
    if len(f.pages) > 1:
        rule = (
            f"{len(f.pages)} listings side by side ({f.page_concurrency} requests at a time), "
            f"the longest; each {rule}"
        )
    ratio = f.seconds / f.floor_seconds
    return Row(
        what=f"poll wall time, {f.provider}, {f.delay_ms} ms per request, {listings} pages "
        f"({f.requests} requests)",
        result=f"{f.seconds * 1e3:,.0f} ms",
        baseline=f"the floor of its paging: {rule}",
        baseline_result=f"{f.floor_seconds * 1e3:,.0f} ms",
        ratio=_times(ratio),
        goal=f"<= {LATENCY_GOAL:g}x",
        met=ratio <= LATENCY_GOAL,
    )


def heap_row(h: HeapFigures) -> Row:
    """A full collection of serve's heap after startup, with and without ``gc.freeze``."""
    return Row(
        what="a full cyclic-GC collection in `serve` after startup (10 targets)",
        result=f"{h.frozen_full_ms:.2f} ms, {h.frozen_tracked:,} objects scanned "
        f"({h.frozen:,} frozen)",
        baseline="the same heap without `gc.freeze()` after startup",
        baseline_result=f"{h.full_ms:.1f} ms, {h.tracked:,} objects scanned",
        ratio=_times(h.frozen_full_ms / h.full_ms) if h.full_ms else "-",
        goal=f"<= {HEAP_GOAL_MS:g} ms",
        met=h.frozen_full_ms <= HEAP_GOAL_MS,
    )


def requests_row(p: PollFigures) -> Row:
    """Requests a poll sent upstream vs the pages the list needs."""
    return Row(
        what=f"upstream requests per poll, {p.provider} {p.sessions:,} sessions, "
        f"page size {p.page_size}",
        result=f"{p.requests:,}",
        baseline="the minimum number of pages",
        baseline_result=f"{p.minimum_pages:,}",
        ratio=_times(p.requests / p.minimum_pages),
        goal="equal",
        met=p.requests == p.minimum_pages,
    )


def memory_row(m: MemoryFigures) -> Row:
    """Peak RSS of ``once`` over a big account vs an empty one."""
    extra = (m.peak_bytes - m.empty_peak_bytes) / MIB
    return Row(
        what=f"peak RSS of `once`, chaser {m.sessions:,} sessions",
        result=f"{m.peak_bytes / MIB:.1f} MiB",
        baseline="the same process polling 0 sessions",
        baseline_result=f"{m.empty_peak_bytes / MIB:.1f} MiB",
        ratio=f"{extra:+.1f} MiB",
        goal=f"<= +{MEMORY_GOAL_MIB:g} MiB",
        met=extra <= MEMORY_GOAL_MIB,
    )


def render_rows(r: RenderFigures) -> list[Row]:
    """The next scrape after one target's change vs rendering every target, per variant; and
    scrape latency with one change a second vs none."""
    how = {
        "prometheus": "as Prometheus scrapes (OpenMetrics, gzip)",
        "plain": "plain GET (text format, no gzip)",
    }
    size = (
        f"{r.targets} targets x {r.sessions:,} sessions with per_session (max_series 100), "
        f"{r.series:,} series"
    )
    rows = []
    for variant, times in r.change_ms.items():
        median = statistics.median(times)
        rows.append(
            Row(
                what=f"render on change: the scrape right after 1 target changed, {size}, "
                f"{how[variant]}",
                result=f"{median:.1f} ms (max {max(times):.1f} ms of {len(times)})",
                baseline="rendering every target at once (each change, before)",
                baseline_result=f"{r.full_ms[variant]:,.0f} ms",
                ratio=_times(median / r.full_ms[variant]),
                goal=f"<= {CHANGE_GOAL_MS:g} ms",
                met=median <= CHANGE_GOAL_MS,
            )
        )
    rows.append(
        Row(
            what=f"`/metrics` p99 with one change a second, {size}, "
            f"{r.gzip_bytes / 1024:,.0f} KiB gzipped in pieces (whole: "
            f"{r.whole_gzip_bytes / 1024:,.0f} KiB), 1 connection, as Prometheus scrapes",
            result=f"p99 {r.changing.p99_ms:.2f} ms, {_rate(r.changing.requests_per_s, 'req/s')}",
            baseline="the same scrapes without any change",
            baseline_result=f"p99 {r.still.p99_ms:.2f} ms, "
            f"{_rate(r.still.requests_per_s, 'req/s')}",
            ratio=_times(r.changing.p99_ms / r.still.p99_ms),
            goal=f"<= {CHANGING_P99_GOAL_MS:g} ms",
            met=r.changing.p99_ms <= CHANGING_P99_GOAL_MS,
        )
    )
    return rows


def goals_table(rows: Sequence[Row]) -> str:
    """The goals as a Markdown table."""
    lines = [
        "| measurement | result | baseline (same run) | baseline result | ratio | goal | met |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.what} | {r.result} | {r.baseline} | {r.baseline_result} | {r.ratio} | {r.goal} "
        f"| {_yes(r.met)} |"
        for r in rows
    ]
    return "\n".join(lines)


def growth_table(figures: Sequence[GrowthFigures]) -> str:
    """Poll time, render time and scrape latency by sessions and targets, as Markdown."""
    lines = [
        "| sessions | targets | series | poll (all targets) | full render "
        "| `/metrics` p50 | `/metrics` p99 |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {g.sessions:,} | {g.targets} | {g.series:,} | {g.poll_seconds * 1e3:,.0f} ms "
        f"| {g.render_ms:,.1f} ms | {g.scrape.p50_ms:.2f} ms | {g.scrape.p99_ms:.2f} ms |"
        for g in figures
    ]
    return "\n".join(lines)


def scaling_table(figures: Sequence[ScalingFigures]) -> str:
    """Poll-cycle time and memory by targets and shards, as Markdown."""
    lines = [
        "| targets | shards | targets in the largest shard | upstream requests per cycle "
        "(all shards) | poll cycle (slowest shard) | peak RSS of `once` (largest shard) |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {f.targets:,} | {f.shards} | {f.largest_shard:,} | {f.requests_per_cycle:,} "
        f"| {f.cycle_seconds * 1e3:,.0f} ms | {f.peak_bytes / MIB:.1f} MiB |"
        for f in figures
    ]
    return "\n".join(lines)


def machine() -> str:
    """CPU, cores, memory, OS and Python of this machine, in one line."""
    cpu = platform.processor() or platform.machine()
    memory = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f", {int(line.split()[1]) / 1024 / 1024:.0f} GiB RAM"
                break
    return (
        f"{cpu}, {os.cpu_count()} cores{memory}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def as_json(
    rows: Sequence[Row],
    growth: Sequence[GrowthFigures],
    details: dict[str, Any],
    scaling: Sequence[ScalingFigures] = (),
) -> dict[str, Any]:
    """Everything measured, for ``bench/results/*.json``."""
    return {
        "machine": machine(),
        "goals": [asdict(r) for r in rows],
        "growth": [asdict(g) for g in growth],
        "scaling": [asdict(f) for f in scaling],
        "details": details,
    }
