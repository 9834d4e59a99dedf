"""Trigger.dev provider: real pollers against the simulator over loopback.

The simulator filters by status, type, tags, task identifier and creation period and
pages with cursors exactly as the spec says, so the exporter's queries are checked both
by what they count and by the query strings the simulator logged.
Timestamps are whole seconds plus binary fractions so every expected value is exact.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from multidict import MultiMapping
from pydantic import ValidationError

from exporter.simulators import Fault, Simulator, TriggerSimulator, iso, trigger_row
from tests.conftest import Serve
from tests.harness import (
    KEY,
    Exposition,
    invalid_example,
    invalid_rows,
    poll_all,
    scrape,
    settings_for,
)

DAY = 86_400.0
NAME = "trigger-1"
PERIOD = "filter[createdAt][period]"


def now() -> float:
    """The current unix time in whole seconds, the base of every dataset."""
    return float(int(time.time()))


def target(base: str, **options: Any) -> dict[str, Any]:
    """A Trigger.dev target for the simulator at ``base``."""
    return {"name": NAME, "provider": "trigger", "base_url": base, **options}


async def poll(served: Serve, sim: Simulator, **options: Any) -> Exposition:
    """Poll one Trigger.dev target with ``options`` once and scrape the result."""
    settings = settings_for(target(await served(sim), **options))
    return scrape(await poll_all(settings))


def sessions(exp: Exposition) -> dict[tuple[str, str], float]:
    """The target's ``sessions`` series as (status, phase) -> value."""
    return {
        (dict(labels)["status"], dict(labels)["phase"]): value
        for labels, value in exp.select("sessions", target=NAME).items()
    }


def queries(sim: Simulator) -> list[dict[str, str]]:
    """Every logged request's query, as a plain dict, in order."""
    return [dict(r.query) for r in sim.requests]


def walk_of(sim: Simulator, status: str) -> list[dict[str, str]]:
    """The logged queries of one status walk, in order."""
    return [q for q in queries(sim) if q.get("filter[status]") == status]


def served_row(row: dict[str, Any]) -> dict[str, Any]:
    """A ``trigger_row`` as the API serves it (without the simulator's internal status)."""
    return {k: v for k, v in row.items() if k != "status"}


async def test_more_than_ten_pages_of_active_sessions(served: Serve) -> None:
    """1050 active sessions are walked over 11 cursor pages of 100 and all counted.

    Each page after the first passes the previous page's ``pagination.next`` as
    ``page[after]``; deadlines, creation and activity times are exact.
    """
    t = now()
    active = [
        trigger_row(
            f"session_a{i:04d}",
            "ACTIVE",
            t - 60 * i - 0.5,
            t - 60 * i + 30,
            t - DAY - i if i < 7 else t + DAY + i,
        )
        for i in range(1050)
    ]
    ended = [
        trigger_row("session_c1", "CLOSED", t - 3600, t - 3000),
        trigger_row("session_c2", "CLOSED", t - 3700, t - 3100),
        trigger_row("session_c3", "CLOSED", t - 3800 + 0.125, t - 3200),
        trigger_row("session_e1", "EXPIRED", t - 7200, t - 7000, t - 100),
        trigger_row("session_e2", "EXPIRED", t - 7300 + 0.25, t - 7100, t - 200),
    ]
    sim = TriggerSimulator(api_key=KEY, sessions=active + ended)
    exp = await poll(served, sim)

    assert {("active", "live"): 1050, ("closed", "ended"): 3, ("expired", "ended"): 2} == sessions(
        exp
    )
    assert {
        "active": t - 60 * 1049 - 0.5,
        "closed": t - 3800 + 0.125,
        "expired": t - 7300 + 0.25,
    } == exp.by("sessions_oldest_created_timestamp_seconds", "status", target=NAME)
    assert 7 == exp.get("sessions_overdue", target=NAME)
    assert t - DAY - 6 == exp.get("sessions_next_deadline_timestamp_seconds", target=NAME)
    assert t - 60 * 1049 + 30 == exp.get("sessions_oldest_activity_timestamp_seconds", target=NAME)
    assert 13 == exp.get("sessions_exporter_pages_fetched_total", target=NAME)

    walk = walk_of(sim, "ACTIVE")
    assert 11 == len(walk)
    assert {"100"} == {q["page[size]"] for q in walk}
    expected_cursors = [None] + [f"session_a{100 * n - 1:04d}" for n in range(1, 11)]
    assert expected_cursors == [q.get("page[after]") for q in walk]


async def test_three_statuses_window_and_exact_metrics(served: Serve) -> None:
    """Active is counted whole; closed and expired only within ``ended_window`` (1d default).

    Exactly three queries are made, each with only the parameters it needs; ended
    sessions' past deadlines and old activity do not count as overdue or activity.
    """
    t = now()
    sim = TriggerSimulator(
        api_key=KEY,
        sessions=[
            trigger_row(
                "session_a1",
                "ACTIVE",
                iso(t - 3 * DAY + 0.125, fraction=3),
                iso(t - 600 + 0.015625, fraction=6, zulu=False),
                iso(t - DAY, fraction=0, zulu=False),
            ),
            trigger_row(
                "session_a2",
                "ACTIVE",
                iso(t - 1800, fraction=0),
                iso(t - 900 + 0.25, fraction=3, zulu=False),
                None,
            ),
            trigger_row(
                "session_a3",
                "ACTIVE",
                iso(t - 60 + 0.5, fraction=6),
                iso(t - 30, fraction=0, zulu=False),
                iso(t + DAY + 0.5, fraction=3),
            ),
            trigger_row(
                "session_c1",
                "CLOSED",
                iso(t - 3600 + 0.75, fraction=6, zulu=False),
                iso(t - 3500, fraction=3),
                iso(t - 2 * DAY, fraction=0),
            ),
            trigger_row("session_c_old", "CLOSED", t - 2 * DAY, t - 2 * DAY + 60),
            trigger_row(
                "session_e1",
                "EXPIRED",
                iso(t - 7200 + 0.125, fraction=3, zulu=False),
                iso(t - 7100, fraction=0),
                iso(t - 3 * DAY, fraction=6),
            ),
            trigger_row("session_e2", "EXPIRED", iso(t - 1000, fraction=0), t - 900),
            trigger_row("session_e_old", "EXPIRED", t - 3 * DAY, t - 3 * DAY + 60),
        ],
    )
    exp = await poll(served, sim)

    assert {("active", "live"): 3, ("closed", "ended"): 1, ("expired", "ended"): 2} == sessions(exp)
    assert {
        "active": t - 3 * DAY + 0.125,
        "closed": t - 3600 + 0.75,
        "expired": t - 7200 + 0.125,
    } == exp.by("sessions_oldest_created_timestamp_seconds", "status", target=NAME)
    assert 1 == exp.get("sessions_overdue", target=NAME)
    assert t - DAY == exp.get("sessions_next_deadline_timestamp_seconds", target=NAME)
    assert t - 900 + 0.25 == exp.get("sessions_oldest_activity_timestamp_seconds", target=NAME)
    assert 1 == exp.get("sessions_target_up", target=NAME, provider="trigger")
    for name in ("sessions_connection_leases", "sessions_unleased", "sessions_executions"):
        assert exp.get(name, target=NAME) is None, name

    assert [
        {"filter[status]": "ACTIVE", "page[size]": "100"},
        {"filter[status]": "CLOSED", "page[size]": "100", PERIOD: "1d"},
        {"filter[status]": "EXPIRED", "page[size]": "100", PERIOD: "1d"},
    ] == queries(sim)
    assert {("/api/v1/sessions", True)} == {(r.path, r.authorized) for r in sim.requests}


async def test_statuses_are_zero_when_empty(served: Serve) -> None:
    """With no session, all three counted statuses are exported as 0, without timestamps."""
    exp = await poll(served, TriggerSimulator(api_key=KEY))

    assert {("active", "live"): 0, ("closed", "ended"): 0, ("expired", "ended"): 0} == sessions(exp)
    assert {} == exp.by("sessions_oldest_created_timestamp_seconds", "status", target=NAME)
    assert 0 == exp.get("sessions_overdue", target=NAME)
    assert exp.get("sessions_next_deadline_timestamp_seconds", target=NAME) is None
    assert exp.get("sessions_oldest_activity_timestamp_seconds", target=NAME) is None


async def test_ended_window_zero_makes_one_query_series_for_active_only(served: Serve) -> None:
    """``ended_window: 0`` walks ``ACTIVE`` alone (no period) and exports only ``active``."""
    t = now()
    sim = TriggerSimulator(
        api_key=KEY,
        sessions=[trigger_row(f"session_a{i:03d}", "ACTIVE", t - i, t - i) for i in range(150)]
        + [
            trigger_row("session_c1", "CLOSED", t - 60, t - 30),
            trigger_row("session_e1", "EXPIRED", t - 60, t - 30),
        ],
    )
    exp = await poll(served, sim, ended_window=0)

    assert {("active", "live"): 150} == sessions(exp)
    assert {"active": t - 149} == exp.by(
        "sessions_oldest_created_timestamp_seconds", "status", target=NAME
    )
    assert [
        {"filter[status]": "ACTIVE", "page[size]": "100"},
        {"filter[status]": "ACTIVE", "page[size]": "100", "page[after]": "session_a099"},
    ] == queries(sim)


@pytest.mark.parametrize(
    ("window", "sent"),
    [
        ("1d", "1d"),
        (86_400, "1d"),
        (172_800, "2d"),
        (7200, "2h"),
        ("2h", "2h"),
        (1800, "30m"),
        ("30m", "30m"),
        (90, "90s"),
        ("1m30s", "90s"),
        ("1h30m", "90m"),
        ("1w", "7d"),
    ],
)
async def test_window_is_sent_in_its_largest_whole_unit(
    served: Serve, window: str | int, sent: str
) -> None:
    """``ended_window`` goes out as ``filter[createdAt][period]`` in its largest whole unit."""
    sim = TriggerSimulator(api_key=KEY)
    exp = await poll(served, sim, ended_window=window)

    assert 1 == exp.get("sessions_target_up", target=NAME)
    assert [None, sent, sent] == [q.get(PERIOD) for q in queries(sim)]


@pytest.mark.parametrize("window", ["1500ms", 0.5, "-1d"])
def test_window_must_be_whole_non_negative_seconds(window: str | float) -> None:
    """A window the API's period cannot express is a config error naming ``ended_window``."""
    with pytest.raises(ValidationError, match="ended_window"):
        settings_for(target("http://127.0.0.1:1", ended_window=window))


async def test_filters_are_sent_comma_joined_on_every_query(served: Serve) -> None:
    """Configured ``type``/``tags``/``task_identifier`` narrow every one of the three queries."""
    t = now()
    sim = TriggerSimulator(
        api_key=KEY,
        sessions=[
            trigger_row("session_1", "ACTIVE", t - 10, t - 5, type="chat.agent", tags=["team:a"]),
            trigger_row("session_2", "ACTIVE", t - 20, t - 5, type="voice", tags=["team:b"]),
            trigger_row("session_3", "ACTIVE", t - 30, t - 5, type="other", tags=["team:a"]),
            trigger_row("session_4", "ACTIVE", t - 40, t - 5, type="voice", tags=["team:c"]),
            trigger_row(
                "session_5",
                "ACTIVE",
                t - 50,
                t - 5,
                type="voice",
                tags=["team:b"],
                task_identifier="other-task",
            ),
            trigger_row("session_6", "CLOSED", t - 60, t - 5, type="voice", tags=["team:a"]),
            trigger_row("session_7", "EXPIRED", t - 70, t - 5, type="other", tags=["team:a"]),
        ],
    )
    exp = await poll(
        served,
        sim,
        type=["chat.agent", "voice"],
        tags=["team:a", "team:b"],
        task_identifier=["my-chat"],
        ended_window="12h",
    )

    assert {("active", "live"): 2, ("closed", "ended"): 1, ("expired", "ended"): 0} == sessions(exp)
    filters = {
        "filter[type]": "chat.agent,voice",
        "filter[tags]": "team:a,team:b",
        "filter[taskIdentifier]": "my-chat",
        "page[size]": "100",
    }
    assert [
        {**filters, "filter[status]": "ACTIVE"},
        {**filters, "filter[status]": "CLOSED", PERIOD: "12h"},
        {**filters, "filter[status]": "EXPIRED", PERIOD: "12h"},
    ] == queries(sim)


async def test_only_configured_filters_are_sent(served: Serve) -> None:
    """A filter left empty is not sent at all; a configured one is, on every query."""
    sim = TriggerSimulator(api_key=KEY)
    await poll(served, sim, tags=["team:a"], type=[])

    assert [{"filter[tags]": "team:a"}] * 3 == [
        {
            k: v
            for k, v in q.items()
            if k in {"filter[type]", "filter[tags]", "filter[taskIdentifier]"}
        }
        for q in queries(sim)
    ]


async def test_every_request_sends_the_sdks_api_version(served: Serve) -> None:
    """``x-trigger-api-version: 2025-07-16`` goes with every query, as the SDK sends it;
    without ``branch`` no ``x-trigger-branch`` is sent."""
    sim = TriggerSimulator(api_key=KEY)
    await poll(served, sim)

    assert [("2025-07-16", None)] * 3 == [
        (r.headers.get("x-trigger-api-version"), r.headers.get("x-trigger-branch"))
        for r in sim.requests
    ]


async def test_branch_is_sent_as_x_trigger_branch(served: Serve) -> None:
    """The ``branch`` option (stripped) is sent as ``x-trigger-branch`` on every query."""
    sim = TriggerSimulator(api_key=KEY)
    await poll(served, sim, branch=" feature-x ")

    assert ["feature-x"] * 3 == [r.headers.get("x-trigger-branch") for r in sim.requests]


@pytest.mark.parametrize("bad", ["", "two\nlines"])
def test_branch_must_be_one_non_empty_line(bad: str) -> None:
    """A branch that cannot be a header value is a config error."""
    with pytest.raises(ValidationError, match="branch"):
        settings_for(target("http://127.0.0.1:1", branch=bad))


@pytest.mark.parametrize("bad", ["", "a,b"])
def test_filter_values_may_not_be_empty_or_hold_commas(bad: str) -> None:
    """A filter value the comma-joined query could not carry is a config error."""
    with pytest.raises(ValidationError, match="tags"):
        settings_for(target("http://127.0.0.1:1", tags=["ok", bad]))


async def test_cursor_of_a_vanished_session_gives_http_4xx_with_the_details(
    served: Serve,
) -> None:
    """A 400 with ``details`` fails the poll as ``http_4xx``, the detail message in ``error``.

    The session used as the cursor is deleted between pages, so the simulator answers
    the next page with its ``Session not found`` detail (the ACTIVE listing alone, so that
    the second request is its second page).
    """
    t = now()
    sim = TriggerSimulator(
        api_key=KEY,
        sessions=[trigger_row(f"session_{i:03d}", "ACTIVE", t - i, t - i) for i in range(150)],
    )

    def vanish(sim: Simulator, index: int) -> None:
        if index == 1:
            cursor = sim.requests[-1].query["page[after]"]
            sim.sessions = [row for row in sim.sessions if row["id"] != cursor]

    sim.on_request = vanish
    settings = settings_for(target(await served(sim), ended_window="0"))
    store = await poll_all(settings)
    exp = scrape(store)

    assert 0 == exp.get("sessions_target_up", target=NAME)
    assert 1 == exp.get("sessions_exporter_poll_errors_total", target=NAME, reason="http_4xx")
    assert 1 == exp.get("sessions_exporter_api_requests_total", target=NAME, code="200")
    assert 1 == exp.get("sessions_exporter_api_requests_total", target=NAME, code="400")
    assert "HTTP 400: Query Error: Session not found: session_099" == store.snapshots[NAME].error


async def test_400_lists_every_detail_message(served: Serve) -> None:
    """Every ``details[].message`` of a 400 ends up in the snapshot's ``error``."""
    body = {
        "error": "Query Error",
        "details": [
            {"code": "custom", "message": "Invalid status values: FOOBAR", "path": ["x"]},
            {"code": "custom", "message": "Invalid period: 1y", "path": ["y"]},
        ],
    }
    sim = TriggerSimulator(api_key=KEY)
    sim.fault = Fault(status=400, body=orjson.dumps(body))
    store = await poll_all(settings_for(target(await served(sim))))

    snapshot = store.snapshots[NAME]
    assert not snapshot.up
    assert snapshot.error is not None
    assert "Invalid status values: FOOBAR" in snapshot.error
    assert "Invalid period: 1y" in snapshot.error
    assert 1 == scrape(store).get(
        "sessions_exporter_poll_errors_total", target=NAME, reason="http_4xx"
    )


class CyclingTrigger(TriggerSimulator):
    """A misbehaving server whose cursors cycle: (start) -> a -> b -> a -> ..."""

    def payload(self, query: MultiMapping[str]) -> Any:
        after = query.get("page[after]")
        following = {None: "session_a", "session_a": "session_b", "session_b": "session_a"}
        t = now()
        row = served_row(trigger_row(f"session_row_{after}", "ACTIVE", t - 1, t - 1))
        return {"data": [row], "pagination": {"next": following[after]}}


async def test_cycling_cursor_fails_instead_of_looping(served: Serve) -> None:
    """A ``pagination.next`` already followed in the walk stops the poll as ``schema``."""
    sim = CyclingTrigger(api_key=KEY)
    store = await poll_all(settings_for(target(await served(sim), ended_window=0)))
    exp = scrape(store)

    assert [None, "session_a", "session_b"] == [q.get("page[after]") for q in queries(sim)]
    assert 0 == exp.get("sessions_target_up", target=NAME)
    assert 1 == exp.get("sessions_exporter_poll_errors_total", target=NAME, reason="schema")
    error = store.snapshots[NAME].error
    assert error is not None
    assert error.startswith("ACTIVE.page[3].pagination.next: cursor 'session_a'")


async def test_self_repeating_cursor_fails_after_two_requests(served: Serve) -> None:
    """A server answering the same page and cursor forever is caught on the second page
    (of the ACTIVE listing alone)."""
    t = now()
    page = {
        "data": [served_row(trigger_row("session_x", "ACTIVE", t - 1, t - 1))],
        "pagination": {"next": "session_x"},
    }
    sim = TriggerSimulator(api_key=KEY)
    sim.fault = Fault(body=orjson.dumps(page))
    store = await poll_all(settings_for(target(await served(sim), ended_window="0")))

    assert 2 == len(sim.requests)
    snapshot = store.snapshots[NAME]
    assert not snapshot.up
    assert snapshot.error is not None
    assert snapshot.error.startswith("ACTIVE.page[2].pagination.next: cursor 'session_x'")


async def test_max_pages_bounds_all_walks_together(served: Serve) -> None:
    """``max_pages`` stops a poll whose walks need more pages, as ``too_many_pages``: the three
    listings run side by side and share the budget (ACTIVE needs three pages, the ended ones
    one each: the fifth request is never sent)."""
    t = now()
    sim = TriggerSimulator(
        api_key=KEY,
        sessions=[trigger_row(f"session_{i:03d}", "ACTIVE", t - i, t - i) for i in range(250)],
    )
    store = await poll_all(settings_for(target(await served(sim), max_pages=4)))
    exp = scrape(store)

    assert 0 == exp.get("sessions_target_up", target=NAME)
    assert 1 == exp.get("sessions_exporter_poll_errors_total", target=NAME, reason="too_many_pages")
    assert ["ACTIVE", "ACTIVE", "CLOSED", "EXPIRED"] == sorted(
        q["filter[status]"] for q in queries(sim)
    )


async def test_session_closing_between_walks_is_counted_once(served: Serve) -> None:
    """A session listed by the ACTIVE walk and again by the CLOSED walk (it closed while the
    listings ran side by side) counts once: in the status of whichever page was folded first."""
    t = now()
    sim = TriggerSimulator(
        api_key=KEY,
        sessions=[
            trigger_row("session_a1", "ACTIVE", t - 100, t - 50),
            trigger_row("session_a2", "ACTIVE", t - 200, t - 50),
            trigger_row("session_c1", "CLOSED", t - 300, t - 250),
        ],
    )

    def in_both(sim: Simulator, index: int) -> None:
        """session_a1 is in whichever of ACTIVE and CLOSED is asked for, whatever the order."""
        del index
        status = sim.requests[-1].query.get("filter[status]")
        if status in ("ACTIVE", "CLOSED"):
            sim.sessions[0] = sim.sessions[0] | {"status": status}

    sim.on_request = in_both
    exp = await poll(served, sim)

    counted = sessions(exp)
    assert 0 == counted[("expired", "ended")]
    assert 3 == counted[("active", "live")] + counted[("closed", "ended")]
    assert 1 <= counted[("active", "live")] <= 2
    assert ["ACTIVE", "CLOSED", "EXPIRED"] == sorted(q["filter[status]"] for q in queries(sim))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "ACTIVE.page[1]: expected an object, got list"),
        ({"data": None}, "ACTIVE.page[1].data: expected an array, got null"),
        ({"data": [], "pagination": []}, "ACTIVE.page[1].pagination: expected an object"),
        (
            {"data": [], "pagination": {"next": 5}},
            "ACTIVE.page[1].pagination.next: expected a string",
        ),
    ],
)
async def test_wrong_shapes_are_schema_errors_with_location(
    served: Serve, body: Any, message: str
) -> None:
    """A page or row of a shape the spec rules out fails as ``schema``, naming where."""
    sim = TriggerSimulator(api_key=KEY)
    sim.fault = Fault(body=orjson.dumps(body))
    store = await poll_all(settings_for(target(await served(sim))))

    snapshot = store.snapshots[NAME]
    assert not snapshot.up
    assert snapshot.error is not None
    assert snapshot.error.startswith(message)
    assert 1 == scrape(store).get(
        "sessions_exporter_poll_errors_total", target=NAME, reason="schema"
    )


@pytest.mark.parametrize(
    ("row", "field", "message", "kept"),
    [
        (None, "id", "ACTIVE.page[1].data[0]: expected an object, got null", False),
        (
            {"id": "session_1", "updatedAt": "2025-01-01T00:00:00Z"},
            "createdAt",
            "ACTIVE.page[1].data[0].createdAt: expected an ISO-8601 timestamp, got null",
            True,
        ),
        (
            {"createdAt": "2025-01-01T00:00:00Z"},
            "id",
            "ACTIVE.page[1].data[0].id: expected a non-empty string, got null",
            False,
        ),
        (
            {"id": "s", "createdAt": "2025-01-01T00:00:00Z", "expiresAt": "never"},
            "expiresAt",
            "ACTIVE.page[1].data[0].expiresAt: expected an ISO-8601 timestamp, got 'never'",
            True,
        ),
    ],
)
async def test_a_bad_row_is_counted_and_the_walk_goes_on(
    served: Serve, row: Any, field: str, message: str, kept: bool
) -> None:
    """A row with an unreadable field still counts in its query's status (the field
    unknown); one without a readable id is left out; the poll succeeds either way and the
    row is counted in ``sessions_exporter_invalid_rows`` with its place in the walk."""
    sim = TriggerSimulator(api_key=KEY)
    sim.fault = Fault(body=orjson.dumps({"data": [row], "pagination": {}}), times=1)
    store = await poll_all(settings_for(target(await served(sim), ended_window=0)))
    exp = scrape(store)

    assert 1 == exp.get("sessions_target_up", target=NAME)
    assert {field: 1.0} == invalid_rows(store, NAME)
    assert message == invalid_example(store, NAME)
    assert (1.0 if kept else 0.0) == exp.get("sessions", target=NAME, status="active")


async def test_last_page_without_pagination_object_ends_the_walk(served: Serve) -> None:
    """A page with no ``pagination`` (or an empty ``next``) is the last of its walk."""
    t = now()
    row = served_row(trigger_row("session_1", "ACTIVE", t - 10, t - 5))
    sim = TriggerSimulator(api_key=KEY)
    sim.fault = Fault(body=orjson.dumps({"data": [row]}), times=1)
    exp = await poll(served, sim, ended_window=0)

    assert {("active", "live"): 1} == sessions(exp)
    assert 1 == len(sim.requests)


# --- what the server's own code shows: short pages, currentRunId --------------------------


async def test_short_and_empty_pages_with_next_set_walk_to_the_end(served: Serve) -> None:
    """The server cuts a page from a delayed store, then drops the rows that no longer match:
    a page of 100 ids can come out empty, or short, with ``pagination.next`` still set. The
    walk follows ``next`` to its end and counts exactly the sessions still active."""
    t = now()
    rows = []
    for i in range(250):
        # the store still lists all 250 as ACTIVE; the first 100 and every other of the next
        # 100 have been closed since, and the server's in-memory filter drops them
        closed = i < 100 or (i < 200 and i % 2 == 0)
        status = "CLOSED" if closed else "ACTIVE"
        rows.append(trigger_row(f"s{i:03d}", status, t - i, t - i, stored_status="ACTIVE"))
    sim = TriggerSimulator(sessions=rows, api_key=KEY)
    url = await served(sim)
    store = await poll_all(settings_for(target(url, ended_window=0)))
    exp = scrape(store)

    assert {("active", "live"): 100.0} == sessions(exp)
    served_sizes = [len(r) for r in _page_rows(sim)]
    assert [0, 50, 50] == served_sizes
    assert [None, "s099", "s199"] == [q.get("page[after]") for q in walk_of(sim, "ACTIVE")]
    aggregate = store.snapshots[NAME].aggregate
    assert (100, 0) == (aggregate and aggregate.sessions, aggregate and aggregate.duplicates)


def _page_rows(sim: TriggerSimulator) -> list[list[dict[str, Any]]]:
    """The rows each logged request was answered with, computed again from its query."""
    return [sim.payload(r.query)["data"] for r in sim.requests]


async def test_current_run_id_is_the_run_id_label_of_session_info(served: Serve) -> None:
    """With ``per_session`` on, ``currentRunId`` is read and shown as the ``run_id`` label of
    ``session_info`` (empty where null), made safe as a session id is; no other series has it."""
    t = now()
    hostile = "run_\u202e" + "x" * 200
    rows = [
        trigger_row("s1", "ACTIVE", t - 30, t - 30, current_run_id="run_cm0abc123"),
        trigger_row("s2", "ACTIVE", t - 20, t - 20, current_run_id=None),
        trigger_row("s3", "ACTIVE", t - 10, t - 10, current_run_id=hostile),
    ]
    url = await served(TriggerSimulator(sessions=rows, api_key=KEY))
    per_session = {"enabled": True, "max_series": 10}
    exp = scrape(await poll_all(settings_for(target(url, ended_window=0, per_session=per_session))))

    assert {"s1", "s2", "s3"} == set(exp.by("session_info", "session_id"))
    labels = {dict(lbl)["session_id"]: dict(lbl)["run_id"] for lbl in exp.select("session_info")}
    assert "run_cm0abc123" == labels["s1"]
    assert "" == labels["s2"]
    assert 128 == len(labels["s3"])
    assert labels["s3"].startswith("run_ xxx")
    assert "\u202e" not in labels["s3"]
    for name, labelset in exp.samples:
        if name != "session_info":
            assert "run_id" not in dict(labelset), name


async def test_current_run_id_is_read_only_where_per_session_is_on(served: Serve) -> None:
    """Without ``per_session`` a ``currentRunId`` of the wrong type is not even read; with it,
    the row still counts and the field is counted invalid."""
    t = now()
    rows = [trigger_row("s1", "ACTIVE", t - 5, t - 5, currentRunId=42)]
    url = await served(TriggerSimulator(sessions=rows, api_key=KEY))

    off = await poll_all(settings_for(target(url, ended_window=0)))
    on = await poll_all(settings_for(target(url, ended_window=0, per_session={"enabled": True})))

    assert 0 == sum(invalid_rows(off, NAME).values())
    assert 1.0 == invalid_rows(on, NAME)["currentRunId"]
    assert 1.0 == scrape(on).get("sessions", status="active")
