"""A provider as data: the model of one definition (``providers:`` in the config, and the
built-in ones in ``definitions/``), validated like the rest of the config.

The core keys are the contract's (docs/interface.md, "User-defined providers"); the few
extensions (``rows`` as several shapes, ``status_filter``, ``derived_status``,
``deadline``, ``options``, the ``last_id`` cursor, ``fields.executions``, ``errors``,
constant ``headers``, the ``rate_limit_reset`` unit, ``fields.run_id``, ``strict_has_next``,
``error_if_set``, ``answers`` with their own paging and ``reports``, ``paging.max_size``) are a
fixed set documented in docs/providers.md, "Defining a provider". Numbers sent as strings
are accepted, unless ``time_unit`` is ``iso`` (values are read as they come).
"""

from __future__ import annotations

import functools
import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails

from exporter.core.records import Phase
from exporter.providers.target import RESERVED_HEADERS, HttpUrl, Model

ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
"""A provider id: lower-case letters, digits, ``_`` and ``-`` (it is the ``provider`` label)."""

_HEADER = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
_ESCAPE = re.compile(r"~(?![01])")
LAST_ID = "last_id"
"""``paging.next: last_id``: the cursor is the id of the page's last row."""


def _pointer(value: str) -> str:
    if value and not value.startswith("/"):
        raise ValueError(
            f"{value!r} is not a JSON pointer (RFC 6901): write '/{value}' for a top-level key, "
            'or "" for the whole value'
        )
    if _ESCAPE.search(value):
        raise ValueError(f"{value!r}: '~' must be written '~0' and '/' inside a key '~1'")
    return value


Pointer = Annotated[str, AfterValidator(_pointer)]
"""An RFC 6901 JSON pointer: ``""`` (the whole value) or ``/key/nested``."""


@functools.lru_cache(maxsize=4096)  # a definition's few pointers, read on every page
def segments(pointer: str) -> tuple[str, ...]:
    """The keys a pointer walks, unescaped (``/a~1b/c`` -> ``("a/b", "c")``)."""
    if not pointer:
        return ()
    return tuple(p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/"))


def _one_or_more(value: object) -> object:
    return [value] if isinstance(value, str) else value


def _a_key(value: str) -> str:
    if not value:
        raise ValueError('a pointer to a key of the answer object (/detail), not ""')
    return value


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


def _header(value: str) -> str:
    if not _HEADER.fullmatch(value):
        raise ValueError(f"{value!r} is not an HTTP header name")
    return value


HeaderName = Annotated[str, AfterValidator(_header)]


def _header_text(value: str) -> str:
    """Text that may stand in a header value: no control characters (a tab aside)."""
    if re.search(r"[\x00-\x08\x0a-\x1f\x7f]", value):
        raise ValueError("may not hold a line break or another control character")
    return value


def _header_value(value: str) -> str:
    """A constant header's value: one line of text, not blank."""
    if not value.strip():
        raise ValueError("a header value may not be empty")
    return _header_text(value).strip()


HeaderValue = Annotated[str, Field(max_length=1024), AfterValidator(_header_value)]
"""A constant header value: one line of text, not blank (sent stripped)."""

ParamName = Annotated[str, Field(min_length=1, max_length=200)]


def _next(value: str) -> str:
    if value == LAST_ID:
        return value
    if value.startswith("header:"):
        _header(value.removeprefix("header:"))
        return value
    if not value.startswith("/"):
        raise ValueError(
            f"{value!r}: expected a JSON pointer into the answer (/nextCursor), "
            "header:NAME (a response header) or last_id (the id of the page's last row)"
        )
    return _pointer(value)


class Auth(Model):
    """How the key is sent: ``header: prefix<key>``."""

    header: HeaderName = "Authorization"
    prefix: Annotated[str, AfterValidator(_header_text)] | None = None
    """The text before the key; ``"Bearer "`` for ``Authorization``, else nothing."""

    def pair(self) -> tuple[str, str]:
        """The header and the prefix, with the default prefix filled in."""
        if self.prefix is not None:
            return self.header, self.prefix
        return self.header, "Bearer " if self.header.lower() == "authorization" else ""


_ONLY = {
    "cursor_param": "cursor",
    "next": "cursor",
    "offset_param": "offset",
    "page_param": "page",
    "first_page": "page",
}


class Paging(Model):
    """How the list is walked; see the contract for each style's keys."""

    style: Literal["none", "offset", "page", "cursor"] = "none"
    size_param: ParamName | None = None
    size: Annotated[int, Field(ge=1, le=100_000)] | None = None
    cursor_param: ParamName | None = None
    next: Annotated[str, AfterValidator(_next)] | None = None
    offset_param: ParamName | None = None
    total: Pointer | None = None
    page_param: ParamName | None = None
    first_page: Annotated[int, Field(ge=0)] | None = None
    has_next: Pointer | None = None
    strict_has_next: bool = False
    """``has_next`` alone ends the list (see :meth:`_strict_has_next`)."""
    max_size: Annotated[int, Field(ge=1, le=100_000)] | None = None
    """The largest size this API takes in this paging: a larger page size is sent as it."""

    @model_validator(mode="after")
    def _keys_fit_style(self) -> Paging:
        for key, style in _ONLY.items():
            if getattr(self, key) is not None and self.style != style:
                raise ValueError(f"{key} is a key of paging style {style}, not {self.style}")
        if self.style == "none" and (self.size_param or self.total or self.has_next):
            raise ValueError("paging style none takes no size_param, total or has_next")
        if (self.size_param is None) != (self.size is None):
            raise ValueError("size_param and size go together: the parameter and the size sent")
        if self.style == "cursor" and self.next is None:
            raise ValueError(
                "paging style cursor needs next: a JSON pointer, header:NAME or last_id"
            )
        if self.style == "cursor" and self.total is not None:
            raise ValueError("total is a key of paging styles offset and page, not cursor")
        if self.style == "offset" and self.has_next is not None:
            raise ValueError("has_next is a key of paging styles page and cursor, not offset")
        self._strict_has_next()
        return self

    def _strict_has_next(self) -> None:
        """``strict_has_next: true``: every object answer carries ``has_next`` as a boolean
        and it alone ends the list (a short or empty page does not); a bare array, which has
        no place for it, is the whole list."""
        if self.strict_has_next and (self.style != "page" or self.has_next is None):
            raise ValueError("strict_has_next needs paging style page with has_next")
        if self.strict_has_next and self.total is not None:
            raise ValueError("strict_has_next: has_next alone ends the list, give no total")

    @model_validator(mode="after")
    def _max_size_fits(self) -> Paging:
        if self.max_size is not None and self.size_param is None:
            raise ValueError(
                "max_size caps the size sent in size_param: give size_param and size too"
            )
        return self

    def sent_size(self, page_size: int | None) -> int | None:
        """The size a page asks for: ``page_size`` (else ``size``), at most ``max_size``."""
        size = page_size or self.size
        if size is not None and self.max_size is not None:
            return min(size, self.max_size)
        return size

    @property
    def cursor_name(self) -> str:
        """The parameter the cursor is sent in."""
        return self.cursor_param or "cursor"

    @property
    def offset_name(self) -> str:
        """The parameter the offset is sent in."""
        return self.offset_param or "offset"

    @property
    def page_name(self) -> str:
        """The parameter the page number is sent in."""
        return self.page_param or "page"

    @property
    def first(self) -> int:
        """The first page's number."""
        return 1 if self.first_page is None else self.first_page


class Fields(Model):
    """Where each fact is in a row: JSON pointers (RFC 6901)."""

    id: Pointer
    status: Pointer | None = None
    created: Pointer
    deadline: Pointer | None = None
    last_activity: Pointer | None = None
    leases: Pointer | None = None
    kind: Pointer | None = None
    executions: Pointer | None = None
    """A count of work done in the session (code executions), summed into
    ``sessions_executions``."""
    run_id: Pointer | None = None
    """The run the session executes now: the ``run_id`` label of ``session_info``, read
    only by a target with ``per_session`` on (the others decode rows without it)."""


class StatusFilter(Model):
    """The API's own status filter, used while a target counts only active statuses
    (``only_active: true``): the statuses of phase pending and live are asked for."""

    param: ParamName
    join: Literal["each", "comma", "repeat"] = "each"
    """One listing per status (``each``), one listing with ``a,b`` (``comma``), or with the
    parameter repeated (``repeat``)."""
    case: Literal["lower", "upper"] = "lower"
    """How the status is written in the parameter."""
    flag: bool = False
    """The API's own boolean: ``param=true`` while ``only_active``, else ``param=false``."""
    statuses: (
        Annotated[list[Annotated[str, BeforeValidator(_lower)]], Field(min_length=1)] | None
    ) = None
    """The statuses ``only_active`` counts (and asks for); default: phase pending and live."""

    @model_validator(mode="after")
    def _flag_alone(self) -> StatusFilter:
        if self.flag and {"join", "case"} & self.model_fields_set:
            raise ValueError("flag sends param=true or param=false: give no join or case")
        return self


class DerivedStatus(Model):
    """A status the row does not carry: a constant, or one of two by whether a field is set."""

    constant: Annotated[str, Field(min_length=1)] | None = None
    set: Pointer | None = None
    then: Annotated[str, Field(min_length=1)] | None = None
    otherwise: Annotated[str, Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _one_rule(self) -> DerivedStatus:
        if self.constant is not None and (self.set or self.then or self.otherwise):
            raise ValueError("give either constant, or set with then and otherwise")
        if self.constant is None and (self.set is None or not self.then or not self.otherwise):
            raise ValueError("give either constant, or set with then and otherwise")
        return self


Unit = Literal["ms", "s", "min", "h"]
UNIT_SECONDS: dict[str, float] = {"ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0}


class DeadlineTerm(Model):
    """One candidate deadline: a time, plus an optional amount read from the row.

    Absent when its time is absent, when ``plus`` is absent and has no ``default``, when
    ``positive`` and the amount is not above 0, or when the row's status is not one of
    ``statuses``.
    """

    time: Pointer
    plus: (
        Annotated[list[Pointer], BeforeValidator(_one_or_more), Field(min_length=1, max_length=4)]
        | None
    ) = None
    """Where the amount is; several pointers: the first one set (not null) is the amount."""
    integer: bool = False
    """The amount is a JSON integer (anything else there is an unreadable value)."""
    unit: Unit = "s"
    default: Annotated[float, Field(allow_inf_nan=False)] | None = None
    positive: bool = False
    statuses: (
        Annotated[list[Annotated[str, BeforeValidator(str.lower)]], Field(min_length=1)] | None
    ) = None

    @model_validator(mode="after")
    def _default_needs_plus(self) -> DeadlineTerm:
        if self.plus is None and self.default is not None:
            raise ValueError("default is the amount when plus is null: give plus too")
        if self.plus is None and self.integer:
            raise ValueError("integer says what the amount in plus is: give plus too")
        return self


class Deadline(Model):
    """A deadline computed from fields: the earliest of ``earliest``, none when any field of
    ``unless_set`` is set."""

    earliest: Annotated[list[DeadlineTerm], Field(min_length=1, max_length=8)]
    unless_set: Annotated[list[Pointer], Field(max_length=8, default_factory=list)]


class TargetOption(Model):
    """A target key the definition adds, sent on every request as a header or as a query
    parameter (``true``/``false`` for a ``boolean`` one); not sent when the target has none."""

    header: HeaderName | None = None
    query: ParamName | None = None
    type: Literal["text", "boolean"] = "text"

    @model_validator(mode="after")
    def _one_place(self) -> TargetOption:
        if (self.header is None) == (self.query is None):
            raise ValueError("give header: NAME or query: PARAM, exactly one")
        return self


def _listed(value: object) -> object:
    return [value] if isinstance(value, str) else value


Fact = Literal["deadlines", "leases", "activity", "executions"]
"""An optional fact a row may carry (its metrics are absent when no answer reports it)."""
FACT_FIELDS: dict[str, str] = {
    "deadlines": "deadline",
    "leases": "leases",
    "activity": "last_activity",
    "executions": "executions",
}
"""Each fact and the field of ``fields`` it is read from."""


class Answer(Model):
    """One shape the list's answers may have: where its rows are, how a list answered in
    this shape is paged, and which optional facts its answers carry."""

    rows: Pointer
    paging: Paging = Paging()
    reports: list[Fact] | None = None
    """The facts this shape reports (default: every fact the fields give); another fact is
    reported only when a row of the walk carries it."""

    @model_validator(mode="after")
    def _walks_on(self) -> Answer:
        p = self.paging
        if p.style == "page" or (p.style == "offset" and p.total is None):
            raise ValueError(
                f"paging style {p.style}"
                + (" without total" if p.style == "offset" else "")
                + " cannot go on from an answer of this shape: an answer is paged by style "
                "none, cursor, or offset with total"
            )
        return self


def _answers_fill(data: object) -> object:
    """``answers`` given: ``rows`` and ``paging`` are theirs (the first answer's paging is
    the first request's), never written beside them."""
    if not isinstance(data, dict) or data.get("answers") is None:
        return data
    beside = [key for key in ("rows", "paging") if key in data]
    if beside:
        raise ValueError(
            f"{' and '.join(beside)} beside answers: give rows and paging inside each answer"
        )
    answers = data["answers"]
    try:  # filled only from valid answers: the answers' own errors say what is wrong, once
        valid = [Answer.model_validate(a) for a in answers]
    except (ValidationError, TypeError):
        valid = []
    if not valid:
        return data | {"rows": [""]}
    return data | {"rows": [a.rows for a in valid], "paging": valid[0].paging}


Loc = tuple[str | int, ...]
"""Where a problem is, below the definition (``()``: the definition itself)."""


def _dotted(loc: Loc) -> str:
    """A key as written in a message: ``answers[1].paging.next``."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def _nested(one: str, other: str) -> bool:
    """Whether two pointers are equal or one is inside the other."""
    return one == other or one.startswith(other + "/") or other.startswith(one + "/")


def _paging_places(at: Loc, paging: Paging) -> list[tuple[Loc, str | None]]:
    """The pointers a paging reads from an answer, each with its key."""
    places: list[tuple[Loc, str | None]] = [
        ((*at, "total"), paging.total),
        ((*at, "has_next"), paging.has_next),
    ]
    if paging.next is not None and paging.next.startswith("/"):
        places.append(((*at, "next"), paging.next))
    return places


def _lower_keys(value: object) -> object:
    if isinstance(value, dict):
        return {str(k).strip().lower(): v for k, v in value.items()}
    return value


class Definition(Model):
    """One provider, as data."""

    base_url: HttpUrl | None = None
    path: Annotated[str, Field(pattern=r"^/")]
    auth: Auth = Auth()
    query: dict[ParamName, str] = Field(default_factory=dict)
    paging: Paging = Paging()
    rows: Annotated[list[Pointer], BeforeValidator(_listed), Field(min_length=1, max_length=4)]
    """Where the rows array is; several pointers: the answer may have any of these shapes."""
    fields: Fields
    time_unit: Literal["s", "ms", "iso"] = "s"
    """What a number in a time field counts (``iso``: times are ISO-8601 strings only, a
    number there is an invalid value, and no value is coerced from a string)."""
    statuses: Annotated[dict[str, Phase], BeforeValidator(_lower_keys), Field(default_factory=dict)]
    status_filter: StatusFilter | None = None
    derived_status: DerivedStatus | None = None
    deadline: Deadline | None = None
    options: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")], TargetOption] = Field(
        default_factory=dict
    )
    errors: Pointer | None = None
    """Where a 2xx answer lists upstream errors beside its rows (an array of strings or of
    objects with a ``message``): counted, the first ten logged, the first quoted when the
    rows are missing."""
    headers: dict[HeaderName, HeaderValue] = Field(default_factory=dict)
    """Constant headers sent with every request (an API-version header, say)."""
    rate_limit_reset: Literal["auto", "epoch_ms"] = "auto"
    """What a rate-limit reset header counts: ``auto`` (above 1e9 a unix time in seconds,
    else seconds from now), ``epoch_ms`` (a unix time in milliseconds)."""
    error_if_set: Annotated[Pointer, AfterValidator(_a_key)] | None = None
    """Where a 2xx answer (an object) says it is an error: present and not null, false or
    empty there, the poll fails as ``schema`` with the body read by the provider's error
    reader. Its own place: neither the rows', a paging value's nor ``errors``'."""
    answers: Annotated[list[Answer], Field(min_length=1, max_length=4)] | None = None
    """The shapes the answers may have, each with its own paging and facts (instead of
    ``rows`` and ``paging``): the first answer's shape picks the walk."""

    @model_validator(mode="before")
    @classmethod
    def _answers_give_rows(cls, data: object) -> object:
        return _answers_fill(data)

    @field_validator("errors")
    @classmethod
    def _errors_apart(cls, where: str | None) -> str | None:
        """``errors`` names its own place: not the whole answer (its overlaps with the other
        places read are :meth:`_places_apart`'s)."""
        if where == "":
            raise ValueError(
                '"" is the whole answer: give the pointer of the errors array (/errors)'
            )
        return where

    @model_validator(mode="after")
    def _fits(self) -> Definition:
        """Every problem of the definition as a whole, all reported at once, each located at
        its key (at the definition when it is about several keys)."""
        problems: list[tuple[Loc, str]] = [
            *(((), p) for p in self._answers_fit()),
            *(((), p) for p in self._consistent()),
            *self._places_apart(),
            *(((), p) for p in self._headers_fit()),
            *self._options_fit(),
        ]
        if problems:
            raise ValidationError.from_exception_data(
                "Definition",
                [
                    InitErrorDetails(
                        type="value_error", loc=loc, input=None, ctx={"error": ValueError(m)}
                    )
                    for loc, m in problems
                ],
            )
        return self

    def _answers_fit(self) -> list[str]:
        """Each answer's rows in their own place, and its reports read by the fields."""
        problems: list[str] = []
        seen: set[str] = set()
        for i, answer in enumerate(self.answers or ()):
            if answer.rows in seen:
                problems.append(f"answers[{i}].rows: {answer.rows!r} is given twice")
            seen.add(answer.rows)
            problems += [
                f"answers[{i}].reports: {fact}, but the definition reads no "
                f"{FACT_FIELDS[fact]} (fields.{FACT_FIELDS[fact]})"
                for fact in answer.reports or ()
                if getattr(self.fields, FACT_FIELDS[fact]) is None
                and (fact != "deadlines" or self.deadline is None)
            ]
        return problems

    def _consistent(self) -> list[str]:
        problems: list[str] = []
        if self.fields.status is not None and self.derived_status is not None:
            problems.append("give the status as fields.status or as derived_status, not both")
        if self.from_listing and (self.status_filter is None or self.status_filter.join != "each"):
            problems.append(
                "rows without a status need fields.status (a pointer), derived_status, or a "
                "status_filter with join: each (each listing's status is its rows' status)"
            )
        if self.fields.deadline is not None and self.deadline is not None:
            problems.append("give the deadline as fields.deadline or as deadline, not both")
        if self.status_filter is not None and not any(
            p in (Phase.PENDING, Phase.LIVE) for p in self.statuses.values()
        ):
            problems.append("status_filter needs statuses of phase pending or live to ask for")
        last_id = any(p.next == LAST_ID for _, p in self._pagings())
        if last_id and self.fields.id.count("/") != 1:
            problems.append("next: last_id needs fields.id to be a top-level key (/id)")
        return problems + self._flag_filter()

    def _pagings(self) -> list[tuple[Loc, Paging]]:
        """Each paging the definition walks by, with its key."""
        if self.answers is None:
            return [(("paging",), self.paging)]
        return [(("answers", i, "paging"), a.paging) for i, a in enumerate(self.answers)]

    def _places_apart(self) -> list[tuple[Loc, str]]:
        """The places one answer is read at (its rows, its paging's values, ``errors``,
        ``error_if_set``) are neither equal nor nested in one another: each overlap located
        at the later key, naming the earlier (answers of two shapes may share a place)."""
        shared = [
            (at, p)
            for at, p in ((("errors",), self.errors), (("error_if_set",), self.error_if_set))
            if p
        ]
        groups: list[list[tuple[Loc, str | None]]] = []
        for i, rows in enumerate(self.rows if self.answers is None else ()):
            at: Loc = ("rows", i) if len(self.rows) > 1 else ("rows",)
            groups.append([(at, rows), *_paging_places(("paging",), self.paging), *shared])
        for i, answer in enumerate(self.answers or ()):
            groups.append(
                [
                    (("answers", i, "rows"), answer.rows),
                    *_paging_places(("answers", i, "paging"), answer.paging),
                    *shared,
                ]
            )
        problems: list[tuple[Loc, str]] = []
        for group in groups:
            places = [(at, p) for at, p in group if p]  # "" (a bare array) holds nothing else
            for j, (at, pointer) in enumerate(places):
                for other_at, other in places[:j]:
                    if not _nested(pointer, other):
                        continue
                    problem = (
                        at,
                        f"{pointer} overlaps {_dotted(other_at)} ({other}): "
                        "give each its own place",
                    )
                    if problem not in problems:
                        problems.append(problem)
        return problems

    def _headers_fit(self) -> list[str]:
        """A constant header is neither the key's header nor given twice (in any case)."""
        problems: list[str] = []
        key_header = self.auth.pair()[0].lower()
        seen: dict[str, str] = {}
        for name in self.headers:
            lower = name.lower()
            if lower == key_header:
                problems.append(
                    f"headers: {name!r} is the header the key is sent in (auth.header); "
                    "a definition never holds a key"
                )
            elif lower in RESERVED_HEADERS:
                problems.append(
                    f"headers: {name!r} is set by the exporter or its HTTP client, "
                    "never by a definition"
                )
            elif lower in seen:
                problems.append(f"headers: {name!r} is given twice (as {seen[lower]!r})")
            elif any(
                option.header is not None and lower == option.header.lower()
                for option in self.options.values()
            ):
                problems.append(f"headers: {name!r} is also the header of an option")
            seen.setdefault(lower, name)
        return problems

    def _sent_params(self) -> dict[str, str]:
        """Each query parameter the definition sends itself, and the key that sends it."""
        sent = {name: f"query.{name}" for name in self.query}
        for at, paging in self._pagings():
            key = _dotted(at)
            if paging.size_param is not None:
                sent.setdefault(paging.size_param, f"{key}.size_param")
            name = {
                "cursor": paging.cursor_name,
                "offset": paging.offset_name,
                "page": paging.page_name,
            }.get(paging.style)
            if name is not None:
                sent.setdefault(name, f"{key}.{paging.style}_param")
        if self.status_filter is not None:
            sent.setdefault(self.status_filter.param, "status_filter.param")
        return sent

    def _options_fit(self) -> list[tuple[Loc, str]]:
        """An option's query parameter is none the definition sends, its header neither the
        key's nor one the exporter sets, and no two options share one (an option's header
        that is also a constant header is :meth:`_headers_fit`'s)."""
        problems: list[tuple[Loc, str]] = []
        sent = self._sent_params()
        key_header = self.auth.pair()[0].lower()
        headers: dict[str, str] = {}
        for name, option in self.options.items():
            if option.query is not None:
                if option.query in sent:
                    problems.append(
                        (
                            ("options", name, "query"),
                            f"{option.query!r} is already sent by the definition "
                            f"({sent[option.query]}): give the option a parameter of its own",
                        )
                    )
                sent.setdefault(option.query, f"options.{name}.query")
            if option.header is None:
                continue
            lower = option.header.lower()
            if lower == key_header:
                problem = (
                    f"{option.header!r} is the header the key is sent in (auth.header); "
                    "an option never replaces it"
                )
            elif lower in RESERVED_HEADERS:
                problem = (
                    f"{option.header!r} is set by the exporter or its HTTP client, "
                    "never by an option"
                )
            elif lower in headers:
                problem = f"{option.header!r} is also the header of {headers[lower]}"
            else:
                headers[lower] = f"options.{name}.header"
                continue
            problems.append((("options", name, "header"), problem))
        return problems

    def _flag_filter(self) -> list[str]:
        """A boolean status flag needs rows with a status; ``statuses`` are listed ones."""
        flt = self.status_filter
        if flt is None:
            return []
        problems: list[str] = []
        if flt.flag and self.from_listing:
            problems.append(
                "status_filter with flag: true needs fields.status or derived_status "
                "(the rows of one listing may have any status)"
            )
        unknown = [s for s in flt.statuses or () if s not in self.statuses]
        if unknown:
            problems.append(
                f"status_filter.statuses: {', '.join(map(repr, unknown))} not among statuses"
            )
        return problems

    @property
    def from_listing(self) -> bool:
        """Whether a row's status is the one its listing asked for (the rows have none)."""
        return self.fields.status is None and self.derived_status is None

    @property
    def shapes(self) -> tuple[str, ...]:
        """The accepted places of the rows array, in order."""
        return tuple(self.rows)

    def answer(self, shape: str) -> Answer | None:
        """The answer whose rows are at ``shape`` (``None`` without ``answers``)."""
        return next((a for a in self.answers or () if a.rows == shape), None)

    @property
    def active(self) -> dict[str, Phase]:
        """The statuses of phase pending and live (what ``only_active`` counts), or those
        the status filter lists."""
        listed = self.status_filter.statuses if self.status_filter else None
        if listed is not None:
            return {s: self.statuses[s] for s in listed}
        return {s: p for s, p in self.statuses.items() if p in (Phase.PENDING, Phase.LIVE)}
