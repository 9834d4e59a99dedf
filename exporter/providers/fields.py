"""Typed reads of provider JSON; each failure is a :class:`SchemaError` naming where it was."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import msgspec

from exporter.core import labels
from exporter.core.records import Phase
from exporter.core.timeparse import parse_datetime
from exporter.upstream.errors import SchemaError, brief, clip

T = TypeVar("T")


class StatusLabels:
    """A raw status -> (label value, phase), memoized for the first ``keep`` distinct values.

    A raw status that cleans (:func:`exporter.core.labels.clean`) to a documented one is it.

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
            phase = self._phases.get(status)
            if phase is None:
                # a status that only its unprintable characters (``running\u200b``) tell
                # from a documented one is that one, in every series: its label is cleaned
                # into the documented value anyway
                cleaned = labels.clean(status)
                phase = self._phases.get(cleaned)
                status = status if phase is None else cleaned
            known = (status, phase or Phase.UNKNOWN)
            if len(self._known) < self._keep:
                self._known[raw] = known
        return known


class Shape:
    """A nested JSON value (object or array) that a checked read never needs to build."""

    def __init__(self, name: str) -> None:
        self.name = name


def _describe(value: object) -> str:
    if isinstance(value, Shape):
        return value.name
    return "null" if value is None else type(value).__name__


def scalar(raw: msgspec.Raw) -> object:
    """A raw JSON value decoded, unless it is an object or array (then its :class:`Shape`)."""
    text = bytes(raw).lstrip()
    if text[:1] == b"{":
        return Shape("dict")
    if text[:1] == b"[":
        return Shape("list")
    return msgspec.json.decode(text)


class Reader:
    """Tolerant reads of one row's raw fields, by wire name: a field that cannot be read
    is ``None`` and noted in :attr:`problems` as ``(label, message)``, the message as the
    strict reads below word it."""

    def __init__(self, values: Mapping[str, msgspec.Raw], where: str) -> None:
        self.where = where
        self.problems: list[tuple[str, str]] = []
        self._row = {key: scalar(raw) for key, raw in values.items()}

    def _read(
        self, read: Callable[[Mapping[str, Any], str, str], T], key: str, label: str | None
    ) -> T | None:
        try:
            return read(self._row, key, self.where)
        except SchemaError as exc:
            self.problems.append((label or key, exc.message))
            return None

    def text(self, key: str, *, label: str | None = None) -> str | None:
        """A required non-empty string (``None`` and a problem when it is not one)."""
        return self._read(text, key, label)

    def optional_text(self, key: str, *, label: str | None = None) -> str | None:
        """A string that may be absent or null."""
        return self._read(optional_text, key, label)

    def integer(self, key: str, *, label: str | None = None) -> int | None:
        """A required integer."""
        return self._read(integer, key, label)

    def optional_integer(self, key: str, *, label: str | None = None) -> int | None:
        """An integer that may be absent or null."""
        return self._read(optional_integer, key, label)

    def optional_count(self, key: str, *, label: str | None = None) -> int | None:
        """A count (an integer of at least 0) that may be absent or null."""
        return self._read(optional_count, key, label)

    def timestamp(self, key: str, *, label: str | None = None) -> datetime | None:
        """A required timestamp."""
        return self._read(aware, key, label)

    def optional_timestamp(self, key: str, *, label: str | None = None) -> datetime | None:
        """A timestamp that may be absent or null."""
        return self._read(optional_aware, key, label)


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


def optional_count(row: Mapping[str, Any], key: str, where: str) -> int | None:
    """A count field that may be absent or null: an integer of at least 0."""
    value = optional_integer(row, key, where)
    if value is not None and value < 0:
        raise SchemaError(f"{where}.{key}: expected a count of at least 0, got {value}")
    return value


def boolean(row: Mapping[str, Any], key: str, where: str) -> bool:
    """A required boolean field."""
    value = row.get(key)
    if not isinstance(value, bool):
        raise SchemaError(f"{where}.{key}: expected a boolean, got {_describe(value)}")
    return value


def aware(row: Mapping[str, Any], key: str, where: str) -> datetime:
    """A required ISO-8601 timestamp field, as a timezone-aware datetime."""
    value = row.get(key)
    try:
        return parse_datetime(value)
    except (ValueError, TypeError):
        if isinstance(value, str):
            shown = repr(clip(value, 60))  # masked, then cut
        elif isinstance(value, Shape):
            shown = "{…}" if value.name == "dict" else "[…]"
        else:
            shown = brief(value, limit=60)
        raise SchemaError(f"{where}.{key}: expected an ISO-8601 timestamp, got {shown}") from None


def optional_aware(row: Mapping[str, Any], key: str, where: str) -> datetime | None:
    """A timestamp field that may be absent or null, as a timezone-aware datetime."""
    if row.get(key) is None:
        return None
    return aware(row, key, where)
