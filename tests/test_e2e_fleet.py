"""End to end: a fleet of real `serve` processes under a real Prometheus.

Three shards plus one unsharded exporter, and the /probe hashmod scrape config of
deploy/prometheus/probe-hashmod.yml, all scraped by one Prometheus, export the same session
series; an HA pair under the shipped rules gives every dashboard query the same numbers, and the
same firing alerts, as one replica does. The exporters poll once (a long poll interval), so every
value is fixed and the comparisons are exact; Prometheus scrapes every second.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from deploy import rules
from exporter.config.settings import shard_of
from exporter.simulators import ChaserSimulator, NotteSimulator, Simulator, chaser_row, notte_row
from tests.conftest import Serve
from tests.dashboards import queries, substitute
from tests.e2e import World, answers, instant, start_prometheus, world
from tests.harness import free_port
from tests.tools import ROOT, require

pytestmark = pytest.mark.slow

KEY = "fleet-key-0123456789"
SHARDS = 3
NAMES = [f"t{i}" for i in range(7)]
"""Target names; with the pinned split they fall on all three shards (0, 2, 2, 2, 0, 0, 1)."""
SESSION_SERIES = (
    "sessions",
    "sessions_oldest_created_timestamp_seconds",
    "sessions_overdue",
    "sessions_next_deadline_timestamp_seconds",
    "sessions_connection_leases",
    "sessions_unleased",
    "sessions_oldest_activity_timestamp_seconds",
    "sessions_age_seconds_bucket",
    "sessions_target_up",
    "session_info",
    "session_created_timestamp_seconds",
)
"""Series whose values depend only on the upstream data."""
PER_PROCESS = {"Exporter build"}
"""Panels that list every exporter process on purpose: compared as sets of rows."""
TIMING = {"Poll duration"}
"""Panels showing how long a replica's poll took: equal up to the difference of two polls."""
Sample = tuple[tuple[tuple[str, str], ...], str]


def simulators(now: float) -> dict[str, Simulator]:
    """One simulated account per target name, Chaser and Notte alternating; ages sit far from
    the age buckets' bounds (60, 300, 900, 1800 s, ...) so that polls seconds apart agree."""
    sims: dict[str, Simulator] = {}
    for i, name in enumerate(NAMES):
        if i % 2:
            rows = [
                notte_row(f"n{i}-{j}", "active", now - 1000 - 200 * j, now - 100 - j)
                for j in range(i % 3 + 1)
            ]
            sims[name] = NotteSimulator(sessions=rows, api_key=KEY)
        else:
            statuses = ["running", "idle", "failed", "running"][: i % 4 + 1]
            rows = [
                chaser_row(f"c{i}-{j}", status, now - 2000 - 50 * j, leases=j % 2)
                for j, status in enumerate(statuses)
            ]
            rows.append(chaser_row(f"c{i}-stuck", "running", now - 6 * 3600, leases=0))
            sims[name] = ChaserSimulator(sessions=rows, api_key=KEY)
    return sims


async def exporter_config(sims: dict[str, Simulator], served: Serve) -> str:
    """Every target, polled once an hour (so once in a test), with per-session series; the
    Chaser targets have a price (for the spend panels), the Notte ones none."""
    targets = [
        {
            "name": name,
            "provider": sim.provider,
            "base_url": await served(sim),
            "api_key": KEY,
            "per_session": {"enabled": True, "max_series": 20},
        }
        | ({"price_per_session_hour": 0.09} if sim.provider == "chaser" else {})
        for name, sim in sims.items()
    ]
    return yaml.safe_dump({"poll_interval": "1h", "targets": targets}, sort_keys=False)


async def serve(w: World, name: str, config: Path, port: int, *flags: str) -> str:
    """Start `session-exporter serve` with ``flags``; its base URL."""
    await w.start(
        name,
        sys.executable,
        "-m",
        "exporter",
        "serve",
        "--config",
        str(config),
        "--listen",
        f"127.0.0.1:{port}",
        *flags,
    )
    return f"http://127.0.0.1:{port}"


def job(name: str, *ports: int) -> dict[str, Any]:
    """A plain scrape job of the exporters on ``ports``."""
    return {
        "job_name": name,
        "scrape_interval": "1s",
        "scrape_timeout": "1s",
        "static_configs": [{"targets": [f"127.0.0.1:{p}" for p in ports]}],
    }


def probe_jobs(exporter: int) -> list[dict[str, Any]]:
    """probe-hashmod.yml's job, once per Prometheus server of its hashmod (0 and 1) as two jobs
    of this one Prometheus, scraping /probe of the exporter on ``exporter`` for NAMES."""
    shipped = yaml.safe_load((ROOT / "deploy" / "prometheus" / "probe-hashmod.yml").read_text())
    (template,) = shipped["scrape_configs"]
    modulus = next(
        r["modulus"] for r in template["relabel_configs"] if r.get("action") == "hashmod"
    )
    jobs = []
    for server in range(modulus):
        probe = copy.deepcopy(template)
        probe["job_name"] = f"probe-{server}"
        probe.update(scrape_interval="1s", scrape_timeout="1s")
        probe["static_configs"] = [{"targets": NAMES}]
        for relabel in probe["relabel_configs"]:
            if relabel.get("action") == "keep":
                relabel["regex"] = str(server)
            if relabel.get("target_label") == "__address__":
                relabel["replacement"] = f"127.0.0.1:{exporter}"
        jobs.append(probe)
    return jobs


def prometheus_config(path: Path, jobs: list[dict[str, Any]], *, rule_files: bool) -> None:
    config: dict[str, Any] = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": jobs,
    }
    if rule_files:
        config["rule_files"] = ["rules.yml"]
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def shipped_rules(path: Path) -> None:
    """The shipped rules with every ``for`` removed, so alerts fire on the first evaluation."""
    groups = rules.rule_groups(rules.load())
    for group in groups:
        for rule in group["rules"]:
            rule.pop("for", None)
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))


def samples(
    result: Iterable[dict[str, Any]], drop: Iterable[str] = ("job", "instance")
) -> list[Sample]:
    """An instant query's result as sorted (labels less ``drop``, value) pairs."""
    dropped = set(drop)
    return sorted(
        (tuple(sorted((k, v) for k, v in r["metric"].items() if k not in dropped)), r["value"][1])
        for r in result
    )


async def ready(w: World, http: aiohttp.ClientSession, *urls: str, path: str = "/readyz") -> None:
    """Wait until each of ``urls`` answers 200 at ``path``."""
    for url in urls:

        async def check(url: str = url) -> bool:
            return await answers(http, f"{url}{path}")

        await w.until(f"ready {url}", check, timeout=30)


async def test_shards_unsharded_and_hashmod_probes_export_the_same_series(
    tmp_path: Path, served: Serve
) -> None:
    """Three `serve --shard i --total-shards 3`, one unsharded `serve`, and the hashmod /probe
    jobs of probe-hashmod.yml (both of its servers), in one real Prometheus: the shards' union,
    the unsharded exporter and the probes' union hold the same session series, each target's
    series from exactly one shard and one probe job."""
    prometheus_bin = require("prometheus")
    sims = simulators(time.time())
    config = tmp_path / "exporter.yml"
    config.write_text(await exporter_config(sims, served))
    shard_ports = [free_port() for _ in range(SHARDS)]
    single_port, prometheus_port = free_port(), free_port()
    prometheus_config(
        tmp_path / "prometheus.yml",
        [job("shards", *shard_ports), job("single", single_port), *probe_jobs(single_port)],
        rule_files=False,
    )
    async with world(tmp_path) as w, aiohttp.ClientSession() as http:
        urls = [
            await serve(w, f"shard-{i}", config, port, "--shard", str(i), "--total-shards", "3")
            for i, port in enumerate(shard_ports)
        ]
        urls.append(await serve(w, "single", config, single_port))
        prometheus = await start_prometheus(
            w, "prometheus", prometheus_bin, tmp_path / "prometheus.yml", prometheus_port
        )
        await ready(w, http, *urls)
        await w.until(
            "ready Prometheus", lambda: answers(http, f"{prometheus}/-/ready"), timeout=30
        )

        async def every_target_scraped() -> bool:
            up = await instant(http, prometheus, "sum(up)")
            counted = await instant(http, prometheus, "count by (job) (sessions_target_up)")
            per_job = {r["metric"]["job"]: int(r["value"][1]) for r in counted}
            probes = per_job.get("probe-0", 0) + per_job.get("probe-1", 0)
            whole = (per_job.get("shards"), per_job.get("single"), probes)
            return bool(up) and float(up[0]["value"][1]) == 4 + len(NAMES) and whole == (7, 7, 7)

        await w.until("every target's series from every job", every_target_scraped, timeout=30)
        at = time.time()
        selector = "|".join(SESSION_SERIES)

        async def series(jobs: str, drop: Iterable[str] = ("job", "instance")) -> list[Sample]:
            expr = f'{{__name__=~"{selector}", job=~"{jobs}"}}'
            return samples(await instant(http, prometheus, expr, at=at), drop)

        single = await series("single")
        shards = await series("shards")
        probes = await series("probe-0|probe-1")
        assert len(single) > 7 * 5
        assert single == shards
        assert single == probes

        owners: dict[str, set[str]] = {}
        for labels, _ in await series("shards", drop=()):
            owners.setdefault(dict(labels)["target"], set()).add(dict(labels)["instance"])
        assert {n: {f"127.0.0.1:{shard_ports[shard_of(n, 3)]}"} for n in NAMES} == owners
        probed: dict[str, set[str]] = {}
        for labels, _ in await series("probe-0|probe-1", drop=()):
            probed.setdefault(dict(labels)["target"], set()).add(dict(labels)["job"])
        assert all(1 == len(jobs) for jobs in probed.values()), probed  # one server per target
        assert set(NAMES) == set(probed)


async def test_ha_pair_gives_every_dashboard_query_the_numbers_of_one_replica(
    tmp_path: Path, served: Serve
) -> None:
    """Two replicas of one config in one Prometheus, one of them alone in another, both with
    the shipped rules: every dashboard query (variables at All) returns the same series and
    values in both, and the same alerts fire (SessionStuck once per stuck session, not twice)."""
    prometheus_bin = require("prometheus")
    sims = simulators(time.time())
    config = tmp_path / "exporter.yml"
    config.write_text(await exporter_config(sims, served))
    shipped_rules(tmp_path / "rules.yml")
    early, late = free_port(), free_port()
    pair_port, alone_port = free_port(), free_port()
    prometheus_config(tmp_path / "pair.yml", [job(rules.load().job, early, late)], rule_files=True)
    prometheus_config(tmp_path / "alone.yml", [job(rules.load().job, late)], rule_files=True)
    async with world(tmp_path) as w, aiohttp.ClientSession() as http:
        # the later replica polls last, so its last-success times are the pair's newest
        await ready(w, http, await serve(w, "replica-early", config, early))
        await ready(w, http, await serve(w, "replica-late", config, late))
        pair = await start_prometheus(w, "pair", prometheus_bin, tmp_path / "pair.yml", pair_port)
        alone = await start_prometheus(
            w, "alone", prometheus_bin, tmp_path / "alone.yml", alone_port
        )
        await ready(w, http, pair, alone, path="/-/ready")

        async def scraped_and_evaluated(url: str, replicas: int) -> bool:
            scrapes = await instant(http, url, "count_over_time(up[1m])")
            alerts = await instant(http, url, 'ALERTS{alertname="SessionStuck"}')
            return (
                replicas == len(scrapes)
                and all(int(r["value"][1]) >= 5 for r in scrapes)
                and bool(alerts)
            )

        await w.until("the pair scraped", lambda: scraped_and_evaluated(pair, 2), timeout=40)
        await w.until("the replica scraped", lambda: scraped_and_evaluated(alone, 1), timeout=40)
        at = time.time() - 1

        for title, expr in queries():
            query = substitute(expr)
            both = await instant(http, pair, query, at=at)
            one = await instant(http, alone, query, at=at)
            if title in PER_PROCESS:
                assert set(samples(one)) == set(samples(both)), title
                assert 2 * len(one) == len(both), title
            elif title in TIMING:
                assert [k for k, _ in samples(one)] == [k for k, _ in samples(both)], title
                for (_, a), (_, b) in zip(samples(one), samples(both), strict=True):
                    assert math.isclose(float(a), float(b), abs_tol=1.0), (title, a, b)
            else:
                assert samples(one) == samples(both), (title, query)
            assert one or title == "Poll errors by reason", title  # no failed poll to show

        firing = 'ALERTS{alertstate="firing"}'
        both = samples(await instant(http, pair, firing, at=at))
        one = samples(await instant(http, alone, firing, at=at))
        assert one == both
        stuck = [dict(k) for k, _ in one if dict(k)["alertname"] == "SessionStuck"]
        expected = {f"c{i}-stuck" for i in range(0, len(NAMES), 2)}
        assert expected == {a.get("session_id") for a in stuck}
        assert len(expected) == len(stuck)
