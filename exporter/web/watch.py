"""Reloading on change: the config and the web config, checked by content at an interval.

A file is compared by the SHA-256 of what reading its path gives now, never by its mtime: a
Kubernetes ConfigMap mount swaps a ``..data`` symlink to a new directory, which leaves the
mtime of ``config.yaml`` (itself a symlink) unchanged, and an editor or ``cp`` may keep an
mtime or write twice in the same second.

- :func:`config_files` lists what the config depends on; :class:`ConfigWatcher` reloads the
  config, exactly as SIGHUP does, when one of them changes.
- :class:`LiveWebConfig` serves a web config that is re-read when it, its certificate, its
  key or its client CA changes: new connections get the renewed certificate, connections
  already open go on, nothing restarts (as the exporter-toolkit re-reads its files).
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from exporter.config.settings import CONFIG_MAX_BYTES, ConfigError, Settings
from exporter.core.files import RefusedFileError, read_regular_file
from exporter.web.webconfig import TLSServerConfig, WebConfig, load_web_config

WEB_CONFIG_CHECK_INTERVAL = 10.0
"""Seconds between checks of the web config and its files when config auto-reload is off."""

log = structlog.get_logger("exporter")

Digests = dict[Path, str | None]
"""Each watched path's content hash (hex SHA-256), None when it cannot be read."""


def config_files(settings: Settings, path: Path) -> list[Path]:
    """The files whose change reloads the config: the config itself and the files it names.

    Key files (``api_key_file``) are not among them: each poll reads its key file again. A
    setting that names a file to be read at load (a CA, a client certificate) adds it here.
    The web config and its files are watched apart (:func:`web_config_files`): a change there
    re-reads the web config, not the config.
    """
    named = (
        name
        for target in settings.targets
        if target.tls is not None
        for name in (target.tls.ca_file, target.tls.cert_file, target.tls.key_file)
        if name is not None
    )
    return [path, *named]  # as the TLS settings read them (relative: to the working directory)


def web_config_files(config: WebConfig) -> list[Path]:
    """The web config and the certificate, key and client CA files it names."""
    tls = config.file.tls_server_config
    named = (tls.cert_file, tls.key_file, tls.client_ca_file)
    return [config.path, *(_resolve(config.path.parent, name) for name in named if name)]


def _resolve(directory: Path, name: str) -> Path:
    path = Path(name)
    return path if path.is_absolute() else directory / path


def digest(paths: Iterable[Path]) -> Digests:
    """The content hash of each path, following symlinks (None: missing or unreadable)."""
    out: Digests = {}
    for path in paths:
        try:
            data = read_regular_file(path, max_bytes=CONFIG_MAX_BYTES)
            out[path] = hashlib.sha256(data).hexdigest()
        except (OSError, RefusedFileError):  # a FIFO, a device or a huge file: never read
            out[path] = None
    return out


def changed(before: Digests, now: Digests) -> list[Path]:
    """The paths watched before whose content differs now (a path new to the list is only
    recorded: it was read by the load that named it)."""
    return [path for path, value in now.items() if path in before and before[path] != value]


OFF_RECHECK = 1.0
"""Seconds between looks at the interval while auto-reload is off (a reload may turn it on)."""


class ConfigWatcher:
    """Reloads the config when a file of :func:`config_files` changes.

    ``interval()`` is read before each wait (a reload may change the config's own
    ``config_auto_reload_interval``); at 0 no file is read. ``reload`` is the SIGHUP reload:
    it validates first and counts a failure. Every reload, SIGHUP's and ``POST /-/reload``'s
    included, goes through :meth:`reload`, which records the files as they were just before
    it: a change already applied is not applied again, and a broken file is reloaded once,
    not at every check, until it changes again.
    """

    def __init__(
        self,
        *,
        path: Path,
        settings: Callable[[], Settings],
        interval: Callable[[], float],
        reload: Callable[[], Awaitable[bool]],
    ) -> None:
        self._path = path
        self._settings = settings
        self._interval = interval
        self._reload = reload
        self._seen: Digests = {}

    async def _digest(self) -> Digests:
        return await asyncio.to_thread(digest, config_files(self._settings(), self._path))

    async def run(self) -> None:
        """Check at the interval until cancelled."""
        self._seen = await self._digest()
        while True:
            interval = self._interval()
            await asyncio.sleep(interval if interval > 0 else OFF_RECHECK)
            if interval > 0:
                await self.check()

    async def check(self) -> bool | None:
        """Reload when a watched file changed: whether the reload worked, None when nothing
        changed."""
        now = await self._digest()
        paths = changed(self._seen, now)
        self._seen = now
        if not paths:
            return None
        log.info("config.changed", files=[str(p) for p in paths])
        return await self.reload()

    async def reload(self) -> bool:
        """Reload the config; the files as read just before are the next check's baseline
        (a write racing the reload is then reloaded again at the next check, never missed)."""
        before = await self._digest()
        ok = await self._reload()
        now = await self._digest()  # the files the config names now, some perhaps new
        self._seen = {path: before.get(path, value) for path, value in now.items()}
        return ok


_LIVE_TLS_SETTINGS = frozenset(
    {"cert", "key", "cert_file", "key_file", "client_ca", "client_ca_file", "client_allowed_sans"}
)
"""What a running server can change for new connections (the certificate, key and client CA
through the handshake's context, the allowed SANs in a middleware); the rest of
``tls_server_config`` is fixed per process."""


class LiveWebConfig:
    """A web config that can be replaced while the server runs.

    Its TLS context is the first config's, with an SNI callback (called for every handshake,
    with or without a server name) that hands the handshake the current config's context:
    its certificate, key and client CA. Its middleware runs the current config's middlewares
    (basic auth users, headers, rate limit, allowed SANs). A new config that cannot be loaded,
    or that changes what a handshake cannot change (TLS on or off, versions, ciphers, curves,
    the client certificate policy), is refused and the current one stays.
    """

    def __init__(self, config: WebConfig) -> None:
        self.config = config
        self._chain = _compose(config.middlewares())
        self.ssl_context = config.ssl_context
        if self.ssl_context is not None:
            self.ssl_context.sni_callback = self._select
        self._seen: Digests = {}

    def _select(self, connection: ssl.SSLObject, _name: str | None, _ctx: ssl.SSLContext) -> None:
        current = self.config.ssl_context
        if current is not None and current is not connection.context:
            connection.context = current

    def middlewares(self) -> tuple[Middleware, ...]:
        """One middleware: the current config's, in their order."""

        @web.middleware
        async def current(request: web.Request, handler: Handler) -> web.StreamResponse:
            return await self._chain(request, handler)

        return (current,)

    def replace(self, new: WebConfig) -> bool:
        """Serve ``new`` from now on, unless it changes what only a restart can change."""
        fixed = _fixed_changes(self.config, new)
        if fixed:
            log.error(
                "web_config.reload_failed",
                path=str(new.path),
                problems=[f"{name} changed: restart to apply it" for name in fixed],
                note="the previous web config stays in force",
            )
            return False
        self.config = new
        self._chain = _compose(new.middlewares())
        new.log_warnings()
        log.info("web_config.reloaded", path=str(new.path), summary=new.summary())
        return True

    async def run(self, interval: Callable[[], float]) -> None:
        """Check the web config's files at ``interval()`` until cancelled."""
        self._seen = await asyncio.to_thread(digest, web_config_files(self.config))
        while True:
            await asyncio.sleep(interval())
            await self.check()

    async def check(self) -> bool | None:
        """Re-read the web config when one of its files changed: whether the new one is
        served, None when nothing changed."""
        now = await asyncio.to_thread(digest, web_config_files(self.config))
        paths = changed(self._seen, now)
        self._seen = now
        if not paths:
            return None
        try:
            new = await asyncio.to_thread(load_web_config, self.config.path)
        except ConfigError as exc:
            problems = [str(p) for p in exc.problems]
        else:
            problems = []
        if problems:
            log.error(
                "web_config.reload_failed",
                path=str(self.config.path),
                problems=problems,
                note="the previous web config stays in force",
            )
            return False
        ok = self.replace(new)
        # as ConfigWatcher.check: a write racing the load is seen at the next check
        self._seen = await asyncio.to_thread(digest, web_config_files(self.config))
        self._seen.update({p: v for p, v in now.items() if p in self._seen})
        return ok


def _fixed_changes(old: WebConfig, new: WebConfig) -> list[str]:
    """The settings of ``new`` that differ from ``old`` and that a running server cannot
    apply: TLS on or off, and every TLS setting but the certificate, key and client CA."""
    if (old.ssl_context is None) != (new.ssl_context is None):
        return ["tls_server_config (TLS on or off)"]
    if old.ssl_context is None:
        return []
    before = old.file.tls_server_config.model_dump()
    after = new.file.tls_server_config.model_dump()
    return [
        f"tls_server_config.{name}"
        for name in TLSServerConfig.model_fields
        if name not in _LIVE_TLS_SETTINGS and before[name] != after[name]
    ]


def _compose(
    middlewares: Sequence[Middleware],
) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """``middlewares`` (outermost first) as one call of (request, handler)."""

    async def run(request: web.Request, handler: Handler) -> web.StreamResponse:
        call = handler
        for middleware in reversed(middlewares):
            call = _bind(middleware, call)
        return await call(request)

    return run


def _bind(middleware: Middleware, handler: Handler) -> Handler:
    async def call(request: web.Request) -> web.StreamResponse:
        return await middleware(request, handler)

    return call
