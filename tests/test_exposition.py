"""The cached /metrics body: the bytes of rendering per scrape, re-rendered only on change."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from exporter.aggregate import AggregateBuilder
from exporter.collector import SessionCollector
from exporter.exposition import ExpositionCache
from exporter.providers.chaser import STATUS_PHASES, ChaserProvider
from exporter.providers.rows import CheckedRow, Page
from exporter.state import Store, TargetSnapshot

T = 1_700_000_000.0
OPENMETRICS = "application/openmetrics-text; version=1.0.0"
ACCEPTS = (
    "",
    "text/plain",
    "text/plain;version=1.0.0;escaping=underscores",
    "application/openmetrics-text",
    OPENMETRICS,
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8, text/plain;q=0.5",
)


class Clock:
    """A settable clock."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def polled(name: str, *, sessions: int, at: float, stale_after: float = 30.0) -> TargetSnapshot:
    """A chaser target after one successful poll at ``at`` that found ``sessions`` running."""
    builder = AggregateBuilder(
        statuses=STATUS_PHASES, capabilities=ChaserProvider.capabilities, now=at
    )
    rows = [
        CheckedRow(id=f"{name}-{i}", status="running", created=datetime.fromtimestamp(at - i, UTC))
        for i in range(sessions)
    ]
    builder.add_page(Page(rows, len(rows)))
    snapshot = TargetSnapshot(name=name, provider="chaser", stale_after=stale_after)
    return snapshot.after_poll(
        finished=at,
        duration=0.1,
        aggregate=builder.build(),
        reason=None,
        error=None,
        requests={"200": 1},
        pages=1,
    )


def uncached(store: Store, clock: Callable[[], float], accept: str, encoding: str) -> bytes:
    """What /metrics answered before the cache: render with ``choose_encoder`` on each scrape."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(SessionCollector(store, clock=clock))
    encoder, _ = choose_encoder(accept)
    body = encoder(registry)
    return gzip.compress(body, compresslevel=6) if "gzip" in encoding else body


def test_bytes_and_headers_equal_uncached_rendering() -> None:
    """For every Accept variant, with and without gzip, body and headers match the old handler."""
    clock = Clock(T + 1)
    store = Store([polled("a", sessions=3, at=T), polled("b", sessions=2, at=T)])
    cache = ExpositionCache(store, clock=clock)

    for accept in ACCEPTS:
        body, headers = cache.response(accept, "")
        gz_body, gz_headers = cache.response(accept, "gzip, deflate")

        assert uncached(store, clock, accept, "") == body
        assert uncached(store, clock, accept, "") == gzip.decompress(gz_body)
        content_type = choose_encoder(accept)[1]
        expected = {"Content-Type": content_type, "Vary": "Accept, Accept-Encoding"}
        assert expected == dict(headers)
        assert {**expected, "Content-Encoding": "gzip"} == dict(gz_headers)


def test_repeated_scrapes_render_once() -> None:
    """Scrapes without a change return the very same bytes and never render again."""
    cache = ExpositionCache(Store([polled("a", sessions=3, at=T)]), clock=Clock(T + 1))

    first, _ = cache.response("", "")
    for _ in range(100):
        again, _ = cache.response("", "")
        assert first is again

    assert 1 == cache.renders


def test_variants_are_rendered_lazily_once_each() -> None:
    """Text alone renders text only; OpenMetrics and gzip are made on first demand, once."""
    cache = ExpositionCache(Store([polled("a", sessions=3, at=T)]), clock=Clock(T + 1))

    cache.response("", "")
    assert 1 == cache.renders
    text_gz, _ = cache.response("", "gzip")
    assert 1 == cache.renders
    assert text_gz is cache.response("", "gzip")[0]
    openmetrics, _ = cache.response(OPENMETRICS, "")
    assert 2 == cache.renders
    assert openmetrics.endswith(b"# EOF\n")
    cache.response(OPENMETRICS, "gzip")
    cache.response(OPENMETRICS, "")
    assert 2 == cache.renders


def test_publish_invalidates() -> None:
    """A new snapshot (one assignment in the store) is shown on the next scrape."""
    store = Store([polled("a", sessions=3, at=T)])
    clock = Clock(T + 1)
    cache = ExpositionCache(store, clock=clock)
    before, _ = cache.response("", "")

    store.publish(polled("a", sessions=5, at=T + 1))
    after, _ = cache.response("", "")

    assert b'sessions{phase="live",provider="chaser",status="running",target="a"} 3.0' in before
    assert b'sessions{phase="live",provider="chaser",status="running",target="a"} 5.0' in after
    assert uncached(store, clock, "", "") == after
    assert 2 == cache.renders


def test_staleness_transition_invalidates() -> None:
    """When a target's data passes stale_after its session series go, without any publish."""
    store = Store(
        [polled("a", sessions=3, at=T, stale_after=30), polled("b", sessions=2, at=T + 20)]
    )
    clock = Clock(T + 29)
    cache = ExpositionCache(store, clock=clock)
    fresh, _ = cache.response("", "")
    clock.now = T + 30  # still fresh: stale only once older than stale_after
    assert fresh is cache.response("", "")[0]

    clock.now = T + 30.5
    stale, _ = cache.response("", "")

    assert b'status="running",target="a"} 3.0' in fresh
    assert b'target="a"' in stale  # health series stay
    assert b'status="running",target="a"}' not in stale
    assert b'status="running",target="b"} 2.0' in stale
    assert uncached(store, clock, "", "") == stale
    assert 2 == cache.renders
    clock.now = T + 40
    assert stale is cache.response("", "")[0]  # b stays fresh until T + 50
    clock.now = T + 50.5
    assert b'status="running",target="b"}' not in cache.response("", "")[0]
    assert 3 == cache.renders


def test_clock_going_back_rerenders() -> None:
    """If the clock steps back, stale data may be fresh again, so the cache renders anew."""
    store = Store([polled("a", sessions=3, at=T, stale_after=30)])
    clock = Clock(T + 31)
    cache = ExpositionCache(store, clock=clock)
    stale, _ = cache.response("", "")

    clock.now = T + 10
    fresh, _ = cache.response("", "")

    assert b'status="running",target="a"}' not in stale
    assert uncached(store, clock, "", "") == fresh
    assert b'status="running",target="a"} 3.0' in fresh


def test_many_accept_headers_stay_bounded() -> None:
    """A flood of distinct Accept headers neither grows the cache without bound nor breaks it."""
    store = Store([polled("a", sessions=1, at=T)])
    clock = Clock(T + 1)
    cache = ExpositionCache(store, clock=clock)

    for i in range(1000):
        body, _ = cache.response(f"text/plain;q=0.{i}", "")
        assert uncached(store, clock, "", "") == body

    assert 64 >= len(cache._negotiated)
    assert 1 == cache.renders
