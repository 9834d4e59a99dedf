"""End to end: the exporter, a real Prometheus with the shipped rules, a real Alertmanager.

`session-exporter serve` polls simulators served by the test; Prometheus (Debian's
``prometheus``) scrapes it every second with the shipped scrape config and rules (every ``for``
cut to zero), and sends alerts to Alertmanager (``prometheus-alertmanager``) configured from the
shipped routing, whose receivers all point at a webhook inside the test. Every wait is bounded;
the whole test takes about 20 seconds.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from deploy import rules
from exporter.simulators import ChaserSimulator, NotteSimulator, chaser_row, notte_row
from tests.conftest import Serve
from tests.dashboards import queries, substitute
from tests.e2e import (
    Webhook,
    World,
    answers,
    instant,
    start_prometheus,
    webhook_server,
    world,
)
from tests.harness import free_port
from tests.tools import ROOT, require

pytestmark = pytest.mark.slow

KEY = "e2e-key-0123456789"
JOB = rules.load().job
POLL = 1
"""The exporter's poll interval in these tests (seconds)."""
INTERVAL = 1
"""Prometheus's scrape and evaluation interval in these tests (seconds)."""
GROUP_WAIT = 1
"""Alertmanager's group_wait in these tests (seconds)."""
MARGIN = 15
"""Slack on top of the time-to-detect bound for a loaded machine (seconds)."""


def thresholds(**alerts: dict[str, Any]) -> rules.Thresholds:
    """The shipped thresholds with some alerts' settings replaced."""
    raw = yaml.safe_load(rules.THRESHOLDS.read_text())
    raw["alerts"].update(alerts)
    return rules.Thresholds.model_validate(raw)


def alert_rules(path: Path, config: rules.Thresholds | None = None) -> None:
    """The shipped rules with every ``for`` removed, so alerts fire on the first evaluation;
    with ``config``, the rules of those thresholds as they are."""
    groups = rules.rule_groups(config or rules.load())
    for group in groups:
        for rule in group["rules"]:
            if config is None:
                rule.pop("for", None)
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))


def prometheus_config(path: Path, exporter: int, alertmanager: int) -> None:
    """deploy/prometheus/prometheus.yml with this test's ports and one-second intervals."""
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    config["global"].update(scrape_interval=f"{INTERVAL}s", evaluation_interval=f"{INTERVAL}s")
    config["rule_files"] = ["rules.yml"]
    (scrape,) = config["scrape_configs"]
    scrape["scrape_timeout"] = f"{INTERVAL}s"
    scrape["static_configs"] = [{"targets": [f"127.0.0.1:{exporter}"]}]
    config["alerting"]["alertmanagers"] = [
        {"static_configs": [{"targets": [f"127.0.0.1:{alertmanager}"]}]}
    ]
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def alertmanager_config(path: Path, webhook: int) -> None:
    """deploy/alertmanager/alertmanager.yml: same routes, every receiver at the test's webhook."""
    config = yaml.safe_load((ROOT / "deploy" / "alertmanager" / "alertmanager.yml").read_text())
    config["route"].update(group_wait=f"{GROUP_WAIT}s", group_interval="1s", repeat_interval="1h")
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            hook["url"] = f"http://127.0.0.1:{webhook}/{receiver['name']}"
            hook["send_resolved"] = True
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def exporter_config(path: Path, chaser: str, notte: str | None = None) -> None:
    """The targets polled every second, with per-session series for the sessions table (and a
    price on the Chaser one, for the spend panels)."""
    detail = {"enabled": True, "max_series": 20}
    targets: list[dict[str, Any]] = [
        {
            "name": "chaser-e2e",
            "provider": "chaser",
            "base_url": chaser,
            "api_key": KEY,
            "per_session": detail,
            "price_per_session_hour": 0.09,  # the spend panels draw priced targets only
        }
    ]
    if notte is not None:
        targets.append(
            {
                "name": "notte-e2e",
                "provider": "notte",
                "base_url": notte,
                "api_key": KEY,
                "only_active": False,
                "per_session": detail,
            }
        )
    config = {"poll_interval": f"{POLL}s", "targets": targets}
    path.write_text(yaml.safe_dump(config, sort_keys=False))


@dataclass
class Stack:
    """The running exporter, Alertmanager and Prometheus of one test, and the webhook."""

    w: World
    http: aiohttp.ClientSession
    webhook: Webhook
    prometheus: str


@contextlib.asynccontextmanager
async def stack(
    tmp: Path, chaser: str, notte: str | None, rule_config: rules.Thresholds | None
) -> AsyncIterator[Stack]:
    """Exporter, Alertmanager and Prometheus with this test's configs, all ready and scraping."""
    prometheus_bin = require("prometheus")
    alertmanager_bin = require("prometheus-alertmanager")
    exporter_port, prometheus_port, alertmanager_port = free_port(), free_port(), free_port()
    exporter_config(tmp / "exporter.yml", chaser, notte)
    alert_rules(tmp / "rules.yml", rule_config)
    prometheus_config(tmp / "prometheus.yml", exporter_port, alertmanager_port)
    alertmanager = f"http://127.0.0.1:{alertmanager_port}"
    exporter = f"http://127.0.0.1:{exporter_port}"
    async with (
        webhook_server() as (webhook, webhook_port),
        world(tmp) as w,
        aiohttp.ClientSession() as http,
    ):
        alertmanager_config(tmp / "alertmanager.yml", webhook_port)
        await w.start(
            "exporter",
            sys.executable,
            "-m",
            "exporter",
            "serve",
            "--config",
            str(tmp / "exporter.yml"),
            "--listen",
            f"127.0.0.1:{exporter_port}",
        )
        await w.start(
            "alertmanager",
            alertmanager_bin,
            f"--config.file={tmp / 'alertmanager.yml'}",
            f"--storage.path={tmp / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{alertmanager_port}",
            "--cluster.listen-address=",
        )
        prometheus = await start_prometheus(
            w, "prometheus", prometheus_bin, tmp / "prometheus.yml", prometheus_port
        )
        await w.until("ready exporter", lambda: answers(http, f"{exporter}/readyz"), timeout=20)
        await w.until(
            "ready Alertmanager", lambda: answers(http, f"{alertmanager}/-/ready"), timeout=20
        )
        await w.until(
            "ready Prometheus", lambda: answers(http, f"{prometheus}/-/ready"), timeout=20
        )

        async def exporter_up() -> bool:
            result = await instant(http, prometheus, f'up{{job="{JOB}"}}')
            return [1.0] == [float(r["value"][1]) for r in result]

        await w.until("exporter target up in Prometheus", exporter_up, timeout=20)
        yield Stack(w, http, webhook, prometheus)


async def test_prometheus_scrapes_dashboard_has_data_and_stuck_alert_fires_and_resolves(
    tmp_path: Path, served: Serve
) -> None:
    """Exporter up in Prometheus; every dashboard query has data; SessionStuck fires and resolves.

    A Chaser browser running for six hours (threshold 2h) must reach the webhook as a firing
    SessionStuck naming it (the target has per-session series) through the warning route; once
    the simulator stops listing it, the webhook must get the same alert as resolved.
    """
    now = time.time()
    chaser = ChaserSimulator(
        api_key=KEY,
        sessions=[
            chaser_row("chs-stuck", "running", now - 6 * 3600, leases=0),
            chaser_row("chs-busy", "running", now - 120, leases=2),
            chaser_row("chs-new", "starting", now - 10, leases=0),
            chaser_row("chs-crashed", "failed", now - 900, leases=None),
        ],
    )
    notte = NotteSimulator(
        api_key=KEY,
        sessions=[
            # 20 minutes old with the default 15 minute limit: overdue, not yet stuck (30m)
            notte_row("ntt-late", "active", now - 1200, now - 30, idle_timeout_minutes=60),
            notte_row("ntt-fresh", "active", now - 60, now - 5, idle_timeout_minutes=5),
            notte_row("ntt-done", "closed", now - 900, now - 600, closed_at=now - 600),
        ],
    )
    async with stack(tmp_path, await served(chaser), await served(notte), None) as s:
        empty: list[tuple[str, str]] = []

        async def every_query_has_data() -> bool:
            empty.clear()
            for title, expr in queries():
                if not await instant(s.http, s.prometheus, substitute(expr)):
                    empty.append((title, expr))
            return not empty

        try:
            await s.w.until("data for every dashboard query", every_query_has_data, timeout=30)
        except AssertionError as failure:
            raise AssertionError(f"queries without data: {empty}\n{failure}") from None

        async def stuck(status: str) -> bool:
            return bool(s.webhook.alerts("SessionStuck", "chaser-e2e", status))

        await s.w.until("firing SessionStuck at the webhook", lambda: stuck("firing"), timeout=30)
        firing = s.webhook.alerts("SessionStuck", "chaser-e2e", "firing")
        assert 1 == len({a["fingerprint"] for _, a in firing})  # one session, one alert
        path, alert = firing[0]
        assert "/team" == path  # severity warning takes the warning route
        assert {
            "severity": "warning",
            "provider": "chaser",
            "session_id": "chs-stuck",
        }.items() <= alert["labels"].items()
        assert alert["annotations"]["runbook_url"].endswith("RUNBOOK.md#sessionstuck")
        assert (
            "Session chs-stuck of chaser-e2e (chaser) is stuck" == alert["annotations"]["summary"]
        )
        assert "threshold of 2h 0m 0s" in alert["annotations"]["description"]

        chaser.sessions[:] = [r for r in chaser.sessions if r["id"] != "chs-stuck"]

        await s.w.until(
            "resolved SessionStuck at the webhook", lambda: stuck("resolved"), timeout=30
        )
        assert not s.webhook.alerts("SessionStuck", "notte-e2e", "firing")


async def test_time_to_detect_a_stuck_session(tmp_path: Path, served: Serve) -> None:
    """A session older than its threshold appears in the simulator; SessionStuck naming it
    reaches the Alertmanager webhook within poll interval + scrape interval + evaluation
    interval + `for` + group_wait (plus a margin for a loaded machine), and the time is printed.
    """
    stuck_for = 3
    config = thresholds(
        SessionStuck={
            "severity": "warning",
            "for": f"{stuck_for}s",
            "max_age": "2h",
            "per_provider": {"chaser": "1h"},
        }
    )
    now = time.time()
    chaser = ChaserSimulator(
        api_key=KEY, sessions=[chaser_row("chs-busy", "running", now - 120, leases=1)]
    )
    async with stack(tmp_path, await served(chaser), None, config) as s:

        async def polled_and_scraped() -> bool:
            live = 'sessions{target="chaser-e2e", phase="live"}'
            return bool(await instant(s.http, s.prometheus, f"{live} == 1"))

        await s.w.until("the busy session in Prometheus", polled_and_scraped, timeout=20)
        start = time.monotonic()
        chaser.sessions.append(chaser_row("chs-stuck", "running", time.time() - 2 * 3600))

        async def arrived() -> bool:
            return s.webhook.first("SessionStuck", "firing", session_id="chs-stuck") is not None

        await s.w.until("SessionStuck for chs-stuck at the webhook", arrived, timeout=60)
        found = s.webhook.first("SessionStuck", "firing", session_id="chs-stuck")
        assert found is not None
        at, alert = found
        assert "chaser-e2e" == alert["labels"]["target"]
        elapsed = at - start
        bound = POLL + INTERVAL + INTERVAL + stuck_for + GROUP_WAIT
        print(
            f"\ntime to detect a stuck session: {elapsed:.1f}s; bound {bound}s = poll "
            f"{POLL}s + scrape {INTERVAL}s + evaluation {INTERVAL}s + for {stuck_for}s + "
            f"group_wait {GROUP_WAIT}s"
        )
        assert elapsed <= bound + MARGIN, (elapsed, bound)
