"""User-defined providers driven over real sockets: each paging style, exact counts."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
from aiohttp import web

from exporter.core.records import Phase
from tests.harness import NOW, poll_all, settings_for
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
