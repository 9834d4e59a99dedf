"""Typed reads of provider JSON; each failure is a :class:`SchemaError` naming where it was."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exporter.errors import SchemaError, brief
from exporter.records import Phase
from exporter.timeparse import parse_timestamp


class StatusLabels:
    """A raw status -> (label value, phase), memoized for the first ``keep`` distinct values.

    The providers' hot path: one dict lookup per session instead of strip/lower/lookup.
    """

    def __init__(self, phases: Mapping[str, Phase], *, keep: int = 256) -> None:
        self._phases = phases
        self._keep = keep
        self._known: dict[str, tuple[str, Phase]] = {}

    def __call__(self, raw: str) -> tuple[str, Phase]:
        known = self._known.get(raw)
        if known is None:
            status = raw.strip().lower()
            known = (status, self._phases.get(status, Phase.UNKNOWN))
            if len(self._known) < self._keep:
                self._known[raw] = known
        return known


def _describe(value: object) -> str:
    return "null" if value is None else type(value).__name__


def as_object(value: Any, where: str) -> Mapping[str, Any]:
    """``value`` as a JSON object."""
    if not isinstance(value, dict):
        raise SchemaError(f"{where}: expected an object, got {_describe(value)}")
    return value


def as_list(value: Any, where: str) -> list[Any]:
    """``value`` as a JSON array."""
    if not isinstance(value, list):
        raise SchemaError(f"{where}: expected an array, got {_describe(value)}")
    return value


def text(row: Mapping[str, Any], key: str, where: str) -> str:
    """A required, non-empty string field."""
    value = row.get(key)
    if not isinstance(value, str) or not value:
        raise SchemaError(f"{where}.{key}: expected a non-empty string, got {_describe(value)}")
    return value


def optional_text(row: Mapping[str, Any], key: str, where: str) -> str | None:
    """A string field that may be absent or null."""
    value = row.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise SchemaError(f"{where}.{key}: expected a string, got {_describe(value)}")
    return value


def integer(row: Mapping[str, Any], key: str, where: str) -> int:
    """A required integer field (booleans are not integers here)."""
    value = row.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise SchemaError(f"{where}.{key}: expected an integer, got {_describe(value)}")
    return value


def optional_integer(row: Mapping[str, Any], key: str, where: str) -> int | None:
    """An integer field that may be absent or null."""
    if row.get(key) is None:
        return None
    return integer(row, key, where)


def boolean(row: Mapping[str, Any], key: str, where: str) -> bool:
    """A required boolean field."""
    value = row.get(key)
    if not isinstance(value, bool):
        raise SchemaError(f"{where}.{key}: expected a boolean, got {_describe(value)}")
    return value


def timestamp(row: Mapping[str, Any], key: str, where: str) -> float:
    """A required ISO-8601 timestamp field, as unix seconds."""
    value = row.get(key)
    try:
        return parse_timestamp(value)
    except (ValueError, TypeError):
        shown = repr(value[:60]) if isinstance(value, str) else brief(value, limit=60)
        raise SchemaError(f"{where}.{key}: expected an ISO-8601 timestamp, got {shown}") from None


def optional_timestamp(row: Mapping[str, Any], key: str, where: str) -> float | None:
    """A timestamp field that may be absent or null."""
    if row.get(key) is None:
        return None
    return timestamp(row, key, where)
