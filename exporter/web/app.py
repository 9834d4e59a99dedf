"""The HTTP side: an aiohttp app factory serving /metrics, /probe, /healthz, /readyz and a landing
page."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Coroutine, Iterable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Middleware

from exporter import __version__
from exporter.config.settings import Settings, shard_of
from exporter.exposition.cache import ExpositionCache
from exporter.exposition.process import process_registry
from exporter.polling.runtime import new_store
from exporter.polling.state import Store
from exporter.polling.supervisor import Supervisor
from exporter.upstream.client import new_client_session
from exporter.web.landing import ConfigText, LastPage, Page, render
from exporter.web.watch import WEB_CONFIG_CHECK_INTERVAL, ConfigWatcher, LiveWebConfig


class Probes:
    """The ``/probe`` caches, one per target asked for; a target that a reload removed or
    renamed loses its cache with the first probe after that reload."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._config = store.config
        self.caches: dict[str, ExpositionCache] = {}

    def cache(self, name: str) -> ExpositionCache | None:
        """The cache of target ``name``; None when this replica does not serve it."""
        store = self._store
        if store.config is not self._config:  # reloaded (or failed to): drop the gone ones
            self._config = store.config
            self.caches = {n: c for n, c in self.caches.items() if n in store.snapshots}
        if name not in store.snapshots:
            return None
        cache = self.caches.get(name)
        if cache is None:
            cache = self.caches[name] = ExpositionCache(store, target=name)
        return cache


SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
CLIENT = web.AppKey("client", aiohttp.ClientSession)
SUPERVISOR = web.AppKey("supervisor", Supervisor)
CONFIG_PATH = web.AppKey("config_path", Path)
EXPOSITION = web.AppKey("exposition", ExpositionCache)
PROBES: web.AppKey[Probes] = web.AppKey("probes", Probes)
CONFIG_TEXT = web.AppKey("config_text", ConfigText)
PAGES = web.AppKey("pages", LastPage)
COMMAND_LINE: web.AppKey[dict[str, int]] = web.AppKey("command_line")
STARTED: web.AppKey[float] = web.AppKey("started")
AUTO_RELOAD: web.AppKey[float | None] = web.AppKey("auto_reload_interval")
WEB_CONFIG = web.AppKey("web_config", LiveWebConfig)
CONFIG_WATCHER = web.AppKey("config_watcher", ConfigWatcher)


def create_app(
    settings: Settings,
    *,
    poll: bool = True,
    middlewares: Iterable[Middleware] = (),
    config_path: Path | None = None,
    enable_lifecycle: bool = False,
    command_line: Mapping[str, int] | None = None,
    auto_reload_interval: float | None = None,
    web_config: LiveWebConfig | None = None,
    exporter_metrics: bool = True,
) -> web.Application:
    """The exporter app; with ``poll`` its startup starts one poll task per target of its shard.

    ``command_line`` holds ``--shard``/``--total-shards`` as given to ``serve``, re-applied to
    a reloaded config.

    ``middlewares`` wrap every route (the web config's TLS client checks, auth and headers).
    With ``config_path`` the config can be reloaded (SIGHUP, see :mod:`exporter.web.server`), and
    with ``enable_lifecycle`` also by ``POST /-/reload``; and it is reloaded when its files
    change, checked every ``auto_reload_interval`` (``--config.auto-reload-interval``; None
    leaves it to the config's ``config_auto_reload_interval``). ``web_config`` is re-read when
    its files change (see :mod:`exporter.web.watch`). Without ``exporter_metrics``
    (``--web.disable-exporter-metrics``) the process, Python and GC series are left out.
    """
    app = web.Application(middlewares=middlewares)
    store = new_store(settings)
    app[SETTINGS] = settings
    app[STORE] = store
    app[EXPOSITION] = ExpositionCache(store, runtime=process_registry(standard=exporter_metrics))
    app[PROBES] = Probes(store)
    app[CONFIG_TEXT] = ConfigText()
    app[PAGES] = LastPage()
    app[COMMAND_LINE] = dict(command_line or {})
    app[STARTED] = time.time()
    app.cleanup_ctx.append(_client)
    if poll:
        app.cleanup_ctx.append(_pollers)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/probe", probe)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/", landing)
    app[AUTO_RELOAD] = auto_reload_interval
    if config_path is not None:
        app[CONFIG_PATH] = config_path
        if enable_lifecycle:
            app.router.add_post("/-/reload", reload)
        if poll:
            app.cleanup_ctx.append(_config_watcher)
    if web_config is not None:
        app[WEB_CONFIG] = web_config
        app.cleanup_ctx.append(_web_config_watcher)
    return app


def auto_reload_interval(app: web.Application) -> float:
    """Seconds between checks of the config's files (0: off): the flag, else the config's."""
    flag = app[AUTO_RELOAD]
    if flag is not None:
        return flag
    supervisor = app.get(SUPERVISOR)
    settings = supervisor.settings if supervisor is not None else app[SETTINGS]
    return settings.config_auto_reload_interval


async def _config_watcher(app: web.Application) -> AsyncIterator[None]:
    watcher = ConfigWatcher(
        path=app[CONFIG_PATH],
        settings=lambda: app[SUPERVISOR].settings,
        interval=lambda: auto_reload_interval(app),
        reload=lambda: app[SUPERVISOR].reload(app[CONFIG_PATH]),
    )
    app[CONFIG_WATCHER] = watcher
    async with _running(watcher.run(), "config:watch"):
        yield


async def _web_config_watcher(app: web.Application) -> AsyncIterator[None]:
    checks = app[WEB_CONFIG].run(lambda: auto_reload_interval(app) or WEB_CONFIG_CHECK_INTERVAL)
    async with _running(checks, "web_config:watch"):
        yield


@contextlib.asynccontextmanager
async def _running(work: Coroutine[Any, Any, None], name: str) -> AsyncIterator[None]:
    """Run ``work`` as a task for the duration of the block, cancelled at its end."""
    task = asyncio.create_task(work, name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


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
    """Reload the config file the app was started with; False when it was invalid.

    Through the watcher, so that it does not reload the same change again."""
    return await app[CONFIG_WATCHER].reload()


async def reload(request: web.Request) -> web.Response:
    """``POST /-/reload``: reload the config (500 when the new one is invalid, as Prometheus)."""
    if await reload_config(request.app):
        return web.Response(text="config reloaded\n")
    return web.Response(status=500, text="config invalid: the previous config stays (see logs)\n")


async def metrics(request: web.Request) -> web.Response:
    """The exposition: text, or OpenMetrics when asked for; gzip when accepted.

    Served from bytes assembled once per change of the snapshots or of which targets are
    fresh, re-rendering only the targets that changed, with the process series (rendered at
    most once a second) at the end (see :mod:`exporter.exposition.cache`): a scrape costs the same
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
    cache = app[PROBES].cache(name)
    if cache is None:
        return web.Response(status=404, text=_unknown_target(app, name))
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
    """The landing page: each target's last poll, the process and the masked config.

    The config is dumped once per config, and the page rendered at most once a second while
    the snapshots and the config stay the same (its times are to the second): clients looping
    on ``/`` cost one render a second between them, not one each.
    """
    app = request.app
    supervisor = app.get(SUPERVISOR)
    store = app[STORE]
    settings = supervisor.settings if supervisor is not None else app[SETTINGS]
    now = time.time()
    pages = app[PAGES]
    html = pages.get(int(now), store.snapshots, settings, store.config)
    if html is None:
        page = Page(
            version=__version__,
            started=app[STARTED],
            now=now,
            settings=settings,
            config=app[CONFIG_TEXT](settings),
            shard=store.config.shard,
            total_shards=store.config.total_shards,
        )
        html = pages.put(render(page, store.snapshots.values()))
    return web.Response(text=html, content_type="text/html")
