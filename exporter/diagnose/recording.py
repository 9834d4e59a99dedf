"""A :class:`PageFetcher` that keeps what a diagnostic shows: each page's answers and body."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from exporter.upstream.errors import PollError
from exporter.upstream.fetch import Answer, Exchange, PageFetcher, Params


@dataclass(slots=True)
class Call:
    """One page the provider asked for: its query, every HTTP answer to it, and the outcome.

    ``exchanges`` holds the redirects and retried failures before the last answer;
    ``body`` is the 2xx body handed to the provider, ``error`` why there was none.
    """

    params: list[tuple[str, str]]
    exchanges: list[Exchange] = field(default_factory=list)
    body: bytes | None = None
    error: str | None = None


_CURRENT: ContextVar[Call | None] = ContextVar("diagnose_call", default=None)
"""The page being fetched by the running task (pages fetched side by side each have theirs)."""


class RecordingFetcher(PageFetcher):
    """Fetches as a poll does, and appends a :class:`Call` per page to ``calls``.

    An answer is placed with its page through a context variable set around the fetch,
    so pages fetched concurrently (Chaser, Notte) keep their own answers.
    """

    def __init__(
        self,
        *,
        calls: list[Call],
        on_response: Callable[[Exchange], None] | None = None,
        **settings: Any,
    ) -> None:
        self.calls = calls
        self._chained = on_response
        super().__init__(on_response=self._place, **settings)

    def _place(self, exchange: Exchange) -> None:
        call = _CURRENT.get()
        if call is not None:
            call.exchanges.append(exchange)
        if self._chained is not None:
            self._chained(exchange)

    async def get(self, params: Params | None = None) -> Answer:
        call = Call(list(params.items() if isinstance(params, Mapping) else params or ()))
        self.calls.append(call)
        token = _CURRENT.set(call)
        try:
            answer = await super().get(params)
        except PollError as exc:
            call.error = exc.message
            raise
        except asyncio.CancelledError:
            call.error = "not needed any more: the walk stopped before this page"
            raise
        finally:
            _CURRENT.reset(token)
        call.body = answer.body
        return answer
