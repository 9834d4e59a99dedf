"""Chaser browser sessions: ``GET /v1/sessions`` with ``limit``/``offset`` paging and leases.

Chaser's ``status`` is free-form. The exporter maps it case-insensitively to a phase
(see ``STATUS_PHASES``, documented in the README); any other value keeps its
lower-cased name with phase ``unknown``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

import msgspec
from pydantic import Field

from exporter.core.records import Phase
from exporter.providers import envelope, fields, wire
from exporter.providers.base import Capabilities, Provider
from exporter.providers.paging import RepeatGuard, Window
from exporter.providers.rows import Aware, Buffer, Count, Page, RowCodec, RowStruct, Text
from exporter.providers.target import TargetBase
from exporter.upstream.fetch import PageFetcher

STATUS_PHASES: Mapping[str, Phase] = {
    "pending": Phase.PENDING,
    "starting": Phase.PENDING,
    "ready": Phase.LIVE,
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
"""The SDK's ready set (``ready``, ``running``, ``active``) is live, its terminal set
(``terminated``, ``failed``) ended and failed; the rest is the project's reading of the
free-form status (docs/providers.md)."""

AccountName = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^\r\n\x00]+$")]


class ChaserTarget(TargetBase):
    """A Chaser account."""

    default_base_url: ClassVar[str] = "https://api.chaser.sh"

    provider: Literal["chaser"]
    page_size: Annotated[int, Field(ge=1, le=1000)] = 100
    page_concurrency: Annotated[int, Field(ge=1, le=32)] = 4
    account: AccountName | None = None
    """Sent as ``X-Chaser-Account`` on every request, as the SDK's ``account`` option does."""


class ChaserRow(RowStruct, gc=False):
    """One ``SessionInfo``, the fields the exporter reads."""

    id: Text
    status: Text
    created: Aware = msgspec.field(name="created_at")
    leases: Count | None = msgspec.field(name="active_connection_leases", default=None)
    kind: str | None = msgspec.field(name="session_type", default=None)
    deadline: ClassVar[None] = None
    last_activity: ClassVar[None] = None
    executions: ClassVar[None] = None


CODEC = RowCodec(ChaserRow)


class _Envelope(msgspec.Struct, gc=False):
    """A whole page of valid rows, for one C call (anything else takes the checked path)."""

    sessions: list[ChaserRow]
    total: int


_ENVELOPE = msgspec.json.Decoder(_Envelope)


@dataclass(frozen=True, slots=True)
class _Page:
    """One answer, fetched: its rows decoded already (a small valid page), or their bytes,
    decoded a chunk at a time while the page is consumed; ``total`` is ``None`` for a
    bare array (the whole list)."""

    offset: int
    body: bytes
    rows: list[ChaserRow] | None
    array: Buffer
    total: int | None

    def exact(self) -> Buffer:
        """The bytes of the rows array (what :class:`RepeatGuard` compares)."""
        if self.rows is None:
            return self.array
        return envelope.array(envelope.decode_object(self.body, "response").get("sessions"), "")


class ChaserProvider(Provider[ChaserTarget]):
    """Pages ``limit``/``offset`` until ``total`` sessions have been walked.

    Once the first page has told the total, the next pages are fetched up to
    ``page_concurrency`` at a time, and consumed in order with the same stopping rule
    as a walk one page at a time: stop at an empty page or once ``offset`` reaches the
    latest ``total``. A page shorter than the step (the list shifted while being paged)
    drops the pages fetched ahead and goes on from where that page ended. So a poll
    requests exactly the pages the list needs, unless the list shrinks during the poll.

    A page is decoded in one call when it is small and valid; else its rows are decoded
    a chunk at a time as they are counted, so a page fetched ahead holds only its bytes.
    """

    id = "chaser"
    path = "/v1/sessions"
    capabilities = Capabilities(leases=True)
    row_fields = CODEC.fields
    error_detail = staticmethod(wire.chaser_error_detail)

    def statuses(self) -> Mapping[str, Phase]:
        return STATUS_PHASES

    def request_headers(self) -> Mapping[str, str]:
        account = self.target.account
        return {"X-Chaser-Account": account.strip()} if account and account.strip() else {}

    async def pages(self, fetcher: PageFetcher) -> AsyncIterator[Page]:
        guard = RepeatGuard()
        first = await self._page(fetcher, 0)
        guard.check_rows(first.rows, first.exact, "sessions at offset 0")
        read = 0
        async for part in self._parts(first):
            read += part.read
            yield part
        offset, total = read, read if first.total is None else first.total
        if not read or offset >= total:
            return
        step = read  # the page size the server actually serves
        window: Window[_Page] = Window(self.target.page_concurrency)
        ahead = offset  # the offset of the next page to start
        try:
            while True:
                while window.room() and ahead < total:
                    window.start(ahead, self._page(fetcher, ahead))
                    ahead += step
                at, page = await window.next()
                guard.check_rows(page.rows, page.exact, f"sessions at offset {at}")
                read = 0
                async for part in self._parts(page):
                    read += part.read
                    yield part
                offset = at + read
                total = offset if page.total is None else page.total
                if not read or offset >= total:
                    return
                upcoming = window.next_key()
                if (ahead if upcoming is None else upcoming) != offset:
                    await window.drop()  # a short page: the pages ahead start elsewhere
                    ahead = offset
        finally:
            await window.drop()

    async def _page(self, fetcher: PageFetcher, offset: int) -> _Page:
        body = await fetcher.get_body({"limit": str(self.target.page_size), "offset": str(offset)})
        whole = envelope.typed(_ENVELOPE, body)
        if whole is not None:
            return _Page(offset, body, whole.sessions, b"", whole.total)
        top = envelope.decode_any(body)
        if isinstance(top, bytes):  # a bare array is the whole list, as the SDK takes it
            return _Page(offset, b"", None, top, None)
        rows = envelope.array(top.get("sessions"), "response.sessions")
        total = fields.integer(envelope.scalars(top, "total"), "total", "response")
        return _Page(offset, b"", None, rows, total)

    @staticmethod
    async def _parts(page: _Page) -> AsyncIterator[Page]:
        """The page's rows, as one page or a chunk at a time."""
        if page.rows is not None:
            yield Page(page.rows, len(page.rows))
            return
        offset = page.offset
        async for part in CODEC.pages(page.array, where=lambda i: f"sessions[{offset + i}]"):
            yield part
