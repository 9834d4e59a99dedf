"""The cached /metrics body: the bytes of rendering per scrape, re-rendered where it changed."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from exporter.core.records import Phase
from exporter.exposition import cache as exposition
from exporter.exposition.cache import ExpositionCache
from exporter.exposition.collector import SessionCollector
from exporter.polling.aggregate import AggregateBuilder
from exporter.polling.state import Store, TargetSnapshot
from exporter.providers.chaser import STATUS_PHASES, ChaserProvider
from exporter.providers.rows import Page
from exporter.upstream.errors import Reason

T = 1_700_000_000.0


@dataclass(frozen=True, kw_only=True)
class Row:
    """A row as the aggregate reads it, whatever the provider (every fact settable)."""

    id: str
    status: str
    created: datetime | None = None
    deadline: datetime | None = None
    last_activity: datetime | None = None
    leases: int | None = None
    executions: int | None = None
    kind: str | None = None


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
        Row(id=f"{name}-{i}", status="running", created=datetime.fromtimestamp(at - i, UTC))
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


# --- per-target fragments -----------------------------------------------------------------


def detailed(name: str, *, sessions: int, at: float, stale_after: float = 30.0) -> TargetSnapshot:
    """A chaser target after a successful poll with per_session on: sessions in every status,
    each with a deadline, leases and a kind, the 5 oldest shown one by one."""
    builder = AggregateBuilder(
        statuses=STATUS_PHASES,
        capabilities=ChaserProvider.capabilities,
        now=at,
        detail_phases=frozenset({Phase.PENDING, Phase.LIVE}),
        detail_max=5,
    )
    statuses = sorted(STATUS_PHASES)
    rows = [
        Row(
            id=f"{name}-{i}",
            status=statuses[i % len(statuses)],
            created=datetime.fromtimestamp(at - 37 * i, UTC),
            deadline=datetime.fromtimestamp(at + 600 - 90 * i, UTC),
            leases=i % 3,
            kind="browser" if i % 2 else "sandbox",
        )
        for i in range(sessions)
    ]
    builder.add_page(Page(rows, len(rows)))
    snapshot = TargetSnapshot(name=name, provider="chaser", stale_after=stale_after)
    return snapshot.after_poll(
        finished=at,
        duration=0.25,
        aggregate=builder.build(),
        reason=None,
        error=None,
        requests={"200": 2},
        pages=2,
        retries=1,
    )


def failed(snapshot: TargetSnapshot, *, at: float) -> TargetSnapshot:
    """``snapshot`` after a failed poll at ``at`` (its last good data stays)."""
    return snapshot.after_poll(
        finished=at,
        duration=1.5,
        aggregate=None,
        reason=Reason.TIMEOUT,
        error="timed out",
        requests={"503": 3},
        pages=0,
    )


def mixed_store() -> Store:
    """Targets of every kind: per-session detail, plain, never polled, failing, gone stale."""
    return Store(
        [
            detailed("a", sessions=40, at=T),
            polled("b", sessions=2, at=T),
            TargetSnapshot(name="c", provider="chaser", stale_after=30),
            failed(detailed("d", sessions=7, at=T - 5), at=T),
            detailed("e", sessions=9, at=T - 100),
            detailed("f", sessions=0, at=T),
        ]
    )


def decompress_one_member(body: bytes) -> bytes:
    """``body`` as one gzip member: zlib checks its CRC-32 and length, nothing may follow."""
    reader = zlib.decompressobj(wbits=31)
    plain = reader.decompress(body)
    assert reader.eof
    assert b"" == reader.unused_data
    return plain


def test_fragments_of_every_kind_of_target_equal_uncached_rendering() -> None:
    """Joined from per-target fragments, body and gzip equal rendering all at once, for every
    Accept variant and with targets of every kind; the gzip body is one valid member."""
    clock = Clock(T + 1)
    store = mixed_store()
    cache = ExpositionCache(store, clock=clock)

    for accept in ACCEPTS:
        expected = uncached(store, clock, accept, "")
        assert expected == cache.response(accept, "")[0]
        assert expected == decompress_one_member(cache.response(accept, "gzip")[0])
    lines = cache.response("", "")[0].splitlines()
    assert 5 == sum(1 for line in lines if line.startswith(b"session_info{") and b'"a"' in line)


def test_after_a_change_the_body_equals_uncached_rendering() -> None:
    """After one target's change, and after a failed poll, the assembled body (plain and gzip)
    still equals rendering everything anew."""
    clock = Clock(T + 1)
    store = mixed_store()
    cache = ExpositionCache(store, clock=clock)
    for accept in ACCEPTS:
        cache.response(accept, "gzip")

    store.publish(detailed("a", sessions=13, at=T + 1))
    store.publish(failed(store.snapshots["b"], at=T + 1))
    clock.now = T + 2

    for accept in ACCEPTS:
        expected = uncached(store, clock, accept, "")
        assert expected == cache.response(accept, "")[0]
        assert expected == decompress_one_member(cache.response(accept, "gzip")[0])


def test_one_change_renders_one_fragment_per_format(monkeypatch: pytest.MonkeyPatch) -> None:
    """Of 50 targets, a change of one renders that one target's fragment again, once in each
    format asked for, and recompresses only a few pieces of the gzip body (pieces made small
    here, so that each holds one target's block: as at a larger scale)."""
    monkeypatch.setattr(exposition, "PIECE_BYTES", 256)
    clock = Clock(T + 1)
    store = Store([detailed(f"t{i:02d}", sessions=20, at=T) for i in range(50)])
    cache = ExpositionCache(store, clock=clock)
    for accept in ("", OPENMETRICS):
        cache.response(accept, "gzip")
    assert 100 == cache.fragment_renders
    pieces = []
    original = exposition._deflate

    def counted(parts: Sequence[bytes], before: bytes) -> bytes:
        pieces.append(parts)
        return original(parts, before)

    monkeypatch.setattr(exposition, "_deflate", counted)
    store.publish(detailed("t17", sessions=21, at=T + 1))
    for accept in ("", OPENMETRICS):
        body, _ = cache.response(accept, "gzip")
        assert uncached(store, clock, accept, "") == decompress_one_member(body)

    assert 102 == cache.fragment_renders
    assert 4 == cache.renders
    # recompressed: the pieces with t17's blocks and those right after them (primed with
    # their end), and the exporter's families
    total = sum(len(f._pieces) for f in cache._formats.values())
    changed = sum(1 for parts in pieces if b'target="t17"' in b"".join(parts))
    assert 0 < changed <= len(pieces) <= 2 * changed + 2 < total / 2


def test_a_removed_target_leaves_the_body() -> None:
    """After a reload removes a target, its series are gone and its fragment is dropped."""
    clock = Clock(T + 1)
    store = mixed_store()
    cache = ExpositionCache(store, clock=clock)
    cache.response("", "")

    kept = {name: s for name, s in store.snapshots.items() if name != "a"}
    store.retarget(kept, store.config)
    body, _ = cache.response("", "")

    assert uncached(store, clock, "", "") == body
    assert b'target="a"' not in body
    assert 6 == cache.fragment_renders  # nothing re-rendered: the others did not change


class Gauge(Collector):
    """One gauge whose value the test sets, standing in for the process series."""

    def __init__(self) -> None:
        self.value = 1.0

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("process_test_value", "A value the test sets.")
        family.add_metric([], self.value)
        yield family


def test_process_series_end_the_body_and_are_reused_for_their_ttl() -> None:
    """The runtime registry's series follow the exporter's own (before OpenMetrics' EOF),
    exactly as one registry holding both renders them, and are rendered again only once
    they are runtime_ttl old."""
    clock, ticks = Clock(T + 1), Clock(100.0)
    store = mixed_store()
    gauge = Gauge()
    cache = ExpositionCache(store, clock=clock, runtime=gauge, runtime_ttl=1.0, monotonic=ticks)
    both = CollectorRegistry(auto_describe=True)
    both.register(SessionCollector(store, clock=clock))
    both.register(gauge)

    for accept in ACCEPTS:
        encoder, _ = choose_encoder(accept)
        assert encoder(both) == cache.response(accept, "")[0]
        assert encoder(both) == decompress_one_member(cache.response(accept, "gzip")[0])
    first, _ = cache.response(OPENMETRICS, "gzip")
    assert b"process_test_value 1.0\n# EOF\n" == cache.response(OPENMETRICS, "")[0][-29:]

    gauge.value = 2.0
    ticks.now = 100.99
    assert first is cache.response(OPENMETRICS, "gzip")[0]
    ticks.now = 101.0
    again = decompress_one_member(cache.response(OPENMETRICS, "gzip")[0])

    assert again.endswith(b"process_test_value 2.0\n# EOF\n")
    assert choose_encoder(OPENMETRICS)[0](both) == again
    assert 2 == cache.renders  # once per format (text, OpenMetrics): the targets did not change


KINDS = st.sampled_from(["never", "polled", "detailed", "failed", "stale", "empty"])


def snapshot_of(kind: str, name: str, at: float, size: int) -> TargetSnapshot:
    """A target ``name`` in the state ``kind`` as of ``at``."""
    if kind == "never":
        return TargetSnapshot(name=name, provider="chaser", stale_after=30)
    if kind == "polled":
        return polled(name, sessions=size, at=at)
    if kind == "failed":
        return failed(detailed(name, sessions=size, at=at - 1), at=at)
    if kind == "stale":
        return detailed(name, sessions=size, at=at - 31)
    return detailed(name, sessions=0 if kind == "empty" else size, at=at)


@settings(max_examples=40, deadline=None, database=None)
@given(
    kinds=st.lists(KINDS, min_size=1, max_size=6),
    changes=st.lists(
        st.tuples(st.integers(0, 5), KINDS, st.integers(0, 12), st.floats(0, 40)), max_size=6
    ),
    accept=st.sampled_from(ACCEPTS),
)
def test_any_sequence_of_changes_equals_uncached_rendering(
    kinds: list[str], changes: list[tuple[int, str, int, float]], accept: str
) -> None:
    """Whatever the targets' states and whatever changes (and time) come, the cached body and
    its gzip equal rendering everything anew at that moment."""
    clock = Clock(T)
    store = Store([snapshot_of(kind, f"t{i}", T, 3 + i) for i, kind in enumerate(kinds)])
    cache = ExpositionCache(store, clock=clock)
    assert uncached(store, clock, accept, "") == cache.response(accept, "")[0]

    for index, kind, size, later in changes:
        clock.now += later
        name = f"t{index % len(kinds)}"
        store.publish(snapshot_of(kind, name, clock.now, size))
        expected = uncached(store, clock, accept, "")
        assert expected == decompress_one_member(cache.response(accept, "gzip")[0])
        assert expected == cache.response(accept, "")[0]


def test_gzip_in_pieces_is_about_as_small_as_gzip_of_the_whole() -> None:
    """Each piece is primed with the end of the one before, so cutting the body into pieces
    costs little: within 5% of gzipping the whole body at once."""
    store = Store([detailed(f"t{i:02d}", sessions=400, at=T) for i in range(60)])
    cache = ExpositionCache(store, clock=Clock(T + 1))

    for accept in ("", OPENMETRICS):
        plain, _ = cache.response(accept, "")
        pieces, _ = cache.response(accept, "gzip")
        whole = gzip.compress(plain, compresslevel=6)
        assert len(pieces) <= 1.05 * len(whole), (len(pieces), len(whole))
        assert len(plain) > 4 * exposition.PIECE_BYTES  # many pieces


def test_an_openmetrics_version_is_no_cache_key() -> None:
    """Every ``version=1.0.N`` (and ``1.0.x``, which used to raise) is answered as OpenMetrics
    1.0.0 from the one rendering: 30 versions, one body, the text format's cache untouched."""
    store = mixed_store()
    clock = Clock(T + 1)
    cache = ExpositionCache(store, clock=clock)
    text, _ = cache.response("", "gzip")

    types = set()
    for version in [*(f"1.0.{i}" for i in range(30)), "1.0.x", "1.1"]:
        body, headers = cache.response(f"application/openmetrics-text;version={version}", "gzip")
        types.add(headers["Content-Type"])
        assert uncached(store, clock, OPENMETRICS, "") == decompress_one_member(body)

    expected = "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores"
    assert {expected} == types
    assert 2 == cache.renders
    assert text is cache.response("", "gzip")[0]


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        ("application/openmetrics-text;version=0.0.1", "text/plain; version=0.0.4; charset=utf-8"),
        (
            "application/openmetrics-text;version=2.0.0,text/plain;version=1.0.0;escaping=dots",
            "text/plain; version=1.0.0; charset=utf-8; escaping=dots",
        ),
        (
            "application/openmetrics-text; version=1.0.0; escaping=nonsense",
            "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores",
        ),
        (
            "application/openmetrics-text",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
        ("text/plain;version=x", "text/plain; version=0.0.4; charset=utf-8"),
        ("*/*", "text/plain; version=0.0.4; charset=utf-8"),
    ],
)
def test_accept_headers_map_onto_the_formats_served(accept: str, content_type: str) -> None:
    """Versions other than 1.x are passed over for the next entry, an unknown escaping is
    underscores; the body is exactly what that content type's encoder renders."""
    store = mixed_store()
    clock = Clock(T + 1)
    cache = ExpositionCache(store, clock=clock)

    body, headers = cache.response(accept, "")

    assert content_type == headers["Content-Type"]
    assert uncached(store, clock, content_type.replace(" ", ""), "") == body
