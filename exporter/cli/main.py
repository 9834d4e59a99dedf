"""The ``session-exporter`` console script: parse first, load the server stack only to run."""

from __future__ import annotations

from collections.abc import Sequence

from exporter.cli.arguments import parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``session-exporter`` console script and ``python -m exporter``."""
    args = parser().parse_args(argv)
    from exporter.cli.commands import run  # noqa: PLC0415 - --version and --help stay light

    return run(args)
