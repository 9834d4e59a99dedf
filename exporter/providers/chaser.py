"""Chaser browser sessions: ``GET /v1/sessions`` with ``limit``/``offset`` paging and leases.

Chaser's ``status`` is free-form. The exporter maps it case-insensitively to a phase
(see ``STATUS_PHASES``, documented in the README); any other value keeps its
lower-cased name with phase ``unknown``.
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
    "pending": Phase.PENDING,
    "starting": Phase.PENDING,
    "running": Phase.LIVE,
    "active": Phase.LIVE,
    "idle": Phase.LIVE,
    "stopping": Phase.LIVE,
    "stopped": Phase.ENDED,
    "terminated": Phase.ENDED,
    "completed": Phase.ENDED,
    "expired": Phase.ENDED,
    "failed": Phase.FAILED,
    "error": Phase.FAILED,
}


class ChaserTarget(TargetBase):
    """A Chaser account."""

    default_base_url: ClassVar[str] = "https://api.chaser.sh"

    provider: Literal["chaser"]
    page_size: Annotated[int, Field(ge=1, le=1000)] = 100
    page_concurrency: Annotated[int, Field(ge=1, le=32)] = 4


@dataclass(frozen=True, slots=True)
class _Page:
    records: list[SessionRecord]
    rows: int
    total: int


class ChaserProvider(Provider[ChaserTarget]):
    """Pages ``limit``/``offset`` until ``total`` sessions have been walked.

    Once the first page has told the total, the next pages are fetched up to
    ``page_concurrency`` at a time, and consumed in order with the same stopping rule
    as a walk one page at a time: stop at an empty page or once ``offset`` reaches the
    latest ``total``. A page shorter than the step (the list shifted while being paged)
    drops the pages fetched ahead and goes on from where that page ended. So a poll
    requests exactly the pages the list needs, unless the list shrinks during the poll.
    """

    id = "chaser"
    path = "/v1/sessions"
    capabilities = Capabilities(leases=True)

    def statuses(self) -> Mapping[str, Phase]:
        return STATUS_PHASES

    async def pages(self, fetcher: PageFetcher) -> AsyncIterator[Sequence[SessionRecord]]:
        first = await self._page(fetcher, 0)
        yield first.records
        offset, total = first.rows, first.total
        if not first.rows or offset >= total:
            return
        step = first.rows  # the page size the server actually serves
        window: Window[_Page] = Window(self.target.page_concurrency)
        ahead = offset  # the offset of the next page to start
        try:
            while True:
                while window.room() and ahead < total:
                    window.start(ahead, self._page(fetcher, ahead))
                    ahead += step
                at, page = await window.next()
                yield page.records
                offset, total = at + page.rows, page.total
                if not page.rows or offset >= total:
                    return
                upcoming = window.next_key()
                if (ahead if upcoming is None else upcoming) != offset:
                    await window.drop()  # a short page: the pages ahead start elsewhere
                    ahead = offset
        finally:
            await window.drop()

    async def _page(self, fetcher: PageFetcher, offset: int) -> _Page:
        body = fields.as_object(
            await fetcher.get_json({"limit": str(self.target.page_size), "offset": str(offset)}),
            "response",
        )
        rows = fields.as_list(body.get("sessions"), "response.sessions")
        total = fields.integer(body, "total", "response")
        # the fast path first: the location string is only built for the checked reads
        records = [
            _fast(row) or parse_row(row, f"sessions[{offset + i}]") for i, row in enumerate(rows)
        ]
        return _Page(records, len(rows), total)


def parse_row(value: object, where: str) -> SessionRecord:
    """One Chaser ``SessionInfo`` as a record."""
    record = _fast(value)
    if record is not None:
        return record
    row = fields.as_object(value, where)
    status = fields.text(row, "status", where).strip().lower()
    return SessionRecord(
        id=fields.text(row, "id", where),
        status=status,
        phase=STATUS_PHASES.get(status, Phase.UNKNOWN),
        created=fields.timestamp(row, "created_at", where),
        leases=fields.optional_integer(row, "active_connection_leases", where),
        kind=fields.optional_text(row, "session_type", where),
    )


def _fast(value: object) -> SessionRecord | None:
    """The record of a plain row (exact JSON types, a zoned timestamp), else ``None``.

    The hot path; anything unusual goes to the checked reads and their messages.
    """
    if type(value) is not dict:
        return None
    row_id = value.get("id")
    raw = value.get("status")
    created_at = value.get("created_at")
    leases = value.get("active_connection_leases")
    kind = value.get("session_type")
    if not (
        type(row_id) is str
        and row_id
        and type(raw) is str
        and raw
        and type(created_at) is str
        and (leases is None or type(leases) is int)
        and (kind is None or type(kind) is str)
    ):
        return None
    created = parse_aware(created_at)
    if created is None:
        return None
    status, phase = _status(raw)
    # positional, in field order: half the cost of keywords (id, status, phase, created,
    # deadline, last_activity, leases, executions, kind)
    return SessionRecord(row_id, status, phase, created, None, None, leases, None, kind)


_status = fields.StatusLabels(STATUS_PHASES)
