"""One provider driven by a definition: its target model, its listings and its page walks.

A definition says where the rows are and how the list is paged; this module walks it with
the guards every provider has (the fetcher's ``max_pages``,
``max_response_bytes``, retries, redirects and rate limit; :class:`RepeatGuard` for a page
served again, and a cursor followed twice in one listing; invalid rows counted per field).
A page is decoded typed in one C call when it is small and valid, else its rows a chunk at a
time as they are counted.

Listings (one per status where the API filters by one) run side by side; every request
of a poll shares ``page_concurrency`` slots. Offset and page styles that learn the total
from the first page fetch the rest up to ``page_concurrency`` at a time, consumed in order.
"""

from __future__ import annotations

import asyncio
import difflib
import functools
import math
import operator
import re
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from types import MappingProxyType
from typing import Annotated, Any, ClassVar

import msgspec
from pydantic import ConfigDict, Field, PrivateAttr, field_validator, model_validator

from exporter.core.records import Phase
from exporter.providers import envelope, upstream_errors, wire
from exporter.providers import rows as rows_module
from exporter.providers.base import Capabilities, Provider
from exporter.providers.catalog import BUILTIN
from exporter.providers.definition import FACT_FIELDS, LAST_ID, Definition, Paging, segments
from exporter.providers.paging import RepeatGuard, Window, merged
from exporter.providers.rows import Buffer, Page, raw_kind
from exporter.providers.schema import RowSchema
from exporter.providers.target import TargetBase
from exporter.upstream.errors import PollError, SchemaError, clip
from exporter.upstream.fetch import Answer, PageFetcher

USER_DEFINITIONS: ContextVar[Mapping[str, Definition | None]] = ContextVar(
    "user_definitions", default=MappingProxyType({})
)
"""The config's own definitions while it is validated (an id whose definition is broken
maps to ``None``: known, so its targets are not reported a second time)."""


CODED_IDS: list[str] = []
"""The ids of the providers with a module of their own (filled in by the package; each
a seed definition with its own target model), for "did you mean"."""


def known_ids() -> list[str]:
    """The provider ids a defined target may name now: built-in definitions and the config's."""
    return [*BUILTIN, *USER_DEFINITIONS.get()]


class DefinedTarget(TargetBase):
    """A target of a provider given as a definition (built-in, or the config's own).

    Besides every common target key: ``only_active`` (ask the API for the statuses of phase
    pending and live only, where the definition has a ``status_filter``),
    ``page_concurrency``, and the options the definition adds (sent as headers or query
    parameters).
    """

    model_config = ConfigDict(extra="allow", frozen=True)
    default_base_url: ClassVar[str] = ""

    provider: str
    only_active: bool = True
    page_concurrency: Annotated[int, Field(ge=1, le=32)] = 4
    page_size: Annotated[int, Field(ge=1)] | None = None
    """Rows asked for a page, at most the definition's ``paging.size`` (its default)."""
    _definition: Definition | None = PrivateAttr(default=None)

    @field_validator("provider")
    @classmethod
    def _known(cls, value: str) -> str:
        known = known_ids()
        if value not in known:
            every = [*CODED_IDS, *known]
            folded = {k.lower(): k for k in every}
            near = difflib.get_close_matches(value.lower(), list(folded), n=1, cutoff=0.6)
            near = [folded[n] for n in near]
            hint = f"did you mean {near[0]}? " if near else ""
            raise ValueError(
                f"unknown provider {value!r}: {hint}use one of {', '.join(every)}, "
                "or define it under providers:"
            )
        return value

    @model_validator(mode="after")
    def _fits_definition(self) -> DefinedTarget:
        user = USER_DEFINITIONS.get()
        if self.provider in user:
            found = user[self.provider]
            if found is None:
                return self  # its definition's problems are reported there
            self._definition = found
        definition = self.definition
        problems = []
        for key, value in (self.__pydantic_extra__ or {}).items():
            if key not in definition.options:
                offered = ", ".join(sorted(definition.options)) or "none"
                problems.append(
                    f"unknown key {key!r} for provider {self.provider} (its own options: {offered})"
                )
            elif definition.options[key].type == "boolean":
                if not isinstance(value, bool):
                    problems.append(f"{key} must be true or false")
            elif not isinstance(value, str) or not value.strip() or "\n" in value or "\r" in value:
                problems.append(f"{key} must be one line of text")
        key_header = definition.auth.pair()[0]
        problems += [
            f"headers: header {name!r} carries the provider's key: set it with api_key, "
            "api_key_env or api_key_file, never in headers"
            for name in self.headers
            if name.lower() == key_header.lower()
        ]
        if "only_active" in self.model_fields_set and definition.status_filter is None:
            problems.append(
                f"only_active: provider {self.provider} has no status filter, it counts "
                "every status its list returns"
            )
        size = definition.paging.size
        if self.page_size is not None and size is None:
            problems.append(f"page_size: provider {self.provider} sends no page size")
        elif self.page_size is not None and size is not None and self.page_size > size:
            problems.append(f"page_size: at most {size}, the largest page of {self.provider}")
        if self.base_url is None and definition.base_url is None:
            problems.append(
                f"base_url is required: provider {self.provider} has no default base_url"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def definition(self) -> Definition:
        """The definition this target is polled by (while the config is validated, before it
        is attached: the one being validated with it)."""
        if self._definition is not None:
            return self._definition
        found = USER_DEFINITIONS.get().get(self.provider)
        return found if found is not None else BUILTIN[self.provider]

    @property
    def url(self) -> str:
        """The server url: ``base_url`` or the definition's (``""`` while it has none)."""
        if self.base_url:
            return self.base_url
        try:
            return self.definition.base_url or ""
        except KeyError:  # a broken definition: reported under providers
            return ""

    def option(self, name: str) -> str | None:
        """A definition option's value, as the target gives it."""
        value = (self.__pydantic_extra__ or {}).get(name)
        if isinstance(value, bool):
            return _rendered(value)
        return value.strip() if isinstance(value, str) else None


class SeededTarget(TargetBase):
    """The target of a seed provider polled by its definition (see ``catalog.SEEDS``): its
    keys stay those it had when hand-written, the engine's own settings are fixed here."""

    only_active: ClassVar[bool] = False
    page_concurrency: ClassVar[int] = 1
    page_size: ClassVar[int | None] = None

    def option(self, name: str) -> str | None:
        """A definition option's value: the target's key of that name (``None``: not sent)."""
        return key_option(self, name)


def key_option(target: TargetBase, name: str) -> str | None:
    """A seed target's key as a definition option's value (``None``: not sent); for a
    seed target model that keeps engine settings of its own as keys (Notte's)."""
    value = getattr(target, name, None)
    if isinstance(value, bool):
        return _rendered(value)
    return value.strip() if isinstance(value, str) else None


def _rendered(value: bool) -> str:
    """A boolean option as it is sent."""
    return "true" if value else "false"


EngineTarget = DefinedTarget | SeededTarget
"""A target the engine polls."""


@dataclass(frozen=True, slots=True)
class _Fetched:
    """One answer, fetched: its rows decoded already (small and valid), or their bytes."""

    key: int
    body: bytes
    rows: list[Any] | None
    array: Buffer
    shape: str
    meta: dict[str, Any]
    headers: Mapping[str, str]
    errors: msgspec.Raw | None = None
    """The errors array the answer lists beside its rows (a definition's ``errors``), raw."""

    def exact(self) -> Buffer:
        """The bytes of the rows array (what :class:`RepeatGuard` compares)."""
        if self.rows is None:
            return self.array
        return _locate(self.body, (self.shape,))[0]


_Carried = tuple[str, Callable[[Any], Any]]
"""A fact a row may carry, and how to read it from a row."""
_Plan = tuple[Paging, frozenset[str], tuple[_Carried, ...], tuple[str, ...]]
"""An answer's paging, the facts it reports, the other facts a row may carry, the shapes'
order."""
_REPORTED: dict[tuple[Capabilities, frozenset[str]], Capabilities] = {}
"""The facts a walk reported, as capabilities (a few combinations, each built once)."""
_MISSING = object()
_RAW = object()
"""A value of the answer left raw (see :func:`envelope_type`)."""
_NO_HEADERS: Mapping[str, str] = MappingProxyType({})


def _objects_along(top: Mapping[str, msgspec.Raw], path: Sequence[str], answer: str) -> None:
    """Raise when a value ``path`` passes through is neither an object nor null
    (``pagination: []`` where ``/pagination/next`` is read)."""
    value: Any = top
    for i, key in enumerate(path[:-1]):
        if i:
            value = envelope.decode_object(bytes(value), answer)
        if key not in value:
            return
        value = value[key]
        head = bytes(value).lstrip()[:1]
        if head == b"n":
            return
        if head != b"{":
            where = answer + "".join(f".{k}" for k in path[: i + 1])
            raise SchemaError(f"{where}: expected an object, got {raw_kind(bytes(value))}")


def _walk_raw(top: Mapping[str, msgspec.Raw], path: Sequence[str]) -> Any:
    """The raw value at ``path`` below a decoded top object (``_MISSING`` when absent)."""
    value: Any = top
    for i, key in enumerate(path):
        if i:
            if bytes(memoryview(value)[:1]) != b"{":  # a raw value starts at its first byte
                return _MISSING
            value = envelope.decode_object(value, "response")  # read in place, not copied
        if key not in value:
            return _MISSING
        value = value[key]
    return value


def _locate(
    body: bytes,
    shapes: Sequence[str],
    answer: str = "response",
    named: Sequence[str] | None = None,
) -> tuple[Buffer, str, dict[str, Any] | None]:
    """The rows array of an answer (the first shape it has), that shape, and its top object;
    ``answer`` names the answer in a schema error, which names the first of ``named`` (the
    definition's shapes; default ``shapes``) as the one expected."""
    top = envelope.decode_any(body)
    if isinstance(top, bytes):
        if "" in shapes:
            return memoryview(top), "", None
        raise SchemaError(f"{answer}: expected an object, got {raw_kind(top)}")
    for shape in shapes:
        if not shape:
            continue
        found = _walk_raw(top, segments(shape))
        if found is not _MISSING:
            where = answer + _dotted(shape)
            return envelope.array(found, where), shape, top
    first = next((s for s in (shapes if named is None else named) if s), None)
    if first is None:  # only a bare array is accepted
        raise SchemaError(f"{answer}: expected an array, got {type(top).__name__}")
    raise _missing(top, first, answer)


def _missing(top: Mapping[str, msgspec.Raw], pointer: str, answer: str) -> SchemaError:
    """Why an answer has no rows at ``pointer``: an object on the way that is null, absent
    or of another type (``response.data: expected an object, got null``), or the array's
    key missing."""
    path = segments(pointer)
    value = top
    for depth, key in enumerate(path[:-1]):
        value = envelope.obj(value.get(key), answer + _dotted("/" + "/".join(path[: depth + 1])))
    where = answer + _dotted(pointer)
    return SchemaError(f"{where}: expected an array, got nothing (the key is missing)")


def _dotted(pointer: str) -> str:
    """A pointer as a place's tail: ``/data/items`` -> ``.data.items`` (``""``: itself)."""
    return "".join(f".{key}" for key in segments(pointer))


def _meta_value(
    top: Mapping[str, msgspec.Raw] | None, pointer: str, answer: str = "response"
) -> Any:
    """A decoded value at ``pointer`` in the answer (``_MISSING`` when absent, or below a
    null); below a value that is no object, a schema error."""
    if top is None:
        return _MISSING
    _objects_along(top, segments(pointer), answer)
    found = _walk_raw(top, segments(pointer))
    if found is _MISSING:
        return _MISSING
    return _UNTYPED.decode(found)


_UNTYPED = msgspec.json.Decoder(float_hook=float)
"""An untyped decoder reading a number beyond a float's range as infinite (the default
raises ``Number out of range``); every reader rejects an infinite value."""


class DefinedProvider(Provider[EngineTarget]):
    """The engine: one class per definition (see :func:`provider_class`)."""

    definition: ClassVar[Definition]
    schema: RowSchema
    """The row schema this provider decodes with (the class's: without ``run_id``)."""
    _envelopes: dict[str, msgspec.json.Decoder[Any]]
    _error_at: ClassVar[tuple[str, ...] | None]
    """The keys ``error_if_set`` walks."""
    rows_label: ClassVar[str] = "rows"
    """What an invalid row's place starts with in a log (``rows[3]``)."""
    run_schema: ClassVar[RowSchema | None] = None
    """The schema that reads ``fields.run_id`` too, used by a ``per_session`` target."""
    _run_envelopes: ClassVar[dict[str, msgspec.json.Decoder[Any]]] = {}
    _plans: ClassVar[dict[str, _Plan]] = {}
    """With ``answers``: each shape's paging, the facts it reports, the other facts a row
    may carry (and how to read them), and the order shapes are tried in once it is known."""
    _reads: ClassVar[dict[str, tuple[tuple[str, ...], tuple[tuple[str, tuple[str, ...]], ...]]]]
    """Each shape's rows and the paging values it is read for, as the attributes of its
    envelope struct (found once): with ``answers``, an answer's own paging's values."""
    cursor_loop_is_schema: ClassVar[bool] = False
    """Whether a cursor walk answered with its previous page and cursor again fails as the
    repeated cursor (``schema``) rather than as the repeated page (``too_many_pages``)."""
    paging_first: ClassVar[bool] = False
    """Whether a numbered page's query starts with its paging parameters (the page, then
    the size), before the listing's own: the order a seed provider always sent."""

    def __init__(self, target: EngineTarget) -> None:
        super().__init__(target)
        self._slots: asyncio.Semaphore | None = None
        self._known: dict[tuple[tuple[str, str], ...], int] = {}
        """Pages the previous complete walk of each listing took: how far to fetch ahead."""
        if self.run_schema is not None and target.per_session.enabled:
            self.schema = self.run_schema
            self._envelopes = self._run_envelopes
        self._order: tuple[str, ...] = ()
        """The shapes in the order an answer is tried (the walk's own first, once known)."""
        self._facts: set[str] = set()
        """The facts this poll's answers reported (a definition with ``answers``)."""
        self._steps: dict[tuple[tuple[str, str], ...], int] = {}
        """Rows the server served a page in the previous offset walk with a total."""

    def statuses(self) -> Mapping[str, Phase]:
        d = self.definition
        if d.status_filter is not None and self.target.only_active:
            return d.active
        return d.statuses

    def counts_only_listed(self) -> bool:
        d = self.definition
        return d.status_filter is not None and self.target.only_active and not d.from_listing

    def request_headers(self) -> Mapping[str, str]:
        out = dict(self.definition.headers)
        for name, option in self.definition.options.items():
            value = self.target.option(name)
            if value and option.header is not None:
                out[option.header] = value
        return out

    def option_query(self) -> list[tuple[str, str]]:
        """The query parameters of the target's options (sent on every request)."""
        out = []
        for name, option in self.definition.options.items():
            value = self.target.option(name)
            if value and option.query is not None:
                out.append((option.query, value))
        return out

    def auth(self) -> tuple[str, str]:
        return self.definition.auth.pair()

    def listings(self) -> list[tuple[list[tuple[str, str]], str | None]]:
        """The query of each listing a poll makes (fixed parameters first), and the status
        its rows have when they carry none."""
        d = self.definition
        flt = d.status_filter
        if flt is not None and flt.flag:  # the API's own boolean, always sent
            flag = (flt.param, _rendered(self.target.only_active))
            return [([*d.query.items(), flag, *self.option_query()], None)]
        fixed = [*d.query.items(), *self.option_query()]
        if flt is None or (not self.target.only_active and not d.from_listing):
            return [(fixed, None)]
        wanted = d.active if self.target.only_active else d.statuses
        values = [s.upper() if flt.case == "upper" else s for s in wanted]
        if flt.join == "each":
            given = d.from_listing
            return [
                ([*fixed, (flt.param, v)], s if given else None)
                for s, v in zip(wanted, values, strict=True)
            ]
        if flt.join == "comma":
            return [([*fixed, (flt.param, ",".join(values))], None)]
        return [([*fixed, *((flt.param, v) for v in values)], None)]

    def pages(self, fetcher: PageFetcher) -> AsyncIterator[Page]:
        listings = self.listings()
        # one listing keeps within page_concurrency by itself: no slots to take per page
        slots = len(listings) > 1
        self._slots = asyncio.Semaphore(self.target.page_concurrency) if slots else None
        self._facts = set()
        walks = [self._walk(fetcher, query, status) for query, status in listings]
        return walks[0] if len(walks) == 1 else merged(walks)  # one walk: no layer between

    def reported(self) -> Capabilities:
        """The facts the last walk's answers carried: with ``answers``, those its answers'
        shapes report, and any other whose field a row of the walk had."""
        if self.definition.answers is None:
            return self.capabilities
        facts = frozenset(self._facts)
        found = _REPORTED.get((self.capabilities, facts))
        if found is None:
            c = self.capabilities
            found = _REPORTED[c, facts] = Capabilities(
                deadlines=c.deadlines and "deadlines" in facts,
                leases=c.leases and "leases" in facts,
                activity=c.activity and "activity" in facts,
                executions=c.executions and "executions" in facts,
            )
        return found

    def cursor_missing(self, where: str, number: int, paging: Paging) -> SchemaError:
        """The error of page ``number`` (placed at ``where``) whose ``has_next`` says the
        list goes on while it gives no next cursor."""
        assert paging.next is not None
        assert paging.has_next is not None
        nxt = paging.next
        at = where + (_dotted(nxt) if nxt.startswith("/") else f" ({nxt})")
        flag = ".".join(segments(paging.has_next))
        return SchemaError(f"{at}: expected a cursor while {flag} says there is more, got none")

    def listing_place(self, query: Sequence[tuple[str, str]]) -> str:
        """How a listing is named in the places of its errors and invalid rows."""
        return self.rows_label + "".join(f"[{k}={v}]" for k, v in query)

    def cursor_text(self, value: Any, where: str) -> str | None:
        """A body cursor as text (a whole number as its digits), ``None`` when absent."""
        return _cursor_value(value, where)

    def raw_rows(self, body: bytes) -> list[msgspec.Raw] | None:
        """The raw rows of one answer (for the diagnostic), or ``None`` when it has none."""
        try:
            array = _locate(body, self.definition.shapes)[0]
            return msgspec.json.decode(array, type=list[msgspec.Raw])
        except (PollError, msgspec.DecodeError, RecursionError):
            return None

    # -- fetching one page --------------------------------------------------------------

    async def _fetch(
        self,
        fetcher: PageFetcher,
        query: list[tuple[str, str]],
        key: int,
        where: str = "response",
        *,
        page: str | None = None,
    ) -> _Fetched:
        """One page fetched and read; ``where`` names the answer in a schema error, ``page``
        the page in an error answer's (default: from the definition's paging and ``key``)."""
        if self._slots is not None:
            async with self._slots:
                answer = await self._get(fetcher, query)
        else:
            answer = await self._get(fetcher, query)
        if self.definition.errors is not None:
            return await self._read_listing_errors(fetcher, answer, key, where, page)
        return self._read(answer, key, where, page)

    async def _get(self, fetcher: PageFetcher, query: list[tuple[str, str]]) -> Answer:
        if self._reads_headers:
            return await fetcher.get(query)
        # the body alone (a fetcher that only reads bodies serves it too)
        return Answer(await fetcher.get_body(query), _NO_HEADERS)

    async def _read_listing_errors(
        self, fetcher: PageFetcher, answer: Answer, key: int, where: str, page: str | None
    ) -> _Fetched:
        """:meth:`_read`, and the errors the answer lists beside its rows counted and the
        first ten kept for the log (also when its rows are missing: the schema error then
        quotes the first)."""
        pointer = self.definition.errors
        assert pointer is not None
        name = ".".join(segments(pointer))
        place = where + _dotted(pointer)
        try:
            fetched = self._read(answer, key, where, page)
        except SchemaError as exc:
            top = envelope.decode_any(answer.body)
            listed = None if isinstance(top, bytes) else _listed(top, pointer, _walk_raw)
            messages = await self._report_errors(fetcher, listed, place)
            raise upstream_errors.quoted(exc, messages, name=name) from None
        await self._report_errors(fetcher, fetched.errors, place)
        return fetched

    @staticmethod
    async def _report_errors(
        fetcher: PageFetcher, listed: msgspec.Raw | None, place: str
    ) -> list[str]:
        """The listed errors counted on the fetcher (the first ten kept), and those ten."""
        messages, more = await upstream_errors.error_messages(listed, where=place)
        if messages:
            fetcher.report_upstream_errors(messages, more=more)
        return messages

    _reads_headers: ClassVar[bool] = False
    """Whether an answer's headers matter (a cursor in a header, in any answer's paging)."""

    def _read(
        self, answer: Answer, key: int, where: str = "response", page: str | None = None
    ) -> _Fetched:
        """An answer's rows (typed when small and valid) and paging facts; ``where`` names
        the answer in a schema error, ``page`` the page in an error answer's."""
        body = answer.body
        shapes = self._order or self.definition.shapes
        if len(body) <= rows_module.CHUNK_BYTES:  # read when called: a test may lower it
            bare = _first_byte(body) == b"["
            for shape in shapes:
                if bool(shape) == bare:
                    continue
                try:
                    whole = self._envelopes[shape].decode(body)
                except (msgspec.DecodeError, RecursionError):
                    continue
                if bare:
                    return _Fetched(key, body, whole, b"", "", {}, answer.headers)
                found = _error_value(self._error_at, whole)
                if found is _RAW:  # a struct there (pointers overlap): as the bytes say
                    found = _raw_error(self.definition, body, None)
                self._error_answer(body, key, bool(found), page)
                rows_at, meta_at = self._reads[shape]
                rows = _attrs_at(whole, rows_at)
                meta = {p: _attrs_at(whole, attrs) for p, attrs in meta_at}
                errors = _listed(whole, self.definition.errors, _struct_at)
                return _Fetched(key, body, rows, b"", shape, meta, answer.headers, errors)
        try:
            array, shape, top = _locate(body, shapes, where, self.definition.shapes)
        except SchemaError:
            self._error_answer(body, key, _raw_error(self.definition, body, None), page)
            raise
        found = top is not None and _raw_error(self.definition, body, top)
        self._error_answer(body, key, found, page)
        meta = {p: _meta_value(top, p, where) for p, _ in self._reads[shape][1]}
        errors = _listed(top, self.definition.errors, _walk_raw)
        return _Fetched(key, b"", None, array, shape, meta, answer.headers, errors)

    def _error_answer(self, body: bytes, key: int, found: bool, page: str | None = None) -> None:
        """Fail as ``schema`` when a 2xx answer says it is an error (``error_if_set``),
        quoting it as the provider's error reader reads it (when it reads nothing there: the
        value at ``error_if_set``, clipped); ``page`` names the page (default: by the
        definition's paging and ``key``)."""
        if not found:
            return
        where = page
        if where is None:
            p = self.definition.paging
            if p.style in ("page", "offset"):
                name = p.page_name if p.style == "page" else p.offset_name
                where = self.numbered_places(self.rows_label, name, key)[0]
            else:
                where = f"{self.rows_label} page {key + 1}" if p.style == "cursor" else "response"
        detail = self.error_detail(body) or _error_text(self.definition, body)
        raise SchemaError(f"{where}: an error in a 2xx answer, not a page: {detail}")

    def numbered_places(self, label: str, name: str, at: int) -> tuple[str, str]:
        """How a page of offset or page paging is named in a log: where a repeat of it is
        found, and where its rows are (``[i]`` follows). A seed provider may override it."""
        return f"{label} at {name}={at}", f"{label}[{at}]"

    async def _parts(self, page: _Fetched, label: str) -> AsyncIterator[Page]:
        """The page's rows, as one page or a chunk at a time."""
        if page.rows is not None:
            yield Page(page.rows, len(page.rows))
            return
        async for part in self.schema.pages(page.array, where=lambda i: f"{label}[{i}]"):
            yield part

    # -- the walks ------------------------------------------------------------------------

    @property
    def page_size(self) -> int | None:
        """The rows asked for a page: the target's ``page_size``, else the definition's (at
        most ``paging.max_size``)."""
        return self.definition.paging.sent_size(self.target.page_size)

    def _size(self, paging: Paging | None = None) -> list[tuple[str, str]]:
        p = paging or self.definition.paging
        size = p.sent_size(self.target.page_size)
        return [(p.size_param, str(size))] if p.size_param and size else []

    async def _walk(
        self, fetcher: PageFetcher, query: list[tuple[str, str]], status: str | None
    ) -> AsyncIterator[Page]:
        """One listing to its end; ``status`` is its rows' status when they carry none."""
        style = self.definition.paging.style
        label = self.listing_place(query)
        if self.definition.answers is not None:
            parts = self._answered(fetcher, query, label)
        elif style == "offset" and self.definition.paging.total is not None:
            parts = self._offset_total(fetcher, query, label)
        elif style == "none":
            parts = self._parts(await self._fetch(fetcher, query, 0), label)
        elif style == "cursor":
            parts = self._cursor(fetcher, query, label)
        else:
            parts = self._numbered(fetcher, query, label, style == "offset")
        async for part in parts:
            # built, not ``replace``d: a dataclass copy costs microseconds per page
            yield part if status is None else Page(part.rows, part.read, status, part.invalid)

    async def _cursor(
        self,
        fetcher: PageFetcher,
        query: list[tuple[str, str]],
        label: str,
        paging: Paging | None = None,
        first: _Fetched | None = None,
    ) -> AsyncIterator[Page]:
        """A cursor walk: a page's place is ``<listing>.page[n]`` and its rows
        ``<listing>.page[n].<rows>[i]``. A cursor followed once already in this listing
        fails the walk (``schema``) rather than looping; a page repeating the previous one
        row for row fails it as :class:`RepeatGuard` says (empty pages never do). With
        ``first`` (an answer's first page, in hand), the walk goes on from it by ``paging``,
        and an answer of another shape fails it (``schema``)."""
        p = paging or self.definition.paging
        assert p.next is not None
        guard = RepeatGuard()
        used: set[str] = set()
        cursor: str | None = None
        number = 0
        while True:
            params = [*query, *self._size(p)]
            if cursor is not None:
                params.append((p.cursor_name, cursor))
            where = f"{label}.page[{number + 1}]"
            if first is not None and not number:
                page = first
            else:
                place = f"{label} page {number + 1}"
                page = await self._fetch(fetcher, params, number, where, page=place)
                _same_shape(page, first, where)
            ends = p.has_next is not None and _ends(page.meta.get(p.has_next, _MISSING))
            cursor = None if ends or p.next == LAST_ID else self._next_of(page, where, p)
            if cursor is None and _goes_on(page, p):
                raise self.cursor_missing(where, number + 1, p)
            if self.cursor_loop_is_schema:
                _unused(cursor, used, where, p.next)
            guard.check_rows(page.rows, page.exact, f"{label} page {number + 1}")
            if not self.cursor_loop_is_schema:
                _unused(cursor, used, where, p.next)
            last_id: str | None = None
            read = 0
            async for part in self._parts(page, where + _dotted(page.shape)):
                read += part.read
                if part.rows:
                    last_id = part.rows[-1].id
                yield part
            if p.next == LAST_ID and not ends:
                cursor = last_id.strip() or None if read and last_id else None
                _unused(cursor, used, where, p.next)
            if cursor is None:
                return
            used.add(cursor)
            number += 1

    def _next_of(self, page: _Fetched, where: str, paging: Paging | None = None) -> str | None:
        """The next cursor a page gives (a header, or a value of its body), stripped;
        ``None`` when it gives none (absent, null or blank)."""
        p = paging or self.definition.paging
        assert p.next is not None
        if p.next.startswith("header:"):
            cursor = page.headers.get(p.next.removeprefix("header:"))
        else:
            cursor = self.cursor_text(page.meta.get(p.next, _MISSING), where + _dotted(p.next))
        if cursor is None or not cursor.strip():
            return None
        return cursor.strip()

    def _page_query(
        self, query: list[tuple[str, str]], name: str, at: int
    ) -> list[tuple[str, str]]:
        """A numbered page's query: the listing's, the size, the page (``paging_first``:
        the page and the size first)."""
        if self.paging_first:
            return [(name, str(at)), *self._size(), *query]
        return [*query, *self._size(), (name, str(at))]

    def _numbered_page(
        self, fetcher: PageFetcher, query: list[tuple[str, str]], label: str, name: str, at: int
    ) -> Coroutine[Any, Any, _Fetched]:
        """The fetch of a numbered page (an error answer placed as a repeat of it is)."""
        place = self.numbered_places(label, name, at)[0]
        return self._fetch(fetcher, self._page_query(query, name, at), at, page=place)

    async def _numbered(
        self, fetcher: PageFetcher, query: list[tuple[str, str]], label: str, offsets: bool
    ) -> AsyncIterator[Page]:
        """Offset or page paging, pages fetched ahead up to ``page_concurrency`` at a time:
        as far as the total says once a page has told it, else as far as the previous walk
        of this listing went (so a steady poll requests exactly the pages it needs; a list
        that shrank costs at most ``page_concurrency - 1`` pages past its end). Pages are
        consumed in order; a short page drops what was fetched beyond it."""
        p = self.definition.paging
        first = 0 if offsets else p.first
        name = p.offset_name if offsets else p.page_name
        key = tuple(query)
        known = self._known.get(key, 1)

        def fetch(at: int) -> Coroutine[Any, Any, _Fetched]:
            return self._numbered_page(fetcher, query, label, name, at)

        guard = RepeatGuard()
        window: Window[_Fetched] = Window(self.target.page_concurrency)
        size = self.page_size
        step = size  # rows per page (offsets), once known
        ahead = first  # the position of the next page to start
        end = first + (known * step if offsets and step else known)  # how far to fetch ahead
        consumed = 0
        try:
            while True:
                inc = (step or 0) if offsets else 1  # 0: the step is not known yet
                if window.next_key() is None:  # nothing in flight: the next page at least
                    window.start(ahead, fetch(ahead))
                    ahead += inc
                while inc and window.room() and ahead < end:
                    window.start(ahead, fetch(ahead))
                    ahead += inc
                at, page = await window.next()
                consumed += 1
                repeat_at, rows_at = self.numbered_places(label, name, at)
                strict_end = p.strict_has_next and _strict_ends(page, p.has_next)
                if not strict_end:  # a last page may repeat rows (counted once); not loop
                    guard.check_rows(page.rows, page.exact, repeat_at)
                read = 0
                async for part in self._parts(page, rows_at):
                    read += part.read
                    yield part
                if step is None:
                    step = read  # the page size the server serves
                total = _total(page.meta.get(p.total, _MISSING) if p.total else _MISSING, p.total)
                nxt = at + read if offsets else at + 1
                done_rows = nxt - first if offsets else (nxt - first) * step
                if strict_end or (
                    not p.strict_has_next
                    and (
                        not read
                        or (p.has_next is not None and _ends(page.meta.get(p.has_next, _MISSING)))
                        or (total is not None and done_rows >= total)
                        or (size is not None and read < size)
                    )
                ):
                    self._known[key] = consumed
                    return
                if window.next_key() not in (None, nxt):
                    await window.drop()  # a short page: the pages ahead start elsewhere
                if window.next_key() is None:
                    ahead = nxt
                if total is not None and step:
                    end = first + total if offsets else first + math.ceil(total / step)
                else:
                    end = max(end, first + known * (step if offsets else 1))
        finally:
            await window.drop()

    # -- answers of several shapes, and the offset walk that reads a total ----------------

    async def _answered(
        self, fetcher: PageFetcher, query: list[tuple[str, str]], label: str
    ) -> AsyncIterator[Page]:
        """A listing whose answers may come in several shapes (``answers``): the first
        request is the first answer's; the shape of what comes back picks the walk (its
        paging, from the page in hand) and the facts it reports. A fact its shape does not
        report is reported once a row of the walk carries it."""
        d = self.definition
        assert d.answers is not None
        lead = d.answers[0].paging
        params = [*query, *self._size(lead)]
        place = "response"
        if lead.style == "offset":
            params.append((lead.offset_name, "0"))
            place = f"{label} at {lead.offset_name}=0"
        elif lead.style == "cursor":
            place = f"{label} page 1"
        page = await self._fetch(fetcher, params, 0, page=place)
        p, reports, carried, self._order = self._plans[page.shape]
        self._facts.update(reports)
        unseen = [(fact, get) for fact, get in carried if fact not in self._facts]
        if p.style == "cursor":
            parts = self._cursor(fetcher, query, label, p, page)
        elif p.style == "offset":
            parts = self._offset_total(fetcher, query, label, p, page)
        else:
            parts = self._parts(page, label)
        async for part in parts:
            if unseen and part.rows:
                unseen = self._carried(part.rows, unseen)
            yield part

    def _carried(self, rows: Sequence[Any], unseen: list[_Carried]) -> list[_Carried]:
        """Note the facts some of ``rows`` carry; the facts still unseen."""
        left = []
        for fact, get in unseen:
            values = list(map(get, rows))  # C loops, no frame per row
            if values.count(None) < len(values):
                self._facts.add(fact)
            else:
                left.append((fact, get))
        return left

    async def _offset_total(  # noqa: PLR0912, PLR0915 - the walk and its re-read, together
        self,
        fetcher: PageFetcher,
        query: list[tuple[str, str]],
        label: str,
        paging: Paging | None = None,
        first: _Fetched | None = None,
    ) -> AsyncIterator[Page]:
        """Offset paging that reads a total: offsets until ``total`` rows, stepping by what
        the server serves; pages fetched ahead up to ``page_concurrency`` at a time (from
        the first page on as far as the previous walk went, then as far as the total says),
        consumed in order; a short page drops what was fetched beyond it. Row ``i`` of the
        listing is placed at ``<listing>[i]``.

        The list may shrink while it is paged: a session that ends before the offset moves
        every later row one place back, so the row that was at the next offset is now just
        before it, and would never be read. Each answer's ``total`` shows it: a page whose
        ``total`` is below the one of the page before it (the *chain* page) is not trusted
        to follow on. The gap is re-read: from as many rows before that page as ``total``
        shrank, and one more (the chain page's last row, to see that nothing is missing),
        twice as far back each time, until a re-read page lists one of the chain page's
        sessions (the list's order being stable, nothing slipped between the two) or starts
        at offset 0. A session listed for the whole walk is therefore read; the rows read
        twice are counted as duplicates. ``max_pages`` bounds the re-reads too.

        With ``first`` (an answer's first page, in hand) the walk goes on from it by
        ``paging``, and an answer of another shape fails it (``schema``). The total is
        optional: a page without one keeps the one stated before it; until one is stated,
        the walk ends on a short or empty page (as offset paging without a total does). A
        bare array is the whole list from its offset.
        """
        p = paging or self.definition.paging
        assert p.total is not None
        name = p.offset_name
        key = tuple(query)
        shape_of = first
        ahead = 0

        sized = [*query, *self._size(p)]

        def fetch(at: int) -> Coroutine[Any, Any, _Fetched]:
            place = f"{label} at {name}={at}"
            return self._fetch(fetcher, [*sized, (name, str(at))], at, page=place)

        window: Window[_Fetched] = Window(self.target.page_concurrency)
        try:
            if first is None:
                first, ahead = await self._offset_start(window, fetch, key, p)
            guard = RepeatGuard()
            guard.check_rows(first.rows, first.exact, f"{label} at {name}=0")
            chain = _Chain(0, self._total_of(first, p, "response", None), bare=not first.shape)
            size = p.sent_size(self.target.page_size)
            if first.rows is not None:  # a small valid page, decoded already
                whole = Page(first.rows, len(first.rows))
                chain.add(whole)
                yield whole
            else:
                async for part in self._offset_parts(first, label, 0):
                    chain.add(part)
                    yield part
            read, total = chain.read, chain.total
            if not read or _walked(chain, size):
                self._known[key] = 1
                return
            step = self._steps[key] = read  # the page size the server actually serves
            expected = chain.next()  # the offset of the next chain page
            if window.next_key() != expected:  # what went ahead steps otherwise
                await window.drop()
                ahead = expected
            back = 0  # how far the last re-read went back from `expected` (0: none)
            while True:
                # an unknown total: ahead as far as the previous walk went
                limit = self._known.get(key, 1) * step if total is None else total
                while window.room() and ahead < limit:
                    window.start(ahead, fetch(ahead))
                    ahead += step
                if window.next_key() is None:  # a re-read below where the list now ends
                    window.start(ahead, fetch(ahead))
                    ahead += step
                at, page = await window.next()
                where = f"{label} at {name}={at}"
                _same_shape(page, shape_of, where)
                stated = self._total_of(page, p, where, total)
                if not back:
                    if stated != chain.total:  # the list changed: a repeat is new rows
                        guard = RepeatGuard()
                    guard.check_rows(page.rows, page.exact, where)
                link = _Chain(at, stated, bare=not page.shape)
                if page.rows is not None:
                    whole = Page(page.rows, len(page.rows))
                    link.add(whole)
                    yield whole
                else:
                    async for part in self._offset_parts(page, label, at):
                        link.add(part)
                        yield part
                if chain.followed_by(link):
                    chain, back = link, 0
                    total = link.total
                    if not link.read or _walked(link, size):
                        self._known[key] = max(1, math.ceil(link.end / step))
                        return
                    expected = chain.next()
                    if (ahead if window.next_key() is None else window.next_key()) != expected:
                        await window.drop()  # a short page: the pages ahead start elsewhere
                        ahead = expected
                    continue
                # something slipped between the chain page and this one: re-read the gap
                await window.drop()
                guard = RepeatGuard()  # a page read again after the gap is no repeat
                # (both totals stated: followed_by trusts a page while either is unknown)
                assert chain.total is not None
                assert link.total is not None
                shrunk = max(0, chain.total - link.total) + 1  # and the chain's last row again
                back = max(back * 2, shrunk)
                ahead = max(0, min(expected, link.total) - back)
                total = link.total
        finally:
            await window.drop()

    async def _offset_start(
        self,
        window: Window[_Fetched],
        fetch: Callable[[int], Coroutine[Any, Any, _Fetched]],
        key: tuple[tuple[str, str], ...],
        paging: Paging,
    ) -> tuple[_Fetched, int]:
        """The first page, the pages after it started as far as the previous walk went
        (stepping as the server served them then); and the offset of the next to start."""
        stride = self._steps.get(key) or paging.sent_size(self.target.page_size) or 0
        window.start(0, fetch(0))
        ahead = stride
        while stride and window.room() and ahead < self._known.get(key, 1) * stride:
            window.start(ahead, fetch(ahead))
            ahead += stride
        _, first = await window.next()
        return first, ahead

    @staticmethod
    def _total_of(page: _Fetched, paging: Paging, where: str, before: int | None) -> int | None:
        """The total an answer states; when it states none (absent or null), ``before``
        (the walk's total so far; ``None``: not known); ``None`` for a bare array (the
        whole list: see :class:`_Chain`)."""
        if not page.shape:
            return None
        assert paging.total is not None
        value = page.meta.get(paging.total, _MISSING)
        if type(value) is int and 0 <= value <= MAX_TOTAL:
            return value
        if value is _MISSING or value is None:
            return before
        return _total(value, paging.total)

    async def _offset_parts(self, page: _Fetched, label: str, at: int) -> AsyncIterator[Page]:
        """The rows of a page too large or invalid to decode whole, a chunk at a time,
        placed by their offset."""
        async for part in self.schema.pages(page.array, where=lambda i: f"{label}[{at + i}]"):
            yield part


def _first_byte(body: bytes) -> bytes:
    """The first byte of an answer past leading space, without copying the answer."""
    head = body[:64].lstrip()
    return head[:1] if head else body.lstrip()[:1]


def _same_shape(page: _Fetched, first: _Fetched | None, where: str) -> None:
    """Raise when an answer mid-walk has another shape than the walk's first answer."""
    if first is not None and page.shape != first.shape:
        raise SchemaError(
            f"{where}: an answer with its rows at {_rows_at(page.shape)}, in a walk of "
            f"answers with their rows at {_rows_at(first.shape)}"
        )


def _rows_at(shape: str) -> str:
    return "response" + _dotted(shape) if shape else "the top (a bare array)"


def _walked(link: _Chain, size: int | None) -> bool:
    """Whether the offset walk ends after ``link``: at its total, or, while no page has
    stated one, on a short page (fewer rows than asked for)."""
    if link.total is None:
        return size is not None and link.read < size
    return link.end >= link.total


def _goes_on(page: _Fetched, paging: Paging) -> bool:
    """Whether a page's ``has_next`` says the list goes on (present, and not false, null or
    empty), where the cursor comes from elsewhere than the rows or the flag itself."""
    if paging.has_next is None or paging.next in (LAST_ID, paging.has_next):
        return False
    value = page.meta.get(paging.has_next, _MISSING)
    return value is not _MISSING and not _ends(value)


_TAIL_ROWS = 1024
"""Rows at the end of a chain page whose ids a re-read page is compared with (at least)."""


class _Chain:
    """One offset page as a link of the walk: where it starts, its last rows, its ``total``."""

    __slots__ = ("_bare", "_ids", "_tail", "_tail_rows", "at", "read", "total")

    def __init__(self, at: int, total: int | None, *, bare: bool = False) -> None:
        self.at = at
        self.read = 0
        self._bare = bare  # a bare array is the whole list: its total is its rows
        self.total: int | None = at if bare else total
        """The list's length as the page says it (``None``: no page has stated it)."""
        self._tail: deque[Sequence[Any]] = deque()
        self._tail_rows = 0
        self._ids: set[str] | None = None

    def add(self, part: Page) -> None:
        """Count a part of the page and keep its rows while they are among its last ones."""
        self.read += part.read
        if self._bare:
            self.total = self.at + self.read
        self._tail.append(part.rows)
        self._tail_rows += len(part.rows)
        while self._tail_rows - len(self._tail[0]) >= _TAIL_ROWS:
            self._tail_rows -= len(self._tail.popleft())

    def ids(self) -> set[str]:
        """The ids of the page's last rows (built when a re-read first needs them)."""
        if self._ids is None:
            self._ids = {row.id for rows in self._tail for row in rows}
        return self._ids

    @property
    def end(self) -> int:
        """The offset just past the page."""
        return self.at + self.read

    def next(self) -> int:
        """Where the page after this one starts."""
        return self.end

    def followed_by(self, link: _Chain) -> bool:
        """Whether ``link`` (asked for after this page) leaves no gap after it.

        From offset 0 there is none; a re-read page, overlapping this one, must share a
        session with it; a page after this one must not have seen the list shrink.
        """
        if link.at == 0:
            return True
        if link.at < self.end:
            return not self.ids().isdisjoint(link.ids())
        return self.total is None or link.total is None or link.total >= self.total


def _ends(value: Any) -> bool:
    """Whether a ``has_next`` value says the list ends (false, null or empty; a missing key
    says nothing)."""
    if value is _MISSING:
        return False
    return value is None or value is False or value in ("", 0)


def _strict_ends(page: _Fetched, pointer: str | None) -> bool:
    """Whether ``has_next`` ends the list under ``strict_has_next``: a bare array is the
    whole list; an object answer must say it as a boolean."""
    if not page.shape:
        return True
    value = page.meta.get(pointer or "", _MISSING)
    if not isinstance(value, bool):
        where = "response" + (pointer or "").replace("/", ".")
        raise SchemaError(f"{where}: expected a boolean, got {_json_kind(value)}")
    return not value


def _json_kind(value: Any) -> str:
    """A decoded JSON value's type, as a message names it."""
    if value is _MISSING or value is None:
        return "null"
    return type(value).__name__


def _error_value(path: tuple[str, ...] | None, whole: Any) -> Any:
    """Whether a typed answer has a value set at ``error_if_set`` (its keys): present, and
    not null, false, ``""``, ``{}`` or ``[]``; ``_RAW`` when a struct is there (a pointer
    read below it as well), which only the answer's bytes tell."""
    if path is None:
        return False
    value = _struct_at(whole, path)
    if isinstance(value, msgspec.Struct):
        return _RAW
    return _is_set(value)


def _is_set(value: Any) -> bool:
    """Whether a value at ``error_if_set`` counts as set (a raw one: as its JSON says)."""
    if value is _MISSING or value is None or value is False:
        return False
    if isinstance(value, msgspec.Raw):
        return _UNSET_JSON.fullmatch(memoryview(value)) is None
    if isinstance(value, str | dict | list):
        return len(value) > 0
    return True


_UNSET_JSON = re.compile(rb"\s*(?:null|false|\"\"|\{\s*\}|\[\s*\])\s*")
"""The JSON values ``error_if_set`` does not count as set (matched in place, not copied)."""


def _error_text(definition: Definition, body: bytes) -> str:
    """The value at ``error_if_set``, clipped (for an error answer the reader finds nothing
    in); ``""`` when it cannot be read."""
    pointer = definition.error_if_set
    if pointer is None:
        return ""
    try:
        top = envelope.decode_any(body)
    except PollError:
        return ""
    found: Any = _MISSING if isinstance(top, bytes) else _walk_raw(top, segments(pointer))
    if found is _MISSING:
        return ""
    return clip(bytes(memoryview(found)[:_QUOTED]).decode("utf-8", "replace"), _QUOTED)


_QUOTED = 200
"""Characters of the value at ``error_if_set`` an error answer's message quotes."""


def _raw_error(definition: Definition, body: bytes, top: Mapping[str, Any] | None) -> bool:
    """The same for an answer read without types (``top``: its object, once decoded)."""
    pointer = definition.error_if_set
    if pointer is None:
        return False
    if top is None:
        try:
            decoded = envelope.decode_any(body)
        except PollError:
            return False
        if isinstance(decoded, bytes):
            return False
        top = decoded
    return _is_set(_walk_raw(top, segments(pointer)))


def _cursor_value(value: Any, where: str) -> str | None:
    if value is _MISSING or value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise SchemaError(f"{where}: expected a cursor string, got {type(value).__name__}")


def text_cursor(value: Any, where: str) -> str | None:
    """A body cursor that must be a string (a number there is a schema error)."""
    if value is _MISSING or value is None:
        return None
    if isinstance(value, str):
        return value
    raise SchemaError(f"{where}: expected a string, got {type(value).__name__}")


def _unused(cursor: str | None, used: set[str], where: str, pointer: str) -> None:
    """Raise when ``cursor`` was followed already in this listing (the walk would loop)."""
    if cursor is not None and cursor in used:
        at = where + (_dotted(pointer) if pointer.startswith("/") else f" ({pointer})")
        raise SchemaError(
            f"{at}: cursor {clip(cursor, 60)!r} was already followed in this listing; "
            "stopping instead of looping"
        )


MAX_TOTAL = 10**12
"""The largest total an answer may state (more rows than any account holds): past it, or
a count that is no plain number (``"²"``, 5,000 digits), the answer is a schema error."""


def _total(value: Any, pointer: str | None) -> int | None:
    if value is _MISSING or value is None:
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 13:
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_TOTAL:
        where = "response" + (pointer or "").replace("/", ".")
        shown = type(value).__name__ if not isinstance(value, int) else "an out-of-range number"
        raise SchemaError(f"{where}: expected a count, got {shown}")
    return value


def _listed(
    top: Any, pointer: str | None, walk: Callable[[Any, Sequence[str]], Any]
) -> msgspec.Raw | None:
    """The raw errors array at ``pointer`` of a decoded answer (``None``: absent, or the
    definition lists none); ``walk`` reads a struct or a raw object."""
    if pointer is None or top is None:
        return None
    found = walk(top, segments(pointer))
    return None if found is _MISSING else found


def _struct_at(value: Any, path: Sequence[str]) -> Any:
    """The value at ``path`` in a decoded envelope struct (``_MISSING`` when absent, or
    below a value that is no object)."""
    return _attrs_at(value, tuple(_attr(name) for name in path))


@functools.lru_cache(maxsize=4096)  # a definition's few keys, read on every page
def _attr(key: str) -> str:
    """A struct attribute for a wire key (any text: hex-encoded)."""
    return "k" + key.encode().hex()


def envelope_type(
    name: str,
    shape: str,
    row_type: type[Any],
    meta: Sequence[str],
    *,
    raw: Sequence[str] = (),
) -> Any:
    """The type of a whole answer of ``shape``: rows typed, paging values as they come
    (each optional: absent is told apart from null), the ``raw`` pointers' values left
    undecoded (an errors array: read later, a chunk at a time)."""
    if not shape:
        return list[row_type]  # type: ignore[valid-type]
    tree: dict[str, Any] = {}
    for pointer in raw:
        node = tree
        *heads, last = segments(pointer)
        for key in heads:
            node = node.setdefault(key, {})
        node[last] = _RAW
    for pointer in meta:
        node = tree
        *heads, last = segments(pointer)
        for key in heads:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                break
        else:
            node.setdefault(last, None)
    node = tree
    *heads, last = segments(shape)
    for key in heads:
        if not isinstance(node.get(key), dict):  # the rows win over a value read whole
            node[key] = {}
        node = node[key]
    node[last] = list[row_type]  # type: ignore[valid-type]

    def build(label: str, spec: dict[str, Any], on_rows_path: bool, depth: int) -> Any:
        fields: list[Any] = []
        for key, sub in spec.items():
            along = on_rows_path and depth < len(heads) and heads[depth] == key
            if isinstance(sub, dict):
                kind = build(f"{label}_{len(fields)}", sub, along, depth + 1)
            elif sub is None:
                kind = Any
            elif sub is _RAW:
                kind = msgspec.Raw
            else:
                kind = sub
            if along or (sub is not None and sub is not _RAW and not isinstance(sub, dict)):
                fields.append((_attr(key), kind, msgspec.field(name=key)))
            else:
                fields.append(
                    (
                        _attr(key),
                        kind | msgspec.UnsetType,
                        msgspec.field(name=key, default=msgspec.UNSET),
                    )
                )
        return msgspec.defstruct(label, fields, gc=False, kw_only=True)

    return build(f"{name}Answer", tree, True, 0)


def meta_pointers(definition: Definition) -> list[str]:
    """The pointers into an answer that its paging reads (total, has_next, a body cursor)."""
    p = definition.paging
    out = [x for x in (p.total, p.has_next) if x]
    if p.next and p.next.startswith("/"):
        out.append(p.next)
    return _answers_meta(definition, out)


def _answer_plans(definition: Definition, caps: Capabilities) -> dict[str, _Plan]:
    """What a walk of each answer's shape needs (see ``DefinedProvider._plans``)."""
    plans: dict[str, _Plan] = {}
    for answer in definition.answers or ():
        reports = frozenset(FACT_FIELDS if answer.reports is None else answer.reports)
        carried = tuple(
            (fact, operator.attrgetter(attr))
            for fact, attr in FACT_FIELDS.items()
            if fact not in reports and getattr(caps, fact)
        )
        order = (answer.rows, *(s for s in definition.shapes if s != answer.rows))
        plans[answer.rows] = (answer.paging, reports, carried, order)
    return plans


def _shape_meta(definition: Definition, shape: str, meta: list[str]) -> list[str]:
    """The paging values an answer of ``shape`` is read for: with ``answers``, its own
    paging's; else every one the paging reads."""
    answer = definition.answer(shape)
    if answer is None:
        return meta
    q = answer.paging
    own = [x for x in (q.total, q.has_next, q.next) if x and x.startswith("/")]
    return [*own, definition.error_if_set] if definition.error_if_set else own


def _shape_reads(
    definition: Definition, shape: str, meta: list[str]
) -> tuple[tuple[str, ...], tuple[tuple[str, tuple[str, ...]], ...]]:
    """The attributes of ``shape``'s envelope struct its rows and paging values are at."""
    pointers = _shape_meta(definition, shape, meta)
    return (
        tuple(_attr(k) for k in segments(shape)),
        tuple((p, tuple(_attr(k) for k in segments(p))) for p in pointers),
    )


def _attrs_at(value: Any, attrs: tuple[str, ...]) -> Any:
    """:func:`_struct_at` with the attributes found already. A value on the way that is
    no struct (one read whole by a pointer that ends there: a number, a raw value) has
    nothing below it, but an object read whole is looked into by its keys."""
    for name in attrs:
        if value is None or value is msgspec.UNSET:
            return _MISSING
        found = getattr(value, name, _MISSING)
        if found is _MISSING:
            if not isinstance(value, dict):
                return _MISSING
            found = value.get(bytes.fromhex(name[1:]).decode(), _MISSING)
        value = found
    return _MISSING if value is msgspec.UNSET else value


def _answers_meta(definition: Definition, out: list[str]) -> list[str]:
    """``out`` and the pointers every other answer's paging reads."""
    for answer in (definition.answers or ())[1:]:
        q = answer.paging
        for x in (q.total, q.has_next, q.next):
            if x and x.startswith("/") and x not in out:
                out.append(x)
    return out


_CLASSES: OrderedDict[tuple[Any, ...], type[DefinedProvider]] = OrderedDict()
"""The classes built, by what they are built from (equal definitions share one), the
least recently used dropped past :data:`CLASSES_KEPT` (a config reloaded again and again
builds no more)."""
CLASSES_KEPT = 256


def _class_key(
    provider_id: str,
    definition: Definition,
    wire_labels: bool,
    hooks: Mapping[str, Any],
    base: type[DefinedProvider],
) -> tuple[Any, ...]:
    """What a provider class is built from, as a key (the definition by its content)."""
    hooked = tuple(sorted(hooks.items(), key=operator.itemgetter(0)))
    return (provider_id, definition.model_dump_json(), wire_labels, hooked, base)


def provider_class(
    provider_id: str,
    definition: Definition,
    *,
    wire_labels: bool = False,
    hooks: Mapping[str, Any] = MappingProxyType({}),
    base: type[DefinedProvider] = DefinedProvider,
) -> type[DefinedProvider]:
    """The provider class of one definition: its row struct and decoders built once.

    A seed provider names its unreadable fields by their wire keys (``wire_labels``) and
    may override :class:`Provider` hooks a definition cannot say (``hooks``, such as
    ``error_detail``, or methods of a ``base`` class of its own)."""
    key = _class_key(provider_id, definition, wire_labels, hooks, base)
    found = _CLASSES.get(key)
    if found is not None:
        _CLASSES.move_to_end(key)
        return found
    name = "".join(part.capitalize() for part in provider_id.replace("-", "_").split("_"))
    schema = RowSchema(name, definition, wire_labels=wire_labels)
    meta = meta_pointers(definition)
    raw = [definition.errors] if definition.errors else []
    if definition.error_if_set:
        meta = [*meta, definition.error_if_set]
    envelopes = _decoders(name, definition, schema, meta=meta, raw=raw)
    f = definition.fields
    caps = Capabilities(
        deadlines=f.deadline is not None or definition.deadline is not None,
        leases=f.leases is not None,
        activity=f.last_activity is not None,
        executions=f.executions is not None,
    )
    cls = type(
        f"{name}Provider",
        (base,),
        {
            "id": provider_id,
            "path": definition.path,
            "capabilities": caps,
            "row_fields": schema.fields,
            "definition": definition,
            "schema": schema,
            "_envelopes": envelopes,
            "_reads": {shape: _shape_reads(definition, shape, meta) for shape in definition.shapes},
            "_plans": _answer_plans(definition, caps),
            **_run_schema(name, definition, wire_labels=wire_labels, meta=meta, raw=raw),
            **_rate_limit(definition),
            "_error_at": segments(definition.error_if_set) if definition.error_if_set else None,
            "_reads_headers": _header_cursor(definition),
            **hooks,
        },
    )
    _CLASSES[key] = cls
    while len(_CLASSES) > CLASSES_KEPT:
        _CLASSES.popitem(last=False)
    return cls


def _header_cursor(definition: Definition) -> bool:
    """Whether any answer's paging reads its cursor from a header (its headers matter)."""
    pagings = [definition.paging, *(a.paging for a in definition.answers or ())]
    return any(p.next is not None and p.next.startswith("header:") for p in pagings)


def _decoders(
    name: str, definition: Definition, schema: RowSchema, *, meta: list[str], raw: list[str]
) -> dict[str, msgspec.json.Decoder[Any]]:
    """The decoder of a whole answer of each shape: its rows typed by ``schema``, the
    paging values its shape reads, the listed errors (``raw``) kept raw."""
    return {
        shape: msgspec.json.Decoder(
            envelope_type(
                name, shape, schema.row_type, _shape_meta(definition, shape, meta), raw=raw
            ),
            strict=schema.strict,
        )
        for shape in definition.shapes
    }


def _run_schema(
    name: str, definition: Definition, *, wire_labels: bool, meta: list[str], raw: list[str]
) -> dict[str, Any]:
    """The schema and decoders reading ``fields.run_id`` too (a ``per_session`` target's),
    when the definition has it."""
    if definition.fields.run_id is None:
        return {}
    schema = RowSchema(f"{name}Run", definition, wire_labels=wire_labels, run_id=True)
    envelopes = _decoders(f"{name}Run", definition, schema, meta=meta, raw=raw)
    return {"run_schema": schema, "_run_envelopes": envelopes}


RATE_LIMIT_RESETS: Mapping[str, Callable[[Mapping[str, str], float], float | None]] = (
    MappingProxyType({"epoch_ms": wire.epoch_ms_rate_limit_reset})
)
"""``rate_limit_reset`` -> the :meth:`Provider.rate_limit_reset` it stands for (``auto``:
the default rule)."""


def _rate_limit(definition: Definition) -> dict[str, Any]:
    """The rate-limit reset hook a definition names, when not the default."""
    rule = RATE_LIMIT_RESETS.get(definition.rate_limit_reset)
    return {} if rule is None else {"rate_limit_reset": staticmethod(rule)}


def defined_provider(target: DefinedTarget) -> DefinedProvider:
    """The provider of one defined target."""
    return provider_class(target.provider, target.definition)(target)
