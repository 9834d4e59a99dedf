"""The /metrics body: one cached fragment per target, joined under one header per family.

What a scrape shows depends on two things only: the store's snapshots (replaced by one
assignment on every publish) and which targets' session data is still younger than its
``stale_after``. :class:`ExpositionCache` checks both on each scrape and otherwise hands out
the bytes it already has, so a scrape costs O(1) whatever the number of sessions and targets.

When something changed, only the targets whose snapshot (identity) or freshness changed are
rendered again. Both exposition formats want each family's HELP/TYPE once with all of its
samples grouped under it, so a target's fragment cannot be an exposition of its own: it is
that target's sample lines cut out of one, a block per family (:class:`_Format`). The body is
then assembled by joining, family by family, the header and every target's block. The bytes
are exactly those of rendering all targets at once with prometheus_client's encoders.

gzip is assembled the same way. The body is cut into pieces (a family's header, and blocks of
runs of consecutive targets of about :data:`PIECE_BYTES` each), each deflated on its own and
ended with a sync flush, so that the pieces join into one deflate stream; one gzip member
(header, that stream, CRC-32 and length) holds it, as any gzip reader expects. Each piece is
primed with the end of the piece before it, which the decompressor has in its window (as
pigz does), so the pieces compress as well as the whole. A change recompresses only the
pieces holding a changed block, and the piece after each.

With ``runtime`` (the process series of ``serve`` and ``demo``, see
:mod:`exporter.exposition.process`) its families follow the exporter's own, rendered at most
once per ``runtime_ttl`` seconds:
they change on every scrape, but rendering them costs about 0.1 ms, more than serving a
cached scrape, so a short reuse keeps a scrape's cost flat while Prometheus, scraping every
few seconds at most, still gets fresh values.

A cache with a ``target`` serves ``/probe?target=NAME``: the same, for one target's series
(and no process series), re-rendered only when that target's snapshot or the config status
changes or its data passes ``stale_after``.
"""

from __future__ import annotations

import math
import re
import struct
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from exporter.exposition.collector import exporter_families, target_families
from exporter.exposition.negotiation import Variant, negotiate
from exporter.exposition.process import PROCESS_TTL
from exporter.polling.state import Store, TargetSnapshot

Encoder = Callable[[Collector], bytes]
Headers = Mapping[str, str]

GZIP_LEVEL = 6
VARY = "Accept, Accept-Encoding"
PIECE_BYTES = 32 * 1024
"""Text per separately deflated piece of the gzip body: enough for a good compression ratio,
small enough that a change recompresses little."""
_NEGOTIATED_MAX = 64
"""Distinct ``Accept`` headers remembered; scrapers send one or two, a flood cannot grow it."""
_HEADER = re.compile(rb"^# HELP [^\n]*\n(?:#(?! HELP )[^\n]*\n)*", re.MULTILINE)
"""A family's header lines: HELP (both encoders write one first, for every family), then
TYPE and UNIT. Sample lines never start with ``#``."""
_WINDOW = 32 * 1024
"""How far back deflate refers: the most of the previous piece a piece is primed with."""
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
"""gzip member header: deflate, no flags, no modification time, unknown OS (RFC 1952)."""


class _Metrics(Collector):
    """Some metric families, for an encoder that expects a registry."""

    def __init__(self, metrics: Iterable[Metric]) -> None:
        self._metrics = list(metrics)

    def collect(self) -> Iterator[Metric]:
        return iter(self._metrics)


@dataclass(frozen=True, slots=True)
class _Fragment:
    """One target's sample lines in one format, by the header of the section they belong to.

    ``suffixes`` are the headers of sections that follow a family's own section: the text
    format puts a family's ``_created``, ``_gsum`` and ``_gcount`` samples in gauge families
    of their own right after it.
    """

    sections: Mapping[bytes, bytes]
    suffixes: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class _Entry:
    """A target's fragment, valid for this snapshot (identity) and freshness."""

    snapshot: TargetSnapshot
    fresh: bool
    fragment: _Fragment


def _compressor(before: bytes) -> zlib._Compress:
    """A raw deflate compressor whose output may refer back into ``before``: the bytes that
    come right before it in the body, so the decompressor has them in its window."""
    if before:
        return zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS, zdict=before)
    return zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)


def _deflate(parts: Sequence[bytes], before: bytes) -> bytes:
    """``parts`` as raw deflate blocks ended by a sync flush, so they end on a byte boundary
    and the next piece can follow them in the same deflate stream."""
    compressor = _compressor(before)
    return compressor.compress(b"".join(parts)) + compressor.flush(zlib.Z_SYNC_FLUSH)


class _Body:
    """The per-target families and the exporter's own, for one format and one change."""

    def __init__(self, sections: list[tuple[bytes, list[bytes]]], exporter: bytes) -> None:
        self.sections = sections
        self.exporter = exporter
        self.deflated: bytes | None = None
        self._checksum: tuple[int, int] | None = None

    def parts(self) -> Iterator[bytes]:
        """The body's bytes in order, as the blocks they are cached as."""
        for header, blocks in self.sections:
            yield header
            yield from blocks
        yield self.exporter

    def checksum(self) -> tuple[int, int]:
        """CRC-32 and length of the whole body."""
        if self._checksum is None:
            crc = size = 0
            for part in self.parts():
                crc = zlib.crc32(part, crc)
                size += len(part)
            self._checksum = (crc, size)
        return self._checksum


class _Format:
    """Everything rendered for one content type: each target's fragment, the current body
    and its compressed pieces, and the process series."""

    def __init__(self, encoder: Encoder) -> None:
        self._encoder = encoder
        self._tail = encoder(_Metrics(()))  # what ends an exposition: OpenMetrics' "# EOF"
        self._main = [header for header, _ in self._split(self.render(target_families(None, 0)))]
        self._is_main = frozenset(self._main)
        self._family: dict[bytes, bytes] = {}  # a suffix section's header -> its family's
        self._targets: dict[str, _Entry] = {}
        self._pieces: dict[tuple[bytes, int], _Piece] = {}
        self.body: _Body | None = None
        self.runtime = b""
        self.runtime_at = -math.inf
        self.fragment_renders = 0
        self._served: dict[bool, bytes] = {}  # gzipped or not -> the bytes served

    def served(self, *, gzipped: bool) -> bytes:
        """The whole exposition as served (gzipped or not), made once per change."""
        out = self._served.get(gzipped)
        if out is None:
            out = self._served[gzipped] = self.gzipped() if gzipped else self.plain()
        return out

    def drop_body(self) -> None:
        """The targets changed: the body is assembled again (from the fragments) when asked."""
        self.body = None
        self._served.clear()

    def set_runtime(self, runtime: bytes, at: float) -> None:
        """New process series, rendered at ``at``."""
        self.runtime = runtime
        self.runtime_at = at
        self._served.clear()

    def render(self, families: Iterable[Metric]) -> bytes:
        """``families`` in this format, without the end-of-exposition marker."""
        out = self._encoder(_Metrics(families))
        return out[: len(out) - len(self._tail)]

    @staticmethod
    def _split(out: bytes) -> list[tuple[bytes, bytes]]:
        """A rendering as (header lines, sample lines) sections."""
        found = list(_HEADER.finditer(out))
        ends = [m.start() for m in found[1:]] + [len(out)]
        return [(m.group(), out[m.end() : end]) for m, end in zip(found, ends, strict=True)]

    def fragment(self, snapshot: TargetSnapshot, now: float) -> _Fragment:
        """The target's fragment, rendered anew only if its snapshot or freshness changed."""
        fresh = snapshot.fresh_aggregate(now) is not None
        entry = self._targets.get(snapshot.name)
        if entry is not None and entry.snapshot is snapshot and entry.fresh == fresh:
            return entry.fragment
        sections: dict[bytes, bytes] = {}
        suffixes: list[bytes] = []
        family = b""
        for header, samples in self._split(self.render(target_families(snapshot, now))):
            if header in self._is_main:
                family = header
            else:
                self._family[header] = family
                suffixes.append(header)
            sections[header] = samples
        fragment = _Fragment(MappingProxyType(sections), tuple(suffixes))
        self._targets[snapshot.name] = _Entry(snapshot, fresh, fragment)
        self.fragment_renders += 1
        return fragment

    def build(self, shown: Sequence[TargetSnapshot], now: float, exporter: list[Metric]) -> None:
        """Assemble the body of ``shown`` targets at ``now`` from their fragments."""
        fragments = [self.fragment(snapshot, now) for snapshot in shown]
        if len(self._targets) > len(shown):  # targets removed by a reload
            names = {snapshot.name for snapshot in shown}
            self._targets = {n: e for n, e in self._targets.items() if n in names}
        suffixes: dict[bytes, set[bytes]] = {}
        for fragment in fragments:
            for header in fragment.suffixes:
                suffixes.setdefault(self._family[header], set()).add(header)
        sections: list[tuple[bytes, list[bytes]]] = []
        for main in self._main:
            # the text encoder sorts a family's suffix sections by suffix, so by header
            for header in (main, *sorted(suffixes.get(main, ()))):
                sections.append((header, [f.sections.get(header, b"") for f in fragments]))
        self.body = _Body(sections, self.render(exporter))

    def plain(self) -> bytes:
        """The whole exposition."""
        assert self.body is not None
        return b"".join((*self.body.parts(), self.runtime, self._tail))

    def gzipped(self) -> bytes:
        """The whole exposition, gzipped: the body's pieces, then the process series."""
        assert self.body is not None
        crc, size = self.body.checksum()
        end = self.runtime + self._tail
        compressor = _compressor(_last((self.body.exporter,), _WINDOW))
        last = compressor.compress(end) + compressor.flush()
        trailer = struct.pack("<II", zlib.crc32(end, crc), (size + len(end)) & 0xFFFFFFFF)
        return b"".join((_GZIP_HEADER, self._deflated(self.body), last, trailer))

    def _deflated(self, body: _Body) -> bytes:
        """The body as sync-flushed deflate pieces, each primed with the end of the piece
        before it; a piece is reused when its bytes and those of the piece before it are
        the same as at the previous change."""
        if body.deflated is not None:
            return body.deflated
        previous = self._pieces
        pieces: dict[tuple[bytes, int], _Piece] = {}
        out: list[bytes] = []
        before: tuple[bytes, ...] = ()

        def piece(key: tuple[bytes, int], parts: tuple[bytes, ...]) -> None:
            nonlocal before
            cached = previous.get(key)
            # equal tuples of the very same blocks compare by identity, without reading them
            if cached is None or cached.parts != parts or cached.before != before:
                cached = _Piece(before, parts, _deflate(parts, _last(before, _WINDOW)))
            pieces[key] = cached
            out.append(cached.deflated)
            before = parts

        for header, blocks in body.sections:
            size = len(header) + sum(map(len, blocks))
            fit = max(1, PIECE_BYTES * len(blocks) // max(1, size))  # targets per piece
            run = 1 << (fit.bit_length() - 1)  # a power of two: stable as sizes vary a little
            piece((header, 0), (header, *blocks[:run]))
            for start in range(run, len(blocks), run):
                piece((header, start), tuple(blocks[start : start + run]))
        piece((b"", 0), (body.exporter,))
        self._pieces = pieces
        body.deflated = b"".join(out)
        return body.deflated


@dataclass(frozen=True, slots=True)
class _Piece:
    """A deflated piece of the body, and the blocks it was made of and primed with."""

    before: tuple[bytes, ...]
    parts: tuple[bytes, ...]
    deflated: bytes


def _last(parts: Sequence[bytes], size: int) -> bytes:
    """The last ``size`` bytes (or fewer) of the concatenation of ``parts``."""
    tail: list[bytes] = []
    need = size
    for part in reversed(parts):
        tail.append(part)
        need -= len(part)
        if need <= 0:
            break
    return b"".join(reversed(tail))[-size:]


class ExpositionCache:
    """Serves the exposition of ``store`` as cached bytes, re-rendering only what changed.

    The cache holds for one ``Store.snapshots`` mapping (identity) and one set of fresh
    targets. Freshness changes when the clock passes the earliest deadline
    ``last_success + stale_after`` of a target still fresh (checked with the collector's own
    comparison), or when the clock goes back before the time of the rendering.

    With ``target`` the cache holds one target's exposition, for one snapshot of that target
    and one config status (identities): other targets' polls leave it valid.

    ``runtime`` (a registry, see :mod:`exporter.exposition.process`) adds its families at the end,
    rendered again once they are ``runtime_ttl`` seconds old by ``monotonic``.
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
        target: str | None = None,
        runtime: Collector | None = None,
        runtime_ttl: float = PROCESS_TTL,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._clock = clock
        self._target = target
        self._runtime = runtime
        self._runtime_ttl = runtime_ttl
        self._monotonic = monotonic
        self._at = 0.0  # the instant the current rendering shows
        self._negotiated: dict[str, Variant] = {}
        self._version: tuple[object, ...] = ()
        self._expiry: TargetSnapshot | None = None  # the fresh target that goes stale first
        self._formats: dict[tuple[str, str], _Format] = {}
        self._header_sets: dict[tuple[str, bool], Headers] = {}
        self.renders = 0
        """How many times a format's body was assembled, once per change and format (for tests
        and the benchmark)."""

    @property
    def fragment_renders(self) -> int:
        """How many target fragments were rendered, over every format (for tests and the
        benchmark)."""
        return sum(f.fragment_renders for f in self._formats.values())

    def response(self, accept: str, accept_encoding: str) -> tuple[bytes, Headers]:
        """The body and headers answering a scrape with these ``Accept*`` request headers."""
        self._validate()
        variant = self._negotiate(accept)
        gzipped = "gzip" in accept_encoding
        fmt = self._format(variant)
        if self._runtime is not None:
            now = self._monotonic()
            if not fmt.runtime_at <= now < fmt.runtime_at + self._runtime_ttl:
                fmt.set_runtime(fmt.render(self._runtime.collect()), now)
        if fmt.body is None:
            fmt.build(self._shown(), self._at, self._exporter())
            self.renders += 1
        return fmt.served(gzipped=gzipped), self._headers(variant.content_type, gzipped)

    def _headers(self, content_type: str, gzipped: bool) -> Headers:
        key = (content_type, gzipped)
        headers = self._header_sets.get(key)
        if headers is None:  # a closed set: a few content types, with gzip or not
            fields = {"Content-Type": content_type, "Vary": VARY}
            if gzipped:
                fields["Content-Encoding"] = "gzip"
            headers = self._header_sets[key] = MappingProxyType(fields)
        return headers

    def _shown(self) -> Sequence[TargetSnapshot]:
        snapshots = self._store.snapshots
        if self._target is None:
            return list(snapshots.values())
        only = snapshots.get(self._target)
        return [] if only is None else [only]

    def _exporter(self) -> list[Metric]:
        return exporter_families(self._store.config, with_config=self._target is None)

    def _format(self, variant: Variant) -> _Format:
        """The rendering behind ``variant``: one of at most four (see
        :mod:`exporter.exposition.negotiation`), so no Accept header can evict another's."""
        fmt = self._formats.get(variant.body)
        if fmt is None:
            fmt = self._formats[variant.body] = _Format(variant.encoder())
        return fmt

    def _negotiate(self, accept: str) -> Variant:
        chosen = self._negotiated.get(accept)
        if chosen is None:
            chosen = negotiate(accept)
            if len(self._negotiated) >= _NEGOTIATED_MAX:
                self._negotiated.clear()
            self._negotiated[accept] = chosen
        return chosen

    def _validate(self) -> None:
        """Drop the bodies when the snapshots or the set of fresh targets changed."""
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
        for fmt in self._formats.values():
            fmt.drop_body()


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
