"""Retries inside a poll, the per-target rate limit, and backoff across polls."""

from __future__ import annotations

import asyncio
import random
import time
from email.utils import formatdate
from functools import partial

import pytest

from exporter.fetch import RetryPolicy, retry_after
from exporter.poller import BACKOFF_CAP, TargetPoller
from exporter.runtime import new_client_session, new_store
from exporter.simulators import ChaserSimulator, Fault, chaser_row, iso
from tests import harness
from tests.conftest import Serve
from tests.harness import KEY, NOW, settings_for

T = NOW  # a fixed "now": the data below, and the clock of every poll and scrape here
poll_all = partial(harness.poll_all, clock=lambda: T)
scrape = partial(harness.scrape, clock=lambda: T)
ROWS = [chaser_row("a", "running", iso(T - 60)), chaser_row("b", "idle", iso(T - 30))]


def chaser(url: str, **options: object) -> dict[str, object]:
    """A Chaser target at ``url``."""
    return {"name": "c", "provider": "chaser", "base_url": url, **options}


async def test_transient_5xx_is_retried_and_the_poll_succeeds(served: Serve) -> None:
    """Two 503s then an answer: the poll succeeds, with 2 retries and every request counted."""
    sim = ChaserSimulator(sessions=ROWS, api_key=KEY)
    sim.fault = Fault(status=503, headers={"Retry-After": "0"}, times=2)
    url = await served(sim)

    metrics = scrape(await poll_all(settings_for(chaser(url))))

    assert 1.0 == metrics.get("sessions_target_up")
    assert 2.0 == metrics.get("sessions_exporter_api_retries_total")
    assert {"503": 2.0, "200": 1.0} == metrics.by("sessions_exporter_api_requests_total", "code")
    assert 0.0 == sum(metrics.by("sessions_exporter_poll_errors_total", "reason").values())


async def test_retries_exhausted_fail_the_poll(served: Serve) -> None:
    """A 500 on every attempt fails the poll as http_5xx after retries+1 requests."""
    sim = ChaserSimulator(sessions=ROWS, api_key=KEY)
    sim.fault = Fault(status=500, headers={"Retry-After": "0"})
    url = await served(sim)

    metrics = scrape(await poll_all(settings_for(chaser(url, retries=3))))

    assert 0.0 == metrics.get("sessions_target_up")
    assert {"500": 4.0} == metrics.by("sessions_exporter_api_requests_total", "code")
    assert 1.0 == metrics.get("sessions_exporter_poll_errors_total", reason="http_5xx")


async def test_429_retry_after_seconds_is_honoured(served: Serve) -> None:
    """429 with `Retry-After: 1` waits a second before the retry that succeeds."""
    sim = ChaserSimulator(sessions=ROWS, api_key=KEY)
    sim.fault = Fault(status=429, headers={"Retry-After": "1"}, times=1)
    url = await served(sim)

    started = time.monotonic()
    store = await poll_all(settings_for(chaser(url)))
    elapsed = time.monotonic() - started

    assert store.snapshots["c"].up
    assert 1.0 <= elapsed < 3.0
    assert {"429": 1, "200": 1} == dict(store.snapshots["c"].requests)


async def test_429_retry_after_http_date_is_honoured(served: Serve) -> None:
    """An HTTP-date `Retry-After` is waited for too."""
    sim = ChaserSimulator(sessions=ROWS, api_key=KEY)
    sim.fault = Fault(
        status=429, headers={"Retry-After": formatdate(time.time() + 2, usegmt=True)}, times=1
    )
    url = await served(sim)

    started = time.monotonic()
    store = await poll_all(settings_for(chaser(url)))

    assert store.snapshots["c"].up
    assert 0.9 <= time.monotonic() - started < 4.0


async def test_retry_after_past_the_deadline_fails_at_once(served: Serve) -> None:
    """A Retry-After longer than the poll may last is not waited for: the poll fails now."""
    sim = ChaserSimulator(sessions=ROWS, api_key=KEY)
    sim.fault = Fault(status=429, headers={"Retry-After": "3600"})
    url = await served(sim)

    started = time.monotonic()
    store = await poll_all(settings_for(chaser(url), poll_interval="5s"))

    assert time.monotonic() - started < 1.0
    snap = store.snapshots["c"]
    assert "http_4xx" == (snap.error_reason and snap.error_reason.value)
    assert "(Retry-After 3600s is past the poll's deadline)" in (snap.error or "")


@pytest.mark.parametrize(
    "value",
    [
        "\u00b2",  # a superscript two: str.isdigit() says yes, float() says no
        "\u0661\u0662",  # Arabic-Indic digits, which float() would read as 12
        "Fri, 31 Dec 9999 23:59:59 GMT",
        "Mon, 01 Jan 99999999999999999999 00:00:00 GMT",  # overflows a C long
    ],
)
async def test_hostile_retry_after_is_ignored_and_the_503_retried(
    served: Serve, value: str
) -> None:
    """A Retry-After that is no usable wait is treated as absent: the 503 is retried on the
    ordinary backoff and the poll succeeds (no crash, no wait of years)."""
    sim = ChaserSimulator(sessions=ROWS, api_key=KEY)
    sim.fault = Fault(status=503, headers={"Retry-After": value}, times=1)
    url = await served(sim)

    store = await poll_all(settings_for(chaser(url), poll_interval="10s"))

    snap = store.snapshots["c"]
    assert snap.up, snap.error
    assert 1 == snap.retries
    assert {"503": 1, "200": 1} == dict(snap.requests)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault(status=401), "auth"),
        (Fault(status=404), "http_4xx"),
        (Fault(body=b"{not json"), "decode"),
        (Fault(body=b"[]"), "schema"),
    ],
)
async def test_final_errors_are_not_retried(served: Serve, fault: Fault, reason: str) -> None:
    """Auth, other 4xx, malformed and wrong-shaped answers fail after one request."""
    sim = ChaserSimulator(sessions=ROWS, api_key=KEY)
    sim.fault = fault
    url = await served(sim)

    store = await poll_all(settings_for(chaser(url)))

    assert 1 == len(sim.requests)
    snap = store.snapshots["c"]
    assert reason == (snap.error_reason and snap.error_reason.value)
    assert 0 == snap.retries


def test_retry_after_parsing() -> None:
    """Delta-seconds and HTTP-dates parse; garbage and absence are None."""
    assert 120.0 == retry_after("120")
    assert 30.0 == retry_after("Thu, 01 Jan 2026 00:00:30 GMT", now=1767225600.0)
    assert 0.0 == retry_after("Thu, 01 Jan 2026 00:00:00 GMT", now=1767225700.0)
    assert retry_after("soon") is None
    assert retry_after(None) is None
    assert retry_after("\u00b2") is None
    assert retry_after("86401") is None  # more than a day ahead: absent
    assert 86400.0 == retry_after("86400")


async def test_rate_limit_spaces_requests(served: Serve) -> None:
    """rate_limit: 20 spaces 11 page requests over at least half a second; 0 means no limit."""
    rows = [chaser_row(f"s{i}", "running", iso(T - i)) for i in range(11)]
    url = await served(ChaserSimulator(sessions=rows, api_key=KEY))

    started = time.monotonic()
    limited = await poll_all(settings_for(chaser(url, page_size=1, rate_limit=20)))
    limited_time = time.monotonic() - started
    started = time.monotonic()
    unlimited = await poll_all(settings_for(chaser(url, page_size=1, rate_limit=0)))
    unlimited_time = time.monotonic() - started

    assert 11 == limited.snapshots["c"].pages == unlimited.snapshots["c"].pages
    assert limited_time >= 0.5
    assert unlimited_time < 0.5


async def test_rate_limit_headers_become_gauges(served: Serve) -> None:
    """X-RateLimit-Remaining/Reset (delta seconds) are exported as remaining and reset time."""
    sim = ChaserSimulator(sessions=ROWS, api_key=KEY)
    sim.fault = Fault(headers={"X-RateLimit-Remaining": "42", "X-RateLimit-Reset": "30"})
    url = await served(sim)

    before = time.time()
    metrics = scrape(await poll_all(settings_for(chaser(url))))

    assert 42.0 == metrics.get("sessions_exporter_rate_limit_remaining")
    reset = metrics.get("sessions_exporter_rate_limit_reset_timestamp_seconds")
    assert reset is not None
    assert before + 30 <= reset <= time.time() + 30


async def test_no_rate_limit_headers_no_gauges(served: Serve) -> None:
    """Without rate-limit headers the gauges are absent, not 0."""
    url = await served(ChaserSimulator(sessions=ROWS, api_key=KEY))

    metrics = scrape(await poll_all(settings_for(chaser(url))))

    assert {} == metrics.select("sessions_exporter_rate_limit_remaining")
    assert {} == metrics.select("sessions_exporter_rate_limit_reset_timestamp_seconds")


@pytest.mark.parametrize(
    ("interval", "waits"),
    [
        (10.0, [10.0, 10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0]),
        (600.0, [600.0, 600.0, 600.0, 600.0]),
    ],
)
async def test_backoff_across_polls(interval: float, waits: list[float]) -> None:
    """Waits double per consecutive failure from the second on, capped (never below interval)."""
    settings = settings_for(chaser("http://127.0.0.1:9"))
    async with new_client_session() as session:
        poller = TargetPoller(
            target=settings.targets[0],
            interval=interval,
            session=session,
            store=new_store(settings),
        )

        assert waits == [poller.next_wait(failures) for failures in range(len(waits))]
    assert 300.0 == BACKOFF_CAP


async def test_failing_target_backs_off_and_recovers_at_once(served: Serve) -> None:
    """A down target is polled less and less often; once it answers, it is up again."""
    sim = ChaserSimulator(sessions=ROWS, api_key=KEY)
    sim.fault = Fault(status=500)
    url = await served(sim)
    settings = settings_for(chaser(url, retries=0), poll_interval="50ms")
    store = new_store(settings)
    async with new_client_session() as session:
        poller = TargetPoller(
            target=settings.targets[0], interval=0.05, session=session, store=store
        )
        task = asyncio.create_task(poller.run())
        await asyncio.sleep(1.2)
        polls_while_down = store.snapshots["c"].polls
        sim.fault = None
        async with asyncio.timeout(3):
            while not store.snapshots["c"].up:
                await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    # 0.05 s polls for 1.2 s would be ~24; doubling waits (0.05, 0.1, 0.2, 0.4, 0.8) allow ~6
    assert 4 <= polls_while_down <= 7


async def test_many_failing_polls_leave_no_task_behind(served: Serve) -> None:
    """Sixty polls failing in every way (5xx, timeout, dropped, malformed) add no task."""
    sim = ChaserSimulator(sessions=ROWS, api_key=KEY)
    url = await served(sim)
    settings = settings_for(chaser(url, timeout="100ms", rate_limit=0, retries=0))
    faults = [
        Fault(status=503, headers={"Retry-After": "0"}),
        Fault(delay=0.3),
        Fault(drop=True),
        Fault(truncate=True),
        Fault(body=b"{oops"),
    ]
    store = new_store(settings)
    async with new_client_session() as session:
        poller = TargetPoller(target=settings.targets[0], interval=30, session=session, store=store)
        await poller.poll()
        baseline = _own_tasks()
        for i in range(60):
            sim.fault = faults[i % len(faults)]
            await poller.poll()
        sim.fault = None
        await poller.poll()
        await asyncio.sleep(0.5)  # the simulator's own 0.3 s delays, which outlive our timeouts
        after = _own_tasks()

    snap = store.snapshots["c"]
    assert 62 == snap.polls
    assert snap.up
    assert 60 == sum(snap.errors.values())
    assert baseline == after


def _own_tasks() -> int:
    """Running tasks, less the simulators' server-side connection handlers."""
    return sum(
        "RequestHandler" not in repr(t.get_coro()) and not t.done() for t in asyncio.all_tasks()
    )


def test_backoff_is_full_jitter_within_its_cap() -> None:
    """Attempt n waits uniformly in [0, min(cap, base * 2**(n-1))], spread over that range."""
    policy = RetryPolicy(attempts=6, base=0.5, cap=8.0)
    rng = random.Random(7)  # noqa: S311 - a seeded sample of jitter, not cryptography

    for attempt, ceiling in ((1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (9, 8.0)):
        waits = [policy.backoff(attempt, rng) for _ in range(2000)]
        assert 0.0 <= min(waits)
        assert max(waits) <= ceiling
        assert ceiling * 0.9 <= max(waits)  # full jitter reaches near the ceiling
        assert min(waits) <= ceiling * 0.1  # and near zero


async def test_backoff_never_outlasts_the_poll_deadline(served: Serve) -> None:
    """Without Retry-After, 5xx retries stop when the next backoff would pass poll_timeout."""
    sim = ChaserSimulator(sessions=ROWS, api_key=KEY)
    sim.fault = Fault(status=502)
    url = await served(sim)

    started = time.monotonic()
    store = await poll_all(settings_for(chaser(url, retries=10, poll_timeout="1s")))
    elapsed = time.monotonic() - started

    snap = store.snapshots["c"]
    assert "http_5xx" == (snap.error_reason and snap.error_reason.value)
    assert elapsed < 1.0
    assert 1 <= snap.retries < 10
