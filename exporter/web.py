"""The HTTP side: an aiohttp app factory serving /metrics, /probe, /healthz, /readyz and a landing
page."""

from __future__ import annotations

import html
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Middleware

from exporter import __version__
from exporter.config import Settings, shard_of
from exporter.exposition import ExpositionCache
from exporter.process import process_registry
from exporter.runtime import new_client_session, new_store
from exporter.state import Store, TargetSnapshot
from exporter.supervisor import Supervisor

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
CLIENT = web.AppKey("client", aiohttp.ClientSession)
SUPERVISOR = web.AppKey("supervisor", Supervisor)
CONFIG_PATH = web.AppKey("config_path", Path)
EXPOSITION = web.AppKey("exposition", ExpositionCache)
PROBES: web.AppKey[dict[str, ExpositionCache]] = web.AppKey("probes")
COMMAND_LINE: web.AppKey[dict[str, int]] = web.AppKey("command_line")


def create_app(
    settings: Settings,
    *,
    poll: bool = True,
    middlewares: Iterable[Middleware] = (),
    config_path: Path | None = None,
    enable_lifecycle: bool = False,
    command_line: Mapping[str, int] | None = None,
) -> web.Application:
    """The exporter app; with ``poll`` its startup starts one poll task per target of its shard.

    ``command_line`` holds ``--shard``/``--total-shards`` as given to ``serve``, re-applied to
    a reloaded config.

    ``middlewares`` wrap every route (the web config's TLS client checks, auth and headers).
    With ``config_path`` the config can be reloaded (SIGHUP, see :mod:`exporter.server`), and
    with ``enable_lifecycle`` also by ``POST /-/reload``.
    """
    app = web.Application(middlewares=middlewares)
    store = new_store(settings)
    app[SETTINGS] = settings
    app[STORE] = store
    app[EXPOSITION] = ExpositionCache(store, runtime=process_registry())
    app[PROBES] = {}
    app[COMMAND_LINE] = dict(command_line or {})
    app.cleanup_ctx.append(_client)
    if poll:
        app.cleanup_ctx.append(_pollers)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/probe", probe)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/", landing)
    if config_path is not None:
        app[CONFIG_PATH] = config_path
        if enable_lifecycle:
            app.router.add_post("/-/reload", reload)
    return app


async def _client(app: web.Application) -> AsyncIterator[None]:
    async with new_client_session() as session:
        app[CLIENT] = session
        yield


async def _pollers(app: web.Application) -> AsyncIterator[None]:
    supervisor = Supervisor(
        settings=app[SETTINGS],
        session=app[CLIENT],
        store=app[STORE],
        command_line=app[COMMAND_LINE],
    )
    app[SUPERVISOR] = supervisor
    supervisor.start()
    yield
    await supervisor.stop()


async def reload_config(app: web.Application) -> bool:
    """Reload the config file the app was started with; False when it was invalid."""
    return await app[SUPERVISOR].reload(app[CONFIG_PATH])


async def reload(request: web.Request) -> web.Response:
    """``POST /-/reload``: reload the config (500 when the new one is invalid, as Prometheus)."""
    if await reload_config(request.app):
        return web.Response(text="config reloaded\n")
    return web.Response(status=500, text="config invalid: the previous config stays (see logs)\n")


async def metrics(request: web.Request) -> web.Response:
    """The exposition: text, or OpenMetrics when asked for; gzip when accepted.

    Served from bytes assembled once per change of the snapshots or of which targets are
    fresh, re-rendering only the targets that changed, with the process series (rendered at
    most once a second) at the end (see :mod:`exporter.exposition`): a scrape costs the same
    at any size.
    """
    headers = request.headers
    body, response_headers = request.app[EXPOSITION].response(
        headers.get("Accept", ""), headers.get("Accept-Encoding", "")
    )
    return web.Response(body=body, headers=response_headers)


async def probe(request: web.Request) -> web.Response:
    """``/probe?target=NAME``: the exposition of one target, for the multi-target pattern.

    Served from that target's snapshot like ``/metrics`` (never an upstream call), with the
    same negotiation and gzip, from bytes cached per target until its snapshot changes or its
    data goes stale. 400 without ``target``; 404 for a target this replica does not serve.
    """
    names = request.query.getall("target", [])
    if len(names) > 1:
        return web.Response(status=400, text="give one target: /probe?target=NAME\n")
    name = names[0] if names else ""
    if not name:
        return web.Response(status=400, text="missing the target parameter: /probe?target=NAME\n")
    app = request.app
    probes = app[PROBES]
    if name not in app[STORE].snapshots:
        probes.pop(name, None)  # a target removed by a reload
        return web.Response(status=404, text=_unknown_target(app, name))
    cache = probes.get(name)
    if cache is None:
        cache = probes[name] = ExpositionCache(app[STORE], target=name)
    headers = request.headers
    body, response_headers = cache.response(
        headers.get("Accept", ""), headers.get("Accept-Encoding", "")
    )
    return web.Response(body=body, headers=response_headers)


def _unknown_target(app: web.Application, name: str) -> str:
    supervisor = app.get(SUPERVISOR)
    settings = supervisor.settings if supervisor is not None else app[SETTINGS]
    if any(t.name == name for t in settings.targets):
        shard = shard_of(name, settings.total_shards)
        return (
            f"target {name!r} belongs to shard {shard} of {settings.total_shards}; "
            f"this replica serves shard {settings.shard}\n"
        )
    return f"unknown target {name!r}\n"


async def healthz(_request: web.Request) -> web.Response:
    """Liveness: the process is serving."""
    return web.Response(text="ok\n")


async def readyz(request: web.Request) -> web.Response:
    """Readiness: every target has completed its first poll, whatever its outcome."""
    waiting = request.app[STORE].waiting()
    if waiting:
        return web.Response(
            status=503, text="waiting for first poll of: " + ", ".join(waiting) + "\n"
        )
    return web.Response(text="ready\n")


async def landing(request: web.Request) -> web.Response:
    """A small page: version, targets and their last poll result."""
    now = time.time()
    rows = "".join(_row(s, now) for s in request.app[STORE].snapshots.values())
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>session-exporter</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.2em .8em;text-align:left}}
.up{{color:#2a7}}.down{{color:#c33}}</style></head>
<body><h1>session-exporter {html.escape(__version__)}</h1>
<p><a href="/metrics">/metrics</a> · <a href="/healthz">/healthz</a>
 · <a href="/readyz">/readyz</a> · <code>/probe?target=NAME</code></p>{_shard_line(request.app)}
<table><tr><th>target</th><th>provider</th><th>last poll</th><th>result</th>
<th>sessions</th><th>last success</th></tr>{rows}</table></body></html>
"""
    return web.Response(text=page, content_type="text/html")


def _shard_line(app: web.Application) -> str:
    config = app[STORE].config
    if config.total_shards == 1:
        return ""
    return f"<p>shard {config.shard} of {config.total_shards}</p>\n"


def _row(snap: TargetSnapshot, now: float) -> str:
    if not snap.polled:
        result = "not polled yet"
        css = ""
    elif snap.up:
        result, css = "ok", "up"
    else:
        reason = snap.error_reason.value if snap.error_reason else "error"
        result, css = f"failed ({reason}): {snap.error or ''}", "down"
    data = snap.fresh_aggregate(now)
    sessions = str(data.sessions) if data else "-"
    cells = [
        snap.name,
        snap.provider,
        _when(snap.last_poll),
        result,
        sessions,
        _when(snap.last_success),
    ]
    tds = "".join(
        f'<td class="{css}">{html.escape(c)}</td>' if i == 3 else f"<td>{html.escape(c)}</td>"
        for i, c in enumerate(cells)
    )
    return f"<tr>{tds}</tr>"


def _when(ts: float | None) -> str:
    if ts is None:
        return "never"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
