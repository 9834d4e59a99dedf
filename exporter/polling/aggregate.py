"""Folding one poll's session records into the per-target aggregate the metrics show."""

from __future__ import annotations

import bisect
import heapq
import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from exporter.core import labels
from exporter.core.records import Phase, SessionRecord
from exporter.providers.base import Capabilities
from exporter.providers.fields import StatusLabels
from exporter.providers.rows import Page, Row

AGE_BUCKETS: tuple[float, ...] = (60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400, 259200)
"""Upper bounds (seconds) of the live-session age distribution; +Inf is implied."""

_LIVE, _PENDING = Phase.LIVE, Phase.PENDING  # "still reported live", as identity tests
_bucket = bisect.bisect_left

_SORTED_KEEP = 256
DISTINCT_STATUSES = 1024
"""Undocumented statuses told apart per poll (at least; 4 x max_label_values if more): any
further one is counted in ``other`` at once, and in the folded label values once per row."""
DEDUP_WINDOW = 65_536
"""Sessions are recognized again within at least this many distinct sessions listed before."""

DeadlineSeconds = Callable[[Row, float | None, float | None], float | None]
"""A row type's own reading of its deadline as unix seconds, from its creation and activity
times already read (``None`` where unknown); a row type without one gives ``deadline``."""


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
    dropped: int = 0
    invalid: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    invalid_example: str | None = None
    live_seconds: float = 0.0
    observed: float | None = None
    """When the poll read the sessions (its ``now``): the next poll counts live seconds from it."""

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
    """Folds pages of rows straight into the counts and builds the :class:`Aggregate`.

    No object is made per row: a :class:`SessionRecord` is built only for a row that enters
    the ``per_session`` top-N. Sessions are counted once by id, so a list that shifts while
    it is paged (and so serves a session on two pages) does not count it twice: a session
    listed again within the last ``DEDUP_WINDOW`` (65,536) distinct sessions is always
    recognized. The ids are kept as their 64-bit ``hash()`` (SipHash, keyed per process)
    in two generations of that size, so memory stays the same at any number of sessions
    (about 10 MiB at most) and no id string is kept alive; a repeat farther back than the
    window is counted twice, and two different ids in the window with the same hash (about
    one chance in 10**14 per session) count as one. ``since`` is the previous successful
    poll's ``now`` (its :attr:`Aggregate.observed`): each session still reported live adds
    the time since then (or since its creation, if later) to ``live_seconds``; ``None`` (no
    earlier success) adds nothing.
    """

    statuses: Mapping[str, Phase]
    capabilities: Capabilities
    now: float
    only_listed: bool = False
    since: float | None = None
    detail_phases: frozenset[Phase] | None = None
    detail_max: int = 0
    max_label_values: int = 20
    row_fields: tuple[str, ...] = ()
    _labels: StatusLabels = field(init=False)
    _detail: list[tuple[float, str, int, SessionRecord]] = field(init=False, default_factory=list)
    _detail_seen: int = 0
    _tallies: dict[str, _Tally] = field(init=False)
    _sorted: dict[str, tuple[_Tally | None, Phase, str]] = field(init=False, default_factory=dict)
    _seen: set[int] = field(init=False, default_factory=set)
    _older: set[int] = field(init=False, default_factory=set)
    _counted: int = 0
    _duplicates: int = 0
    _dropped: int = 0
    _overflowed: int = 0
    _invalid: Counter[str] = field(init=False, default_factory=Counter)
    _invalid_example: str | None = None
    _overdue: int = 0
    _next_deadline: float | None = None
    _leases: int = 0
    _unleased: int = 0
    _oldest_activity: float | None = None
    _executions: int = 0
    _ages: list[int] = field(init=False, default_factory=lambda: [0] * (len(AGE_BUCKETS) + 1))
    _age_sum: float = 0.0
    _live_seconds: float = 0.0

    def __post_init__(self) -> None:
        self._tallies = {status: _Tally(phase) for status, phase in self.statuses.items()}
        self._labels = StatusLabels(self.statuses)
        self._invalid.update(dict.fromkeys(self.row_fields, 0))

    def add_page(self, page: Page) -> None:  # noqa: PLR0912, PLR0915 - inlined on purpose
        """Count one page's rows (a row whose id was already counted is a duplicate).

        The per-session hot path of a poll: attribute reads are hoisted into locals, the
        live-session part is inlined, and a fact the provider does not report (see
        :class:`Capabilities`) is not read at all (its metric is absent anyway).
        """
        for problem in page.invalid:
            self._invalid[problem.field] += 1
            if self._invalid_example is None:
                self._invalid_example = problem.message
        rows = page.rows
        if not rows:
            return
        caps = self.capabilities
        read_deadline, read_activity = caps.deadlines, caps.activity
        read_leases, read_executions = caps.leases, caps.executions
        deadline_seconds: DeadlineSeconds | None = getattr(
            type(rows[0]), "deadline_seconds", None
        )  # a row type that computes its deadline from the timestamps (one type per page)
        if len(self._seen) >= DEDUP_WINDOW:
            self._older, self._seen = self._seen, set()
        seen, older = self._seen, self._older
        by_raw = self._sorted.get
        detail = self.detail_phases
        ages = self._ages
        now = self.now
        since = self.since
        fixed = page.status
        age_sum, live_seconds = self._age_sum, self._live_seconds  # the same sums, in order
        overdue = leases_sum = unleased = executions_sum = duplicates = 0
        next_deadline, oldest_activity = self._next_deadline, self._oldest_activity
        for row in rows:
            key = hash(row.id)
            if key in seen or key in older:
                duplicates += 1
                continue
            seen.add(key)
            raw = row.status if fixed is None else fixed
            sort = by_raw(raw)
            tally, phase, status = self._sort(raw) if sort is None else sort
            if tally is None:
                self._dropped += 1
                continue
            tally.count += 1
            created_at = row.created
            created = None if created_at is None else created_at.timestamp()
            if created is not None:
                oldest = tally.oldest
                if oldest is None or created < oldest:
                    tally.oldest = created
            if detail is not None and phase in detail:
                self._keep_detail(row, status, phase, created)
            if phase is not _LIVE and phase is not _PENDING:
                continue
            # Deadlines, leases, executions, age, time and activity of a session still live.
            if created is not None:
                age = now - created
                if age < 0.0:  # noqa: PLR1730 - a comparison is cheaper than calling max()
                    age = 0.0
                ages[_bucket(AGE_BUCKETS, age)] += 1
                age_sum += age
            if since is not None:
                start = since if created is None or created < since else created
                if start < now:
                    live_seconds += now - start
            activity: float | None = None
            if read_activity:
                activity_at = row.last_activity
                if activity_at is not None:
                    activity = activity_at.timestamp()
            if read_deadline:
                if deadline_seconds is not None:
                    deadline = deadline_seconds(row, created, activity)
                else:
                    deadline_at = row.deadline
                    deadline = None if deadline_at is None else deadline_at.timestamp()
                if deadline is not None:
                    if deadline < now:
                        overdue += 1
                    if next_deadline is None or deadline < next_deadline:
                        next_deadline = deadline
            leases = None
            if read_leases:
                leases = row.leases
                if leases is not None:
                    leases_sum += leases
            if read_executions:
                executions = row.executions
                if executions is not None:
                    executions_sum += executions
            if phase is not _LIVE:
                continue
            if leases == 0:
                unleased += 1
            if activity is not None and (oldest_activity is None or activity < oldest_activity):
                oldest_activity = activity
        self._duplicates += duplicates
        self._counted += len(rows) - duplicates
        self._age_sum, self._live_seconds = age_sum, live_seconds
        self._overdue += overdue
        self._leases += leases_sum
        self._unleased += unleased
        self._executions += executions_sum
        self._next_deadline, self._oldest_activity = next_deadline, oldest_activity

    def _distinct_limit(self) -> int:
        """How many distinct statuses are told apart before the rest go into ``other``."""
        return len(self.statuses) + max(DISTINCT_STATUSES, 4 * self.max_label_values)

    def _sort(self, raw: str) -> tuple[_Tally | None, Phase, str]:
        """Where a row of status ``raw`` is counted (``None``: dropped), its phase and label
        value; remembered for the first ``_SORTED_KEEP`` distinct raw values."""
        status, phase = self._labels(raw)
        tally: _Tally | None = None
        if not self.only_listed or status in self.statuses:
            tally = self._tallies.get(status)
            if tally is None and len(self._tallies) >= self._distinct_limit():
                # a flood of distinct undocumented statuses (each row its own, say) goes
                # straight into "other": folding them all at build time would hold the loop
                self._overflowed += 1
                status, phase = labels.OTHER, Phase.UNKNOWN
                tally = self._tallies.get(status)
            if tally is None:
                tally = self._tallies[status] = _Tally(phase)
        if len(self._sorted) < _SORTED_KEEP:
            self._sorted[raw] = (tally, phase, status)
        return tally, phase, status

    def _keep_detail(self, row: Row, status: str, phase: Phase, created: float | None) -> None:
        """Keep the ``detail_max`` oldest sessions (a max-heap on creation time)."""
        self._detail_seen += 1
        key = -math.inf if created is None else -created
        heap = self._detail
        if len(heap) >= self.detail_max and (key, row.id) <= heap[0][:2]:
            return
        deadline_at, activity_at = row.deadline, row.last_activity
        record = SessionRecord(
            row.id,
            status,
            phase,
            created,
            None if deadline_at is None else deadline_at.timestamp(),
            None if activity_at is None else activity_at.timestamp(),
            row.leases,
            row.executions,
            row.kind,
            getattr(row, "run_id", None),  # only a row type that reads it has it
        )
        # the entry number breaks a tie of time and id (a session listed again past the
        # dedup window): records themselves are never compared (``3 < None`` would raise)
        entry = (key, row.id, -self._detail_seen, record)
        if len(heap) < self.detail_max:
            heapq.heappush(heap, entry)
        else:
            heapq.heapreplace(heap, entry)

    def _status_labels(self) -> dict[str, str]:
        """Each raw status's label, one mapping for the ``sessions`` and the per-session
        series: documented ones as they are, others cleaned and capped into ``other``."""
        return labels.fold(
            {raw: tally.count for raw, tally in self._tallies.items()},
            keep=self.statuses,
            limit=self.max_label_values,
        )

    def _final_statuses(self, mapping: Mapping[str, str]) -> tuple[dict[str, StatusCount], int]:
        """Tallies under their labels; and how many distinct values were folded into other."""
        final: dict[str, _Tally] = {}
        for raw, tally in self._tallies.items():
            into = mapping[raw]
            phase = Phase.UNKNOWN if into == labels.OTHER else tally.phase
            final.setdefault(into, _Tally(phase)).absorb(tally)
        folded = {labels.clean(raw) for raw, into in mapping.items() if into == labels.OTHER}
        folded.discard(labels.OTHER)
        return {s: StatusCount(t.phase, t.count, t.oldest) for s, t in final.items()}, len(folded)

    def _final_detail(
        self, statuses: Mapping[str, str]
    ) -> tuple[tuple[SessionRecord, ...], int, int]:
        """The kept sessions, oldest first, with safe and capped ids, statuses and kinds; the
        kind values folded; and the sessions left out because their ``session_id`` label is
        taken already (the same id listed again past the dedup window, or a rewritten id that
        equals another one): one series per label set, the oldest session's. A run id is made
        safe as a session id is (each is one session's, so ``max_series`` caps how many)."""
        records: list[SessionRecord] = []
        taken: set[str] = set()
        for _, _, _, record in sorted(self._detail, reverse=True):
            shown = labels.session_id(record.id)
            if shown not in taken:
                taken.add(shown)
                records.append(record._replace(id=shown))
        kinds = Counter(labels.clean(r.kind) for r in records if r.kind is not None)
        mapping = labels.cap(kinds, keep=(), limit=self.max_label_values)
        out = tuple(
            r._replace(
                status=statuses[r.status],
                kind=None if r.kind is None else mapping[labels.clean(r.kind)],
                run_id=None if r.run_id is None else labels.session_id(r.run_id),
            )
            for r in records
        )
        folded = sum(1 for k, to in mapping.items() if to == labels.OTHER and k != to)
        return out, folded, len(self._detail) - len(records)

    def build(self, *, reported: Capabilities | None = None) -> Aggregate:
        """The immutable result of everything added so far; a fact outside ``reported``
        (the facts the walk's answers carried, by default :attr:`capabilities`) is absent."""
        caps = self.capabilities if reported is None else reported
        status_labels = self._status_labels()
        statuses, folded = self._final_statuses(status_labels)
        folded += self._overflowed
        detail: tuple[SessionRecord, ...] | None = None
        taken = 0
        if self.detail_phases is not None:
            detail, folded_kinds, taken = self._final_detail(status_labels)
            folded += folded_kinds
        return Aggregate(
            statuses=MappingProxyType(statuses),
            folded_label_values=folded,
            sessions=self._counted - self._dropped,
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
            detail_left_out=self._detail_seen - len(self._detail) + taken,
            dropped=self._dropped,
            invalid=MappingProxyType(dict(self._invalid)),
            invalid_example=self._invalid_example,
            live_seconds=self._live_seconds,
            observed=self.now,
        )
