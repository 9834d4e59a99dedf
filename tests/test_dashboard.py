"""The Grafana dashboard: generated, well-formed, valid PromQL, and backed by the demo's data."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from deploy import rules
from exporter.cli.demo import DemoWorld
from exporter.config.settings import Settings
from grafana import dashboard
from tests.dashboards import (
    exporter_metrics,
    metric_names,
    panels,
    queries,
    recorded,
    substitute,
)
from tests.harness import poll_all, scrape
from tests.tools import ROOT, require, run

PROVISIONING = ROOT / "grafana" / "provisioning"


def test_committed_json_is_the_builders_output() -> None:
    """grafana/dashboards/session-exporter.json is exactly what grafana.dashboard builds."""
    assert dashboard.render() == dashboard.OUTPUT.read_text()
    assert 0 == dashboard.main(["--check"])


def test_json_is_importable_shape() -> None:
    """The file is JSON with a fixed uid, a title, Grafana 11.6+'s schema version, a panel list,
    and a data source input that the import dialog asks for and the datasource variable uses."""
    document = json.loads(dashboard.OUTPUT.read_text())

    assert ("session-exporter", "Sessions") == (document["uid"], document["title"])
    assert 41 == document["schemaVersion"]
    assert document["panels"]
    (source,) = document["__inputs"]
    assert ("DS_PROMETHEUS", "datasource", "prometheus") == (
        source["name"],
        source["type"],
        source["pluginId"],
    )
    variable = document["templating"]["list"][0]
    assert {"text": "${DS_PROMETHEUS}", "value": "${DS_PROMETHEUS}"} == variable["current"]
    requires = {(r["type"], r["id"]) for r in document["__requires"]}
    assert {("grafana", "grafana"), ("datasource", "prometheus")} <= requires
    assert {("panel", p["type"]) for p in panels()} <= requires


def test_every_field_is_one_grafanas_schema_knows() -> None:
    """Read back through grafana-foundation-sdk's models (generated from Grafana's dashboard
    schema), the document is unchanged: no key the schema does not have, none lost."""
    document = dashboard.dashboard()
    body = {k: v for k, v in document.items() if not k.startswith("__")}

    back = json.loads(json.dumps(Dashboard.from_json(body), cls=JSONEncoder))

    assert body == back


def test_template_variables() -> None:
    """Variables datasource, provider, target and status; the last three multi-value with All."""
    variables = {v["name"]: v for v in dashboard.dashboard()["templating"]["list"]}

    assert ["datasource", "provider", "target", "status"] == list(variables)
    assert ("datasource", "prometheus") == (
        variables["datasource"]["type"],
        variables["datasource"]["query"],
    )
    for name in ("provider", "target", "status"):
        variable = variables[name]
        assert ("query", True, True, ".*") == (
            variable["type"],
            variable["multi"],
            variable["includeAll"],
            variable["allValue"],
        )
        assert "${datasource}" == variable["datasource"]["uid"]
    assert '{provider=~"$provider"}' in variables["target"]["query"]["query"]
    assert 'target=~"$target"' in variables["status"]["query"]["query"]


def test_every_panel_has_datasource_unit_thresholds_and_description() -> None:
    """Each panel queries the datasource variable and sets a unit, thresholds and a description."""
    for panel in panels():
        title = panel["title"]
        defaults = panel["fieldConfig"]["defaults"]
        assert "${datasource}" == panel["datasource"]["uid"], title
        assert defaults["unit"], title
        assert defaults["thresholds"]["steps"][0]["value"] is None, title
        assert panel["description"], title
        assert panel["targets"], title
        assert [t["refId"] for t in panel["targets"]] == sorted(
            {t["refId"] for t in panel["targets"]}
        )


def test_issue_panels_are_present() -> None:
    """Every view the issue asks for is a panel (by title)."""
    titles = {p["title"] for p in panels()}

    assert {
        "Live sessions by provider and phase",
        "Status breakdown",
        "Age of the oldest live session",
        "Overdue sessions",
        "Unleased browser sessions",
        "Time to the next deadline",
        "Connection leases",
        "Target health",
        "Poll duration",
        "Poll errors by reason",
        "Exporter build",
        "Ages of live sessions",
        "Oldest sessions",
        "Time since the least recent activity",
        "Paused sessions",
    } <= titles
    heatmap = next(p for p in panels() if p["type"] == "heatmap")
    assert "heatmap" == heatmap["targets"][0]["format"]
    assert "sessions_age_seconds_bucket" in heatmap["targets"][0]["expr"]


def test_paused_is_shown_and_never_counted_as_live() -> None:
    """Phase paused (resting, resumable) has its own overview number and shows in the status
    breakdown with its phase; every other query that selects phases leaves it out."""
    by_title = {p["title"]: p for p in panels()}
    (paused,) = by_title["Paused sessions"]["targets"]
    (breakdown,) = by_title["Status breakdown"]["targets"]

    assert 'phase="paused"' in paused["expr"]
    assert "sum by (provider, status, phase) (" in breakdown["expr"]
    assert "({{phase}})" in breakdown["legendFormat"]
    for title, expr in queries():
        if title == "Paused sessions":
            continue
        for phases in re.findall(r'phase=~?"([^"]*)"', expr):
            assert "paused" not in phases.split("|"), title


def test_descriptions_say_what_kind_of_provider_not_which() -> None:
    """No panel description lists provider ids: a user-defined provider with a deadline, leases
    or activity is drawn like a built-in one, so the panels say what kind of provider."""
    named = re.compile(r"\b(?:" + "|".join(rules.PROVIDERS) + r")\b", re.IGNORECASE)
    for panel in panels():
        assert not named.search(panel["description"]), panel["title"]


def test_panels_tile_the_grid_without_overlap() -> None:
    """Unique ids; every panel inside the 24 columns; no two panels share a grid cell."""
    document = dashboard.dashboard()
    ids = [p["id"] for p in document["panels"]]
    taken: dict[tuple[int, int], str] = {}

    assert len(ids) == len(set(ids))
    for panel in document["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken.get((x, y))}"
                taken[(x, y)] = panel["title"]


def test_session_queries_follow_the_provider_and_target_variables() -> None:
    """Every query of the exporter's per-target series filters on $provider and $target."""
    unfiltered = {"sessions_exporter_build_info"}
    for title, expr in queries():
        if metric_names(expr) <= unfiltered:
            continue
        assert "$provider" in expr, title
        if ":config" not in expr:  # the per-provider threshold series have no target
            assert "$target" in expr, title


def test_panels_that_need_recording_rules_say_so() -> None:
    """A panel reading a series only rules.yml records says in its description that it needs
    the shipped rules; every other panel works on the exporter's own series alone."""
    records = set(recorded())
    for panel in panels():
        uses = {n for t in panel["targets"] for n in metric_names(t["expr"])} & records
        says = "recording rules" in panel["description"]
        assert bool(uses) == says, panel["title"]


UNCOLLAPSED = {"sessions_exporter_build_info"}
"""Series shown per exporter process on purpose (the build table lists every replica)."""


def test_every_exporter_series_is_collapsed_over_replicas() -> None:
    """Each exporter series a query selects sits directly inside a max/min/topk (or, in the
    failed-poll share where replicas cancel out, a sum) by its own target labels, or an
    overall min: replicas exporting the same target never double a number."""
    for title, expr in queries():
        for name in metric_names(expr) - set(recorded()) - UNCOLLAPSED:
            collapsed = re.compile(
                r"(?:(?:max|min|topk|sum) by \(provider, target[^)]*\) \(|min\()"
                rf"(?:1, |rate\()?{name}\{{"
            )
            assert collapsed.search(expr), (title, name)


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool accepts each query (variables filled in) as the expression of a rule."""
    promtool = require("promtool")
    group = {
        "name": "dashboard",
        "rules": [
            {"record": f"dashboard:query:{i}", "expr": substitute(expr)}
            for i, (_, expr) in enumerate(queries())
        ],
    }
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [group]}))

    result = run([promtool, "check", "rules", str(path)])

    assert 0 == result.returncode, result.stdout + result.stderr


def test_queries_name_only_known_series() -> None:
    """Every series a query selects is the exporter's or recorded by rules.yml."""
    for title, expr in queries():
        assert metric_names(expr), title
        for name in exporter_metrics(expr):
            assert name.startswith(("sessions", "session_")), (title, name)


async def test_the_demo_has_data_for_every_panel() -> None:
    """A poll of the demo world exposes every metric each panel's queries are built on."""
    world = DemoWorld()
    async with world.running() as urls:
        store = await poll_all(Settings(targets=world.targets(urls)))
    exposed = scrape(store).names()

    for title, expr in queries():
        missing = exporter_metrics(expr) - exposed
        assert set() == missing, title


def test_provisioning_points_at_the_dashboard_and_prometheus() -> None:
    """The dashboard provider loads JSON files from a folder; the datasource is Prometheus."""
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "session-exporter.yml").read_text())
    sources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())

    (provider,) = providers["providers"]
    assert ("file", "/var/lib/grafana/dashboards/session-exporter") == (
        provider["type"],
        provider["options"]["path"],
    )
    (source,) = sources["datasources"]
    assert ("prometheus", True) == (source["type"], source["isDefault"])


def first_step(panel: dict[str, Any]) -> Any:
    """The base colour of a panel's thresholds."""
    return panel["fieldConfig"]["defaults"]["thresholds"]["steps"][0]["color"]


def test_alert_thresholds_are_drawn_from_thresholds_yml() -> None:
    """Panels that show an alert's limit take it from the same thresholds file as the rules."""
    by_title = {p["title"]: p for p in panels()}
    stale = by_title["Time since the last successful poll"]["fieldConfig"]["defaults"]

    assert [None, 900] == [s["value"] for s in stale["thresholds"]["steps"]]
    assert "green" == first_step(by_title["Time since the last successful poll"])
    share = by_title["Share of failed polls"]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert 0.2 == share[1]["value"]


def test_metric_names_skips_functions_labels_and_windows() -> None:
    """The helper the checks above rely on finds metric and recorded names, nothing else."""
    expr = (
        'max(a:b:max{provider=~"$provider"}) - sum by (le, target) (rate(c_total[5m]))'
        " * on (target) group_left (kind) d offset 15m > 3 or e unless f"
    )

    assert {"a:b:max", "c_total", "d", "e", "f"} == metric_names(expr)
