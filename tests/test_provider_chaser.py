"""Chaser: exact metrics over limit/offset paging, free-form statuses and leases."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from structlog.testing import capture_logs

from exporter.simulators import (
    OMIT,
    ChaserSimulator,
    Fault,
    Simulator,
    chaser_list_row,
    chaser_row,
    iso,
)
from tests.conftest import Serve
from tests.harness import KEY, invalid_example, invalid_rows, poll_all, scrape, settings_for

T = 1_767_312_000.0
"""The tests' fixed "now" (2026-01-02T00:00:00Z): the pollers are given this clock."""


def clock() -> float:
    """The fixed clock of every poll in this module."""
    return T


DATASET = [
    chaser_row("c1", "Running", "2026-01-01T00:00:00.123Z", leases=2),
    chaser_row("c2", "RUNNING", "2025-12-31T23:00:00.654321+00:00", leases=0),
    chaser_row("c3", "idle", iso(T - 100), leases=None),
    chaser_row("c4", "Starting", iso(T - 50, fraction=0), leases=1),
    chaser_row("c5", "stopped", iso(T - 9000), leases=5),
    chaser_row("c6", "Zombie", iso(T - 20), leases=0),
    chaser_row("c7", "ERROR", iso(T - 30), leases=None),
    chaser_row("c8", "running", "2026-01-02T00:00:00Z", leases=0),
]
KNOWN = {
    "creating": "pending",
    "pending": "pending",
    "starting": "pending",
    "ready": "live",
    "running": "live",
    "active": "live",
    "idle": "live",
    "stopping": "live",
    "stopped": "ended",
    "terminated": "ended",
    "completed": "ended",
    "expired": "ended",
    "failed": "failed",
    "error": "failed",
}


def target(url: str, **options: object) -> dict[str, object]:
    """A Chaser target pointed at a simulator."""
    return {"name": "browsers", "provider": "chaser", "base_url": url, **options}


async def test_every_metric_exact_over_three_pages(served: Serve) -> None:
    """Counts, phases, oldest times, leases and unleased are exact across 3 offset pages."""
    sim = ChaserSimulator(sessions=DATASET, api_key=KEY)
    url = await served(sim)

    store = await poll_all(settings_for(target(url, page_size=3)))
    metrics = scrape(store, clock=clock)

    counts = metrics.by("sessions", "status", target="browsers")
    assert {
        **dict.fromkeys(KNOWN, 0.0),
        "running": 3.0,
        "idle": 1.0,
        "starting": 1.0,
        "stopped": 1.0,
        "error": 1.0,
        "zombie": 1.0,
    } == counts
    phases = metrics.by("sessions", "phase", target="browsers", status="zombie")
    assert {"unknown": 1.0} == phases
    for status, phase in KNOWN.items():
        assert 1 == len(metrics.select("sessions", status=status, phase=phase))
    oldest = metrics.by("sessions_oldest_created_timestamp_seconds", "status")
    assert {
        "running": 1767222000.654321,
        "idle": T - 100,
        "starting": T - 50,
        "stopped": T - 9000,
        "zombie": T - 20,
        "error": T - 30,
    } == oldest
    assert 3.0 == metrics.get("sessions_connection_leases", target="browsers")
    assert 2.0 == metrics.get("sessions_unleased", target="browsers")
    assert 1.0 == metrics.get("sessions_target_up", provider="chaser", target="browsers")
    assert 3.0 == metrics.get("sessions_exporter_pages_fetched_total")
    assert 3.0 == metrics.get("sessions_exporter_api_requests_total", code="200")
    assert [("3", "0"), ("3", "3"), ("3", "6")] == [
        (r.query["limit"], r.query["offset"]) for r in sim.requests
    ]


async def test_deadline_and_activity_metrics_absent(served: Serve) -> None:
    """Chaser reports no deadline or activity, so those families have no Chaser series."""
    url = await served(ChaserSimulator(sessions=DATASET, api_key=KEY))

    metrics = scrape(await poll_all(settings_for(target(url))))

    for name in (
        "sessions_overdue",
        "sessions_next_deadline_timestamp_seconds",
        "sessions_oldest_activity_timestamp_seconds",
        "sessions_executions",
    ):
        assert {} == metrics.select(name), name


async def test_empty_account_shows_zeros_and_no_oldest(served: Serve) -> None:
    """An empty account exports every known status as 0, leases 0, and no oldest-time series."""
    sim = ChaserSimulator(sessions=[], api_key=KEY)
    url = await served(sim)

    metrics = scrape(await poll_all(settings_for(target(url))))

    assert dict.fromkeys(KNOWN, 0.0) == metrics.by("sessions", "status")
    assert {} == metrics.select("sessions_oldest_created_timestamp_seconds")
    assert 0.0 == metrics.get("sessions_connection_leases")
    assert 0.0 == metrics.get("sessions_unleased")
    assert 1 == len(sim.requests)


async def test_list_shifting_while_paged_counts_each_session_once(served: Serve) -> None:
    """A session inserted between page requests repeats one row; it is counted once."""
    rows = [chaser_row(f"r{i}", "running", iso(T - i)) for i in range(6)]
    sim = ChaserSimulator(sessions=rows, api_key=KEY)

    def insert_new(simulator: Simulator, index: int) -> None:
        if index == 1:
            simulator.sessions.insert(0, chaser_row("new", "running", iso(T)))

    sim.on_request = insert_new
    url = await served(sim)

    store = await poll_all(settings_for(target(url, page_size=3)))

    assert 6.0 == scrape(store, clock=clock).get("sessions", status="running")
    aggregate = store.snapshots["browsers"].aggregate
    assert aggregate is not None
    assert 1 == aggregate.duplicates
    assert ["0", "3", "6"] == [r.query["offset"] for r in sim.requests]


async def test_max_pages_guard_fails_the_poll(served: Serve) -> None:
    """More pages than max_pages fails the poll (reason too_many_pages), never a partial count."""
    rows = [chaser_row(f"r{i}", "running", iso(T - i)) for i in range(10)]
    sim = ChaserSimulator(sessions=rows, api_key=KEY)
    url = await served(sim)

    metrics = scrape(await poll_all(settings_for(target(url, page_size=3, max_pages=2))))

    assert 0.0 == metrics.get("sessions_target_up")
    assert 1.0 == metrics.get("sessions_exporter_poll_errors_total", reason="too_many_pages")
    assert {} == metrics.select("sessions")
    assert 2 == len(sim.requests)


async def test_total_larger_than_served_rows_ends_on_empty_page(served: Serve) -> None:
    """A `total` the list never reaches stops at an empty page instead of looping: the empty
    page's smaller `total` is re-read from offset 0 once, which is empty too."""
    sim = ChaserSimulator(sessions=[chaser_row("a", "running", iso(T))], api_key=KEY)
    url = await served(sim)
    sim.sessions.append(chaser_row("b", "running", iso(T)))

    def shrink(simulator: Simulator, index: int) -> None:
        if index == 1:
            simulator.sessions.clear()

    sim.on_request = shrink

    metrics = scrape(await poll_all(settings_for(target(url, page_size=1))))

    assert 1.0 == metrics.get("sessions", status="running")
    assert ["0", "1", "0"] == [r.query["offset"] for r in sim.requests]


async def test_live_age_distribution(served: Serve) -> None:
    """sessions_age_seconds buckets the ages (at poll time) of pending and live sessions only."""
    now = T
    rows = [
        chaser_row("a", "running", iso(now - 10)),
        chaser_row("b", "starting", iso(now - 200)),
        chaser_row("c", "idle", iso(now - 10_000)),
        chaser_row("d", "running", iso(now - 10 * 86400)),
        chaser_row("e", "stopped", iso(now - 20)),
        chaser_row("f", "weird", iso(now - 20)),
    ]
    url = await served(ChaserSimulator(sessions=rows, api_key=KEY))

    metrics = scrape(await poll_all(settings_for(target(url)), clock=clock), clock=clock)

    buckets = metrics.by("sessions_age_seconds_bucket", "le", target="browsers")
    assert {
        "60.0": 1.0,
        "300.0": 2.0,
        "900.0": 2.0,
        "1800.0": 2.0,
        "3600.0": 2.0,
        "7200.0": 2.0,
        "14400.0": 3.0,
        "43200.0": 3.0,
        "86400.0": 3.0,
        "259200.0": 3.0,
        "+Inf": 4.0,
    } == buckets
    assert 4.0 == metrics.get("sessions_age_seconds_gcount", target="browsers")
    gsum = metrics.get("sessions_age_seconds_gsum", target="browsers")
    assert gsum is not None
    assert 10 + 200 + 10_000 + 864_000 == gsum


async def test_ready_is_live_as_in_the_sdk(served: Serve) -> None:
    """``ready`` (the SDK's ready set) is live: it counts in leases, unleased and ages."""
    rows = [
        chaser_row("r1", "Ready", iso(T - 30), leases=0),
        chaser_row("r2", "ready", iso(T - 40), leases=2),
        chaser_row("t1", "terminated", iso(T - 50), leases=0),
    ]
    url = await served(ChaserSimulator(sessions=rows, api_key=KEY))
    metrics = scrape(await poll_all(settings_for(target(url)), clock=clock), clock=clock)

    assert {"live": 2.0} == metrics.by("sessions", "phase", status="ready")
    assert 2.0 == metrics.get("sessions_connection_leases")
    assert 1.0 == metrics.get("sessions_unleased")
    assert 2.0 == metrics.get("sessions_age_seconds_gcount")


async def test_a_bare_array_is_the_whole_list(served: Serve) -> None:
    """An answer that is a bare array (as the SDK accepts) is the whole list: one request."""
    rows = [chaser_row("a", "running", iso(T - 5), leases=1), chaser_row("b", "idle", iso(T - 9))]
    sim = ChaserSimulator(sessions=[], api_key=KEY)
    sim.fault = Fault(body=orjson.dumps(rows))
    metrics = scrape(
        await poll_all(settings_for(target(await served(sim))), clock=clock), clock=clock
    )

    assert 1.0 == metrics.get("sessions_target_up")
    assert 1.0 == metrics.get("sessions", status="running")
    assert 1.0 == metrics.get("sessions", status="idle")
    assert 1 == len(sim.requests)


async def test_account_is_sent_as_x_chaser_account(served: Serve) -> None:
    """The ``account`` option is sent as ``X-Chaser-Account`` on every page's request."""
    rows = [chaser_row(f"r{i}", "running", iso(T - i)) for i in range(4)]
    sim = ChaserSimulator(sessions=rows, api_key=KEY)
    url = await served(sim)
    await poll_all(settings_for(target(url, page_size=2, account=" team-a ")), clock=clock)

    assert ["team-a", "team-a"] == [r.headers.get("X-Chaser-Account") for r in sim.requests]


async def test_a_bad_row_is_counted_and_the_rest_exact(served: Serve) -> None:
    """Bad rows on page two (a lease count that is a string, a row without status) do not
    fail the poll: one counts with leases unknown, one is left out, both are counted by field
    with their place in the listing, and the other rows stay exact."""
    rows = [
        chaser_row("a", "running", iso(T - 5), leases=1),
        chaser_row("b", "running", iso(T - 6), leases=0),
        chaser_row("c", "running", iso(T - 7)) | {"active_connection_leases": "3"},
        {"id": "d", "created_at": iso(T - 8)},
    ]
    url = await served(ChaserSimulator(sessions=rows, api_key=KEY))
    store = await poll_all(settings_for(target(url, page_size=2)), clock=clock)
    metrics = scrape(store, clock=clock)

    assert 1.0 == metrics.get("sessions_target_up")
    assert {"active_connection_leases": 1.0, "status": 1.0} == invalid_rows(
        store, "browsers", clock=clock
    )
    assert "sessions[2].active_connection_leases: expected an integer, got str" == (
        invalid_example(store, "browsers")
    )
    assert 3.0 == metrics.get("sessions", status="running")
    assert 1.0 == metrics.get("sessions_connection_leases")
    assert 1.0 == metrics.get("sessions_unleased")


async def test_invalid_rows_are_logged_once_per_poll_masked_and_cut(served: Serve) -> None:
    """Many bad rows in one poll make one ``poll.invalid_rows`` line: the count per field and
    one example, with the target's key masked and the value shown cut short."""
    echoed = KEY + "x" * 400  # a provider echoing the key into a field, at length
    rows = [chaser_row(f"r{i}", "running", echoed) for i in range(5)]
    url = await served(ChaserSimulator(sessions=rows, api_key=KEY))
    with capture_logs() as logs:
        await poll_all(settings_for(target(url)), clock=clock)

    events = [e for e in logs if e["event"] == "poll.invalid_rows"]
    assert 1 == len(events)
    assert {"created_at": 5} == events[0]["fields"]
    assert (
        "sessions[0].created_at: expected an ISO-8601 timestamp, got '[REDACTED]" + "x" * 49 + "…'"
    ) == events[0]["example"]


async def test_invalid_rows_are_zeros_per_field_when_every_row_reads(served: Serve) -> None:
    """A healthy target exports ``sessions_exporter_invalid_rows`` as 0 for each field of its
    row schema, so dashboards and alerts see the series before anything goes wrong."""
    url = await served(ChaserSimulator(sessions=DATASET, api_key=KEY))
    metrics = scrape(await poll_all(settings_for(target(url))))

    assert {
        "id": 0.0,
        "status": 0.0,
        "created_at": 0.0,
        "expires_at": 0.0,
        "active_connection_leases": 0.0,
        "session_type": 0.0,
    } == metrics.by("sessions_exporter_invalid_rows", "field", target="browsers")


# --- the guide's list shape: cursor paging, creating..ready, expires_at, no leases ----------

LISTED = [
    chaser_list_row("sess_01", "creating", T - 10, expires_at=T + 600),
    chaser_list_row("sess_02", "ready", T - 20, expires_at=T + 300),
    chaser_list_row("sess_03", "Ready", T - 30, expires_at=T - 60),  # overdue
    chaser_list_row("sess_04", "running", T - 40, expires_at=None),
    chaser_list_row("sess_05", "creating", T - 50, expires_at=T - 5),  # overdue, pending
    chaser_list_row(
        "sess_06", "terminated", T - 60, expires_at=T - 100, ended_at=T - 70, ended_reason="user"
    ),  # ended: not overdue
    chaser_list_row("sess_07", "ready", T - 70, expires_at=OMIT, bytes_in=4096, bytes_out=512),
]


async def test_the_guides_list_shape_is_paged_by_cursor(served: Serve) -> None:
    """An account served the guide's shape is walked by ``cursor`` while ``has_more``:
    every session counted once, ``creating`` pending and ``ready`` live."""
    sim = ChaserSimulator(sessions=LISTED, api_key=KEY, envelope="list")
    url = await served(sim)
    store = await poll_all(settings_for(target(url, page_size=3)), clock=clock)
    metrics = scrape(store, clock=clock)

    assert 1.0 == metrics.get("sessions_target_up")
    counts = {s: v for s, v in metrics.by("sessions", "status").items() if v}
    assert {"creating": 2.0, "ready": 3.0, "running": 1.0, "terminated": 1.0} == counts
    assert {"pending": 2.0} == metrics.by("sessions", "phase", status="creating")
    assert {"live": 3.0} == metrics.by("sessions", "phase", status="ready")
    queries = [sorted(r.query.items()) for r in sim.requests]
    assert [("limit", "3"), ("offset", "0")] == queries[0]
    assert [["cursor", "limit"], ["cursor", "limit"]] == [[k for k, _ in q] for q in queries[1:]]
    assert ["3", "3"] == [dict(q)["limit"] for q in queries[1:]]
    assert 3.0 == metrics.get("sessions_exporter_pages_fetched_total")
    aggregate = store.snapshots["browsers"].aggregate
    assert (7, 0) == (aggregate and aggregate.sessions, aggregate and aggregate.duplicates)


async def test_the_guides_expires_at_is_a_deadline(served: Serve) -> None:
    """``expires_at`` is the deadline: sessions still reported live past it are overdue and
    the earliest is the next deadline; ended sessions are not overdue."""
    url = await served(ChaserSimulator(sessions=LISTED, api_key=KEY, envelope="list"))
    metrics = scrape(await poll_all(settings_for(target(url)), clock=clock), clock=clock)

    assert 2.0 == metrics.get("sessions_overdue")
    assert T - 60 == metrics.get("sessions_next_deadline_timestamp_seconds")


async def test_the_guides_shape_has_no_lease_series(served: Serve) -> None:
    """The guide's answers carry no leases: the lease series are absent, never 0, and an
    empty account still gets ``sessions_overdue`` 0 (no next deadline)."""
    for sessions in (LISTED, []):
        url = await served(ChaserSimulator(sessions=sessions, api_key=KEY, envelope="list"))
        metrics = scrape(await poll_all(settings_for(target(url)), clock=clock), clock=clock)

        assert {} == metrics.select("sessions_connection_leases")
        assert {} == metrics.select("sessions_unleased")
        assert (0.0 if not sessions else 2.0) == metrics.get("sessions_overdue")
    assert {} == metrics.select("sessions_next_deadline_timestamp_seconds")


async def test_a_reference_row_with_expires_at_gets_deadlines(served: Serve) -> None:
    """The reference's shape has no deadline, but a row that carries ``expires_at`` is read
    as one: the account then gets ``sessions_overdue`` beside its lease series."""
    rows = [
        chaser_row("a", "running", iso(T - 50), leases=1, expires_at=iso(T - 1)),
        chaser_row("b", "running", iso(T - 60), leases=0),
    ]
    url = await served(ChaserSimulator(sessions=rows, api_key=KEY))
    metrics = scrape(await poll_all(settings_for(target(url)), clock=clock), clock=clock)

    assert 1.0 == metrics.get("sessions_overdue")
    assert T - 1 == metrics.get("sessions_next_deadline_timestamp_seconds")
    assert (1.0, 1.0) == (
        metrics.get("sessions_connection_leases"),
        metrics.get("sessions_unleased"),
    )


async def test_the_guides_shape_ends_on_a_cursor_seen_before(served: Serve) -> None:
    """A server that hands back a cursor already followed fails the poll as ``schema``
    instead of looping."""
    page = {"object": "list", "data": [chaser_list_row("sess_1", "ready", T)], "has_more": True}
    sim = ChaserSimulator(sessions=[], api_key=KEY, envelope="list")
    sim.fault = Fault(body=orjson.dumps(page | {"next_cursor": "cur_same"}))
    store = await poll_all(settings_for(target(await served(sim))), clock=clock)

    snapshot = store.snapshots["browsers"]
    reason = snapshot.error_reason and snapshot.error_reason.value
    assert ("schema", 2) == (reason, len(sim.requests))
    assert "cur_same" in (snapshot.error or "")


async def test_the_guides_shape_needs_a_cursor_while_it_has_more(served: Serve) -> None:
    """``has_more`` true without ``next_cursor`` is a schema error naming the page."""
    page = {"object": "list", "data": [], "has_more": True, "next_cursor": None}
    sim = ChaserSimulator(sessions=[], api_key=KEY, envelope="list")
    sim.fault = Fault(body=orjson.dumps(page), times=1)
    store = await poll_all(settings_for(target(await served(sim))), clock=clock)

    snapshot = store.snapshots["browsers"]
    assert "schema" == (snapshot.error_reason and snapshot.error_reason.value)
    assert "page 1: next_cursor: expected a cursor while has_more is true, got none" == (
        snapshot.error
    )


# --- issue 22.7: a list that shrinks while it is paged --------------------------------------


@pytest.mark.parametrize("concurrency", [1, 4])
async def test_sessions_live_for_the_whole_poll_are_each_counted_once(
    served: Serve, concurrency: int
) -> None:
    """Ten sessions already read end while the poll goes on, one per request: every later
    page's ``total`` shrinks and the gap is re-read, so each of the 90 sessions live for
    the whole poll is counted (before the fix, 10 of them were never seen)."""
    rows = [chaser_row(f"s{i:03d}", "running", iso(T - i)) for i in range(100)]
    sim = ChaserSimulator(sessions=rows, api_key=KEY)
    ended: list[str] = []

    def end_one_already_read(simulator: Simulator, index: int) -> None:
        if 1 <= index <= 10:  # a session of the first page ends and leaves the list
            ended.append(simulator.sessions.pop(0)["id"])

    sim.on_request = end_one_already_read
    url = await served(sim)
    options: dict[str, Any] = {"page_size": 10, "page_concurrency": concurrency}
    store = await poll_all(settings_for(target(url, **options)), clock=clock)

    aggregate = store.snapshots["browsers"].aggregate
    assert aggregate is not None
    # the 90 live throughout, and the 10 read before they ended
    assert (100, 10) == (aggregate.sessions, len(ended))
