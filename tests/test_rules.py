"""The shipped Prometheus rules: generated from thresholds.yml, valid, unit-tested by promtool."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from deploy import rules
from tests.dashboards import queries
from tests.tools import ROOT, require, run

PROMETHEUS = ROOT / "deploy" / "prometheus"
ALERTMANAGER = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
ALERTS = {
    "SessionExporterAbsent",
    "SessionTargetDown",
    "SessionTargetDataStale",
    "SessionStuck",
    "SessionIdle",
    "SessionRowsInvalid",
    "SessionsOverdue",
    "BrowserSessionsUnleased",
    "FailedSessionsRising",
    "SessionPollErrorsRising",
    "SessionSpendRising",
    "SessionExporterShardsMissing",
    "SessionExporterShardingMismatch",
}


def shipped_groups() -> list[dict[str, Any]]:
    """The rule groups of the committed rules.yml."""
    groups: list[dict[str, Any]] = yaml.safe_load(rules.RULES.read_text())["groups"]
    return groups


def shipped_alerts() -> list[dict[str, Any]]:
    """Every alerting rule of the committed rules.yml."""
    return [r for g in shipped_groups() for r in g["rules"] if "alert" in r]


def thresholds(**alerts: dict[str, Any]) -> rules.Thresholds:
    """The shipped thresholds with some alerts' settings replaced."""
    raw = yaml.safe_load(rules.THRESHOLDS.read_text())
    raw["alerts"].update(alerts)
    return rules.Thresholds.model_validate(raw)


def test_committed_files_are_the_generators_output() -> None:
    """rules.yml and the PrometheusRule are exactly what thresholds.yml generates."""
    for path, text in rules.render(rules.load()).items():
        assert text == path.read_text(), f"{path} is stale: run python -m deploy.rules"
    assert 0 == rules.main(["--check"])


def test_check_reports_a_changed_threshold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--check` exits 1 naming both files when the thresholds no longer match them."""
    changed = tmp_path / "thresholds.yml"
    changed.write_text(rules.THRESHOLDS.read_text().replace("max_age: 2h", "max_age: 3h"))

    assert 1 == rules.main(["--check", "--thresholds", str(changed)])
    out = capsys.readouterr().out
    assert "deploy/prometheus/rules.yml is out of date" in out
    assert "deploy/kubernetes/prometheusrule.yaml is out of date" in out


def test_every_issue_alert_is_shipped_with_labels_and_annotations() -> None:
    """Each required alert exists once, with a severity, summary, description and runbook link."""
    alerts = shipped_alerts()

    assert ALERTS == {a["alert"] for a in alerts}
    assert len(ALERTS) == len(alerts)
    for alert in alerts:
        assert alert["labels"]["severity"] in {"critical", "warning", "info"}, alert["alert"]
        assert {"summary", "description", "runbook_url"} == set(alert["annotations"])


def test_runbook_urls_point_at_sections_of_the_runbook() -> None:
    """Every runbook_url is the runbook plus the anchor of a section titled with the alert."""
    runbook = (PROMETHEUS / "RUNBOOK.md").read_text().splitlines()

    for alert in shipped_alerts():
        name = alert["alert"]
        assert f"deploy/prometheus/RUNBOOK.md#{name.lower()}" == alert["annotations"]["runbook_url"]
        assert f"## {name}" in runbook


def recorded_rules(config: rules.Thresholds, record: str) -> list[dict[str, Any]]:
    """The recording rules of ``config`` that record ``record``."""
    return [r for r in rules.recording_rules(config) if r["record"] == record]


def test_stuck_thresholds_are_the_overrides_or_the_default_for_any_provider() -> None:
    """One constant per configured override (its id as a label), and a threshold series that is
    the override where there is one, else the default, for every provider id some target
    exports (built-in or user-defined): no expression names a provider."""
    config = thresholds(
        SessionStuck={
            "severity": "warning",
            "for": "0s",
            "max_age": "90m",
            "per_provider": {"agi": "1d", "my-sandboxes": "3h"},
        }
    )

    overrides = {
        r["labels"]["provider"]: r["expr"] for r in recorded_rules(config, rules.STUCK_OVERRIDE)
    }
    assert {"agi": "vector(86400)", "my-sandboxes": "vector(10800)"} == overrides
    (threshold,) = recorded_rules(config, rules.STUCK_THRESHOLD)
    assert (
        f"(\n  {rules.STUCK_OVERRIDE}\n  and on (provider)\n"
        "  group by (provider) (sessions_target_up)\n)\n"
        "or on (provider)\n5400 * group by (provider) (sessions_target_up)"
    ) == threshold["expr"]
    assert "labels" not in threshold
    stuck = next(a for a in rules.alerting_rules(config) if a["alert"] == "SessionStuck")
    assert "for" not in stuck  # `for: 0s` is left out, as Prometheus's own default
    assert 2 == stuck["expr"].count(f"group_left ()\n  {rules.STUCK_THRESHOLD}")


def test_idle_thresholds_are_the_overrides_or_the_default_for_any_provider() -> None:
    """SessionIdle's limits are series like the stuck ones: the default, or the override."""
    config = thresholds(
        SessionIdle={
            "severity": "warning",
            "for": "10m",
            "max_idle": "1h",
            "per_provider": {"notte": "15m"},
        }
    )

    overrides = {
        r["labels"]["provider"]: r["expr"] for r in recorded_rules(config, rules.IDLE_OVERRIDE)
    }
    assert {"notte": "vector(900)"} == overrides
    (threshold,) = recorded_rules(config, rules.IDLE_THRESHOLD)
    assert threshold["expr"].endswith(
        "or on (provider)\n3600 * group by (provider) (sessions_target_up)"
    )
    idle = next(a for a in rules.alerting_rules(config) if a["alert"] == "SessionIdle")
    assert "sessions_oldest_activity_timestamp_seconds" in idle["expr"]
    assert f"group_left ()\n  {rules.IDLE_THRESHOLD}" in idle["expr"]


def test_shipped_thresholds_cover_the_providers_that_report_activity() -> None:
    """The shipped SessionIdle states a threshold for each built-in provider that reports
    activity (interface.md), and SessionStuck one for each of the five newer providers."""
    config = rules.load().alerts

    assert {"together", "trigger", "notte", "daytona"} == set(config.SessionIdle.per_provider)
    assert {"e2b", "browserbase", "daytona", "runloop", "steel"} <= set(
        config.SessionStuck.per_provider
    )
    assert set(config.SessionStuck.per_provider) <= set(rules.PROVIDERS)


def test_per_provider_takes_every_built_in_and_any_valid_id() -> None:
    """The ten built-in ids and a user-defined id (the exporter's provider-id pattern) are valid
    override keys."""
    ids = [*rules.PROVIDERS, "acme", "my_sandboxes-2"]
    config = thresholds(
        SessionIdle={
            "severity": "warning",
            "for": "10m",
            "max_idle": "1h",
            "per_provider": dict.fromkeys(ids, "30m"),
        }
    )

    assert 10 == len(rules.PROVIDERS)
    assert ids == list(config.alerts.SessionIdle.per_provider)


PROVIDER_NAMED = re.compile(
    r"\b(?:" + "|".join(rules.PROVIDERS) + r")\b"
    r'|\bprovider\s*(?:=|!=|=~|!~)\s*"(?!\$provider")'
)
"""A provider id in a query, or a provider matcher other than the dashboard's variable."""


def test_no_expression_names_a_provider() -> None:
    """No rule expression and no dashboard query names a provider: every one works for any id,
    built-in or user-defined (the ids appear only as labels of the override constants)."""
    expressions = [r["expr"] for g in shipped_groups() for r in g["rules"]]
    expressions += [expr for _, expr in queries()]

    assert expressions
    for expr in expressions:
        assert not PROVIDER_NAMED.search(expr), expr
    assert PROVIDER_NAMED.search('sessions{provider="acme"}')
    assert PROVIDER_NAMED.search("x and on () vector(1) # steel")
    assert not PROVIDER_NAMED.search('sessions{provider=~"$provider"}')


def test_paused_sessions_are_never_live_stuck_or_failed() -> None:
    """Every rule that selects sessions by phase names the phases it counts (pending and live,
    or failed): phase `paused` is in none of them."""
    for group in shipped_groups():
        for rule in group["rules"]:
            for phases in re.findall(r'phase=~?"([^"]*)"', rule["expr"]):
                assert "paused" not in phases.split("|"), rule
                assert set(phases.split("|")) <= {"pending", "live", "failed"}, rule


@pytest.mark.parametrize(
    ("alerts", "message"),
    [
        (
            {
                "SessionStuck": {
                    "severity": "warning",
                    "for": "5m",
                    "max_age": "2h",
                    "per_provider": {"Steel": "1h", "my provider": "1h"},
                }
            },
            r"invalid provider id\(s\) \['Steel', 'my provider'\]",
        ),
        (
            {"SessionsOverdue": {"severity": "page", "for": "5m", "min_count": 1}},
            "SessionsOverdue.severity",
        ),
        ({"SessionTargetDown": {"severity": "critical", "for": "5x"}}, "invalid duration"),
        ({"SessionTargetDown": {"severity": "critical", "for": "1.5s"}}, "whole seconds"),
        ({"SessionsOverdue": {"severity": "warning", "for": "5m", "min_count": 0}}, "min_count"),
        ({"SessionTargetDown": {"severity": "critical", "for": "5m", "fro": "1m"}}, "fro"),
    ],
)
def test_bad_thresholds_are_rejected_naming_the_key(alerts: dict[str, Any], message: str) -> None:
    """Unknown providers, severities or keys, bad durations and counts fail validation."""
    with pytest.raises(ValidationError, match=message):
        thresholds(**alerts)


def test_promtool_accepts_the_rules() -> None:
    """`promtool check rules` finds every rule of rules.yml valid."""
    promtool = require("promtool")

    result = run([promtool, "check", "rules", str(rules.RULES)])

    assert 0 == result.returncode, result.stdout + result.stderr
    assert "SUCCESS: 38 rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    """`promtool test rules` passes every firing and not-firing case of rules_test.yml."""
    promtool = require("promtool")

    result = run([promtool, "test", "rules", "rules_test.yml"], cwd=PROMETHEUS)

    assert 0 == result.returncode, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_unit_tests_cover_every_alert_firing_and_not_firing() -> None:
    """rules_test.yml has, for each alert, a case expecting it and one expecting no alert."""
    tests = yaml.safe_load((PROMETHEUS / "rules_test.yml").read_text())["tests"]
    cases = [case for test in tests for case in test.get("alert_rule_test", [])]

    firing = {c["alertname"] for c in cases if c["exp_alerts"]}
    silent = {c["alertname"] for c in cases if not c["exp_alerts"]}
    assert ALERTS == firing
    assert ALERTS == silent


def test_example_prometheus_config_is_valid_and_loads_the_rules() -> None:
    """`promtool check config` accepts prometheus.yml, and it scrapes the exporter's job."""
    promtool = require("promtool")
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())

    result = run([promtool, "check", "config", "prometheus.yml"], cwd=PROMETHEUS)

    assert 0 == result.returncode, result.stdout + result.stderr
    assert ["rules.yml"] == config["rule_files"]
    assert [rules.load().job] == [job["job_name"] for job in config["scrape_configs"]]


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["severity=critical"], "pager"),
        (["severity=warning"], "team"),
        (["severity=info"], "review"),
        ([], "team"),
    ],
)
def test_alertmanager_config_routes_by_severity(labels: list[str], receiver: str) -> None:
    """amtool validates alertmanager.yml and routes each severity to its own receiver."""
    amtool = require("amtool")
    assert 0 == run([amtool, "check-config", str(ALERTMANAGER)]).returncode

    result = run(
        [
            amtool,
            "config",
            "routes",
            "test",
            f"--config.file={ALERTMANAGER}",
            "alertname=X",
            *labels,
        ]
    )

    assert 0 == result.returncode, result.stderr
    assert receiver == result.stdout.strip()


def test_every_shipped_severity_has_a_route() -> None:
    """Each severity the rules use is matched by a route of the Alertmanager config."""
    routes = yaml.safe_load(ALERTMANAGER.read_text())["route"]["routes"]
    routed = {m for r in routes for m in r["matchers"]}

    for alert in shipped_alerts():
        assert f'severity="{alert["labels"]["severity"]}"' in routed


def test_per_target_alerts_collapse_replicas() -> None:
    """Every alert on a per-target series aggregates by the target's own labels first, so two
    replicas of a shard (differing in `instance`) neither double a count nor alert twice."""
    expressions = {
        r.get("alert") or r["record"]: r["expr"] for g in shipped_groups() for r in g["rules"]
    }
    per_target = {
        "SessionTargetDown": "max by (provider, target) (sessions_target_up)",
        "SessionStuck": "min by (provider, target, status, phase) (",
        "SessionIdle": "min by (provider, target) (sessions_oldest_activity_timestamp_seconds)",
        "SessionRowsInvalid": "max by (provider, target, field) (sessions_exporter_invalid_rows)",
        "SessionsOverdue": "max by (provider, target) (sessions_overdue)",
        "BrowserSessionsUnleased": "max by (provider, target) (sessions_unleased)",
        rules.FAILED: 'max by (provider, target, status, phase) (sessions{phase="failed"})',
        rules.STUCK_COUNT: "max by (provider, target, le) (sessions_age_seconds_bucket)",
        rules.LIVE_COUNT: "max by (provider, target, status, phase) (sessions{",
        rules.spend_rule("1h"): (
            "max by (provider, target) (increase(sessions_live_seconds_total[1h]))"
        ),
    }
    for name, aggregation in per_target.items():
        assert aggregation in expressions[name], name
    stale = expressions["SessionTargetDataStale"]
    assert 2 == stale.count("max by (provider, target) (")
    stuck = expressions["SessionStuck"]
    assert "min by (provider, target, session_id) (session_created_timestamp_seconds)" in stuck


def test_stuck_alert_is_per_session_where_session_info_covers_the_phase() -> None:
    """SessionStuck names sessions from session_info and leaves exactly those (target, phase)
    pairs out of its per-status half, so no session alerts twice."""
    expr = rules.stuck_expr()

    per_session, per_status = expr.split("\nor\n")
    assert 'and on (provider, target, session_id)\n  session_info{phase=~"pending|live"}' in (
        per_session
    )
    assert "unless on (provider, target, phase)\n  session_info\n" in per_status


def test_hashmod_probe_example_is_valid_and_scrapes_probe() -> None:
    """probe-hashmod.yml passes `promtool check config`, scrapes /probe with ?target= from the
    target name, keeps only its hashmod share, and points every scrape at the exporter."""
    promtool = require("promtool")
    config = yaml.safe_load((PROMETHEUS / "probe-hashmod.yml").read_text())

    result = run([promtool, "check", "config", "probe-hashmod.yml"], cwd=PROMETHEUS)

    assert 0 == result.returncode, result.stdout + result.stderr
    (job,) = config["scrape_configs"]
    relabel = job["relabel_configs"]
    assert "/probe" == job["metrics_path"]
    assert "__param_target" == relabel[0]["target_label"]
    assert ("hashmod", "keep") == (relabel[1]["action"], relabel[2]["action"])
    assert "session-exporter:9864" == relabel[-1]["replacement"]


def test_unit_tests_fire_once_for_two_replicas() -> None:
    """The per-session and per-field alerts have a firing promtool case whose input has the
    same series from two replicas (two `instance` values), and expect one alert per subject."""
    tests = yaml.safe_load((PROMETHEUS / "rules_test.yml").read_text())["tests"]
    for name in ("SessionStuck", "SessionIdle", "SessionRowsInvalid", "SessionSpendRising"):
        replicated = []
        for test in tests:
            instances = {
                s["series"].split('instance="')[1].split('"')[0]
                for s in test["input_series"]
                if 'instance="' in s["series"]
            }
            firing = [
                c
                for c in test.get("alert_rule_test", [])
                if c["alertname"] == name and c["exp_alerts"]
            ]
            if len(instances) >= 2 and firing:
                replicated.append(firing)
        assert replicated, name
        for cases in replicated:
            for case in cases:
                assert all("instance" not in a["exp_labels"] for a in case["exp_alerts"]), name


@pytest.mark.parametrize(
    ("threshold", "weights"),
    [
        (7200, {"7200.0": 1.0}),  # a bucket bound: exact
        (5400, {"3600.0": 0.5, "7200.0": 0.5}),  # 90m: halfway between 1h and 2h
        (1200, {"900.0": 1 - 1 / 3, "1800.0": 1 / 3}),
        (30, {"60.0": 0.5}),  # under the first bound: between 0 and 60 s
        (0, {"60.0": 0.0}),  # every session is past a zero threshold
        (259200, {"259200.0": 1.0}),
        (30 * 86400, {"259200.0": 1.0}),  # past the last bound, the last bound counts
    ],
)
def test_stuck_count_weighs_the_buckets_at_the_threshold(
    threshold: int, weights: dict[str, float]
) -> None:
    """The stuck count reads the age buckets at the provider's threshold: the bucket itself at a
    bound, else the two around it, weighted by where the threshold lies between them."""
    assert weights == rules.bucket_weights(threshold)


def test_stuck_weights_follow_each_configured_threshold() -> None:
    """For each threshold value thresholds.yml configures, one weight series per bucket it reads,
    for the providers whose recorded threshold has that value, labelled with the bucket's `le`
    exactly as the exporter writes it (the provider label comes from the threshold series)."""
    config = thresholds(
        SessionStuck={
            "severity": "warning",
            "for": "5m",
            "max_age": "2h",
            "per_provider": {"agi": "90m", "steel": "2h"},
        }
    )

    recorded = [(r["labels"], r["expr"]) for r in recorded_rules(config, rules.STUCK_WEIGHT)]
    threshold = rules.STUCK_THRESHOLD
    assert [
        ({"le": "3600.0"}, f"({threshold} == 5400) * 0 + 0.5"),
        ({"le": "7200.0"}, f"({threshold} == 5400) * 0 + 0.5"),
        ({"le": "7200.0"}, f"({threshold} == 7200) * 0 + 1"),
    ] == recorded


def test_spend_alert_compares_the_window_with_the_same_window_earlier() -> None:
    """SessionSpendRising's window, offset, ratio and floor all come from thresholds.yml."""
    config = thresholds(
        SessionSpendRising={
            "severity": "info",
            "for": "30m",
            "window": "2h",
            "offset": "7d",
            "min_ratio": 2.5,
            "min_session_hours": 10,
        }
    )

    (spend,) = [a for a in rules.alerting_rules(config) if a["alert"] == "SessionSpendRising"]
    recorded = {r["record"]: r["expr"] for r in rules.recording_rules(config)}
    assert (
        "(\n  provider_target:sessions_live_seconds:increase2h / 3600\n"
        "  > 2.5 * provider_target:sessions_live_seconds:increase2h offset 7d / 3600\n)\n"
        "and\nprovider_target:sessions_live_seconds:increase2h / 3600 >= 10"
    ) == spend["expr"]
    assert ("30m", "info") == (spend["for"], spend["labels"]["severity"])
    assert (
        "max by (provider, target) (increase(sessions_live_seconds_total[2h]))"
        == recorded["provider_target:sessions_live_seconds:increase2h"]
    )
    with pytest.raises(ValidationError, match="min_ratio"):
        thresholds(SessionSpendRising={**spend_settings(), "min_ratio": 1})


def spend_settings() -> dict[str, Any]:
    """The shipped SessionSpendRising settings."""
    raw: dict[str, Any] = yaml.safe_load(rules.THRESHOLDS.read_text())["alerts"]
    return dict(raw["SessionSpendRising"])
