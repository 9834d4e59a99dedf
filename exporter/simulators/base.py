"""Common machinery of the simulated providers: auth, faults, request log, JSON replies."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, ClassVar

from aiohttp import web
from multidict import CIMultiDict, MultiDict, MultiMapping

__all__ = [
    "OMIT",
    "Fault",
    "QueryError",
    "RequestLog",
    "Simulator",
    "iso",
    "parse_int",
    "phrase",
    "serve",
    "timestamp",
]

_TIMESPECS = {0: "seconds", 3: "milliseconds", 6: "microseconds"}
_INT = re.compile(r"[+-]?[0-9]+")
_STOPPING = web.AppKey("stopping", asyncio.Event)
TRICKLE_CHUNK = 16
"""Bytes per piece of a trickled body (`Fault.trickle`)."""
UNRECORDED_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
"""Request headers `RequestLog.headers` never keeps: the credentials' values stay out of logs."""


class _Omit:
    """The type of `OMIT`."""

    def __repr__(self) -> str:
        return "OMIT"


OMIT: Any = _Omit()
"""A row factory argument that leaves its key out of the row (the SDKs type it not-required)."""


def iso(ts: float, *, fraction: int = 3, zulu: bool = True) -> str:
    """Format unix seconds as ISO-8601 UTC with 0, 3 or 6 fraction digits and `Z` or `+00:00`."""
    if fraction not in _TIMESPECS:
        raise ValueError(f"fraction must be 0, 3 or 6, not {fraction}")
    text = datetime.fromtimestamp(ts, UTC).isoformat(timespec=_TIMESPECS[fraction])
    return text.removesuffix("+00:00") + "Z" if zulu else text


def timestamp(value: str | float, *, fraction: int = 3) -> str:
    """Return `value` unchanged if it is already a string, else format it with `iso`."""
    return value if isinstance(value, str) else iso(value, fraction=fraction)


def parse_int(raw: str) -> int | None:
    """The integer a query value spells in ASCII decimal (optionally signed), else None."""
    return int(raw) if _INT.fullmatch(raw) else None


@dataclass
class Fault:
    """A misbehaviour injected into requests to the served path, before the auth check.

    `status` and/or `body` replace the answer (a body alone is sent with 200, a status alone
    with the provider's JSON error); `delay` is slept first; `headers` are added to whatever
    is sent. `times` counts down per request and clears the fault at 0 (None: until cleared).

    How the answer travels can misbehave too: `trickle` sends its body in `TRICKLE_CHUNK`
    byte pieces with that many seconds between them; `truncate` declares the full
    Content-Length but sends only the first half of the body, then closes the connection
    (combined with `trickle`, the half trickles); `drop` closes the connection after `delay`
    without any answer at all.
    """

    status: int | None = None
    body: bytes | None = None
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    times: int | None = None
    trickle: float = 0.0
    truncate: bool = False
    drop: bool = False


@dataclass(frozen=True)
class RequestLog:
    """One received request: its path, a copy of its query, and whether its key was right.

    `headers` copies the request's headers except the credentials (`UNRECORDED_HEADERS` and
    the simulator's own `key_header`):
    what a client sends beside the key (`X-Chaser-Account`, `Accept`, an API version) can be
    asserted, the key itself is only ever judged by `authorized`.
    """

    path: str
    query: MultiDict[str]
    authorized: bool
    headers: CIMultiDict[str] = field(default_factory=CIMultiDict)


class QueryError(Exception):
    """Raised by `Simulator.payload` to answer with a 4xx status and a provider-shaped body."""

    def __init__(self, body: Any, *, status: int) -> None:
        super().__init__(status, body)
        self.body = body
        self.status = status


class Simulator:
    """An in-process fake of one provider's "list sessions" endpoint.

    Every request is appended to `requests`. `on_request(sim, index)` runs before each page
    is computed, `index` being the request's 0-based ordinal among authorized requests to
    `path`. Subclasses set `provider` and `path` and implement `payload` (and `error_body`
    when the provider's error shape differs from `{"error": message}`, `key_header` and
    `key_prefix` when the key is not sent as `Authorization: Bearer <key>`).
    """

    provider: ClassVar[str]
    path: ClassVar[str]
    key_header: ClassVar[str] = "Authorization"
    """The request header that carries the key (never recorded in `requests`)."""
    key_prefix: ClassVar[str] = "Bearer "
    """What precedes the key in `key_header`'s value."""

    def __init__(
        self, *, sessions: Iterable[dict[str, Any]] = (), api_key: str = "test-key"
    ) -> None:
        self.sessions: list[dict[str, Any]] = list(sessions)
        self.api_key = api_key
        self.fault: Fault | None = None
        self.requests: list[RequestLog] = []
        self.on_request: Callable[[Simulator, int], None] | None = None
        self._authorized_count = 0

    def payload(self, query: MultiMapping[str]) -> Any:
        """The JSON document answering an authorized request; raise `QueryError` for 4xx."""
        raise NotImplementedError

    def error_body(self, status: int, message: str) -> Any:
        """The JSON body of an error response with this status."""
        return {"error": message}

    def answer_headers(self, status: int) -> dict[str, str]:
        """Headers the provider adds to every answer of the served path with this status.

        A fault's own headers win over these; the default adds none.
        """
        return {}

    def refusal(self, headers: Mapping[str, str]) -> str | None:
        """Why an authorized request is forbidden (answered 403), or None to serve it."""
        return None

    def aliases(self) -> tuple[str, ...]:
        """Other paths served exactly like `path` (faults and the request count included)."""
        return ()

    def redirects(self) -> dict[str, str]:
        """Other paths that answer 307 to a served one (`{from: to}`), the query kept."""
        return {}

    def app(self) -> web.Application:
        """A fresh application serving GET `path` and answering 404 elsewhere."""
        app = web.Application()
        app[_STOPPING] = asyncio.Event()
        app.on_shutdown.append(_set_stopping)
        for path in (self.path, *self.aliases()):
            app.router.add_get(path, self._handle)
        for source, target in self.redirects().items():
            app.router.add_get(source, self._redirect_to(target))
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        authorized = self._log(request)
        index = self._authorized_count  # ordinal among authorized requests to `path`
        if authorized:
            self._authorized_count += 1
        fault = self._take_fault()
        headers = CIMultiDict(fault.headers) if fault else CIMultiDict[str]()
        if fault is not None and fault.delay > 0:
            await _pause(request, fault.delay)
        if fault is not None and fault.drop:
            return _hang_up(request)
        if fault is not None and (fault.status is not None or fault.body is not None):
            response = self._fault_response(fault, headers)
        elif not authorized:
            if self.key_prefix == "Bearer ":
                headers.setdefault("WWW-Authenticate", "Bearer")
            response = self._json(self.error_body(401, "Unauthorized"), 401, headers)
        elif (refusal := self.refusal(request.headers)) is not None:
            response = self._json(self.error_body(403, refusal), 403, headers)
        else:
            if self.on_request is not None:
                self.on_request(self, index)
            try:
                response = self._json(self.payload(request.query), HTTPStatus.OK, headers)
            except QueryError as error:
                response = self._json(error.body, error.status, headers)
        for name, value in self.answer_headers(response.status).items():
            response.headers.setdefault(name, value)  # a fault's own header wins
        if fault is not None and (fault.trickle > 0 or fault.truncate):
            return await _stream(request, response, fault)
        return response

    def _fault_response(self, fault: Fault, headers: CIMultiDict[str]) -> web.Response:
        status = fault.status or HTTPStatus.OK
        if fault.body is not None:
            return _response(fault.body, status=status, headers=headers)
        return self._json(self.error_body(status, phrase(status)), status, headers)

    def _redirect_to(self, target: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        """A handler answering 307 to `target` on this server, the query string kept.

        This is what a FastAPI app (Starlette's `redirect_slashes`) does for the other spelling
        of a route: before any authentication or fault, with the absolute URL in `Location`.
        """

        async def handle(request: web.Request) -> web.Response:
            self._log(request)
            query = request.rel_url.raw_query_string
            location = str(request.url.with_path(target).with_query(None))
            location += f"?{query}" if query else ""
            return web.Response(
                status=HTTPStatus.TEMPORARY_REDIRECT, headers={"Location": location}
            )

        return handle

    async def _not_found(self, request: web.Request) -> web.Response:
        self._log(request)
        return self._json(self.error_body(404, "Not Found"), 404, {})

    def _log(self, request: web.Request) -> bool:
        key_header = self.key_header.lower()
        authorized = request.headers.get(key_header) == f"{self.key_prefix}{self.api_key}"
        headers = CIMultiDict(
            (name, value)
            for name, value in request.headers.items()
            if name.lower() not in UNRECORDED_HEADERS and name.lower() != key_header
        )
        self.requests.append(
            RequestLog(request.path, MultiDict(request.query), authorized, headers)
        )
        return authorized

    def _take_fault(self) -> Fault | None:
        fault = self.fault
        if fault is None or fault.times is None:
            return fault
        fault.times -= 1  # counts down the remaining uses
        if fault.times <= 0:
            self.fault = None
        return fault if fault.times >= 0 else None

    @staticmethod
    def _json(document: Any, status: int, headers: Mapping[str, str]) -> web.Response:
        return _response(json.dumps(document).encode(), status=status, headers=headers)


def _response(body: bytes, *, status: int, headers: Mapping[str, str]) -> web.Response:
    all_headers = CIMultiDict(headers)
    all_headers.setdefault("Content-Type", "application/json")
    return web.Response(body=body, status=status, headers=all_headers)


async def _pause(request: web.Request, seconds: float) -> bool:
    """Sleep `seconds`, cut short by app shutdown; True when the app is stopping."""
    stopping = request.app[_STOPPING]
    with suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)
    return stopping.is_set()


def _hang_up(request: web.Request) -> web.StreamResponse:
    """Close the connection without a byte of answer.

    The returned response is never sent: writing to the closing transport raises a
    `ConnectionError`, which aiohttp takes as the peer having gone away.
    """
    if request.transport is not None:
        request.transport.close()
    return web.StreamResponse(status=HTTPStatus.OK)


async def _stream(request: web.Request, response: web.Response, fault: Fault) -> web.StreamResponse:
    """Send `response` with its full Content-Length, trickled and/or cut short per `fault`."""
    body = response.body
    assert isinstance(body, bytes)
    headers = CIMultiDict(response.headers)
    headers.popall("Content-Length", None)
    stream = web.StreamResponse(status=response.status, headers=headers)
    stream.content_length = len(body)
    sent = body[: len(body) // 2] if fault.truncate else body
    step = TRICKLE_CHUNK if fault.trickle > 0 else max(1, len(sent))
    written = 0
    try:
        await stream.prepare(request)
        for start in range(0, len(sent), step):
            if start and await _pause(request, fault.trickle):
                break  # the app is stopping: give up on the rest
            await stream.write(sent[start : start + step])
            written = start + step
    except ConnectionError:  # the client gave up first
        return stream
    if written < len(body):  # truncated on purpose or cut short: the declared length lies
        _hang_up(request)
    return stream


def phrase(status: int) -> str:
    """The reason phrase of an HTTP status (`Error` for one without)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


async def _set_stopping(app: web.Application) -> None:
    app[_STOPPING].set()


@asynccontextmanager
async def serve(sim: Simulator, *, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve `sim` on a real socket and yield its base URL, e.g. ``http://127.0.0.1:43123``."""
    runner = web.AppRunner(sim.app())
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound_port = runner.addresses[0][1]
        shown_host = f"[{host}]" if ":" in host else host
        yield f"http://{shown_host}:{bound_port}"
    finally:
        await runner.cleanup()
