"""Helpers over the dashboard's PromQL: list it, fill in its variables, name its metrics."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import yaml

from deploy import rules
from grafana import dashboard

VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$provider": ".*",
    "$target": ".*",
    "$status": ".*",
}
"""What each template variable becomes in a plain query: every value, a fixed rate window."""

_NOT_METRICS = re.compile(
    r"\{[^}]*\}"  # label matchers
    r"|\[[^\]]*\]"  # range selectors
    r"|\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"  # label lists
    r"|(?<![\w:])[a-z_]+\s*\("  # function names
    r"|(?<![\w:])(?:sum|min|max|avg|count|group|topk|bottomk|quantile|stddev|stdvar)(?![\w:])"
    r"|(?<![\w:])(?:and|or|unless|bool)(?![\w:])"  # set operators, the bool modifier
    r"|\boffset\s+\w+"
)
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def panels() -> Iterator[dict[str, Any]]:
    """Every panel of the generated dashboard except the row headers."""
    for panel in dashboard.dashboard()["panels"]:
        if panel["type"] != "row":
            yield panel


def queries() -> Iterator[tuple[str, str]]:
    """(panel title, PromQL) for every query of every panel."""
    for panel in panels():
        for target in panel["targets"]:
            yield panel["title"], target["expr"]


def substitute(expr: str, values: Mapping[str, str] = VARIABLES) -> str:
    """``expr`` with its template variables replaced (longest names first)."""
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace(name, values[name])
    return expr


def metric_names(expr: str) -> set[str]:
    """The metric (and recorded series) names a PromQL expression selects."""
    stripped = _NOT_METRICS.sub(" ", expr)
    return {n for n in _NAME.findall(stripped) if not n.isdigit()}


def recorded() -> dict[str, str]:
    """Recording rules of the shipped rules.yml: series name -> expression (last one wins)."""
    groups = yaml.safe_load(rules.RULES.read_text())["groups"]
    return {r["record"]: r["expr"] for g in groups for r in g["rules"] if "record" in r}


def exporter_metrics(expr: str) -> set[str]:
    """The exporter's own metrics behind ``expr``, looking through recording rules."""
    records = recorded()
    names: set[str] = set()
    for name in metric_names(expr):
        names |= exporter_metrics(records[name]) if name in records else {name}
    return names
