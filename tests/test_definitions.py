"""The five providers shipped as definitions, against small in-test servers of their wire
formats (as their official SDKs send and read them): requests, filters, paging, phases,
deadlines and activity, with exact counts."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from pydantic import ValidationError

from exporter.config.settings import ConfigError, load_settings
from exporter.core.records import Phase
from exporter.polling.state import Store
from exporter.providers.catalog import BUILTIN
from exporter.providers.definition import Definition
from exporter.providers.engine import provider_class
from tests.harness import KEY, NOW, console_script, poll_all, settings_for
from tests.origin import Origin, json_response, origin_server

HOUR = "2025-12-31T23:00:00Z"
"""An hour before NOW."""
PAST = "2025-12-31T23:30:00Z"
"""Half an hour before NOW: a deadline already passed."""
LATER = "2026-01-01T01:00:00Z"
"""An hour after NOW."""


async def _poll(
    provider: str, handler: Callable[[web.Request], web.Response], **options: Any
) -> tuple[Store, Origin]:
    async with origin_server(handler) as origin:
        target = {"name": "t", "provider": provider, "base_url": origin.url, **options}
        store = await poll_all(settings_for(target), clock=lambda: NOW)
    return store, origin


def _counts(store: Store) -> dict[str, tuple[Phase, int]]:
    snapshot = store.snapshots["t"]
    assert snapshot.error is None
    assert snapshot.aggregate is not None
    return {s: (c.phase, c.count) for s, c in snapshot.aggregate.statuses.items()}


def _aggregate(store: Store) -> Any:
    aggregate = store.snapshots["t"].aggregate
    assert aggregate is not None
    return aggregate


def _paged(rows: list[dict[str, Any]], at: int, size: int) -> tuple[list[dict[str, Any]], bool]:
    return rows[at : at + size], at + size < len(rows)


# --- E2B ---------------------------------------------------------------------------------

E2B_ROWS = [
    {"sandboxID": f"e{i}", "state": state, "startedAt": HOUR, "endAt": end}
    for i, (state, end) in enumerate(
        [("running", PAST), ("running", LATER), ("paused", PAST)] + [("running", LATER)] * 150
    )
]


def _e2b(request: web.Request) -> web.Response:
    states = request.query.get("state", "running,paused").split(",")
    rows = [r for r in E2B_ROWS if r["state"] in states]
    at = int(request.query.get("nextToken", "0"))
    part, more = _paged(rows, at, int(request.query["limit"]))
    headers = {"X-Next-Token": str(at + len(part))} if more else {}
    return json_response(part, headers=headers)


async def test_e2b_lists_running_sandboxes_by_header_cursor() -> None:
    """E2B: X-API-Key, state=running (its only live state), a bare array a page of 100 at
    a time with the next token in X-Next-Token; endAt is the deadline of a running one."""
    store, origin = await _poll("e2b", _e2b)
    assert {"running": (Phase.LIVE, 152)} == _counts(store)
    assert [
        "/v2/sandboxes?state=running&limit=100",
        "/v2/sandboxes?state=running&limit=100&nextToken=100",
    ] == origin.paths()
    assert KEY == origin.seen[0].headers["X-API-Key"]
    assert "Authorization" not in origin.seen[0].headers
    assert 1 == _aggregate(store).overdue


async def test_e2b_counts_paused_sandboxes_when_asked_for_all() -> None:
    """E2B with only_active false: every state, paused in its own phase and never overdue."""
    store, origin = await _poll("e2b", _e2b, only_active=False)
    assert {"running": (Phase.LIVE, 152), "paused": (Phase.PAUSED, 1)} == _counts(store)
    assert "/v2/sandboxes?limit=100" == origin.paths()[0]
    assert 1 == _aggregate(store).overdue


# --- Browserbase -------------------------------------------------------------------------

BB_ROWS = [
    {"id": f"b{i}", "status": status, "createdAt": HOUR, "expiresAt": exp}
    for i, (status, exp) in enumerate(
        [
            ("RUNNING", PAST),
            ("RUNNING", LATER),
            ("PENDING", LATER),
            ("COMPLETED", PAST),
            ("ERROR", PAST),
            ("TIMED_OUT", PAST),
        ]
    )
]


def _browserbase(request: web.Request) -> web.Response:
    wanted = request.query.get("status")
    return json_response([r for r in BB_ROWS if wanted in (None, r["status"])])


async def test_browserbase_lists_each_active_status() -> None:
    """Browserbase: X-BB-API-Key, one listing per active status, upper-case on the wire."""
    store, origin = await _poll("browserbase", _browserbase)
    assert {"pending": (Phase.PENDING, 1), "running": (Phase.LIVE, 2)} == _counts(store)
    assert ["/v1/sessions?status=PENDING", "/v1/sessions?status=RUNNING"] == sorted(origin.paths())
    assert KEY == origin.seen[0].headers["X-BB-API-Key"]
    assert 1 == _aggregate(store).overdue


async def test_browserbase_counts_every_status_when_asked_for_all() -> None:
    """Browserbase with only_active false: one unfiltered listing, every status."""
    store, origin = await _poll("browserbase", _browserbase, only_active=False)
    assert {
        "pending": (Phase.PENDING, 1),
        "running": (Phase.LIVE, 2),
        "completed": (Phase.ENDED, 1),
        "timed_out": (Phase.ENDED, 1),
        "error": (Phase.FAILED, 1),
    } == _counts(store)
    assert ["/v1/sessions"] == origin.paths()


# --- Daytona -----------------------------------------------------------------------------


def _daytona_row(i: int, state: str, **extra: Any) -> dict[str, Any]:
    return {"id": f"d{i}", "state": state, "createdAt": HOUR, **extra}


DAYTONA_ROWS = [
    _daytona_row(0, "started", lastActivityAt=HOUR, autoStopInterval=15, autoPauseInterval=0),
    _daytona_row(1, "started", lastActivityAt=PAST, autoStopInterval=120),
    _daytona_row(2, "creating", autoDestroyAt=PAST),
    _daytona_row(3, "stopped", autoDestroyAt=PAST),
    _daytona_row(4, "started", lastActivityAt=HOUR, autoStopInterval=0, autoPauseInterval=0),
    _daytona_row(5, "destroyed"),
]


def _daytona(request: web.Request) -> web.Response:
    states = request.query.getall("states", [])
    rows = [r for r in DAYTONA_ROWS if not states or r["state"] in states]
    at = int(request.query.get("cursor", "0"))
    part, more = _paged(rows, at, 2)  # a server serving fewer than asked for
    # "eventually consistent": the last row of a page is served again on the next one
    nxt = str(at + len(part) - 1) if more else None
    return json_response({"items": part, "nextCursor": nxt})


async def test_daytona_repeats_states_and_reads_computed_deadlines() -> None:
    """Daytona: Bearer key, the organization header, states= repeated for the 13 active
    states, nextCursor paging; a row served twice is counted once; the deadline is the
    earliest of autoDestroyAt and, for started, lastActivityAt + the auto-stop/pause
    minutes above 0; lastActivityAt is the activity."""
    store, origin = await _poll("daytona", _daytona, organization_id="org-1")
    counts = {s: v for s, v in _counts(store).items() if v[1]}
    assert {"started": (Phase.LIVE, 3), "creating": (Phase.PENDING, 1)} == counts
    assert 13 == len(_counts(store))
    first = origin.seen[0]
    assert f"Bearer {KEY}" == first.headers["Authorization"]
    assert "org-1" == first.headers["X-Daytona-Organization-ID"]
    assert 13 == first.query.count("states=")
    assert "limit=200" in first.query
    aggregate = _aggregate(store)
    # d0: 23:00 + 15 min (past); d1: 23:30 + 120 min (later); d2: autoDestroyAt (past)
    assert 2 == aggregate.overdue
    assert NOW - 3600 == aggregate.oldest_activity
    assert 1 <= aggregate.duplicates


# --- Runloop -----------------------------------------------------------------------------

MS = int((NOW - 3600) * 1000)
RUNLOOP_ROWS = [
    {
        "id": "r0",
        "status": "running",
        "create_time_ms": MS,
        "launch_parameters": {"keep_alive_time_seconds": 1800},
    },
    {
        "id": "r1",
        "status": "running",
        "create_time_ms": MS,
        "launch_parameters": {"keep_alive_time_seconds": 7200},
    },
    {
        "id": "r2",
        "status": "running",
        "create_time_ms": MS,
        "launch_parameters": {"lifecycle": {"after_idle": {"idle_time_seconds": 60}}},
    },
    {"id": "r3", "status": "provisioning", "create_time_ms": MS, "launch_parameters": {}},
    {"id": "r4", "status": "suspended", "create_time_ms": MS, "launch_parameters": {}},
    {"id": "r5", "status": "shutdown", "create_time_ms": MS, "launch_parameters": {}},
]


def _runloop(request: web.Request) -> web.Response:
    wanted = request.query.get("status")
    rows = [r for r in RUNLOOP_ROWS if wanted in (None, r["status"])]
    after = request.query.get("starting_after")
    at = 0 if after is None else [r["id"] for r in rows].index(after) + 1
    part, more = _paged(rows, at, 2)
    return json_response({"devboxes": part, "has_more": more, "total_count": len(rows)})


async def test_runloop_lists_each_active_status_with_last_id_cursor() -> None:
    """Runloop: Bearer key, one listing per active status, starting_after = the last id
    while has_more; created in epoch ms; the deadline is created + keep_alive (3600 s when
    absent), none when an after_idle policy is set."""
    store, origin = await _poll("runloop", _runloop)
    counts = {s: v for s, v in _counts(store).items() if v[1]}
    assert {"running": (Phase.LIVE, 3), "provisioning": (Phase.PENDING, 1)} == counts
    assert 7 == len(_counts(store))
    running = sorted(p for p in origin.paths() if "status=running" in p)
    assert [
        "/v1/devboxes?status=running&limit=5000",
        "/v1/devboxes?status=running&limit=5000&starting_after=r1",
    ] == sorted(running)
    assert 8 == len(origin.seen)
    aggregate = _aggregate(store)
    assert 1 == aggregate.overdue  # r0 at created + 30 min; r1, r3 not yet; r2 none
    assert NOW - 1800 == aggregate.next_deadline
    schema = provider_class("runloop", BUILTIN["runloop"]).schema
    r1, r2, r3 = schema.typed(orjson.dumps(RUNLOOP_ROWS[1:4]))
    assert [NOW + 3600, None, NOW] == [
        None if r.deadline is None else r.deadline.timestamp() for r in (r1, r2, r3)
    ]


# --- Steel -------------------------------------------------------------------------------

STEEL_ROWS = [
    {"id": f"s{i}", "status": status, "createdAt": HOUR, "timeout": timeout}
    for i, (status, timeout) in enumerate(
        [("live", 1_800_000), ("live", 7_200_000), ("live", 7_200_000), ("released", 1)]
    )
]


def _steel(request: web.Request) -> web.Response:
    wanted = request.query.get("status")
    rows = [r for r in STEEL_ROWS if wanted in (None, r["status"])]
    after = request.query.get("cursorId")
    at = 0 if after is None else [r["id"] for r in rows].index(after) + 1
    part, more = _paged(rows, at, int(request.query["limit"]) // 50)
    nxt = part[-1]["id"] if more else None
    return json_response({"sessions": part, "nextCursor": nxt, "totalCount": len(rows)})


async def test_steel_lists_live_sessions_until_the_cursor_is_null() -> None:
    """Steel: steel-api-key, status=live, cursorId = the last id, stopping at a null
    nextCursor (one request fewer than the SDK's walk); the deadline is created + timeout ms."""
    store, origin = await _poll("steel", _steel)
    assert {"live": (Phase.LIVE, 3)} == _counts(store)
    assert [
        "/v1/sessions?status=live&limit=100",
        "/v1/sessions?status=live&limit=100&cursorId=s1",
    ] == origin.paths()
    assert KEY == origin.seen[0].headers["steel-api-key"]
    assert 1 == _aggregate(store).overdue


# --- rows that cannot be read ------------------------------------------------------------


async def test_an_unreadable_field_is_counted_under_the_definition_field() -> None:
    """A row with an unreadable time is still counted (that field unknown); a row without
    an id is left out; both counted under the definition's field names."""
    rows: list[Mapping[str, Any]] = [
        {"id": "s0", "status": "live", "createdAt": "yesterday", "timeout": 1000},
        {"status": "live", "createdAt": HOUR, "timeout": 1000},
        {"id": "s2", "status": "live", "createdAt": HOUR, "timeout": "soon"},
    ]

    def handler(request: web.Request) -> web.Response:
        return json_response({"sessions": rows, "nextCursor": None})

    store, _ = await _poll("steel", handler)
    assert {"live": (Phase.LIVE, 2)} == _counts(store)
    assert {"id": 1, "status": 0, "created": 1, "deadline": 1} == dict(_aggregate(store).invalid)


def test_the_computed_deadline_is_the_same_in_seconds_and_as_a_time() -> None:
    """A computed deadline read the aggregate's fast way (unix seconds, from the times it
    has already read) equals the one read as a datetime, for every term kind."""
    cases = {
        "runloop": RUNLOOP_ROWS,
        "daytona": DAYTONA_ROWS,
        "steel": STEEL_ROWS,
        "e2b": E2B_ROWS[:3],
    }
    for provider, rows in cases.items():
        schema = provider_class(provider, BUILTIN[provider]).schema
        for row in schema.typed(orjson.dumps(rows)):
            created = None if row.created is None else row.created.timestamp()
            activity = None if row.last_activity is None else row.last_activity.timestamp()
            fast = type(row).deadline_seconds(row, created, activity)  # type: ignore[attr-defined]
            slow = None if row.deadline is None else row.deadline.timestamp()
            assert slow == fast, (provider, row.id)


def test_a_defined_providers_own_key_header_is_refused_in_headers(tmp_path: Path) -> None:
    """``headers: {X-API-Key: ...}`` on an e2b target (E2B's key header) is a located config
    error, as Authorization is for the others: it would be dropped for the key's header."""
    path = tmp_path / "c.yaml"
    path.write_text(
        "targets:\n  - name: t\n    provider: e2b\n    api_key: k\n"
        "    headers: {x-api-key: other}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    assert [
        f"{path}:2:5: targets[0]: headers: header 'x-api-key' carries the provider's key: set "
        "it with api_key, api_key_env or api_key_file, never in headers"
    ] == [str(p) for p in raised.value.problems]


# --- a definition's problems: all of them, each once, at its key -----------------------------

BASE: dict[str, Any] = {
    "path": "/s",
    "rows": "/data",
    "fields": {"id": "/id", "created": "/c", "status": "/st"},
    "statuses": {"run": "live"},
}
"""A valid definition the cases below change."""


def _problems(definition: Mapping[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """Each problem of ``definition``: its place and its message, in order."""
    with pytest.raises(ValidationError) as raised:
        Definition.model_validate(definition)
    return [(e["loc"], str(e["msg"]).removeprefix("Value error, ")) for e in raised.value.errors()]


SEVERAL = """\
targets:
  - name: t
    provider: x
    api_key: k
    base_url: https://x.example
providers:
  x:
    path: /s
    rows: /data
    headers: {Authorization: "x"}
    status_filter: {param: st, statuses: [nope]}
    error_if_set: /data
    paging: {style: page, has_next: /more, size_param: n, size: 5}
    options:
      limit: {query: n}
    fields: {id: /id, created: /c, status: /st}
    statuses: {run: live}
"""


def test_check_config_lists_every_problem_of_a_definition(tmp_path: Path) -> None:
    """check-config over a definition with four problems of the definition as a whole
    prints all four, each located at its key where it has one, and exits 2, no traceback."""
    path = tmp_path / "c.yaml"
    path.write_text(SEVERAL, encoding="utf-8")
    result = subprocess.run(
        [console_script(), "check-config", "--config", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert 2 == result.returncode
    assert [
        f"{path}:8:5: providers.x: status_filter.statuses: 'nope' not among statuses",
        f"{path}:8:5: providers.x: headers: 'Authorization' is the header the key is sent in "
        "(auth.header); a definition never holds a key",
        f"{path}:12:19: providers.x.error_if_set: /data overlaps rows (/data): give each its "
        "own place",
        f"{path}:15:22: providers.x.options.limit.query: 'n' is already sent by the definition "
        "(paging.size_param): give the option a parameter of its own",
    ] == result.stderr.splitlines()
    assert "Traceback" not in result.stderr


def test_every_model_level_problem_is_reported_not_only_the_first() -> None:
    """Problems of different checks (answers, status, filter, headers) come out together,
    in the order the checks run, instead of the first one alone."""
    definition = {
        **{k: v for k, v in BASE.items() if k not in ("rows", "fields")},
        "fields": {"id": "/a/id", "created": "/c", "status": "/st"},
        "derived_status": {"constant": "run"},
        "answers": [
            {"rows": "/items", "paging": {"style": "cursor", "next": "last_id"}},
            {"rows": "/items", "reports": ["leases"]},
        ],
        "status_filter": {"param": "st", "statuses": ["gone"]},
        "headers": {"User-Agent": "x", "X-A": "1", "x-a": "2"},
    }
    assert [
        ((), "answers[1].rows: '/items' is given twice"),
        ((), "answers[1].reports: leases, but the definition reads no leases (fields.leases)"),
        ((), "give the status as fields.status or as derived_status, not both"),
        ((), "next: last_id needs fields.id to be a top-level key (/id)"),
        ((), "status_filter.statuses: 'gone' not among statuses"),
        (
            (),
            "headers: 'User-Agent' is set by the exporter or its HTTP client, never by a "
            "definition",
        ),
        ((), "headers: 'x-a' is given twice (as 'X-A')"),
    ] == _problems(definition)


def test_answers_are_checked_once_at_the_keys_written() -> None:
    """With ``answers``, a bad answer is reported once, under ``answers[i]``: never again
    under the ``rows`` and ``paging`` the model fills in from it (keys the user never wrote)."""
    definition = {
        **{k: v for k, v in BASE.items() if k != "rows"},
        "answers": [
            {"rows": "data", "paging": {"style": "page", "strict_has_next": True}},
            {"rows": "/items"},
        ],
    }
    assert [
        (
            ("answers", 0, "rows"),
            "'data' is not a JSON pointer (RFC 6901): write '/data' for a top-level key, or "
            '"" for the whole value',
        ),
        (("answers", 0, "paging"), "strict_has_next needs paging style page with has_next"),
    ] == _problems(definition)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"rows": "/data/items", "error_if_set": "/data"},
            [(("error_if_set",), "/data overlaps rows (/data/items): give each its own place")],
        ),
        (
            {"rows": "/data", "error_if_set": "/data"},
            [(("error_if_set",), "/data overlaps rows (/data): give each its own place")],
        ),
        (
            {"rows": "/data/items", "paging": {"style": "offset", "total": "/data"}},
            [(("paging", "total"), "/data overlaps rows (/data/items): give each its own place")],
        ),
        (
            {"paging": {"style": "page", "total": "/meta", "has_next": "/meta/more"}},
            [
                (
                    ("paging", "has_next"),
                    "/meta/more overlaps paging.total (/meta): give each its own place",
                )
            ],
        ),
        (
            {"paging": {"style": "offset", "total": "/meta"}, "error_if_set": "/meta/error"},
            [
                (
                    ("error_if_set",),
                    "/meta/error overlaps paging.total (/meta): give each its own place",
                )
            ],
        ),
        (
            {"errors": "/errors", "error_if_set": "/errors/0"},
            [(("error_if_set",), "/errors/0 overlaps errors (/errors): give each its own place")],
        ),
        (
            {"errors": "/e", "error_if_set": "/e"},
            [(("error_if_set",), "/e overlaps errors (/e): give each its own place")],
        ),
        (
            {"rows": ["/data", "/items"], "errors": "/items/bad"},
            [(("errors",), "/items/bad overlaps rows[1] (/items): give each its own place")],
        ),
        (
            {
                "rows": None,
                "answers": [
                    {"rows": "/data", "paging": {"style": "cursor", "next": "/next"}},
                    {"rows": "/items", "paging": {"style": "cursor", "next": "/errors"}},
                ],
                "errors": "/errors",
            },
            [
                (
                    ("errors",),
                    "/errors overlaps answers[1].paging.next (/errors): give each its own place",
                )
            ],
        ),
    ],
)
def test_the_places_an_answer_is_read_at_are_apart(
    change: dict[str, Any], expected: list[tuple[tuple[str | int, ...], str]]
) -> None:
    """Rows, every answer's paging values (not only the first answer's), ``errors`` and
    ``error_if_set`` may not be equal or nested: one plain-word problem, at the later key,
    naming the other (each overlap once, though several rows shapes share the paging)."""
    definition = {k: v for k, v in {**BASE, **change}.items() if v is not None}
    assert expected == _problems(definition)


@pytest.mark.parametrize(
    "change",
    [
        {"rows": ["", "/data"], "paging": {"style": "offset", "total": "/total"}},
        {"rows": ["/data", "/data/items"]},
        {
            "rows": None,
            "answers": [
                {"rows": "/data", "paging": {"style": "cursor", "next": "/next"}},
                {"rows": "/next", "paging": {"style": "none"}},
                {"rows": "", "paging": {"style": "none"}},
            ],
            "errors": "/errors",
            "error_if_set": "/detail",
        },
        {
            "rows": None,
            "answers": [
                {"rows": "/a", "paging": {"style": "cursor", "next": "/n", "has_next": "/m"}},
                {"rows": "/b", "paging": {"style": "cursor", "next": "/n", "has_next": "/m"}},
            ],
        },
        {"paging": {"style": "page", "total": "/meta/total", "has_next": "/meta/more"}},
        {"paging": {"style": "cursor", "next": "/page/next"}, "error_if_set": "/page/error"},
    ],
)
def test_a_definition_that_validates_builds_its_provider(change: dict[str, Any]) -> None:
    """Definitions at the edges of the overlap rule (a bare-array shape beside paging
    values, nested rows shapes, answers sharing a paging place, sibling pointers under one
    object) validate, and the engine builds their provider without an exception."""
    definition = Definition.model_validate(
        {k: v for k, v in {**BASE, **change}.items() if v is not None}
    )
    assert provider_class("edge", definition).__name__


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"paging": {"style": "cursor", "next": "/next"}, "options": {"c": {"query": "cursor"}}},
            [
                (
                    ("options", "c", "query"),
                    "'cursor' is already sent by the definition (paging.cursor_param): give the "
                    "option a parameter of its own",
                )
            ],
        ),
        (
            {
                "paging": {"style": "offset", "offset_param": "skip"},
                "options": {"s": {"query": "skip"}},
            },
            [
                (
                    ("options", "s", "query"),
                    "'skip' is already sent by the definition (paging.offset_param): give the "
                    "option a parameter of its own",
                )
            ],
        ),
        (
            {"paging": {"style": "page"}, "options": {"p": {"query": "page"}}},
            [
                (
                    ("options", "p", "query"),
                    "'page' is already sent by the definition (paging.page_param): give the "
                    "option a parameter of its own",
                )
            ],
        ),
        (
            {"status_filter": {"param": "state"}, "options": {"s": {"query": "state"}}},
            [
                (
                    ("options", "s", "query"),
                    "'state' is already sent by the definition (status_filter.param): give the "
                    "option a parameter of its own",
                )
            ],
        ),
        (
            {"query": {"v": "2"}, "options": {"a": {"query": "v"}, "b": {"query": "v"}}},
            [
                (
                    ("options", "a", "query"),
                    "'v' is already sent by the definition (query.v): give the option a "
                    "parameter of its own",
                ),
                (
                    ("options", "b", "query"),
                    "'v' is already sent by the definition (query.v): give the option a "
                    "parameter of its own",
                ),
            ],
        ),
        (
            {"options": {"a": {"query": "x"}, "b": {"query": "x"}}},
            [
                (
                    ("options", "b", "query"),
                    "'x' is already sent by the definition (options.a.query): give the option a "
                    "parameter of its own",
                )
            ],
        ),
        (
            {"auth": {"header": "X-Key"}, "options": {"k": {"header": "x-key"}}},
            [
                (
                    ("options", "k", "header"),
                    "'x-key' is the header the key is sent in (auth.header); an option never "
                    "replaces it",
                )
            ],
        ),
        (
            {"options": {"h": {"header": "Host"}}},
            [
                (
                    ("options", "h", "header"),
                    "'Host' is set by the exporter or its HTTP client, never by an option",
                )
            ],
        ),
        (
            {"options": {"a": {"header": "X-Org"}, "b": {"header": "x-org"}}},
            [(("options", "b", "header"), "'x-org' is also the header of options.a.header")],
        ),
        (
            {"headers": {"X-Org": "o"}, "options": {"a": {"header": "x-org"}}},
            [((), "headers: 'X-Org' is also the header of an option")],
        ),
    ],
)
def test_an_option_is_sent_in_a_place_of_its_own(
    change: dict[str, Any], expected: list[tuple[tuple[str | int, ...], str]]
) -> None:
    """An option's query parameter is none the definition sends (paging's size, cursor,
    offset or page parameter, the status filter, a fixed query key, another option's), and
    its header neither the key's, nor one the exporter sets, nor another option's or a
    constant header: each a plain-word problem at the option's key."""
    assert expected == _problems({**BASE, **change})


def test_an_answers_paging_parameters_count_as_sent() -> None:
    """With ``answers``, the parameters of every answer's paging are the definition's: an
    option may not repeat the second answer's cursor parameter."""
    definition = {
        **{k: v for k, v in BASE.items() if k != "rows"},
        "answers": [
            {
                "rows": "/a",
                "paging": {"style": "offset", "total": "/t", "size_param": "n", "size": 5},
            },
            {"rows": "/b", "paging": {"style": "cursor", "next": "/n", "cursor_param": "after"}},
        ],
        "options": {"x": {"query": "after"}},
    }
    assert [
        (
            ("options", "x", "query"),
            "'after' is already sent by the definition (answers[1].paging.cursor_param): give "
            "the option a parameter of its own",
        )
    ] == _problems(definition)
