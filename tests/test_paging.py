"""Chaser and Notte pages fetched several at a time: the same counts, the minimum requests."""

from __future__ import annotations

from functools import partial
from typing import Any

from multidict import MultiMapping

from exporter.simulators import ChaserSimulator, NotteSimulator, chaser_row, notte_row
from tests import harness
from tests.conftest import Serve
from tests.harness import KEY, NOW, settings_for

T = NOW  # a fixed "now": the rows below, and the clock of every poll and scrape here
poll_all = partial(harness.poll_all, clock=lambda: T)
scrape = partial(harness.scrape, clock=lambda: T)


def chaser_rows(n: int) -> list[dict[str, Any]]:
    """``n`` running Chaser sessions."""
    return [chaser_row(f"c{i}", "running", T - i) for i in range(n)]


def notte_rows(n: int) -> list[dict[str, Any]]:
    """``n`` active Notte sessions."""
    return [notte_row(f"n{i}", "active", T - i, T) for i in range(n)]


def target(provider: str, url: str, **options: Any) -> dict[str, Any]:
    """A target without a rate limit, so the test does not wait for slots."""
    return {"name": "t", "provider": provider, "base_url": url, "rate_limit": 0, **options}


def offsets(sim: ChaserSimulator) -> list[int]:
    """The offsets of the authorized requests received, in arrival order."""
    return [int(r.query["offset"]) for r in sim.requests if r.authorized]


async def test_chaser_fetches_ahead_and_requests_each_page_once(served: Serve) -> None:
    """95 sessions in pages of 10, 4 at a time: all counted, each of the 10 pages asked once."""
    sim = ChaserSimulator(sessions=chaser_rows(95), api_key=KEY)
    url = await served(sim)

    metrics = scrape(await poll_all(settings_for(target("chaser", url, page_size=10))))

    assert 95.0 == metrics.get("sessions", status="running")
    assert list(range(0, 100, 10)) == sorted(offsets(sim))


class CappedChaser(ChaserSimulator):
    """A Chaser that serves at most 7 sessions a page, whatever ``limit`` asks."""

    def payload(self, query: MultiMapping[str]) -> Any:
        page = super().payload(query)
        page["sessions"] = page["sessions"][:7]
        return page


async def test_chaser_steps_by_what_the_server_serves(served: Serve) -> None:
    """A server capping the page size below ``page_size`` still gets each session once."""
    sim = CappedChaser(sessions=chaser_rows(30), api_key=KEY)
    url = await served(sim)

    metrics = scrape(await poll_all(settings_for(target("chaser", url, page_size=10))))

    assert 30.0 == metrics.get("sessions", status="running")
    assert [0, 7, 14, 21, 28] == sorted(offsets(sim))


async def test_chaser_shrinking_list_is_re_read_where_it_shifted(served: Serve) -> None:
    """A session gone while paging shifts the list back one row: the next page's smaller
    ``total`` shows it, the gap is re-read from the first page's last row, and every
    session is counted (issue 22.7: before, c10 slid onto page one and was missed)."""
    sim = ChaserSimulator(sessions=chaser_rows(40), api_key=KEY)

    def shrink(s: Any, index: int) -> None:
        if index == 1:  # after the first page, one of its sessions ends and leaves the list
            del s.sessions[0]

    sim.on_request = shrink
    url = await served(sim)

    store = await poll_all(settings_for(target("chaser", url, page_size=10, page_concurrency=1)))

    aggregate = store.snapshots["t"].aggregate
    assert aggregate is not None
    assert [0, 10, 8, 18, 28, 38] == offsets(sim)
    assert (40, 11) == (aggregate.sessions, aggregate.duplicates)


async def test_chaser_max_pages_still_guards(served: Serve) -> None:
    """More pages than max_pages fails as too_many_pages, never asking past max_pages."""
    sim = ChaserSimulator(sessions=chaser_rows(50), api_key=KEY)
    url = await served(sim)

    metrics = scrape(await poll_all(settings_for(target("chaser", url, page_size=5, max_pages=3))))

    assert 1.0 == metrics.get("sessions_exporter_poll_errors_total", reason="too_many_pages")
    assert 3 >= len(offsets(sim))


async def test_notte_fetches_ahead_as_far_as_the_last_poll_went(served: Serve) -> None:
    """First poll one page at a time; the next fetch ahead: both ask each page exactly once."""
    sim = NotteSimulator(sessions=notte_rows(450), api_key=KEY)
    url = await served(sim)
    settings = settings_for(target("notte", url))

    store = await poll_all(settings)
    first = len(sim.requests)
    await poll_all(settings, store=store)

    assert 5 == first
    assert 10 == len(sim.requests)
    assert [1, 2, 3, 4, 5] == sorted(int(r.query["page"]) for r in sim.requests[5:])
    assert 450.0 == scrape(store).get("sessions", status="active")


async def test_notte_list_shrinking_overshoots_by_less_than_the_window(served: Serve) -> None:
    """When the list shrank since the last poll, fewer than page_concurrency extra pages go out."""
    sim = NotteSimulator(sessions=notte_rows(950), api_key=KEY)
    url = await served(sim)
    settings = settings_for(target("notte", url, page_concurrency=4))
    store = await poll_all(settings)
    before = len(sim.requests)
    del sim.sessions[150:]

    await poll_all(settings, store=store)

    assert 150.0 == scrape(store).get("sessions", status="active")
    assert 2 <= len(sim.requests) - before <= 2 + 3


async def test_chaser_page_read_again_after_a_re_read_is_no_repeat(served: Serve) -> None:
    """Nine sessions of the first page end at once: the re-read goes back to offset 0, and the
    page after it is the one that showed the shrink, again, row for row. That is the walk
    catching up, not a server that does not advance: every session is counted."""
    sim = ChaserSimulator(sessions=chaser_rows(40), api_key=KEY)

    def end_nine(s: Any, index: int) -> None:
        if index == 1:
            del s.sessions[:9]

    sim.on_request = end_nine
    url = await served(sim)

    store = await poll_all(settings_for(target("chaser", url, page_size=10, page_concurrency=1)))

    aggregate = store.snapshots["t"].aggregate
    assert aggregate is not None
    assert [0, 10, 0, 10, 20, 30] == offsets(sim)
    assert 40 == aggregate.sessions
