"""The diagnostic's report: one poll's requests, row shapes and row mappings, masked.

The rows' raw shapes come from decoding each page's body a second time here, with the
provider's own row schema (:class:`~exporter.providers.schema.RowSchema`) applied to one row
at a time: the poll itself is not slowed or changed. Everything in a report is masked
(:mod:`exporter.diagnose.masking`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import msgspec
from yarl import URL

from exporter.core.records import Phase
from exporter.diagnose.masking import REDACTED, Masked, Masker, json_type
from exporter.diagnose.recording import Call
from exporter.polling.state import TargetSnapshot
from exporter.providers.base import Provider
from exporter.providers.engine import DefinedProvider
from exporter.providers.fields import StatusLabels
from exporter.providers.rows import Page, Row
from exporter.providers.schema import RowSchema
from exporter.upstream.fetch import REDIRECTS, Exchange

_VALUE = msgspec.json.Decoder(float_hook=float)
"""A row decoded for its shape (a number beyond a float reads as infinity, not an error)."""
_LIVE = frozenset({Phase.PENDING, Phase.LIVE})
_STATUS_CHARS = 60


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP answer (or a page that got none), numbered in the report."""

    number: int
    url: str
    status: int | None
    elapsed: float | None
    body_bytes: int | None
    rows: int | None
    note: str | None
    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """A field of a row that could not be read: why, and what was there (masked)."""

    field: str
    expected: str
    got: str
    value: Masked = None


@dataclass(slots=True)
class Shape:
    """Rows with the same keys of the same JSON types, and the first one of them, masked."""

    fields: tuple[tuple[str, str, Masked], ...]
    """Name, JSON type and masked sample value of each key, in the first row's order."""
    first: tuple[int, int]
    rows: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class RowMapping:
    """How one row was read and counted."""

    request: int
    row: int
    id: Masked
    status: str | None
    label: str | None
    phase: str | None
    outcome: str
    """``counted``, ``left out``, ``duplicate`` or ``dropped``."""
    created: str | None = None
    deadline: str | None = None
    overdue: bool | None = None
    last_activity: str | None = None
    leases: int | None = None
    executions: int | None = None
    kind: Masked = None
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """Everything ``diagnose`` prints, masked."""

    target: str
    provider: str
    url: str
    ok: bool
    reason: str | None
    error: str | None
    duration: float | None
    sessions: int | None
    statuses: tuple[tuple[str, str, int], ...]
    invalid: Mapping[str, int]
    duplicates: int
    dropped: int
    retries: int
    requests: tuple[Request, ...]
    shapes: tuple[Shape, ...]
    shapes_left_out: int
    rows: tuple[RowMapping, ...]
    rows_total: int
    capabilities: tuple[str, ...] = field(default=())
    masker: Masker = field(default_factory=lambda: Masker(None), repr=False, compare=False)
    """What the renderers scrub the finished text with, as the last step."""


@dataclass(slots=True)
class _Rows:
    """Row shapes and mappings gathered page by page."""

    masker: Masker
    labels: StatusLabels
    provider: Provider[Any]
    now: float
    max_rows: int | None
    max_shapes: int
    shapes: dict[frozenset[tuple[str, str]], Shape] = field(default_factory=dict)
    shapes_left_out: int = 0
    mappings: list[RowMapping] = field(default_factory=list)
    total: int = 0
    seen: set[str] = field(default_factory=set)

    def add(
        self,
        request: int,
        index: int,
        raw: bytes,
        codec: RowSchema,
        status: str | None,
    ) -> None:
        """One raw row: its shape, and how the provider's codec reads it."""
        value = _VALUE.decode(raw)
        self._shape(request, index, value)
        page = codec.decode(b"[" + raw + b"]", where=_here, status=status)
        self.total += 1
        mapping = self._mapping(request, index, value, page)
        if self.max_rows is None or len(self.mappings) < self.max_rows:
            self.mappings.append(mapping)

    def _shape(self, request: int, index: int, value: object) -> None:
        if isinstance(value, dict):
            key = frozenset((str(k), json_type(v)) for k, v in value.items())
            fields = tuple((str(k), json_type(v), self.masker.value(v)) for k, v in value.items())
        else:
            key = frozenset({("", json_type(value))})
            fields = (("", json_type(value), self.masker.value(value)),)
        shape = self.shapes.get(key)
        if shape is not None:
            shape.rows += 1
        elif len(self.shapes) < self.max_shapes:
            self.shapes[key] = Shape(fields, (request, index))
        else:
            self.shapes_left_out += 1

    def _mapping(self, request: int, index: int, value: object, page: Page) -> RowMapping:
        raw = value if isinstance(value, dict) else {}
        problems = tuple(self._problem(p.field, p.message, value) for p in page.invalid)
        if not page.rows:
            return RowMapping(
                request=request,
                row=index,
                id=self._id(raw),
                status=None,
                label=None,
                phase=None,
                outcome="left out",
                problems=problems,
            )
        row = page.rows[0]
        raw_status = row.status if page.status is None else page.status
        label, phase = self.labels(raw_status)
        outcome = "counted"
        if row.id in self.seen:
            outcome = "duplicate"
        elif self.provider.counts_only_listed() and label not in self.provider.statuses():
            outcome = "dropped"
        self.seen.add(row.id)
        return self._read(
            row,
            request=request,
            index=index,
            status=raw_status,
            label=label,
            phase=phase,
            outcome=outcome,
            problems=problems,
        )

    def _read(
        self,
        row: Row,
        *,
        request: int,
        index: int,
        status: str,
        label: str,
        phase: Phase,
        outcome: str,
        problems: tuple[Problem, ...],
    ) -> RowMapping:
        caps = self.provider.capabilities
        deadline = row.deadline if caps.deadlines else None
        overdue = None
        if deadline is not None and phase in _LIVE:
            overdue = deadline.timestamp() < self.now
        return RowMapping(
            request=request,
            row=index,
            id=self.masker.string(row.id),
            status=self.masker.scrub(status)[:_STATUS_CHARS],
            label=self.masker.scrub(label)[:_STATUS_CHARS],
            phase=phase.value,
            outcome=outcome,
            created=_iso(row.created),
            deadline=_iso(deadline),
            overdue=overdue,
            last_activity=_iso(row.last_activity) if caps.activity else None,
            leases=row.leases if caps.leases else None,
            executions=row.executions if caps.executions else None,
            kind=None if row.kind is None else self.masker.string(row.kind),
            problems=problems,
        )

    def _id(self, raw: Mapping[str, Any]) -> Masked:
        for key in ("id", "session_id"):
            if key in raw:
                return self.masker.value(raw[key])
        return None

    def _problem(self, label: str, message: str, row: object) -> Problem:
        """A checked read's message, its value part replaced by the masked raw value."""
        if not isinstance(row, dict):
            return Problem(label, "expected an object", json_type(row), self.masker.value(row))
        where, _, rest = message.partition(": ")
        key = where.removeprefix(_HERE).removeprefix(".") or label
        expected = rest.rpartition(", got ")[0] or rest
        if key not in row:
            return Problem(label, expected, "nothing (the key is missing)")
        value = row[key]
        return Problem(label, expected, json_type(value), self.masker.value(value))


_HERE = "row"


def _here(_index: int) -> str:
    return _HERE


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def build(
    *,
    provider: Provider[Any],
    url: str,
    calls: Sequence[Call],
    snapshot: TargetSnapshot,
    masker: Masker,
    now: float,
    max_rows: int | None,
    max_shapes: int = 20,
) -> Report:
    """The report of one poll: its calls as recorded, the snapshot it published."""
    pid = provider.id
    rows = _Rows(
        masker=masker,
        labels=StatusLabels(provider.statuses()),
        provider=provider,
        now=now,
        max_rows=max_rows,
        max_shapes=max_shapes,
    )
    requests: list[Request] = []
    defined = provider if isinstance(provider, DefinedProvider) else None
    for call in calls:
        found = None if call.body is None or defined is None else defined.raw_rows(call.body)
        number = len(requests) + 1
        requests.extend(_requests(call, number, url, found, masker))
        if found is None or defined is None:
            continue
        status = _status_of(defined, dict(call.params))
        last = len(requests)
        for index, raw in enumerate(found):
            rows.add(last, index, bytes(raw), defined.schema, status)
    aggregate = snapshot.aggregate if snapshot.up else None
    documented = provider.statuses()
    statuses: list[tuple[str, str, int]] = []
    if aggregate is not None:
        order = {status: i for i, status in enumerate(documented)}
        ordered = sorted(
            aggregate.statuses.items(), key=lambda i: (order.get(i[0], len(order)), i[0])
        )
        statuses = [(masker.scrub(s), c.phase.value, c.count) for s, c in ordered]
    caps = provider.capabilities
    if aggregate is not None:  # the facts this poll's answers carried (Chaser's shapes differ)
        caps = replace(
            caps,
            deadlines=caps.deadlines and aggregate.overdue is not None,
            leases=caps.leases and aggregate.leases is not None,
        )
    return Report(
        target=snapshot.name,
        provider=pid,
        url=masker.url(str(URL(url).with_user(None))),
        ok=snapshot.up,
        reason=snapshot.error_reason.value if snapshot.error_reason else None,
        error=None if snapshot.error is None else masker.scrub(snapshot.error),
        duration=snapshot.poll_duration,
        sessions=aggregate.sessions if aggregate else None,
        statuses=tuple(statuses),
        invalid=dict(aggregate.invalid) if aggregate else {},
        duplicates=aggregate.duplicates if aggregate else 0,
        dropped=aggregate.dropped if aggregate else 0,
        retries=snapshot.retries,
        requests=tuple(requests),
        shapes=tuple(rows.shapes.values()),
        shapes_left_out=rows.shapes_left_out,
        rows=tuple(rows.mappings),
        rows_total=rows.total,
        masker=masker,
        capabilities=tuple(
            name
            for name, present in (
                ("deadline", caps.deadlines),
                ("last_activity", caps.activity),
                ("leases", caps.leases),
                ("executions", caps.executions),
            )
            if present
        ),
    )


def _status_of(provider: DefinedProvider, params: Mapping[str, str]) -> str | None:
    """The status of a listing's rows where they carry none: the one its query asked for."""
    flt = provider.definition.status_filter
    if flt is None or not provider.definition.from_listing:
        return None
    return params.get(flt.param, "").lower() or None


def _requests(
    call: Call, first: int, url: str, rows: list[msgspec.Raw] | None, masker: Masker
) -> list[Request]:
    """The numbered answers of one page (the last one carries the rows or the error)."""
    out: list[Request] = []
    for offset, exchange in enumerate(call.exchanges):
        last = offset == len(call.exchanges) - 1
        out.append(
            _request(
                first + offset, exchange=exchange, last=last, call=call, rows=rows, masker=masker
            )
        )
    if not out:  # no HTTP answer at all: a refused connection, a timeout, max_pages
        shown = URL(url).with_query(call.params) if call.params else URL(url)
        out.append(
            Request(
                number=first,
                url=masker.url(str(shown.with_user(None))),
                status=None,
                elapsed=None,
                body_bytes=None,
                rows=None,
                note=None if call.error is None else masker.scrub(call.error),
                headers=(),
            )
        )
    return out


def _request(
    number: int,
    *,
    exchange: Exchange,
    last: bool,
    call: Call,
    rows: list[msgspec.Raw] | None,
    masker: Masker,
) -> Request:
    note: str | None = None
    count: int | None = None
    if exchange.status is None:  # an attempt with no answer: why, and whether it was retried
        why = call.error if last and call.error is not None else exchange.error or ""
        note = masker.scrub(why) + ("" if last else " (retried)")
    elif not last:
        note = "redirect, followed" if exchange.status in REDIRECTS else "retried"
    elif call.error is not None:
        note = masker.scrub(call.error)
    elif call.body is not None:
        count = None if rows is None else len(rows)
        if rows is None:
            note = "no rows where the provider has them (see the result)"
    return Request(
        number=number,
        url=masker.url(exchange.url),
        status=exchange.status,
        elapsed=exchange.elapsed,
        body_bytes=exchange.body_bytes,
        rows=count,
        note=note,
        headers=tuple(
            (n, REDACTED if masker.holds_secret(v) else masker.scrub(v))
            for n, v in exchange.rate_limit
        ),
    )
