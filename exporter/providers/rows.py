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
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import UnionType
from typing import (
    Annotated,
    Any,
    Generic,
    Protocol,
    TypeVar,
    Union,
    cast,
    get_args,
    get_origin,
)

import msgspec

from exporter.errors import SchemaError
from exporter.providers.fields import Reader

Aware = Annotated[datetime, msgspec.Meta(tz=True)]
"""An RFC 3339 timestamp with a zone; anything else goes to the checked reads."""

Text = Annotated[str, msgspec.Meta(min_length=1)]
"""A non-empty string."""

_NOT_NEGATIVE = msgspec.Meta(ge=0)
Count = Annotated[int, _NOT_NEGATIVE]
"""A count (leases, executions): an integer of at least 0."""

CHUNK_BYTES = 1 << 20
"""Rows are decoded about this many bytes at a time."""

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
        array: bytes,
        *,
        where: Callable[[int], str],
        status: str | None = None,
    ) -> AsyncIterator[Page]:
        """The rows of a JSON array, a chunk at a time; ``where(i)`` names row ``i``."""
        first = 0
        for chunk in split_array(array, CHUNK_BYTES):
            page = self.decode(chunk, first=first, where=where, status=status)
            yield page
            first += page.read
            if len(chunk) >= CHUNK_BYTES:
                await asyncio.sleep(0)  # a turn for the event loop between large chunks

    def decode(
        self,
        chunk: bytes,
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
        self, chunk: bytes, first: int, where: Callable[[int], str]
    ) -> tuple[list[Row], list[Invalid], int]:
        """Each row of ``chunk`` read field by field: the rows kept, the problems, rows read."""
        rows: list[Row] = []
        invalid: list[Invalid] = []
        raws = msgspec.json.decode(chunk, type=list[msgspec.Raw])
        for i, raw in enumerate(raws):
            here = where(first + i)
            text = bytes(raw)
            if not text.startswith(b"{"):
                invalid.append(Invalid("id", f"{here}: expected an object, got {raw_kind(text)}"))
                continue
            lenient = self._lenient.decode(text)
            values = {
                name: value
                for name in lenient.__struct_fields__
                if (value := getattr(lenient, name)) is not msgspec.UNSET
            }
            reader = Reader(values, here)
            row = self.checked(reader)
            invalid.extend(Invalid(label, message) for label, message in reader.problems)
            if row is not None:
                rows.append(row)
        return rows, invalid, len(raws)


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


def split_array(array: bytes, size: int) -> list[bytes]:
    """A JSON array as arrays of whole elements of about ``size`` bytes each.

    A cut is tried where one object ends and the next begins (``},{``); when that cut
    turns out to be inside a string or a nested value (the piece is not valid JSON), the
    exact boundary is found by scanning the piece's tokens. An array of no more than
    ``size`` bytes is returned whole.
    """
    if len(array) <= size:
        return [array]
    body = array.strip()
    if not (body.startswith(b"[") and body.endswith(b"]")):
        raise SchemaError("expected an array")
    pieces: list[bytes] = []
    start = 1  # just after "[" or after a separating comma: depth 1, outside strings
    end = len(body) - 1  # the closing "]"
    while end - start > size:
        cut = _cut(body, start, start + size, end)
        if cut is None:
            break
        pieces.append(b"[" + body[start:cut] + b"]")
        start = cut + 1
    pieces.append(b"[" + body[start:end] + b"]")
    return pieces


def _cut(body: bytes, start: int, at: int, end: int) -> int | None:
    """The offset of a top-level comma at or after ``at``, or ``None`` when there is none."""
    found = _BETWEEN_OBJECTS.search(body, at, end)
    if found is not None:
        comma = body.index(b",", found.start())
        try:
            msgspec.json.decode(b"[" + body[start:comma] + b"]", type=list[msgspec.Raw])
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
