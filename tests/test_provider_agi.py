"""AGI provider: real pollers against the simulator over loopback.

Timestamps are whole seconds plus binary fractions so every expected value is exact,
computed from the dataset's own numbers.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from exporter.simulators import AgiSimulator, Fault, agi_row, iso
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

NAME = "agi-1"
DOCUMENTED = {
    "initializing": "pending",
    "ready": "live",
    "running": "live",
    "paused": "live",
    "waiting_for_input": "live",
    "completed": "ended",
    "terminated": "ended",
    "finished": "ended",
    "error": "failed",
}


def now() -> float:
    """The current unix time in whole seconds, the base of every dataset."""
    return float(int(time.time()))


def target(base: str, name: str = NAME, **options: Any) -> dict[str, Any]:
    """An AGI target for the simulator at ``base``."""
    return {"name": name, "provider": "agi", "base_url": base, **options}


def sessions(exp: Exposition, name: str = NAME) -> dict[tuple[str, str], float]:
    """The target's ``sessions`` series as (status, phase) -> value."""
    return {
        (dict(labels)["status"], dict(labels)["phase"]): value
        for labels, value in exp.select("sessions", target=name).items()
    }


def oldest(exp: Exposition, name: str = NAME) -> dict[str, float]:
    """The target's ``sessions_oldest_created_timestamp_seconds`` by status."""
    return exp.by("sessions_oldest_created_timestamp_seconds", "status", target=name)


async def test_all_statuses_with_phases_and_oldest_created(served: Serve) -> None:
    """Every documented status (the SDK's two more included) maps to its contract phase,
    case-insensitively.

    An undocumented status keeps its lower-cased name with phase ``unknown``; the
    oldest creation time per status is exact across ``Z``/``+00:00`` and 0/3/6 digits.
    """
    t = now()
    sim = AgiSimulator(
        api_key=KEY,
        sessions=[
            agi_row("s-init", "initializing", iso(t - 10 + 0.5, fraction=3)),
            agi_row("s-ready-1", "ready", iso(t - 100, fraction=0, zulu=False)),
            agi_row("s-ready-2", "READY", iso(t - 200 + 0.015625, fraction=6)),
            agi_row("s-run-1", "running", iso(t - 300 + 0.125, fraction=3, zulu=False)),
            agi_row("s-run-2", "Running", iso(t - 50, fraction=0)),
            agi_row("s-run-3", "running", iso(t - 400 + 0.25, fraction=6, zulu=False)),
            agi_row("s-pause", "paused", iso(t - 3600, fraction=3)),
            agi_row("s-done-1", "completed", iso(t - 7200 + 0.375, fraction=6)),
            agi_row("s-done-2", "Completed", iso(t - 86_400, fraction=0, zulu=False)),
            agi_row("s-term", "terminated", iso(t - 5000 + 0.5, fraction=3)),
            agi_row("s-err", "ERROR", iso(t - 600 + 0.75, fraction=6, zulu=False)),
            agi_row("s-odd-1", "Hibernating", iso(t - 900, fraction=3)),
            agi_row("s-odd-2", "hibernating", iso(t - 950 + 0.125, fraction=3)),
            agi_row("s-wait", "Waiting_For_Input", iso(t - 70 + 0.25, fraction=3)),
            agi_row("s-fin", "finished", iso(t - 80, fraction=0)),
        ],
    )
    exp = scrape(await poll_all(settings_for(target(await served(sim)))))

    assert {
        ("initializing", "pending"): 1,
        ("ready", "live"): 2,
        ("running", "live"): 3,
        ("paused", "live"): 1,
        ("waiting_for_input", "live"): 1,
        ("completed", "ended"): 2,
        ("terminated", "ended"): 1,
        ("finished", "ended"): 1,
        ("error", "failed"): 1,
        ("hibernating", "unknown"): 2,
    } == sessions(exp)
    assert {
        "initializing": t - 10 + 0.5,
        "ready": t - 200 + 0.015625,
        "running": t - 400 + 0.25,
        "paused": t - 3600,
        "waiting_for_input": t - 70 + 0.25,
        "completed": t - 86_400,
        "terminated": t - 5000 + 0.5,
        "finished": t - 80,
        "error": t - 600 + 0.75,
        "hibernating": t - 950 + 0.125,
    } == oldest(exp)
    assert 1 == exp.get("sessions_target_up", target=NAME, provider="agi")
    assert 1 == exp.get("sessions_exporter_pages_fetched_total", target=NAME)
    assert [("/v1/sessions", True, {})] == [
        (r.path, r.authorized, dict(r.query)) for r in sim.requests
    ]


async def test_metrics_agi_does_not_report_are_absent(served: Serve) -> None:
    """AGI reports no deadline, activity, leases or executions: those series are absent."""
    t = now()
    sim = AgiSimulator(api_key=KEY, sessions=[agi_row("s-1", "running", t - 60)])
    exp = scrape(await poll_all(settings_for(target(await served(sim)))))

    assert {"sessions", "sessions_oldest_created_timestamp_seconds"} <= exp.names()
    for name in (
        "sessions_overdue",
        "sessions_next_deadline_timestamp_seconds",
        "sessions_oldest_activity_timestamp_seconds",
        "sessions_connection_leases",
        "sessions_unleased",
        "sessions_executions",
    ):
        assert exp.get(name, target=NAME) is None, name


async def test_documented_statuses_are_zero_when_empty(served: Serve) -> None:
    """An empty list exports all seven documented statuses with 0 and no oldest-created."""
    sim = AgiSimulator(api_key=KEY)
    exp = scrape(await poll_all(settings_for(target(await served(sim)))))

    assert dict.fromkeys(DOCUMENTED.items(), 0) == sessions(exp)
    assert {} == oldest(exp)


async def test_documented_statuses_stay_when_only_unknown_ones_are_listed(served: Serve) -> None:
    """A list holding only an unknown status still exports the seven documented ones as 0."""
    t = now()
    sim = AgiSimulator(api_key=KEY, sessions=[agi_row("s-1", "  Queued ", t - 5)])
    exp = scrape(await poll_all(settings_for(target(await served(sim)))))

    expected = dict.fromkeys(DOCUMENTED.items(), 0)
    expected["queued", "unknown"] = 1
    assert expected == sessions(exp)
    assert {"queued": t - 5} == oldest(exp)


async def test_duplicate_ids_count_once(served: Serve) -> None:
    """A session listed twice is counted once (the first listing wins)."""
    t = now()
    sim = AgiSimulator(
        api_key=KEY,
        sessions=[
            agi_row("s-1", "running", t - 60),
            agi_row("s-1", "completed", t - 60),
            agi_row("s-2", "completed", t - 30),
        ],
    )
    exp = scrape(await poll_all(settings_for(target(await served(sim)))))

    assert 1 == exp.get("sessions", target=NAME, status="running")
    assert 1 == exp.get("sessions", target=NAME, status="completed")


async def test_oversized_answer_fails_only_that_target(served: Serve) -> None:
    """An answer above ``max_response_bytes`` fails that target as ``too_large``.

    Another target reading the same big list with the default limit, and a target on a
    second simulator, are unaffected.
    """
    t = now()
    big = AgiSimulator(
        api_key=KEY,
        sessions=[agi_row(f"s-{i:04d}", "running", t - i) for i in range(200)],
    )
    small = AgiSimulator(api_key=KEY, sessions=[agi_row("s-x", "paused", t - 1)])
    big_url, small_url = await served(big), await served(small)
    settings = settings_for(
        target(big_url, "agi-capped", max_response_bytes=1024),
        target(big_url, "agi-big"),
        target(small_url, "agi-small"),
    )
    store = await poll_all(settings)
    exp = scrape(store)

    assert 0 == exp.get("sessions_target_up", target="agi-capped")
    assert 1 == exp.get(
        "sessions_exporter_poll_errors_total", target="agi-capped", reason="too_large"
    )
    assert "response larger than max_response_bytes=1024" == store.snapshots["agi-capped"].error
    assert {} == sessions(exp, "agi-capped")
    assert 0 == exp.get("sessions_exporter_pages_fetched_total", target="agi-capped")

    assert 1 == exp.get("sessions_target_up", target="agi-big")
    assert 200 == exp.get("sessions", target="agi-big", status="running")
    assert t - 199 == exp.get(
        "sessions_oldest_created_timestamp_seconds", target="agi-big", status="running"
    )
    assert 1 == exp.get("sessions_target_up", target="agi-small")
    assert 1 == exp.get("sessions", target="agi-small", status="paused")


async def test_oversized_answer_keeps_the_last_good_data(served: Serve) -> None:
    """When the list outgrows the limit after a good poll, the last good counts stay."""
    t = now()
    sim = AgiSimulator(api_key=KEY, sessions=[agi_row("s-0", "running", t - 1)])
    settings = settings_for(target(await served(sim), max_response_bytes=1024))
    store = await poll_all(settings)
    sim.sessions = [agi_row(f"s-{i:04d}", "running", t - i) for i in range(200)]
    exp = scrape(await poll_all(settings, store=store))

    assert 0 == exp.get("sessions_target_up", target=NAME)
    assert 1 == exp.get("sessions_exporter_poll_errors_total", target=NAME, reason="too_large")
    assert 1 == exp.get("sessions", target=NAME, status="running")


async def test_an_envelope_of_the_wrong_shape_fails_as_schema(served: Serve) -> None:
    """An object where the bare array belongs fails the poll as ``schema``, naming where."""
    sim = AgiSimulator(api_key=KEY)
    sim.fault = Fault(body=orjson.dumps({"sessions": []}))
    store = await poll_all(settings_for(target(await served(sim))))

    snapshot = store.snapshots[NAME]
    assert not snapshot.up
    assert "response: expected an array, got dict" == snapshot.error
    assert 1 == scrape(store).get(
        "sessions_exporter_poll_errors_total", target=NAME, reason="schema"
    )


GOOD = {"session_id": "s-good", "status": "ready", "created_at": "2025-01-01T00:00:00Z"}


@pytest.mark.parametrize(
    ("row", "field", "message", "counted"),
    [
        (None, "id", "response[1]: expected an object, got null", None),
        (
            {"session_id": "s", "agent_name": "a", "created_at": "2025-01-01T00:00:00Z"},
            "status",
            "response[1].status: expected a non-empty string, got null",
            None,
        ),
        (
            {"agent_name": "a", "status": "ready", "created_at": "2025-01-01T00:00:00Z"},
            "id",
            "response[1].session_id: expected a non-empty string, got null",
            None,
        ),
        (
            {"session_id": "s", "status": "ready", "created_at": "last week"},
            "created_at",
            "response[1].created_at: expected an ISO-8601 timestamp, got 'last week'",
            "ready",
        ),
        (
            {**GOOD, "session_id": "s", "agent_name": 3},
            "agent_name",
            "response[1].agent_name: expected a string, got int",
            "ready",
        ),
    ],
)
async def test_one_bad_row_is_counted_and_never_blinds_the_target(
    served: Serve, row: Any, field: str, message: str, counted: str | None
) -> None:
    """A row with an unreadable field counts in its status with that field unknown; a row
    without a readable id or status is left out. Either way the poll succeeds, the good
    row beside it is exact, and the row is counted in ``sessions_exporter_invalid_rows``."""
    sim = AgiSimulator(api_key=KEY)
    sim.fault = Fault(body=orjson.dumps([GOOD, row]))
    store = await poll_all(settings_for(target(await served(sim))))

    exp = scrape(store)
    assert 1 == exp.get("sessions_target_up", target=NAME)
    assert {field: 1.0} == invalid_rows(store, NAME)
    assert message == invalid_example(store, NAME)
    assert (2.0 if counted == "ready" else 1.0) == exp.get("sessions", target=NAME, status="ready")
    assert 1735689600.0 == exp.get(
        "sessions_oldest_created_timestamp_seconds", target=NAME, status="ready"
    )
