"""Running the HTTP server until SIGTERM or SIGINT, then shutting down within a few seconds."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Mapping
from pathlib import Path

import structlog
from aiohttp import web

from exporter import __version__
from exporter.config import Settings
from exporter.web import create_app, reload_config
from exporter.webconfig import WebConfig

SHUTDOWN_GRACE = 3.0

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
) -> None:
    """Serve the exporter app until a stop signal; poll tasks stop with the app.

    ``web_config`` (``--web.config.file``) adds TLS, basic auth and response headers. With
    ``config_path``, SIGHUP reloads the config (and ``enable_lifecycle`` adds
    ``POST /-/reload``). ``command_line`` (``--shard``/``--total-shards``) is re-applied to
    every reloaded config.
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
    middlewares = web_config.middlewares() if web_config else ()
    app = create_app(
        settings,
        middlewares=middlewares,
        config_path=config_path,
        enable_lifecycle=enable_lifecycle,
        command_line=command_line,
    )
    reloads: set[asyncio.Task[bool]] = set()

    def on_sighup() -> None:
        task = asyncio.create_task(reload_config(app), name="config:reload")
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    if config_path is not None:
        loop.add_signal_handler(signal.SIGHUP, on_sighup)
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        shutdown_timeout=SHUTDOWN_GRACE,
    )
    await runner.setup()
    try:
        if web_config:
            web_config.log_warnings()
        ssl_context = web_config.ssl_context if web_config else None
        await web.SockSite(runner, sock, ssl_context=ssl_context).start()
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
    log.info("server.stopped")


def base_url(host: str, port: int, *, tls: bool = False) -> str:
    """The URL a person on this machine would open for ``host:port``."""
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - only for display
        host = "localhost"
    elif ":" in host:
        host = f"[{host}]"
    return f"{'https' if tls else 'http'}://{host}:{port}"
