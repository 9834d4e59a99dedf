"""The commands ``serve``, ``once``, ``check-config``, ``diagnose``, ``demo`` and ``healthcheck``.

Their arguments are parsed by :mod:`exporter.cli.arguments`; :mod:`exporter.cli.main` imports
this module only once a command is to run (``--version`` and ``--help`` never load the server
stack).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Coroutine, Sequence
from typing import Any

import structlog
from prometheus_client import generate_latest

from exporter.cli.demo import run_demo
from exporter.cli.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from exporter.cli.healthcheck import check_health
from exporter.config.settings import (
    ConfigError,
    Problem,
    Settings,
    config_path,
    load_settings,
    misspelt_variables,
    parse_listen,
    shard_from_pod_name,
    short_intervals,
)
from exporter.core.durations import format_duration
from exporter.core.logs import REDACTOR, LogFormat, configure_logging
from exporter.core.names import POD_NAME_ENV
from exporter.exposition.collector import new_registry
from exporter.polling.runtime import new_pollers, new_store, settle_heap
from exporter.providers.target import KeyUnavailableError
from exporter.upstream.client import new_client_session
from exporter.web.server import ListenError, run_server
from exporter.web.webconfig import WebConfig, load_web_config, web_config_path

log = structlog.get_logger("exporter")


def run(args: argparse.Namespace) -> int:
    """Run a parsed command line; usage and config errors are one line each and exit 2."""
    if args.command in ("demo", "healthcheck"):
        return _demo(args) if args.command == "demo" else check_health(args)
    try:
        path = config_path(args.config)
        command_line = _sharding(args) if hasattr(args, "shard") else {}
        settings = load_settings(path, command_line=command_line)
        web_config = _web_config(args)
        listen = parse_listen(args.listen or settings.listen) if args.command == "serve" else None
    except ConfigError as exc:
        _print(exc.problems)
        _print(misspelt_variables(os.environ), prefix="warning: ")
        return EXIT_USAGE
    except ValueError as exc:  # --listen, --shard-from-pod-name
        print(f"session-exporter: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "check-config":
        _print(misspelt_variables(os.environ, settings), prefix="warning: ")
        _print(short_intervals(settings, path), prefix="warning: ")
        return _check_config(settings, web_config)
    configure_logging(
        level=args.log_level or settings.log_level,
        fmt=_format(args.log_format),
        pinned=args.log_level is not None,
    )
    for problem in misspelt_variables(os.environ, settings):
        log.warning("config.unknown_variable", variable=problem.where, problem=problem.message)
    for problem in short_intervals(settings, path):
        log.warning(
            "config.short_poll_interval",
            where=problem.where,
            key=problem.path,
            problem=problem.message,
        )
    for target in settings.targets:  # every target's key: a reload may change the shard's
        with contextlib.suppress(KeyUnavailableError):  # reported by the poll that needs it
            REDACTOR.add(target.secret().get_secret_value())
    if args.command in ("once", "diagnose"):
        return asyncio.run(_once(settings)) if args.command == "once" else _diagnose(settings, args)
    assert listen is not None
    return _run(
        run_server(
            settings,
            *listen,
            web_config=web_config,
            config_path=path,
            enable_lifecycle=args.enable_lifecycle,
            command_line=command_line,
            read_header_timeout=args.read_header_timeout,
            max_connections=args.max_connections,
            auto_reload_interval=args.auto_reload_interval,
            exporter_metrics=not args.disable_exporter_metrics,
        )
    )


def _print(problems: Sequence[Problem], *, prefix: str = "") -> None:
    for problem in problems:
        print(f"{prefix}{problem}", file=sys.stderr)


def _sharding(args: argparse.Namespace) -> dict[str, int]:
    """``--shard``, ``--total-shards`` and ``--shard-from-pod-name`` as config overrides."""
    flags: dict[str, int] = {}
    if args.shard_from_pod_name:
        if args.shard is not None:
            raise ValueError("give --shard or --shard-from-pod-name, not both")
        pod = os.environ.get(POD_NAME_ENV, "")
        if not pod:
            raise ValueError(
                f"--shard-from-pod-name needs ${POD_NAME_ENV} (set it from the downward API: "
                "fieldRef metadata.name)"
            )
        flags["shard"] = shard_from_pod_name(pod)
    elif args.shard is not None:
        flags["shard"] = args.shard
    if args.total_shards is not None:
        flags["total_shards"] = args.total_shards
    return flags


def _demo(args: argparse.Namespace) -> int:
    try:
        host, port = parse_listen(args.listen)
        web_config = _web_config(args)
    except ConfigError as exc:
        _print(exc.problems)
        return EXIT_USAGE
    except ValueError as exc:
        print(f"session-exporter: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(level=args.log_level or "info", fmt=_format(args.log_format))
    return _run(run_demo(host, port, web_config=web_config))


def _web_config(args: argparse.Namespace) -> WebConfig | None:
    """The validated ``--web.config.file`` (or ``$SESSION_EXPORTER_WEB_CONFIG_FILE``), if any."""
    if not hasattr(args, "web_config_file"):  # `once` serves nothing
        return None
    path = web_config_path(args.web_config_file)
    return load_web_config(path) if path else None


def _run(server: Coroutine[Any, Any, None]) -> int:
    """Run a server until it is stopped; a bind failure is one line and exit 1."""
    try:
        asyncio.run(server)
    except ListenError as exc:
        print(f"session-exporter: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _format(value: str) -> LogFormat:
    return "json" if value == "json" else "console" if value == "console" else "auto"


def _check_config(settings: Settings, web_config: WebConfig | None = None) -> int:
    print(f"config ok: {len(settings.targets)} target(s)")
    for t in settings.targets:
        print(f"  {t.name}: {t.provider} at {t.url}, every {format_duration(settings.interval(t))}")
    if settings.total_shards > 1:
        own = settings.own_targets()
        print(
            f"shard {settings.shard} of {settings.total_shards}: "
            f"{len(own)} of {len(settings.targets)} target(s)"
        )
        for t in own:
            print(f"  {t.name}")
    if web_config:
        print(web_config.summary())
    return EXIT_OK


def _diagnose(settings: Settings, args: argparse.Namespace) -> int:
    """Poll one target with the request trace; exit 1 when the poll failed."""
    from exporter import diagnose  # noqa: PLC0415 - only this command needs it

    names = [t.name for t in settings.targets]
    if args.target is None and len(names) != 1:
        print(
            f"session-exporter: the config has {len(names)} targets; name one with --target "
            f"({', '.join(names)})",
            file=sys.stderr,
        )
        return EXIT_USAGE
    name = args.target if args.target is not None else names[0]
    target = next((t for t in settings.targets if t.name == name), None)
    if target is None:
        print(
            f"session-exporter: no target named {name!r} in the config "
            f"(its targets: {', '.join(names)})",
            file=sys.stderr,
        )
        return EXIT_USAGE
    report = asyncio.run(diagnose.diagnose(settings, target, max_rows=args.rows or None))
    render = diagnose.as_json if args.json else diagnose.as_text
    sys.stdout.write(render(report))
    sys.stdout.flush()
    return EXIT_OK if report.ok else EXIT_FAILED


async def _once(settings: Settings) -> int:
    store = new_store(settings)
    settle_heap()
    async with new_client_session() as session:
        pollers = new_pollers(settings, session, store)
        await asyncio.gather(*(p.poll() for p in pollers))
    sys.stdout.buffer.write(generate_latest(new_registry(store)))
    sys.stdout.flush()
    return EXIT_OK if all(s.up for s in store.snapshots.values()) else EXIT_FAILED
