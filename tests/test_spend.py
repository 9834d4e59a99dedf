"""Spend: sessions_live_seconds_total (the exact session-seconds each successful poll adds)
and the targets' prices (sessions_price_per_session_hour).

Every poll test drives the real pollers over a simulator on loopback with a clock the test
sets; the clock moves only where the test moves it, so every expected value is exact.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from exporter.config.settings import ConfigError, load_settings
from exporter.polling.runtime import new_store
from exporter.polling.state import Store
from exporter.polling.supervisor import Supervisor
from exporter.simulators import ChaserSimulator, Fault, Simulator, chaser_row
from exporter.upstream.client import new_client_session
from tests.conftest import Serve
from tests.harness import KEY, poll_all, scrape, settings_for

T0 = 1_800_000_000.0
"""The first poll's time: a fixed unix time, never the wall clock."""


class Clock:
    """A clock that stands still until the test moves it."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def counter(store: Store, name: str, clock: Clock) -> float | None:
    """The target's sessions_live_seconds_total, as a scrape shows it."""
    return scrape(store, clock=clock).get("sessions_live_seconds_total", target=name)


async def test_each_successful_poll_adds_the_time_since_the_previous_one(served: Serve) -> None:
    """First poll 0; then per pending/live session now - max(previous success, created); a
    failed poll adds nothing and the next success counts from the last success; ended, failed
    and not-yet-created sessions add nothing.

    | poll | at | a running (-1h) | b starting (-10s) | c running (+20s) | adds | total |
    |---|---|---|---|---|---|---|
    | 1 | +0 | first poll | first poll | not listed | 0 | 0 |
    | 2 | +30 | 30 | 30 | 30 - 20 = 10 | 70 | 70 |
    | 3 | +60 | fails | | | 0 | 70 |
    | 4 | +90 | 90 - 30 = 60 | 60 | 60 | 180 | 250 |
    | 5 | +100 | terminated | 10 | 10 | 20 | 270 |
    """
    clock = Clock(T0)
    sim = ChaserSimulator(
        api_key=KEY,
        sessions=[
            chaser_row("a", "running", T0 - 3600),
            chaser_row("b", "starting", T0 - 10),
            chaser_row("done", "terminated", T0 - 7200),
            chaser_row("crashed", "failed", T0 - 600),
            chaser_row("ahead", "running", T0 + 10_000),  # the provider's clock runs ahead
        ],
    )
    settings = settings_for(
        {"name": "t", "provider": "chaser", "base_url": await served(sim), "retries": 0}
    )
    store = new_store(settings)
    totals: list[tuple[float | None, bool]] = []

    def record() -> None:
        totals.append((counter(store, "t", clock), store.snapshots["t"].up))

    await poll_all(settings, store=store, clock=clock)
    record()
    clock.now = T0 + 30
    sim.sessions.append(chaser_row("c", "running", T0 + 20))
    await poll_all(settings, store=store, clock=clock)
    record()
    clock.now = T0 + 60
    sim.fault = Fault(status=503, times=1)
    await poll_all(settings, store=store, clock=clock)
    record()
    clock.now = T0 + 90
    await poll_all(settings, store=store, clock=clock)
    record()
    clock.now = T0 + 100
    sim.sessions[0] = chaser_row("a", "terminated", T0 - 3600)
    await poll_all(settings, store=store, clock=clock)
    record()

    assert [(0.0, True), (70.0, True), (70.0, False), (250.0, True), (270.0, True)] == totals


async def test_a_slow_poll_loses_no_time(served: Serve) -> None:
    """Consecutive polls count contiguous intervals, each from the previous poll's reading
    time, even when a poll takes seconds: 30 s between two readings add 30 s per session,
    whatever the time the poll before took to finish."""
    clock = Clock(T0)
    sim = ChaserSimulator(api_key=KEY, sessions=[chaser_row("a", "running", T0 - 60)])

    def slow(_: Simulator, __: int) -> None:
        clock.now += 5.0  # the answer takes five seconds

    sim.on_request = slow
    settings = settings_for({"name": "t", "provider": "chaser", "base_url": await served(sim)})
    store = new_store(settings)

    await poll_all(settings, store=store, clock=clock)  # reads at +0, finishes at +5
    clock.now = T0 + 30
    await poll_all(settings, store=store, clock=clock)  # reads at +30, finishes at +35
    clock.now = T0 + 60
    await poll_all(settings, store=store, clock=clock)  # reads at +60

    assert 60.0 == counter(store, "t", clock)
    assert T0 + 65 == store.snapshots["t"].last_success


async def test_sessions_are_counted_each_once_per_poll(served: Serve) -> None:
    """Ten live sessions over two polls 15 s apart add 150 s; the counter is exported as a
    counter with the target's labels only."""
    clock = Clock(T0)
    sim = ChaserSimulator(
        api_key=KEY, sessions=[chaser_row(f"s{i}", "running", T0 - 100) for i in range(10)]
    )
    settings = settings_for({"name": "t", "provider": "chaser", "base_url": await served(sim)})
    store = await poll_all(settings, clock=clock)
    clock.now = T0 + 15

    await poll_all(settings, store=store, clock=clock)

    metrics = scrape(store, clock=clock)
    assert {frozenset({("provider", "chaser"), ("target", "t")}): 150.0} == metrics.select(
        "sessions_live_seconds_total"
    )
    assert "# TYPE sessions_live_seconds_total counter" in metrics.text


def write_config(path: Path, url: str, *names: str, price: float | None = None) -> Path:
    """A config polling ``names`` (all on the simulator at ``url``) every 20 ms, each with
    ``price`` as its price_per_session_hour (none when None)."""
    priced = "" if price is None else f"    price_per_session_hour: {price}\n"
    targets = "".join(
        f'  - name: {n}\n    provider: chaser\n    base_url: {url}\n    api_key: "{KEY}"\n' + priced
        for n in names
    )
    path.write_text(f"poll_interval: 20ms\ntargets:\n{targets}", encoding="utf-8")
    return path


async def polled_after(store: Store, *names: str, polls: int = 2) -> None:
    """Wait (bounded) until each named target completes ``polls`` more polls than now, so at
    least one poll of each read the sessions after this call."""
    start = {n: store.snapshots[n].polls if n in store.snapshots else 0 for n in names}
    async with asyncio.timeout(10):
        while not all(
            n in store.snapshots and store.snapshots[n].polls >= start[n] + polls for n in names
        ):
            await asyncio.sleep(0.01)


async def test_a_removed_and_re_added_target_starts_from_zero(
    tmp_path: Path, served: Serve
) -> None:
    """A reload that removes a target drops its counter; re-added, it starts at 0 and its
    first poll adds nothing, while a target kept through both reloads keeps counting."""
    clock = Clock(T0)
    sim = ChaserSimulator(api_key=KEY, sessions=[chaser_row("a", "running", T0 - 60)])
    url = await served(sim)
    path = write_config(tmp_path / "c.yaml", url, "keep", "gone")
    settings = load_settings(path)
    store = new_store(settings)
    async with new_client_session() as session:
        supervisor = Supervisor(settings=settings, session=session, store=store, clock=clock)
        supervisor.start()
        try:
            await polled_after(store, "keep", "gone")
            clock.now = T0 + 100
            await polled_after(store, "keep", "gone")
            before = {n: counter(store, n, clock) for n in ("keep", "gone")}

            assert await supervisor.reload(write_config(path, url, "keep"))
            removed = counter(store, "gone", clock)
            clock.now = T0 + 150
            assert await supervisor.reload(write_config(path, url, "keep", "gone"))
            await polled_after(store, "keep", "gone")
            readded = counter(store, "gone", clock)
            clock.now = T0 + 170
            await polled_after(store, "keep", "gone")
            after = {n: counter(store, n, clock) for n in ("keep", "gone")}
        finally:
            await supervisor.stop()

    assert {"keep": 100.0, "gone": 100.0} == before
    assert removed is None
    assert 0.0 == readded
    assert {"keep": 170.0, "gone": 20.0} == after


async def test_a_price_is_exported_for_the_targets_that_have_one(served: Serve) -> None:
    """price_per_session_hour becomes sessions_price_per_session_hour{provider,target}, before
    the first poll, after it and once the data is stale; a target without a price has none."""
    sim = ChaserSimulator(api_key=KEY, sessions=[chaser_row("a", "running", T0 - 60)])
    url = await served(sim)
    settings = settings_for(
        {"name": "priced", "provider": "chaser", "base_url": url, "price_per_session_hour": 0.75},
        {"name": "free", "provider": "chaser", "base_url": url, "price_per_session_hour": 0},
        {"name": "unpriced", "provider": "chaser", "base_url": url},
        poll_interval="10s",
    )
    store = new_store(settings)
    clock = Clock(T0)
    expected = {
        frozenset({("provider", "chaser"), ("target", "priced")}): 0.75,
        frozenset({("provider", "chaser"), ("target", "free")}): 0.0,
    }

    unpolled = scrape(store, clock=clock)
    await poll_all(settings, store=store, clock=clock)
    polled = scrape(store, clock=clock)
    stale = scrape(store, clock=Clock(T0 + 3600))

    for metrics in (unpolled, polled, stale):
        assert expected == metrics.select("sessions_price_per_session_hour")
    assert "# TYPE sessions_price_per_session_hour gauge" in polled.text
    assert {} == stale.select("sessions", target="priced")  # the session data did go stale


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("-0.5", "must be at least 0"),
        (".inf", "must be a finite number (not inf or nan)"),
        (".nan", "must be a finite number (not inf or nan)"),
        ('"2 USD"', "must be a number, not '2 USD'"),
    ],
)
def test_a_price_must_be_a_finite_number_of_at_least_zero(
    tmp_path: Path, value: str, problem: str
) -> None:
    """check-config rejects a negative, infinite or non-numeric price, located at its value."""
    path = tmp_path / "c.yaml"
    path.write_text(
        "targets:\n  - name: t\n    provider: chaser\n    api_key: k\n"
        f"    price_per_session_hour: {value}\n",
        encoding="utf-8",
    )

    with pytest.raises(ConfigError) as caught:
        load_settings(path)

    assert [f"{path}:5:29: targets[0].price_per_session_hour: {problem}"] == [
        str(p) for p in caught.value.problems
    ]


async def test_a_new_price_is_shown_without_restarting_the_target(
    tmp_path: Path, served: Serve
) -> None:
    """A reload that only changes a target's price keeps its poll task, data and counter, and
    the gauge follows the price: set, changed, then removed."""
    clock = Clock(T0)
    sim = ChaserSimulator(api_key=KEY, sessions=[chaser_row("a", "running", T0 - 60)])
    url = await served(sim)
    path = write_config(tmp_path / "c.yaml", url, "t", price=0.5)
    settings = load_settings(path)
    store = new_store(settings)
    prices = []
    async with new_client_session() as session:
        supervisor = Supervisor(settings=settings, session=session, store=store, clock=clock)
        supervisor.start()
        try:
            await polled_after(store, "t")
            clock.now = T0 + 40
            await polled_after(store, "t")
            task = supervisor.tasks()["t"]
            prices.append(scrape(store).get("sessions_price_per_session_hour", target="t"))
            for price in (2.25, None):
                assert await supervisor.reload(write_config(path, url, "t", price=price))
                await polled_after(store, "t")
                prices.append(scrape(store).get("sessions_price_per_session_hour", target="t"))
            same_task = task is supervisor.tasks()["t"]
            total = counter(store, "t", clock)
        finally:
            await supervisor.stop()

    assert [0.5, 2.25, None] == prices
    assert same_task
    assert 40.0 == total


async def test_a_poll_in_flight_during_a_reload_keeps_the_new_price(
    tmp_path: Path, served: Serve
) -> None:
    """A poll that started before a price-only reload and ends after it publishes the new
    price, not the one of the snapshot it started from."""
    sim = ChaserSimulator(api_key=KEY, sessions=[chaser_row("a", "running", T0 - 60)])
    url = await served(sim)
    path = write_config(tmp_path / "c.yaml", url, "t", price=1.0)
    settings = load_settings(path)
    store = new_store(settings)
    async with new_client_session() as session:
        supervisor = Supervisor(settings=settings, session=session, store=store)
        supervisor.start()
        try:
            await polled_after(store, "t", polls=1)
            sim.fault = Fault(delay=0.5, times=1)
            seen = len(sim.requests)
            async with asyncio.timeout(10):
                while sim.fault is not None or len(sim.requests) <= seen:
                    await asyncio.sleep(0.005)  # until the slow request has arrived
            polls = store.snapshots["t"].polls
            assert await supervisor.reload(write_config(path, url, "t", price=3.0))
            async with asyncio.timeout(10):
                while store.snapshots["t"].polls <= polls:
                    await asyncio.sleep(0.005)  # until the slow poll has published
            price = store.snapshots["t"].price_per_session_hour
        finally:
            await supervisor.stop()

    assert 3.0 == price
