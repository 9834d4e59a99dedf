"""What a provider hands the aggregate: pages of rows, typed where they can be.

Each provider declares its row schema once, as a :class:`RowStruct` whose field names are
the aggregate's (``id``, ``status``, ``created``, ...) and whose wire names are the
provider's. :class:`RowCodec` decodes an array of such rows in one C call; a chunk that the
typed decode rejects is read again row by row by the provider's checked reader, which keeps
every readable row (an unreadable field becomes unknown) and reports the rest as
:class:`Invalid`. Large arrays are decoded a chunk of whole rows at a time, so memory
follows the chunk, not the answer, and the event loop gets a turn between chunks.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import UnionType
from typing import (
    Annotated,
    Any,
    Generic,
    Protocol,
    TypeAlias,
    TypeVar,
    Union,
    cast,
    get_args,
    get_origin,
)

import msgspec

from exporter.providers.fields import Reader
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
_OUTCOMES_KEPT = 1024
"""Distinct rows of a checked piece whose outcome is remembered, for rows repeated exactly."""

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


R = TypeVar("R", bound=RowStruct)

LEFT_OUT = frozenset({"id", "status"})
"""Fields without which a row is left out (counted under this name, whatever the wire says)."""


class _Count:
    """The reader key of a :data:`Count` field."""


_READS: dict[tuple[type, bool], str] = {
    (_Count, True): "optional_count",
    (str, False): "text",
    (str, True): "optional_text",
    (int, False): "integer",
    (int, True): "optional_integer",
    (datetime, False): "timestamp",
    (datetime, True): "optional_timestamp",
}
"""A field's type (and whether it may be null) -> the :class:`Reader` method that reads it."""


def _plain(annotation: Any) -> tuple[type, bool]:
    """A field's type without ``Annotated`` metadata, and whether it admits ``None``."""
    if get_origin(annotation) is Annotated:
        base, *metadata = get_args(annotation)
        if base is int and _NOT_NEGATIVE in metadata:
            return _Count, False
        return _plain(base)
    if get_origin(annotation) in (Union, UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        (only,) = args
        return _plain(only)[0], True
    return annotation, False


def field_reads(row_type: type[RowStruct]) -> list[tuple[str, str, str]]:
    """``(attribute, wire name, Reader method)`` of each field of a row schema."""
    return [
        (f.name, f.encode_name, _READS[_plain(f.type)]) for f in msgspec.structs.fields(row_type)
    ]


@dataclass(frozen=True, slots=True)
class RowCodec(Generic[R]):
    """One provider's row schema, and both ways of reading it, derived from its fields.

    The typed decoder reads a whole array of well-formed rows in one C call. The checked
    reading takes each field of a row on its own, with the reader its type calls for: an
    unreadable field is ``None`` (a problem noted), an unreadable ``id`` or ``status``
    leaves the row out; the row is then the same struct, built with what could be read.
    """

    row_type: type[R]
    _typed: msgspec.json.Decoder[list[R]] = field(init=False, repr=False)
    _lenient: msgspec.json.Decoder[Any] = field(init=False, repr=False)
    _reads: list[tuple[str, str, str]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        row_list: Any = list[self.row_type]  # type: ignore[name-defined]
        object.__setattr__(self, "_typed", msgspec.json.Decoder(row_list))
        reads = field_reads(self.row_type)
        lenient = msgspec.defstruct(
            f"Lenient{self.row_type.__name__}",
            [(wire, msgspec.Raw | msgspec.UnsetType, msgspec.UNSET) for _, wire, _ in reads],
            gc=False,
        )
        object.__setattr__(self, "_lenient", msgspec.json.Decoder(lenient))
        object.__setattr__(self, "_reads", reads)

    @property
    def fields(self) -> tuple[str, ...]:
        """The names invalid rows are counted under: ``id``/``status``, else the wire name."""
        return tuple(name if name in LEFT_OUT else wire for name, wire, _ in self._reads)

    def checked(self, reader: Reader) -> Row | None:
        """One row read field by field, or ``None`` when it is left out."""
        values: dict[str, Any] = {}
        for name, wire, read in self._reads:
            required = name in LEFT_OUT
            value = getattr(reader, read)(wire, label=name if required else None)
            if value is None and required:
                return None
            values[name] = value
        return cast(Row, self.row_type(**values))

    async def pages(
        self,
        array: Buffer,
        *,
        where: Callable[[int], str],
        status: str | None = None,
    ) -> AsyncIterator[Page]:
        """The rows of a JSON array, a chunk at a time; ``where(i)`` names row ``i``.

        A chunk of ``CHUNK_BYTES`` the typed decode rejects is read again in pieces of
        ``CHECKED_BYTES``, each typed if it can be, else row by row. Only one chunk's rows
        exist at a time, and the event loop gets a turn after each chunk or checked piece.
        """
        first = 0
        for chunk in iter_array(array, CHUNK_BYTES):
            try:
                rows: list[Row] = self._typed.decode(chunk)  # type: ignore[assignment]
            except msgspec.ValidationError:
                pass
            else:
                yield Page(rows, len(rows), status)
                first += len(rows)
                if len(chunk) >= CHUNK_BYTES:
                    await asyncio.sleep(0)  # a turn for the event loop between large chunks
                continue
            for piece in iter_array(chunk, CHECKED_BYTES):
                page = self.decode(piece, first=first, where=where, status=status)
                yield page
                first += page.read
                await asyncio.sleep(0)

    def decode(
        self,
        chunk: Buffer,
        *,
        first: int = 0,
        where: Callable[[int], str],
        status: str | None = None,
    ) -> Page:
        """One JSON array of rows (row ``first`` of the listing first): typed, else checked."""
        try:
            rows: list[Row] = self._typed.decode(chunk)  # type: ignore[assignment]
        except msgspec.ValidationError:
            rows, invalid, read = self._checked(chunk, first, where)
            return Page(rows, read, status, invalid)
        return Page(rows, len(rows), status)

    def _checked(
        self, chunk: Buffer, first: int, where: Callable[[int], str]
    ) -> tuple[list[Row], list[Invalid], int]:
        """Each row of ``chunk`` read field by field: the rows kept, the problems, rows read.

        A row repeated byte for byte (a hostile answer of a million ``{}``) is read once:
        its outcome is reused, its messages moved to the new row's place.
        """
        rows: list[Row] = []
        invalid: list[Invalid] = []
        raws = msgspec.json.decode(chunk, type=list[msgspec.Raw])
        outcomes: dict[bytes, tuple[str, Row | None, list[tuple[str, str]]]] = {}
        for i, raw in enumerate(raws):
            here = where(first + i)
            text = bytes(raw)
            seen = outcomes.get(text)
            if seen is not None:
                there, row, problems = seen
                invalid.extend(
                    Invalid(label, here + message[len(there) :]) for label, message in problems
                )
                if row is not None:
                    rows.append(row)
                continue
            row, problems = self._checked_row(text, here)
            invalid.extend(Invalid(label, message) for label, message in problems)
            if row is not None:
                rows.append(row)
            if len(outcomes) < _OUTCOMES_KEPT and all(m.startswith(here) for _, m in problems):
                outcomes[text] = (here, row, problems)
        return rows, invalid, len(raws)

    def _checked_row(self, text: bytes, here: str) -> tuple[Row | None, list[tuple[str, str]]]:
        """One row read field by field: the row (``None``: left out) and its problems."""
        if not text.startswith(b"{"):
            return None, [("id", f"{here}: expected an object, got {raw_kind(text)}")]
        lenient = self._lenient.decode(text)
        values = {
            name: value
            for name in lenient.__struct_fields__
            if (value := getattr(lenient, name)) is not msgspec.UNSET
        }
        reader = Reader(values, here)
        return self.checked(reader), list(reader.problems)


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
