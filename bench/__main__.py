"""``python -m bench [--quick] [--json FILE] [--only PART...]``: run, print, write JSON.

Starts the simulated accounts (``bench.upstream``) in a process of their own, then takes each
measurement of the goals table with its baseline in the same run (render on change among
them), then the growth figures, then the scaling figures (poll cycle and memory by number of
targets and shards). Prints the tables as Markdown and writes everything to
``bench/results/`` as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import structlog

from bench import load, measure, report
from bench.upstream import Spec
from exporter.providers.catalog import BUILTIN

PARTS = ("scrape", "poll", "latency", "memory", "render", "growth", "scaling")
RESULTS = Path(__file__).resolve().parent / "results"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small and short: a smoke test")
    parser.add_argument("--json", type=Path, help="where to write the results (JSON)")
    parser.add_argument("--only", nargs="+", choices=PARTS, default=PARTS, help="parts to run")
    return parser


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def run(profile: measure.Profile, parts: Sequence[str]) -> dict[str, Any]:
    """Every requested measurement; returns the JSON document (and prints the tables)."""
    n = profile.poll_sessions
    per_target = profile.growth_sessions[0]
    growth_specs = {s: f"g{s}" for s in profile.growth_sessions}
    specs = [
        Spec("scrape", "chaser", measure.SCRAPE_SESSIONS),
        Spec("chaser", "chaser", n),
        Spec("notte", "notte", n),
        Spec("empty", "chaser", 0),
        *([Spec("memory", "chaser", profile.memory_sessions)] if "memory" in parts else []),
        *(Spec(name, "chaser", s) for s, name in growth_specs.items()),
        Spec("scaling", "chaser", measure.SCALING_SESSIONS),
        *(
            Spec(f"latency-{api}", api, measure.LATENCY_SESSIONS, measure.LATENCY_MS)
            for api in ("chaser", "notte", "trigger", *BUILTIN)
        ),
    ]
    rows: list[report.Row] = []
    growth: list[measure.GrowthFigures] = []
    scaling: list[measure.ScalingFigures] = []
    details: dict[str, Any] = {"profile": asdict(profile), "load_tool": load.tool()}
    _say(f"starting the simulated accounts ({n:,} sessions each) ...")
    async with measure.upstream(specs) as up:
        if "scrape" in parts:
            _say("/metrics under load: exporter, bare aiohttp, prometheus_client ...")
            scrapes = await measure.scrape(up, profile)
            for figures in scrapes:
                rows += report.scrape_rows(figures)
            details["scrape"] = [asdict(f) for f in scrapes]
        if "poll" in parts:
            polls = await _polls(up, profile)
            for polled in polls:
                rows += report.poll_rows(polled)
            rows += [report.requests_row(p) for p in polls if p.page_size == 100]
            details["poll"] = [
                asdict(p)
                | {
                    "rate": p.rate,
                    "baseline_rate": p.baseline_rate,
                    "loopback_rate": p.loopback_rate,
                }
                for p in polls
            ]
        if "latency" in parts:
            latencies = await _latencies(up, profile)
            rows += [report.latency_row(f) for f in latencies]
            details["latency"] = [asdict(f) for f in latencies]
        if "memory" in parts:
            _say("peak RSS of once ...")
            memory = await measure.memory(up, "memory", "empty", profile.memory_sessions)
            rows.append(report.memory_row(memory))
            details["memory"] = asdict(memory)
            _say("a full collection of serve's heap, before and after gc.freeze ...")
            heap = measure.gc_heap()
            rows.append(report.heap_row(heap))
            details["gc_heap"] = asdict(heap)
        if "render" in parts:
            _say(f"render on change: {profile.render_targets} targets, per_session ...")
            gc.collect()
            rendered = await measure.render(up, profile)
            rows += report.render_rows(rendered)
            details["render"] = asdict(rendered)
        if "growth" in parts:
            configs = [(s, 1) for s in profile.growth_sessions]
            configs += [(per_target, t) for t in profile.growth_targets if t != 1]
            for sessions, targets in configs:
                _say(f"growth: {sessions:,} sessions x {targets} targets ...")
                gc.collect()
                growth.append(
                    await measure.growth(up, growth_specs[sessions], sessions, targets, profile)
                )
        if "scaling" in parts:
            for targets in profile.scaling_targets:
                for shards in profile.scaling_shards:
                    _say(f"scaling: {targets:,} targets in {shards} shard(s) ...")
                    gc.collect()
                    scaling.append(await measure.scaling(up, "scaling", targets, shards))
    return report.as_json(rows, growth, details, scaling)


POLL_CASES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("chaser", "chaser", {}),
    ("chaser", "chaser_def", {}),
    ("chaser", "chaser", {"page_size": 1000}),
    ("chaser", "chaser_def_1000", {}),
    ("notte", "notte", {}),
    ("notte", "notte_def", {}),
)
"""(population, provider, target options) of each poll row: each hand-written provider
beside a definition of the same API (``measure.DEFINITIONS``)."""


async def _polls(up: measure.Upstream, profile: measure.Profile) -> list[measure.PollFigures]:
    found = []
    for name, provider, options in POLL_CASES:
        _say(f"polls: {provider} {options} ...")
        found.append(await measure.poll(up, name, provider, profile.poll_repeats, **options))
    return found


LATENCY_CASES: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("chaser", "chaser", "total", {}),
    ("chaser", "chaser_def", "ahead", {}),
    ("notte", "notte", "ahead", {}),
    ("notte", "notte_def", "ahead", {}),
    ("trigger", "trigger", "cursor", {"ended_window": "366d"}),
    ("trigger", "trigger_def", "cursor", {"only_active": False}),
    ("e2b", "e2b", "cursor", {}),
    ("browserbase", "browserbase", "cursor", {}),
    ("daytona", "daytona", "cursor", {}),
    ("runloop", "runloop", "cursor", {}),
    ("steel", "steel", "cursor", {}),
)
"""(API, provider, paging rule, target options) of each latency row: each hand-written
provider beside a definition of the same API. A definition with offset or page paging fetches
ahead as far as the previous poll went (``ahead``), from the first page on; the hand-written
Chaser provider learns the total from its first page (``total``). Trigger.dev's
``ended_window`` covers the whole generated population, so both count the same rows."""


async def _latencies(
    up: measure.Upstream, profile: measure.Profile
) -> list[measure.LatencyFigures]:
    found = []
    for api, provider, rule, options in LATENCY_CASES:
        _say(f"latency: {provider}, {measure.LATENCY_MS} ms per request ...")
        found.append(
            await measure.latency(
                up, f"latency-{api}", provider, rule, profile.poll_repeats, **options
            )
        )
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print its tables, write its JSON."""
    args = _parser().parse_args(argv)
    structlog.configure(  # the pollers' logs would drown the tables
        wrapper_class=structlog.make_filtering_bound_logger(40)
    )
    profile = measure.QUICK if args.quick else measure.FULL
    started = time.perf_counter()
    document = asyncio.run(run(profile, args.only))
    document["seconds"] = round(time.perf_counter() - started, 1)
    rows = [report.Row(**r) for r in document["goals"]]
    growth = [
        measure.GrowthFigures(**(g | {"scrape": load.Load(**g["scrape"])}))
        for g in document["growth"]
    ]
    command = "python -m bench" + (" --quick" if args.quick else "")
    if tuple(args.only) != PARTS:
        command += " --only " + " ".join(args.only)
    print(f"session-exporter benchmark: `{command}` on {document['machine']}")
    print(f"load generator: {document['details']['load_tool']}\n")
    if rows:
        print(report.goals_table(rows) + "\n")
    if growth:
        print(report.growth_table(growth) + "\n")
    scaling = [measure.ScalingFigures(**f) for f in document["scaling"]]
    if scaling:
        print(report.scaling_table(scaling) + "\n")
    path = args.json or RESULTS / time.strftime("bench-%Y%m%d-%H%M%S.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"results: {path} ({document['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
