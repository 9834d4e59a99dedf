"""Build the session-exporter Grafana dashboard: ``python -m grafana.dashboard``.

The committed ``grafana/dashboards/session-exporter.json`` is this module's output (``--check``
exits 1 when it is stale, and a test keeps the two equal). It is built with Grafana's own
Python library, ``grafana-foundation-sdk``, whose types are generated from Grafana's dashboard
schema; the alert thresholds the panels draw come from ``deploy/prometheus/thresholds.yml``,
the same file the alert rules come from.

Replicas: several exporters may export the same target (an HA pair of a shard), differing only
in ``instance``. Every query collapses them first, with ``max``/``min by`` the series' own labels
(or ``topk by`` for the sessions table), and only then aggregates, so no number doubles. The
panels that read a series only the shipped recording rules provide (two thresholds, the stuck
share) say so.

A row is a function returning a :class:`Row`; :data:`ROWS` lists them in order, so a new row is
one more function in that tuple.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import bargauge, heatmap, prometheus, stat, statetimeline
from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dashboard_b
from grafana_foundation_sdk.builders import table as table_b
from grafana_foundation_sdk.builders import timeseries as timeseries_b
from grafana_foundation_sdk.cog import builder as cog
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import heatmap as heatmap_m
from grafana_foundation_sdk.models.prometheus import PromQueryFormat, QueryEditorMode

from deploy import rules

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "grafana" / "dashboards" / "session-exporter.json"
UID = "session-exporter"
GRAFANA_VERSION = "11.6.0"
"""The Grafana line grafana-foundation-sdk (as pinned in pyproject.toml) generates for."""
INPUT = "DS_PROMETHEUS"
"""The data source input of the import dialog (``__inputs``)."""
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="${datasource}")

SEL = 'provider=~"$provider", target=~"$target"'
"""Label matchers every per-target query applies (the provider and target variables)."""
STATUS = f'{SEL}, status=~"$status"'
"""The same, plus the status variable, for series that have a status."""
LIVE = f'{STATUS}, phase=~"pending|live"'
BY_TARGET = "by (provider, target)"
BY_STATUS = "by (provider, target, status, phase)"
NEEDS_RULES = (
    " The dashed line needs the shipped recording rules (deploy/prometheus/rules.yml) loaded "
    "in Prometheus; the ages are drawn without them."
)

GREEN, YELLOW, ORANGE, RED = "green", "yellow", "orange", "red"

Panel = cog.Builder[model.Panel]


def steps(*pairs: tuple[float | None, str]) -> dashboard_b.ThresholdsConfig:
    """Absolute thresholds: ``(None, base colour)`` first, then ``(value, colour)`` steps."""
    return (
        dashboard_b.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=v, color=c) for v, c in pairs])
    )


def neutral() -> dashboard_b.ThresholdsConfig:
    return steps((None, GREEN))


def colours(mode: model.FieldColorModeId) -> dashboard_b.FieldColor:
    return dashboard_b.FieldColor().mode(mode)


HIDE_COLUMNS = model.DataTransformerConfig(
    id_val="organize",
    options={"excludeByName": {"Time": True, "__name__": True, "job": True}},
)
"""Table transformation dropping the columns that say nothing about a session or a build."""


def query(
    expr: str, legend: str = "", *, ref: str = "A", fmt: PromQueryFormat | None = None
) -> prometheus.Dataquery:
    """One PromQL target; ``fmt`` TABLE makes it an instant table query."""
    built = (
        prometheus.Dataquery()
        .datasource(DATASOURCE)
        .editor_mode(QueryEditorMode.CODE)
        .expr(expr)
        .legend_format(legend or "__auto")
        .ref_id(ref)
        .format(fmt or PromQueryFormat.TIME_SERIES)
    )
    return built.instant() if fmt == PromQueryFormat.TABLE else built.range()


def reduce_last() -> common_b.ReduceDataOptions:
    return common_b.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False)


def stat_panel(
    title: str,
    description: str,
    expr: str,
    unit: str,
    thresholds: dashboard_b.ThresholdsConfig,
    *,
    width: int = 4,
    height: int = 4,
    legend: str = "",
    by_name: bool = False,
) -> stat.Panel:
    """A single number (or one per series with ``by_name``), coloured by its thresholds."""
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(query(expr, legend))
        .span(width)
        .height(height)
        .unit(unit)
        .thresholds(thresholds)
        .color_scheme(colours(model.FieldColorModeId.THRESHOLDS))
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE if by_name else common.BigValueGraphMode.AREA)
        .justify_mode(common.BigValueJustifyMode.AUTO)
        .orientation(common.VizOrientation.HORIZONTAL if by_name else common.VizOrientation.AUTO)
        .text_mode(
            common.BigValueTextMode.VALUE_AND_NAME if by_name else common.BigValueTextMode.AUTO
        )
        .reduce_options(reduce_last())
    )


def timeseries(
    title: str,
    description: str,
    *queries: prometheus.Dataquery,
    unit: str,
    width: int = 12,
    thresholds: dashboard_b.ThresholdsConfig | None = None,
    stack: bool = False,
    threshold_line: bool = False,
) -> timeseries_b.Panel:
    """Lines over time; ``stack`` stacks them, ``threshold_line`` draws the thresholds."""
    panel = (
        timeseries_b.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .span(width)
        .height(8)
        .unit(unit)
        .thresholds(thresholds or neutral())
        .color_scheme(colours(model.FieldColorModeId.PALETTE_CLASSIC))
        .draw_style(common.GraphDrawStyle.LINE)
        .line_width(1)
        .fill_opacity(20 if stack else 0)
        .show_points(common.VisibilityMode.NEVER)
        .span_nulls(False)
        .stacking(
            common_b.StackingConfig()
            .group("A")
            .mode(common.StackingMode.NORMAL if stack else common.StackingMode.NONE)
        )
        .thresholds_style(
            common_b.GraphThresholdsStyleConfig().mode(
                common.GraphThresholdsStyleMode.LINE
                if threshold_line
                else common.GraphThresholdsStyleMode.OFF
            )
        )
        .legend(
            common_b.VizLegendOptions()
            .calcs(["lastNotNull", "max"])
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(
            common_b.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
    )
    for i, q in enumerate(queries):
        panel = panel.with_target(q.ref_id(chr(ord("A") + i)))
    return panel


DASHED_RED = [
    model.DynamicConfigValue(id_val="custom.lineStyle", value={"dash": [10, 10], "fill": "dash"}),
    model.DynamicConfigValue(id_val="color", value={"fixedColor": RED, "mode": "fixed"}),
]
"""Override properties drawing a threshold series as a dashed red line."""


@dataclass(frozen=True)
class Row:
    """A row title and the panels under it, laid out left to right (widths add up to 24)."""

    title: str
    panels: tuple[Panel, ...]


def overview() -> tuple[Panel, ...]:
    """Top line numbers, above every row."""
    config = rules.load().alerts
    stuck = rules.seconds(config.SessionStuck.max_age)
    return (
        stat_panel(
            "Live sessions",
            "Sessions in phase live, summed over the selected targets and statuses (replicas "
            "exporting the same target are counted once).",
            f'sum(max {BY_STATUS} (sessions{{{STATUS}, phase="live"}}))',
            "short",
            neutral(),
        ),
        stat_panel(
            "Pending sessions",
            "Sessions still starting (phase pending).",
            f'sum(max {BY_STATUS} (sessions{{{STATUS}, phase="pending"}}))',
            "short",
            steps((None, GREEN), (10, YELLOW)),
            width=3,
        ),
        stat_panel(
            "Paused sessions",
            "Sessions resting in phase paused (resumable sandboxes: nothing runs and no compute "
            "is billed, but the sandbox and its disk remain). They are not live: neither stuck, "
            "nor overdue, nor counted in session-hours. 0 where no provider has a paused phase.",
            f'sum(max {BY_STATUS} (sessions{{{STATUS}, phase="paused"}})) or vector(0)',
            "short",
            neutral(),
            width=3,
        ),
        stat_panel(
            "Overdue sessions",
            "Sessions still reported live past their deadline (providers that report a deadline).",
            f"sum(max {BY_TARGET} (sessions_overdue{{{SEL}}}))",
            "short",
            steps((None, GREEN), (1, RED)),
            width=3,
        ),
        stat_panel(
            "Unleased browsers",
            "Live sessions with 0 connection leases (providers that report leases, such as "
            "browsers).",
            f"sum(max {BY_TARGET} (sessions_unleased{{{SEL}}}))",
            "short",
            steps((None, GREEN), (1, YELLOW)),
            width=3,
        ),
        stat_panel(
            "Oldest live session",
            "Age of the oldest pending or live session over the selected targets; red past the "
            "default stuck threshold of the SessionStuck alert.",
            f"time() - min(sessions_oldest_created_timestamp_seconds{{{LIVE}}})",
            "s",
            steps((None, GREEN), (stuck / 2, YELLOW), (stuck, RED)),
        ),
        stat_panel(
            "Targets down",
            "Targets whose last poll failed on every replica that exports them.",
            f"sum(1 - max {BY_TARGET} (sessions_target_up{{{SEL}}}))",
            "short",
            steps((None, GREEN), (1, RED)),
        ),
    )


def sessions_row() -> Row:
    """Session counts, statuses, ages, idleness and the sessions themselves."""
    return Row(
        "Sessions",
        (
            timeseries(
                "Live sessions by provider and phase",
                "Pending and live sessions over time, stacked by provider and phase.",
                query(
                    f"sum by (provider, phase) (max {BY_STATUS} (sessions{{{LIVE}}}))",
                    "{{provider}} {{phase}}",
                ),
                unit="short",
                stack=True,
            ),
            bargauge.Panel()
            .title("Status breakdown")
            .description(
                "Current sessions in every status the targets count, by provider and status "
                "(the provider's own status names), each with its phase: pending, live, paused "
                "(resting, resumable), ended, failed or unknown."
            )
            .datasource(DATASOURCE)
            .with_target(
                query(
                    f"sum by (provider, status, phase) (max {BY_STATUS} (sessions{{{STATUS}}}))",
                    "{{provider}} {{status}} ({{phase}})",
                ).instant()
            )
            .span(12)
            .height(8)
            .unit("short")
            .thresholds(neutral())
            .color_scheme(colours(model.FieldColorModeId.PALETTE_CLASSIC))
            .display_mode(common.BarGaugeDisplayMode.GRADIENT)
            .orientation(common.VizOrientation.HORIZONTAL)
            .reduce_options(reduce_last())
            .show_unfilled(True),
            timeseries(
                "Age of the oldest live session",
                "Per target, the age of its oldest pending or live session (exact at query "
                "time); dashed: the SessionStuck threshold of each provider." + NEEDS_RULES,
                query(
                    "time() - min by (provider, target) "
                    f"(sessions_oldest_created_timestamp_seconds{{{LIVE}}})",
                    "{{target}}",
                ),
                query(
                    f'{rules.STUCK_THRESHOLD}{{provider=~"$provider"}}',
                    "stuck threshold {{provider}}",
                ),
                unit="s",
            ).override_by_query("B", DASHED_RED),
            timeseries(
                "Time since the least recent activity",
                "Per target, how long its least recently active live session has been idle "
                "(providers that report activity); dashed: the SessionIdle threshold of each "
                "provider." + NEEDS_RULES,
                query(
                    "time() - min by (provider, target) "
                    f"(sessions_oldest_activity_timestamp_seconds{{{SEL}}})",
                    "{{target}}",
                ),
                query(
                    f'{rules.IDLE_THRESHOLD}{{provider=~"$provider"}}',
                    "idle threshold {{provider}}",
                ),
                unit="s",
            ).override_by_query("B", DASHED_RED),
            heatmap.Panel()
            .title("Ages of live sessions")
            .description(
                "How many pending and live sessions fall in each age bucket, measured at poll "
                "time (sessions_age_seconds, an OpenMetrics gauge histogram)."
            )
            .datasource(DATASOURCE)
            .with_target(
                query(
                    f"sum by (le) (max by (provider, target, le) "
                    f"(sessions_age_seconds_bucket{{{SEL}}}))",
                    "{{le}}",
                    fmt=PromQueryFormat.HEATMAP,
                )
            )
            .span(24)
            .height(8)
            .unit("short")
            .thresholds(neutral())
            .calculate(False)
            .cell_gap(1)
            .color(
                heatmap.HeatmapColorOptions()
                .mode(heatmap_m.HeatmapColorMode.SCHEME)
                .scheme("Oranges")
                .steps(64)
            )
            .show_legend()
            .rows_frame(heatmap.RowsHeatmapOptions().layout(common.HeatmapCellLayout.AUTO))
            .y_axis(heatmap.YAxisConfig().axis_placement(common.AxisPlacement.LEFT).unit("s")),
            table_b.Panel()
            .title("Oldest sessions")
            .description(
                "The sessions themselves, oldest first, with their status and kind. Needs "
                "per_session enabled on the target (the exporter then exports the oldest "
                "max_series sessions); replicas are collapsed to one row per session."
            )
            .datasource(DATASOURCE)
            .with_target(
                query(
                    "(\n  time()\n  - min by (provider, target, session_id) "
                    f"(session_created_timestamp_seconds{{{SEL}}})\n)\n"
                    "* on (provider, target, session_id) group_left (status, phase, kind)\n"
                    f"topk by (provider, target, session_id) (1, session_info{{{STATUS}}})",
                    fmt=PromQueryFormat.TABLE,
                )
            )
            .span(24)
            .height(8)
            .unit("s")
            .thresholds(steps((None, GREEN), (3600, YELLOW)))
            .color_scheme(colours(model.FieldColorModeId.THRESHOLDS))
            .show_header(True)
            .filterable(True)
            .sort_by([common_b.TableSortByFieldState().display_name("Value").desc(True)])
            .override_by_name(
                "Value",
                [
                    model.DynamicConfigValue(id_val="displayName", value="age"),
                    model.DynamicConfigValue(
                        id_val="custom.cellOptions", value={"type": "color-text"}
                    ),
                ],
            )
            .with_transformation(HIDE_COLUMNS),
        ),
    )


def deadlines_row() -> Row:
    """Deadlines, overdue sessions and browser connection leases."""
    return Row(
        "Deadlines and leases",
        (
            timeseries(
                "Overdue sessions",
                "Sessions still reported live past their deadline, per target (providers that "
                "report a deadline).",
                query(f"max {BY_TARGET} (sessions_overdue{{{SEL}}})", "{{target}}"),
                unit="short",
                width=6,
                thresholds=steps((None, GREEN), (1, RED)),
                threshold_line=True,
            ),
            stat_panel(
                "Time to the next deadline",
                "Per target, time left until the earliest deadline among its live sessions "
                "(providers that report a deadline); negative once it has passed.",
                f"min {BY_TARGET} (sessions_next_deadline_timestamp_seconds{{{SEL}}}) - time()",
                "s",
                steps((None, RED), (0, ORANGE), (300, GREEN)),
                width=6,
                height=8,
                legend="{{target}}",
                by_name=True,
            ),
            timeseries(
                "Unleased browser sessions",
                "Live sessions reporting exactly 0 connection leases (providers that report "
                "leases, such as browsers).",
                query(f"max {BY_TARGET} (sessions_unleased{{{SEL}}})", "{{target}}"),
                unit="short",
                width=6,
                thresholds=steps((None, GREEN), (1, YELLOW)),
            ),
            timeseries(
                "Connection leases",
                "Active connection leases summed over pending and live sessions (providers "
                "that report leases).",
                query(f"max {BY_TARGET} (sessions_connection_leases{{{SEL}}})", "{{target}}"),
                unit="short",
                width=6,
            ),
        ),
    )


def exporter_row() -> Row:
    """Health of the targets' polls and of the exporters themselves."""
    config = rules.load().alerts
    stale = rules.seconds(config.SessionTargetDataStale.max_age)
    ratio = config.SessionPollErrorsRising
    return Row(
        "Targets and exporter",
        (
            statetimeline.Panel()
            .title("Target health")
            .description("Whether each target's last poll succeeded (on any replica).")
            .datasource(DATASOURCE)
            .with_target(query(f"max {BY_TARGET} (sessions_target_up{{{SEL}}})", "{{target}}"))
            .span(12)
            .height(8)
            .unit("short")
            .thresholds(steps((None, RED), (1, GREEN)))
            .color_scheme(colours(model.FieldColorModeId.THRESHOLDS))
            .mappings(
                [
                    model.ValueMap(
                        options={
                            "0": model.ValueMappingResult(color=RED, index=0, text="down"),
                            "1": model.ValueMappingResult(color=GREEN, index=1, text="up"),
                        }
                    )
                ]
            )
            .merge_values(True)
            .show_value(common.VisibilityMode.NEVER)
            .row_height(0.8),
            timeseries(
                "Time since the last successful poll",
                "Age of each target's last successful poll (the freshest replica's); the line "
                "is the SessionTargetDataStale limit.",
                query(
                    "time() - max by (provider, target) "
                    f"(sessions_target_last_success_timestamp_seconds{{{SEL}}})",
                    "{{target}}",
                ),
                unit="s",
                thresholds=steps((None, GREEN), (stale, RED)),
                threshold_line=True,
            ),
            timeseries(
                "Poll duration",
                "How long each target's last poll took (all pages of every query; the slowest "
                "replica's).",
                query(
                    f"max {BY_TARGET} (sessions_exporter_poll_duration_seconds{{{SEL}}})",
                    "{{target}}",
                ),
                unit="s",
                width=8,
            ),
            timeseries(
                "Poll errors by reason",
                "Failed polls per second, by target and reason (timeout, connect, auth, ...), "
                "of one exporter: each replica polls on its own, the busiest one is shown.",
                query(
                    "max by (provider, target, reason) "
                    f"(rate(sessions_exporter_poll_errors_total{{{SEL}}}[$__rate_interval]))",
                    "{{target}} {{reason}}",
                ),
                unit="cps",
                width=8,
                thresholds=steps((None, GREEN), (0.01, RED)),
            ),
            timeseries(
                "Share of failed polls",
                f"Failed polls over the last {ratio.window}, as a share of all polls (over every "
                "replica); the line is the SessionPollErrorsRising limit.",
                query(
                    f"sum {BY_TARGET} (rate(sessions_exporter_poll_errors_total{{{SEL}}}"
                    f"[{ratio.window}]))\n/\n"
                    f"sum {BY_TARGET} (rate(sessions_exporter_polls_total{{{SEL}}}"
                    f"[{ratio.window}]))",
                    "{{target}}",
                ),
                unit="percentunit",
                width=8,
                thresholds=steps((None, GREEN), (ratio.max_ratio, RED)),
                threshold_line=True,
            ),
            timeseries(
                "Provider API requests by status code",
                "Requests to the providers' APIs per second, by target and HTTP status code, of "
                "one exporter (the busiest replica).",
                query(
                    "max by (provider, target, code) "
                    f"(rate(sessions_exporter_api_requests_total{{{SEL}}}[$__rate_interval]))",
                    "{{target}} {{code}}",
                ),
                unit="reqps",
            ),
            table_b.Panel()
            .title("Exporter build")
            .description(
                "Version of every scraped exporter and the Python it runs on: one row per "
                "exporter process (each replica is listed)."
            )
            .datasource(DATASOURCE)
            .with_target(query("sessions_exporter_build_info", fmt=PromQueryFormat.TABLE))
            .span(12)
            .height(8)
            .unit("short")
            .thresholds(neutral())
            .show_header(True)
            .with_transformation(HIDE_COLUMNS),
        ),
    )


HOURS_PER_DAY = f"max {BY_TARGET} (rate(sessions_live_seconds_total{{{SEL}}}[1d])) * 24"
"""Each target's session-hours over the day before each point (replicas counted once)."""
PRICE = f"max {BY_TARGET} (sessions_price_per_session_hour{{{SEL}}})"
STUCK_SHARE = (
    f"sum_over_time({rules.STUCK_COUNT}{{{SEL}}}[1d])\n"
    f"/\n(sum_over_time({rules.LIVE_COUNT}{{{SEL}}}[1d]) > 0)"
)
"""Each target's share of the day's session-hours spent past its provider's stuck threshold."""


def spend_row() -> Row:
    """What the sessions cost: session-hours, money where prices are set, and the stuck part."""
    stuck = rules.load().alerts.SessionStuck
    return Row(
        "Spend",
        (
            timeseries(
                "Session-hours per day",
                "Session-hours each target burned over the 24 hours before each point, stacked "
                "(sessions_live_seconds_total: every pending or live session, as the polls see "
                "it): what the account is billed for. It misses sessions that start and end "
                "between two polls (docs/metrics.md#session-hours).",
                query(HOURS_PER_DAY, "{{target}} ({{provider}})"),
                unit="short",
                stack=True,
            ),
            timeseries(
                "Estimated spend per day",
                "Session-hours per day times the target's price_per_session_hour, in the "
                "currency of that price; only targets with a price are drawn.",
                query(
                    f"{HOURS_PER_DAY}\n* on (provider, target)\n{PRICE}",
                    "{{target}} ({{provider}})",
                ),
                unit="short",
                stack=True,
            ),
            timeseries(
                "Share of session-hours burned by stuck sessions",
                "Per target, the share of its session-hours over the 24 hours before each point "
                "spent by sessions past their provider's SessionStuck threshold (default "
                f"{stuck.max_age}), from the session counts sampled at each rule evaluation. "
                "Needs the shipped recording rules (deploy/prometheus/rules.yml) loaded in "
                "Prometheus.",
                query(STUCK_SHARE, "{{target}} ({{provider}})"),
                unit="percentunit",
                thresholds=steps((None, GREEN), (0.1, YELLOW), (0.25, RED)),
            ),
            timeseries(
                "Session-hours per day burned by stuck sessions",
                "The share of stuck sessions times the session-hours per day (A, per target); "
                "B: the same in money, for the targets with a price. Needs the shipped "
                "recording rules (deploy/prometheus/rules.yml) loaded in Prometheus.",
                query(
                    f"({STUCK_SHARE})\n* on (provider, target)\n{HOURS_PER_DAY}",
                    "{{target}} ({{provider}}) hours",
                ),
                query(
                    f"({STUCK_SHARE})\n* on (provider, target)\n{HOURS_PER_DAY}\n"
                    f"* on (provider, target)\n{PRICE}",
                    "{{target}} ({{provider}}) spend",
                ),
                unit="short",
            ),
        ),
    )


ROWS: tuple[Callable[[], Row], ...] = (sessions_row, deadlines_row, spend_row, exporter_row)
"""The rows under the overview, top to bottom."""


def variables() -> list[cog.Builder[model.VariableModel]]:
    """Template variables: data source, provider, target and status, each narrowing the next."""

    def labels(name: str, label: str, expr: str) -> dashboard_b.QueryVariable:
        return (
            dashboard_b.QueryVariable(name)
            .label(label)
            .datasource(DATASOURCE)
            .query({"qryType": 1, "query": expr, "refId": f"{name}-variable"})
            .current(model.VariableOption(selected=True, text=["All"], value=["$__all"]))
            .multi(True)
            .include_all(True)
            .all_value(".*")
            .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(model.VariableSort.ALPHABETICAL_ASC)
        )

    return [
        dashboard_b.DatasourceVariable("datasource")
        .label("Data source")
        .type("prometheus")
        .current(model.VariableOption(text=f"${{{INPUT}}}", value=f"${{{INPUT}}}"))
        .multi(False)
        .include_all(False),
        labels("provider", "Provider", "label_values(sessions_target_up, provider)"),
        labels(
            "target", "Target", 'label_values(sessions_target_up{provider=~"$provider"}, target)'
        ),
        labels(
            "status",
            "Status",
            'label_values(sessions{provider=~"$provider", target=~"$target"}, status)',
        ),
    ]


def builder(rows: Sequence[Callable[[], Row]] = ROWS) -> dashboard_b.Dashboard:
    """The dashboard as a grafana-foundation-sdk builder (laid out by the SDK's grid)."""
    board = (
        dashboard_b.Dashboard("Sessions")
        .uid(UID)
        .description("AI agent, sandbox and browser sessions, from session-exporter.")
        .tags(["session-exporter", "sessions"])
        .editable()
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .refresh("30s")
        .time("now-3h", "now")
        .timezone("browser")
        .version(1)
        .variables(variables())
    )
    for panel in overview():
        board = board.with_panel(panel)
    for make in rows:
        row = make()
        board = board.with_row(dashboard_b.Row(row.title))
        for panel in row.panels:
            board = board.with_panel(panel)
    return board


def _requires(panels: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """``__requires``: the Grafana version, the data source and every panel plugin used."""
    kinds = sorted({p["type"] for p in panels if p["type"] != "row"})
    return [
        {"type": "grafana", "id": "grafana", "name": "Grafana", "version": GRAFANA_VERSION},
        {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
        *({"type": "panel", "id": kind, "name": kind, "version": ""} for kind in kinds),
    ]


def dashboard() -> dict[str, Any]:
    """The whole dashboard document: importable on its own (``__inputs``) or provisioned."""
    built: dict[str, Any] = json.loads(json.dumps(builder().build(), cls=JSONEncoder))
    for number, panel in enumerate(built["panels"], start=1):
        panel["id"] = number
    inputs = [
        {
            "name": INPUT,
            "label": "Prometheus",
            "description": "The Prometheus that scrapes session-exporter",
            "type": "datasource",
            "pluginId": "prometheus",
            "pluginName": "Prometheus",
        }
    ]
    return {"__inputs": inputs, "__requires": _requires(built["panels"]), **built}


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
