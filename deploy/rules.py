"""Build the Prometheus alert and recording rules from ``deploy/prometheus/thresholds.yml``.

``python -m deploy.rules`` rewrites ``deploy/prometheus/rules.yml``,
``deploy/kubernetes/prometheusrule.yaml`` and the Helm chart's
``deploy/helm/session-exporter/files/rules.yml``; ``--check`` only reports whether they are current
(exit 1 when not). The committed files are this module's output, and a test keeps them equal.

Per-provider stuck thresholds are series, not copies of the alert:
``provider:sessions_stuck_threshold_seconds:config`` holds one limit for every provider id that
some target exports (``sessions_target_up``, grouped by ``provider``), built-in or user-defined:
its override from ``per_provider`` (recorded as ``...:override``, one constant per configured
id) where there is one, else the default. ``SessionStuck`` compares each target's oldest
pending/live session with it, joined on ``provider``. One alert definition serves every
provider, no expression names one (the ids appear only as labels of the override constants),
and the dashboard draws the same threshold next to the ages it applies to. ``SessionIdle`` does
the same with ``provider:sessions_idle_threshold_seconds:config`` and the least recent activity
of a live session. ``SessionStuck`` is one alert per stuck session (with ``session_id``) where
per-session series exist, and one per (target, status) elsewhere. Phase ``paused`` (resting,
resumable) is neither stuck, nor live, nor failed: every rule selects phases by name.

What sessions cost: ``provider_target:sessions_stuck:count`` counts the pending and live sessions
past their provider's stuck threshold, read from the ``sessions_age_seconds`` buckets at that
threshold (``provider_le:sessions_stuck_threshold_weight:config``: weight 1 on the bucket when
the threshold is a bucket bound, else split between the two bounds around it, a linear
interpolation; one rule per configured threshold value, selecting the providers whose recorded
threshold has that value), and ``provider_target:sessions_live:count`` all of them, so the share
of the session-hours that stuck sessions burn is ``sum_over_time`` of one over the other.
``SessionSpendRising`` compares a target's session-seconds over ``window``
(``provider_target:sessions_live_seconds:increase1h``) with the same window ``offset`` earlier.

Several replicas may export the same target (high availability: two replicas of one shard),
so every per-target rule first collapses them with ``max``/``min by`` the target's own labels:
duplicates (which differ only in ``instance``, ``pod`` and the like) never double a count or
raise one alert per replica. The shard alerts compare what the replicas report about the
sharding itself, as kube-state-metrics' mixin does.
"""

from __future__ import annotations

import argparse
import bisect
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from exporter.core.durations import format_duration, parse_duration
from exporter.polling.aggregate import AGE_BUCKETS

ROOT = Path(__file__).resolve().parent.parent
THRESHOLDS = ROOT / "deploy" / "prometheus" / "thresholds.yml"
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
PROMETHEUS_RULE = ROOT / "deploy" / "kubernetes" / "prometheusrule.yaml"
HELM_RULES = ROOT / "deploy" / "helm" / "session-exporter" / "files" / "rules.yml"
"""The chart's copy of the groups: its PrometheusRule template reads it as a plain file."""

PROVIDERS = (
    "together",
    "agi",
    "trigger",
    "chaser",
    "notte",
    "e2b",
    "browserbase",
    "daytona",
    "runloop",
    "steel",
)
"""The built-in provider ids (interface.md). Thresholds do not depend on this list: every id
seen in ``sessions_target_up`` gets the defaults, and ``per_provider`` takes any valid id."""
PROVIDER_ID = re.compile(r"[a-z][a-z0-9_-]*")
"""A provider id, built-in or user-defined (``providers:`` in the exporter's config)."""

LIVE = 'phase=~"pending|live"'
STUCK_THRESHOLD = "provider:sessions_stuck_threshold_seconds:config"
IDLE_THRESHOLD = "provider:sessions_idle_threshold_seconds:config"
STUCK_OVERRIDE = "provider:sessions_stuck_threshold_seconds:override"
IDLE_OVERRIDE = "provider:sessions_idle_threshold_seconds:override"
PRESENT = "group by (provider) (sessions_target_up)"
"""One series per provider id some target exports, however many replicas export it."""
STUCK_WEIGHT = "provider_le:sessions_stuck_threshold_weight:config"
STUCK_COUNT = "provider_target:sessions_stuck:count"
LIVE_COUNT = "provider_target:sessions_live:count"
FAILED = "provider_target:sessions_failed:sum"
OLDEST_AGE = "provider_target:sessions_oldest_live_age_seconds:max"
BY_TARGET = "by (provider, target)"
BY_STATUS = "by (provider, target, status, phase)"
GROUP = "session-exporter"

Severity = Literal["critical", "warning", "info"]


def _duration(value: object) -> str:
    """A Prometheus duration string in canonical form (whole seconds, units largest first)."""
    seconds = parse_duration(value)
    if seconds != int(seconds):
        raise ValueError(f"{value!r}: Prometheus rule durations must be whole seconds")
    return format_duration(seconds)


def seconds(duration: str) -> int:
    """Whole seconds of a canonical duration string."""
    return int(parse_duration(duration))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class AlertSettings(_Strict):
    """What every alert takes: its severity label and how long its condition must hold."""

    severity: Severity
    for_: str = Field(alias="for")

    @field_validator("for_", mode="before")
    @classmethod
    def _for(cls, value: object) -> str:
        return _duration(value)


class MaxAge(AlertSettings):
    max_age: str

    @field_validator("max_age", mode="before")
    @classmethod
    def _age(cls, value: object) -> str:
        return _duration(value)


class PerProvider(AlertSettings):
    """A limit with a default for every provider id and overrides by id (any valid id)."""

    per_provider: dict[str, str] = Field(default_factory=dict)

    @field_validator("per_provider", mode="before")
    @classmethod
    def _providers(cls, value: object) -> dict[str, str]:
        if not isinstance(value, Mapping):
            raise ValueError("expected a mapping of provider id to duration")
        invalid = sorted(str(p) for p in value if not PROVIDER_ID.fullmatch(str(p)))
        if invalid:
            raise ValueError(
                f"invalid provider id(s) {invalid}: an id is lower-case letters, digits, '_' "
                f"and '-', starting with a letter (a built-in one: {', '.join(PROVIDERS)}; or "
                "the id of a provider defined under `providers:` in the exporter's config)"
            )
        return {str(p): _duration(d) for p, d in value.items()}

    @property
    def default(self) -> str:
        """The limit of every provider without an override."""
        raise NotImplementedError


class Stuck(PerProvider):
    max_age: str

    @field_validator("max_age", mode="before")
    @classmethod
    def _age(cls, value: object) -> str:
        return _duration(value)

    @property
    def default(self) -> str:
        return self.max_age


class Idle(PerProvider):
    max_idle: str

    @field_validator("max_idle", mode="before")
    @classmethod
    def _idle(cls, value: object) -> str:
        return _duration(value)

    @property
    def default(self) -> str:
        return self.max_idle


class MinCount(AlertSettings):
    min_count: int = Field(ge=1)


class Rising(AlertSettings):
    window: str
    min_increase: int = Field(ge=1)

    @field_validator("window", mode="before")
    @classmethod
    def _window(cls, value: object) -> str:
        return _duration(value)


class ErrorRatio(AlertSettings):
    window: str
    max_ratio: float = Field(gt=0, lt=1)

    @field_validator("window", mode="before")
    @classmethod
    def _window(cls, value: object) -> str:
        return _duration(value)


class SpendRising(AlertSettings):
    """A target's session-hours over ``window`` against the same window ``offset`` earlier."""

    window: str
    offset: str
    min_ratio: float = Field(gt=1)
    min_session_hours: float = Field(ge=0)

    @field_validator("window", "offset", mode="before")
    @classmethod
    def _durations(cls, value: object) -> str:
        return _duration(value)


class Alerts(_Strict):
    SessionExporterAbsent: AlertSettings
    SessionTargetDown: AlertSettings
    SessionTargetDataStale: MaxAge
    SessionStuck: Stuck
    SessionIdle: Idle
    SessionRowsInvalid: AlertSettings
    SessionsOverdue: MinCount
    BrowserSessionsUnleased: MinCount
    FailedSessionsRising: Rising
    SessionPollErrorsRising: ErrorRatio
    SessionSpendRising: SpendRising
    SessionExporterShardsMissing: AlertSettings
    SessionExporterShardingMismatch: AlertSettings


class Thresholds(_Strict):
    """The whole thresholds file."""

    job: str = Field(min_length=1)
    runbook_url: str = Field(min_length=1)
    alerts: Alerts


def load(path: Path = THRESHOLDS) -> Thresholds:
    """Read and validate a thresholds file (pydantic's ValidationError names the bad key)."""
    return Thresholds.model_validate(yaml.safe_load(path.read_text()))


def error_ratio_rule(window: str) -> str:
    """Name of the recorded share of failed polls over ``window``."""
    return f"provider_target:sessions_exporter_poll_errors:ratio_rate{window}"


def spend_rule(window: str) -> str:
    """Name of the recorded session-seconds of each target over ``window``."""
    return f"provider_target:sessions_live_seconds:increase{window}"


def le(bound: float) -> str:
    """The ``le`` label of an age bucket, as the exporter writes it (``3600.0``)."""
    return str(float(bound))


def bucket_weights(threshold: int) -> dict[str, float]:
    """Weights of the age buckets (by ``le``) that count the sessions up to ``threshold`` old.

    Exact at a bucket bound (weight 1 on it); between two bounds the count is interpolated
    linearly, as ``histogram_quantile`` does; past the last bound, that bound counts.
    """
    bounds = (0.0, *AGE_BUCKETS)
    if threshold >= bounds[-1]:
        return {le(bounds[-1]): 1.0}
    i = bisect.bisect_right(bounds, threshold)
    lo, hi = bounds[i - 1], bounds[i]
    share = (threshold - lo) / (hi - lo)
    weights = {}
    if lo > 0 and share < 1:
        weights[le(lo)] = 1 - share
    if share > 0 or lo == 0:
        weights[le(hi)] = share
    return weights


def threshold_rules(record: str, override: str, limits: PerProvider) -> list[dict[str, Any]]:
    """The ``record`` threshold of every provider some target exports: the override recorded
    under ``override`` (one constant per configured id, the only place an id is written), else
    the default. Both sides keep only providers present, so no line is drawn for a provider
    nobody runs, and a user-defined id gets the default with no rule naming it."""
    overrides = [
        {"record": override, "expr": f"vector({seconds(limit)})", "labels": {"provider": provider}}
        for provider, limit in limits.per_provider.items()
    ]
    return [
        *overrides,
        {
            "record": record,
            "expr": (
                f"(\n  {override}\n  and on (provider)\n  {PRESENT}\n)\n"
                f"or on (provider)\n{seconds(limits.default)} * {PRESENT}"
            ),
        },
    ]


def weight_rules(stuck: Stuck) -> list[dict[str, Any]]:
    """The bucket weights of every provider's stuck threshold: for each threshold value that
    thresholds.yml configures, its weights, for the providers whose recorded threshold has
    that value (so user-defined ids are covered, and no rule names a provider)."""
    limits = sorted({seconds(stuck.default), *(seconds(d) for d in stuck.per_provider.values())})
    return [
        {
            "record": STUCK_WEIGHT,
            "expr": f"({STUCK_THRESHOLD} == {limit}) * 0 + {weight:g}",
            "labels": {"le": bucket},
        }
        for limit in limits
        for bucket, weight in bucket_weights(limit).items()
    ]


def recording_rules(config: Thresholds) -> list[dict[str, Any]]:
    """Series the alerts and the dashboard share."""
    window = config.alerts.SessionPollErrorsRising.window
    spend = config.alerts.SessionSpendRising.window
    thresholds = [
        *threshold_rules(STUCK_THRESHOLD, STUCK_OVERRIDE, config.alerts.SessionStuck),
        *threshold_rules(IDLE_THRESHOLD, IDLE_OVERRIDE, config.alerts.SessionIdle),
    ]
    weights = weight_rules(config.alerts.SessionStuck)
    return [
        *thresholds,
        *weights,
        {
            "record": STUCK_COUNT,
            "expr": (
                'max by (provider, target) (sessions_age_seconds_bucket{le="+Inf"})\n'
                "- on (provider, target)\n"
                "sum by (provider, target) (\n"
                "  max by (provider, target, le) (sessions_age_seconds_bucket)\n"
                f"  * on (provider, le) group_left ()\n  {STUCK_WEIGHT}\n)"
            ),
        },
        {
            "record": LIVE_COUNT,
            "expr": f"sum by (provider, target) (\n  max {BY_STATUS} (sessions{{{LIVE}}})\n)",
        },
        {
            "record": spend_rule(spend),
            "expr": (f"max by (provider, target) (increase(sessions_live_seconds_total[{spend}]))"),
        },
        {
            "record": OLDEST_AGE,
            "expr": (
                "time()\n  - min by (provider, target) "
                f"(sessions_oldest_created_timestamp_seconds{{{LIVE}}})"
            ),
        },
        {
            "record": FAILED,
            "expr": (
                f'sum by (provider, target) (\n  max {BY_STATUS} (sessions{{phase="failed"}})\n)'
            ),
        },
        {
            "record": error_ratio_rule(window),
            "expr": (
                "sum by (provider, target) "
                f"(rate(sessions_exporter_poll_errors_total[{window}]))\n"
                "/\n"
                f"sum by (provider, target) (rate(sessions_exporter_polls_total[{window}]))"
            ),
        },
    ]


def _alert(
    name: str,
    settings: AlertSettings,
    expr: str,
    summary: str,
    description: str,
    *,
    config: Thresholds,
) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": name, "expr": expr}
    if seconds(settings.for_) > 0:
        rule["for"] = settings.for_
    rule["labels"] = {"severity": settings.severity}
    rule["annotations"] = {
        "summary": summary,
        "description": description,
        "runbook_url": f"{config.runbook_url}#{name.lower()}",
    }
    return rule


def alerting_rules(config: Thresholds) -> list[dict[str, Any]]:
    """One rule per shipped alert, thresholds taken from ``config``."""
    a = config.alerts
    job = f'job="{config.job}"'
    stale = a.SessionTargetDataStale.max_age
    stuck = a.SessionStuck
    rising = a.FailedSessionsRising
    ratio = a.SessionPollErrorsRising
    target = "{{ $labels.target }} ({{ $labels.provider }})"
    return [
        _alert(
            "SessionExporterAbsent",
            a.SessionExporterAbsent,
            f"up{{{job}}} == 0\nor\nabsent(up{{{job}}})",
            "session-exporter is not being scraped",
            (
                f"Prometheus has no successful scrape of job {config.job}"
                "{{ with $labels.instance }} at {{ . }}{{ end }}: no session is being "
                "watched, so no other session alert can fire."
            ),
            config=config,
        ),
        _alert(
            "SessionTargetDown",
            a.SessionTargetDown,
            f"max {BY_TARGET} (sessions_target_up) == 0",
            f"Polls of {target} are failing",
            (
                f"The last poll of {target} failed and none has succeeded for "
                f"{a.SessionTargetDown.for_}. See "
                'sessions_exporter_poll_errors_total{target="{{ $labels.target }}"} '
                "for the reason."
            ),
            config=config,
        ),
        _alert(
            "SessionTargetDataStale",
            a.SessionTargetDataStale,
            (
                f"time() - max {BY_TARGET} (sessions_target_last_success_timestamp_seconds)\n"
                f"  > {seconds(stale)}\n"
                "or\n"
                f"time() - max {BY_TARGET} (sessions_exporter_last_poll_timestamp_seconds)\n"
                f"  > {seconds(stale)}"
            ),
            f"Session data of {target} is stale",
            (
                f"The session data of {target} is {{{{ $value | humanizeDuration }}}} old "
                f"(limit {stale}): its polls fail or have stopped, and its session series "
                "have been withdrawn."
            ),
            config=config,
        ),
        _alert(
            "SessionStuck",
            stuck,
            stuck_expr(),
            (
                "{{ if $labels.session_id }}Session {{ $labels.session_id }} of "
                f"{target} is stuck{{{{ else }}}}A session of {target} is stuck in "
                "{{ $labels.status }}{{ end }}"
            ),
            (
                "{{ if $labels.session_id }}Session {{ $labels.session_id }} of "
                f"{target}{{{{ else }}}}The oldest {{{{ $labels.status }}}} session of "
                f"{target}{{{{ end }}}} is {{{{ $value | humanizeDuration }}}} old, over the "
                f"{{{{ $labels.provider }}}} threshold of {_threshold_template(STUCK_THRESHOLD)}."
                '{{ if $labels.session_id }} session_info{target="{{ $labels.target }}", '
                'session_id="{{ $labels.session_id }}"} has its status and kind.{{ else }} '
                "Enable per_session on the target to have one alert per stuck session, "
                "naming it.{{ end }}"
            ),
            config=config,
        ),
        _alert(
            "SessionIdle",
            a.SessionIdle,
            (
                "time() - min by (provider, target) "
                "(sessions_oldest_activity_timestamp_seconds)\n"
                f"> on (provider) group_left ()\n  {IDLE_THRESHOLD}"
            ),
            f"A live session of {target} is idle",
            (
                f"A live session of {target} has had no activity for "
                "{{ $value | humanizeDuration }}, over the {{ $labels.provider }} idle "
                f"threshold of {_threshold_template(IDLE_THRESHOLD)}: it may be forgotten "
                "but still billed."
            ),
            config=config,
        ),
        _alert(
            "SessionRowsInvalid",
            a.SessionRowsInvalid,
            "max by (provider, target, field) (sessions_exporter_invalid_rows) > 0",
            f"Rows of {target} have an unreadable {{{{ $labels.field }}}}",
            (
                f"{{{{ $value }}}} session row(s) in the last poll of {target} had a "
                "{{ $labels.field }} the exporter could not read: such rows are counted with "
                "that field unknown, or left out when it is the id or the status. The "
                "provider's answers no longer match what the exporter expects."
            ),
            config=config,
        ),
        _alert(
            "SessionsOverdue",
            a.SessionsOverdue,
            f"max {BY_TARGET} (sessions_overdue) >= {a.SessionsOverdue.min_count}",
            f"Sessions of {target} are past their deadline",
            (
                f"{{{{ $value }}}} session(s) of {target} are still reported live after "
                "their deadline: the provider has not ended them, and they may still cost."
            ),
            config=config,
        ),
        _alert(
            "BrowserSessionsUnleased",
            a.BrowserSessionsUnleased,
            f"max {BY_TARGET} (sessions_unleased) >= {a.BrowserSessionsUnleased.min_count}",
            f"Browser sessions of {target} have no connection",
            (
                f"{{{{ $value }}}} live browser session(s) of {target} report 0 connection "
                f"leases, and the count has stayed at {a.BrowserSessionsUnleased.min_count} "
                f"or more for {a.BrowserSessionsUnleased.for_}: likely leaked browsers."
            ),
            config=config,
        ),
        _alert(
            "FailedSessionsRising",
            rising,
            f"{FAILED}\n- {FAILED} offset {rising.window}\n>= {rising.min_increase}",
            f"Failed sessions of {target} are rising",
            (f"{target} lists {{{{ $value }}}} more failed sessions than {rising.window} ago."),
            config=config,
        ),
        _alert(
            "SessionPollErrorsRising",
            ratio,
            f"{error_ratio_rule(ratio.window)} > {ratio.max_ratio:g}",
            f"Polls of {target} fail often",
            (
                f"{{{{ $value | humanizePercentage }}}} of the polls of {target} failed over "
                f"the last {ratio.window} (limit {ratio.max_ratio:.0%})."
            ),
            config=config,
        ),
        spend_alert(a.SessionSpendRising, config=config),
        _alert(
            "SessionExporterShardsMissing",
            a.SessionExporterShardsMissing,
            (
                f"max by (job) (sessions_exporter_total_shards{{{job}}})\n"
                "-\n"
                "count by (job) (\n"
                f'  count_values by (job) ("shard", sessions_exporter_shard_ordinal{{{job}}})\n'
                ")\n"
                "> 0"
            ),
            "Shards of session-exporter are missing",
            (
                "{{ $value }} of the shards of job {{ $labels.job }} report no metrics: the "
                "targets of a missing shard are neither polled nor watched. Check that every "
                "replica of the StatefulSet runs and is scraped."
            ),
            config=config,
        ),
        _alert(
            "SessionExporterShardingMismatch",
            a.SessionExporterShardingMismatch,
            f"stdvar by (job) (sessions_exporter_total_shards{{{job}}}) != 0",
            "Replicas of session-exporter disagree on the number of shards",
            (
                "The replicas of job {{ $labels.job }} report different total_shards: some "
                "targets are polled twice and others by no one until every replica runs with "
                "the same --total-shards."
            ),
            config=config,
        ),
    ]


def spend_alert(settings: SpendRising, *, config: Thresholds) -> dict[str, Any]:
    """SessionSpendRising: a target's session-hours over ``window`` above ``min_ratio`` times
    those of the same window ``offset`` earlier, and at least ``min_session_hours``.

    The recorded series is already collapsed over replicas; a target without data ``offset``
    ago (a new one) has nothing to compare with and never fires.
    """
    hours = f"{spend_rule(settings.window)} / 3600"
    target = "{{ $labels.target }} ({{ $labels.provider }})"
    return _alert(
        "SessionSpendRising",
        settings,
        (
            f"(\n  {hours}\n  > {settings.min_ratio:g} * "
            f"{spend_rule(settings.window)} offset {settings.offset} / 3600\n)\n"
            f"and\n{hours} >= {settings.min_session_hours:g}"
        ),
        f"{target} burns far more session-hours than {settings.offset} earlier",
        (
            f'{target} burned {{{{ $value | printf "%.1f" }}}} session-hours over the last '
            f"{settings.window}, more than {settings.min_ratio:g} times as many as in the same "
            f"{settings.window} {settings.offset} earlier: sessions left running, a runaway "
            "client, or a load the account was not sized for."
        ),
        config=config,
    )


def stuck_expr() -> str:
    """SessionStuck: one alert per stuck session where per-session series name it, else one per
    (target, status).

    A target's sessions of a phase are named by ``session_info`` when per_session covers that
    phase; the aggregate side skips exactly those (target, phase) pairs, so no session alerts
    twice. Replicas are collapsed first: ``min by`` the session (or status) on the left, and
    ``and``/``unless`` on the right, which never need unique matches.
    """
    session = "provider, target, session_id"
    per_session = (
        f"(\n  time()\n  - min by ({session}) (session_created_timestamp_seconds)\n"
        f"  and on ({session})\n  session_info{{{LIVE}}}\n)\n"
        f"> on (provider) group_left ()\n  {STUCK_THRESHOLD}"
    )
    per_status = (
        f"(\n  time()\n  - min {BY_STATUS} (sessions_oldest_created_timestamp_seconds"
        f"{{{LIVE}}})\n  unless on (provider, target, phase)\n  session_info\n)\n"
        f"> on (provider) group_left ()\n  {STUCK_THRESHOLD}"
    )
    return f"{per_session}\nor\n{per_status}"


def _threshold_template(record: str) -> str:
    """Template text rendering the ``record`` threshold of the alert's provider."""
    query = f"{record}{{provider='%s'}}"
    return (
        f'{{{{ with printf "{query}" $labels.provider | query }}}}'
        "{{ . | first | value | humanizeDuration }}{{ end }}"
    )


def rule_groups(config: Thresholds) -> list[dict[str, Any]]:
    """The rule groups, as in a Prometheus rule file.

    One group, recording rules first: Prometheus evaluates groups concurrently but the rules
    of a group in order, so every alert sees the series recorded in the same evaluation (with
    separate groups an alert would see them one evaluation late or early, at random).
    """
    return [{"name": GROUP, "rules": [*recording_rules(config), *alerting_rules(config)]}]


def prometheus_rule(groups: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The same groups as a prometheus-operator PrometheusRule."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "session-exporter",
            "labels": {
                "app.kubernetes.io/name": "session-exporter",
                "app.kubernetes.io/component": "alerting",
            },
        },
        "spec": {"groups": list(groups)},
    }


class _Dumper(yaml.SafeDumper):
    """Block style throughout; multi-line strings (PromQL) as literal blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(document: Any, header: str) -> str:
    """YAML text of ``document`` under a comment ``header``."""
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True)
    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return comment + body


GENERATED = (
    "Generated by `python -m deploy.rules` from deploy/prometheus/thresholds.yml: do not edit,\n"
    "change the thresholds and regenerate (a test checks this file is current)."
)


def render(config: Thresholds) -> dict[Path, str]:
    """Every generated file's text, by path."""
    groups = rule_groups(config)
    return {
        RULES: dump({"groups": groups}, GENERATED),
        PROMETHEUS_RULE: dump(
            prometheus_rule(groups),
            GENERATED + "\nMatch its labels to your Prometheus's ruleSelector.",
        ),
        HELM_RULES: dump(
            {"groups": groups},
            GENERATED + "\nThe chart's PrometheusRule (templates/prometheusrule.yaml) reads it.",
        ),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Write the generated files, or with ``--check`` report the ones that are out of date."""
    parser = argparse.ArgumentParser(prog="python -m deploy.rules", description=__doc__)
    parser.add_argument("--thresholds", type=Path, default=THRESHOLDS)
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is out of date")
    args = parser.parse_args(argv)
    files = render(load(args.thresholds))
    stale = [path for path, text in files.items() if not path.exists() or path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is out of date: run python -m deploy.rules")
        return 1 if stale else 0
    for path in stale:
        path.write_text(files[path])
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
