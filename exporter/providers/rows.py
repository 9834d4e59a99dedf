"""What a provider hands the aggregate: pages of rows, typed where they can be.

A provider's row schema (:class:`exporter.providers.schema.RowSchema`, built from its
definition) is a :class:`RowStruct` whose attributes are the aggregate's (``id``,
``status``, ``created``, ...) and whose wire names are the provider's; it decodes an array
of rows in one C call, and a chunk the typed decode rejects is read again row by row, which
keeps every readable row (an unreadable field becomes unknown) and reports the rest as
:class:`Invalid`. Large arrays are split here into chunks of whole rows
(:func:`iter_array`), so memory follows the chunk, not the answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import (
    Annotated,
    Protocol,
    TypeAlias,
)

import msgspec

from exporter.upstream.errors import SchemaError

Buffer: TypeAlias = bytes | memoryview
"""Bytes, or a view of part of an answer's bytes (no copy)."""

Aware = Annotated[datetime, msgspec.Meta(tz=True)]
"""An RFC 3339 timestamp with a zone; anything else goes to the checked reads."""

Text = Annotated[str, msgspec.Meta(min_length=1)]
"""A non-empty string."""

_NOT_NEGATIVE = msgspec.Meta(ge=0)
Count = Annotated[int, _NOT_NEGATIVE]
"""A count (leases, executions): an integer of at least 0."""

CHUNK_BYTES = 1 << 20
"""Rows are decoded about this many bytes at a time."""
CHECKED_BYTES = 1 << 16
"""A chunk the typed decode rejects is read again about this many bytes at a time."""

_BETWEEN_OBJECTS = re.compile(rb"\}\s*,\s*\{")
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},]', re.DOTALL)


class Row(Protocol):
    """One session as the aggregate reads it; times are timezone-aware or unknown."""

    @property
    def id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def created(self) -> datetime | None: ...
    @property
    def deadline(self) -> datetime | None: ...
    @property
    def last_activity(self) -> datetime | None: ...
    @property
    def leases(self) -> int | None: ...
    @property
    def executions(self) -> int | None: ...
    @property
    def kind(self) -> str | None: ...


class RowStruct(msgspec.Struct, gc=False):
    """Base of the providers' typed rows (untracked by the cyclic GC: they hold no cycles).

    A subclass declares the :class:`Row` attributes its provider reports as fields (wire
    names via ``msgspec.field(name=...)``), and the others as ``ClassVar`` s set to ``None``
    (``""`` for a status the page gives).
    """


@dataclass(frozen=True, slots=True)
class Invalid:
    """A field of one row that could not be read; ``id``/``status`` mean the row was left out."""

    field: str
    message: str


@dataclass(frozen=True, slots=True)
class Page:
    """Rows to count, from ``read`` rows on the wire (the rest were left out as invalid).

    ``status`` is every row's status where the row itself has none.
    """

    rows: Sequence[Row]
    read: int
    status: str | None = None
    invalid: Sequence[Invalid] = ()


def raw_kind(text: bytes) -> str:
    """The Python type name of a JSON value, from its first byte (as the checked reads say)."""
    head = text.lstrip()[:1]
    if head == b"{":
        return "dict"
    if head == b"[":
        return "list"
    if head == b'"':
        return "str"
    if head in (b"t", b"f"):
        return "bool"
    if head == b"n":
        return "null"
    return "float" if any(c in text for c in b".eE") else "int"


def split_array(array: Buffer, size: int) -> list[Buffer]:
    """:func:`iter_array` as a list."""
    return list(iter_array(array, size))


def iter_array(array: Buffer, size: int) -> Iterator[Buffer]:
    """A JSON array as arrays of whole elements of about ``size`` bytes each, made one at a
    time (no copy of the whole is held: a piece is made when it is asked for).

    A cut is tried where one object ends and the next begins (``},{``); when that cut
    turns out to be inside a string or a nested value (the piece is not valid JSON), the
    exact boundary is found by scanning the piece's tokens. An array of no more than
    ``size`` bytes is returned whole.
    """
    view = memoryview(array)
    if view.nbytes <= size:
        yield array
        return
    start, end = _bounds(view)
    while end - start > size:
        cut = _cut(view, start, start + size, end)
        if cut is None:
            break
        yield b"[" + view[start:cut] + b"]"
        start = cut + 1
    yield b"[" + view[start:end] + b"]"


_SPACE = frozenset(b" \t\n\r")


def _bounds(view: memoryview) -> tuple[int, int]:
    """Just after the opening ``[`` and at the closing ``]`` of an array (outside space)."""
    first, last = 0, view.nbytes - 1
    while first <= last and view[first] in _SPACE:
        first += 1
    while last >= first and view[last] in _SPACE:
        last -= 1
    if first >= last or view[first] != ord("[") or view[last] != ord("]"):
        raise SchemaError("expected an array")
    return first + 1, last


def _cut(body: memoryview, start: int, at: int, end: int) -> int | None:
    """The offset of a top-level comma at or after ``at``, or ``None`` when there is none."""
    found = _BETWEEN_OBJECTS.search(body, at, end)
    if found is not None:
        comma = found.start() + found.group().index(b",")
        try:
            msgspec.json.decode(b"[" + body[start:comma] + b"]", type=msgspec.Raw)  # no items built
        except msgspec.DecodeError:
            pass  # inside a string or a nested value: find the real boundary
        else:
            return comma
    depth = 0
    for token in _TOKENS.finditer(body, start, end):
        char = token.group()
        if char in (b"[", b"{"):
            depth += 1
        elif char in (b"]", b"}"):
            depth -= 1
        elif char == b"," and depth == 0 and token.start() >= at:
            return token.start()
    return None
