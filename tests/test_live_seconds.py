"""sessions_live_seconds_total: session time counted from when each poll read the list."""

from __future__ import annotations

from collections.abc import Iterator

from exporter.polling.poller import TargetPoller
from exporter.polling.runtime import new_store
from exporter.simulators import ChaserSimulator, Fault, chaser_row, iso
from exporter.upstream.client import new_client_session
from tests.conftest import Serve
from tests.harness import KEY, scrape, settings_for

T = 1_767_225_600.0
"""A fixed start (2026-01-01T00:00:00Z); every time below is given to the poller."""


class PollClock:
    """A clock for one poll at a time: its first reading is when the poll reads the list,
    every later one when the poll finishes (a poll that takes time)."""

    def __init__(self) -> None:
        self.readings: Iterator[float] = iter(())
        self.finish = 0.0

    def poll(self, start: float, finish: float) -> None:
        """The next poll starts at ``start`` and finishes at ``finish``."""
        self.readings, self.finish = iter([start]), finish

    def __call__(self) -> float:
        return next(self.readings, self.finish)


async def test_each_poll_adds_the_time_since_the_previous_good_read(served: Serve) -> None:
    """With polls that take 5 s, a failed poll between two good ones, and a session created
    between polls, every live session adds exactly the time since the last good poll read
    the list (or since its creation): the polls' own durations are not lost."""
    sim = ChaserSimulator(
        sessions=[
            chaser_row("a", "running", iso(T - 100)),
            chaser_row("b", "idle", iso(T + 20)),
            chaser_row("z", "stopped", iso(T - 500)),
        ],
        api_key=KEY,
    )
    settings = settings_for(
        {"name": "c", "provider": "chaser", "base_url": await served(sim), "retries": 0}
    )
    clock = PollClock()
    store = new_store(settings)
    async with new_client_session() as session:
        poller = TargetPoller(
            target=settings.targets[0],
            interval=30,
            session=session,
            store=store,
            clock=clock,
        )
        totals = []
        for start, fault in (
            (T, None),
            (T + 30, None),
            (T + 60, Fault(status=500)),
            (T + 90, None),
        ):
            sim.fault = fault
            clock.poll(start, start + 5)
            await poller.poll()
            totals.append(store.snapshots["c"].live_seconds)

    # 1st poll adds nothing; 2nd: a 30 s, b 10 s (created at T+20); 3rd fails; 4th: both
    # 60 s since the 2nd poll read the list at T+30. The ended session never counts.
    assert [0.0, 40.0, 40.0, 160.0] == totals
    assert 160.0 == scrape(store, clock=lambda: T + 95).get("sessions_live_seconds_total")
