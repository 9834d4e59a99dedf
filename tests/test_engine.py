"""User-defined providers driven over real sockets: each paging style, exact counts."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from pydantic import ValidationError
from structlog.testing import capture_logs

from exporter.config.settings import ConfigError, load_settings
from exporter.core.records import Phase
from exporter.polling.runtime import new_pollers, new_store
from exporter.providers.definition import Definition
from exporter.upstream.client import new_client_session
from tests.harness import NOW, invalid_example, invalid_rows, poll_all, scrape, settings_for
from tests.origin import json_response, origin_server

ROWS = [
    {"id": f"s{i}", "state": state, "startedAt": "2025-12-31T23:00:00Z"}
    for i, state in enumerate(
        ["running", "running", "starting", "running", "paused", "starting", "running"]
    )
]
"""Seven sessions: four running, two starting, one paused."""
SIZE = 3

FIELDS = {"id": "/id", "status": "/state", "created": "/startedAt"}
STATUSES = {"starting": "pending", "running": "live", "paused": "paused"}


def _int(request: web.Request, name: str, default: int) -> int:
    return int(request.query.get(name, default))


def _none(request: web.Request) -> web.Response:
    return json_response({"data": ROWS})


def _offset(request: web.Request) -> web.Response:
    at, size = _int(request, "offset", 0), _int(request, "limit", 100)
    return json_response({"data": ROWS[at : at + size], "total": len(ROWS)})


def _page(request: web.Request) -> web.Response:
    number, size = _int(request, "page", 1), _int(request, "per_page", 100)
    part = ROWS[(number - 1) * size : number * size]
    return json_response({"items": part, "has_next": number * size < len(ROWS)})


def _cursor_body(request: web.Request) -> web.Response:
    at, size = _int(request, "cursor", 0), _int(request, "limit", 100)
    nxt = str(at + size) if at + size < len(ROWS) else None
    return json_response({"data": ROWS[at : at + size], "next": nxt})


def _cursor_header(request: web.Request) -> web.Response:
    at, size = _int(request, "nextToken", 0), _int(request, "limit", 100)
    headers = {"X-Next-Token": str(at + size)} if at + size < len(ROWS) else {}
    return json_response(ROWS[at : at + size], headers=headers)


def _last_id(request: web.Request) -> web.Response:
    after, size = request.query.get("starting_after"), _int(request, "limit", 100)
    at = 0 if after is None else [r["id"] for r in ROWS].index(after) + 1
    return json_response({"rows": ROWS[at : at + size], "has_more": at + size < len(ROWS)})


STYLES: Mapping[str, tuple[Callable[[web.Request], web.Response], dict[str, Any], int]] = {
    "none": (_none, {"rows": "/data", "paging": {"style": "none"}}, 1),
    "offset": (
        _offset,
        {
            "rows": "/data",
            "paging": {"style": "offset", "size_param": "limit", "size": SIZE, "total": "/total"},
        },
        3,
    ),
    "page": (
        _page,
        {
            "rows": "/items",
            "paging": {
                "style": "page",
                "size_param": "per_page",
                "size": SIZE,
                "has_next": "/has_next",
            },
        },
        3,
    ),
    "cursor-body": (
        _cursor_body,
        {
            "rows": "/data",
            "paging": {"style": "cursor", "size_param": "limit", "size": SIZE, "next": "/next"},
        },
        3,
    ),
    "cursor-header": (
        _cursor_header,
        {
            "rows": "",
            "paging": {
                "style": "cursor",
                "size_param": "limit",
                "size": SIZE,
                "cursor_param": "nextToken",
                "next": "header:x-next-token",
            },
        },
        3,
    ),
    "last-id": (
        _last_id,
        {
            "rows": "/rows",
            "paging": {
                "style": "cursor",
                "size_param": "limit",
                "size": SIZE,
                "cursor_param": "starting_after",
                "next": "last_id",
                "has_next": "/has_more",
            },
        },
        3,
    ),
}


@pytest.mark.parametrize("style", list(STYLES))
async def test_each_paging_style_counts_every_row_with_the_fewest_requests(style: str) -> None:
    """A user-defined provider walks its list to the end in each paging style: 7 rows in
    their statuses and phases (paused its own phase, not live), in the fewest requests."""
    handler, extra, requests = STYLES[style]
    async with origin_server(handler) as origin:
        definition = {
            "path": "/v1/list",
            "auth": {"header": "X-API-Key", "prefix": ""},
            "fields": FIELDS,
            "statuses": STATUSES,
            **extra,
        }
        settings = settings_for(
            {"name": "t", "provider": "acme", "base_url": origin.url},
            providers={"acme": definition},
        )
        store = await poll_all(settings, clock=lambda: NOW)
    snapshot = store.snapshots["t"]
    assert snapshot.error is None
    aggregate = snapshot.aggregate
    assert aggregate is not None
    counts = {s: (c.phase, c.count) for s, c in aggregate.statuses.items()}
    assert {
        "running": (Phase.LIVE, 4),
        "starting": (Phase.PENDING, 2),
        "paused": (Phase.PAUSED, 1),
    } == counts
    assert requests == len(origin.seen)
    assert "test-key-0123456789" == origin.seen[0].headers["X-API-Key"]
    assert 0 == aggregate.duplicates


def _definition(**extra: Any) -> dict[str, Any]:
    return {"path": "/v1/list", "fields": FIELDS, "statuses": STATUSES, **extra}


async def _poll_one(
    handler: Callable[[web.Request], web.Response], definition: dict[str, Any], **target: Any
) -> tuple[Any, list[str]]:
    async with origin_server(handler) as origin:
        settings = settings_for(
            {"name": "t", "provider": "acme", "base_url": origin.url, **target},
            providers={"acme": definition},
        )
        store = await poll_all(settings, clock=lambda: NOW)
    return store.snapshots["t"], origin.paths()


BIG = [{"id": f"b{i}", "state": "running", "startedAt": "2025-12-31T23:00:00Z"} for i in range(95)]


def _big_offset(request: web.Request) -> web.Response:
    at, size = _int(request, "offset", 0), _int(request, "limit", 100)
    return json_response({"data": BIG[at : at + size], "total": len(BIG)})


def _big_page(request: web.Request) -> web.Response:
    number, size = _int(request, "page", 1), _int(request, "per_page", 100)
    return json_response({"items": BIG[(number - 1) * size : number * size], "total": len(BIG)})


async def test_a_known_total_fetches_the_rest_side_by_side_and_no_page_more() -> None:
    """Offset and page styles with a total: after the first page the other nine are
    fetched up to page_concurrency at a time, each exactly once."""
    offset = _definition(
        rows="/data",
        paging={"style": "offset", "size_param": "limit", "size": 10, "total": "/total"},
    )
    snapshot, paths = await _poll_one(_big_offset, offset, page_concurrency=4)
    assert snapshot.error is None
    assert 95 == snapshot.aggregate.sessions
    assert [f"/v1/list?limit=10&offset={10 * i}" for i in range(10)] == sorted(
        paths, key=lambda p: int(p.rpartition("=")[2])
    )
    page = _definition(
        rows="/items",
        paging={"style": "page", "size_param": "per_page", "size": 10, "total": "/total"},
    )
    snapshot, paths = await _poll_one(_big_page, page, page_concurrency=3)
    assert snapshot.error is None
    assert 95 == snapshot.aggregate.sessions
    assert 10 == len(paths) == len(set(paths))


async def test_a_page_served_again_ends_the_poll() -> None:
    """A cursor that never advances (the same page again) fails the poll with
    too_many_pages instead of walking until max_pages."""

    def handler(request: web.Request) -> web.Response:
        return json_response({"data": ROWS[:3], "next": "again"})

    definition = _definition(
        rows="/data", paging={"style": "cursor", "size_param": "limit", "size": 3, "next": "/next"}
    )
    snapshot, paths = await _poll_one(handler, definition)
    assert "too_many_pages" == snapshot.error_reason.value
    assert 2 == len(paths)


async def test_max_pages_and_max_response_bytes_bound_a_defined_provider() -> None:
    """A list that never ends stops at max_pages; an answer above max_response_bytes fails."""

    def endless(request: web.Request) -> web.Response:
        at = _int(request, "cursor", 0)
        rows = [{"id": f"x{at}", "state": "running", "startedAt": "2025-12-31T23:00:00Z"}]
        return json_response({"data": rows, "next": str(at + 1)})

    definition = _definition(rows="/data", paging={"style": "cursor", "next": "/next"})
    snapshot, paths = await _poll_one(endless, definition, max_pages=5)
    assert "too_many_pages" == snapshot.error_reason.value
    assert 5 == len(paths)

    def big(request: web.Request) -> web.Response:
        return json_response({"data": BIG * 20})

    snapshot, _ = await _poll_one(big, _definition(rows="/data"), max_response_bytes=4096)
    assert "too_large" == snapshot.error_reason.value


async def test_a_wrong_envelope_fails_with_schema() -> None:
    """An answer without the rows array where the definition says fails the poll (schema)."""

    def handler(request: web.Request) -> web.Response:
        return json_response({"items": ROWS})

    snapshot, _ = await _poll_one(handler, _definition(rows="/data"))
    assert "schema" == snapshot.error_reason.value
    assert "response.data: expected an array" in (snapshot.error or "")


async def test_several_shapes_constant_status_and_numeric_times() -> None:
    """rows: [/data, ""] takes an envelope or a bare array; derived_status gives rows
    without a status one; times in ms and numbers sent as strings are read."""
    rows = [
        {"id": "a", "created": 1767222000000, "ended": None, "leases": "2"},
        {"id": "b", "created": "1767222000000", "ended": "yes", "leases": 0},
    ]

    def handler(request: web.Request) -> web.Response:
        return json_response(rows)

    definition = {
        "path": "/v1/list",
        "rows": ["/data", ""],
        "fields": {"id": "/id", "created": "/created", "leases": "/leases"},
        "time_unit": "ms",
        "derived_status": {"set": "/ended", "then": "done", "otherwise": "up"},
        "statuses": {"up": "live", "done": "ended"},
    }
    snapshot, _ = await _poll_one(handler, definition)
    assert snapshot.error is None
    aggregate = snapshot.aggregate
    assert {"up": 1, "done": 1} == {s: c.count for s, c in aggregate.statuses.items()}
    assert NOW - 3600 == aggregate.statuses["up"].oldest_created
    assert 2 == aggregate.leases
    assert {"id": 0, "created": 0, "leases": 0, "status": 0} == dict(aggregate.invalid)


async def test_paused_sessions_are_exported_and_not_live() -> None:
    """A paused session is exported in phase paused, and adds no live seconds."""
    handler, extra, _ = STYLES["none"]
    definition = _definition(**extra)
    async with origin_server(handler) as origin:
        settings = settings_for(
            {"name": "t", "provider": "acme", "base_url": origin.url},
            providers={"acme": definition},
        )
        store = await poll_all(settings, clock=lambda: NOW)
        await poll_all(settings, store=store, clock=lambda: NOW + 60)
    exposition = scrape(store, clock=lambda: NOW + 60)
    assert 1 == exposition.get("sessions", target="t", status="paused", phase="paused")
    assert 6 * 60 == exposition.get("sessions_live_seconds_total", target="t")


async def test_without_a_total_pages_are_fetched_as_far_as_the_last_walk_went() -> None:
    """Page style without a total: the first poll walks one page at a time, the next ones
    fetch ahead as far as it went, with no page more; when the list shrinks, at most
    page_concurrency - 1 pages past its end are requested."""
    served = list(BIG)

    def handler(request: web.Request) -> web.Response:
        number, size = _int(request, "page", 1), _int(request, "per_page", 100)
        part = served[(number - 1) * size : number * size]
        return json_response({"items": part, "has_next": number * size < len(served)})

    definition = _definition(
        rows="/items",
        paging={"style": "page", "size_param": "per_page", "size": 10, "has_next": "/has_next"},
    )
    async with origin_server(handler) as origin:
        settings = settings_for(
            {"name": "t", "provider": "acme", "base_url": origin.url, "page_concurrency": 4},
            providers={"acme": definition},
        )
        store = new_store(settings)
        async with new_client_session() as session:
            (poller,) = new_pollers(settings, session, store, clock=lambda: NOW)
            counts = []
            for shrink in (False, False, True):
                if shrink:
                    del served[50:]
                before = len(origin.seen)
                aggregate = (await poller.poll()).aggregate
                assert aggregate is not None
                counts.append((aggregate.sessions, len(origin.seen) - before))
    assert [(95, 10), (95, 10)] == counts[:2]
    sessions, requests = counts[2]
    assert 50 == sessions
    assert 5 <= requests <= 5 + 3  # pages 6-8 may be cancelled before they are sent


BROKEN = """\
providers:
  acme:
    path: /v1/list
    pagng: {style: cursor}
    paging: {style: cursor, size_param: limit, size: 10}
    rows: /data
    fields: {id: id, status: /state, created: /created}
    statuses: {running: alive}
  chaser:
    path: /x
    rows: ""
    fields: {id: /id, status: /s, created: /c}
  Acme!:
    path: /x
    rows: ""
    fields: {id: /id, status: /s, created: /c}
targets:
  - name: t
    provider: acme
    api_key: k
    base_url: http://127.0.0.1:1
  - name: u
    provider: acmi
    api_key: k
"""


def test_a_broken_definition_is_reported_where_it_is_written(tmp_path: Path) -> None:
    """Every problem of a definition is located (file:line:column and dotted key), in plain
    words, with "did you mean" for a misspelt key or provider id."""
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    ids = "together, agi, trigger, chaser, notte, e2b, browserbase, daytona, runloop, steel, acme"
    assert [
        f"{path}:4:5: providers.acme.pagng: unknown key (did you mean paging?)",
        f"{path}:5:13: providers.acme.paging: paging style cursor needs next: a JSON pointer, "
        "header:NAME or last_id",
        f"{path}:7:18: providers.acme.fields.id: 'id' is not a JSON pointer (RFC 6901): write "
        "'/id' for a top-level key, or \"\" for the whole value",
        f"{path}:8:25: providers.acme.statuses.running: must be one of pending, live, paused, "
        "ended, failed, unknown, not 'alive'",
        f"{path}:10:5: providers.chaser: 'chaser' is a built-in provider id: give your "
        "definition another id",
        f"{path}:14:5: providers.Acme!: 'Acme!' is not a provider id: lower-case letters, "
        "digits, '_' and '-', starting with a letter or digit (it becomes the provider label)",
        f"{path}:23:15: targets[1].provider: unknown provider 'acmi': did you mean acme? use one "
        f"of {ids}, or define it under providers:",
    ] == [str(p) for p in raised.value.problems]


def test_an_auth_prefix_with_a_line_break_is_a_config_error(tmp_path: Path) -> None:
    """An ``auth.prefix`` holding a line break is refused where it is written (it would make
    every request fail in the HTTP client, poll after poll, as ``unexpected``)."""
    path = tmp_path / "prefix.yaml"
    path.write_text(
        "providers:\n  acme:\n    base_url: http://127.0.0.1:1\n    path: /v1/s\n"
        '    auth: {header: X-Key, prefix: "a\\nb"}\n    paging: {style: none}\n    rows: ""\n'
        "    fields: {id: /id, status: /s, created: /c}\n"
        "targets:\n  - name: t\n    provider: acme\n    api_key: k\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    assert [
        f"{path}:5:35: providers.acme.auth.prefix: may not hold a line break or another "
        "control character"
    ] == [str(p) for p in raised.value.problems]


# --- fields.executions and errors ----------------------------------------------------------

WORK = {
    "path": "/v1/list",
    "rows": "/result/items",
    "errors": "/meta/errors",
    "fields": {**FIELDS, "executions": "/stats/runs"},
    "statuses": STATUSES,
}
"""A definition whose rows carry an execution count and whose answers list upstream errors
beside the rows (both nested, as the pointers allow)."""
LISTED = [
    "quota nearly exhausted",
    {"code": "partial", "message": "region eu-west unavailable"},
    {"code": 7},
    *(f"e{i}" for i in range(9)),
]
"""Twelve listed errors: a string, an object with a message, one without, nine more."""


def _work_rows(count: int) -> list[dict[str, Any]]:
    """``count`` sessions cycling running, starting, paused; session i ran i % 5 times."""
    states = ["running", "starting", "paused"]
    return [
        {
            "id": f"w{i}",
            "state": states[i % 3],
            "startedAt": "2025-12-31T23:00:00Z",
            "stats": {"runs": i % 5},
            "pad": "x" * 200,
        }
        for i in range(count)
    ]


async def _poll_store(
    handler: Callable[[web.Request], web.Response], definition: dict[str, Any]
) -> Any:
    async with origin_server(handler) as origin:
        settings = settings_for(
            {"name": "t", "provider": "acme", "base_url": origin.url},
            providers={"acme": definition},
        )
        return await poll_all(settings, clock=lambda: NOW)


@pytest.mark.parametrize("count", [7, 6000], ids=["typed-whole", "chunked"])
async def test_executions_are_summed_and_listed_errors_counted_and_logged(count: int) -> None:
    """fields.executions is summed into sessions_executions over pending and live sessions
    (a paused one adds none); the errors the answer lists at ``errors`` are counted whole in
    sessions_exporter_upstream_errors_total, the first ten logged (an object by its message,
    else its JSON); the rows are still counted. The same for an answer decoded whole and one
    over 1 MiB read a chunk at a time."""
    rows = _work_rows(count)

    def handler(request: web.Request) -> web.Response:
        return json_response({"result": {"items": rows}, "meta": {"errors": LISTED}})

    with capture_logs() as logs:
        store = await _poll_store(handler, WORK)
    exposition = scrape(store, clock=lambda: NOW)
    assert store.snapshots["t"].error is None
    runs = sum(r["stats"]["runs"] for r in rows if r["state"] != "paused")
    assert runs == exposition.get("sessions_executions", target="t")
    assert 12 == exposition.get("sessions_exporter_upstream_errors_total", target="t")
    assert count == sum(exposition.by("sessions", "status", target="t").values())
    warned = [(e["count"], e["errors"]) for e in logs if e["event"] == "poll.upstream_errors"]
    expected = [
        "quota nearly exhausted",
        "region eu-west unavailable",
        '{"code":7}',
        *(f"e{i}" for i in range(7)),
    ]
    assert [(12, expected)] == warned


async def test_an_unreadable_execution_count_is_counted_under_executions() -> None:
    """An execution count that is no count of at least 0 makes that fact unknown for its row
    (counted under ``executions``, its place named); one sent as a string is read."""
    rows = _work_rows(4)  # running, starting, paused, running
    rows[0]["stats"] = {"runs": "4"}
    rows[1]["stats"] = {"runs": -1}
    rows[3]["stats"] = {"runs": 2.5}

    def handler(request: web.Request) -> web.Response:
        return json_response({"result": {"items": rows}})

    store = await _poll_store(handler, WORK)
    exposition = scrape(store, clock=lambda: NOW)
    assert 4 == exposition.get("sessions_executions", target="t")  # the paused one adds none
    assert {"executions": 2} == invalid_rows(store, "t", clock=lambda: NOW)
    assert "rows[1].stats.runs: expected a count of at least 0, got -1" == invalid_example(
        store, "t"
    )
    assert 4 == sum(exposition.by("sessions", "status", target="t").values())
    assert 0 == exposition.get("sessions_exporter_upstream_errors_total", target="t")


@pytest.mark.parametrize(
    ("document", "error", "listed"),
    [
        (
            {"meta": {"errors": ["sessions backend down", "retry later"]}},
            "response.result: expected an object, got null "
            "(the response's meta.errors[0]: sessions backend down)",
            2,
        ),
        (
            {"result": {}, "meta": {"errors": [{"message": "sessions backend down"}]}},
            "response.result.items: expected an array, got nothing (the key is missing) "
            "(the response's meta.errors[0]: sessions backend down)",
            1,
        ),
        (
            {"result": {"items": "n/a"}, "meta": {"errors": []}},
            "response.result.items: expected an array, got str",
            0,
        ),
        (
            {"result": {"items": []}, "meta": {"errors": "oops"}},
            "response.meta.errors: expected an array, got str",
            0,
        ),
    ],
)
async def test_missing_rows_fail_as_schema_quoting_the_first_listed_error(
    document: dict[str, Any], error: str, listed: int
) -> None:
    """An answer without its rows fails the poll as schema, naming where the walk stopped
    and quoting the first listed error; the listed errors are still counted. An errors
    value that is no array fails as schema too."""

    def handler(request: web.Request) -> web.Response:
        return json_response(document)

    store = await _poll_store(handler, WORK)
    snapshot = store.snapshots["t"]
    assert error == snapshot.error
    assert "schema" == snapshot.error_reason.value
    exposition = scrape(store, clock=lambda: NOW)
    assert listed == exposition.get("sessions_exporter_upstream_errors_total", target="t")


async def test_without_the_keys_no_executions_and_no_listed_errors_are_read() -> None:
    """A definition without fields.executions exports no sessions_executions, and one
    without errors counts no upstream error, whatever the answer lists."""

    def handler(request: web.Request) -> web.Response:
        return json_response({"result": {"items": _work_rows(3)}, "meta": {"errors": LISTED}})

    plain = {k: v for k, v in WORK.items() if k != "errors"}
    plain["fields"] = FIELDS
    with capture_logs() as logs:
        store = await _poll_store(handler, plain)
    exposition = scrape(store, clock=lambda: NOW)
    assert store.snapshots["t"].error is None
    assert exposition.get("sessions_executions", target="t") is None
    assert 0 == exposition.get("sessions_exporter_upstream_errors_total", target="t")
    assert [] == [e for e in logs if e["event"] == "poll.upstream_errors"]


async def test_a_row_left_out_is_counted_once_under_the_field_that_left_it_out() -> None:
    """A row whose id or status cannot be read is left out and counted once, under id or
    status: its other unreadable facts are not read (as the hand-written providers count)."""
    rows = [
        {"state": "running", "startedAt": 7},
        {"id": "b", "state": None, "startedAt": {"at": 1}},
        {"id": "c", "state": "running", "startedAt": "yesterday"},
        {"id": "d", "state": "running", "startedAt": "2025-12-31T23:00:00Z"},
    ]

    def handler(request: web.Request) -> web.Response:
        return json_response({"data": rows})

    store = await _poll_store(handler, _definition(rows="/data", time_unit="iso"))
    assert {"id": 1, "status": 1, "created": 1} == invalid_rows(store, "t", clock=lambda: NOW)
    exposition = scrape(store, clock=lambda: NOW)
    assert {"running": 2} == {
        s: v for s, v in exposition.by("sessions", "status", target="t").items() if v
    }


NEW_KEYS = """\
providers:
  acme:
    path: /v1/list
    rows: /data/items
    errors: errors
    fields: {id: /id, status: /s, created: /c, executions: runs}
  bare:
    path: /v1/list
    rows: ""
    errors: ""
    fields: {id: /id, status: /s, created: /c}
  nested:
    path: /v1/list
    rows: /data/items
    errors: /data
    fields: {id: /id, status: /s, created: /c}
  paged:
    path: /v1/list
    paging: {style: cursor, next: /meta/next}
    rows: /data
    errors: /meta
    fields: {id: /id, status: /s, created: /c}
targets:
  - {name: t, provider: acme, api_key: k, base_url: "http://127.0.0.1:1"}
"""


def test_the_errors_and_executions_keys_are_checked_where_they_are_written(tmp_path: Path) -> None:
    """``errors`` and ``fields.executions`` are JSON pointers; ``errors`` is neither the
    whole answer nor where the rows or a paging value are: each problem located."""
    path = tmp_path / "keys.yaml"
    path.write_text(NEW_KEYS, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    assert [
        f"{path}:5:13: providers.acme.errors: 'errors' is not a JSON pointer (RFC 6901): write "
        "'/errors' for a top-level key, or \"\" for the whole value",
        f"{path}:6:60: providers.acme.fields.executions: 'runs' is not a JSON pointer (RFC "
        "6901): write '/runs' for a top-level key, or \"\" for the whole value",
        f'{path}:10:13: providers.bare.errors: "" is the whole answer: give the pointer of '
        "the errors array (/errors)",
        f"{path}:15:13: providers.nested.errors: /data overlaps rows (/data/items): give each "
        "its own place",
        f"{path}:21:13: providers.paged.errors: /meta overlaps paging.next (/meta/next): give "
        "each its own place",
    ] == [str(p) for p in raised.value.problems]


# --- constant headers, the reset unit, run_id, cursor loops and empty pages ------------------


def _cursor_pages(
    pages: list[tuple[bytes | list[dict[str, Any]], str | None]],
    headers: Mapping[str, str] | None = None,
) -> Callable[[web.Request], web.Response]:
    """An origin serving ``pages`` in turn as ``{"data": <rows>, "next": <cursor>}`` (rows
    given as bytes are sent as written), page ``n`` at ``cursor=<cursor of page n-1>``."""
    by_cursor: dict[str | None, int] = {None: 0}
    for i, (_, cursor) in enumerate(pages):
        by_cursor.setdefault(cursor, i + 1)  # a cursor given again leads where it led first

    def handler(request: web.Request) -> web.Response:
        rows, cursor = pages[by_cursor[request.query.get("cursor")]]
        data = rows if isinstance(rows, bytes) else orjson.dumps(rows)
        body = b'{"data": ' + data + b', "next": ' + orjson.dumps(cursor) + b"}"
        return web.Response(body=body, content_type="application/json", headers=headers)

    return handler


CURSOR = {"rows": "/data", "paging": {"style": "cursor", "next": "/next"}}


async def test_constant_headers_go_with_every_request() -> None:
    """A definition's ``headers:`` are sent, stripped, with every request of every page,
    beside the key; a target adds its own headers to them."""
    handler = _cursor_pages([(ROWS[:3], "p2"), (ROWS[3:], None)])
    definition = _definition(**CURSOR, headers={"X-Api-Version": " 2025-07-16 "})
    async with origin_server(handler) as origin:
        settings = settings_for(
            {"name": "t", "provider": "acme", "base_url": origin.url, "headers": {"X-Org": "o"}},
            providers={"acme": definition},
        )
        store = await poll_all(settings, clock=lambda: NOW)
    assert store.snapshots["t"].error is None
    assert [("2025-07-16", "o", "Bearer test-key-0123456789")] * 2 == [
        (s.headers.get("X-Api-Version"), s.headers.get("X-Org"), s.authorization)
        for s in origin.seen
    ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"headers": {"Authorization": "x"}}, "headers: 'Authorization' is the header the key"),
        (
            {"auth": {"header": "X-Key"}, "headers": {"x-key": "x"}},
            "headers: 'x-key' is the header the key is sent in (auth.header)",
        ),
        ({"headers": {"User-Agent": "x"}}, "headers: 'User-Agent' is set by the exporter"),
        ({"headers": {"X-A": "1", "x-a": "2"}}, "headers: 'x-a' is given twice (as 'X-A')"),
        ({"headers": {"Bad Name": "x"}}, "'Bad Name' is not an HTTP header name"),
        ({"headers": {"X-A": "a\nb"}}, "may not hold a line break or another control character"),
        ({"headers": {"X-A": "  "}}, "a header value may not be empty"),
        ({"rate_limit_reset": "ms"}, "rate_limit_reset"),
        ({"fields": {**FIELDS, "run_id": "run"}}, "'run' is not a JSON pointer"),
    ],
)
def test_headers_reset_unit_and_run_id_are_validated(extra: dict[str, Any], message: str) -> None:
    """A constant header that is the key's, one the exporter sets, one given twice, a bad
    name, a value of two lines or blank; a reset unit not offered; a run_id that is no
    pointer: each a config error in plain words."""
    with pytest.raises(ValidationError, match=re.escape(message)):
        Definition.model_validate({**_definition(**CURSOR), **extra})


def test_a_target_may_not_replace_a_constant_header(tmp_path: Path) -> None:
    """A target's ``headers:`` naming a definition's constant header is refused, located."""
    path = tmp_path / "headers.yaml"
    path.write_text(
        "providers:\n  acme:\n    base_url: http://127.0.0.1:1\n    path: /v1/s\n"
        "    headers: {X-Api-Version: '1'}\n    rows: /data\n"
        "    fields: {id: /id, status: /s, created: /c}\n"
        "targets:\n  - name: t\n    provider: acme\n    api_key: k\n"
        "    headers: {x-api-version: '2'}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    assert [
        f"{path}:12:15: targets[0].headers.x-api-version: header 'x-api-version' is set by the "
        "exporter for provider acme and cannot be replaced"
    ] == [str(p) for p in raised.value.problems]


@pytest.mark.parametrize(
    ("unit", "reset"), [("epoch_ms", NOW + 60.5), ("auto", NOW * 1000 + 60_500)]
)
async def test_the_rate_limit_reset_unit(unit: str, reset: float) -> None:
    """``rate_limit_reset: epoch_ms`` reads ``X-RateLimit-Reset`` as unix milliseconds (the
    gauge in seconds); ``auto`` takes a number that large as unix seconds, as it always did."""
    limits = {"X-RateLimit-Remaining": "7", "X-RateLimit-Reset": str(int(NOW) * 1000 + 60_500)}
    handler = _cursor_pages([(ROWS, None)], headers=limits)
    async with origin_server(handler) as origin:
        settings = settings_for(
            {"name": "t", "provider": "acme", "base_url": origin.url},
            providers={"acme": _definition(**CURSOR, rate_limit_reset=unit)},
        )
        metrics = scrape(await poll_all(settings, clock=lambda: NOW), clock=lambda: NOW)
    assert reset == metrics.get("sessions_exporter_rate_limit_reset_timestamp_seconds")
    assert 7.0 == metrics.get("sessions_exporter_rate_limit_remaining")


RUNS: list[dict[str, Any] | None] = [{"id": "run_1"}, {"id": None}, {"id": 42}, None]
"""The run of ``ROWS[0..3]``: one, null, of the wrong type, none."""


@pytest.mark.parametrize("pointer", ["/run/id", "/runId"])
async def test_run_id_is_read_only_where_per_session_is_on(pointer: str) -> None:
    """``fields.run_id`` is the ``run_id`` label of ``session_info`` with ``per_session`` on
    (empty where null or absent; a value of the wrong type counted invalid as ``run_id``,
    the row still counted); without ``per_session`` it is not even read."""
    served: list[dict[str, Any]] = []
    for row, run in zip(ROWS, RUNS, strict=False):
        if run is None:
            served.append(dict(row))
        elif pointer == "/run/id":
            served.append({**row, "run": run})
        else:
            served.append({**row, "runId": run["id"]})
    handler = _cursor_pages([(served[:2], "p2"), (served[2:], None)])
    fields = {**FIELDS, "run_id": pointer}
    stores = {}
    async with origin_server(handler) as origin:
        for on in (False, True):
            settings = settings_for(
                {
                    "name": "t",
                    "provider": "acme",
                    "base_url": origin.url,
                    "per_session": {"enabled": on, "max_series": 10},
                },
                providers={"acme": _definition(**CURSOR, fields=fields)},
            )
            stores[on] = await poll_all(settings, clock=lambda: NOW)
    off, on_ = stores[False], stores[True]
    assert {} == invalid_rows(off, "t", clock=lambda: NOW)
    assert {"run_id": 1.0} == invalid_rows(on_, "t", clock=lambda: NOW)
    assert f"rows.page[2].data[0]{pointer.replace('/', '.')}: expected a string, got int" == (
        invalid_example(on_, "t")
    )
    labels = {
        dict(lbl)["session_id"]: dict(lbl)["run_id"]
        for lbl in scrape(on_, clock=lambda: NOW).select("session_info")
    }
    assert {"s0": "run_1", "s1": "", "s2": "", "s3": ""} == labels
    aggregate = on_.snapshots["t"].aggregate
    assert 4 == (aggregate and aggregate.sessions)


async def test_a_cursor_followed_before_fails_the_walk_as_schema() -> None:
    """A cursor that comes back within one listing (a -> b -> a, each page different) fails
    the poll as ``schema``, naming the page, the pointer and the cursor, before a fourth
    request: the walk would loop."""
    handler = _cursor_pages([(ROWS[:2], "a"), (ROWS[2:4], "b"), (ROWS[4:], "a")])
    snapshot, paths = await _poll_one(handler, _definition(**CURSOR))
    assert "schema" == snapshot.error_reason.value
    assert (
        "rows.page[3].next: cursor 'a' was already followed in this listing; stopping instead "
        "of looping"
    ) == snapshot.error
    assert ["/v1/list", "/v1/list?cursor=a", "/v1/list?cursor=b"] == paths


async def test_empty_pages_with_next_set_walk_on_to_the_end() -> None:
    """Pages that come back empty (``[]``, ``[ ]``) while ``next`` is set, several in a row,
    neither end the walk nor look like a page served again: every row after them counts."""
    handler = _cursor_pages(
        [
            (b"[]", "1"),
            (b"[ ]", "2"),
            (b"[\n]", "3"),
            (ROWS[:4], "4"),
            (b"[]", "5"),
            (ROWS[4:], None),
        ]
    )
    snapshot, paths = await _poll_one(handler, _definition(**CURSOR))
    assert snapshot.error is None
    assert 6 == len(paths)
    assert 7 == snapshot.aggregate.sessions


async def test_a_bad_row_of_a_cursor_walk_is_placed_by_page() -> None:
    """An invalid row of a cursor walk is named by its listing, page and place in the rows
    array (``rows[state=running].page[2].data[0].startedAt``)."""
    bad = {"id": "s9", "state": "running", "startedAt": "soon"}
    handler = _cursor_pages([(ROWS[:1], "p2"), ([bad], None)])
    definition = _definition(
        **CURSOR, status_filter={"param": "state"}, statuses={"running": "live"}
    )
    async with origin_server(handler) as origin:
        settings = settings_for(
            {"name": "t", "provider": "acme", "base_url": origin.url},
            providers={"acme": definition},
        )
        store = await poll_all(settings, clock=lambda: NOW)
    assert (
        "rows[state=running].page[2].data[0].startedAt: expected an ISO-8601 timestamp or a "
        "number, got 'soon'"
    ) == invalid_example(store, "t")


# --- query options, a status flag, strict has_next, error_if_set, fallback amounts --------

MIXED = [
    {"id": f"m{i}", "state": state, "startedAt": "2025-12-31T23:00:00Z"}
    for i, state in enumerate(["running", "starting", "stopped", "running", "stopped"])
]
"""Two running, one starting, two stopped: what a server answers whatever it is asked."""
FLAGGED = {
    "rows": "/data",
    "statuses": {"starting": "pending", "running": "live", "stopped": "ended"},
    "status_filter": {"param": "live_only", "flag": True, "statuses": ["running"]},
    "options": {
        "include_hidden": {"query": "include_hidden", "type": "boolean"},
        "team": {"query": "team"},
        "region": {"header": "X-Region"},
    },
}


@pytest.mark.parametrize(
    ("target", "query", "counted"),
    [
        (
            {"include_hidden": False, "team": " blue ", "region": "eu"},
            "live_only=true&include_hidden=false&team=blue",
            {"running": 2},
        ),
        ({"only_active": False}, "live_only=false", {"running": 2, "starting": 1, "stopped": 2}),
    ],
)
async def test_query_options_and_a_status_flag_are_sent_as_the_api_reads_them(
    target: dict[str, Any], query: str, counted: dict[str, int]
) -> None:
    """A boolean status flag is always sent (true while only_active, false otherwise); under
    it only the listed statuses count, the rest dropped; query options are sent only when the
    target sets them (booleans as true/false), header options as headers."""
    seen: list[str | None] = []

    def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("X-Region"))
        return json_response({"data": MIXED})

    snapshot, paths = await _poll_one(handler, _definition(**FLAGGED), **target)

    assert snapshot.error is None
    assert [f"/v1/list?{query}"] == paths
    assert [target.get("region")] == seen
    assert counted == {s: c.count for s, c in snapshot.aggregate.statuses.items() if c.count}
    assert 5 - sum(counted.values()) == snapshot.aggregate.dropped


STRICT = {
    "rows": ["/items", ""],
    "paging": {
        "style": "page",
        "size_param": "per_page",
        "size": SIZE,
        "has_next": "/has_next",
        "strict_has_next": True,
    },
}


async def test_strict_has_next_alone_ends_the_list() -> None:
    """Under strict_has_next a short or empty page with has_next true goes on, has_next false
    ends the list, and a full bare array is the whole list (no second request)."""

    def short(request: web.Request) -> web.Response:
        number = _int(request, "page", 1)
        part = ROWS[(number - 1) * 2 : number * 2] if number != 2 else []
        return json_response({"items": part, "has_next": number < 5})

    snapshot, paths = await _poll_one(short, _definition(**STRICT))
    assert snapshot.error is None
    assert 5 == snapshot.aggregate.sessions  # pages of 2, page 2 empty: rows 0-1 and 4-6
    assert [f"/v1/list?per_page=3&page={n}" for n in range(1, 6)] == paths

    snapshot, paths = await _poll_one(lambda r: json_response(ROWS[:SIZE]), _definition(**STRICT))
    assert snapshot.error is None
    assert SIZE == snapshot.aggregate.sessions
    assert ["/v1/list?per_page=3&page=1"] == paths


@pytest.mark.parametrize(
    ("has_next", "message"),
    [
        ({}, "response.has_next: expected a boolean, got null"),
        ({"has_next": "yes"}, "response.has_next: expected a boolean, got str"),
    ],
)
async def test_strict_has_next_must_be_a_boolean(has_next: dict[str, Any], message: str) -> None:
    """Under strict_has_next an object answer without a boolean has_next fails as schema."""
    snapshot, _ = await _poll_one(
        lambda r: json_response({"items": ROWS[:1], **has_next}), _definition(**STRICT)
    )
    assert "schema" == snapshot.error_reason.value
    assert message == snapshot.error


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            {"items": ROWS, "has_next": False, "detail": {"msg": "quota exceeded"}},
            'rows at page=1: an error in a 2xx answer, not a page: {"msg":"quota exceeded"}',
        ),
        (
            {"detail": "quota exceeded"},
            "rows at page=1: an error in a 2xx answer, not a page: quota exceeded",
        ),
        ({"items": ROWS, "has_next": False, "detail": None}, None),
    ],
)
async def test_error_if_set_fails_a_2xx_answer_that_says_it_is_an_error(
    body: dict[str, Any], error: str | None
) -> None:
    """A 2xx answer with a value (not null) at error_if_set fails the poll as schema, even
    beside the rows or without them, quoting the body as the provider's error reader reads
    it (a user-defined provider's: the generic one); null there is a page like any other."""
    definition = _definition(error_if_set="/detail", **STRICT)
    snapshot, _ = await _poll_one(lambda r: json_response(body), definition)
    if error is None:
        assert snapshot.error is None
        assert len(ROWS) == snapshot.aggregate.sessions
    else:
        assert "schema" == snapshot.error_reason.value
        assert error == snapshot.error


async def test_a_deadline_amount_falls_back_to_the_next_pointer_set() -> None:
    """plus as a list: the first amount set (not null) counts, a term with none is left
    out; integer: true counts a fraction as an unreadable value under the deadline field."""
    rows = [
        {"id": "a", "state": "running", "startedAt": "2025-12-31T23:00:00Z", "idle": 10},
        {"id": "b", "state": "running", "startedAt": "2025-12-31T23:00:00Z", "old_idle": 20},
        {"id": "c", "state": "running", "startedAt": "2025-12-31T23:00:00Z", "idle": None},
        {"id": "d", "state": "running", "startedAt": "2025-12-31T23:00:00Z", "idle": 7.5},
    ]
    definition = _definition(
        rows="/data",
        deadline={
            "earliest": [
                {
                    "time": "/startedAt",
                    "plus": ["/idle", "/old_idle"],
                    "unit": "min",
                    "integer": True,
                }
            ]
        },
    )
    snapshot, _ = await _poll_one(lambda r: json_response({"data": rows}), definition)

    aggregate = snapshot.aggregate
    assert NOW - 3600 + 10 * 60 == aggregate.next_deadline
    assert 2 == aggregate.overdue  # a and b; c and d have no deadline
    assert {"deadline": 1} == {k: v for k, v in aggregate.invalid.items() if v}
    assert "rows[3].idle: expected an integer, got float" == aggregate.invalid_example


NEW_KEYS_BROKEN = """\
providers:
  acme:
    path: /v1/list
    paging: {style: cursor, next: /n, strict_has_next: true}
    rows: /data
    fields: {id: /id, status: /state, created: /created}
    statuses: {running: live}
    status_filter: {param: live, flag: true, join: comma, statuses: [gone]}
    deadline: {earliest: [{time: /created, integer: true}]}
    options:
      both: {header: X-Both, query: both}
      neither: {type: boolean}
    error_if_set: ""
targets:
  - name: t
    provider: e2b
    api_key: k
"""


def test_the_option_flag_and_error_keys_are_checked_where_they_are_written(tmp_path: Path) -> None:
    """strict_has_next outside page style, a flag with join, an option with both or neither
    place, integer without plus, an empty error_if_set: each refused in plain words, located."""
    path = tmp_path / "keys.yaml"
    path.write_text(NEW_KEYS_BROKEN, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    assert [
        f"{path}:4:13: providers.acme.paging: strict_has_next needs paging style page with "
        "has_next",
        f"{path}:8:20: providers.acme.status_filter: flag sends param=true or param=false: "
        "give no join or case",
        f"{path}:9:27: providers.acme.deadline.earliest[0]: integer says what the amount in "
        "plus is: give plus too",
        f"{path}:11:13: providers.acme.options.both: give header: NAME or query: PARAM, "
        "exactly one",
        f"{path}:12:16: providers.acme.options.neither: give header: NAME or query: PARAM, "
        "exactly one",
        f"{path}:13:19: providers.acme.error_if_set: a pointer to a key of the answer object "
        '(/detail), not ""',
    ] == [str(p) for p in raised.value.problems]


def test_listed_statuses_and_a_boolean_option_are_checked(tmp_path: Path) -> None:
    """status_filter.statuses must be statuses of the definition (any case), a flag needs
    rows with a status, and a boolean option takes true or false, not text."""
    path = tmp_path / "keys.yaml"
    path.write_text(
        "providers:\n  acme:\n    path: /v1/list\n    rows: /data\n"
        "    fields: {id: /id, status: /state, created: /created}\n"
        "    statuses: {running: live}\n"
        "    status_filter: {param: live, statuses: [Running, gone]}\n"
        "  beta:\n    path: /v1/list\n    rows: /data\n"
        "    fields: {id: /id, created: /created}\n"
        "    statuses: {running: live}\n"
        "    status_filter: {param: live, flag: true}\n"
        "  gamma:\n    base_url: http://127.0.0.1:1\n    path: /v1/list\n    rows: /data\n"
        "    fields: {id: /id, status: /state, created: /created}\n"
        "    options: {hidden: {query: hidden, type: boolean}}\n"
        "targets:\n  - name: t\n    provider: gamma\n    api_key: k\n    hidden: 'no'\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    assert [
        f"{path}:3:5: providers.acme: status_filter.statuses: 'gone' not among statuses",
        f"{path}:9:5: providers.beta: status_filter with flag: true needs fields.status or "
        "derived_status (the rows of one listing may have any status)",
        f"{path}:21:5: targets[0]: hidden must be true or false",
    ] == [str(p) for p in raised.value.problems]


# --- answers of several shapes, and the offset walk that reads a total ------------------------

LEASED = [row | {"leases": i % 2} for i, row in enumerate(ROWS)]
"""ROWS with a lease count (1 on rows 1, 3 and 5, all pending or live)."""
EXPIRING = [row | {"expiresAt": "2025-12-31T23:30:00Z"} for row in ROWS]
"""ROWS with a deadline before NOW (six of them pending or live: overdue)."""

TWO_SHAPES = {
    "path": "/v1/list",
    "answers": [
        {
            "rows": "/items",
            "paging": {"style": "offset", "size_param": "limit", "size": 5, "total": "/total"},
            "reports": ["leases"],
        },
        {
            "rows": "/data",
            "paging": {
                "style": "cursor",
                "size_param": "limit",
                "size": 5,
                "max_size": 2,
                "next": "/next",
                "has_next": "/more",
            },
            "reports": ["deadlines"],
        },
    ],
    "fields": {**FIELDS, "leases": "/leases", "deadline": "/expiresAt"},
    "statuses": STATUSES,
}
"""A provider answering ``{items, total}`` paged by offset, or ``{data, next, more}`` paged
by a cursor taking at most 2 rows a page; leases only in the first, deadlines in the second."""


def _offset_shape(request: web.Request) -> web.Response:
    at, size = _int(request, "offset", 0), _int(request, "limit", 100)
    return json_response({"items": LEASED[at : at + size], "total": len(LEASED)})


def _cursor_shape(request: web.Request) -> web.Response:
    at, size = _int(request, "cursor", 0), _int(request, "limit", 100)
    more = at + size < len(EXPIRING)
    nxt = str(at + size) if more else None
    return json_response({"data": EXPIRING[at : at + size], "next": nxt, "more": more})


async def test_answers_of_two_shapes_are_each_walked_by_their_own_paging() -> None:
    """The first answer's shape picks the walk: an account answering ``{items, total}`` is
    paged by offset, one answering ``{data, next, more}`` by cursor (its ``limit`` capped
    at max_size 2 after the first request, which is the first answer's). Each reports what
    its shape carries: leases from the first (deadline series absent), deadlines from the
    second (lease series absent)."""
    found = {}
    for name, handler in (("offset", _offset_shape), ("cursor", _cursor_shape)):
        snapshot, paths = await _poll_one(handler, TWO_SHAPES)
        assert snapshot.error is None
        found[name] = (snapshot.aggregate, paths)
    offset, offset_paths = found["offset"]
    assert ["/v1/list?limit=5&offset=0", "/v1/list?limit=5&offset=5"] == offset_paths
    assert (7, 3, 2, None, None) == (
        offset.sessions,
        offset.leases,
        offset.unleased,
        offset.overdue,
        offset.next_deadline,
    )
    cursor, cursor_paths = found["cursor"]
    assert ["/v1/list?limit=5&offset=0", "/v1/list?limit=2&cursor=5"] == cursor_paths
    assert (7, None, None, 6) == (cursor.sessions, cursor.leases, cursor.unleased, cursor.overdue)


async def test_a_fact_its_shape_does_not_report_is_reported_once_a_row_carries_it() -> None:
    """An ``{items, total}`` account whose rows carry a deadline gets the deadline series
    beside its leases: a shape's ``reports`` are what it always carries, not all it may."""

    def handler(request: web.Request) -> web.Response:
        rows = [row | {"leases": 0} for row in EXPIRING]
        return json_response({"items": rows, "total": len(rows)})

    snapshot, _ = await _poll_one(handler, TWO_SHAPES)
    aggregate = snapshot.aggregate
    assert (6, 0, 4) == (aggregate.overdue, aggregate.leases, aggregate.unleased)


async def test_an_answer_of_another_shape_mid_walk_fails_as_schema() -> None:
    """An offset walk answered in the cursor shape on its second page fails (``schema``),
    naming the page and both shapes, instead of reading it by the wrong rules."""

    def handler(request: web.Request) -> web.Response:
        if _int(request, "offset", 0):
            return _cursor_shape(request)
        return _offset_shape(request)

    snapshot, paths = await _poll_one(handler, TWO_SHAPES)
    assert "schema" == snapshot.error_reason.value
    assert (
        "rows at offset=5: an answer with its rows at response.data, in a walk of answers "
        "with their rows at response.items"
    ) == snapshot.error
    assert 2 == len(paths)


def _shrinking(
    rows: list[dict[str, Any]], change: Callable[[list[dict[str, Any]], int], None]
) -> Callable[[web.Request], web.Response]:
    """An offset origin over ``rows`` (``{data, total}``) that calls ``change(rows, n)``
    before answering its request ``n`` (from 0)."""
    served = [0]

    def handler(request: web.Request) -> web.Response:
        change(rows, served[0])
        served[0] += 1
        at, size = _int(request, "offset", 0), _int(request, "limit", 100)
        return json_response({"data": rows[at : at + size], "total": len(rows)})

    return handler


OFFSET_TOTAL = {
    "rows": "/data",
    "paging": {"style": "offset", "size_param": "limit", "size": 10, "total": "/total"},
}


async def test_an_offset_list_shrinking_under_the_walk_is_re_read_where_it_shifted() -> None:
    """A user-defined offset list with a total: a session of the first page ends before the
    second request, moving every later row one place back. The second answer's smaller
    ``total`` shows it; the gap is re-read from as many rows back as the total shrank plus
    one (offset 8), so b10, which slid onto the first page, is counted: every session once,
    the rows read twice counted as duplicates."""

    def end_one(rows: list[dict[str, Any]], served: int) -> None:
        if served == 1:
            del rows[0]

    handler = _shrinking([dict(row) for row in BIG[:40]], end_one)
    snapshot, paths = await _poll_one(handler, _definition(**OFFSET_TOTAL), page_concurrency=1)
    assert snapshot.error is None
    assert [0, 10, 8, 18, 28, 38] == [int(p.rpartition("=")[2]) for p in paths]
    assert (40, 11) == (snapshot.aggregate.sessions, snapshot.aggregate.duplicates)


async def test_an_offset_walk_steps_by_the_rows_the_server_serves() -> None:
    """A server serving at most 7 rows a page, whatever ``limit`` asks, is walked 7 rows at
    a time until its total: a short page does not end a list whose total says more."""

    def capped(request: web.Request) -> web.Response:
        at = _int(request, "offset", 0)
        return json_response({"data": BIG[:30][at : at + 7], "total": 30})

    snapshot, paths = await _poll_one(capped, _definition(**OFFSET_TOTAL), page_concurrency=4)
    assert snapshot.error is None
    assert 30 == snapshot.aggregate.sessions
    assert [0, 7, 14, 21, 28] == sorted(int(p.rpartition("=")[2]) for p in paths)


async def test_an_offset_answer_without_its_total_ends_on_a_short_page() -> None:
    """``total`` is optional (the contract's paging): an offset answer without the total the
    definition reads is no error; until a page states one, a short page ends the walk, as
    offset paging without ``total`` does."""

    def handler(request: web.Request) -> web.Response:
        return json_response({"data": ROWS})

    snapshot, paths = await _poll_one(handler, _definition(**OFFSET_TOTAL))
    assert None is snapshot.error
    assert 7 == snapshot.aggregate.sessions
    assert 1 == len(paths)


async def test_has_next_saying_more_without_a_cursor_fails_as_schema() -> None:
    """A cursor walk whose ``has_next`` says there is more while the answer gives no next
    cursor fails (``schema``), naming the page, instead of ending the count short."""

    def handler(request: web.Request) -> web.Response:
        return json_response({"data": ROWS[:3], "next": None, "more": True})

    paging = {"style": "cursor", "next": "/next", "has_next": "/more"}
    snapshot, paths = await _poll_one(handler, _definition(rows="/data", paging=paging))
    assert "schema" == snapshot.error_reason.value
    assert "rows.page[1].next: expected a cursor while more says there is more, got none" == (
        snapshot.error
    )
    assert 1 == len(paths)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rows": "/items"}, "rows beside answers: give rows and paging inside each answer"),
        (
            {"answers": [{"rows": "/items", "paging": {"style": "page"}}]},
            "paging style page cannot go on from an answer of this shape: an answer is paged "
            "by style none, cursor, or offset with total",
        ),
        (
            {"answers": [{"rows": "/items", "paging": {"style": "offset"}}]},
            "paging style offset without total cannot go on from an answer of this shape",
        ),
        (
            {"answers": [{"rows": "/items", "reports": ["activity"]}]},
            "answers[0].reports: activity, but the definition reads no last_activity "
            "(fields.last_activity)",
        ),
        (
            {"answers": [{"rows": "/items"}, {"rows": "/items"}]},
            "answers[1].rows: '/items' is given twice",
        ),
        (
            {
                "answers": [
                    {"rows": "/items", "paging": {"style": "cursor", "next": "/n", "max_size": 5}}
                ]
            },
            "max_size caps the size sent in size_param: give size_param and size too",
        ),
    ],
)
def test_answers_and_max_size_are_validated(change: dict[str, Any], message: str) -> None:
    """``answers`` are given instead of ``rows`` and ``paging``; an answer is paged by a style
    that can go on from it; it reports only facts the fields read; no two answers share
    their rows' place; ``max_size`` caps a size that is sent: each a config error in plain
    words."""
    definition = {**TWO_SHAPES, **change}
    with pytest.raises(ValidationError, match=re.escape(message)):
        Definition.model_validate(definition)


def test_an_answers_problem_is_located(tmp_path: Path) -> None:
    """A problem inside ``answers`` is reported where it is written (file:line:column and
    the dotted key of the answer)."""
    path = tmp_path / "answers.yaml"
    path.write_text(
        "providers:\n  acme:\n    base_url: http://127.0.0.1:1\n    path: /v1/s\n"
        "    answers:\n      - rows: /items\n        paging: {style: page}\n"
        "    fields: {id: /id, status: /s, created: /c}\n"
        "targets:\n  - name: t\n    provider: acme\n    api_key: k\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    assert [
        f"{path}:6:9: providers.acme.answers[0]: paging style page cannot go on from an "
        "answer of this shape: an answer is paged by style none, cursor, or offset with total"
    ] == [str(p) for p in raised.value.problems]
