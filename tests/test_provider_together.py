"""Together Code Interpreter provider: real pollers against the simulator over loopback.

Timestamps are whole seconds plus binary fractions (0.125, 0.015625, ...) so that every
expected value below is exact, computed from the dataset's own numbers.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from structlog.testing import capture_logs

from exporter.providers.together import TogetherProvider
from exporter.simulators import Fault, TogetherSimulator, iso, together_row
from exporter.upstream.fetch import PageFetcher
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
NAME = "together-1"


def now() -> float:
    """The current unix time in whole seconds, the base of every dataset."""
    return float(int(time.time()))


def target(base: str, **options: Any) -> dict[str, Any]:
    """A Together target for the simulator at ``base`` (its server url ends in ``/v1``)."""
    return {"name": NAME, "provider": "together", "base_url": base + "/v1", **options}


async def poll(served: Serve, sim: TogetherSimulator, *, rounds: int = 1) -> Exposition:
    """Poll one Together target ``rounds`` times and scrape the result."""
    settings = settings_for(target(await served(sim)))
    return scrape(await poll_all(settings, rounds=rounds))


def sessions(exp: Exposition) -> dict[tuple[str, str], float]:
    """The target's ``sessions`` series as (status, phase) -> value."""
    return {
        (dict(labels)["status"], dict(labels)["phase"]): value
        for labels, value in exp.select("sessions", target=NAME).items()
    }


async def test_every_metric_exact_on_mixed_timestamp_formats(served: Serve) -> None:
    """All listed sessions count as active/live; deadlines, activity and executions are exact.

    Timestamps mix ``Z`` and ``+00:00`` with 0, 3 and 6 fraction digits; two sessions
    are still listed after ``expires_at`` (overdue), the rest expire in the future.
    """
    t = now()
    sim = TogetherSimulator(
        api_key=KEY,
        sessions=[
            together_row(
                "ses_a",
                iso(t - 7200 + 0.125, fraction=3),
                iso(t - DAY, fraction=0, zulu=False),
                last_execute_at=iso(t - 3600 + 0.015625, fraction=6, zulu=False),
                execute_count=3,
            ),
            together_row(
                "ses_b",
                iso(t - 600, fraction=0, zulu=False),
                iso(t + DAY + 0.5, fraction=3),
                last_execute_at=iso(t - 60 + 0.25, fraction=6),
                execute_count=5,
            ),
            together_row(
                "ses_c",
                iso(t - 300 + 0.015625, fraction=6),
                iso(t + 3600, fraction=0),
                last_execute_at=iso(t - 30 + 0.375, fraction=3, zulu=False),
                execute_count=0,
            ),
            together_row(
                "ses_d",
                iso(t - 2 * DAY + 0.75, fraction=6, zulu=False),
                iso(t - DAY - 3600 + 0.125, fraction=3, zulu=False),
                last_execute_at=iso(t - 1.5 * DAY, fraction=0),
                execute_count=2,
            ),
        ],
    )
    exp = await poll(served, sim)

    assert {("active", "live"): 4} == sessions(exp)
    labels = {"target": NAME, "provider": "together", "status": "active", "phase": "live"}
    assert t - 2 * DAY + 0.75 == exp.get("sessions_oldest_created_timestamp_seconds", **labels)
    assert 2 == exp.get("sessions_overdue", target=NAME)
    assert t - DAY - 3600 + 0.125 == exp.get(
        "sessions_next_deadline_timestamp_seconds", target=NAME
    )
    assert t - 1.5 * DAY == exp.get("sessions_oldest_activity_timestamp_seconds", target=NAME)
    assert 10 == exp.get("sessions_executions", target=NAME)
    assert 1 == exp.get("sessions_target_up", target=NAME, provider="together")
    assert 0 == exp.get("sessions_exporter_upstream_errors_total", target=NAME)
    assert 1 == exp.get("sessions_exporter_pages_fetched_total", target=NAME)
    assert exp.get("sessions_connection_leases", target=NAME) is None
    assert exp.get("sessions_unleased", target=NAME) is None
    assert [("/v1/tci/sessions", True, {})] == [
        (r.path, r.authorized, dict(r.query)) for r in sim.requests
    ]


async def test_empty_list_exports_zero_active_and_no_time_series(served: Serve) -> None:
    """With no session, ``active`` is exported as 0 and every timestamp series is absent."""
    exp = await poll(served, TogetherSimulator(api_key=KEY))

    assert {("active", "live"): 0} == sessions(exp)
    assert 0 == exp.get("sessions_overdue", target=NAME)
    assert 0 == exp.get("sessions_executions", target=NAME)
    for name in (
        "sessions_oldest_created_timestamp_seconds",
        "sessions_next_deadline_timestamp_seconds",
        "sessions_oldest_activity_timestamp_seconds",
    ):
        assert exp.get(name, target=NAME) is None, name
    assert 1 == exp.get("sessions_target_up", target=NAME)


async def test_null_secondary_fields_make_those_facts_unknown(served: Serve) -> None:
    """A null ``expires_at``/``last_execute_at``/``execute_count`` is unknown, not an error.

    The session still counts; it adds no deadline, activity or executions, so those
    metrics come from the other session alone.
    """
    t = now()
    sim = TogetherSimulator(
        api_key=KEY,
        sessions=[
            together_row("ses_null", t - 7200, t - DAY)
            | {"expires_at": None, "last_execute_at": None, "execute_count": None},
            together_row(
                "ses_full", t - 60, t + DAY, last_execute_at=t - 30 + 0.5, execute_count=4
            ),
        ],
    )
    exp = await poll(served, sim)

    assert {("active", "live"): 2} == sessions(exp)
    assert t - 7200 == exp.get("sessions_oldest_created_timestamp_seconds", target=NAME)
    assert 0 == exp.get("sessions_overdue", target=NAME)
    assert t + DAY == exp.get("sessions_next_deadline_timestamp_seconds", target=NAME)
    assert t - 30 + 0.5 == exp.get("sessions_oldest_activity_timestamp_seconds", target=NAME)
    assert 4 == exp.get("sessions_executions", target=NAME)


async def test_missing_secondary_fields_make_those_facts_unknown(served: Serve) -> None:
    """Sessions without any deadline leave ``next_deadline`` absent and ``overdue`` at 0."""
    t = now()
    bare = {"id": "ses_bare", "started_at": iso(t - 100)}
    exp = await poll(served, TogetherSimulator(api_key=KEY, sessions=[bare]))

    assert {("active", "live"): 1} == sessions(exp)
    assert 0 == exp.get("sessions_overdue", target=NAME)
    assert exp.get("sessions_next_deadline_timestamp_seconds", target=NAME) is None
    assert exp.get("sessions_oldest_activity_timestamp_seconds", target=NAME) is None
    assert 0 == exp.get("sessions_executions", target=NAME)


@pytest.mark.parametrize(
    ("override", "field", "kept"),
    [
        ({"id": None}, "id", False),
        ({"id": 17}, "id", False),
        ({"started_at": None}, "started_at", True),
        ({"started_at": "yesterday"}, "started_at", True),
        ({"expires_at": "soon"}, "expires_at", True),
        ({"expires_at": 1700000000}, "expires_at", True),
        ({"last_execute_at": "never"}, "last_execute_at", True),
        ({"execute_count": "3"}, "execute_count", True),
        ({"execute_count": True}, "execute_count", True),
        ({"execute_count": -1}, "execute_count", True),
    ],
)
async def test_a_field_of_the_wrong_type_is_counted_not_fatal(
    served: Serve, override: dict[str, Any], field: str, kept: bool
) -> None:
    """A field of a type the spec rules out makes that fact unknown for its row (a bad id
    leaves the row out); the poll succeeds and the row is counted by field, its message
    naming the row's place in the listing."""
    t = now()
    sim = TogetherSimulator(
        api_key=KEY,
        sessions=[
            together_row("ses_ok", t - 60, t + DAY, execute_count=2),
            together_row("ses_bad", t - 30, t + DAY, execute_count=3) | override,
        ],
    )
    store = await poll_all(settings_for(target(await served(sim))))
    exp = scrape(store)

    assert 1 == exp.get("sessions_target_up", target=NAME)
    assert {field: 1.0} == invalid_rows(store, NAME)
    assert invalid_example(store, NAME).startswith(f"data.sessions[1].{field}: expected")
    assert {("active", "live"): 2.0 if kept else 1.0} == sessions(exp)
    assert t - 60 == exp.get("sessions_oldest_created_timestamp_seconds", target=NAME)
    executions = 2 + (3 if kept and field != "execute_count" else 0)
    assert executions == exp.get("sessions_executions", target=NAME)


async def test_upstream_errors_are_counted_logged_and_data_still_exported(
    served: Serve,
) -> None:
    """A non-empty ``errors`` array is counted and logged; the sessions are still exported.

    Errors may be strings or objects (an object's ``message`` is used, else its JSON);
    the counter is cumulative over polls.
    """
    t = now()
    sim = TogetherSimulator(
        api_key=KEY,
        sessions=[
            together_row("ses_a", t - 120, t + DAY, execute_count=2),
            together_row("ses_b", t - 60, t + DAY, execute_count=1),
        ],
        errors=[
            "quota nearly exhausted",
            {"code": "partial", "message": "region eu-west unavailable"},
            {"code": 7},
        ],
    )
    with capture_logs() as logs:
        exp = await poll(served, sim, rounds=2)

    assert 6 == exp.get("sessions_exporter_upstream_errors_total", target=NAME)
    assert 1 == exp.get("sessions_target_up", target=NAME)
    assert {("active", "live"): 2} == sessions(exp)
    assert 3 == exp.get("sessions_executions", target=NAME)
    warnings = [e for e in logs if e["event"] == "poll.upstream_errors"]
    assert 2 == len(warnings)
    assert ["quota nearly exhausted", "region eu-west unavailable", '{"code":7}'] == warnings[0][
        "errors"
    ]
    assert 3 == warnings[0]["count"]
    assert NAME == warnings[0]["target"]


async def test_empty_errors_array_reports_nothing(served: Serve) -> None:
    """An empty ``errors`` array (the normal case) counts no upstream error and logs none."""
    t = now()
    sim = TogetherSimulator(
        api_key=KEY, sessions=[together_row("ses_a", t - 120, t + DAY)], errors=[]
    )
    with capture_logs() as logs:
        exp = await poll(served, sim)

    assert 0 == exp.get("sessions_exporter_upstream_errors_total", target=NAME)
    assert [] == [e for e in logs if e["event"] == "poll.upstream_errors"]


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({"errors": ["sessions backend down", "retry later"]}, "response.data"),
        ({"data": None, "errors": ["sessions backend down"]}, "response.data"),
        ({"data": {}, "errors": [{"message": "sessions backend down"}]}, "response.data.sessions"),
        (
            {"data": {"sessions": "n/a"}, "errors": ["sessions backend down"]},
            "response.data.sessions",
        ),
    ],
)
async def test_missing_data_with_errors_is_a_schema_error_quoting_the_first(
    served: Serve, body: dict[str, Any], location: str
) -> None:
    """Without usable ``data.sessions`` the poll fails as ``schema``, quoting ``errors[0]``.

    The listed errors are still counted as upstream errors.
    """
    sim = TogetherSimulator(api_key=KEY)
    sim.fault = Fault(body=orjson.dumps(body))
    settings = settings_for(target(await served(sim)))
    store = await poll_all(settings)
    exp = scrape(store)

    assert 0 == exp.get("sessions_target_up", target=NAME)
    assert 1 == exp.get("sessions_exporter_poll_errors_total", target=NAME, reason="schema")
    assert len(body["errors"]) == exp.get("sessions_exporter_upstream_errors_total", target=NAME)
    error = store.snapshots[NAME].error
    assert error is not None
    assert error.startswith(location + ":")
    assert "sessions backend down" in error


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "response.data: expected an object, got null"),
        ({"data": {"sessions": None}}, "response.data.sessions: expected an array, got null"),
        ([], "response: expected an object, got list"),
        ({"data": {"sessions": []}, "errors": "oops"}, "response.errors: expected an array"),
    ],
)
async def test_malformed_response_without_errors_is_a_schema_error(
    served: Serve, body: Any, message: str
) -> None:
    """A response of the wrong shape fails as ``schema`` with the location of the problem."""
    sim = TogetherSimulator(api_key=KEY)
    sim.fault = Fault(body=orjson.dumps(body))
    settings = settings_for(target(await served(sim)))
    store = await poll_all(settings)

    snapshot = store.snapshots[NAME]
    assert not snapshot.up
    assert snapshot.error is not None
    assert snapshot.error.startswith(message)
    assert 1 == scrape(store).get(
        "sessions_exporter_poll_errors_total", target=NAME, reason="schema"
    )


async def test_overdue_counts_only_deadlines_already_passed(served: Serve) -> None:
    """``sessions_overdue`` counts exactly the sessions whose ``expires_at`` lies in the past."""
    t = now()
    sim = TogetherSimulator(
        api_key=KEY,
        sessions=[
            together_row(f"ses_past_{i}", t - 3 * DAY, t - DAY - i, execute_count=1)
            for i in range(3)
        ]
        + [
            together_row(f"ses_future_{i}", t - 3 * DAY, t + DAY + i, execute_count=1)
            for i in range(5)
        ],
    )
    exp = await poll(served, sim)

    assert 3 == exp.get("sessions_overdue", target=NAME)
    assert t - DAY - 2 == exp.get("sessions_next_deadline_timestamp_seconds", target=NAME)
    assert 8 == exp.get("sessions_executions", target=NAME)
    assert {("active", "live"): 8} == sessions(exp)


async def test_a_huge_errors_array_is_counted_not_built(served: Serve) -> None:
    """An ``errors`` array of 2,000,000 items (16 MiB) is counted whole, its first ten read:
    the fetcher keeps ten messages and counts the rest, and the sessions are exported. The
    whole array used to be decoded and walked on the loop (3.1 s hold, +291 MiB)."""
    t = now()
    count = 2_000_000
    sim = TogetherSimulator(
        api_key=KEY,
        sessions=[together_row("ses_a", t - 120, t + DAY)],
        errors=[{"message": f"e{i}"} for i in range(12)] + ["x" * 4] * (count - 12),
    )
    url = await served(sim)
    kept: list[PageFetcher] = []
    original = TogetherProvider.pages

    def pages(self: TogetherProvider, fetcher: PageFetcher) -> Any:
        kept.append(fetcher)
        return original(self, fetcher)

    with capture_logs() as logs, pytest.MonkeyPatch.context() as patch:
        patch.setattr(TogetherProvider, "pages", pages)
        exp = scrape(await poll_all(settings_for(target(url, max_response_bytes=64 * 1024 * 1024))))

    assert count == exp.get("sessions_exporter_upstream_errors_total", target=NAME)
    assert {("active", "live"): 1} == sessions(exp)
    assert [f"e{i}" for i in range(10)] == kept[0].upstream_errors
    assert count - 10 == kept[0].upstream_errors_more
    warned = [e for e in logs if e["event"] == "poll.upstream_errors"]
    assert [(count, [f"e{i}" for i in range(10)])] == [(e["count"], e["errors"]) for e in warned]
