"""Property-based tests: no JSON a provider can send makes its parser fail other than cleanly.

Every provider's row schema (``CODEC``) and ``pages`` walk are fed arbitrary JSON documents
(the values ``orjson.loads`` can return) and valid spec rows broken on purpose (keys
dropped, values of the wrong type, odd timestamps). A row is always kept (its unreadable
fields unknown, each named as a problem) or left out with a problem; a walk raises nothing
but :class:`PollError` and its subclasses; the aggregate builder takes every page.

``pages`` is driven by a fake fetcher that answers from a list of documents without
touching a socket, on one event loop shared by the module's examples.
Examples are drawn without a database (nothing is written to the tree); a failure found
once belongs in an explicit ``@example``.
"""

# House style is `assert expected == actual`, which SIM300 calls a Yoda condition.

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar, cast

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from exporter.config.settings import Settings
from exporter.core.records import Phase, SessionRecord
from exporter.polling.aggregate import AggregateBuilder
from exporter.providers import Provider, agi, chaser, notte, provider_for, together, trigger
from exporter.providers.rows import Page
from exporter.simulators import agi_row, chaser_row, notte_row, together_row, trigger_row
from exporter.upstream.errors import PollError, Reason
from exporter.upstream.fetch import PageFetcher

T = TypeVar("T")
Json = Any
ParseRow = Callable[[object, str], SessionRecord]

EXAMPLES_ENV = "SESSION_EXPORTER_PROPERTY_EXAMPLES"
"""Examples per property (default 200); raise it for a deeper local hunt."""
PROPERTY = settings(
    max_examples=int(os.environ.get(EXAMPLES_ENV, "200")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
NOW = 1_700_000_000.0

# --- arbitrary JSON ------------------------------------------------------------------------

INT64 = st.integers(min_value=-(2**63), max_value=2**64 - 1)
"""orjson decodes integers in this range as ints (larger ones become floats)."""

SCALARS = (
    st.none()
    | st.booleans()
    | INT64
    | st.floats(allow_nan=False, allow_infinity=False)  # orjson rejects NaN and Infinity
    | st.text(max_size=12)
)
JSON: st.SearchStrategy[Json] = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=16,
)

# --- odd timestamps ----------------------------------------------------------------------

ODD_TIMESTAMPS = st.sampled_from(
    [
        "",
        "Z",
        "now",
        "2024-02-30T00:00:00Z",
        "2024-01-01T24:00:00Z",
        "2024-01-01T00:00:00+24:00",
        "2024-01-01T00:00:00-23:59",
        "2024-01-01T00:00:00.123456789Z",
        "2024-01-01T00:00:00z",
        "2024-01-01 00:00:00",
        "2024-01-01",
        "20240101T000000Z",
        "0001-01-01T00:00:00+23:59",
        "9999-12-31T23:59:59.999999-23:59",
        "0000-01-01T00:00:00Z",
        "10000-01-01T00:00:00Z",
        "2024-01-01T00:00:00\x00",
        "\uff11\uff19\uff17\uff10-01-01T00:00:00Z",  # full-width digits
    ]
)
OFFSETS = st.builds(
    timezone,
    st.timedeltas(
        min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)
    ),
)


@st.composite
def iso_variants(draw: st.DrawFn) -> str:
    """Any datetime from year 1 to 9999, naive or with an odd offset, in varied ISO spellings."""
    moment = draw(st.datetimes(timezones=st.none() | st.just(UTC) | OFFSETS))
    text = moment.isoformat(
        sep=draw(st.sampled_from(["T", " "])),
        timespec=draw(st.sampled_from(["auto", "hours", "minutes", "seconds", "microseconds"])),
    )
    if text.endswith("+00:00") and draw(st.booleans()):
        text = text.removesuffix("+00:00") + draw(st.sampled_from(["Z", "z"]))
    return text


TIMESTAMPS = (
    ODD_TIMESTAMPS
    | iso_variants()
    | st.text(max_size=30)
    | INT64  # unix seconds where a string is due
    | st.floats(allow_nan=False, allow_infinity=False)
)

# --- valid rows from the simulators' factories, and broken ones -----------------------------

UNIX = st.floats(min_value=0, max_value=4_102_444_800)  # 1970 .. 2100
IDS = st.text(min_size=1, max_size=12)


def statuses(documented: Mapping[str, Phase]) -> st.SearchStrategy[str]:
    """A documented status in any case and padding, or any text."""
    spelled = st.sampled_from(sorted(documented)).flatmap(
        lambda s: st.sampled_from([s, s.upper(), f" {s.title()} "])
    )
    return spelled | st.text(max_size=12)


ROWS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "together": st.builds(
        together_row,
        IDS,
        UNIX,
        UNIX,
        last_execute_at=st.none() | UNIX,
        execute_count=INT64,
    ),
    "agi": st.builds(
        agi_row, IDS, statuses(agi.STATUS_PHASES), UNIX, agent_name=st.text(max_size=8)
    ),
    "trigger": st.builds(
        trigger_row,
        IDS,
        st.sampled_from(["ACTIVE", "CLOSED", "EXPIRED"]),
        UNIX,
        UNIX,
        st.none() | UNIX,
        type=st.text(max_size=8),
    ),
    "chaser": st.builds(
        chaser_row,
        IDS,
        statuses(chaser.STATUS_PHASES),
        UNIX,
        st.none() | INT64,
        session_type=st.text(max_size=8),
    ),
    "notte": st.builds(
        notte_row,
        IDS,
        statuses(notte.STATUS_PHASES),
        UNIX,
        UNIX,
        idle_timeout_minutes=INT64,
        max_duration_minutes=st.none() | INT64,
        closed_at=st.none() | UNIX,
    ),
}
TIME_KEYS: dict[str, tuple[str, ...]] = {
    "together": ("started_at", "expires_at", "last_execute_at"),
    "agi": ("created_at",),
    "trigger": ("createdAt", "updatedAt", "expiresAt", "closedAt"),
    "chaser": ("created_at",),
    "notte": ("created_at", "last_accessed_at", "closed_at"),
}


@st.composite
def broken(draw: st.DrawFn, provider: str) -> dict[str, Any]:
    """A valid row of ``provider`` with keys dropped, values swapped for other JSON types,
    and timestamps replaced by odd ones (each possibly none of them)."""
    row = dict(draw(ROWS[provider]))
    keys = sorted(row)
    for key in draw(st.lists(st.sampled_from(keys), max_size=3, unique=True)):
        del row[key]
    for key in draw(st.lists(st.sampled_from(keys), max_size=3)):
        row[key] = draw(JSON)
    for key in draw(st.lists(st.sampled_from(TIME_KEYS[provider]), max_size=3)):
        row[key] = draw(TIMESTAMPS)
    return row


def any_row(provider: str) -> st.SearchStrategy[Json]:
    """What may stand in a provider's row list: a valid row, a broken one, or any JSON."""
    return ROWS[provider] | broken(provider) | JSON


def row_list(provider: str) -> st.SearchStrategy[Json]:
    """A list of rows, or any JSON where the list belongs."""
    return st.lists(any_row(provider), max_size=5) | JSON


def or_json(strategy: st.SearchStrategy[Json]) -> st.SearchStrategy[Json]:
    return strategy | JSON


PAGES = st.integers(min_value=1, max_value=4)

DOCUMENTS: dict[str, st.SearchStrategy[list[Json]]] = {
    "together": st.lists(
        or_json(
            st.fixed_dictionaries(
                {"data": or_json(st.fixed_dictionaries({"sessions": row_list("together")}))},
                optional={"errors": or_json(st.lists(JSON, max_size=3))},
            )
        ),
        min_size=1,
        max_size=1,
    ),
    "agi": st.lists(row_list("agi"), min_size=1, max_size=1),
    "trigger": st.lists(
        or_json(
            st.fixed_dictionaries(
                {"data": row_list("trigger")},
                optional={
                    "pagination": or_json(
                        st.fixed_dictionaries(
                            {},
                            optional={
                                "next": or_json(st.sampled_from(["c1", "c2", ""])),
                                "previous": JSON,
                            },
                        )
                    )
                },
            )
        ),
        min_size=1,
        max_size=6,
    ),
    "chaser": st.lists(
        or_json(
            st.fixed_dictionaries(
                {"sessions": row_list("chaser"), "total": or_json(st.integers(-2, 12) | INT64)}
            )
        ),
        min_size=1,
        max_size=4,
    ),
    "notte": st.lists(
        or_json(
            st.fixed_dictionaries(
                {"items": row_list("notte"), "has_next": or_json(st.booleans())},
                optional={"page": JSON, "page_size": JSON, "has_previous": JSON},
            )
        ),
        min_size=1,
        max_size=4,
    ),
}

# --- driving the providers ----------------------------------------------------------------


class FakeFetcher:
    """Answers ``get_body`` from a list of documents; past its end, the max_pages guard.

    Each document is sent as ``orjson`` writes it; one given as ``bytes`` is sent as it is.
    """

    def __init__(self, documents: Sequence[Json]) -> None:
        self._answers = [d if isinstance(d, bytes) else orjson.dumps(d) for d in documents]
        self.params: list[dict[str, str]] = []
        self.upstream_errors: list[str] = []
        self.upstream_errors_more = 0

    async def get_body(self, params: Mapping[str, str] | None = None) -> bytes:
        self.params.append(dict(params or {}))
        if len(self.params) > len(self._answers):
            raise PollError(Reason.TOO_MANY_PAGES, "stopped after the fake's last page")
        return self._answers[len(self.params) - 1]

    def report_upstream_errors(self, messages: list[str], *, more: int = 0) -> None:
        self.upstream_errors.extend(messages)
        self.upstream_errors_more += more


_RUNNER: list[asyncio.Runner] = []


@pytest.fixture(scope="module", autouse=True)
def event_loop_runner() -> Iterator[None]:
    """One event loop for the module's walks (a loop per example would cost more)."""
    with asyncio.Runner() as runner:
        _RUNNER.append(runner)
        yield
        _RUNNER.clear()


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a walk to its end on the module's event loop."""
    return _RUNNER[0].run(coro)


async def collect(provider: Provider[Any], fetcher: FakeFetcher) -> list[Page]:
    return [page async for page in provider.pages(cast(PageFetcher, fetcher))]


def provider(name: str, **options: Any) -> Provider[Any]:
    """A provider adapter for a target of ``name`` with ``options``."""
    settings = Settings(targets=[{"name": "t", "provider": name, "api_key": "k", **options}])
    return provider_for(settings.targets[0])


STATUS_PHASES: dict[str, Mapping[str, Phase]] = {
    "together": together.STATUS_PHASES,
    "agi": agi.STATUS_PHASES,
    "trigger": trigger.STATUS_PHASES,
    "chaser": chaser.STATUS_PHASES,
    "notte": notte.STATUS_PHASES,
}


def check_page(page: Page) -> None:
    """Every row of ``page`` reads as the aggregate reads it; every problem is named."""
    assert page.read >= len(page.rows)
    for row in page.rows:
        assert isinstance(row.id, str)
        assert row.id
        assert isinstance(page.status or row.status, str)
        for moment in (row.created, row.deadline, row.last_activity):
            assert moment is None or (isinstance(moment, datetime) and moment.tzinfo is not None)
            assert moment is None or math.isfinite(moment.timestamp())
        for count in (row.leases, row.executions):
            assert count is None or type(count) is int
        assert row.kind is None or isinstance(row.kind, str)
    for problem in page.invalid:
        assert problem.field
        assert problem.message


def walk(adapter: Provider[Any], documents: list[Json]) -> None:
    """Walk ``documents``: a PollError is fine; otherwise the rows are valid and aggregate."""
    try:
        pages = run(collect(adapter, FakeFetcher(documents)))
    except PollError:
        return
    for page in pages:
        check_page(page)
    for detail_max, label_cap in ((0, 20), (2, 1)):
        builder = AggregateBuilder(
            statuses=adapter.statuses(),
            capabilities=adapter.capabilities,
            now=NOW,
            only_listed=adapter.counts_only_listed(),
            detail_phases=frozenset(Phase) if detail_max else None,
            detail_max=detail_max,
            max_label_values=label_cap,
        )
        for page in pages:
            builder.add_page(page)
        aggregate = builder.build()
        ids = {row.id for page in pages for row in page.rows}
        assert len(ids) == aggregate.sessions + aggregate.dropped


# --- the properties --------------------------------------------------------------------------


CODECS: dict[str, Any] = {
    "together": together.CODEC,
    "agi": agi.CODEC,
    "trigger": trigger.CODEC,
    "chaser": chaser.CODEC,
    "notte": notte.CODEC,
}
ROW_CASES = st.one_of(*(st.tuples(st.just(name), any_row(name)) for name in sorted(ROWS)))


def deep_json(depth: int) -> bytes:
    """JSON text of empty arrays nested ``depth`` levels deep."""
    return b"[" * depth + b"]" * depth


@settings(PROPERTY, max_examples=5 * PROPERTY.max_examples)
@given(case=ROW_CASES)
@example(("notte", {"session_id": "n", "status": "active", "created_at": "2024-01-01T00:00:00Z"}))
def test_any_row_is_kept_or_counted_as_invalid(case: tuple[str, Json]) -> None:
    """Each provider's row schema reads any row, broken or not: it is kept (its unreadable
    fields unknown and named as problems) or left out with a problem; nothing raises."""
    name, value = case
    status = "active" if name in ("trigger", "together") else None
    page = CODECS[name].decode(orjson.dumps([value]), where=lambda i: f"row[{i}]", status=status)
    check_page(page)
    assert 1 == page.read
    assert page.rows or page.invalid


@PROPERTY
@given(documents=DOCUMENTS["together"])
@example(documents=[{"data": {"sessions": []}, "errors": [{"message": ["not text"]}]}])
@example(  # regression: orjson.loads takes 1024 levels, orjson.dumps only 254
    documents=[b'{"data": {"sessions": []}, "errors": [{"code": ' + deep_json(300) + b"}]}"]
)
def test_together_pages_fail_only_with_poll_errors(documents: list[Json]) -> None:
    """Together's walk over any answer yields valid records or raises a PollError."""
    walk(provider("together"), documents)


@PROPERTY
@given(documents=DOCUMENTS["agi"])
def test_agi_pages_fail_only_with_poll_errors(documents: list[Json]) -> None:
    """AGI's one-request walk over any answer yields valid records or raises a PollError."""
    walk(provider("agi"), documents)


@PROPERTY
@given(ended_window=st.sampled_from([0, 86_400]), documents=DOCUMENTS["trigger"])
def test_trigger_pages_fail_only_with_poll_errors(ended_window: int, documents: list[Json]) -> None:
    """Trigger's cursor walks (active only, or all three statuses) over any answers yield
    valid records or raise a PollError; a repeated cursor never loops."""
    walk(provider("trigger", ended_window=ended_window), documents)


@PROPERTY
@given(documents=DOCUMENTS["chaser"])
def test_chaser_pages_fail_only_with_poll_errors(documents: list[Json]) -> None:
    """Chaser's offset walk over any answers (any `total`) yields valid records or raises
    a PollError."""
    walk(provider("chaser", page_size=3), documents)


@PROPERTY
@given(only_active=st.booleans(), documents=DOCUMENTS["notte"])
def test_notte_pages_fail_only_with_poll_errors(only_active: bool, documents: list[Json]) -> None:
    """Notte's page walk over any answers (any `has_next`) yields valid records with
    finite deadlines, or raises a PollError."""
    walk(provider("notte", only_active=only_active), documents)


def test_the_fake_fetcher_stops_a_walk_that_never_ends() -> None:
    """The fake answers past its last document with the max_pages PollError, as the real
    fetcher does, so an endless `has_next` ends in a PollError and not a hang."""
    endless = [{"items": [], "has_next": True}] * 3
    with pytest.raises(PollError) as caught:
        run(collect(provider("notte"), FakeFetcher(endless)))
    assert Reason.TOO_MANY_PAGES == caught.value.reason


# --- deep nesting: examples kept outside hypothesis ----------------------------------------
# Hypothesis raises the recursion limit while it runs a test, which hides these; the
# exporter runs with Python's default limit (1000), as these plain tests do.

DEEP = 1020
"""Nesting orjson still decodes (its limit is 1024 levels) and the default repr cannot."""


def test_an_answer_nested_1020_deep_fails_as_decode_without_a_crash() -> None:
    """A field holding an array nested 1020 deep (a timestamp, an upstream error) fails the
    poll as ``decode``, as invalid JSON does: no RecursionError escapes (fields.timestamp
    once put repr(value) in its message and overflowed the stack)."""
    documents = [
        b'[{"session_id": "a", "status": "x", "created_at": ' + deep_json(DEEP) + b"}]",
        b'{"data": {"sessions": []}, "errors": [' + deep_json(DEEP) + b"]}",
    ]
    for name, document in zip(("agi", "together"), documents, strict=True):
        with pytest.raises(PollError) as caught:
            run(collect(provider(name), FakeFetcher([document])))
        assert Reason.DECODE == caught.value.reason
        assert "response is not valid JSON: nested too deeply" == caught.value.message


def test_a_nested_timestamp_is_an_invalid_field() -> None:
    """A timestamp field holding an array makes that field unknown and is named as a
    problem; the row still counts."""
    document = b'[{"session_id": "a", "status": "x", "created_at": ' + deep_json(50) + b"}]"
    (page,) = run(collect(provider("agi"), FakeFetcher([document])))
    assert ["created_at"] == [problem.field for problem in page.invalid]
    assert [None] == [row.created for row in page.rows]


# --- a Chaser list that changes while it is paged (issue 22.7) ------------------------------


class ShiftingChaser:
    """A Chaser list, newest first, that changes before each request it answers: some rows
    end and leave it, and new ones are listed first (as a list newest first adds them)."""

    def __init__(self, size: int, changes: Sequence[tuple[list[float], int]]) -> None:
        self.rows = [chaser_row(f"s{i:03d}", "running", NOW - i) for i in range(size)]
        self.changes = list(changes)
        self.gone: set[str] = set()
        self.served = 0
        self.params: list[dict[str, str]] = []

    async def get_body(self, params: Mapping[str, str] | None = None) -> bytes:
        query = dict(params or {})
        self.params.append(query)
        if len(self.params) > 400:
            raise PollError(Reason.TOO_MANY_PAGES, "the walk did not end")
        if self.served and self.changes:
            ends, starts = self.changes.pop(0)
            for where in ends:
                if self.rows:
                    self.gone.add(self.rows.pop(int(where * len(self.rows)))["id"])
            for n in range(starts):
                self.rows.insert(0, chaser_row(f"n{self.served}-{n}", "running", NOW))
        self.served += 1
        offset, limit = int(query.get("offset", "0")), int(query["limit"])
        rows = self.rows[offset : offset + limit]
        return orjson.dumps({"sessions": rows, "total": len(self.rows)})

    def report_upstream_errors(self, messages: list[str]) -> None:
        raise AssertionError(messages)


@settings(PROPERTY)
@given(
    size=st.integers(0, 60),
    page_size=st.integers(1, 12),
    concurrency=st.sampled_from([1, 4]),
    changes=st.lists(
        st.tuples(st.lists(st.floats(0, 1, exclude_max=True), max_size=3), st.integers(0, 2)),
        max_size=12,
    ),
)
def test_every_chaser_session_listed_for_the_whole_walk_is_read(
    size: int, page_size: int, concurrency: int, changes: list[tuple[list[float], int]]
) -> None:
    """Whatever sessions end (anywhere in the list) and start (listed first) between the
    requests of an offset walk, every session listed from its start to its end is read; or
    the poll fails, never counting short. It fails only when a page comes back equal, row for
    row, to the one before it while ``total`` stayed the same (as many sessions started as
    ended): :class:`RepeatGuard` cannot tell that from a server that ignores ``offset``."""
    fake = ShiftingChaser(size, changes)
    adapter = provider("chaser", page_size=page_size, page_concurrency=concurrency)
    failure: str | None = None
    try:
        pages = run(collect(adapter, cast(FakeFetcher, fake)))
    except PollError as exc:
        failure = exc.message
    if failure is not None:
        assert "repeats the previous page row for row" in failure
        return

    read = {row.id for page in pages for row in page.rows}
    throughout = {f"s{i:03d}" for i in range(size)} - fake.gone
    assert set() == throughout - read
