"""The shipped Prometheus rules: generated from thresholds.yml, valid, unit-tested by promtool."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from deploy import rules
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


def test_stuck_thresholds_are_series_per_provider_with_overrides() -> None:
    """Every provider gets a threshold series: its override where given, else the default."""
    config = thresholds(
        SessionStuck={
            "severity": "warning",
            "for": "0s",
            "max_age": "90m",
            "per_provider": {"agi": "1d"},
        }
    )

    recorded = {
        r["labels"]["provider"]: r["expr"]
        for r in rules.recording_rules(config)
        if r["record"] == rules.STUCK_THRESHOLD
    }
    assert {
        "together": "vector(5400)",
        "agi": "vector(86400)",
        "trigger": "vector(5400)",
        "chaser": "vector(5400)",
        "notte": "vector(5400)",
    } == recorded
    stuck = next(a for a in rules.alerting_rules(config) if a["alert"] == "SessionStuck")
    assert "for" not in stuck  # `for: 0s` is left out, as Prometheus's own default
    assert 2 == stuck["expr"].count(f"group_left ()\n  {rules.STUCK_THRESHOLD}")


def test_idle_thresholds_are_series_per_provider_with_overrides() -> None:
    """SessionIdle's limits are series like the stuck ones: the default, or the override."""
    config = thresholds(
        SessionIdle={
            "severity": "warning",
            "for": "10m",
            "max_idle": "1h",
            "per_provider": {"notte": "15m"},
        }
    )

    recorded = {
        r["labels"]["provider"]: r["expr"]
        for r in rules.recording_rules(config)
        if r["record"] == rules.IDLE_THRESHOLD
    }
    assert {
        "together": "vector(3600)",
        "agi": "vector(3600)",
        "trigger": "vector(3600)",
        "chaser": "vector(3600)",
        "notte": "vector(900)",
    } == recorded
    idle = next(a for a in rules.alerting_rules(config) if a["alert"] == "SessionIdle")
    assert "sessions_oldest_activity_timestamp_seconds" in idle["expr"]
    assert f"group_left ()\n  {rules.IDLE_THRESHOLD}" in idle["expr"]


@pytest.mark.parametrize(
    ("alerts", "message"),
    [
        (
            {
                "SessionStuck": {
                    "severity": "warning",
                    "for": "5m",
                    "max_age": "2h",
                    "per_provider": {"steel": "1h"},
                }
            },
            "unknown provider",
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
    assert "SUCCESS: 34 rules found" in result.stdout


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


def test_stuck_weights_follow_each_providers_threshold() -> None:
    """One weight series per bucket each provider's stuck threshold reads, labelled with the
    provider and the bucket's `le` exactly as the exporter writes it."""
    config = thresholds(
        SessionStuck={
            "severity": "warning",
            "for": "5m",
            "max_age": "2h",
            "per_provider": {"agi": "90m"},
        }
    )

    recorded = {
        (r["labels"]["provider"], r["labels"]["le"]): r["expr"]
        for r in rules.recording_rules(config)
        if r["record"] == rules.STUCK_WEIGHT
    }
    assert {
        ("together", "7200.0"): "vector(1)",
        ("agi", "3600.0"): "vector(0.5)",
        ("agi", "7200.0"): "vector(0.5)",
        ("trigger", "7200.0"): "vector(1)",
        ("chaser", "7200.0"): "vector(1)",
        ("notte", "7200.0"): "vector(1)",
    } == recorded


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
