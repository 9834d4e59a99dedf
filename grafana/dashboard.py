"""Build the session-exporter Grafana dashboard: ``python -m grafana.dashboard``.

The committed ``grafana/dashboards/session-exporter.json`` is this module's output (``--check``
exits 1 when it is stale, and a test keeps the two equal). Generating it keeps every panel's
query, unit and thresholds in one reviewable place, and takes the alert thresholds the panels
draw from ``deploy/prometheus/thresholds.yml``, the same file the alert rules come from.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploy import rules

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "grafana" / "dashboards" / "session-exporter.json"
UID = "session-exporter"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
WIDTH = 24

SEL = 'provider=~"$provider", target=~"$target"'
"""Label matchers every per-target query applies (the provider and target variables)."""
STATUS = f'{SEL}, status=~"$status"'
"""The same, plus the status variable, for series that have a status."""
LIVE = f'{STATUS}, phase=~"pending|live"'

GREEN, YELLOW, ORANGE, RED, BLUE = "green", "yellow", "orange", "red", "blue"


def steps(*pairs: tuple[float | None, str]) -> dict[str, Any]:
    """Absolute thresholds: ``(None, base colour)`` first, then ``(value, colour)`` steps."""
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for v, c in pairs]}


NEUTRAL = steps((None, GREEN))
HIDE_COLUMNS = {
    "id": "organize",
    "options": {"excludeByName": {"Time": True, "__name__": True, "job": True}},
}
"""Table transformation dropping the columns that say nothing about a session or a build."""


@dataclass(frozen=True)
class Query:
    """One PromQL target of a panel."""

    expr: str
    legend: str = ""
    instant: bool = False
    table: bool = False
    heatmap: bool = False

    def render(self, ref: str) -> dict[str, Any]:
        fmt = "heatmap" if self.heatmap else "table" if self.table else "time_series"
        return {
            "datasource": DATASOURCE,
            "editorMode": "code",
            "expr": self.expr,
            "format": fmt,
            "instant": self.instant,
            "legendFormat": self.legend or "__auto",
            "range": not self.instant,
            "refId": ref,
        }


@dataclass(frozen=True)
class Panel:
    """A panel: its kind, queries, size, unit and thresholds; ``extra`` merges into the JSON."""

    type: str
    title: str
    description: str
    queries: tuple[Query, ...]
    width: int
    height: int
    unit: str
    thresholds: dict[str, Any] = field(default_factory=lambda: NEUTRAL)
    options: dict[str, Any] = field(default_factory=dict)
    custom: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    overrides: tuple[dict[str, Any], ...] = ()
    transformations: tuple[dict[str, Any], ...] = ()

    def render(self, panel_id: int, x: int, y: int) -> dict[str, Any]:
        return {
            "datasource": DATASOURCE,
            "description": self.description,
            "fieldConfig": {
                "defaults": {
                    "color": {"mode": "thresholds" if self.type == "stat" else "palette-classic"},
                    "custom": self.custom,
                    "mappings": [],
                    "thresholds": self.thresholds,
                    "unit": self.unit,
                    **self.defaults,
                },
                "overrides": list(self.overrides),
            },
            "gridPos": {"h": self.height, "w": self.width, "x": x, "y": y},
            "id": panel_id,
            "options": self.options,
            "targets": [q.render(chr(ord("A") + i)) for i, q in enumerate(self.queries)],
            "title": self.title,
            "transformations": list(self.transformations),
            "type": self.type,
        }


def stat(title: str, description: str, expr: str, unit: str, thresholds: dict[str, Any]) -> Panel:
    """A single number, coloured by its thresholds."""
    return Panel(
        "stat",
        title,
        description,
        (Query(expr, instant=False),),
        width=4,
        height=4,
        unit=unit,
        thresholds=thresholds,
        options={
            "colorMode": "background",
            "graphMode": "area",
            "justifyMode": "auto",
            "orientation": "auto",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "textMode": "auto",
        },
    )


def timeseries(
    title: str,
    description: str,
    *queries: Query,
    unit: str,
    width: int = 12,
    thresholds: dict[str, Any] = NEUTRAL,
    stack: bool = False,
    threshold_style: str = "off",
    overrides: tuple[dict[str, Any], ...] = (),
) -> Panel:
    """Lines over time; ``stack`` stacks them, ``threshold_style`` draws the thresholds."""
    return Panel(
        "timeseries",
        title,
        description,
        queries,
        width=width,
        height=8,
        unit=unit,
        thresholds=thresholds,
        custom={
            "drawStyle": "line",
            "fillOpacity": 20 if stack else 0,
            "lineWidth": 1,
            "showPoints": "never",
            "spanNulls": False,
            "stacking": {"group": "A", "mode": "normal" if stack else "none"},
            "thresholdsStyle": {"mode": threshold_style},
        },
        options={
            "legend": {
                "calcs": ["lastNotNull", "max"],
                "displayMode": "table",
                "placement": "bottom",
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        overrides=overrides,
    )


@dataclass(frozen=True)
class Row:
    """A collapsible row title and the panels under it, laid out left to right."""

    title: str
    panels: tuple[Panel, ...]


def overview() -> tuple[Panel, ...]:
    """Top line numbers, above every row."""
    config = rules.load().alerts
    stuck = rules.seconds(config.SessionStuck.max_age)
    return (
        stat(
            "Live sessions",
            "Sessions in phase live, summed over the selected targets and statuses.",
            f'sum(sessions{{{STATUS}, phase="live"}})',
            "short",
            NEUTRAL,
        ),
        stat(
            "Pending sessions",
            "Sessions still starting (phase pending).",
            f'sum(sessions{{{STATUS}, phase="pending"}})',
            "short",
            steps((None, GREEN), (10, YELLOW)),
        ),
        stat(
            "Overdue sessions",
            "Sessions still reported live past their deadline (together, trigger, notte).",
            f"sum(sessions_overdue{{{SEL}}})",
            "short",
            steps((None, GREEN), (1, RED)),
        ),
        stat(
            "Unleased browsers",
            "Live browser sessions with 0 connection leases (chaser).",
            f"sum(sessions_unleased{{{SEL}}})",
            "short",
            steps((None, GREEN), (1, YELLOW)),
        ),
        stat(
            "Oldest live session",
            "Age of the oldest pending or live session over the selected targets; red past the "
            "default stuck threshold of the SessionStuck alert.",
            f"max({rules.OLDEST_AGE}{{{SEL}}})",
            "s",
            steps((None, GREEN), (stuck / 2, YELLOW), (stuck, RED)),
        ),
        stat(
            "Targets down",
            "Targets whose last poll failed.",
            f"sum(1 - sessions_target_up{{{SEL}}})",
            "short",
            steps((None, GREEN), (1, RED)),
        ),
    )


def sessions_row() -> Row:
    """Session counts, statuses and ages."""
    threshold_line = {
        "matcher": {"id": "byFrameRefID", "options": "B"},
        "properties": [
            {"id": "custom.lineStyle", "value": {"dash": [10, 10], "fill": "dash"}},
            {"id": "color", "value": {"fixedColor": RED, "mode": "fixed"}},
        ],
    }
    return Row(
        "Sessions",
        (
            timeseries(
                "Live sessions by provider and phase",
                "Pending and live sessions over time, stacked by provider and phase.",
                Query(
                    f"sum by (provider, phase) (sessions{{{LIVE}}})",
                    "{{provider}} {{phase}}",
                ),
                unit="short",
                stack=True,
            ),
            Panel(
                "bargauge",
                "Status breakdown",
                "Current sessions in every status the targets count, by provider and status "
                "(the provider's own status names).",
                (
                    Query(
                        f"sum by (provider, status) (sessions{{{STATUS}}})",
                        "{{provider}} {{status}}",
                        instant=True,
                    ),
                ),
                width=12,
                height=8,
                unit="short",
                options={
                    "displayMode": "gradient",
                    "orientation": "horizontal",
                    "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                    "showUnfilled": True,
                },
            ),
            timeseries(
                "Age of the oldest live session",
                "Per target, the age of its oldest pending or live session (exact at query "
                "time); dashed: the SessionStuck threshold of each provider.",
                Query(
                    "time() - min by (provider, target) "
                    f"(sessions_oldest_created_timestamp_seconds{{{LIVE}}})",
                    "{{target}}",
                ),
                Query(
                    f'{rules.STUCK_THRESHOLD}{{provider=~"$provider"}}',
                    "stuck threshold {{provider}}",
                ),
                unit="s",
                overrides=(threshold_line,),
            ),
            Panel(
                "heatmap",
                "Ages of live sessions",
                "How many pending and live sessions fall in each age bucket, measured at poll "
                "time (sessions_age_seconds, an OpenMetrics gauge histogram).",
                (
                    Query(
                        f"sum by (le) (sessions_age_seconds_bucket{{{SEL}}})",
                        "{{le}}",
                        heatmap=True,
                    ),
                ),
                width=12,
                height=8,
                unit="short",
                options={
                    "calculate": False,
                    "cellGap": 1,
                    "color": {"mode": "scheme", "scheme": "Oranges", "steps": 64},
                    "legend": {"show": True},
                    "rowsFrame": {"layout": "auto"},
                    "tooltip": {"show": True, "yHistogram": False},
                    "yAxis": {"axisPlacement": "left", "unit": "s"},
                },
                custom={"scaleDistribution": {"type": "linear"}},
            ),
            Panel(
                "table",
                "Oldest sessions",
                "The sessions themselves, oldest first, with their status and kind. Needs "
                "per_session enabled on the target (the exporter then exports the oldest "
                "max_series sessions).",
                (
                    Query(
                        f"(time() - session_created_timestamp_seconds{{{SEL}}})\n"
                        "* on (provider, target, session_id) group_left (status, phase, kind)\n"
                        f"session_info{{{STATUS}}}",
                        instant=True,
                        table=True,
                    ),
                ),
                width=24,
                height=8,
                unit="s",
                thresholds=steps((None, GREEN), (3600, YELLOW)),
                options={"showHeader": True, "sortBy": [{"desc": True, "displayName": "Value"}]},
                custom={"filterable": True},
                overrides=(
                    {
                        "matcher": {"id": "byName", "options": "Value"},
                        "properties": [
                            {"id": "displayName", "value": "age"},
                            {"id": "custom.cellOptions", "value": {"type": "color-text"}},
                        ],
                    },
                ),
                transformations=(HIDE_COLUMNS,),
            ),
        ),
    )


def deadlines_row() -> Row:
    """Deadlines, overdue sessions and browser connection leases."""
    return Row(
        "Deadlines and leases",
        (
            timeseries(
                "Overdue sessions",
                "Sessions still reported live past their deadline, per target.",
                Query(f"sessions_overdue{{{SEL}}}", "{{target}}"),
                unit="short",
                width=6,
                thresholds=steps((None, GREEN), (1, RED)),
                threshold_style="line",
            ),
            Panel(
                "stat",
                "Time to the next deadline",
                "Per target, time left until the earliest deadline among its live sessions; "
                "negative once it has passed.",
                (
                    Query(
                        f"sessions_next_deadline_timestamp_seconds{{{SEL}}} - time()", "{{target}}"
                    ),
                ),
                width=6,
                height=8,
                unit="s",
                thresholds=steps((None, RED), (0, ORANGE), (300, GREEN)),
                options={
                    "colorMode": "background",
                    "graphMode": "none",
                    "justifyMode": "auto",
                    "orientation": "horizontal",
                    "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                    "textMode": "value_and_name",
                },
            ),
            timeseries(
                "Unleased browser sessions",
                "Live browser sessions reporting exactly 0 connection leases (chaser).",
                Query(f"sessions_unleased{{{SEL}}}", "{{target}}"),
                unit="short",
                width=6,
                thresholds=steps((None, GREEN), (1, YELLOW)),
            ),
            timeseries(
                "Connection leases",
                "Active connection leases summed over pending and live sessions (chaser).",
                Query(f"sessions_connection_leases{{{SEL}}}", "{{target}}"),
                unit="short",
                width=6,
            ),
        ),
    )


def exporter_row() -> Row:
    """Health of the targets' polls and of the exporter itself."""
    config = rules.load().alerts
    stale = rules.seconds(config.SessionTargetDataStale.max_age)
    ratio = config.SessionPollErrorsRising
    return Row(
        "Targets and exporter",
        (
            Panel(
                "state-timeline",
                "Target health",
                "Whether each target's last poll succeeded.",
                (Query(f"sessions_target_up{{{SEL}}}", "{{target}}"),),
                width=12,
                height=8,
                unit="short",
                thresholds=steps((None, RED), (1, GREEN)),
                options={"mergeValues": True, "showValue": "never", "rowHeight": 0.8},
                defaults={
                    "mappings": [
                        {
                            "type": "value",
                            "options": {
                                "0": {"color": RED, "index": 0, "text": "down"},
                                "1": {"color": GREEN, "index": 1, "text": "up"},
                            },
                        }
                    ],
                    "color": {"mode": "thresholds"},
                },
            ),
            timeseries(
                "Time since the last successful poll",
                "Age of each target's last successful poll; the line is the "
                "SessionTargetDataStale limit.",
                Query(
                    f"time() - sessions_target_last_success_timestamp_seconds{{{SEL}}}",
                    "{{target}}",
                ),
                unit="s",
                thresholds=steps((None, GREEN), (stale, RED)),
                threshold_style="line",
            ),
            timeseries(
                "Poll duration",
                "How long each target's last poll took (all pages of every query).",
                Query(f"sessions_exporter_poll_duration_seconds{{{SEL}}}", "{{target}}"),
                unit="s",
                width=8,
            ),
            timeseries(
                "Poll errors by reason",
                "Failed polls per second, by target and reason (timeout, connect, auth, ...).",
                Query(
                    "sum by (target, reason) "
                    f"(rate(sessions_exporter_poll_errors_total{{{SEL}}}[$__rate_interval]))",
                    "{{target}} {{reason}}",
                ),
                unit="cps",
                width=8,
                thresholds=steps((None, GREEN), (0.01, RED)),
            ),
            timeseries(
                "Share of failed polls",
                f"Failed polls over the last {ratio.window}, as a share of all polls; the line "
                "is the SessionPollErrorsRising limit.",
                Query(f"{rules.error_ratio_rule(ratio.window)}{{{SEL}}}", "{{target}}"),
                unit="percentunit",
                width=8,
                thresholds=steps((None, GREEN), (ratio.max_ratio, RED)),
                threshold_style="line",
            ),
            timeseries(
                "Provider API requests by status code",
                "Requests to the providers' APIs per second, by target and HTTP status code.",
                Query(
                    "sum by (target, code) "
                    f"(rate(sessions_exporter_api_requests_total{{{SEL}}}[$__rate_interval]))",
                    "{{target}} {{code}}",
                ),
                unit="reqps",
            ),
            Panel(
                "table",
                "Exporter build",
                "Version of every scraped exporter and the Python it runs on.",
                (Query("sessions_exporter_build_info", instant=True, table=True),),
                width=12,
                height=8,
                unit="short",
                options={"showHeader": True},
                transformations=(HIDE_COLUMNS,),
            ),
        ),
    )


def variables() -> list[dict[str, Any]]:
    """Template variables: data source, provider, target and status, each narrowing the next."""

    def query(name: str, label: str, expr: str) -> dict[str, Any]:
        return {
            "allValue": ".*",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "datasource": DATASOURCE,
            "definition": expr,
            "includeAll": True,
            "label": label,
            "multi": True,
            "name": name,
            "options": [],
            "query": {"qryType": 1, "query": expr, "refId": f"{name}-variable"},
            "refresh": 2,
            "regex": "",
            "sort": 1,
            "type": "query",
        }

    return [
        {
            "current": {},
            "hide": 0,
            "includeAll": False,
            "label": "Data source",
            "multi": False,
            "name": "datasource",
            "options": [],
            "query": "prometheus",
            "refresh": 1,
            "regex": "",
            "type": "datasource",
        },
        query("provider", "Provider", "label_values(sessions_target_up, provider)"),
        query(
            "target", "Target", 'label_values(sessions_target_up{provider=~"$provider"}, target)'
        ),
        query(
            "status",
            "Status",
            'label_values(sessions{provider=~"$provider", target=~"$target"}, status)',
        ),
    ]


def layout(top: Sequence[Panel], rows: Sequence[Row]) -> list[dict[str, Any]]:
    """Place the panels on Grafana's 24-column grid, wrapping to a new line when full."""
    placed: list[dict[str, Any]] = []
    y = 0

    def place(panels: Sequence[Panel]) -> None:
        nonlocal y
        x, line = 0, 0
        for panel in panels:
            if x + panel.width > WIDTH:
                x, y, line = 0, y + line, 0
            placed.append(panel.render(len(placed) + 1, x, y))
            x += panel.width
            line = max(line, panel.height)
        y += line

    place(top)
    for row in rows:
        placed.append(
            {
                "collapsed": False,
                "gridPos": {"h": 1, "w": WIDTH, "x": 0, "y": y},
                "id": len(placed) + 1,
                "panels": [],
                "title": row.title,
                "type": "row",
            }
        )
        y += 1
        place(row.panels)
    return placed


def dashboard() -> dict[str, Any]:
    """The whole dashboard document, importable or provisioned as is."""
    return {
        "annotations": {"list": []},
        "description": "AI agent, sandbox and browser sessions, from session-exporter.",
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "links": [],
        "panels": layout(overview(), [sessions_row(), deadlines_row(), exporter_row()]),
        "refresh": "30s",
        "schemaVersion": 39,
        "tags": ["session-exporter", "sessions"],
        "templating": {"list": variables()},
        "time": {"from": "now-3h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "title": "Sessions",
        "uid": UID,
        "version": 1,
        "weekStart": "",
    }


def render() -> str:
    """The dashboard as the committed JSON text."""
    return json.dumps(dashboard(), indent=2, sort_keys=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Write the dashboard JSON, or with ``--check`` exit 1 when the committed one is stale."""
    parser = argparse.ArgumentParser(prog="python -m grafana.dashboard", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the JSON is out of date")
    args = parser.parse_args(argv)
    text = render()
    current = OUTPUT.exists() and OUTPUT.read_text() == text
    if args.check:
        if not current:
            print(f"{OUTPUT.relative_to(ROOT)} is out of date: run python -m grafana.dashboard")
        return 0 if current else 1
    if not current:
        OUTPUT.write_text(text)
        print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
