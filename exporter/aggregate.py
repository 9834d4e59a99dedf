"""Folding one poll's session records into the per-target aggregate the metrics show."""

from __future__ import annotations

import bisect
import heapq
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from exporter import labels
from exporter.providers.base import Capabilities
from exporter.records import Phase, SessionRecord

AGE_BUCKETS: tuple[float, ...] = (60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400, 259200)
"""Upper bounds (seconds) of the live-session age distribution; +Inf is implied."""

_LIVE, _PENDING = Phase.LIVE, Phase.PENDING  # "still reported live", as identity tests
_bucket = bisect.bisect_left


@dataclass(frozen=True, slots=True)
class StatusCount:
    """Sessions in one status of one target."""

    phase: Phase
    count: int = 0
    oldest_created: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Aggregate:
    """What one successful poll of a target found; immutable once built.

    A field is ``None`` where the provider does not report the underlying fact
    (its metric is then absent), or where no session had a value.
    """

    statuses: Mapping[str, StatusCount]
    folded_label_values: int
    sessions: int
    duplicates: int
    overdue: int | None
    next_deadline: float | None
    leases: int | None
    unleased: int | None
    oldest_activity: float | None
    executions: int | None
    age_counts: tuple[int, ...] = (0,) * (len(AGE_BUCKETS) + 1)
    age_sum: float = 0.0
    detail: tuple[SessionRecord, ...] | None = None
    detail_left_out: int = 0

    @property
    def age_buckets(self) -> list[tuple[str, int]]:
        """Cumulative ``(le, count)`` pairs of live-session ages, ending with ``+Inf``."""
        bounds = [str(float(b)) for b in AGE_BUCKETS] + ["+Inf"]  # as client_python: "60.0"
        total, out = 0, []
        for bound, count in zip(bounds, self.age_counts, strict=True):
            total += count
            out.append((bound, total))
        return out


@dataclass(slots=True)
class _Tally:
    phase: Phase
    count: int = 0
    oldest: float | None = None

    def absorb(self, other: _Tally) -> None:
        """Add another tally's sessions to this one."""
        self.count += other.count
        if other.oldest is not None and (self.oldest is None or other.oldest < self.oldest):
            self.oldest = other.oldest


@dataclass(slots=True, kw_only=True)
class AggregateBuilder:
    """Streams records in page by page and builds the :class:`Aggregate`.

    Sessions are counted once by id, so a list that shifts while it is paged
    (and so serves a session on two pages) does not count it twice.
    """

    statuses: Mapping[str, Phase]
    capabilities: Capabilities
    now: float
    detail_phases: frozenset[Phase] | None = None
    detail_max: int = 0
    max_label_values: int = 20
    _detail: list[tuple[float, str, SessionRecord]] = field(init=False, default_factory=list)
    _detail_seen: int = 0
    _tallies: dict[str, _Tally] = field(init=False)
    _seen: set[str] = field(init=False, default_factory=set)
    _duplicates: int = 0
    _overdue: int = 0
    _next_deadline: float | None = None
    _leases: int = 0
    _unleased: int = 0
    _oldest_activity: float | None = None
    _executions: int = 0
    _ages: list[int] = field(init=False, default_factory=lambda: [0] * (len(AGE_BUCKETS) + 1))
    _age_sum: float = 0.0

    def __post_init__(self) -> None:
        self._tallies = {status: _Tally(phase) for status, phase in self.statuses.items()}

    def add(self, record: SessionRecord) -> None:  # noqa: PLR0912 - inlined on purpose
        """Count one session (ignored when its id was already counted).

        The per-session hot path of a poll: attribute reads are hoisted into locals and
        the live-session part is inlined (a profile of a 100k-session poll put this
        method at a quarter of the poll's time).
        """
        seen = self._seen
        before = len(seen)
        seen.add(record.id)
        if len(seen) == before:
            self._duplicates += 1
            return
        status = record.status
        tally = self._tallies.get(status)
        if tally is None:
            tally = self._tallies[status] = _Tally(record.phase)
        created = record.created
        tally.count += 1
        oldest = tally.oldest
        if oldest is None or created < oldest:
            tally.oldest = created
        phase = record.phase
        detail = self.detail_phases
        if detail is not None and phase in detail:
            self._keep_detail(record)
        if phase is not _LIVE and phase is not _PENDING:
            return
        # Deadlines, leases, executions, age and activity of a session still reported live.
        now = self.now
        age = now - created
        if age < 0.0:  # noqa: PLR1730 - a comparison is cheaper than calling max()
            age = 0.0
        self._ages[_bucket(AGE_BUCKETS, age)] += 1
        self._age_sum += age
        deadline = record.deadline
        if deadline is not None:
            if deadline < now:
                self._overdue += 1
            if self._next_deadline is None or deadline < self._next_deadline:
                self._next_deadline = deadline
        leases = record.leases
        if leases is not None:
            self._leases += leases
        if record.executions is not None:
            self._executions += record.executions
        if phase is not _LIVE:
            return
        if leases == 0:
            self._unleased += 1
        activity = record.last_activity
        if activity is not None and (
            self._oldest_activity is None or activity < self._oldest_activity
        ):
            self._oldest_activity = activity

    def _keep_detail(self, record: SessionRecord) -> None:
        """Keep the ``detail_max`` oldest sessions (a max-heap on creation time)."""
        self._detail_seen += 1
        entry = (-record.created, record.id, record)
        if len(self._detail) < self.detail_max:
            heapq.heappush(self._detail, entry)
        elif entry > self._detail[0]:
            heapq.heapreplace(self._detail, entry)

    def _final_statuses(self) -> tuple[dict[str, StatusCount], int]:
        """Tallies under safe label values, undocumented ones capped; and how many folded."""
        merged: dict[str, _Tally] = {}
        for raw, tally in self._tallies.items():
            name = raw if raw in self.statuses else labels.clean(raw)
            merged.setdefault(name, _Tally(tally.phase)).absorb(tally)
        counts = Counter({name: tally.count for name, tally in merged.items()})
        mapping = labels.cap(counts, keep=self.statuses, limit=self.max_label_values)
        final: dict[str, _Tally] = {}
        for name, tally in merged.items():
            into = mapping[name]
            phase = Phase.UNKNOWN if into == labels.OTHER else tally.phase
            final.setdefault(into, _Tally(phase)).absorb(tally)
        folded = sum(1 for name, to in mapping.items() if to == labels.OTHER and name != to)
        return {s: StatusCount(t.phase, t.count, t.oldest) for s, t in final.items()}, folded

    def _final_detail(self) -> tuple[tuple[SessionRecord, ...], int]:
        """The kept sessions, oldest first, with safe and capped ids, statuses and kinds."""
        records = [r for _, _, r in sorted(self._detail, reverse=True)]
        kinds = Counter(labels.clean(r.kind) for r in records if r.kind is not None)
        mapping = labels.cap(kinds, keep=(), limit=self.max_label_values)
        statuses = labels.fold(
            {raw: tally.count for raw, tally in self._tallies.items()},
            keep=self.statuses,
            limit=self.max_label_values,
        )  # the labels the sessions series use (their folds are counted there)
        out = tuple(
            r._replace(
                id=labels.session_id(r.id),
                status=statuses[r.status],
                kind=None if r.kind is None else mapping[labels.clean(r.kind)],
            )
            for r in records
        )
        return out, sum(1 for k, to in mapping.items() if to == labels.OTHER and k != to)

    def build(self) -> Aggregate:
        """The immutable result of everything added so far."""
        caps = self.capabilities
        statuses, folded = self._final_statuses()
        detail: tuple[SessionRecord, ...] | None = None
        if self.detail_phases is not None:
            detail, folded_kinds = self._final_detail()
            folded += folded_kinds
        return Aggregate(
            statuses=MappingProxyType(statuses),
            folded_label_values=folded,
            sessions=len(self._seen),
            duplicates=self._duplicates,
            overdue=self._overdue if caps.deadlines else None,
            next_deadline=self._next_deadline if caps.deadlines else None,
            leases=self._leases if caps.leases else None,
            unleased=self._unleased if caps.leases else None,
            oldest_activity=self._oldest_activity if caps.activity else None,
            executions=self._executions if caps.executions else None,
            age_counts=tuple(self._ages),
            age_sum=self._age_sum,
            detail=detail,
            detail_left_out=self._detail_seen - len(self._detail),
        )
