"""Fetching several pages of one list at a time, consumed in order."""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any, Generic, TypeVar

from exporter.providers.rows import Buffer, Page
from exporter.upstream.errors import PollError, Reason

T = TypeVar("T")


class RepeatGuard:
    """Fails a walk whose next page is the previous page again (a server that never advances).

    A mock server, or a broken one, may answer ``has_next: true`` forever with the same
    page: without this the walk would run into the poll's deadline or ``max_pages``.
    A page is the bytes of its rows array (a large one kept as its SHA-256, so memory
    holds no second copy). A page decoded typed in one call also gives its rows, and its
    bytes are only taken (``exact``) when those rows equal the previous page's: the same
    rule, for the cost of comparing first rows. An empty page is never a repeat: a server
    that filters a page after cutting it may send several in a row, its cursor advancing.
    """

    def __init__(self) -> None:
        self._last: Callable[[], bytes] | None = None
        self._last_rows: Sequence[object] | None = None

    def check(self, rows: Buffer, where: str) -> None:
        """Remember this page's rows; raise when they repeat the previous page's."""
        self.check_rows(None, lambda: rows, where)

    def check_rows(
        self,
        decoded: Sequence[object] | None,
        exact: Callable[[], Buffer],
        where: str,
    ) -> None:
        """The same for a page whose rows array is ``exact()`` and decoded as ``decoded``."""
        last, last_rows = self._last, self._last_rows

        if decoded is None:  # bytes in hand: keep their fingerprint, not the answer
            held = _fingerprint(exact())

            def mine() -> bytes:
                return held
        else:  # a small page decoded typed: its bytes only if they are ever compared

            def mine() -> bytes:
                return _fingerprint(exact())

        self._last, self._last_rows = mine, decoded
        if last is None or (decoded is not None and not decoded):
            return  # the first page, or an empty one (a server may send several in a row)
        if decoded is not None and last_rows is not None and decoded != last_rows:
            return  # different rows come from different bytes
        rows = mine()
        if rows == last() and not _empty(rows):
            raise PollError(
                Reason.TOO_MANY_PAGES,
                f"{where} repeats the previous page row for row; the API does not advance",
            )


_FINGERPRINT_ABOVE = 1 << 16


def _empty(rows: bytes) -> bool:
    """Whether a page's rows array (or its fingerprint) holds no row: ``[]``, ``[ ]``."""
    text = rows.strip()
    return not text or (text[:1] == b"[" and text[-1:] == b"]" and not text[1:-1].strip())


def _fingerprint(rows: Buffer) -> bytes:
    """``rows`` itself, or for a large array a digest of it (never equal to a small array:
    it holds a NUL byte, which JSON text never does)."""
    if len(rows) <= _FINGERPRINT_ABOVE:
        return bytes(rows)
    return b"\x00" + hashlib.sha256(rows).digest()


class Window(Generic[T]):
    """At most ``size`` page fetches in flight, handed back in the order they were started.

    The caller starts fetches while :meth:`room` says so and takes results with
    :meth:`next`; :meth:`drop` cancels whatever is still in flight (a fetch that
    turned out not to be needed, or the whole walk failing or being cancelled).
    A fetch started alone is simply awaited by :meth:`next`; it becomes a task only
    when a second one starts beside it, so a walk one page at a time creates no task.
    Driven without a running event loop (a coroutine stepped by hand, as the property
    tests do), every fetch is awaited in turn: the same walk, one page at a time.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._flight: deque[tuple[int, asyncio.Future[T] | Coroutine[Any, Any, T]]] = deque()

    def room(self) -> bool:
        """Whether another fetch may start."""
        return len(self._flight) < self._size

    def start(self, key: int, fetch: Coroutine[Any, Any, T]) -> None:
        """Start ``fetch`` (of page ``key``); alongside others, in the background."""
        if self._flight and _loop_running():
            if len(self._flight) == 1:
                head_key, head = self._flight[0]
                if not isinstance(head, asyncio.Future):
                    self._flight[0] = (head_key, asyncio.ensure_future(head))
            self._flight.append((key, asyncio.ensure_future(fetch)))
        else:
            self._flight.append((key, fetch))

    def next_key(self) -> int | None:
        """The key of the fetch :meth:`next` returns, or ``None`` when none is in flight."""
        return self._flight[0][0] if self._flight else None

    async def next(self) -> tuple[int, T]:
        """The oldest fetch's key and result (its exception, if it failed)."""
        key, fetch = self._flight.popleft()
        try:
            return key, await fetch
        except BaseException:
            await self.drop()
            raise

    async def drop(self) -> None:
        """Cancel every fetch in flight and wait until they are gone."""
        flight, self._flight = [f for _, f in self._flight], deque()
        tasks = []
        for fetch in flight:
            if isinstance(fetch, asyncio.Future):
                fetch.cancel()
                tasks.append(fetch)
            else:
                fetch.close()  # never started
        if tasks:  # their outcomes (cancelled, or an error no page needs) are not ours
            await asyncio.gather(*tasks, return_exceptions=True)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def merged(walks: list[AsyncIterator[Page]]) -> AsyncIterator[Page]:
    """The pages of several walks side by side, as each comes (one walk: simply its pages).

    A walk's failure cancels the others and is raised; so is a consumer that stops early.
    """
    if len(walks) == 1:
        async for page in walks[0]:
            yield page
        return
    queue: asyncio.Queue[Page | BaseException | None] = asyncio.Queue(maxsize=len(walks))

    async def pump(walk: AsyncIterator[Page]) -> None:
        try:
            async for page in walk:
                await queue.put(page)
        except Exception as exc:  # handed to the consumer, which raises it
            await queue.put(exc)
            return
        finally:
            aclose = getattr(walk, "aclose", None)
            if aclose is not None:
                await aclose()
        await queue.put(None)

    tasks = [asyncio.ensure_future(pump(w)) for w in walks]
    running = len(tasks)
    try:
        while running:
            item = await queue.get()
            if item is None:
                running -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
