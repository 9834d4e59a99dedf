"""A diagnostic report as text (for a person) or JSON (for a tool, or an issue)."""

from __future__ import annotations

import json
from typing import Any

from exporter import __version__
from exporter.diagnose.masking import Masked, render
from exporter.diagnose.report import Problem, Report, Request, RowMapping, Shape

_INDENT = "  "
_WIDTH = 96


def as_json(report: Report) -> str:
    """The report as one JSON document (masked values keep their tagged form)."""
    document = {
        "version": __version__,
        "target": report.target,
        "provider": report.provider,
        "url": report.url,
        "reports": list(report.capabilities),
        "result": {
            "ok": report.ok,
            "reason": report.reason,
            "error": report.error,
            "duration_seconds": report.duration,
            "sessions": report.sessions,
            "statuses": [{"status": s, "phase": p, "count": c} for s, p, c in report.statuses],
            "invalid_rows": dict(report.invalid),
            "duplicates": report.duplicates,
            "dropped": report.dropped,
            "retries": report.retries,
        },
        "requests": [_request_json(r) for r in report.requests],
        "shapes": [_shape_json(s) for s in report.shapes],
        "shapes_left_out": report.shapes_left_out,
        "rows": [_row_json(m) for m in report.rows],
        "rows_total": report.rows_total,
    }
    return report.masker.scrub(json.dumps(document, ensure_ascii=False, indent=2) + "\n")


def _request_json(request: Request) -> dict[str, Any]:
    return {
        "number": request.number,
        "method": "GET",
        "url": request.url,
        "status": request.status,
        "elapsed_seconds": request.elapsed,
        "bytes": request.body_bytes,
        "rows": request.rows,
        "note": request.note,
        "headers": dict(request.headers),
    }


def _shape_json(shape: Shape) -> dict[str, Any]:
    return {
        "rows": shape.rows,
        "first": {"request": shape.first[0], "row": shape.first[1]},
        "fields": [{"name": n, "type": t, "sample": v} for n, t, v in shape.fields],
    }


def _row_json(row: RowMapping) -> dict[str, Any]:
    return {
        "request": row.request,
        "row": row.row,
        "outcome": row.outcome,
        "id": row.id,
        "status": row.status,
        "label": row.label,
        "phase": row.phase,
        "created": row.created,
        "deadline": row.deadline,
        "overdue": row.overdue,
        "last_activity": row.last_activity,
        "leases": row.leases,
        "executions": row.executions,
        "kind": row.kind,
        "invalid": [
            {"field": p.field, "expected": p.expected, "got": p.got, "value": p.value}
            for p in row.problems
        ],
    }


def as_text(report: Report) -> str:
    """The report as text: the result, then requests, row shapes and rows."""
    lines = [
        f"session-exporter {__version__} diagnose: target {report.target} "
        f"(provider {report.provider}), GET {report.url}",
        "",
        *_result(report),
        "",
        f"requests ({len(report.requests)})",
    ]
    for request in report.requests:
        lines.extend(_request_lines(request))
    lines += ["", f"row shapes ({len(report.shapes)}): the keys of a row and their JSON types"]
    for number, shape in enumerate(report.shapes, 1):
        lines.extend(_shape_lines(number, shape))
    if report.shapes_left_out:
        lines.append(f"{_INDENT}… {report.shapes_left_out} rows of further shapes not shown")
    lines += ["", f"rows ({report.rows_total}): how each was read and counted"]
    for row in report.rows:
        lines.extend(_row_lines(row, report.capabilities))
    if report.rows_total > len(report.rows):
        more = report.rows_total - len(report.rows)
        lines.append(f"{_INDENT}… {more} more rows not shown (--rows 0 shows every row)")
    return report.masker.scrub("\n".join(lines) + "\n")


def _result(report: Report) -> list[str]:
    took = "" if report.duration is None else f" in {report.duration:.3f}s"
    if not report.ok:
        lines = [f"result: failed{took}, reason {report.reason}: {report.error}"]
        if report.retries:
            lines.append(f"{_INDENT}retried requests: {report.retries}")
        return lines
    lines = [f"result: ok{took}, {_n(report.sessions or 0, 'session')} counted"]
    lines += [f"{_INDENT}{status} ({phase}): {n}" for status, phase, n in report.statuses if n]
    empty = [status for status, _, n in report.statuses if not n]
    if empty:
        lines.append(f"{_INDENT}0 in: {', '.join(empty)}")
    if any(report.invalid.values()):
        fields = ", ".join(f"{f} {n}" for f, n in sorted(report.invalid.items()) if n)
        lines.append(f"{_INDENT}invalid rows by field: {fields}")
    extras = [
        (report.duplicates, "duplicates (counted once)"),
        (report.dropped, "dropped (a status the target does not count)"),
        (report.retries, "retried requests"),
    ]
    lines += [f"{_INDENT}{label}: {n}" for n, label in extras if n]
    return lines


def _request_lines(request: Request) -> list[str]:
    head = f"{_INDENT}#{request.number} GET {request.url}"
    if request.status is None:
        return [head, f"{_INDENT * 3}no answer: {request.note}"]
    facts = [
        str(request.status),
        f"{request.elapsed:.3f}s",
        f"{request.body_bytes} bytes",
    ]
    if request.rows is not None:
        facts.append(_n(request.rows, "row"))
    if request.note:
        facts.append(request.note)
    lines = [head, _INDENT * 3 + ", ".join(facts)]
    lines += [f"{_INDENT * 3}{name}: {value}" for name, value in request.headers]
    return lines


def _shape_lines(number: int, shape: Shape) -> list[str]:
    request, row = shape.first
    lines = [f"{_INDENT}shape {number}: {_n(shape.rows, 'row')}, the first is #{request} row {row}"]
    width = max((len(name) for name, _, _ in shape.fields), default=0)
    kinds = max((len(kind) for _, kind, _ in shape.fields), default=0)
    for name, kind, sample in shape.fields:
        shown = name or "(the row itself)"
        lines.append(f"{_INDENT * 3}{shown.ljust(width)}  {kind.ljust(kinds)}  {render(sample)}")
    return lines


def _row_lines(row: RowMapping, capabilities: tuple[str, ...]) -> list[str]:
    """A row: ``#2 row 0: id …, status "Ready" -> ready (live), counted``, then its facts
    (times, counts, kind) in lines of up to ``_WIDTH``, then a line per invalid field."""
    head = f"{_INDENT}#{row.request} row {row.row}: id {_shown(row.id)}"
    if row.phase is None:
        lines = [f"{head}, {row.outcome}"]
    else:
        status = f"status {json.dumps(row.status)} -> {row.label} ({row.phase})"
        lines = [f"{head}, {status}, {row.outcome}"]
        times = [f"created {row.created or '-'}"]
        if "deadline" in capabilities:
            overdue = " (overdue)" if row.overdue else ""
            times.append(f"deadline {row.deadline or '-'}{overdue}")
        if "last_activity" in capabilities:
            times.append(f"last activity {row.last_activity or '-'}")
        facts = times
        if "leases" in capabilities:
            facts.append(f"leases {'-' if row.leases is None else row.leases}")
        if "executions" in capabilities:
            facts.append(f"executions {'-' if row.executions is None else row.executions}")
        if row.kind is not None:
            facts.append(f"kind {render(row.kind)}")
        lines += _wrapped(facts, _INDENT * 3)
    lines += [f"{_INDENT * 3}invalid {_problem(p)}" for p in row.problems]
    return lines


def _wrapped(items: list[str], indent: str) -> list[str]:
    """``items`` joined by commas into lines of at most ``_WIDTH`` characters (if they fit)."""
    lines: list[str] = []
    for item in items:
        if lines and len(lines[-1]) + 2 + len(item) <= _WIDTH:
            lines[-1] += ", " + item
        else:
            lines.append(indent + item)
    return lines


def _problem(problem: Problem) -> str:
    got = problem.got
    if problem.value is not None or got not in ("null", "nothing (the key is missing)"):
        got = f"{got} {render(problem.value)}"
    return f"{problem.field}: {problem.expected}, got {got}"


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _shown(masked: Masked) -> str:
    return "-" if masked is None else render(masked)
