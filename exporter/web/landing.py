"""The landing page at ``/``: each target's last poll, the process, and the running config.

One self-contained HTML page (no external assets): a row per target with its provider, last
poll (relative and absolute), result and error in plain words, sessions by phase, interval,
poll duration and backoff, and a link to its ``/probe``; the version, start time and uptime;
the running config with every key masked, as Prometheus's ``/config``; a banner in demo mode.
It reloads itself every few seconds (not while the config is unfolded).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml
from pydantic import BaseModel, SecretStr

from exporter.config.messages import is_duration
from exporter.config.settings import Settings
from exporter.core.durations import format_duration
from exporter.core.records import Phase
from exporter.polling.poller import BACKOFF_CAP
from exporter.polling.state import TargetSnapshot

MASK = "<secret>"
REFRESH_MAX = 30.0
REFRESH_MIN = 5.0

_CONNECT = re.compile(r"Cannot connect to host (?P<host>\S+) ssl:\S+ \[(?P<why>.*)\]\s*$")
_WHY = (
    (re.compile(r"Connect call failed|Connection refused", re.I), "connection refused"),
    (
        re.compile(r"Name or service not known|nodename nor servname|name resolution", re.I),
        "the host name does not resolve",
    ),
    (re.compile(r"Network is unreachable", re.I), "the network is unreachable"),
    (re.compile(r"No route to host", re.I), "no route to the host"),
    (re.compile(r"timed out", re.I), "the connection timed out"),
    (re.compile(r"certificate verify failed: (?P<detail>[^(\]]+)", re.I), "TLS: {detail}"),
)


def human_error(message: str) -> str:
    """A poll error as a sentence: aiohttp's connection noise (``ssl:default [...]``) removed.

    ``cannot reach http://h:1/x: Cannot connect to host h:1 ssl:default [Connect call
    failed ('127.0.0.1', 1)]`` becomes ``cannot reach http://h:1/x: connection refused``.
    """
    head, sep, tail = message.partition(": ")
    match = _CONNECT.search(tail) if sep else None
    if match is None:
        return re.sub(r"\s+ssl:(default|True|False|<[^>]*>)", "", message)
    why = match.group("why")
    for pattern, words in _WHY:
        found = pattern.search(why)
        if found:
            detail = found.groupdict().get("detail")
            return f"{head}: " + (words.format(detail=detail.strip()) if detail else words)
    return f"{head}: cannot connect to {match.group('host')}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Page:
    """What the page shows besides the snapshots."""

    version: str
    started: float
    now: float
    settings: Settings
    config: str | None = None
    """The masked config as HTML-escaped YAML (see :class:`ConfigText`); None renders it."""
    shard: int = 0
    total_shards: int = 1


def render(page: Page, snapshots: Iterable[TargetSnapshot]) -> str:
    """The whole page."""
    settings = page.settings
    by_name = {t.name: t for t in settings.targets}
    intervals = {name: settings.interval(t) for name, t in by_name.items()}
    rows = "".join(
        _row(s, page.now, intervals.get(s.name, settings.poll_interval)) for s in snapshots
    )
    refresh = min(REFRESH_MAX, max(REFRESH_MIN, settings.poll_interval))
    banner = (
        '<p class="banner">Demo mode: the five providers are simulated in this process; '
        "no real account is polled and no key is needed.</p>"
        if settings.demo
        else ""
    )
    shard = (
        f"<p>Shard {page.shard} of {page.total_shards}: this replica polls its share of the "
        "targets.</p>"
        if page.total_shards > 1
        else ""
    )
    uptime = format_duration(max(0, round(page.now - page.started)))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>session-exporter</title>
<style>{_CSS}</style></head>
<body>
<header><h1>session-exporter <span class="version">{_e(page.version)}</span></h1>
<p>Started {_e(_when(page.started))}, up {_e(uptime)}.
<a href="/metrics">/metrics</a> · <a href="/healthz">/healthz</a> ·
<a href="/readyz">/readyz</a></p></header>
{banner}{shard}
<table id="targets"><thead><tr><th>target</th><th>provider</th><th>last poll</th>
<th>result</th><th>sessions by phase</th><th>interval</th><th>poll took</th><th>backoff</th>
</tr></thead><tbody>{rows}</tbody></table>
<details id="config"><summary>Running config (keys masked)</summary>
<pre>{_e(masked_config(settings)) if page.config is None else page.config}</pre></details>
<p class="note">Refreshes every {format_duration(refresh)} (not while the config is open).</p>
<script>
setInterval(function () {{
  if (!document.querySelector("details[open]")) location.reload();
}}, {int(refresh * 1000)});
addEventListener("load", function () {{
  var root = document.documentElement, split = [];
  root.dataset.scrollWidth = root.scrollWidth;
  root.dataset.clientWidth = root.clientWidth;
  document.querySelectorAll("th").forEach(function (th) {{
    var text = th.firstChild, at = 0;
    text.data.split(" ").forEach(function (word) {{
      var range = document.createRange();
      range.setStart(text, at);
      range.setEnd(text, at + word.length);
      if (range.getClientRects().length > 1) split.push(word);
      at += word.length + 1;
    }});
  }});
  root.dataset.splitHeaders = split.join(" ");
}});
</script>
</body></html>
"""


class ConfigText:
    """The masked config as HTML-escaped YAML, rendered once per config: a reload makes a new
    :class:`Settings`, and only then is it rendered again (0.6 s at 1,000 targets)."""

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._text = ""

    def __call__(self, settings: Settings) -> str:
        if settings is not self._settings:
            self._text = _e(masked_config(settings))
            self._settings = settings
        return self._text


class LastPage:
    """The last page rendered, with what it was rendered from: the second, and the objects
    (snapshots, settings, config status) that a publish or a reload replaces."""

    def __init__(self) -> None:
        self._second = -1
        self._shown: tuple[object, ...] = ()
        self._html = ""

    def get(self, second: int, *shown: object) -> str | None:
        """The page, if it was rendered in ``second`` from these very objects; else None,
        and :meth:`put` stores the next one for them."""
        same = (
            second == self._second
            and len(shown) == len(self._shown)
            and all(a is b for a, b in zip(shown, self._shown, strict=True))
        )
        if same:
            return self._html
        self._second, self._shown, self._html = second, shown, ""
        return None

    def put(self, html: str) -> str:
        """Keep ``html`` as the page of the objects last asked for."""
        self._html = html
        return html


def masked_config(settings: Settings) -> str:
    """The running config as YAML, every key replaced by ``<secret>`` (names and paths stay)."""
    return yaml.safe_dump(_plain(settings), sort_keys=False, allow_unicode=True, width=80)


def _plain(value: Any) -> Any:
    """A config value as plain YAML data: secrets masked, sets sorted, enums and paths as text."""
    if isinstance(value, SecretStr):
        value = MASK
    elif isinstance(value, BaseModel):
        fields = type(value).model_fields
        value = {
            name: format_duration(item)
            if isinstance(item, float) and is_duration(field)
            else _plain(item)
            for name, field in fields.items()
            for item in [getattr(value, name)]
        }
    elif isinstance(value, Mapping):
        value = {str(k): _plain(v) for k, v in value.items()}
    elif isinstance(value, frozenset | set):
        value = sorted(_plain(v) for v in value)
    elif isinstance(value, list | tuple):
        value = [_plain(v) for v in value]
    elif isinstance(value, Enum | Path):
        value = value.value if isinstance(value, Enum) else str(value)
    return value


def _row(snap: TargetSnapshot, now: float, interval: float) -> str:
    name = _e(snap.name)
    probe = f"/probe?target={quote(snap.name, safe='')}"
    if not snap.polled:
        result = '<span class="wait">not polled yet</span>'
    elif snap.up:
        result = '<span class="up">ok</span>'
    else:
        reason = snap.error_reason.value if snap.error_reason else "error"
        error = _e(human_error(snap.error or ""))
        result = (
            f'<span class="down">failed ({_e(reason)})</span><br><span class="error">{error}</span>'
        )
    cells = {
        "target": f'<b>{name}</b><br><a href="{_e(probe)}">probe</a>',
        "provider": _e(snap.provider),
        "last poll": _poll_time(snap.last_poll, now),
        "result": result,
        "sessions by phase": _phases(snap, now),
        "interval": _e(format_duration(interval)),
        "poll took": _e(_took(snap.poll_duration)),
        "backoff": _e(_backoff(snap.failures, interval)),
    }
    tds = "".join(f'<td data-label="{label}">{cell}</td>' for label, cell in cells.items())
    return f'<tr id="target-{name}">{tds}</tr>'


def _phases(snap: TargetSnapshot, now: float) -> str:
    data = snap.fresh_aggregate(now)
    if data is None:
        if not snap.polled:
            return "-"
        return "no data yet" if snap.last_success is None else "stale: no fresh data"
    totals = dict.fromkeys(Phase, 0)
    for status in data.statuses.values():
        totals[status.phase] += status.count
    parts = [f"{phase.value} {count}" for phase, count in totals.items() if count]
    return _e(" · ".join(parts) if parts else "none")


def _poll_time(ts: float | None, now: float) -> str:
    if ts is None:
        return "never"
    ago = format_duration(max(0, round(now - ts)))
    return f'{_e(ago)} ago<br><span class="when">{_e(_when(ts))}</span>'


def _took(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def _backoff(failures: int, interval: float) -> str:
    """The poll loop's wait after ``failures`` failed polls in a row (as the poller waits)."""
    if failures <= 1:
        return "none"
    wait = min(interval * 2.0 ** (failures - 1), max(interval, BACKOFF_CAP))
    return f"{format_duration(wait)} ({failures} failures in a row)"


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _e(text: str) -> str:
    return html.escape(text, quote=True)


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;line-height:1.4}
h1{font-size:1.4em;margin:0 0 .3em}.version{color:#666;font-weight:normal}
a{color:#0366d6}table{border-collapse:collapse;width:100%;margin:1em 0}
th,td{padding:.4em .6em;text-align:left;vertical-align:top;border-bottom:1px solid #ddd}
th{background:#f4f4f4;font-weight:600}.up{color:#1a7f37;font-weight:600}
.down{color:#c62828;font-weight:600}.wait{color:#666}.when,.note{color:#666;font-size:.85em}
.error{overflow-wrap:anywhere}.banner{background:#fff4ce;border:1px solid #e0c060;
padding:.6em .8em;border-radius:4px}
pre{background:#f7f7f7;padding:.8em;white-space:pre-wrap;overflow-wrap:anywhere}
td,p{overflow-wrap:anywhere}
/* headers keep their words whole: with anywhere a long error squeezed them ("provid/er") */
th{overflow-wrap:normal}
@media (max-width:720px){body{margin:.8em}thead{display:none}
table,tbody,tr,td{display:block;width:auto}tr{border:1px solid #ddd;border-radius:4px;
margin-bottom:.8em;padding:.3em}td{border:0;padding:.2em .4em}
td::before{content:attr(data-label) ": ";color:#666}}
"""
