"""Chaser browser sessions: ``GET /v1/sessions``, in either of the two list shapes Chaser documents.

- The API reference's shape (and ``chaser-sdk`` 0.2.1's): ``{sessions, total}``, paged with
  ``limit``/``offset``; rows carry ``active_connection_leases`` and ``session_type``. A bare
  JSON array, as the SDK accepts it, is the whole list.
- The newer guide's shape: ``{object: "list", data, next_cursor, has_more}``, paged with
  ``limit`` (1 to 100) and ``cursor``; ``sess_`` ids, statuses from ``creating`` to ``ready``,
  ``expires_at`` (a deadline), no leases and no ``session_type``.

The first answer of a poll tells the shape, and the walk follows that shape's rules. Which
facts the poll reports follows the shape too: leases only from the reference's shape (the
guide's answers carry none, so the lease series are absent, never 0), deadlines from the
guide's shape or wherever a row carries ``expires_at``.

Chaser's ``status`` is free-form. The exporter maps it case-insensitively to a phase
(see ``STATUS_PHASES``, documented in docs/providers.md); any other value keeps its
lower-cased name with phase ``unknown``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

import msgspec
from pydantic import Field

from exporter.core.records import Phase
from exporter.providers import envelope, fields, wire
from exporter.providers.base import Capabilities, Provider
from exporter.providers.paging import RepeatGuard, Window
from exporter.providers.rows import Aware, Buffer, Count, Page, Row, RowCodec, RowStruct, Text
from exporter.providers.target import TargetBase
from exporter.upstream.errors import SchemaError, clip
from exporter.upstream.fetch import PageFetcher

STATUS_PHASES: Mapping[str, Phase] = {
    "creating": Phase.PENDING,
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
(``terminated``, ``failed``) ended and failed; the guide's ``creating`` (before ``ready``)
pending; the rest is the project's reading of the free-form status (docs/providers.md)."""

CURSOR_LIMIT = 100
"""The largest ``limit`` the guide's cursor shape takes."""
Shape = Literal["offset", "cursor", "array"]

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
    """One session of either shape, the fields the exporter reads (each shape lacks some)."""

    id: Text
    status: Text
    created: Aware = msgspec.field(name="created_at")
    deadline: Aware | None = msgspec.field(name="expires_at", default=None)
    leases: Count | None = msgspec.field(name="active_connection_leases", default=None)
    kind: str | None = msgspec.field(name="session_type", default=None)
    last_activity: ClassVar[None] = None
    executions: ClassVar[None] = None


CODEC = RowCodec(ChaserRow)


class _Envelope(msgspec.Struct, gc=False):
    """A whole offset page of valid rows, for one C call (anything else takes the checked
    path)."""

    sessions: list[ChaserRow]
    total: int


class _ListEnvelope(msgspec.Struct, gc=False):
    """A whole cursor page of valid rows, for one C call."""

    data: list[ChaserRow]
    has_more: bool
    next_cursor: str | None = None


_ENVELOPE = msgspec.json.Decoder(_Envelope)
_LIST_ENVELOPE = msgspec.json.Decoder(_ListEnvelope)


@dataclass(frozen=True, slots=True)
class _Page:
    """One answer, fetched: its rows decoded already (a small valid page), or their bytes,
    decoded a chunk at a time while the page is consumed. ``total`` is the offset shape's
    (``None`` for a bare array, the whole list); ``has_more``/``next_cursor`` the cursor
    shape's."""

    offset: int
    shape: Shape
    body: bytes
    rows: list[ChaserRow] | None
    array: Buffer
    total: int | None = None
    has_more: bool = False
    next_cursor: str | None = None

    def exact(self) -> Buffer:
        """The bytes of the rows array (what :class:`RepeatGuard` compares)."""
        if self.rows is None:
            return self.array
        key = "data" if self.shape == "cursor" else "sessions"
        return envelope.array(envelope.decode_object(self.body, "response").get(key), "")


class ChaserProvider(Provider[ChaserTarget]):
    """Walks the list in the shape its first answer has (see the module's docstring).

    The offset shape pages ``limit``/``offset`` until ``total`` sessions have been walked.
    Once the first page has told the total, the next pages are fetched up to
    ``page_concurrency`` at a time and consumed in order; a page shorter than the step (the
    list shifted while being paged) drops the pages fetched ahead and goes on from where that
    page ended, so a steady list is read with exactly the pages it needs. A list that
    shrinks while it is paged is re-read where it shifted (see :meth:`_offset_walk`). The
    cursor shape pages ``limit``/``cursor`` while
    ``has_more``, one page at a time (each cursor comes with the page before).

    A page is decoded in one call when it is small and valid; else its rows are decoded
    a chunk at a time as they are counted, so a page fetched ahead holds only its bytes.
    """

    id = "chaser"
    path = "/v1/sessions"
    capabilities = Capabilities(deadlines=True, leases=True)
    row_fields = CODEC.fields
    error_detail = staticmethod(wire.chaser_error_detail)

    def __init__(self, target: ChaserTarget) -> None:
        super().__init__(target)
        self._reported = Capabilities(leases=True)
        self._deadlines = False
        """Whether the walk under way has seen a deadline (the cursor shape, or a row's)."""

    def statuses(self) -> Mapping[str, Phase]:
        return STATUS_PHASES

    def request_headers(self) -> Mapping[str, str]:
        account = self.target.account
        return {"X-Chaser-Account": account.strip()} if account and account.strip() else {}

    def reported(self) -> Capabilities:
        """The facts the last walk's answers carried: leases from the offset shape (and a
        bare array), deadlines from the cursor shape or any row with ``expires_at``."""
        return self._reported

    async def pages(self, fetcher: PageFetcher) -> AsyncIterator[Page]:
        first = await self._page(fetcher, {"offset": "0"}, 0)
        self._deadlines = first.shape == "cursor"
        walk = self._cursor_walk if first.shape == "cursor" else self._offset_walk
        async for part in walk(fetcher, first):
            yield part
        self._reported = Capabilities(deadlines=self._deadlines, leases=first.shape != "cursor")

    async def _cursor_walk(self, fetcher: PageFetcher, page: _Page) -> AsyncIterator[Page]:
        """The guide's shape: ``cursor=<next_cursor>`` while ``has_more``; a cursor that
        repeats within the walk fails the poll (``schema``) rather than looping."""
        used: set[str] = set()
        number = 1
        while True:
            async for part in self._parts(page, f"page[{number}].data"):
                yield part
            if not page.has_more:
                return
            cursor = page.next_cursor
            where = f"page {number}: next_cursor"
            if not cursor:
                raise SchemaError(f"{where}: expected a cursor while has_more is true, got none")
            if cursor in used:
                raise SchemaError(
                    f"{where} {clip(cursor, 60)!r} was already followed in this walk; "
                    "stopping instead of looping"
                )
            used.add(cursor)
            number += 1
            page = await self._page(fetcher, {"cursor": cursor}, 0)
            if page.shape != "cursor":
                raise SchemaError(f"page {number}: a {page.shape} answer in a cursor walk")

    async def _offset_walk(self, fetcher: PageFetcher, first: _Page) -> AsyncIterator[Page]:
        """The reference's shape: offsets until ``total``, pages fetched ahead.

        The list may shrink while it is paged: a session that ends before the cursor moves
        every later row one place back, so the row that was at the next offset is now just
        before it, and would never be read. Each answer's ``total`` shows it: a page whose
        ``total`` is below the one of the page before it (the *chain* page) is not trusted
        to follow on. The gap is re-read: from as many rows before that page as ``total``
        shrank, and one more (the chain page's last row, to see that nothing is missing),
        twice as far back each time, until a re-read page lists one of the chain page's
        sessions (the list's order being stable, nothing slipped between the two) or starts
        at offset 0. A session listed for the whole poll is therefore read, and the
        aggregate counts each session once by id; the rows read twice are counted as
        duplicates. ``max_pages`` bounds the re-reads too.
        """
        guard = RepeatGuard()
        guard.check_rows(first.rows, first.exact, "sessions at offset 0")
        chain = _Chain(first.offset, first.total)
        async for part in self._parts(first, "sessions"):
            chain.add(part)
            yield part
        read, total = chain.read, chain.total
        if not read or read >= total:
            return
        step = read  # the page size the server actually serves
        window: Window[_Page] = Window(self.target.page_concurrency)
        expected = chain.next()  # the offset of the next chain page
        ahead = expected  # the offset of the next page to start
        back = 0  # how far the last re-read went back from `expected` (0: none)
        try:
            while True:
                while window.room() and ahead < total:
                    window.start(ahead, self._offset_page(fetcher, ahead))
                    ahead += step
                if window.next_key() is None:  # a re-read below where the list now ends
                    window.start(ahead, self._offset_page(fetcher, ahead))
                    ahead += step
                at, page = await window.next()
                if not back:
                    if page.total != chain.total:  # the list changed: a repeat is new rows
                        guard = RepeatGuard()
                    guard.check_rows(page.rows, page.exact, f"sessions at offset {at}")
                link = _Chain(at, page.total)
                async for part in self._parts(page, "sessions"):
                    link.add(part)
                    yield part
                if chain.followed_by(link):
                    chain, back = link, 0
                    total = link.total
                    if not link.read or link.end >= total:
                        return
                    expected = chain.next()
                    if (ahead if window.next_key() is None else window.next_key()) != expected:
                        await window.drop()  # a short page: the pages ahead start elsewhere
                        ahead = expected
                    continue
                # something slipped between the chain page and this one: re-read the gap
                await window.drop()
                guard = RepeatGuard()  # a page read again after the gap is no repeat
                shrunk = max(0, chain.total - link.total) + 1  # and the chain's last row again
                back = max(back * 2, shrunk)
                ahead = max(0, min(expected, link.total) - back)
                total = link.total
        finally:
            await window.drop()

    async def _offset_page(self, fetcher: PageFetcher, offset: int) -> _Page:
        page = await self._page(fetcher, {"offset": str(offset)}, offset)
        if page.shape == "cursor":
            raise SchemaError(f"sessions at offset {offset}: a cursor answer in an offset walk")
        return page

    async def _page(self, fetcher: PageFetcher, query: dict[str, str], offset: int) -> _Page:
        if "cursor" in query:
            limit = min(self.target.page_size, CURSOR_LIMIT)
        else:
            limit = self.target.page_size
        body = await fetcher.get_body({"limit": str(limit), **query})
        whole = envelope.typed(_ENVELOPE, body)
        if whole is not None:
            return _Page(offset, "offset", body, whole.sessions, b"", whole.total)
        listed = envelope.typed(_LIST_ENVELOPE, body)
        if listed is not None:
            return _Page(
                offset, "cursor", body, listed.data, b"", None, listed.has_more, listed.next_cursor
            )
        top = envelope.decode_any(body)
        if isinstance(top, bytes):  # a bare array is the whole list, as the SDK takes it
            return _Page(offset, "array", b"", None, top, None)
        if "sessions" not in top and ("data" in top or "has_more" in top):
            rows = envelope.array(top.get("data"), "response.data")
            values = envelope.scalars(top, "has_more", "next_cursor")
            has_more = fields.boolean(values, "has_more", "response")
            cursor = fields.optional_text(values, "next_cursor", "response")
            return _Page(offset, "cursor", b"", None, rows, None, has_more, cursor)
        rows = envelope.array(top.get("sessions"), "response.sessions")
        total = fields.integer(envelope.scalars(top, "total"), "total", "response")
        return _Page(offset, "offset", b"", None, rows, total)

    async def _parts(self, page: _Page, name: str) -> AsyncIterator[Page]:
        """The page's rows, as one page or a chunk at a time; notes a row's deadline."""
        if page.rows is not None:
            if not self._deadlines:
                self._deadlines = any(row.deadline is not None for row in page.rows)
            yield Page(page.rows, len(page.rows))
            return
        offset = page.offset
        async for part in CODEC.pages(page.array, where=lambda i: f"{name}[{offset + i}]"):
            if not self._deadlines:
                self._deadlines = any(row.deadline is not None for row in part.rows)
            yield part


_TAIL_ROWS = 1024
"""Rows at the end of a chain page whose ids a re-read page is compared with (at least)."""


class _Chain:
    """One offset page as a link of the walk: where it starts, its last rows, its ``total``."""

    __slots__ = ("_bare", "_ids", "_tail", "_tail_rows", "at", "read", "total")

    def __init__(self, at: int, total: int | None) -> None:
        self.at = at
        self.read = 0
        self._bare = total is None  # a bare array is the whole list: its total is its rows
        self.total = at if total is None else total
        self._tail: deque[Sequence[Row]] = deque()
        self._tail_rows = 0
        self._ids: set[str] | None = None

    def add(self, part: Page) -> None:
        """Count a part of the page and keep its rows while they are among its last ones."""
        self.read += part.read
        if self._bare:
            self.total = self.at + self.read
        self._tail.append(part.rows)
        self._tail_rows += len(part.rows)
        while self._tail_rows - len(self._tail[0]) >= _TAIL_ROWS:
            self._tail_rows -= len(self._tail.popleft())

    def ids(self) -> set[str]:
        """The ids of the page's last rows (built when a re-read first needs them)."""
        if self._ids is None:
            self._ids = {row.id for rows in self._tail for row in rows}
        return self._ids

    @property
    def end(self) -> int:
        """The offset just past the page."""
        return self.at + self.read

    def next(self) -> int:
        """Where the page after this one starts."""
        return self.end

    def followed_by(self, link: _Chain) -> bool:
        """Whether ``link`` (asked for after this page) leaves no gap after it.

        From offset 0 there is none; a re-read page, overlapping this one, must share a
        session with it; a page after this one must not have seen the list shrink.
        """
        if link.at == 0:
            return True
        if link.at < self.end:
            return not self.ids().isdisjoint(link.ids())
        return link.total >= self.total
