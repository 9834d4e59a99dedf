"""Notte browser sessions: ``GET /sessions`` with ``page``/``page_size`` paging and deadlines.

A session's deadline is the earlier of ``created_at + max_duration_minutes`` (15 when
absent, the API's default) and ``last_accessed_at + idle_timeout_minutes``.

The list query also takes ``include_system``: whether to list *internal system sessions*,
the sessions Notte runs itself, which a row marks ``system_hidden: true`` (the SDK's words:
"an internal system run", "omitted from session.list() unless include_system=True is
requested"). The API's default is true (``notte-sdk`` 1.10.0's generated query model), so
they are listed and counted unless the target sets ``include_system: false``; the parameter
is sent only when the target sets it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from pydantic import Field

from exporter.core.records import Phase
from exporter.providers import envelope, fields, wire
from exporter.providers.base import Capabilities, Provider
from exporter.providers.paging import RepeatGuard, Window
from exporter.providers.rows import Aware, Buffer, Page, RowCodec, RowStruct, Text
from exporter.providers.target import TargetBase
from exporter.upstream.errors import SchemaError
from exporter.upstream.fetch import PageFetcher

STATUS_PHASES: Mapping[str, Phase] = {
    "authenticating": Phase.PENDING,
    "active": Phase.LIVE,
    "closed": Phase.ENDED,
    "timed_out": Phase.ENDED,
    "error": Phase.FAILED,
}
"""The spec's four statuses and the SDK's fifth, ``authenticating`` (notte_core/types.py)."""
ACTIVE_ONLY: Mapping[str, Phase] = {"active": Phase.LIVE}
DEFAULT_MAX_DURATION_MINUTES = 15
PAGE_SIZE = 100
_MINUTE = timedelta(minutes=1)


class NotteTarget(TargetBase):
    """A Notte account."""

    default_base_url: ClassVar[str] = "https://api.notte.cc"

    provider: Literal["notte"]
    only_active: bool = True
    include_system: bool | None = None
    """Sent as ``include_system`` only when set; unset, the API's default (true) applies."""
    page_concurrency: Annotated[int, Field(ge=1, le=32)] = 4


def deadline(
    created: datetime | None,
    accessed: datetime | None,
    max_minutes: int | None,
    idle_minutes: int | None,
) -> datetime | None:
    """The earlier of ``created + max_duration`` (15 min when absent) and ``accessed + idle``.

    A limit beyond the calendar's range (minutes of any size are valid JSON) is no limit.
    """
    idle = None if accessed is None or idle_minutes is None else _later(accessed, idle_minutes)
    if created is None:
        return idle
    limit = _later(created, DEFAULT_MAX_DURATION_MINUTES if max_minutes is None else max_minutes)
    if limit is None or idle is None:
        return idle if limit is None else limit
    return min(limit, idle)


_LOW, _HIGH = float(2**30), float(2**31)
"""Unix seconds of 2004-01-10 and 2038-01-19: one binade of floats, whose spacing (2**-22 s)
divides every whole minute, so adding minutes there is exact."""


def seconds_later(moment: float | None, minutes: int) -> float | None:
    """``moment + minutes`` as unix seconds, when float arithmetic gives exactly what the
    datetime arithmetic (``(datetime + minutes).timestamp()``) gives; else ``None``.

    Both stay within ``[2**30, 2**31)``, where every float is a multiple of 2**-22 and so
    is every whole minute: the sum of the rounded time and the minutes is the rounding of
    the exact sum (the same nearest point of the same grid, ties to the same even one).
    """
    if moment is not None and _LOW < moment < _HIGH:
        later = moment + minutes * 60.0
        if _LOW < later < _HIGH:
            return later
    return None


def _later(moment: datetime, minutes: int) -> datetime | None:
    try:
        return moment + minutes * _MINUTE
    except OverflowError:
        return None


class NotteRow(RowStruct, gc=False):
    """One ``SessionResponse``, the fields the exporter reads."""

    id: Text = msgspec.field(name="session_id")
    status: Text
    created: Aware = msgspec.field(name="created_at")
    last_activity: Aware | None = msgspec.field(name="last_accessed_at", default=None)
    max_minutes: int | None = msgspec.field(name="max_duration_minutes", default=None)
    idle_minutes: int | None = msgspec.field(name="idle_timeout_minutes", default=None)
    old_idle_minutes: int | None = msgspec.field(name="timeout_minutes", default=None)
    kind: str | None = msgspec.field(name="browser_type", default=None)
    leases: ClassVar[None] = None
    executions: ClassVar[None] = None

    @property
    def deadline(self) -> datetime | None:
        """See :func:`deadline`; the SDK's older ``timeout_minutes`` stands in for the idle one."""
        idle = self.idle_minutes if self.idle_minutes is not None else self.old_idle_minutes
        return deadline(self.created, self.last_activity, self.max_minutes, idle)

    def deadline_seconds(self, created: float | None, accessed: float | None) -> float | None:
        """:attr:`deadline` as unix seconds, from the creation and access times already read:
        float arithmetic where it is exact (see :func:`seconds_later`), else the datetime one.
        """
        mx = self.max_minutes
        limit = seconds_later(created, DEFAULT_MAX_DURATION_MINUTES if mx is None else mx)
        if limit is None:
            return self._slow_deadline()
        idle = self.idle_minutes
        if idle is None:
            idle = self.old_idle_minutes
            if idle is None:
                return limit
        activity = self.last_activity
        if activity is None:
            return limit
        until = seconds_later(activity.timestamp() if accessed is None else accessed, idle)
        if until is None:
            return self._slow_deadline()
        return limit if limit < until else until

    def _slow_deadline(self) -> float | None:
        at = self.deadline
        return None if at is None else at.timestamp()


CODEC = RowCodec(NotteRow)


class _Envelope(msgspec.Struct, gc=False):
    """A whole page of valid rows, for one C call (anything else takes the checked path)."""

    items: list[NotteRow]
    has_next: bool
    detail: Any = None
    """Present and not null: an error in a 2xx answer (the checked path says so)."""


_ENVELOPE = msgspec.json.Decoder(_Envelope)


@dataclass(frozen=True, slots=True)
class _Page:
    """One answer, fetched: its rows decoded already (a small valid page), or their bytes,
    decoded a chunk at a time while the page is consumed."""

    number: int
    body: bytes
    rows: list[NotteRow] | None
    array: Buffer
    has_next: bool

    def exact(self) -> Buffer:
        """The bytes of the rows array (what :class:`RepeatGuard` compares)."""
        if self.rows is None:
            return self.array
        return envelope.array(envelope.decode_object(self.body, "response").get("items"), "")


class NotteProvider(Provider[NotteTarget]):
    """Pages ``page=1,2,…`` with ``page_size=100`` while ``has_next`` is true.

    The API tells no total, so pages are fetched ahead (up to ``page_concurrency`` at a
    time) only as far as the previous poll of this target went: in a steady state a poll
    requests exactly the pages it needs. Beyond that, one page at a time, each started
    once the one before said ``has_next``; if the list shrank since the previous poll, at
    most ``page_concurrency - 1`` pages past its end are requested and dropped. A page that
    repeats the previous one row for row ends the walk (``too_many_pages``).

    The list route is ``/sessions/`` (a FastAPI route; the SDK asks for it with the slash).
    """

    id = "notte"
    path = "/sessions/"
    capabilities = Capabilities(deadlines=True, activity=True)
    row_fields = CODEC.fields
    error_detail = staticmethod(wire.notte_error_detail)

    def __init__(self, target: NotteTarget) -> None:
        super().__init__(target)
        self.known_pages = 1
        """How many pages the previous complete walk took: how far to fetch ahead."""

    def statuses(self) -> Mapping[str, Phase]:
        return ACTIVE_ONLY if self.target.only_active else STATUS_PHASES

    def counts_only_listed(self) -> bool:
        return self.target.only_active

    async def pages(self, fetcher: PageFetcher) -> AsyncIterator[Page]:
        window: Window[_Page] = Window(self.target.page_concurrency)
        guard = RepeatGuard()
        ahead = 1  # the next page number to start
        done = 0  # pages consumed, each with has_next true
        try:
            while True:
                while window.room() and ahead <= max(self.known_pages, done + 1):
                    window.start(ahead, self._page(fetcher, ahead))
                    ahead += 1
                number, page = await window.next()
                if page.has_next:
                    guard.check_rows(page.rows, page.exact, f"page {number}")
                async for part in self._parts(page):
                    yield part
                if not page.has_next:
                    self.known_pages = number
                    return
                done = number
        finally:
            await window.drop()

    @staticmethod
    async def _parts(page: _Page) -> AsyncIterator[Page]:
        """The page's rows, as one page or a chunk at a time."""
        if page.rows is not None:
            yield Page(page.rows, len(page.rows))
            return
        where = f"page[{page.number}].items"
        async for part in CODEC.pages(page.array, where=lambda i: f"{where}[{i}]"):
            yield part

    async def _page(self, fetcher: PageFetcher, page: int) -> _Page:
        only_active = "true" if self.target.only_active else "false"
        params = {"page": str(page), "page_size": str(PAGE_SIZE), "only_active": only_active}
        if self.target.include_system is not None:
            params["include_system"] = "true" if self.target.include_system else "false"
        body = await fetcher.get_body(params)
        whole = envelope.typed(_ENVELOPE, body)
        if whole is not None and whole.detail is None:
            return _Page(page, body, whole.items, b"", whole.has_next)
        top = envelope.decode_any(body)
        if isinstance(top, bytes):  # a bare array is the whole list, as the SDK takes it
            return _Page(page, b"", None, top, False)
        if bytes(top.get("detail", b"null")).strip() != b"null":  # an error, as the SDK says
            detail = wire.notte_error_detail(body)
            raise SchemaError(f"page {page}: an error in a 2xx answer, not a page: {detail}")
        rows = envelope.array(top.get("items"), "response.items")
        has_next = fields.boolean(envelope.scalars(top, "has_next"), "has_next", "response")
        return _Page(page, b"", None, rows, has_next)
