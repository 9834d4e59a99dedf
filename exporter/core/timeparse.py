"""Parsing of the providers' ISO-8601 timestamps into unix seconds."""

from __future__ import annotations

from datetime import UTC, datetime

_fromisoformat = datetime.fromisoformat


def parse_timestamp(value: object) -> float:
    """Parse an ISO-8601 timestamp (``Z`` or offset, any fraction) into unix seconds.

    A timestamp without an offset is taken as UTC, never as local time.
    Raises ``ValueError`` for anything else.
    """
    return parse_datetime(value).timestamp()


def parse_datetime(value: object) -> datetime:
    """:func:`parse_timestamp` as a timezone-aware datetime."""
    if not isinstance(value, str):
        raise ValueError(f"expected a timestamp string, got {type(value).__name__}")
    try:  # the common case first: one C call parses `...Z` and offsets alike
        parsed = _fromisoformat(value)
    except ValueError:
        if not value.endswith("z"):  # RFC 3339 allows a lower-case zone designator
            raise
        parsed = _fromisoformat(value[:-1] + "Z")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed
