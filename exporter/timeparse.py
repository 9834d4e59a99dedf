"""Parsing of the providers' ISO-8601 timestamps into unix seconds."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_timestamp(value: object) -> float:
    """Parse an ISO-8601 timestamp (``Z`` or offset, any fraction) into unix seconds.

    A timestamp without an offset is taken as UTC, never as local time.
    Raises ``ValueError`` for anything else.
    """
    if not isinstance(value, str):
        raise ValueError(f"expected a timestamp string, got {type(value).__name__}")
    if value.endswith("z"):  # RFC 3339 allows a lower-case zone designator
        value = value[:-1] + "Z"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
