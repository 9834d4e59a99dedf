"""A definition's rows as a typed msgspec struct, built from its JSON pointers, and the
checked reading of a row the typed decode rejects.

Each pointer of the definition is a leaf of a tree of ``msgspec.defstruct`` structs
(nested structs for nested pointers), so a page of well-formed rows decodes in one C call
into objects that already are the aggregate's :class:`~exporter.providers.rows.Row`: a
top-level field the aggregate reads as it is (an id, an RFC 3339 time, a count) is a plain
struct field named as the aggregate names it; the rest (a nested field, a time in
milliseconds, a computed deadline or status) is a property of the struct's class. A chunk
the typed decode rejects is read again row by row (:meth:`RowSchema.checked`): each field
on its own, an unreadable one unknown and counted under the definition's field name.
"""

from __future__ import annotations

import asyncio
import math
import operator
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import msgspec

from exporter.core.timeparse import parse_datetime
from exporter.providers import rows as rows_module
from exporter.providers.definition import UNIT_SECONDS, Definition, segments
from exporter.providers.rows import (
    CHECKED_BYTES,
    Aware,
    Buffer,
    Count,
    Invalid,
    Page,
    Row,
    RowStruct,
    Text,
    iter_array,
)
from exporter.upstream.errors import brief, clip

_MS_TIME = Aware | float
"""A time that may be a number of milliseconds (converted by a property)."""

_KIND_TYPES: dict[str, Any] = {
    "id": Text,
    "status": Text,
    "created": Aware,
    "time": Aware,
    "count": Count,
    "number": float,
    "integer": int,
    "text": str,
    "set": Any,
}
"""The msgspec type of each kind of leaf (a time in milliseconds: :data:`_MS_TIME`)."""
_REQUIRED = frozenset({"id", "status", "created"})
_LEFT_OUT = frozenset({"id", "status"})
"""Leaves without which a row is left out (counted under their name, whatever the wire says)."""
_DIRECT = {
    "id",
    "status",
    "created",
    "deadline",
    "last_activity",
    "leases",
    "kind",
    "executions",
    "run_id",
}
"""Row attributes a top-level leaf can be, as a plain struct field."""
_ROW_ATTRS = (
    "id",
    "status",
    "created",
    "deadline",
    "last_activity",
    "leases",
    "executions",
    "kind",
)


@dataclass(frozen=True, slots=True)
class Leaf:
    """One pointer read from a row: what it is for, where it is, what kind of value."""

    key: str
    """Its name in the program: a Row attribute, or ``t0``/``p0``/``u0``/``ds``."""
    label: str
    """The definition's field an unreadable value is counted under."""
    pointer: str
    kind: str

    @property
    def path(self) -> tuple[str, ...]:
        """The keys the pointer walks."""
        return segments(self.pointer)


def _leaves(
    definition: Definition, *, wire_labels: bool = False, run_id: bool = False
) -> list[Leaf]:
    f = definition.fields

    def label(key: str, pointer: str) -> str:
        return segments(pointer)[-1] if wire_labels and segments(pointer) else key

    out = [Leaf("id", "id", f.id, "id")]
    if f.status is not None:
        out.append(Leaf("status", "status", f.status, "status"))
    out.append(Leaf("created", label("created", f.created), f.created, "created"))
    for key, kind in (("deadline", "time"), ("last_activity", "time"), ("leases", "count")):
        pointer = getattr(f, key)
        if pointer is not None:
            out.append(Leaf(key, label(key, pointer), pointer, kind))
    if f.executions is not None:  # a count, as leases
        out.append(Leaf("executions", label("executions", f.executions), f.executions, "count"))
    if f.kind is not None:
        out.append(Leaf("kind", label("kind", f.kind), f.kind, "text"))
    if run_id and f.run_id is not None:
        out.append(Leaf("run_id", label("run_id", f.run_id), f.run_id, "text"))
    rule = definition.deadline
    if rule is not None:
        for i, term in enumerate(rule.earliest):
            out.append(Leaf(f"t{i}", label("deadline", term.time), term.time, "time"))
            amount = "integer" if term.integer else "number"
            for j, plus in enumerate(term.plus or ()):
                out.append(Leaf(_plus_key(i, j), label("deadline", plus), plus, amount))
        out.extend(Leaf(f"u{i}", "deadline", p, "set") for i, p in enumerate(rule.unless_set))
    derived = definition.derived_status
    if derived is not None and derived.set is not None:
        out.append(Leaf("ds", "status", derived.set, "set"))
    return out


def _plus_key(term: int, index: int) -> str:
    """The program key of a term's amount (``p0``), or of its ``index``-th fallback (``p0_1``)."""
    return f"p{term}" if not index else f"p{term}_{index}"


def _is_set(value: object) -> bool:
    return value is not None and value not in ("", {}, [])


class Program:
    """What a row's leaves give: its status, its deadline (computed where the definition
    says so) and its times as datetimes; the same for typed and checked rows."""

    def __init__(self, definition: Definition) -> None:
        self.scale = 1000.0 if definition.time_unit == "ms" else 1.0
        derived = definition.derived_status
        self.constant = derived.constant if derived else None
        self.then = derived.then if derived else None
        self.otherwise = derived.otherwise if derived else None
        rule = definition.deadline
        self.unless = [f"u{i}" for i in range(len(rule.unless_set))] if rule else []
        fields = definition.fields
        self.aliases = [
            "created"
            if t.time == fields.created
            else "last_activity"
            if t.time == fields.last_activity
            else None
            for t in (rule.earliest if rule else ())
        ]
        """Which term times are the row's creation or activity (read once by the aggregate)."""
        self.integers = [t.integer for t in (rule.earliest if rule else ())]
        """Which terms' amounts are integers (typed rows hold an ``int`` there, or none)."""
        self.terms = [
            (
                f"t{i}",
                tuple(_plus_key(i, j) for j in range(len(t.plus))) if t.plus else None,
                UNIT_SECONDS[t.unit],
                t.default,
                t.positive,
                frozenset(t.statuses) if t.statuses else None,
            )
            for i, t in enumerate(rule.earliest if rule else ())
        ]

    def deadline_seconds(
        self,
        status: str | None,
        get: Callable[[str], Any],
        created: float | None,
        activity: float | None,
    ) -> float | None:
        """:meth:`deadline` as unix seconds, in float arithmetic: the times the aggregate
        has read already (creation, activity) are not read again."""
        for key in self.unless:
            if _is_set(get(key)):
                return None
        best: float | None = None
        lowered = None if status is None else status.lower()
        for (time_key, plus_key, unit, default, positive, only), alias in zip(
            self.terms, self.aliases, strict=True
        ):
            if only is not None and lowered not in only:
                continue
            if alias == "created" and created is not None:
                at: float | None = created
            elif alias == "last_activity" and activity is not None:
                at = activity
            else:
                moment = self.time(get(time_key))
                at = None if moment is None else moment.timestamp()
            if at is None:
                continue
            if plus_key is not None:
                amount = _first_set(get, plus_key)
                if amount is None:
                    amount = default
                if amount is None or (positive and amount <= 0) or not _finite(amount):
                    continue
                at += amount * unit
            if best is None or at < best:
                best = at
        return best

    def time(self, value: object) -> datetime | None:
        """A typed time value: a datetime already, or a number in the definition's unit."""
        if value is None or isinstance(value, datetime):
            return value
        try:
            return datetime.fromtimestamp(float(value) / self.scale, UTC)  # type: ignore[arg-type]
        except (OverflowError, OSError, ValueError):
            return None

    def status(self, get: Callable[[str], Any]) -> str:
        """The derived status."""
        if self.constant is not None:
            return self.constant
        return self.then if _is_set(get("ds")) else self.otherwise  # type: ignore[return-value]

    def deadline(self, status: str | None, get: Callable[[str], Any]) -> datetime | None:
        """The earliest of the terms that apply; ``None`` when an ``unless_set`` field is set."""
        for key in self.unless:
            if _is_set(get(key)):
                return None
        best: datetime | None = None
        lowered = None if status is None else status.lower()
        for time_key, plus_key, unit, default, positive, only in self.terms:
            if only is not None and lowered not in only:
                continue
            at = self.time(get(time_key))
            if at is None:
                continue
            if plus_key is not None:
                amount = _first_set(get, plus_key)
                if amount is None:
                    amount = default
                if amount is None or (positive and amount <= 0) or not _finite(amount):
                    continue
                try:
                    at = at + timedelta(seconds=amount * unit)
                except OverflowError:
                    continue
            if best is None or at < best:
                best = at
        return best


def _first_set(get: Callable[[str], Any], keys: tuple[str, ...]) -> Any:
    """The first of a term's amounts that is set (not null), else ``None``."""
    for key in keys:
        amount = get(key)
        if amount is not None:
            return amount
    return None


def _finite(amount: float) -> bool:
    """Whether an amount is a finite number (an integer too large for a float is not)."""
    try:
        return math.isfinite(amount)
    except OverflowError:
        return False


_LOW, _HIGH = float(2**30), float(2**31)
"""Unix seconds of 2004-01-10 and 2038-01-19: one binade of floats, whose spacing (2**-22 s)
divides every whole second, so adding whole seconds there is exact."""


def _status_of(
    program: Program, getters: Mapping[str, Callable[[Any], Any]]
) -> Callable[[Any], str]:
    def status(row: Any) -> str:
        return program.status(lambda key: getters[key](row) if key in getters else None)

    return status


def _deadline_of(
    program: Program, getters: Mapping[str, Callable[[Any], Any]]
) -> Callable[[Any], datetime | None]:
    def deadline(row: Any) -> datetime | None:
        return program.deadline(
            row.status, lambda key: getters[key](row) if key in getters else None
        )

    return deadline


def _deadline_seconds_of(
    program: Program, getters: Mapping[str, Callable[[Any], Any]]
) -> Callable[[Any, float | None, float | None], float | None]:
    """:meth:`Program.deadline_seconds` specialised for one row type: each term a closure
    with its readers and constants bound, no closure made per row (the aggregate calls it
    for every live row).

    A sum of floats is the datetime sum only where it cannot round: whole seconds added
    within one binade (see :data:`_LOW`); anywhere else the row's deadline is computed
    with datetimes (:func:`_exact_seconds`), so both always agree to the bit."""
    unless = [getters[key] for key in program.unless]
    parts = list(zip(program.terms, program.aliases, program.integers, strict=True))
    terms = [
        _term_seconds(
            1 if alias == "created" else 2 if alias == "last_activity" else 0,
            getters[time_key],
            [getters[k] for k in plus_key or ()],
            unit,
            default,
            positive,
            only,
            program.time,
        )
        for (time_key, plus_key, unit, default, positive, only), alias, _ in parts
    ]
    exact = _exact_seconds(program, getters)

    def deadline_seconds(row: Any, created: float | None, activity: float | None) -> float | None:
        for read in unless:
            if _is_set(read(row)):
                return None
        best: float | None = None
        try:
            for term in terms:
                best = term(row, created, activity, best)
        except _Inexact:
            return exact(row)
        return best

    fast: list[_Fast] = [
        (
            alias == "created",
            getters[plus[0]],
            tuple(getters[k] for k in plus[1:]),
            unit,
            default,
            integer,
        )
        for (_, plus, unit, default, positive, only), alias, integer in parts
        if alias is not None and plus and only is None and not positive
    ]
    if unless or len(terms) != 2 or len(fast) != 2:
        return deadline_seconds
    return _two_fast_terms(fast[0], fast[1], deadline_seconds)


_Fast = tuple[
    bool, Callable[[Any], Any], tuple[Callable[[Any], Any], ...], float, float | None, bool
]
"""A term :func:`_two_fast_terms` inlines: from the creation time (else the activity), the
amount's first reader and the others, the unit, the default amount, integer amounts."""


def _two_fast_terms(
    first: _Fast,
    second: _Fast,
    general: Callable[[Any, float | None, float | None], float | None],
) -> Callable[[Any, float | None, float | None], float | None]:
    """The commonest deadline (as Notte's and the worked example's: the creation and the
    activity time, each plus an amount) unrolled, as cheap as a hand-written one; whatever
    it does not cover (an absent time, a sum that may round) is ``general``'s."""
    created_1, read_1, rest_1, unit_1, default_1, integer_1 = first
    created_2, read_2, rest_2, unit_2, default_2, integer_2 = second
    default_1, default_2 = _int_if_whole(default_1), _int_if_whole(default_2)
    # whole seconds for sure: an integer amount (or default) times a whole unit
    sure_1 = unit_1.is_integer() and integer_1 and not isinstance(default_1, float)
    sure_2 = unit_2.is_integer() and integer_2 and not isinstance(default_2, float)
    low, high = _LOW, _HIGH

    def deadline_seconds(  # noqa: PLR0912 - inlined on purpose: once per live row
        row: Any, created: float | None, activity: float | None
    ) -> float | None:
        at_1 = created if created_1 else activity
        at_2 = created if created_2 else activity
        if at_1 is None or at_2 is None or not (low < at_1 < high and low < at_2 < high):
            return general(row, created, activity)
        amount_1 = read_1(row)
        if amount_1 is None:
            for read in rest_1:
                amount_1 = read(row)
                if amount_1 is not None:
                    break
            else:
                amount_1 = default_1
        amount_2 = read_2(row)
        if amount_2 is None:
            for read in rest_2:
                amount_2 = read(row)
                if amount_2 is not None:
                    break
            else:
                amount_2 = default_2
        if amount_1 is None or amount_2 is None:
            return general(row, created, activity)
        try:
            delta_1 = amount_1 * unit_1
            delta_2 = amount_2 * unit_2
        except OverflowError:
            return general(row, created, activity)
        if not (sure_1 or delta_1.is_integer()) or not (sure_2 or delta_2.is_integer()):
            return general(row, created, activity)  # a sum that may round
        later_1: float = at_1 + delta_1
        later_2: float = at_2 + delta_2
        if not (low < later_1 < high and low < later_2 < high):
            return general(row, created, activity)
        return later_1 if later_1 < later_2 else later_2

    return deadline_seconds


def _int_if_whole(amount: float | None) -> float | None:
    """A default amount that is a whole number, as an integer (its product is then known
    to be whole without asking)."""
    if amount is not None and math.isfinite(amount) and amount.is_integer():
        return int(amount)
    return amount


class _Inexact(Exception):
    """A term whose float sum might round: the row's deadline is computed with datetimes."""


_Term = Callable[[Any, float | None, float | None, float | None], float | None]


def _term_seconds(  # noqa: PLR0917 - a term's parts, bound once
    alias: int,
    read_time: Callable[[Any], Any],
    reads: list[Callable[[Any], Any]],
    unit: float,
    default: float | None,
    positive: bool,
    only: frozenset[str] | None,
    to_time: Callable[[object], datetime | None],
) -> _Term:
    """One deadline term as unix seconds: the earlier of it and ``best`` (the terms before)."""
    read_plus = reads[0] if reads else None
    rest = reads[1:]
    whole = unit.is_integer()
    low, high = _LOW, _HIGH

    def term(row: Any, created: float | None, activity: float | None, best: float | None) -> Any:
        if only is not None and str(row.status).lower() not in only:
            return best
        at = created if alias == 1 else activity if alias == 2 else None
        if at is None:
            moment = to_time(read_time(row))
            if moment is None:
                return best
            at = moment.timestamp()
        if read_plus is not None:
            amount = read_plus(row)
            if amount is None:
                for read in rest:
                    amount = read(row)
                    if amount is not None:
                        break
                else:
                    amount = default
            if amount is None or (positive and amount <= 0):
                return best
            try:
                delta = amount * unit
            except OverflowError:  # an integer beyond any float: no limit
                return best
            later = at + delta
            if not (low < at < high and low < later < high) or (
                not (whole and type(amount) is int) and not delta.is_integer()
            ):
                raise _Inexact  # float arithmetic may round here
            at = later
        return at if best is None or at < best else best

    return term


def _exact_seconds(
    program: Program, getters: Mapping[str, Callable[[Any], Any]]
) -> Callable[[Any], float | None]:
    """The row's deadline by datetime arithmetic, as unix seconds: what the float sums give
    wherever they are exact (whole seconds added within one binade, see :data:`_LOW`)."""
    deadline = _deadline_of(program, getters)

    def seconds(row: Any) -> float | None:
        at = deadline(row)
        return None if at is None else at.timestamp()

    return seconds


def _time_of(program: Program, getter: Callable[[Any], Any]) -> Callable[[Any], datetime | None]:
    def time(row: Any) -> datetime | None:
        return program.time(getter(row))

    return time


def _getter(attrs: tuple[str, ...]) -> Callable[[Any], Any]:
    if len(attrs) == 1:
        return operator.attrgetter(attrs[0])  # one C call

    def chain(row: Any) -> Any:
        value = row
        for name in attrs:
            value = getattr(value, name)
            if value is None:
                return None
        return value

    return chain


class _Node:
    """A struct being built: its children by wire key (leaves and nested nodes)."""

    def __init__(self) -> None:
        self.children: dict[str, _Node | Leaf] = {}
        self.names: dict[str, str] = {}

    def required(self) -> bool:
        return any(
            (c.kind in _REQUIRED) if isinstance(c, Leaf) else c.required()
            for c in self.children.values()
        )


class RowSchema:
    """A definition's row struct, its decoders, and the checked reading of a row."""

    def __init__(
        self, name: str, definition: Definition, *, wire_labels: bool = False, run_id: bool = False
    ) -> None:
        """``wire_labels``: an unreadable fact other than id and status is counted under its
        key in the row (as the providers hand-written before the engine count them), not
        its field name. ``run_id``: rows read ``fields.run_id`` too (a ``per_session``
        target's schema; the others never decode it)."""
        self.program = Program(definition)
        self.leaves = _leaves(definition, wire_labels=wire_labels, run_id=run_id)
        self.reads_run_id = any(leaf.key == "run_id" for leaf in self.leaves)
        self.wire_labels = wire_labels
        """Whether rows are counted as the hand-written providers counted them."""
        self.strict = definition.time_unit == "iso"
        """Whether values are decoded as they come (no number from a string, no time from
        a number)."""
        self.fields = tuple(dict.fromkeys(leaf.label for leaf in self.leaves))
        ms = definition.time_unit == "ms"
        root = _Node()
        paths: dict[str, tuple[str, ...]] = {}
        first_of: dict[str, str] = {}
        for leaf in self.leaves:
            if leaf.pointer in first_of:  # the same pointer read twice: one field
                paths[leaf.key] = paths[first_of[leaf.pointer]]
                continue
            first_of[leaf.pointer] = leaf.key
            node, attrs = root, []
            *heads, last = leaf.path or ("",)
            for key in heads:
                child = node.children.get(key)
                if not isinstance(child, _Node):
                    child = node.children[key] = _Node()
                    node.names[key] = f"n{len(node.names)}"
                attrs.append(node.names[key])
                node = child
            direct = (
                not heads and leaf.key in _DIRECT and not (ms and leaf.kind in ("time", "created"))
            )
            field_name = leaf.key if direct else f"f{len(node.names)}"
            node.children[last] = leaf
            node.names[last] = field_name
            paths[leaf.key] = (*attrs, field_name)
        self._direct = {k for k, p in paths.items() if len(p) == 1 and p[0] == k}
        getters = {key: _getter(path) for key, path in paths.items()}
        base = self._base(name, definition, getters)
        self.row_type: type[RowStruct] = self._struct(name, root, base, ms, top=True)
        row_list: Any = list[self.row_type]  # type: ignore[name-defined]
        self._typed: msgspec.json.Decoder[list[Any]] = msgspec.json.Decoder(
            row_list, strict=self.strict
        )

    def _base(
        self, name: str, definition: Definition, getters: dict[str, Callable[[Any], Any]]
    ) -> type[RowStruct]:
        namespace: dict[str, Any] = {"__annotations__": {}}
        for attr in _ROW_ATTRS:
            if attr in self._direct:
                continue
            if attr == "status" and self.program.constant is not None:
                namespace["__annotations__"][attr] = ClassVar[str]  # one for every row
                namespace[attr] = self.program.constant
            elif attr == "status" and definition.derived_status is not None:
                namespace[attr] = property(_status_of(self.program, getters))
            elif attr == "deadline" and definition.deadline is not None:
                namespace[attr] = property(_deadline_of(self.program, getters))
                namespace["deadline_seconds"] = _deadline_seconds_of(self.program, getters)
            elif attr == "status" and attr not in getters:  # the listing gives it
                namespace["__annotations__"][attr] = ClassVar[str]
                namespace[attr] = ""
            elif attr not in getters:
                namespace["__annotations__"][attr] = ClassVar[None]
                namespace[attr] = None
            elif attr in ("created", "deadline", "last_activity"):
                namespace[attr] = property(_time_of(self.program, getters[attr]))
            else:
                namespace[attr] = property(getters[attr])
        if "run_id" in getters and "run_id" not in self._direct:  # a nested run_id
            namespace["run_id"] = property(getters["run_id"])
        base: Any = msgspec.defstruct(
            f"{name}RowBase", [], bases=(RowStruct,), namespace=namespace, gc=False
        )
        return base  # type: ignore[no-any-return]

    def _struct(
        self, name: str, node: _Node, base: type[Any], ms: bool, *, top: bool = False
    ) -> type[Any]:
        fields: list[tuple[str, Any, Any]] = []
        optional: list[tuple[str, Any, Any]] = []
        for key, child in node.children.items():
            attr = node.names[key]
            if isinstance(child, _Node):
                sub = self._struct(f"{name}_{attr}", child, msgspec.Struct, ms)
                if child.required():
                    fields.append((attr, sub, msgspec.field(name=key)))
                else:
                    optional.append((attr, sub | None, msgspec.field(name=key, default=None)))
                continue
            kind = child.kind
            kind_type = _MS_TIME if ms and kind in ("time", "created") else _KIND_TYPES[kind]
            if kind in _REQUIRED:
                fields.append((attr, kind_type, msgspec.field(name=key)))
            else:
                optional.append((attr, kind_type | None, msgspec.field(name=key, default=None)))
        return msgspec.defstruct(
            f"{name}Row" if top else name,
            fields + optional,
            bases=(base,),
            gc=False,
            module=__name__,
        )

    # -- the checked path -------------------------------------------------------------

    def checked_row(self, value: object, here: str) -> tuple[Row | None, list[tuple[str, str]]]:
        """One decoded row read field by field: the row (``None``: left out), its problems."""
        if not isinstance(value, dict):
            return None, [("id", f"{here}: expected an object, got {_kind(value)}")]
        problems: list[tuple[str, str]] = []
        values: dict[str, Any] = {}
        by_pointer: dict[str, Any] = {}
        for leaf in self.leaves:
            if leaf.pointer in by_pointer:  # read once, and reported once
                values[leaf.key] = by_pointer[leaf.pointer]
                continue
            values[leaf.key] = by_pointer[leaf.pointer] = self._read(value, leaf, here, problems)
            if values[leaf.key] is None and leaf.kind in _LEFT_OUT:
                return None, problems  # left out, counted once: its other facts are not read
        program = self.program

        def get(key: str) -> Any:
            return values.get(key)

        if "status" in values:
            status = values["status"]
        elif program.constant is not None or program.then is not None:
            status = program.status(get)
        else:
            status = ""  # the listing gives it
        if values["id"] is None or status is None:
            if self.wire_labels:  # counted once, under why it is left out (as hand-written)
                problems = [p for p in problems if p[0] in ("id", "status")][:1]
            return None, problems
        deadline = values.get("deadline")
        if self.program.terms:
            deadline = program.deadline(status, get)
        row = (CheckedRunRow if self.reads_run_id else CheckedRow)(
            values["id"],
            status,
            values["created"],
            deadline,
            values.get("last_activity"),
            values.get("leases"),
            values.get("kind"),
            executions=values.get("executions"),
        )
        if self.reads_run_id:
            row.run_id = values.get("run_id")  # type: ignore[attr-defined]
        return row, problems

    def _read(
        self, row: dict[str, Any], leaf: Leaf, here: str, problems: list[tuple[str, str]]
    ) -> Any:
        where = f"{here}.{'.'.join(leaf.path)}"
        value: Any = row
        for key in leaf.path:
            if not isinstance(value, dict):
                value = None
                break
            value = value.get(key)
        kind = leaf.kind
        if kind == "set":
            return value
        label = leaf.label
        reader = _STRICT_READERS.get(kind, _READERS[kind]) if self.strict else _READERS[kind]
        try:
            return reader(value, self.program.scale, kind in _REQUIRED)
        except _Unreadable as exc:
            textual = kind in ("id", "status", "text") and (
                self.wire_labels or not isinstance(value, str)
            )
            integer = kind == "integer" or exc.expected == _AN_INTEGER
            shown = _kind(value) if textual or integer else _shown(value)
            if self.strict and kind in ("time", "created") and isinstance(value, dict | list):
                shown = "{…}" if isinstance(value, dict) else "[…]"  # as a nested value reads
            problems.append((label, f"{where}: expected {exc.expected}, got {shown}"))
            return None

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
            rows: list[Row] = self._typed.decode(chunk)
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
        raws = _RAWS.decode(chunk)
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
            else:
                row, problems = self.checked_row(_untyped(text), here)
                invalid.extend(Invalid(label, message) for label, message in problems)
                if len(outcomes) < _OUTCOMES_KEPT and all(m.startswith(here) for _, m in problems):
                    outcomes[text] = (here, row, problems)
            if row is not None:
                rows.append(row)
        return rows, invalid, len(raws)

    def typed(self, chunk: Buffer) -> list[Row]:
        """A whole array decoded typed (raises ``msgspec.ValidationError`` when it is not)."""
        rows: list[Row] = self._typed.decode(chunk)
        return rows

    async def pages(
        self, array: Buffer, *, where: Callable[[int], str], status: str | None = None
    ) -> AsyncIterator[Page]:
        """The rows of a JSON array, a chunk at a time; ``where(i)`` names row ``i``."""
        first = 0
        size = rows_module.CHUNK_BYTES  # read when called: a test may lower it
        for chunk in iter_array(array, size):
            try:
                rows: list[Row] = self._typed.decode(chunk)
            except msgspec.ValidationError:
                pass
            else:
                yield Page(rows, len(rows), status)
                first += len(rows)
                if len(chunk) >= size:
                    await asyncio.sleep(0)
                continue
            for piece in iter_array(chunk, CHECKED_BYTES):
                page = self.decode(piece, first=first, where=where, status=status)
                yield page
                first += page.read
                await asyncio.sleep(0)


_UNTYPED = msgspec.json.Decoder(float_hook=float)
"""A decoder reading a number beyond a float's range as infinite (which every reader
rejects, counting the field) instead of failing the chunk."""


_RAWS = msgspec.json.Decoder(list[msgspec.Raw])
_OUTCOMES_KEPT = 1024
"""Distinct rows of a checked piece whose outcome is remembered, for rows repeated exactly."""


def _untyped(chunk: Buffer) -> Any:
    """A chunk decoded without types; with :data:`_UNTYPED` (a Python call per float) only
    when the plain decode finds a number beyond a float's range."""
    try:
        return msgspec.json.decode(chunk)
    except msgspec.ValidationError:  # the only one an untyped decode raises
        return _UNTYPED.decode(chunk)


class CheckedRow:
    """A row read field by field (the typed decode rejected its chunk)."""

    __slots__ = (
        "created",
        "deadline",
        "executions",
        "id",
        "kind",
        "last_activity",
        "leases",
        "status",
    )

    def __init__(  # noqa: PLR0917 - the Row's attributes, in order
        self,
        id: str,
        status: str,
        created: datetime | None,
        deadline: datetime | None,
        last_activity: datetime | None,
        leases: int | None,
        kind: str | None,
        *,
        executions: int | None = None,
    ) -> None:
        self.id, self.status, self.created = id, status, created
        self.deadline, self.last_activity = deadline, last_activity
        self.leases, self.kind = leases, kind
        self.executions = executions


class CheckedRunRow(CheckedRow):
    """A checked row that also carries the run it executes (``fields.run_id``)."""

    __slots__ = ("run_id",)

    run_id: str | None


class _Unreadable(Exception):
    def __init__(self, expected: str) -> None:
        self.expected = expected


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _text(value: object, scale: float, required: bool) -> str | None:
    if value is None and not required:
        return None
    if isinstance(value, str) and (value or not required):
        return value
    raise _Unreadable("a non-empty string" if required else "a string")


def _time(value: object, scale: float, required: bool) -> datetime | None:
    if value is None and not required:
        return None
    if isinstance(value, str):
        try:
            return parse_datetime(value)
        except (ValueError, TypeError):
            pass
    number = _number(value)
    if number is not None and math.isfinite(number):
        try:
            return datetime.fromtimestamp(number / scale, UTC)
        except (OverflowError, OSError, ValueError):
            pass
    raise _Unreadable("an ISO-8601 timestamp or a number")


def _iso_time(value: object, scale: float, required: bool) -> datetime | None:
    if value is None and not required:
        return None
    if isinstance(value, str):
        try:
            return parse_datetime(value)
        except (ValueError, TypeError):
            pass
    raise _Unreadable("an ISO-8601 timestamp")


_AN_INTEGER = "an integer"
"""What a strict count expects of a value of another type (shown by its type, ``got str``)."""


def _strict_count(value: object, scale: float, required: bool) -> int | None:
    """A count as it comes: an integer (no string, number with a fraction or boolean)."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Unreadable(_AN_INTEGER)
    if value < 0:
        raise _Unreadable("a count of at least 0")
    return value


def _count(value: object, scale: float, required: bool) -> int | None:
    if value is None:
        return None
    number = _number(value)
    if number is None or not number.is_integer() or number < 0:
        raise _Unreadable("a count of at least 0")
    return int(number)


def _amount(value: object, scale: float, required: bool) -> float | None:
    if value is None:
        return None
    number = _number(value)
    if number is None or not math.isfinite(number):
        raise _Unreadable("a number")
    return number


def _integer(value: object, scale: float, required: bool) -> int | float | None:
    """A JSON integer (one beyond any float is no limit: infinite)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value if -(2**63) <= value < 2**64 else math.inf
    raise _Unreadable("an integer")


def _lenient_integer(value: object, scale: float, required: bool) -> int | float | None:
    """An integer, or one sent as text or as a whole number with a point (``2.0``): as the
    typed decode coerces it, unless strict."""
    whole = isinstance(value, float) and value.is_integer()  # inf and nan are not
    if whole or (isinstance(value, str) and value.strip().removeprefix("-").isdigit()):
        value = int(value)  # type: ignore[call-overload]
    return _integer(value, scale, required)


_READERS: dict[str, Callable[[object, float, bool], Any]] = {
    "id": _text,
    "status": _text,
    "text": _text,
    "created": _time,
    "time": _time,
    "count": _count,
    "number": _amount,
    "integer": _lenient_integer,
}


_STRICT_READERS: dict[str, Callable[[object, float, bool], Any]] = {
    "created": _iso_time,
    "time": _iso_time,
    "count": _strict_count,
    "integer": _integer,
}
"""The readers of ``time_unit: iso`` where they differ: values read as they come."""


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return type(value).__name__


def _shown(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "dict"
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return repr(clip(value, 60))
    return brief(value, limit=60)
