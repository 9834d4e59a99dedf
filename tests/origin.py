"""A programmable HTTP origin on a loopback port that logs every request it receives.

For the HTTP-layer tests (redirects, error bodies, retries, traces): each origin is its
own scheme, host and port, so two of them are two origins.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from multidict import CIMultiDict
from pydantic import SecretStr

from exporter.upstream.fetch import PageFetcher, RetryPolicy
from tests.harness import KEY

Handler = Callable[[web.Request], web.StreamResponse]
"""Answers one request (the origin has already logged it)."""


@dataclass(frozen=True)
class Seen:
    """One request as the origin received it."""

    method: str
    path: str
    query: str
    headers: CIMultiDict[str]

    @property
    def authorization(self) -> str | None:
        """The Authorization header, if any."""
        return self.headers.get("Authorization")


@dataclass
class Origin:
    """A running origin: its base URL and what it has received."""

    url: str
    seen: list[Seen] = field(default_factory=list)

    def paths(self) -> list[str]:
        """Path and query of every request, in order."""
        return [s.path + (f"?{s.query}" if s.query else "") for s in self.seen]


@asynccontextmanager
async def origin_server(handler: Handler) -> AsyncIterator[Origin]:
    """Serve ``handler`` for every method and path on a free loopback port."""
    served = Origin(url="")

    async def handle(request: web.Request) -> web.StreamResponse:
        served.seen.append(
            Seen(request.method, request.path, request.query_string, CIMultiDict(request.headers))
        )
        return handler(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        served.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        yield served
    finally:
        await runner.cleanup()


def json_response(
    document: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON answer, compact as orjson writes it."""
    return web.Response(
        body=orjson.dumps(document),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def redirect(status: int, location: str) -> web.Response:
    """A redirect answer to ``location`` (sent as it is)."""
    return web.Response(status=status, headers={"Location": location})


def new_fetcher(session: aiohttp.ClientSession, url: str, **options: Any) -> PageFetcher:
    """A PageFetcher for ``url`` with the test key, one attempt and no deadline by default."""
    settings: dict[str, Any] = {
        "timeout": 5.0,
        "max_pages": 100,
        "max_bytes": 1 << 20,
        "retry": RetryPolicy(attempts=1),
    }
    settings.update(options)
    return PageFetcher(session=session, url=url, key=SecretStr(KEY), **settings)
