"""The command line: ``serve``, ``once``, ``check-config`` (and ``demo``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Coroutine, Sequence
from typing import Any, NoReturn

import structlog
from prometheus_client import generate_latest

from exporter import __version__
from exporter.config import (
    DEFAULT_PORT,
    ConfigError,
    Settings,
    config_path,
    load_settings,
    parse_listen,
    shard_from_pod_name,
)
from exporter.demo import run_demo
from exporter.durations import format_duration, parse_duration
from exporter.logs import REDACTOR, LogFormat, configure_logging
from exporter.runtime import new_client_session, new_pollers, new_registry, new_store
from exporter.schema import KeyUnavailableError
from exporter.server import MAX_CONNECTIONS, READ_HEADER_TIMEOUT, ListenError, run_server
from exporter.webconfig import WEB_CONFIG_ENV, WebConfig, load_web_config, web_config_path

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
POD_NAME_ENV = "POD_NAME"

log = structlog.get_logger("exporter")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error on one line and exits 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    common.add_argument("--log-format", choices=["auto", "json", "console"], default="auto")
    config = _Parser(add_help=False)
    config.add_argument(
        "--config", metavar="FILE", help="YAML config (default: $SESSION_EXPORTER_CONFIG)"
    )
    sharding = _Parser(add_help=False)
    sharding.add_argument(
        "--shard",
        type=int,
        metavar="N",
        help="poll and export only the targets of shard N (default: the config's, 0)",
    )
    sharding.add_argument(
        "--total-shards",
        type=int,
        metavar="M",
        help="how many shards the targets are split into (default: the config's, 1)",
    )
    sharding.add_argument(
        "--shard-from-pod-name",
        action="store_true",
        help=f"take the shard from the trailing ordinal of ${POD_NAME_ENV} "
        "(a StatefulSet pod's name, given by the downward API)",
    )
    webcfg = _Parser(add_help=False)
    webcfg.add_argument(
        "--web.config.file",
        dest="web_config_file",
        metavar="FILE",
        help="TLS, basic auth and headers in the exporter-toolkit format "
        f"(default: ${WEB_CONFIG_ENV})",
    )
    parser = _Parser(
        prog="session-exporter",
        description="Prometheus exporter for AI agent, sandbox and cloud browser sessions.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    serve = sub.add_parser(
        "serve",
        parents=[common, config, sharding, webcfg],
        help="poll every target and serve /metrics",
    )
    serve.add_argument("--listen", metavar="HOST:PORT", help="override the config's listen")
    serve.add_argument(
        "--web.read-header-timeout",
        dest="read_header_timeout",
        type=_positive_duration,
        default=READ_HEADER_TIMEOUT,
        metavar="DURATION",
        help="close a connection whose request headers are not complete after this long, "
        "or that stays idle this long between requests (default: 15s)",
    )
    serve.add_argument(
        "--web.max-connections",
        dest="max_connections",
        type=_positive_int,
        default=MAX_CONNECTIONS,
        metavar="N",
        help=f"open client connections at most (default: {MAX_CONNECTIONS}; lowered to fit "
        "the descriptor limit)",
    )
    serve.add_argument(
        "--web.enable-lifecycle",
        dest="enable_lifecycle",
        action="store_true",
        help="accept POST /-/reload to reload the config (SIGHUP always does)",
    )
    sub.add_parser(
        "once",
        parents=[common, config, sharding],
        help="poll every target once and print the metrics (exit 1 if any failed)",
    )
    sub.add_parser(
        "check-config",
        parents=[config, sharding, webcfg],
        help="validate the config and web config (exit 2 with every problem)",
    )
    demo = sub.add_parser(
        "demo",
        parents=[common, webcfg],
        help="serve the exporter over five simulated providers (no key, no network)",
    )
    demo.add_argument(
        "--listen", metavar="HOST:PORT", default=f"0.0.0.0:{DEFAULT_PORT}", help="where to serve"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``session-exporter`` console script."""
    args = _parser().parse_args(argv)
    if args.command == "demo":
        return _demo(args)
    try:
        path = config_path(args.config)
        command_line = _sharding(args)
        settings = load_settings(path, command_line=command_line)
        web_config = _web_config(args)
        if args.command == "check-config":
            return _check_config(settings, web_config)
        listen = parse_listen(args.listen or settings.listen) if args.command == "serve" else None
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:  # --listen, --shard-from-pod-name
        print(f"session-exporter: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(level=args.log_level or settings.log_level, fmt=_format(args.log_format))
    for target in settings.targets:  # every target's key: a reload may change the shard's
        with contextlib.suppress(KeyUnavailableError):  # reported by the poll that needs it
            REDACTOR.add(target.secret().get_secret_value())
    if args.command == "once":
        return asyncio.run(_once(settings))
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
        )
    )


def _positive_duration(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be above zero, got {text!r}")
    return seconds


def _positive_int(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return int(text)


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
        for problem in exc.problems:
            print(problem, file=sys.stderr)
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


async def _once(settings: Settings) -> int:
    store = new_store(settings)
    async with new_client_session() as session:
        pollers = new_pollers(settings, session, store)
        await asyncio.gather(*(p.poll() for p in pollers))
    sys.stdout.buffer.write(generate_latest(new_registry(store)))
    sys.stdout.flush()
    return EXIT_OK if all(s.up for s in store.snapshots.values()) else EXIT_FAILED
