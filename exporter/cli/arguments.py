"""The command line's arguments: ``serve``, ``once``, ``check-config``, ``diagnose``, ``demo``,
``healthcheck``.

This module only parses: it imports nothing heavy, so ``--version`` and ``--help`` answer at
once. :mod:`exporter.cli.main` parses, then imports :mod:`exporter.cli.commands` to run one.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import NoReturn

from exporter import __version__
from exporter.cli.exits import EXIT_USAGE
from exporter.core.durations import parse_duration
from exporter.core.names import (
    CONFIG_ENV,
    DEFAULT_PORT,
    ENV_PREFIX,
    MAX_CONNECTIONS,
    POD_NAME_ENV,
    READ_HEADER_TIMEOUT,
    WEB_CONFIG_ENV,
)

_YEAR = 366 * 86400.0
DEMO_LISTEN = f"127.0.0.1:{DEFAULT_PORT}"

EXIT_CODES = {
    "serve": "0 stopped by SIGTERM/SIGINT; 1 cannot listen; 2 usage or config error",
    "once": "0 every target polled; 1 a target failed (all is still printed); 2 usage or config",
    "check-config": "0 valid; 2 every problem printed, one per line with its place",
    "diagnose": "0 the poll succeeded; 1 it failed (the report says why); 2 usage or config",
    "demo": "0 stopped by SIGTERM/SIGINT; 1 cannot listen; 2 usage error",
    "healthcheck": "0 /healthz answered 200; 1 it did not, or the config cannot be read",
}
_VARIABLES = {
    CONFIG_ENV: "the config file, when --config is not given",
    WEB_CONFIG_ENV: "the web config file, when --web.config.file is not given",
    f"{ENV_PREFIX}<KEY>": f"a top-level config key, over the file's ({ENV_PREFIX}LISTEN=:9000)",
    f"{ENV_PREFIX}TARGETS__<T>__<KEY>": "one key of target <T> (its index or its name)",
}
ENVIRONMENT = "environment:\n" + "\n".join(
    f"  {name.ljust(37)} {meaning}" for name, meaning in _VARIABLES.items()
)


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error on one line and exits 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see --help)\n")


def _count(text: str) -> int:
    """A non-negative integer argument."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _epilog(*commands: str, environment: bool = True) -> str:
    codes = "exit codes:\n" + "\n".join(f"  {c}: {EXIT_CODES[c]}" for c in commands)
    return f"{ENVIRONMENT}\n\n{codes}" if environment else codes


def _subparser(
    sub: argparse._SubParsersAction[_Parser],
    name: str,
    *,
    parents: Sequence[_Parser],
    summary: str,
    environment: bool = True,
) -> _Parser:
    return sub.add_parser(
        name,
        parents=list(parents),
        help=summary,
        description=summary[0].upper() + summary[1:] + ".",
        epilog=_epilog(name, environment=environment),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def parser() -> argparse.ArgumentParser:
    """The whole command line, with every option's default, the variables and exit codes."""
    logs = _Parser(add_help=False)
    logs.add_argument(
        "--log-level",
        "--log.level",
        dest="log_level",
        choices=["debug", "info", "warning", "error"],
        metavar="LEVEL",
        help="log events at this level and above: debug, info, warning or error "
        "(default: the config's log_level, info)",
    )
    logs.add_argument(
        "--log-format",
        "--log.format",
        dest="log_format",
        choices=["auto", "json", "console"],
        default="auto",
        metavar="FORMAT",
        help="json (one JSON object a line), console (text), or auto: console on a "
        "terminal, else json (default: auto)",
    )
    config = _Parser(add_help=False)
    config.add_argument(
        "--config",
        "--config.file",
        dest="config",
        metavar="FILE",
        help=f"the YAML config (default: ${CONFIG_ENV})",
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
        f"(default: ${WEB_CONFIG_ENV}, else plain HTTP without auth)",
    )
    top = _Parser(
        prog="session-exporter",
        description="Prometheus exporter for AI agent, sandbox and cloud browser sessions.",
        epilog=_epilog(*EXIT_CODES),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = top.add_subparsers(dest="command", required=True, parser_class=_Parser)
    serve = _subparser(
        sub,
        "serve",
        parents=[logs, config, sharding, webcfg],
        summary="poll every target and serve /metrics",
    )
    serve.add_argument(
        "--listen",
        "--web.listen-address",
        dest="listen",
        metavar="HOST:PORT",
        help=f"where to serve (default: the config's listen, 0.0.0.0:{DEFAULT_PORT})",
    )
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
    serve.add_argument(
        "--config.auto-reload-interval",
        dest="auto_reload_interval",
        type=_duration,
        metavar="DURATION",
        help="check the config file and the files it names at this interval, by content, and "
        "reload on a change as SIGHUP does; 0 is off (default: the config's "
        "config_auto_reload_interval, 0)",
    )
    serve.add_argument(
        "--web.disable-exporter-metrics",
        dest="disable_exporter_metrics",
        action="store_true",
        help="leave out the exporter's own process, Python and GC series (process_*, "
        "python_info, python_gc_*)",
    )
    _subparser(
        sub,
        "once",
        parents=[logs, config, sharding],
        summary="poll every target once and print the metrics (exit 1 if any failed)",
    )
    _subparser(
        sub,
        "check-config",
        parents=[config, sharding, webcfg],
        summary="validate the config and web config (exit 2 with every problem)",
    )
    diagnose = _subparser(
        sub,
        "diagnose",
        parents=[logs, config],
        summary="poll one target once and show each request, row shape and row mapping "
        "(values masked, never the key): to check what a real account sends",
    )
    diagnose.add_argument(
        "--target",
        metavar="NAME",
        help="the target to poll (default: the config's only target)",
    )
    diagnose.add_argument(
        "--json",
        action="store_true",
        help="print the report as one JSON document (default: text)",
    )
    diagnose.add_argument(
        "--rows",
        type=_count,
        default=50,
        metavar="N",
        help="show how the first N rows were mapped; 0 shows every row (default: 50; "
        "the shapes and totals always cover every row)",
    )
    demo = _subparser(
        sub,
        "demo",
        parents=[logs, webcfg],
        summary="serve the exporter over five simulated providers (no key, no network)",
        environment=False,
    )
    demo.add_argument(
        "--listen",
        "--web.listen-address",
        dest="listen",
        metavar="HOST:PORT",
        default=DEMO_LISTEN,
        help=f"where to serve (default: {DEMO_LISTEN}, this machine only)",
    )
    health = _subparser(
        sub,
        "healthcheck",
        parents=[config, webcfg],
        summary="ask the running server's /healthz, over TLS when the web config has it",
    )
    health.add_argument(
        "--listen",
        "--web.listen-address",
        dest="listen",
        metavar="HOST:PORT",
        help="where the server listens (default: the config's listen; without a config, "
        f"0.0.0.0:{DEFAULT_PORT}); an all-interfaces address is asked on loopback",
    )
    health.add_argument(
        "--timeout",
        type=float,
        default=4.0,
        metavar="SECONDS",
        help="give up after this long (default: 4)",
    )
    return top


def _positive_duration(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be above zero, got {text!r}")
    return seconds


def _duration(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not 0 <= seconds <= _YEAR:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be 0 (off) to a year, got {text!r}")
    return seconds


def _positive_int(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return int(text)
