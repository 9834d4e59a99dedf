"""The /metrics body, rendered once per change of what it shows and then served as bytes.

What a scrape shows depends on two things only: the store's snapshots (replaced by one
assignment on every publish) and which targets' session data is still younger than its
``stale_after``. :class:`ExpositionCache` renders the exposition when either changes and
otherwise hands out the bytes it already has, so a scrape costs O(1) whatever the number of
sessions and targets. The OpenMetrics and gzip variants are rendered lazily, once each per
change. Bytes and headers are exactly those of rendering on every scrape.

A cache with a ``target`` serves ``/probe?target=NAME``: the same, for one target's series,
re-rendered only when that target's snapshot (or the config status) changes or its data
passes ``stale_after``.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from exporter.collector import SessionCollector
from exporter.state import Store, TargetSnapshot

Encoder = Callable[[CollectorRegistry], bytes]
Headers = Mapping[str, str]

GZIP_LEVEL = 6
VARY = "Accept, Accept-Encoding"
_NEGOTIATED_MAX = 64
"""Distinct ``Accept`` headers remembered; scrapers send one or two, a flood cannot grow it."""


class ExpositionCache:
    """Serves the exposition of ``store`` as cached bytes, re-rendering only on a change.

    The cache holds for one ``Store.snapshots`` mapping (identity) and one set of fresh
    targets. Freshness changes when the clock passes the earliest deadline
    ``last_success + stale_after`` of a target still fresh (checked with the collector's own
    comparison), or when the clock goes back before the time of the rendering.

    With ``target`` the cache holds one target's exposition, for one snapshot of that target
    and one config status (identities): other targets' polls leave it valid.
    """

    def __init__(
        self, store: Store, *, clock: Callable[[], float] = time.time, target: str | None = None
    ) -> None:
        self._store = store
        self._clock = clock
        self._target = target
        self._at = 0.0  # the instant the current rendering shows
        registry = CollectorRegistry(auto_describe=True)
        registry.register(SessionCollector(store, clock=lambda: self._at, target=target))
        self._registry = registry
        self._negotiated: dict[str, tuple[Encoder, str]] = {}
        self._version: tuple[object, ...] = ()
        self._expiry: TargetSnapshot | None = None  # the fresh target that goes stale first
        self._bodies: dict[str, bytes] = {}
        self._responses: dict[tuple[str, bool], tuple[bytes, Headers]] = {}
        self.renders = 0
        """How many times an exposition variant was rendered (for tests and the benchmark)."""

    def response(self, accept: str, accept_encoding: str) -> tuple[bytes, Headers]:
        """The body and headers answering a scrape with these ``Accept*`` request headers."""
        self._validate()
        encoder, content_type = self._negotiate(accept)
        gzipped = "gzip" in accept_encoding
        key = (content_type, gzipped)
        cached = self._responses.get(key)
        if cached is not None:
            return cached
        body = self._bodies.get(content_type)
        if body is None:
            body = self._bodies[content_type] = encoder(self._registry)
            self.renders += 1
        headers = {"Content-Type": content_type, "Vary": VARY}
        if gzipped:
            body = gzip.compress(body, compresslevel=GZIP_LEVEL)
            headers["Content-Encoding"] = "gzip"
        cached = self._responses[key] = (body, MappingProxyType(headers))
        return cached

    def _negotiate(self, accept: str) -> tuple[Encoder, str]:
        chosen = self._negotiated.get(accept)
        if chosen is None:
            chosen = choose_encoder(accept)
            if len(self._negotiated) >= _NEGOTIATED_MAX:
                self._negotiated.clear()
            self._negotiated[accept] = chosen
        return chosen

    def _validate(self) -> None:
        """Drop the renderings when the snapshots or the set of fresh targets changed."""
        now = self._clock()
        snapshots = self._store.snapshots
        shown: Iterable[TargetSnapshot]
        if self._target is None:
            version: tuple[object, ...] = (snapshots,)
            shown = snapshots.values()
        else:
            snapshot = snapshots.get(self._target)
            version = (snapshot, self._store.config)
            shown = () if snapshot is None else (snapshot,)
        expiry = self._expiry
        if (
            len(version) == len(self._version)
            and all(a is b for a, b in zip(version, self._version, strict=True))
            and now >= self._at
            and (expiry is None or expiry.fresh_aggregate(now) is not None)
        ):
            return
        self._version = version
        self._at = now
        self._expiry = _first_to_expire(shown, now)
        self._bodies.clear()
        self._responses.clear()


def _first_to_expire(snapshots: Iterable[TargetSnapshot], now: float) -> TargetSnapshot | None:
    """Among targets whose session data is fresh at ``now``, the one whose data ages out first."""
    first: TargetSnapshot | None = None
    first_deadline = 0.0
    for snap in snapshots:
        if snap.last_success is None or snap.fresh_aggregate(now) is None:
            continue
        deadline = snap.last_success + snap.stale_after
        if first is None or deadline < first_deadline:
            first, first_deadline = snap, deadline
    return first
