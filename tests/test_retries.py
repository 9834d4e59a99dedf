"""Retries inside a poll, the per-target rate limit, and backoff across polls."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from email.utils import formatdate

import pytest
from aiohttp import web

from exporter.config.settings import Settings
from exporter.polling.poller import BACKOFF_CAP, TargetPoller
from exporter.polling.runtime import new_store
from exporter.polling.state import Store
from exporter.providers import wire
from exporter.providers.base import Provider
from exporter.providers.trigger import TriggerProvider
from exporter.simulators import ChaserSimulator, Fault, TriggerSimulator, chaser_row, iso
from exporter.upstream.client import new_client_session
from exporter.upstream.errors import PollError, Reason
from exporter.upstream.fetch import (
    RateLimitInfo,
    RetryPolicy,
    default_rate_limit_reset,
    retry_after,
    should_retry,
)
from tests.conftest import Serve
from tests.harness import KEY, poll_all, scrape, settings_for
from tests.origin import json_response, new_fetcher, origin_server

T = 1_767_225_600.0
"""A fixed wall time (2026-01-01T00:00:00Z) for the rows and the clocks given to the code."""
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


async def test_fractional_retry_after_is_waited_for(served: Serve) -> None:
    """`Retry-After: 0.5` (a fraction, as the SDKs read it) is the wait, not the backoff:
    with a backoff that would wait 50 s (seeded jitter), the retry comes after half a second."""
    sim = ChaserSimulator(sessions=ROWS, api_key=KEY)
    sim.fault = Fault(status=503, headers={"Retry-After": "0.5"}, times=1)
    url = await served(sim) + "/v1/sessions"
    async with new_client_session() as session:
        fetcher = new_fetcher(
            session,
            url,
            retry=RetryPolicy(attempts=2, base=60.0, cap=60.0),
            rng=random.Random(0),  # noqa: S311 - a fixed jitter: uniform(0, 60) is 50.6 first
        )
        started = time.monotonic()
        await fetcher.get_body()
        elapsed = time.monotonic() - started

    assert 0.5 <= elapsed < 5.0
    assert {"503": 1, "200": 1} == dict(fetcher.requests)


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
        (Fault(body=b'"sessions"'), "schema"),
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
    assert 1.5 == retry_after(" 1.5 ")
    assert 0.25 == retry_after("0.25")
    assert retry_after("-1") is None
    assert retry_after("1e3") is None
    assert retry_after("inf") is None
    assert 30.0 == retry_after("Thu, 01 Jan 2026 00:00:30 GMT", now=1767225600.0)
    assert 0.0 == retry_after("Thu, 01 Jan 2026 00:00:00 GMT", now=1767225700.0)
    assert retry_after("soon") is None
    assert retry_after(None) is None
    assert retry_after("\u00b2") is None
    assert retry_after("86401") is None  # more than a day ahead: absent
    assert 86400.0 == retry_after("86400")
    assert 1.5 == retry_after("1.5")  # a fraction, as the SDKs read it
    # "-0000" says no zone: taken as GMT, never as the machine's local time
    assert 30.0 == retry_after("Thu, 01 Jan 2026 00:00:30 -0000", now=1767225600.0)


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


async def poll_at(settings: Settings, now: float) -> Store:
    """One poll of the first target through the real poller, its wall clock fixed at ``now``."""
    store = new_store(settings)
    async with new_client_session() as session:
        poller = TargetPoller(
            target=settings.targets[0],
            interval=settings.interval(settings.targets[0]),
            session=session,
            store=store,
            clock=lambda: now,
        )
        await poller.poll()
    return store


async def test_rate_limit_headers_become_gauges(served: Serve) -> None:
    """X-RateLimit-Remaining/Reset (delta seconds) are exported as remaining and reset time."""
    sim = ChaserSimulator(sessions=ROWS, api_key=KEY)
    sim.fault = Fault(headers={"X-RateLimit-Remaining": "42", "X-RateLimit-Reset": "30"})
    url = await served(sim)

    metrics = scrape(await poll_at(settings_for(chaser(url)), T), clock=lambda: T)

    assert 42.0 == metrics.get("sessions_exporter_rate_limit_remaining")
    assert T + 30 == metrics.get("sessions_exporter_rate_limit_reset_timestamp_seconds")


async def test_unix_time_reset_is_kept_by_the_default_rule(served: Serve) -> None:
    """A reset above 1e9 is already a unix time in seconds (the default rule)."""
    sim = ChaserSimulator(sessions=ROWS, api_key=KEY)
    sim.fault = Fault(headers={"RateLimit-Reset": str(int(T) + 90)})
    url = await served(sim)

    metrics = scrape(await poll_at(settings_for(chaser(url)), T), clock=lambda: T)

    assert T + 90 == metrics.get("sessions_exporter_rate_limit_reset_timestamp_seconds")
    assert {} == metrics.select("sessions_exporter_rate_limit_remaining")


async def test_trigger_reset_is_milliseconds_and_exported_in_seconds(
    served: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Trigger.dev's x-ratelimit-reset (unix ms) becomes a reset gauge in unix seconds."""
    monkeypatch.setattr(
        TriggerProvider, "rate_limit_reset", staticmethod(wire.trigger_rate_limit_reset)
    )
    sim = TriggerSimulator(api_key=KEY)
    sim.fault = Fault(
        headers={"x-ratelimit-remaining": "7", "x-ratelimit-reset": str(int(T) * 1000 + 60_500)}
    )
    url = await served(sim)
    settings = settings_for({"name": "t", "provider": "trigger", "base_url": url})

    metrics = scrape(await poll_at(settings, T), clock=lambda: T)

    assert T + 60.5 == metrics.get("sessions_exporter_rate_limit_reset_timestamp_seconds")
    assert 7.0 == metrics.get("sessions_exporter_rate_limit_remaining")


def test_reset_rules() -> None:
    """The default rule (seconds or unix time) and Trigger.dev's (unix milliseconds)."""
    assert T + 30 == default_rate_limit_reset({"X-RateLimit-Reset": "30"}, T)
    assert T == default_rate_limit_reset({"RateLimit-Reset": str(int(T))}, 5.0)
    assert default_rate_limit_reset({"X-RateLimit-Reset": "nan"}, T) is None
    assert default_rate_limit_reset({"X-RateLimit-Reset": "soon"}, T) is None
    assert default_rate_limit_reset({}, T) is None
    assert T + 1.5 == wire.trigger_rate_limit_reset(
        {"X-RateLimit-Reset": str(int(T) * 1000 + 1500)}, 0.0
    )
    assert wire.trigger_rate_limit_reset({"X-RateLimit-Reset": "-1"}, T) is None
    assert wire.trigger_rate_limit_reset({}, T) is None
    assert T + 30 == Provider.rate_limit_reset({"X-RateLimit-Reset": "30"}, T)


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
    """Without Retry-After, 5xx retries stop when the next backoff would pass poll_timeout: the
    poll ends on its own last answer (reason http_5xx), before the deadline would have cut a
    wait short (reason timeout), having retried at least once and fewer times than allowed.
    (No wall-clock bound: the reason says which came first, whatever the machine's speed.)"""
    sim = ChaserSimulator(sessions=ROWS, api_key=KEY)
    sim.fault = Fault(status=502)
    url = await served(sim)

    store = await poll_all(settings_for(chaser(url, retries=10, poll_timeout="1s")))

    snap = store.snapshots["c"]
    assert "http_5xx" == (snap.error_reason and snap.error_reason.value)
    assert 1 <= snap.retries < 10


@pytest.mark.parametrize("status", [408, 409])
async def test_request_and_lock_timeouts_are_retried(served: Serve, status: int) -> None:
    """408 and 409 are retried as the SDKs do (safe for a GET: nothing is written twice)."""
    sim = ChaserSimulator(sessions=ROWS, api_key=KEY)
    sim.fault = Fault(status=status, headers={"Retry-After": "0"}, times=1)
    url = await served(sim)

    store = await poll_all(settings_for(chaser(url)))

    snap = store.snapshots["c"]
    assert snap.up
    assert 1 == snap.retries
    assert {str(status): 1, "200": 1} == dict(snap.requests)


@pytest.mark.parametrize(
    ("fault", "requests", "reason"),
    [
        (Fault(status=503, headers={"x-should-retry": "false"}), {"503": 1}, "http_5xx"),
        (Fault(status=429, headers={"X-Should-Retry": "False"}), {"429": 1}, "http_4xx"),
        (Fault(status=400, headers={"x-should-retry": "true", "Retry-After": "0"}),
         {"400": 3}, "http_4xx"),
        (Fault(status=401, headers={"x-should-retry": "true"}), {"401": 1}, "auth"),
        (Fault(status=400, headers={"x-should-retry": "maybe"}), {"400": 1}, "http_4xx"),
    ],
)  # fmt: skip
async def test_x_should_retry_overrides_the_status_rule(
    served: Serve, fault: Fault, requests: dict[str, int], reason: str
) -> None:
    """``x-should-retry: true|false`` decides (any case); a bad key is still never retried."""
    sim = ChaserSimulator(sessions=ROWS, api_key=KEY)
    sim.fault = fault
    url = await served(sim)

    store = await poll_all(settings_for(chaser(url)))

    snap = store.snapshots["c"]
    assert requests == dict(snap.requests)
    assert reason == (snap.error_reason and snap.error_reason.value)


def test_should_retry_rule() -> None:
    """408, 409, 429 and 5xx are retried, other statuses not, unless the server says."""
    retried = [s for s in (400, 404, 408, 409, 410, 422, 429, 500, 502, 503, 599)
               if should_retry(s, {})]  # fmt: skip
    assert [408, 409, 429, 500, 502, 503, 599] == retried
    assert should_retry(404, {"x-should-retry": " TRUE "})
    assert not should_retry(503, {"x-should-retry": "false"})
    assert should_retry(503, {"x-should-retry": ""})


async def test_retry_after_ms_comes_before_retry_after(served: Serve) -> None:
    """``retry-after-ms: 300`` is waited for, not the ``Retry-After: 3600`` beside it."""
    sim = ChaserSimulator(sessions=ROWS, api_key=KEY)
    sim.fault = Fault(status=429, headers={"retry-after-ms": "300", "Retry-After": "3600"}, times=1)
    url = await served(sim)

    started = time.monotonic()
    store = await poll_all(settings_for(chaser(url)))
    elapsed = time.monotonic() - started

    assert store.snapshots["c"].up
    assert 0.3 <= elapsed < 3.0
    assert {"429": 1, "200": 1} == dict(store.snapshots["c"].requests)


async def test_retry_after_ms_past_the_deadline_fails_at_once(served: Serve) -> None:
    """A ``retry-after-ms`` longer than the poll may last ends the poll now, saying so."""
    sim = ChaserSimulator(sessions=ROWS, api_key=KEY)
    sim.fault = Fault(status=503, headers={"retry-after-ms": "60000"})
    url = await served(sim)

    started = time.monotonic()
    store = await poll_all(settings_for(chaser(url), poll_interval="5s"))

    assert time.monotonic() - started < 1.0
    snap = store.snapshots["c"]
    assert "http_5xx" == (snap.error_reason and snap.error_reason.value)
    assert "(retry-after-ms 60000 is past the poll's deadline)" in (snap.error or "")
    assert {"503": 1} == dict(snap.requests)


async def test_429_without_retry_after_waits_until_the_reset(served: Serve) -> None:
    """A 429 with only ``X-RateLimit-Reset: 1`` (seconds) retries after that second."""
    sim = ChaserSimulator(sessions=ROWS, api_key=KEY)
    sim.fault = Fault(status=429, headers={"X-RateLimit-Reset": "1"}, times=1)
    url = await served(sim)

    started = time.monotonic()
    store = await poll_all(settings_for(chaser(url)))
    elapsed = time.monotonic() - started

    assert store.snapshots["c"].up
    assert 1.0 <= elapsed < 3.0


def trigger_origin(reset_ms: int) -> Callable[[web.Request], web.Response]:
    """A Trigger.dev-like origin: a 429 with only ``x-ratelimit-reset`` (ms), then a page."""
    answers = iter([429])

    def handler(_: web.Request) -> web.Response:
        if next(answers, 200) == 429:
            return json_response(
                {"error": "Too Many Requests"},
                status=429,
                headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset_ms)},
            )
        return json_response(
            {"data": []}, headers={"x-ratelimit-remaining": "99", "x-ratelimit-reset": "0"}
        )

    return handler


async def test_trigger_429_waits_until_the_millisecond_reset() -> None:
    """With the clock at T and the reset at T+0.3 s (in ms), the retry comes 0.3 s later."""
    handler = trigger_origin(int(T) * 1000 + 300)
    async with origin_server(handler) as api, new_client_session() as session:
        fetcher = new_fetcher(
            session,
            api.url + "/api/v1/sessions",
            retry=RetryPolicy(attempts=3),
            deadline=time.monotonic() + 10,
            rate_limit_reset=wire.trigger_rate_limit_reset,
            clock=lambda: T,
        )
        started = time.monotonic()
        assert b'{"data":[]}' == await fetcher.get_body()
        elapsed = time.monotonic() - started

    assert 0.29 <= elapsed < 3.0
    assert {"429": 1, "200": 1} == dict(fetcher.requests)
    assert RateLimitInfo(remaining=99.0, reset=0.0) == fetcher.rate_limit


async def test_trigger_reset_past_the_deadline_fails_at_once() -> None:
    """A reset an hour away is not waited for: the 429 fails now, saying why."""
    handler = trigger_origin(int(T + 3600) * 1000)
    async with origin_server(handler) as api, new_client_session() as session:
        fetcher = new_fetcher(
            session,
            api.url + "/api/v1/sessions",
            retry=RetryPolicy(attempts=3),
            deadline=time.monotonic() + 10,
            rate_limit_reset=wire.trigger_rate_limit_reset,
            error_detail=wire.trigger_error_detail,
            clock=lambda: T,
        )
        with pytest.raises(PollError) as caught:
            await fetcher.get_body()

    assert (
        "HTTP 429: Too Many Requests (the rate-limit reset in 3600s is past the poll's deadline)"
        == caught.value.message
    )
    assert Reason.HTTP_4XX == caught.value.reason
    assert 1 == len(api.seen)
    assert RateLimitInfo(remaining=0.0, reset=T + 3600) == fetcher.rate_limit
