"""Notte: exact metrics over page paging, `only_active`, and the deadline rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.providers.notte import CODEC
from exporter.simulators import Fault, NotteSimulator, notte_row
from tests.conftest import Serve
from tests.harness import KEY, invalid_example, invalid_rows, poll_all, scrape, settings_for

T = 1_767_225_600.0
"""The tests' fixed "now" (2026-01-01T00:00:00Z): the pollers are given this clock."""
M = 60.0


def clock() -> float:
    """The fixed clock of every poll in this module."""
    return T


def target(url: str, **options: object) -> dict[str, object]:
    """A Notte target pointed at a simulator."""
    return {"name": "notte-prod", "provider": "notte", "base_url": url, **options}


DEADLINES = [
    # idle deadline (T+120) comes before the max duration (T+300): not overdue
    notte_row(
        "a", "active", T - 10 * M, T - 1 * M, idle_timeout_minutes=3, max_duration_minutes=15
    ),
    # max duration (T-300) passed although recently accessed: overdue
    notte_row("b", "active", T - 20 * M, T - 10, idle_timeout_minutes=10, max_duration_minutes=15),
    # max_duration_minutes absent: the spec's default 15 applies -> T-100 s, overdue
    notte_row("c", "active", T - 1000, T - 5, idle_timeout_minutes=60, max_duration_minutes=None),
    # past its idle deadline (T-300) well within its max duration: overdue
    notte_row(
        "d", "active", T - 2 * M, T - 10 * M, idle_timeout_minutes=5, max_duration_minutes=60
    ),
    # ended sessions never count as overdue, however old
    notte_row("e", "closed", T - 90 * M, T - 80 * M, closed_at=T - 70 * M),
    notte_row("f", "timed_out", T - 50 * M, T - 50 * M),
    notte_row("g", "error", T - 40 * M, T - 40 * M, error="boom"),
    notte_row("h", "PAUSED", T - 30 * M, T - 30 * M),
    # the SDK's fifth status is pending, so its deadline counts: created + 15 min = T - 5 min
    notte_row(
        "i", "Authenticating", T - 20 * M, T - M, idle_timeout_minutes=60, max_duration_minutes=None
    ),
]


async def test_deadline_rule_overdue_and_next_deadline(served: Serve) -> None:
    """Deadline = min(created + max_duration (15 if absent), accessed + idle); live only."""
    url = await served(NotteSimulator(sessions=DEADLINES, api_key=KEY))

    metrics = scrape(
        await poll_all(settings_for(target(url, only_active=False)), clock=clock), clock=clock
    )

    assert 4.0 == metrics.get("sessions_overdue", target="notte-prod")
    assert T - 300 == metrics.get("sessions_next_deadline_timestamp_seconds")
    assert T - 10 * M == metrics.get("sessions_oldest_activity_timestamp_seconds")


async def test_all_statuses_with_only_active_false(served: Serve) -> None:
    """With only_active false all five documented statuses are present and unknown ones kept."""
    sim = NotteSimulator(sessions=DEADLINES, api_key=KEY)
    url = await served(sim)

    metrics = scrape(
        await poll_all(settings_for(target(url, only_active=False)), clock=clock), clock=clock
    )

    assert {
        "authenticating": 1.0,
        "active": 4.0,
        "closed": 1.0,
        "timed_out": 1.0,
        "error": 1.0,
        "paused": 1.0,
    } == (metrics.by("sessions", "status"))
    assert {
        "authenticating": "pending",
        "active": "live",
        "closed": "ended",
        "timed_out": "ended",
        "error": "failed",
        "paused": "unknown",
    } == {dict(labels)["status"]: dict(labels)["phase"] for labels in metrics.select("sessions")}
    assert T - 20 * M == metrics.get("sessions_oldest_created_timestamp_seconds", status="active")
    assert T - 90 * M == metrics.get("sessions_oldest_created_timestamp_seconds", status="closed")
    assert ["false"] == [r.query["only_active"] for r in sim.requests]


async def test_only_active_default_counts_active_alone(served: Serve) -> None:
    """By default only `active` is asked for and exported, paged 100 at a time while has_next."""
    rows = [notte_row(f"s{i}", "active", T - i, T - i) for i in range(250)]
    sim = NotteSimulator(sessions=rows, api_key=KEY)
    url = await served(sim)

    metrics = scrape(await poll_all(settings_for(target(url)), clock=clock), clock=clock)

    assert {"active": 250.0} == metrics.by("sessions", "status")
    assert [("1", "100", "true"), ("2", "100", "true"), ("3", "100", "true")] == [
        (r.query["page"], r.query["page_size"], r.query["only_active"]) for r in sim.requests
    ]
    assert T - 249 == metrics.get("sessions_oldest_created_timestamp_seconds")
    assert 3.0 == metrics.get("sessions_exporter_pages_fetched_total")


async def test_empty_account(served: Serve) -> None:
    """No sessions: active is 0, overdue 0, and no deadline, activity or oldest series."""
    url = await served(NotteSimulator(sessions=[], api_key=KEY))

    metrics = scrape(await poll_all(settings_for(target(url)), clock=clock), clock=clock)

    assert {"active": 0.0} == metrics.by("sessions", "status")
    assert 0.0 == metrics.get("sessions_overdue")
    assert {} == metrics.select("sessions_next_deadline_timestamp_seconds")
    assert {} == metrics.select("sessions_oldest_activity_timestamp_seconds")
    assert {} == metrics.select("sessions_oldest_created_timestamp_seconds")
    assert {} == metrics.select("sessions_connection_leases")


async def test_timestamp_formats(served: Serve) -> None:
    """`Z`, `+00:00`, 3- and 6-digit fractions and no fraction all parse to the same instants."""
    rows = [
        notte_row("z3", "active", "2026-03-01T10:00:00.250Z", "2026-03-01T10:00:00.250Z"),
        notte_row("o6", "active", "2026-03-01T09:00:00.000001+00:00", "2026-03-01T11:00:00Z"),
        notte_row("n0", "active", "2026-03-01T12:00:00Z", "2026-03-01T12:00:00+00:00"),
    ]
    url = await served(NotteSimulator(sessions=rows, api_key=KEY))

    metrics = scrape(await poll_all(settings_for(target(url)), clock=clock), clock=clock)

    assert 1772355600.000001 == metrics.get("sessions_oldest_created_timestamp_seconds")
    assert 1772359200.25 == metrics.get("sessions_oldest_activity_timestamp_seconds")


async def test_page_repeated_by_shifting_list_counts_once(served: Serve) -> None:
    """A new session arriving between pages repeats a row on the next page; counted once."""
    rows = [notte_row(f"s{i}", "active", T - i, T - i) for i in range(150)]
    sim = NotteSimulator(sessions=rows, api_key=KEY)

    def arrive(simulator: object, index: int) -> None:
        if index == 1:
            sim.sessions.insert(0, notte_row("late", "active", T, T))

    sim.on_request = arrive
    url = await served(sim)

    store = await poll_all(settings_for(target(url)), clock=clock)

    assert 150.0 == scrape(store, clock=clock).get("sessions", status="active")
    aggregate = store.snapshots["notte-prod"].aggregate
    assert aggregate is not None
    assert 1 == aggregate.duplicates


async def test_only_active_counts_active_alone_whatever_the_server_sends(served: Serve) -> None:
    """A server that ignores ``only_active=true`` (a mock, say) still gets only ``active``
    counted; the other rows are dropped from every count and counted as dropped."""
    rows = [
        notte_row("a1", "active", T - 100, T - 50),
        notte_row("c1", "closed", T - 200, T - 150),
        notte_row("e1", "error", T - 300, T - 250),
    ]
    sim = NotteSimulator(sessions=rows, api_key=KEY)
    page = {"items": rows, "page": 1, "page_size": 100, "has_next": False}
    sim.fault = Fault(body=orjson.dumps(page))
    metrics = scrape(
        await poll_all(settings_for(target(await served(sim))), clock=clock), clock=clock
    )

    assert {"active": 1.0} == metrics.by("sessions", "status")
    assert 2.0 == metrics.get("sessions_exporter_rows_dropped", target="notte-prod")
    assert T - 100 == metrics.get("sessions_oldest_created_timestamp_seconds")


async def test_a_page_repeated_forever_ends_as_too_many_pages(served: Serve) -> None:
    """A server answering ``has_next: true`` forever with the same page (as a mock in dynamic
    mode does) fails the poll as ``too_many_pages`` on the first repeat, not at the deadline."""
    rows = [notte_row(f"s{i}", "active", T - i, T - i) for i in range(3)]
    sim = NotteSimulator(sessions=rows, api_key=KEY, endless=True)
    store = await poll_all(settings_for(target(await served(sim), page_concurrency=1)))
    snapshot = store.snapshots["notte-prod"]

    assert not snapshot.up
    assert "too_many_pages" == (snapshot.error_reason and snapshot.error_reason.value)
    assert "page 2 repeats the previous page row for row; the API does not advance" == (
        snapshot.error
    )
    assert 2 == len(sim.requests)


@pytest.mark.parametrize(
    ("row", "field", "message", "kept"),
    [
        (
            {"status": "active", "created_at": "2026-01-01T00:00:00Z"},
            "id",
            "page[1].items[1].session_id: expected a non-empty string, got null",
            False,
        ),
        (
            {"session_id": "x", "created_at": "2026-01-01T00:00:00Z"},
            "status",
            "page[1].items[1].status: expected a non-empty string, got null",
            False,
        ),
        (
            {
                "session_id": "x",
                "status": "active",
                "created_at": "2026-01-01T00:00:00Z",
                "idle_timeout_minutes": "5",
            },
            "idle_timeout_minutes",
            "page[1].items[1].idle_timeout_minutes: expected an integer, got str",
            True,
        ),
        (
            {"session_id": "x", "status": "active", "created_at": {"at": 1}},
            "created_at",
            "page[1].items[1].created_at: expected an ISO-8601 timestamp, got {…}",
            True,
        ),
    ],
)
async def test_a_bad_row_is_counted_beside_exact_good_ones(
    served: Serve, row: dict[str, Any], field: str, message: str, kept: bool
) -> None:
    """A Notte row with an unreadable field counts with that field unknown, one without an
    id or status is left out, and the good row beside it keeps its exact deadline."""
    good = notte_row("g", "active", T - 10 * M, T - M, idle_timeout_minutes=3)
    sim = NotteSimulator(sessions=[], api_key=KEY)
    page = {"items": [good, row], "page": 1, "page_size": 100, "has_next": False}
    sim.fault = Fault(body=orjson.dumps(page))
    store = await poll_all(settings_for(target(await served(sim))), clock=clock)
    metrics = scrape(store, clock=clock)

    assert {field: 1.0} == invalid_rows(store, "notte-prod", clock=clock)
    assert message == invalid_example(store, "notte-prod")
    assert (2.0 if kept else 1.0) == metrics.get("sessions", status="active")
    assert T + 2 * M == metrics.get("sessions_next_deadline_timestamp_seconds")


@pytest.mark.parametrize(
    "body",
    [
        {"detail": "Session quota exceeded"},
        {"detail": "Session quota exceeded", "items": [], "has_next": False},
    ],
)
async def test_a_2xx_answer_with_detail_is_an_error(served: Serve, body: object) -> None:
    """notte-sdk raises on a 2xx object with ``detail`` even beside ``items``: the poll fails
    as ``schema`` with that detail, instead of counting an empty list (or complaining about
    ``items``)."""
    sim = NotteSimulator(api_key=KEY)
    sim.fault = Fault(body=orjson.dumps(body))
    store = await poll_all(settings_for(target(await served(sim))))
    snapshot = store.snapshots["notte-prod"]

    assert "schema" == (snapshot.error_reason and snapshot.error_reason.value)
    assert "page 1: an error in a 2xx answer, not a page: Session quota exceeded" == (
        snapshot.error
    )


_MOMENTS = st.floats(min_value=-1e10, max_value=2.5e11, allow_nan=False).map(
    lambda s: datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=round(s * 1e6) // 1)
)
_EDGES = st.sampled_from([2**30, 2**31, 2**31 - 60, 2**30 + 1e-6, 2**31 - 1e-6]).map(
    lambda s: datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=s)
)
_MINUTES = st.one_of(st.none(), st.integers(-(10**7), 10**7), st.integers(0, 120))


@settings(max_examples=500, deadline=None, database=None)
@given(
    created=st.one_of(_MOMENTS, _EDGES),
    accessed=st.one_of(st.none(), _MOMENTS, _EDGES),
    max_minutes=_MINUTES,
    idle=_MINUTES,
    old_idle=_MINUTES,
)
def test_the_deadline_in_seconds_is_exactly_the_datetime_one(
    created: datetime,
    accessed: datetime | None,
    max_minutes: int | None,
    idle: int | None,
    old_idle: int | None,
) -> None:
    """The fold's float deadline of a typed row equals ``deadline.timestamp()`` to the bit,
    microseconds, binade edges, overflowing minutes and absent fields included."""
    wire = {
        "session_id": "s",
        "status": "active",
        "created_at": created.isoformat(),
        "last_accessed_at": None if accessed is None else accessed.isoformat(),
        "max_duration_minutes": max_minutes,
        "idle_timeout_minutes": idle,
        "timeout_minutes": old_idle,
    }
    (row,) = CODEC.typed(orjson.dumps([wire]))  # the engine's typed row, as a poll reads it
    at = row.deadline

    seconds = row.deadline_seconds(  # type: ignore[attr-defined]
        created.timestamp(), None if accessed is None else accessed.timestamp()
    )

    assert (None if at is None else at.timestamp()) == seconds


SYSTEM = [
    notte_row("user-1", "active", T - 60, T - 10),
    notte_row("user-2", "active", T - 50, T - 10),
    notte_row("sys-1", "active", T - 40, T - 10, system_hidden=True),
]


@pytest.mark.parametrize(
    ("setting", "sent", "counted"),
    [(None, None, 3.0), (True, "true", 3.0), (False, "false", 2.0)],
)
async def test_include_system_is_sent_only_when_set(
    served: Serve, setting: bool | None, sent: str | None, counted: float
) -> None:
    """``include_system`` is the API's default (true: system sessions are listed) unless the
    target sets it; it is sent only when set, and ``false`` leaves the system sessions out."""
    sim = NotteSimulator(sessions=SYSTEM, api_key=KEY)
    options = {} if setting is None else {"include_system": setting}
    store = await poll_all(settings_for(target(await served(sim), **options)), clock=clock)

    assert counted == scrape(store, clock=clock).get("sessions", status="active")
    assert [sent] == [r.query.get("include_system") for r in sim.requests]
