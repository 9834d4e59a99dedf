"""Folding one poll's session records into the per-target aggregate the metrics show."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from exporter.providers.base import Capabilities
from exporter.records import Phase, SessionRecord


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
    sessions: int
    duplicates: int
    overdue: int | None
    next_deadline: float | None
    leases: int | None
    unleased: int | None
    oldest_activity: float | None
    executions: int | None


@dataclass(slots=True)
class _Tally:
    phase: Phase
    count: int = 0
    oldest: float | None = None


@dataclass(slots=True, kw_only=True)
class AggregateBuilder:
    """Streams records in page by page and builds the :class:`Aggregate`.

    Sessions are counted once by id, so a list that shifts while it is paged
    (and so serves a session on two pages) does not count it twice.
    """

    statuses: Mapping[str, Phase]
    capabilities: Capabilities
    now: float
    _tallies: dict[str, _Tally] = field(init=False)
    _seen: set[str] = field(init=False, default_factory=set)
    _duplicates: int = 0
    _overdue: int = 0
    _next_deadline: float | None = None
    _leases: int = 0
    _unleased: int = 0
    _oldest_activity: float | None = None
    _executions: int = 0

    def __post_init__(self) -> None:
        self._tallies = {status: _Tally(phase) for status, phase in self.statuses.items()}

    def add(self, record: SessionRecord) -> None:
        """Count one session (ignored when its id was already counted)."""
        if record.id in self._seen:
            self._duplicates += 1
            return
        self._seen.add(record.id)
        tally = self._tallies.get(record.status)
        if tally is None:
            tally = self._tallies[record.status] = _Tally(record.phase)
        tally.count += 1
        if tally.oldest is None or record.created < tally.oldest:
            tally.oldest = record.created
        if not record.phase.still_live:
            return
        if record.deadline is not None:
            if record.deadline < self.now:
                self._overdue += 1
            if self._next_deadline is None or record.deadline < self._next_deadline:
                self._next_deadline = record.deadline
        if record.leases is not None:
            self._leases += record.leases
        if record.executions is not None:
            self._executions += record.executions
        if record.phase is Phase.LIVE:
            if record.leases == 0:
                self._unleased += 1
            activity = record.last_activity
            if activity is not None and (
                self._oldest_activity is None or activity < self._oldest_activity
            ):
                self._oldest_activity = activity

    def build(self) -> Aggregate:
        """The immutable result of everything added so far."""
        caps = self.capabilities
        return Aggregate(
            statuses=MappingProxyType(
                {s: StatusCount(t.phase, t.count, t.oldest) for s, t in self._tallies.items()}
            ),
            sessions=len(self._seen),
            duplicates=self._duplicates,
            overdue=self._overdue if caps.deadlines else None,
            next_deadline=self._next_deadline if caps.deadlines else None,
            leases=self._leases if caps.leases else None,
            unleased=self._unleased if caps.leases else None,
            oldest_activity=self._oldest_activity if caps.activity else None,
            executions=self._executions if caps.executions else None,
        )
