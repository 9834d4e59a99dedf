"""Running the HTTP server until SIGTERM or SIGINT, then shutting down within a few seconds."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import resource
import signal
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from exporter import __version__
from exporter.config.settings import Settings
from exporter.core.names import MAX_CONNECTIONS, READ_HEADER_TIMEOUT
from exporter.polling.runtime import settle_heap
from exporter.web.app import create_app, reload_config
from exporter.web.watch import LiveWebConfig
from exporter.web.webconfig import WebConfig

SHUTDOWN_GRACE = 3.0
FD_RESERVE = 64
"""Descriptors kept free of client connections: for the polls, the config, the logs."""
ACCEPT_ERROR_INTERVAL = 60.0
"""An accept() that fails for want of descriptors is logged at most once per this many s."""

log = structlog.get_logger("exporter")


class ListenError(Exception):
    """The HTTP server cannot bind its address (in use, not permitted, unknown host)."""


async def run_server(
    settings: Settings,
    host: str,
    port: int,
    *,
    web_config: WebConfig | None = None,
    config_path: Path | None = None,
    enable_lifecycle: bool = False,
    command_line: Mapping[str, int] | None = None,
    read_header_timeout: float = READ_HEADER_TIMEOUT,
    max_connections: int = MAX_CONNECTIONS,
    auto_reload_interval: float | None = None,
    exporter_metrics: bool = True,
) -> None:
    """Serve the exporter app until a stop signal; poll tasks stop with the app.

    A connection must send its request headers within ``read_header_timeout`` and may stay
    idle between requests as long; at most ``max_connections`` are open at once (see
    :class:`ConnectionGuard`).

    ``web_config`` (``--web.config.file``) adds TLS, basic auth and response headers. With
    ``config_path``, SIGHUP reloads the config (and ``enable_lifecycle`` adds
    ``POST /-/reload``). ``command_line`` (``--shard``/``--total-shards``) is re-applied to
    every reloaded config. ``auto_reload_interval`` and ``exporter_metrics`` go to
    :func:`~exporter.web.app.create_app`; the web config is re-read when its files change.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:  # bind before the app starts polling, so a busy port fails before any poll
        sock = socket.create_server(
            (host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET
        )
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ListenError(f"cannot listen on {host}:{port}: {reason}") from None
    live = LiveWebConfig(web_config) if web_config else None
    app = create_app(
        settings,
        middlewares=live.middlewares() if live else (),
        config_path=config_path,
        enable_lifecycle=enable_lifecycle,
        command_line=command_line,
        auto_reload_interval=auto_reload_interval,
        web_config=live,
        exporter_metrics=exporter_metrics,
    )
    settle_heap()  # the startup heap out of the GC's scans (exporter/polling/runtime.py)
    reloads: set[asyncio.Task[bool]] = set()

    def on_sighup() -> None:
        task = asyncio.create_task(reload_config(app), name="config:reload")
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    if config_path is not None:
        loop.add_signal_handler(signal.SIGHUP, on_sighup)
    guard = ConnectionGuard(
        read_header_timeout=read_header_timeout,
        max_connections=fit_to_descriptors(max_connections),
    )
    runner = web.AppRunner(
        app,
        access_log=logging.getLogger("aiohttp.access"),  # nothing is logged: see the class
        access_log_class=guard.access_log_class(),
        handle_signals=False,
        shutdown_timeout=SHUTDOWN_GRACE,
        keepalive_timeout=read_header_timeout,
    )
    previous_handler = loop.get_exception_handler()
    loop.set_exception_handler(AcceptErrorLog(previous_handler))
    await runner.setup()
    try:
        if web_config:
            web_config.log_warnings()
        ssl_context = live.ssl_context if live else None
        await GuardedSite(runner, sock, guard, ssl_context=ssl_context).start()
        log.info(
            "server.started",
            listen=f"{host}:{port}",
            metrics=f"{base_url(host, port, tls=ssl_context is not None)}/metrics",
            targets=[t.name for t in settings.targets],
            version=__version__,
        )
        await stop.wait()
        log.info("server.stopping")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        for task in reloads:
            task.cancel()
        await runner.cleanup()
        loop.set_exception_handler(previous_handler)
    log.info("server.stopped")


def base_url(host: str, port: int, *, tls: bool = False) -> str:
    """The URL a person on this machine would open for ``host:port``."""
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - only for display
        host = "localhost"
    elif ":" in host:
        host = f"[{host}]"
    return f"{'https' if tls else 'http'}://{host}:{port}"


# --- connections --------------------------------------------------------------------------


def fit_to_descriptors(wanted: int) -> int:
    """``wanted``, lowered (with a warning) to what the descriptor limit leaves for clients."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    room = max(1, soft - FD_RESERVE) if soft != resource.RLIM_INFINITY else wanted
    if wanted > room:
        log.warning(
            "server.max_connections_lowered",
            wanted=wanted,
            used=room,
            note=f"the descriptor limit is {soft}; raise it (LimitNOFILE, ulimit -n)",
        )
        return room
    return wanted


class ConnectionGuard:
    """Bounds client connections: their number, how long their request heads take, how long
    they may stay idle, and how long a response may wait for the client to read it.

    A connection is *idle* while no request is in flight: from its opening, and again from
    the end of each response (told by aiohttp's access logger, see :meth:`access_log_class`).
    An idle connection must send a complete request head within ``read_header_timeout`` of
    becoming idle, or it is closed; dribbling bytes does not extend that. A request head
    pipelined behind a request still in flight gets ``read_header_timeout`` from its first
    byte. A response the client does not read (writing paused, the output buffer full) for
    ``write_timeout`` closes the connection.

    At ``max_connections`` a new connection always gets in: it replaces the connection idle
    the longest, else the one stalled on writing the longest, else the one whose request has
    been in flight the longest. Neither half-open nor idle keep-alive connections, however
    many, lock out ``/healthz`` or Prometheus.
    """

    def __init__(
        self,
        *,
        read_header_timeout: float,
        max_connections: int,
        write_timeout: float | None = None,
    ) -> None:
        self.read_header_timeout = read_header_timeout
        self.write_timeout = read_header_timeout if write_timeout is None else write_timeout
        self.max_connections = max_connections
        # eviction order: idle, then stalled on writing, then busy; each oldest first
        self._idle: dict[_GuardedProtocol, None] = {}
        self._stalled: dict[_GuardedProtocol, None] = {}
        self._busy: dict[_GuardedProtocol, None] = {}
        self._by_handler: dict[asyncio.Protocol, _GuardedProtocol] = {}
        self.timed_out = 0
        self.write_timed_out = 0
        self.evicted = 0

    @property
    def open(self) -> int:
        """Connections open now."""
        return len(self._idle) + len(self._stalled) + len(self._busy)

    def wrap(self, factory: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """A protocol factory whose connections this guard bounds."""
        return lambda: _GuardedProtocol(self, factory())

    def access_log_class(self) -> type[AbstractAccessLogger]:
        """An aiohttp access logger class that logs nothing: it tells this guard that a
        response has been written (aiohttp logs each request once its response is out)."""
        guard = self

        class ResponseWritten(AbstractAccessLogger):
            def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
                conn = guard._by_handler.get(request.protocol)
                if conn is not None:
                    conn.answered()

        return ResponseWritten

    def admit(self, conn: _GuardedProtocol, handler: asyncio.Protocol) -> None:
        """Make room for ``conn`` if need be, by closing the idlest connection."""
        if self.open >= self.max_connections:
            for group in (self._idle, self._stalled, self._busy):
                victim = next(iter(group), None)
                if victim is not None:
                    self.evicted += 1
                    victim.drop()
                    break
        self._idle[conn] = None
        self._by_handler[handler] = conn

    def move(self, conn: _GuardedProtocol, state: str) -> None:
        """``conn`` is now ``idle``, ``stalled`` or ``busy``: the last in that group."""
        for group in (self._idle, self._stalled, self._busy):
            group.pop(conn, None)
        {"idle": self._idle, "stalled": self._stalled, "busy": self._busy}[state][conn] = None

    def release(self, conn: _GuardedProtocol, handler: asyncio.Protocol) -> None:
        """``conn`` is closed."""
        for group in (self._idle, self._stalled, self._busy):
            group.pop(conn, None)
        self._by_handler.pop(handler, None)


_HEAD_END = b"\r\n\r\n"
_METHOD_BYTES = 8
_BODYLESS = frozenset({b"GET", b"HEAD"})
"""Requests that carry no body: whatever follows their head is the next request's head."""


class _GuardedProtocol(asyncio.Protocol):
    """aiohttp's protocol for one connection, behind the guard's deadlines and cap.

    It follows the request heads going by (without parsing them: only where each ends) and
    counts them against the responses written, to know when the connection is idle.
    """

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self._guard = guard
        self._inner = inner
        self._transport: asyncio.Transport | None = None
        self._head_timer: asyncio.TimerHandle | None = None
        self._write_timer: asyncio.TimerHandle | None = None
        self._tail = b""
        self._method = b""
        self._in_head = False  # part of a request head has arrived, not its end
        self._scanning = True  # False while a request body may be arriving
        self._heads = 0  # complete request heads received
        self._answers = 0  # responses written
        self._admitted = False
        self._closed = False  # dropped or lost: the guard no longer counts it

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._guard.admit(self, self._inner)
        self._admitted = True
        self._start_head_timer()
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if not self._admitted:
            return
        if self._scanning:
            self._scan(data)
        self._inner.data_received(data)

    def _scan(self, data: bytes) -> None:
        """Follow the request heads in ``data``: past the end of a request without a body
        (GET, HEAD), the next bytes are the next request's head, pipelined. A loop, however
        many requests ``data`` holds."""
        while data:
            if not self._in_head:
                self._in_head = True
                self._tail = self._method = b""
                if self._heads > self._answers:  # pipelined behind a request in flight
                    self._start_head_timer()
            if len(self._method) < _METHOD_BYTES:
                self._method = (self._method + data[:_METHOD_BYTES])[:_METHOD_BYTES]
            seen = self._tail + data
            end = seen.find(_HEAD_END)
            if end < 0:
                self._tail = seen[-(len(_HEAD_END) - 1) :]
                return
            self._in_head = False
            self._heads += 1
            self._cancel_head_timer()
            if self._write_timer is None:
                self._guard.move(self, "busy")
            if self._method.split(b" ", 1)[0] not in _BODYLESS:
                self._scanning = False  # a body may follow: heads resume after the response
                return
            data = seen[end + len(_HEAD_END) :]

    def answered(self) -> None:
        """A response has been written; with none left in flight the connection is idle and
        its next request head has ``read_header_timeout`` from now."""
        self._answers += 1
        if self._closed or self._answers < self._heads:
            return
        self._heads = self._answers  # requests behind a body were not followed: count them
        self._scanning = True
        if self._write_timer is None:
            self._guard.move(self, "idle")
        if self._head_timer is None:
            self._start_head_timer()

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._admitted else None

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._cancel_timers()
        self._guard.release(self, self._inner)
        if self._admitted:
            self._admitted = False
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        """The client is not reading what is written: it has ``write_timeout`` to."""
        if self._write_timer is None and not self._closed:
            loop = asyncio.get_running_loop()
            self._write_timer = loop.call_later(self._guard.write_timeout, self._write_expired)
            self._guard.move(self, "stalled")
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
            if not self._closed:
                self._guard.move(self, "busy" if self._heads > self._answers else "idle")
        self._inner.resume_writing()

    def drop(self) -> None:
        """Close the connection now (a deadline passed, or the cap needs the room)."""
        self._closed = True
        self._cancel_timers()
        self._guard.release(self, self._inner)
        if self._transport is not None:
            self._transport.abort()

    def _start_head_timer(self) -> None:
        self._cancel_head_timer()
        loop = asyncio.get_running_loop()
        self._head_timer = loop.call_later(self._guard.read_header_timeout, self._head_expired)

    def _head_expired(self) -> None:
        self._head_timer = None
        self._guard.timed_out += 1
        self.drop()

    def _write_expired(self) -> None:
        self._write_timer = None
        self._guard.write_timed_out += 1
        self.drop()

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _cancel_timers(self) -> None:
        self._cancel_head_timer()
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None


class GuardedSite(web.SockSite):
    """``SockSite`` whose connections go through a :class:`ConnectionGuard`; a TLS handshake
    is bounded by the same timeout as the headers."""

    def __init__(
        self,
        runner: web.BaseRunner,
        sock: socket.socket,
        guard: ConnectionGuard,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(runner, sock, ssl_context=ssl_context)
        self.guard = guard

    async def start(self) -> None:
        """Register with the runner and serve the socket through the guard."""
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self.guard.wrap(server),
            sock=self._sock,
            ssl=self._ssl_context,
            backlog=self._backlog,
            ssl_handshake_timeout=self.guard.read_header_timeout if self._ssl_context else None,
        )


_OUT_OF_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
ExceptionHandler = Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object]


class AcceptErrorLog:
    """An event loop exception handler: accept() failing for want of descriptors or memory is
    one ``server.accept_failed`` line per ``interval`` (with how many failures it stands
    for), not a traceback per attempt; anything else goes to the previous handler."""

    def __init__(
        self,
        previous: ExceptionHandler | None,
        *,
        interval: float = ACCEPT_ERROR_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._previous = previous
        self._interval = interval
        self._clock = clock
        self._last: float | None = None
        self._unlogged = 0

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in _OUT_OF_DESCRIPTORS:
            self._unlogged += 1
            now = self._clock()
            if self._last is None or now - self._last >= self._interval:
                log.error(
                    "server.accept_failed",
                    error=os.strerror(exc.errno or 0),
                    failures=self._unlogged,
                    note="out of descriptors: lower --web.max-connections or raise the "
                    "descriptor limit (LimitNOFILE)",
                )
                self._last = now
                self._unlogged = 0
            return
        if self._previous is not None:
            self._previous(loop, context)
        else:
            loop.default_exception_handler(context)
