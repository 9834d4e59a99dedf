"""The engine at the edges of what an answer may hold: numbers beyond a float, values where
a struct was expected, header cursors in later answers, totals on some pages only,
``error_if_set`` values that say nothing, and the class cache across reloads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import msgspec
import orjson
import pytest
from aiohttp import web

from exporter.providers import engine, provider_for
from exporter.providers.definition import Definition
from exporter.upstream.errors import SchemaError
from exporter.upstream.fetch import Answer, PageFetcher
from tests.harness import NOW, invalid_example, invalid_rows, poll_all, scrape, settings_for
from tests.origin import json_response, origin_server

FIELDS = {"id": "/id", "status": "/state", "created": "/startedAt"}
STATUSES = {"starting": "pending", "running": "live"}
STARTED = "2025-12-31T23:00:00Z"


def _row(i: int, **extra: Any) -> dict[str, Any]:
    return {"id": f"s{i}", "state": "running", "startedAt": STARTED, **extra}


def _definition(**extra: Any) -> dict[str, Any]:
    return {"path": "/v1/list", "fields": FIELDS, "statuses": STATUSES, **extra}


def _raw(body: bytes, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=body, content_type="application/json", headers=headers)


async def _poll(
    handler: Callable[[web.Request], web.Response], definition: dict[str, Any], **target: Any
) -> tuple[Any, list[str]]:
    async with origin_server(handler) as origin:
        settings = settings_for(
            {"name": "t", "provider": "acme", "base_url": origin.url, **target},
            providers={"acme": definition},
        )
        store = await poll_all(settings, clock=lambda: NOW)
    return store, origin.paths()


# --- B2: a number beyond a float's range --------------------------------------------------


async def test_a_row_time_beyond_a_float_is_an_unreadable_field_not_a_crash() -> None:
    """A row whose ``created`` is 1e400 (no float holds it) is counted as an invalid field
    and kept with its time unknown; its neighbour is read; the poll succeeds."""
    body = (
        b'{"data":[{"id":"s0","state":"running","startedAt":1e400},'
        b'{"id":"s1","state":"running","startedAt":"' + STARTED.encode() + b'"}]}'
    )
    store, _ = await _poll(lambda r: _raw(body), _definition(rows="/data"))
    assert store.snapshots["t"].error is None
    assert 2 == store.snapshots["t"].aggregate.sessions
    assert {"created": 1} == invalid_rows(store, "t", clock=lambda: NOW)
    assert (
        "rows[0].startedAt: expected an ISO-8601 timestamp or a number, got Infinity"
        == invalid_example(store, "t")
    )


async def test_a_total_or_cursor_beyond_a_float_fails_as_schema() -> None:
    """A total or a body cursor of 1e400 fails the poll as ``schema`` naming the value,
    rather than crashing it."""
    offset = _definition(
        rows="/data", paging={"style": "offset", "size_param": "n", "size": 5, "total": "/total"}
    )
    body = b'{"data":[{"id":"s0","state":"running","startedAt":"' + STARTED.encode() + b'"}]'
    store, _ = await _poll(lambda r: _raw(body + b',"total":1e400}'), offset)
    assert ("schema", "response.total: expected a count, got float") == (
        store.snapshots["t"].error_reason.value,
        store.snapshots["t"].error,
    )
    cursor = _definition(rows="/data", paging={"style": "cursor", "next": "/next"})
    store, _ = await _poll(lambda r: _raw(body + b',"next":1e400}'), cursor)
    assert ("schema", "rows.page[1].next: expected a cursor string, got float") == (
        store.snapshots["t"].error_reason.value,
        store.snapshots["t"].error,
    )


async def test_a_listed_error_beyond_a_float_is_counted() -> None:
    """An errors array holding 1e400 is counted as one upstream error; the rows count."""
    body = (
        b'{"data":[{"id":"s0","state":"running","startedAt":"'
        + STARTED.encode()
        + b'"}],"errors":[1e400]}'
    )
    store, _ = await _poll(lambda r: _raw(body), _definition(rows="/data", errors="/errors"))
    exposition = scrape(store, clock=lambda: NOW)
    assert store.snapshots["t"].error is None
    assert 1 == exposition.get("sessions_exporter_upstream_errors_total", target="t")
    assert 1 == store.snapshots["t"].aggregate.sessions


# --- B1: a value where a struct was expected ------------------------------------------------


class _Answers:
    """A fetcher that answers every request with the same JSON document."""

    def __init__(self, document: Any) -> None:
        self.body = orjson.dumps(document)

    async def get_body(self, params: Any = None) -> bytes:
        return self.body

    async def get(self, params: Any = None) -> Answer:
        return Answer(self.body, {})

    def report_upstream_errors(self, messages: list[str], *, more: int = 0) -> None:
        pass


async def _walk_unchecked(valid: dict[str, Any], document: Any, **overlap: str) -> list[Any]:
    """The rows one walk reads with ``valid`` and then ``overlap`` set on it, past the
    validation that refuses such overlaps (what the engine must survive all the same)."""
    definition = Definition.model_validate(valid).model_copy(update=overlap)
    target = provider_for(
        settings_for({"name": "t", "provider": "agi", "api_key": "k"}).targets[0]
    ).target
    provider = engine.provider_class("unchecked", definition)(target)
    fetcher = cast(PageFetcher, _Answers(document))
    return [row async for page in provider.pages(fetcher) for row in page.rows]


async def test_error_if_set_below_a_value_read_whole_is_not_a_crash() -> None:
    """``error_if_set`` pointing below a value another pointer reads whole (a total of 3
    at /meta, the flag at /meta/error; or the flag inside the listed errors), which the
    validation refuses, still reads as not set when the engine meets it: the row is read,
    nothing crashes; an object there is looked into."""
    paging = {"style": "page", "size_param": "n", "size": 5, "total": "/meta"}
    at_total = _definition(rows="/data", paging=paging)
    rows = await _walk_unchecked(
        at_total, {"data": [_row(0)], "meta": 3}, error_if_set="/meta/error"
    )
    assert ["s0"] == [row.id for row in rows]
    listed = _definition(rows="/data", errors="/errors")
    rows = await _walk_unchecked(
        listed, {"data": [_row(0)], "errors": ["x"]}, error_if_set="/errors/0"
    )
    assert ["s0"] == [row.id for row in rows]
    with pytest.raises(SchemaError) as raised:
        await _walk_unchecked(
            at_total, {"data": [_row(0)], "meta": {"error": "quota"}}, error_if_set="/meta/error"
        )
    assert 'rows at page=1: an error in a 2xx answer, not a page: "quota"' == raised.value.message


def test_struct_and_attribute_walks_stop_at_a_value_that_is_no_struct() -> None:
    """The typed answer walks return missing below a number or a raw value, and look into
    an object decoded whole by its keys."""
    assert engine._MISSING is engine._struct_at(3, ("error",))
    assert engine._MISSING is engine._struct_at(msgspec.Raw(b'["x"]'), ("0",))
    assert "quota" == engine._struct_at({"error": "quota"}, ("error",))


# --- B3: a header cursor in a later answer --------------------------------------------------


async def test_a_header_cursor_of_the_second_answer_is_followed() -> None:
    """With ``answers``, a walk of the second answer's shape whose cursor is a header reads
    it: both pages are counted (before, the headers were never read and the walk stopped
    after the first page)."""

    def handler(request: web.Request) -> web.Response:
        if request.query.get("cursor") == "c2":
            return json_response({"items": [_row(1)]})
        return json_response({"items": [_row(0)]}, headers={"X-Next": "c2"})

    definition = _definition(
        answers=[
            {"rows": "/data"},
            {"rows": "/items", "paging": {"style": "cursor", "next": "header:X-Next"}},
        ]
    )
    store, paths = await _poll(handler, definition)
    assert None is store.snapshots["t"].error
    assert 2 == store.snapshots["t"].aggregate.sessions
    assert ["/v1/list", "/v1/list?cursor=c2"] == paths


# --- B4: a total on some pages only ---------------------------------------------------------

OFFSET_TOTAL = {
    "rows": "/data",
    "paging": {"style": "offset", "size_param": "limit", "size": 10, "total": "/total"},
}


async def test_an_offset_total_on_the_first_page_only_is_kept() -> None:
    """A total stated by the first page only holds for the pages after it: 12 rows in two
    pages, the second without a total, are counted (before: a schema error)."""
    rows = [_row(i) for i in range(12)]

    def handler(request: web.Request) -> web.Response:
        at = int(request.query["offset"])
        body: dict[str, Any] = {"data": rows[at : at + 10]}
        if at == 0:
            body["total"] = 12
        return json_response(body)

    store, paths = await _poll(handler, _definition(**OFFSET_TOTAL), page_concurrency=1)
    assert None is store.snapshots["t"].error
    assert 12 == store.snapshots["t"].aggregate.sessions
    assert ["/v1/list?limit=10&offset=0", "/v1/list?limit=10&offset=10"] == paths


async def test_an_offset_walk_without_any_total_ends_on_a_short_page() -> None:
    """No page states the total: the walk goes on while pages are full and ends on the
    first short one, as offset paging without a total does (25 rows, three requests)."""
    rows = [_row(i) for i in range(25)]

    def handler(request: web.Request) -> web.Response:
        at = int(request.query["offset"])
        return json_response({"data": rows[at : at + 10]})

    store, paths = await _poll(handler, _definition(**OFFSET_TOTAL), page_concurrency=1)
    assert None is store.snapshots["t"].error
    assert 25 == store.snapshots["t"].aggregate.sessions
    assert [f"/v1/list?limit=10&offset={at}" for at in (0, 10, 20)] == paths


async def test_an_offset_walk_without_any_total_ends_on_an_empty_page() -> None:
    """No total and exactly two full pages: the third, empty, page ends the walk."""
    rows = [_row(i) for i in range(20)]

    def handler(request: web.Request) -> web.Response:
        at = int(request.query["offset"])
        return json_response({"data": rows[at : at + 10]})

    store, paths = await _poll(handler, _definition(**OFFSET_TOTAL), page_concurrency=2)
    assert None is store.snapshots["t"].error
    assert 20 == store.snapshots["t"].aggregate.sessions
    assert [f"/v1/list?limit=10&offset={at}" for at in (0, 10, 20)] == sorted(
        paths, key=lambda p: int(p.rpartition("=")[2])
    )


# --- B5: an integer amount sent as 2.0 ------------------------------------------------------


async def test_an_integer_amount_with_a_point_reads_the_same_beside_an_invalid_row() -> None:
    """A deadline term ``integer: true`` reads an amount of ``2.0`` as 2 whether its chunk
    decodes typed or is read row by row beside an invalid row: the same deadline."""
    definition = _definition(
        rows="/data",
        deadline={"earliest": [{"time": "/startedAt", "plus": "/ttl", "integer": True}]},
    )
    alone = {"data": [_row(0, ttl=2.0)]}
    beside = {"data": [_row(0, ttl=2.0), _row(1, startedAt="x")]}
    deadlines = []
    for body in (alone, beside):
        store, _ = await _poll(lambda r, b=body: json_response(b), definition)  # type: ignore[misc]
        expo = scrape(store, clock=lambda: NOW)
        deadlines.append(expo.get("sessions_next_deadline_timestamp_seconds", target="t"))
    assert [1767222002.0, 1767222002.0] == deadlines


# --- B6: what error_if_set counts as set ----------------------------------------------------


async def test_error_if_set_ignores_empty_values_on_both_paths() -> None:
    """``error_if_set`` counts a value as set only when it is not null, false, "", {} or
    []: each of those lets the poll count its row, typed or read without types (the same
    answer over 1 MiB); 0 is set and fails it."""
    definition = _definition(rows="/data", error_if_set="/error")
    padding = [_row(i) for i in range(1, 12000)]
    empties: list[Any] = [None, False, "", {}, []]
    for empty in empties:
        for rows in ([_row(0)], [_row(0), *padding]):
            body = {"data": rows, "error": empty}
            store, _ = await _poll(lambda r, b=body: json_response(b), definition)  # type: ignore[misc]
            assert (None, len(rows)) == (
                store.snapshots["t"].error,
                store.snapshots["t"].aggregate.sessions,
            ), (empty, len(rows))
    store, _ = await _poll(lambda r: json_response({"data": [_row(0)], "error": 0}), definition)
    assert "schema" == store.snapshots["t"].error_reason.value


async def test_error_if_set_on_the_listed_errors_agrees_typed_and_untyped() -> None:
    """``error_if_set`` at the listed errors (refused by the validation, met by the engine
    all the same): a null array is not set whether the answer is decoded typed (small) or
    not (over 1 MiB)."""
    valid = _definition(rows="/data", errors="/errors")
    for rows in ([_row(0)], [_row(i) for i in range(12000)]):
        read = await _walk_unchecked(valid, {"data": rows, "errors": None}, error_if_set="/errors")
        assert len(rows) == len(read)


# --- B7: an error answer's place and quote --------------------------------------------------


async def test_an_error_answer_names_its_own_page_and_quotes_the_value() -> None:
    """An error answer in a cursor walk of the second answer's shape is named by that
    walk's page (not by the first answer's offset paging), and, the error reader finding
    nothing to quote, the value at ``error_if_set`` is quoted."""

    def handler(request: web.Request) -> web.Response:
        if request.query.get("cursor") == "c1":
            return json_response({"data": [], "err": ["quota"]})
        return json_response({"data": [_row(0)], "next": "c1"})

    definition = _definition(
        error_if_set="/err",
        answers=[
            {
                "rows": "/sessions",
                "paging": {"style": "offset", "size_param": "limit", "size": 1, "total": "/t"},
            },
            {"rows": "/data", "paging": {"style": "cursor", "next": "/next"}},
        ],
    )
    store, _ = await _poll(handler, definition)
    assert ("schema", 'rows page 2: an error in a 2xx answer, not a page: ["quota"]') == (
        store.snapshots["t"].error_reason.value,
        store.snapshots["t"].error,
    )


# --- leftovers ------------------------------------------------------------------------------


def test_reloading_the_same_definition_builds_no_new_class() -> None:
    """Equal definitions share one provider class: a definition parsed again a hundred
    times (a config reloaded) adds nothing to the class cache, and the cache is bounded."""
    raw = _definition(rows="/data", paging={"style": "cursor", "next": "/n"})
    first = engine.provider_class("reload-probe", Definition.model_validate(raw))
    size = len(engine._CLASSES)
    for _ in range(100):
        reloaded = Definition.model_validate(orjson.loads(orjson.dumps(raw)))
        again = engine.provider_class("reload-probe", reloaded)
        assert first is again
    assert size == len(engine._CLASSES)
    for i in range(engine.CLASSES_KEPT + 5):
        engine.provider_class(f"probe-{i}", Definition.model_validate(raw))
    assert engine.CLASSES_KEPT == len(engine._CLASSES)


def test_a_missing_rows_message_names_the_definitions_first_shape() -> None:
    """With two accepted shapes, an answer having neither is reported against the
    definition's first shape, whatever order the previous poll's answers left."""
    settings = settings_for(
        {"name": "t", "provider": "acme", "base_url": "https://acme.example"},
        providers={"acme": _definition(rows=["/data", "/items"])},
    )
    provider = provider_for(settings.targets[0])
    assert isinstance(provider, engine.DefinedProvider)
    provider._order = ("/items", "/data")  # as a previous poll of the second shape left it
    with pytest.raises(SchemaError) as caught:
        provider._read(Answer(orjson.dumps({"other": 1}), {}), 0)
    assert "response.data: expected an array, got nothing (the key is missing)" == (
        caught.value.message
    )
