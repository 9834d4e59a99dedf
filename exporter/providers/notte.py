"""Notte browser sessions: ``GET /sessions`` with ``page``/``page_size`` paging and deadlines.

A session's deadline is the earlier of ``created_at + max_duration_minutes`` (15 when
absent, the API's default) and ``last_accessed_at + idle_timeout_minutes``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from exporter.fetch import PageFetcher
from exporter.providers import fields
from exporter.providers.base import Capabilities, Provider
from exporter.providers.paging import Window
from exporter.records import Phase, SessionRecord
from exporter.schema import TargetBase
from exporter.timeparse import parse_aware

STATUS_PHASES: Mapping[str, Phase] = {
    "active": Phase.LIVE,
    "closed": Phase.ENDED,
    "timed_out": Phase.ENDED,
    "error": Phase.FAILED,
}
ACTIVE_ONLY: Mapping[str, Phase] = {"active": Phase.LIVE}
DEFAULT_MAX_DURATION_MINUTES = 15
PAGE_SIZE = 100


class NotteTarget(TargetBase):
    """A Notte account."""

    default_base_url: ClassVar[str] = "https://api.notte.cc"

    provider: Literal["notte"]
    only_active: bool = True
    page_concurrency: Annotated[int, Field(ge=1, le=32)] = 4


@dataclass(frozen=True, slots=True)
class _Page:
    records: list[SessionRecord]
    has_next: bool


class NotteProvider(Provider[NotteTarget]):
    """Pages ``page=1,2,…`` with ``page_size=100`` while ``has_next`` is true.

    The API tells no total, so pages are fetched ahead (up to ``page_concurrency`` at a
    time) only as far as the previous poll of this target went: in a steady state a poll
    requests exactly the pages it needs. Beyond that, one page at a time, each started
    once the one before said ``has_next``; if the list shrank since the previous poll, at
    most ``page_concurrency - 1`` pages past its end are requested and dropped.
    """

    id = "notte"
    path = "/sessions"
    capabilities = Capabilities(deadlines=True, activity=True)

    def __init__(self, target: NotteTarget) -> None:
        super().__init__(target)
        self.known_pages = 1
        """How many pages the previous complete walk took: how far to fetch ahead."""

    def statuses(self) -> Mapping[str, Phase]:
        return ACTIVE_ONLY if self.target.only_active else STATUS_PHASES

    async def pages(self, fetcher: PageFetcher) -> AsyncIterator[Sequence[SessionRecord]]:
        window: Window[_Page] = Window(self.target.page_concurrency)
        ahead = 1  # the next page number to start
        done = 0  # pages consumed, each with has_next true
        try:
            while True:
                while window.room() and ahead <= max(self.known_pages, done + 1):
                    window.start(ahead, self._page(fetcher, ahead))
                    ahead += 1
                number, page = await window.next()
                yield page.records
                if not page.has_next:
                    self.known_pages = number
                    return
                done = number
        finally:
            await window.drop()

    async def _page(self, fetcher: PageFetcher, page: int) -> _Page:
        only_active = "true" if self.target.only_active else "false"
        params = {"page": str(page), "page_size": str(PAGE_SIZE), "only_active": only_active}
        body = fields.as_object(await fetcher.get_json(params), "response")
        rows = fields.as_list(body.get("items"), "response.items")
        has_next = fields.boolean(body, "has_next", "response")
        # the fast path first: the location string is only built for the checked reads
        records = [
            _fast(row) or parse_row(row, f"page[{page}].items[{i}]") for i, row in enumerate(rows)
        ]
        return _Page(records, has_next)


def parse_row(value: object, where: str) -> SessionRecord:
    """One Notte ``SessionResponse`` as a record, with its deadline computed."""
    if type(value) is dict:  # the hot path: exact JSON types only, else the checked reads
        record = _parse_plain(value)
        if record is not None:
            return record
    row = fields.as_object(value, where)
    status = fields.text(row, "status", where).strip().lower()
    created = fields.timestamp(row, "created_at", where)
    accessed = fields.optional_timestamp(row, "last_accessed_at", where)
    max_minutes = fields.optional_integer(row, "max_duration_minutes", where)
    idle_minutes = fields.optional_integer(row, "idle_timeout_minutes", where)
    deadline = created + 60.0 * (
        DEFAULT_MAX_DURATION_MINUTES if max_minutes is None else max_minutes
    )
    if accessed is not None and idle_minutes is not None:
        deadline = min(deadline, accessed + 60.0 * idle_minutes)
    return SessionRecord(
        id=fields.text(row, "session_id", where),
        status=status,
        phase=STATUS_PHASES.get(status, Phase.UNKNOWN),
        created=created,
        deadline=deadline,
        last_activity=accessed,
        kind=fields.optional_text(row, "browser_type", where),
    )


def _fast(value: object) -> SessionRecord | None:
    """The record of a plain row (every field of its usual type), else ``None``."""
    return _parse_plain(value) if type(value) is dict else None


def _parse_plain(row: dict[str, object]) -> SessionRecord | None:
    """``parse_row`` of a row whose fields all have their plain types, else ``None``."""
    row_id = row.get("session_id")
    raw = row.get("status")
    created_at = row.get("created_at")
    accessed_at = row.get("last_accessed_at")
    max_minutes = row.get("max_duration_minutes")
    idle_minutes = row.get("idle_timeout_minutes")
    kind = row.get("browser_type")
    if not (
        type(row_id) is str
        and row_id
        and type(raw) is str
        and raw
        and type(created_at) is str
        and (accessed_at is None or type(accessed_at) is str)
        and (max_minutes is None or type(max_minutes) is int)
        and (idle_minutes is None or type(idle_minutes) is int)
        and (kind is None or type(kind) is str)
    ):
        return None
    created = parse_aware(created_at)
    if created is None:
        return None
    accessed = None
    if accessed_at is not None:
        accessed = parse_aware(accessed_at)
        if accessed is None:
            return None
    deadline = created + 60.0 * (
        DEFAULT_MAX_DURATION_MINUTES if max_minutes is None else max_minutes
    )
    if accessed is not None and idle_minutes is not None:
        deadline = min(deadline, accessed + 60.0 * idle_minutes)
    status, phase = _status(raw)
    # positional, in field order: half the cost of keywords (id, status, phase, created,
    # deadline, last_activity, leases, executions, kind)
    return SessionRecord(row_id, status, phase, created, deadline, accessed, None, None, kind)


_status = fields.StatusLabels(STATUS_PHASES)
