"""One provider driven by a definition: its target model, its listings and its page walks.

A definition says where the rows are and how the list is paged; this module walks it with
the same guards as the hand-written providers (the fetcher's ``max_pages``,
``max_response_bytes``, retries, redirects and rate limit; :class:`RepeatGuard` for a page
served again; invalid rows counted per field). A page is decoded typed in one C call when
it is small and valid, else its rows a chunk at a time as they are counted.

Listings (one per status where the API filters by one) run side by side; every request
of a poll shares ``page_concurrency`` slots. Offset and page styles that learn the total
from the first page fetch the rest up to ``page_concurrency`` at a time, consumed in order.
"""

from __future__ import annotations

import asyncio
import difflib
import functools
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Annotated, Any, ClassVar

import msgspec
from pydantic import ConfigDict, Field, PrivateAttr, field_validator, model_validator

from exporter.core.records import Phase
from exporter.providers import envelope
from exporter.providers.base import Capabilities, Provider
from exporter.providers.catalog import BUILTIN
from exporter.providers.definition import LAST_ID, Definition, segments
from exporter.providers.paging import RepeatGuard, Window, merged
from exporter.providers.rows import CHUNK_BYTES, Buffer, Page, raw_kind
from exporter.providers.schema import RowSchema
from exporter.providers.target import TargetBase
from exporter.upstream.errors import PollError, SchemaError
from exporter.upstream.fetch import Answer, PageFetcher

USER_DEFINITIONS: ContextVar[Mapping[str, Definition | None]] = ContextVar(
    "user_definitions", default=MappingProxyType({})
)
"""The config's own definitions while it is validated (an id whose definition is broken
maps to ``None``: known, so its targets are not reported a second time)."""


CODED_IDS: list[str] = []
"""The hand-written providers' ids (filled in by the package), for "did you mean"."""


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

    def exact(self) -> Buffer:
        """The bytes of the rows array (what :class:`RepeatGuard` compares)."""
        if self.rows is None:
            return self.array
        return _locate(self.body, (self.shape,))[0]

    @property
    def count(self) -> int | None:
        """How many rows it has, when decoded already."""
        return None if self.rows is None else len(self.rows)


_MISSING = object()
_NO_HEADERS: Mapping[str, str] = MappingProxyType({})


def _walk_raw(top: Mapping[str, msgspec.Raw], path: Sequence[str]) -> Any:
    """The raw value at ``path`` below a decoded top object (``_MISSING`` when absent)."""
    value: Any = top
    for i, key in enumerate(path):
        if i:
            if bytes(value).lstrip()[:1] != b"{":
                return _MISSING
            value = envelope.decode_object(bytes(value), "response")
        if key not in value:
            return _MISSING
        value = value[key]
    return value


def _locate(body: bytes, shapes: Sequence[str]) -> tuple[Buffer, str, dict[str, Any] | None]:
    """The rows array of an answer (the first shape it has), that shape, and its top object."""
    top = envelope.decode_any(body)
    if isinstance(top, bytes):
        if "" in shapes:
            return memoryview(top), "", None
        raise SchemaError(f"response: expected an object, got {raw_kind(top)}")
    for shape in shapes:
        if not shape:
            continue
        found = _walk_raw(top, segments(shape))
        if found is not _MISSING:
            where = "response." + ".".join(segments(shape))
            return envelope.array(found, where), shape, top
    first = next((s for s in shapes if s), None)
    if first is None:  # only a bare array is accepted
        raise SchemaError(f"response: expected an array, got {type(top).__name__}")
    where = "response." + ".".join(segments(first))
    raise SchemaError(f"{where}: expected an array, got nothing (the key is missing)")


def _meta_value(top: Mapping[str, msgspec.Raw] | None, pointer: str) -> Any:
    """A decoded value at ``pointer`` in the answer (``_MISSING`` when absent)."""
    if top is None:
        return _MISSING
    found = _walk_raw(top, segments(pointer))
    if found is _MISSING:
        return _MISSING
    return msgspec.json.decode(bytes(found))


class DefinedProvider(Provider[EngineTarget]):
    """The engine: one class per definition (see :func:`provider_class`)."""

    definition: ClassVar[Definition]
    schema: ClassVar[RowSchema]
    _envelopes: ClassVar[dict[str, msgspec.json.Decoder[Any]]]
    _meta: ClassVar[list[str]]
    """The pointers into an answer its paging reads (:func:`meta_pointers`)."""
    _paths: ClassVar[dict[str, tuple[str, ...]]]
    """The keys each pointer into an answer walks (the shapes' and the paging's)."""
    _error_at: ClassVar[tuple[str, ...] | None]
    """The keys ``error_if_set`` walks."""
    rows_label: ClassVar[str] = "rows"
    """What an invalid row's place starts with in a log (``rows[3]``)."""
    paging_first: ClassVar[bool] = False
    """Whether a numbered page's query starts with its paging parameters (the page, then
    the size), before the listing's own: the order a seed provider always sent."""

    def __init__(self, target: EngineTarget) -> None:
        super().__init__(target)
        self._slots: asyncio.Semaphore | None = None
        self._known: dict[tuple[tuple[str, str], ...], int] = {}
        """Pages the previous complete walk of each listing took: how far to fetch ahead."""

    def statuses(self) -> Mapping[str, Phase]:
        d = self.definition
        if d.status_filter is not None and self.target.only_active:
            return d.active
        return d.statuses

    def counts_only_listed(self) -> bool:
        d = self.definition
        return d.status_filter is not None and self.target.only_active and not d.from_listing

    def request_headers(self) -> Mapping[str, str]:
        out = {}
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
        self._slots = asyncio.Semaphore(self.target.page_concurrency)
        walks = [self._walk(fetcher, query, status) for query, status in self.listings()]
        return walks[0] if len(walks) == 1 else merged(walks)  # one walk: no layer between

    def raw_rows(self, body: bytes) -> list[msgspec.Raw] | None:
        """The raw rows of one answer (for the diagnostic), or ``None`` when it has none."""
        try:
            array = _locate(body, self.definition.shapes)[0]
            return msgspec.json.decode(array, type=list[msgspec.Raw])
        except (PollError, msgspec.DecodeError, RecursionError):
            return None

    # -- fetching one page --------------------------------------------------------------

    async def _fetch(
        self, fetcher: PageFetcher, query: list[tuple[str, str]], key: int
    ) -> _Fetched:
        assert self._slots is not None
        async with self._slots:
            if self._reads_headers:
                answer = await fetcher.get(query)
            else:  # the body alone (a fetcher that only reads bodies serves it too)
                answer = Answer(await fetcher.get_body(query), _NO_HEADERS)
        return self._read(answer, key)

    @property
    def _reads_headers(self) -> bool:
        """Whether an answer's headers matter (a cursor in a header)."""
        nxt = self.definition.paging.next
        return nxt is not None and nxt.startswith("header:")

    def _read(self, answer: Answer, key: int) -> _Fetched:
        body = answer.body
        shapes = self.definition.shapes
        if len(body) <= CHUNK_BYTES:
            bare = body.lstrip()[:1] == b"["
            for shape in shapes:
                if bool(shape) == bare:
                    continue
                try:
                    whole = self._envelopes[shape].decode(body)
                except (msgspec.DecodeError, RecursionError):
                    continue
                if bare:
                    return _Fetched(key, body, whole, b"", "", {}, answer.headers)
                self._error_answer(body, key, _error_value(self._error_at, whole))
                rows = _struct_at(whole, self._paths[shape])
                meta = {p: _struct_at(whole, self._paths[p]) for p in self._meta}
                return _Fetched(key, body, rows, b"", shape, meta, answer.headers)
        try:
            array, shape, top = _locate(body, shapes)
        except SchemaError:
            self._error_answer(body, key, _raw_error(self.definition, body, None))
            raise
        self._error_answer(body, key, top is not None and _raw_error(self.definition, body, top))
        meta = {p: _meta_value(top, p) for p in meta_pointers(self.definition)}
        return _Fetched(key, b"", None, array, shape, meta, answer.headers)

    def _error_answer(self, body: bytes, key: int, found: bool) -> None:
        """Fail as ``schema`` when a 2xx answer says it is an error (``error_if_set``),
        quoting it as the provider's error reader reads it."""
        if not found:
            return
        p = self.definition.paging
        if p.style in ("page", "offset"):
            name = p.page_name if p.style == "page" else p.offset_name
            where = self.numbered_places(self.rows_label, name, key)[0]
        else:
            where = f"{self.rows_label} page {key + 1}" if p.style == "cursor" else "response"
        detail = self.error_detail(body)
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
        """The rows asked for a page: the target's ``page_size``, else the definition's."""
        return self.target.page_size or self.definition.paging.size

    def _size(self) -> list[tuple[str, str]]:
        p = self.definition.paging
        size = self.page_size
        return [(p.size_param, str(size))] if p.size_param and size else []

    async def _walk(
        self, fetcher: PageFetcher, query: list[tuple[str, str]], status: str | None
    ) -> AsyncIterator[Page]:
        """One listing to its end; ``status`` is its rows' status when they carry none."""
        style = self.definition.paging.style
        label = self.rows_label + "".join(f"[{k}={v}]" for k, v in query)
        if style == "none":
            parts = self._parts(await self._fetch(fetcher, query, 0), label)
        elif style == "cursor":
            parts = self._cursor(fetcher, query, label)
        else:
            parts = self._numbered(fetcher, query, label, style == "offset")
        async for part in parts:
            yield part if status is None else replace(part, status=status)

    async def _cursor(
        self, fetcher: PageFetcher, query: list[tuple[str, str]], label: str
    ) -> AsyncIterator[Page]:
        p = self.definition.paging
        assert p.next is not None
        guard = RepeatGuard()
        cursor: str | None = None
        number = 0
        while True:
            params = [*query, *self._size()]
            if cursor is not None:
                params.append((p.cursor_name, cursor))
            page = await self._fetch(fetcher, params, number)
            where = f"{label} page {number + 1}"
            guard.check_rows(page.rows, page.exact, where)
            last_id: str | None = None
            read = 0
            async for part in self._parts(page, f"{label}.page[{number + 1}]"):
                read += part.read
                if part.rows:
                    last_id = part.rows[-1].id
                yield part
            if p.has_next is not None and _ends(page.meta.get(p.has_next, _MISSING)):
                return
            if p.next == LAST_ID:
                cursor = last_id if read else None
            elif p.next.startswith("header:"):
                cursor = page.headers.get(p.next.removeprefix("header:"))
            else:
                cursor = _cursor_value(page.meta.get(p.next, _MISSING), p.next)
            if cursor is None or not cursor.strip():
                return
            cursor = cursor.strip()
            number += 1

    def _page_query(
        self, query: list[tuple[str, str]], name: str, at: int
    ) -> list[tuple[str, str]]:
        """A numbered page's query: the listing's, the size, the page (``paging_first``:
        the page and the size first)."""
        if self.paging_first:
            return [(name, str(at)), *self._size(), *query]
        return [*query, *self._size(), (name, str(at))]

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

        def params(at: int) -> list[tuple[str, str]]:
            return self._page_query(query, name, at)

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
                    window.start(ahead, self._fetch(fetcher, params(ahead), ahead))
                    ahead += inc
                while inc and window.room() and ahead < end:
                    window.start(ahead, self._fetch(fetcher, params(ahead), ahead))
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


def _error_value(path: tuple[str, ...] | None, whole: Any) -> bool:
    """Whether a typed answer has a value (not null) at ``error_if_set`` (its keys)."""
    if path is None:
        return False
    value = _struct_at(whole, path)
    return value is not _MISSING and value is not None


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
    found = _walk_raw(top, segments(pointer))
    return found is not _MISSING and bytes(found).strip() != b"null"


def _cursor_value(value: Any, pointer: str) -> str | None:
    if value is _MISSING or value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise SchemaError(
        f"response{pointer.replace('/', '.')}: expected a cursor string, got {type(value).__name__}"
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


def _struct_at(value: Any, path: Sequence[str]) -> Any:
    """The value at ``path`` in a decoded envelope struct (``_MISSING`` when absent)."""
    for name in path:
        if value is None or value is msgspec.UNSET:
            return _MISSING
        value = getattr(value, _attr(name))
    return _MISSING if value is msgspec.UNSET else value


@functools.cache
def _attr(key: str) -> str:
    """A struct attribute for a wire key (any text: hex-encoded)."""
    return "k" + key.encode().hex()


def envelope_type(name: str, shape: str, row_type: type[Any], meta: Sequence[str]) -> Any:
    """The type of a whole answer of ``shape``: rows typed, paging values as they come
    (each optional: absent is told apart from null)."""
    if not shape:
        return list[row_type]  # type: ignore[valid-type]
    tree: dict[str, Any] = {}
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
        node = node.setdefault(key, {})
    node[last] = list[row_type]  # type: ignore[valid-type]

    def build(label: str, spec: dict[str, Any], on_rows_path: bool, depth: int) -> Any:
        fields: list[Any] = []
        for key, sub in spec.items():
            along = on_rows_path and depth < len(heads) and heads[depth] == key
            if isinstance(sub, dict):
                kind = build(f"{label}_{len(fields)}", sub, along, depth + 1)
            elif sub is None:
                kind = Any
            else:
                kind = sub
            if along or (sub is not None and not isinstance(sub, dict)):
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
    return out


_CLASSES: dict[tuple[str, int], tuple[Definition, type[DefinedProvider]]] = {}


def provider_class(
    provider_id: str,
    definition: Definition,
    *,
    wire_labels: bool = False,
    hooks: Mapping[str, Any] = MappingProxyType({}),
) -> type[DefinedProvider]:
    """The provider class of one definition: its row struct and decoders built once.

    A seed provider names its unreadable fields by their wire keys (``wire_labels``) and
    may override :class:`Provider` hooks a definition cannot say (``hooks``, such as
    ``error_detail``)."""
    key = (provider_id, id(definition))
    found = _CLASSES.get(key)
    if found is not None and found[0] is definition:
        return found[1]
    name = "".join(part.capitalize() for part in provider_id.replace("-", "_").split("_"))
    schema = RowSchema(name, definition, wire_labels=wire_labels)
    meta = meta_pointers(definition)
    if definition.error_if_set:
        meta = [*meta, definition.error_if_set]
    envelopes = {
        shape: msgspec.json.Decoder(
            envelope_type(name, shape, schema.row_type, meta), strict=schema.strict
        )
        for shape in definition.shapes
    }
    f = definition.fields
    caps = Capabilities(
        deadlines=f.deadline is not None or definition.deadline is not None,
        leases=f.leases is not None,
        activity=f.last_activity is not None,
    )
    cls = type(
        f"{name}Provider",
        (DefinedProvider,),
        {
            "id": provider_id,
            "path": definition.path,
            "capabilities": caps,
            "row_fields": schema.fields,
            "definition": definition,
            "schema": schema,
            "_envelopes": envelopes,
            "_meta": meta_pointers(definition),
            "_paths": {p: segments(p) for p in (*definition.shapes, *meta)},
            "_error_at": segments(definition.error_if_set) if definition.error_if_set else None,
            **hooks,
        },
    )
    _CLASSES[key] = (definition, cls)
    return cls


def defined_provider(target: DefinedTarget) -> DefinedProvider:
    """The provider of one defined target."""
    return provider_class(target.provider, target.definition)(target)
