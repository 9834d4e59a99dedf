"""A failing target marks only itself down; stale data is withdrawn; the loop survives."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from structlog.testing import capture_logs

from exporter.polling.poller import TargetPoller
from exporter.polling.runtime import new_store
from exporter.providers.engine import DefinedProvider
from exporter.simulators import ChaserSimulator, Fault, NotteSimulator, chaser_row, iso, notte_row
from exporter.upstream.client import new_client_session
from exporter.upstream.errors import Reason
from exporter.upstream.fetch import Answer
from tests import harness
from tests.conftest import Serve
from tests.harness import KEY, NOW, Exposition, free_port, settings_for

T = NOW  # a fixed "now": the data below, and the clock of every poll and scrape here
poll_all = partial(harness.poll_all, clock=lambda: T)
scrape = partial(harness.scrape, clock=lambda: T)
GOOD_ROWS = [
    chaser_row("g1", "running", iso(T - 60), leases=1),
    chaser_row("g2", "idle", iso(T - 30), leases=0),
]
BAD_ROWS = [notte_row("n1", "active", T - 60, T - 10)]


def assert_good_intact(metrics: Exposition) -> None:
    """The healthy Chaser target exports exactly its data."""
    assert 1.0 == metrics.get("sessions_target_up", target="good")
    assert 1.0 == metrics.get("sessions", target="good", status="running")
    assert 1.0 == metrics.get("sessions", target="good", status="idle")
    assert 1.0 == metrics.get("sessions_connection_leases", target="good")
    assert 1.0 == metrics.get("sessions_unleased", target="good")


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault(status=500), "http_5xx"),
        (Fault(status=503), "http_5xx"),
        (Fault(status=404), "http_4xx"),
        (Fault(status=429, headers={"Retry-After": "5"}), "http_4xx"),
        (Fault(status=401), "auth"),
        (Fault(status=403), "auth"),
        (Fault(body=b'{"items": [{"session_id": '), "decode"),
        (Fault(body=b"<html>gateway</html>"), "decode"),
        (Fault(body=b'"sessions"'), "schema"),
        (Fault(body=b'{"items": {"session_id": 7}, "has_next": false}'), "schema"),
        (Fault(body=b'{"items": [], "has_next": "no"}'), "schema"),
        (Fault(delay=2.0), "timeout"),
    ],
)
async def test_fault_marks_only_its_target_down(served: Serve, fault: Fault, reason: str) -> None:
    """Each fault of the Notte target is counted under its reason; Chaser stays exact."""
    good = await served(ChaserSimulator(sessions=GOOD_ROWS, api_key=KEY))
    bad_sim = NotteSimulator(sessions=BAD_ROWS, api_key=KEY)
    bad_sim.fault = fault
    bad = await served(bad_sim)
    settings = settings_for(
        {"name": "good", "provider": "chaser", "base_url": good},
        {"name": "bad", "provider": "notte", "base_url": bad, "timeout": "300ms", "retries": 0},
    )

    store = await poll_all(settings)
    metrics = scrape(store)

    assert_good_intact(metrics)
    assert 0.0 == metrics.get("sessions_target_up", target="bad")
    assert 1.0 == metrics.get("sessions_exporter_poll_errors_total", target="bad", reason=reason)
    assert 1.0 == sum(
        metrics.by("sessions_exporter_poll_errors_total", "reason", target="bad").values()
    )
    assert {} == metrics.select("sessions", target="bad")
    assert {} == metrics.select("sessions_target_last_success_timestamp_seconds", target="bad")
    assert store.snapshots["bad"].error


async def test_wrong_key_is_auth_and_key_not_in_error(served: Serve) -> None:
    """A rejected key is reason auth; the error text never contains the key."""
    url = await served(ChaserSimulator(sessions=GOOD_ROWS, api_key="the-right-key"))
    settings = settings_for({"name": "t", "provider": "chaser", "base_url": url, "api_key": KEY})

    store = await poll_all(settings)

    snap = store.snapshots["t"]
    assert "auth" == (snap.error_reason and snap.error_reason.value)
    assert KEY not in (snap.error or "")


async def test_connection_refused_is_connect(served: Serve) -> None:
    """Nothing listening at the base url is reason connect."""
    good = await served(ChaserSimulator(sessions=GOOD_ROWS, api_key=KEY))
    settings = settings_for(
        {"name": "good", "provider": "chaser", "base_url": good},
        {
            "name": "gone",
            "provider": "notte",
            "base_url": f"http://127.0.0.1:{free_port()}",
            "retries": 0,
        },
    )

    metrics = scrape(await poll_all(settings))

    assert_good_intact(metrics)
    assert 1.0 == metrics.get(
        "sessions_exporter_poll_errors_total", target="gone", reason="connect"
    )


async def test_too_large_answer(served: Serve) -> None:
    """A body over max_response_bytes fails the poll with reason too_large."""
    rows = [chaser_row(f"s{i}", "running", iso(T)) for i in range(50)]
    url = await served(ChaserSimulator(sessions=rows, api_key=KEY))
    settings = settings_for(
        {"name": "t", "provider": "chaser", "base_url": url, "max_response_bytes": 2048}
    )

    metrics = scrape(await poll_all(settings))

    assert 1.0 == metrics.get("sessions_exporter_poll_errors_total", reason="too_large")


async def test_failed_poll_keeps_last_data_until_stale(served: Serve) -> None:
    """After a failure the last good series stay until stale_after, then vanish; health stays."""
    sim = ChaserSimulator(sessions=GOOD_ROWS, api_key=KEY)
    url = await served(sim)
    settings = settings_for(
        {"name": "good", "provider": "chaser", "base_url": url}, poll_interval="10s"
    )
    store = await poll_all(settings)
    success = store.snapshots["good"].last_success
    assert success is not None
    sim.fault = Fault(status=502)

    await poll_all(settings, store=store)

    fresh = scrape(store, clock=lambda: success + 29)
    assert 0.0 == fresh.get("sessions_target_up")
    assert 1.0 == fresh.get("sessions", status="running")
    assert success == fresh.get("sessions_target_last_success_timestamp_seconds")
    stale = scrape(store, clock=lambda: success + 31)
    assert {} == stale.select("sessions")
    assert {} == stale.select("sessions_connection_leases")
    assert 0.0 == stale.get("sessions_target_up")
    assert success == stale.get("sessions_target_last_success_timestamp_seconds")
    assert 1.0 == stale.get("sessions_exporter_poll_errors_total", reason="http_5xx")
    assert 2.0 == stale.get("sessions_exporter_polls_total")


async def test_recovery_after_failure(served: Serve) -> None:
    """A target that fails and then answers is up again with the new data."""
    sim = ChaserSimulator(sessions=GOOD_ROWS, api_key=KEY)
    sim.fault = Fault(status=500, times=1)
    url = await served(sim)
    settings = settings_for({"name": "good", "provider": "chaser", "base_url": url, "retries": 0})

    store = await poll_all(settings)
    assert not store.snapshots["good"].up
    sim.sessions.append(chaser_row("g3", "running", iso(T)))
    await poll_all(settings, store=store)

    metrics = scrape(store)
    assert 1.0 == metrics.get("sessions_target_up")
    assert 2.0 == metrics.get("sessions", status="running")
    assert {"500": 1.0, "200": 1.0} == metrics.by("sessions_exporter_api_requests_total", "code")


async def test_unexpected_exception_is_counted_and_loop_goes_on(
    served: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in a provider is reason unexpected; the poll loop keeps running and recovers."""
    url = await served(ChaserSimulator(sessions=GOOD_ROWS, api_key=KEY))
    settings = settings_for(
        {"name": "good", "provider": "chaser", "base_url": url}, poll_interval="20ms"
    )
    real = DefinedProvider._read  # the engine's read of an answer (Chaser's poll runs it)
    calls = {"n": 0}

    def flaky(self: DefinedProvider, answer: Answer, *args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] <= 3:
            raise RuntimeError("provider bug")
        return real(self, answer, *args)

    monkeypatch.setattr(DefinedProvider, "_read", flaky)
    store = new_store(settings)
    tasks_before = own_tasks()
    async with new_client_session() as session:
        poller = TargetPoller(
            target=settings.targets[0], interval=0.02, session=session, store=store
        )
        task = asyncio.create_task(poller.run())
        await wait_for(lambda: store.snapshots["good"].up and store.snapshots["good"].polls >= 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    snap = store.snapshots["good"]
    assert 3 == snap.errors[Reason.UNEXPECTED]
    assert tasks_before == own_tasks()


def own_tasks() -> int:
    """Running tasks, less the simulators' server-side connection handlers."""
    return sum("RequestHandler" not in repr(t.get_coro()) for t in asyncio.all_tasks())


async def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until ``condition()`` holds, failing after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_no_health_series_before_the_first_poll(served: Serve) -> None:
    """Before a target's first poll ends, sessions_target_up is absent (no false down alert)."""
    url = await served(ChaserSimulator(sessions=GOOD_ROWS, api_key=KEY))
    settings = settings_for({"name": "good", "provider": "chaser", "base_url": url})

    metrics = scrape(new_store(settings))

    assert {} == metrics.select("sessions_target_up")
    assert 0.0 == metrics.get("sessions_exporter_polls_total")


async def test_redirect_to_another_origin_is_not_followed(served: Serve) -> None:
    """A 3xx to another origin is a failed poll whose error says where it pointed and why."""
    sim = ChaserSimulator(sessions=GOOD_ROWS, api_key=KEY)
    sim.fault = Fault(status=301, headers={"Location": "https://elsewhere.example/v1/sessions"})
    url = await served(sim)

    store = await poll_all(settings_for({"name": "t", "provider": "chaser", "base_url": url}))

    snap = store.snapshots["t"]
    assert (
        "HTTP 301: redirect to https://elsewhere.example/v1/sessions not followed: it leaves "
        f"the origin {url} (the key is only sent to the configured origin; check base_url)"
        == snap.error
    )
    assert 1 == len(sim.requests)


async def test_hanging_targets_on_one_host_do_not_starve_another(served: Serve) -> None:
    """Nine targets hanging on the same host do not delay a tenth, healthy one."""
    targets = []
    for i in range(9):
        hanging = ChaserSimulator(sessions=GOOD_ROWS, api_key=KEY)
        hanging.fault = Fault(delay=3.0)
        url = await served(hanging)
        targets.append(
            {
                "name": f"hang{i}",
                "provider": "chaser",
                "base_url": url,
                "timeout": "2s",
                "retries": 0,
            }
        )
    good = await served(ChaserSimulator(sessions=GOOD_ROWS, api_key=KEY))
    targets.append({"name": "good", "provider": "chaser", "base_url": good})

    store = await poll_all(settings_for(*targets))

    snap = store.snapshots["good"]
    assert snap.up
    assert snap.poll_duration is not None
    assert snap.poll_duration < 1.0


def test_help_says_ended_counts_cover_the_window() -> None:
    """The `sessions` HELP tells that windowed ended counts cover sessions created in it."""
    text = scrape(new_store(settings_for({"name": "t", "provider": "trigger"}))).text

    assert (
        "# HELP sessions Sessions in each status (from the target's last successful poll). "
        "Where a target counts ended sessions over a history window (Trigger.dev's "
        "ended_window), ended statuses cover only sessions created within it.\n"
    ) in text


async def test_deeply_nested_error_body_is_summarized(served: Serve) -> None:
    """An error body nested 1000 deep is summarized in the error, not a stack overflow."""
    deep = b"[" * 1000 + b"]" * 1000
    sim = ChaserSimulator(sessions=GOOD_ROWS, api_key=KEY)
    sim.fault = Fault(status=400, body=b'{"error": ' + deep + b"}")
    url = await served(sim)

    store = await poll_all(settings_for({"name": "t", "provider": "chaser", "base_url": url}))

    assert "HTTP 400: [[[[…]]]]" == store.snapshots["t"].error


async def test_crash_traceback_logged_once_per_distinct_error(
    served: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug that repeats logs its traceback once; a different one logs again; polls go on."""
    url = await served(ChaserSimulator(sessions=GOOD_ROWS, api_key=KEY))
    settings = settings_for({"name": "good", "provider": "chaser", "base_url": url})
    messages = iter(["first bug"] * 3 + ["second bug"] * 2)

    def broken(self: DefinedProvider, answer: Answer, *args: Any) -> Any:
        raise RuntimeError(next(messages))

    monkeypatch.setattr(DefinedProvider, "_read", broken)  # the engine's read of an answer
    store = new_store(settings)
    async with new_client_session() as session:
        poller = TargetPoller(target=settings.targets[0], interval=30, session=session, store=store)
        with capture_logs() as logs:
            for _ in range(5):
                await poller.poll()

    crashed = [e for e in logs if e["event"] == "poll.crashed"]
    assert ["RuntimeError: first bug", "RuntimeError: second bug"] == [e["error"] for e in crashed]
    assert all(e.get("exc_info") for e in crashed)
    assert 5 == store.snapshots["good"].errors[Reason.UNEXPECTED]
