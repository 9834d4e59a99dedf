"""The simulators of the providers added later (E2B, Browserbase, Daytona, Runloop, Steel).

Over a real socket: each one's key header and error shape, its paging walked to the end,
its status filter, its answers to bad parameters, and its rows exactly as its official SDK
reads them. (tests/test_simulators.py covers the machinery they share with the seed five.)
"""

# House style is `assert expected == actual`, which SIM300 calls a Yoda condition.

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from exporter.simulators import (
    SIMULATORS,
    BrowserbaseSimulator,
    DaytonaSimulator,
    E2bSimulator,
    Fault,
    RunloopSimulator,
    Simulator,
    SteelSimulator,
    browserbase_population,
    browserbase_row,
    daytona_population,
    daytona_row,
    e2b_population,
    e2b_row,
    iso,
    runloop_population,
    runloop_row,
    steel_population,
    steel_row,
)
from exporter.simulators import browserbase as browserbase_module
from exporter.simulators import daytona as daytona_module
from exporter.simulators import e2b as e2b_module
from exporter.simulators import runloop as runloop_module
from exporter.simulators import steel as steel_module
from exporter.simulators.keyset import token, untoken

T0 = 1_700_000_000.0
T0_MS = 1_700_000_000_000
PROVIDERS = ["e2b", "browserbase", "daytona", "runloop", "steel"]
KEY_HEADERS = {
    "e2b": ("X-API-Key", ""),
    "browserbase": ("X-BB-API-Key", ""),
    "daytona": ("Authorization", "Bearer "),
    "runloop": ("Authorization", "Bearer "),
    "steel": ("steel-api-key", ""),
}
"""Each provider's key header and what precedes the key in it, as its SDK sends them."""
STATUSES: Mapping[str, tuple[str, ...]] = {
    "e2b": e2b_module.STATES,
    "browserbase": browserbase_module.STATUSES,
    "daytona": daytona_module.STATES,
    "runloop": runloop_module.STATUSES,
    "steel": steel_module.STATUSES,
}
STATUS_KEY = {
    "e2b": "state",
    "browserbase": "status",
    "daytona": "state",
    "runloop": "status",
    "steel": "status",
}
ID_KEY = {"e2b": "sandboxID"}
POPULATIONS = {
    "e2b": e2b_population,
    "browserbase": browserbase_population,
    "daytona": daytona_population,
    "runloop": runloop_population,
    "steel": steel_population,
}

Client = TestClient[web.Request, web.Application]
Params = Mapping[str, str] | list[tuple[str, str]] | None


def auth(provider: str, key: str = "test-key") -> dict[str, str]:
    name, prefix = KEY_HEADERS[provider]
    return {name: prefix + key}


def sample(provider: str) -> Simulator:
    """A simulator of `provider` holding one row it serves with default parameters."""
    rows = {
        "e2b": [e2b_row("sbx1", "running", T0, T0 + 300)],
        "browserbase": [browserbase_row("bb1", "RUNNING", T0, T0 + 300)],
        "daytona": [daytona_row("dt1", "started", T0)],
        "runloop": [runloop_row("dbx_1", "running", T0_MS)],
        "steel": [steel_row("st1", "live", T0)],
    }
    return SIMULATORS[provider](sessions=rows[provider])


async def get(
    client: Client, provider: str, params: Params = None, headers: Mapping[str, str] | None = None
) -> tuple[int, Any, Mapping[str, str]]:
    """Status, JSON body and headers of a GET to the provider's path (with its key by default)."""
    path = SIMULATORS[provider].path
    sent = auth(provider) if headers is None else headers
    response = await client.get(path, params=params, headers=sent)
    return response.status, await response.json(), response.headers


async def start(aiohttp_client: AiohttpClient, sim: Simulator) -> Client:
    return await aiohttp_client(sim.app())


def ids(rows: list[dict[str, Any]], key: str = "id") -> list[str]:
    return [row[key] for row in rows]


# --- common: registry, auth, errors, faults, populations ----------------------------------


def test_the_new_simulators_are_registered_with_their_sdks_routes() -> None:
    """SIMULATORS carries the five under their provider ids with the paths the SDKs call."""
    expected = {
        "e2b": (E2bSimulator, "/v2/sandboxes"),
        "browserbase": (BrowserbaseSimulator, "/v1/sessions"),
        "daytona": (DaytonaSimulator, "/api/sandbox"),  # the SDK's base URL ends in /api
        "runloop": (RunloopSimulator, "/v1/devboxes"),
        "steel": (SteelSimulator, "/v1/sessions"),
    }
    assert expected == {key: (SIMULATORS[key], SIMULATORS[key].path) for key in PROVIDERS}


UNAUTHORIZED = {
    "e2b": {"code": 401, "message": "Unauthorized"},
    "browserbase": {"statusCode": 401, "error": "Unauthorized", "message": "Unauthorized"},
    "daytona": {"statusCode": 401, "message": "Unauthorized", "error": "Unauthorized"},
    "runloop": {"error": "Unauthorized"},
    "steel": {"statusCode": 401, "error": "Unauthorized", "message": "Unauthorized"},
}


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("how", ["missing", "wrong-key", "other-header", "bare-or-bearer"])
async def test_a_missing_or_wrong_key_gets_401_in_the_apis_error_shape(
    aiohttp_client: AiohttpClient, provider: str, how: str
) -> None:
    """Only the SDK's own header with the key authorizes; anything else is a 401 body."""
    name, prefix = KEY_HEADERS[provider]
    other = "X-API-Key" if name == "Authorization" else "Authorization"
    headers = {
        "missing": {},
        "wrong-key": {name: prefix + "wrong"},
        "other-header": {other: "Bearer test-key"},
        "bare-or-bearer": {name: "test-key" if prefix else "Bearer test-key"},
    }[how]
    sim = sample(provider)
    client = await start(aiohttp_client, sim)
    status, body, _ = await get(client, provider, headers=headers)
    assert (401, UNAUTHORIZED[provider]) == (status, body)
    assert [False] == [log.authorized for log in sim.requests]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_custom_key_is_accepted_and_its_header_never_recorded(
    aiohttp_client: AiohttpClient, provider: str
) -> None:
    """The constructor's key authorizes; the request log keeps other headers, not the key's."""
    sim = type(sample(provider))(api_key="secret")
    client = await start(aiohttp_client, sim)
    status, _, _ = await get(client, provider, headers=auth(provider, "secret") | {"X-Probe": "1"})
    assert 200 == status
    name, _ = KEY_HEADERS[provider]
    assert (True, None, "1") == (
        sim.requests[0].authorized,
        sim.requests[0].headers.get(name),
        sim.requests[0].headers.get("X-Probe"),
    )


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_status_fault_answers_in_the_apis_error_shape_then_clears(
    aiohttp_client: AiohttpClient, provider: str
) -> None:
    """Fault(status=503, times=1) sends the provider's error body once, then serves again."""
    sim = sample(provider)
    sim.fault = Fault(status=503, times=1, headers={"Retry-After": "2"})
    client = await start(aiohttp_client, sim)
    expected = {
        "e2b": {"code": 503, "message": "Service Unavailable"},
        "browserbase": {
            "statusCode": 503,
            "error": "Service Unavailable",
            "message": "Service Unavailable",
        },
        "daytona": {
            "statusCode": 503,
            "message": "Service Unavailable",
            "error": "Service Unavailable",
        },
        "runloop": {"error": "Service Unavailable"},
        "steel": {
            "statusCode": 503,
            "error": "Service Unavailable",
            "message": "Service Unavailable",
        },
    }
    status, body, headers = await get(client, provider)
    assert (503, expected[provider], "2") == (status, body, headers.get("Retry-After"))
    assert 200 == (await get(client, provider))[0]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_other_paths_answer_404_in_the_apis_error_shape(
    aiohttp_client: AiohttpClient, provider: str
) -> None:
    """A path beside the served route is a 404 with the provider's error body."""
    client = await start(aiohttp_client, sample(provider))
    response = await client.get("/v1/nothing", headers=auth(provider))
    body = await response.json()
    assert 404 == response.status
    assert "Not Found" in str(body)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_populations_are_seeded_and_hold_every_status(provider: str) -> None:
    """The same seed gives the same rows, another seed others; every status is present."""
    make = POPULATIONS[provider]
    rows = make(T0, seed=3)
    assert rows == make(T0, seed=3)
    assert rows != make(T0, seed=4)
    id_key = ID_KEY.get(provider, "id")
    assert len(rows) == len({row[id_key] for row in rows})
    assert set(STATUSES[provider]) == {row[STATUS_KEY[provider]] for row in rows}


def test_keyset_tokens_round_trip_and_refuse_anything_else() -> None:
    """An opaque cursor decodes back to its row id; garbage and empty decode to None."""
    assert "sbx-1/ä" == untoken(token("sbx-1/ä"))
    assert [None, None, None] == [untoken(raw) for raw in ("", "!!!", "c2J4LTE=")]


# --- e2b ---------------------------------------------------------------------------------


def e2b_sandboxes(count: int) -> list[dict[str, Any]]:
    """`count` sandboxes started a second apart, every third paused."""
    return [
        e2b_row(f"sbx{i:02d}", "paused" if i % 3 == 2 else "running", T0 + i, T0 + i + 300)
        for i in range(count)
    ]


async def test_e2b_walks_pages_by_the_next_token_header_absent_on_the_last(
    aiohttp_client: AiohttpClient,
) -> None:
    """limit=3 over 7 sandboxes: three pages newest first; the last has no X-Next-Token."""
    sim = E2bSimulator(sessions=e2b_sandboxes(7))
    client = await start(aiohttp_client, sim)
    pages, tokens, query = [], [], {"limit": "3"}
    while True:
        status, body, headers = await get(client, "e2b", query)
        assert 200 == status
        pages.append(ids(body, "sandboxID"))
        tokens.append(headers.get("X-Next-Token"))
        if "X-Next-Token" not in headers:
            break
        query = {"limit": "3", "nextToken": headers["X-Next-Token"]}
    assert [["sbx06", "sbx05", "sbx04"], ["sbx03", "sbx02", "sbx01"], ["sbx00"]] == pages
    assert [token("sbx04"), token("sbx01"), None] == tokens
    assert ["3", "3", "3"] == [log.query["limit"] for log in sim.requests]


async def test_e2b_defaults_to_100_rows_and_both_states(aiohttp_client: AiohttpClient) -> None:
    """Without `limit` a page holds 100; without `state` running and paused both come."""
    client = await start(aiohttp_client, E2bSimulator(sessions=e2b_sandboxes(101)))
    _, body, headers = await get(client, "e2b")
    assert (100, {"running", "paused"}, token("sbx01")) == (
        len(body),
        {row["state"] for row in body},
        headers.get("X-Next-Token"),
    )


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("running", ["sbx04", "sbx03", "sbx01", "sbx00"]),
        ("paused", ["sbx05", "sbx02"]),
        ("running,paused", ["sbx05", "sbx04", "sbx03", "sbx02", "sbx01", "sbx00"]),
        ("paused,running", ["sbx05", "sbx04", "sbx03", "sbx02", "sbx01", "sbx00"]),
    ],
)
async def test_e2b_state_is_a_comma_list(
    aiohttp_client: AiohttpClient, state: str, expected: list[str]
) -> None:
    """`state=` takes one state or several joined by commas, as the SDK sends them."""
    client = await start(aiohttp_client, E2bSimulator(sessions=e2b_sandboxes(6)))
    _, body, _ = await get(client, "e2b", {"state": state})
    assert expected == ids(body, "sandboxID")


async def test_e2b_paging_keeps_within_the_state_filter(aiohttp_client: AiohttpClient) -> None:
    """A token from a filtered page continues the filtered list."""
    client = await start(aiohttp_client, E2bSimulator(sessions=e2b_sandboxes(9)))
    _, first, headers = await get(client, "e2b", {"state": "running", "limit": "4"})
    query = {"state": "running", "limit": "4", "nextToken": headers["X-Next-Token"]}
    _, second, last = await get(client, "e2b", query)
    assert (["sbx07", "sbx06", "sbx04", "sbx03"], ["sbx01", "sbx00"], None) == (
        ids(first, "sandboxID"),
        ids(second, "sandboxID"),
        last.get("X-Next-Token"),
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": "0"}, "Invalid limit: 0 (must be between 1 and 100)"),
        ({"limit": "101"}, "Invalid limit: 101 (must be between 1 and 100)"),
        ({"limit": "ten"}, "Invalid format for parameter limit: 'ten' is not an integer"),
        ({"state": "killed"}, "Invalid state: 'killed' (expected one of running, paused)"),
        ({"state": "RUNNING"}, "Invalid state: 'RUNNING' (expected one of running, paused)"),
        ({"nextToken": "nope"}, "Invalid next token: nope"),
        ({"nextToken": token("gone")}, f"Invalid next token: {token('gone')}"),
        ({"order": "newest"}, "Invalid order: 'newest' (expected asc or desc)"),
        (
            {"startedAfter": "yesterday"},
            "Invalid format for parameter startedAfter: 'yesterday' is not RFC 3339",
        ),
    ],
)
async def test_e2b_rejects_bad_parameters_with_400(
    aiohttp_client: AiohttpClient, params: dict[str, str], message: str
) -> None:
    """A bad limit, state, token, order or time is a 400 `{code, message}`."""
    client = await start(aiohttp_client, E2bSimulator(sessions=e2b_sandboxes(2)))
    status, body, _ = await get(client, "e2b", params)
    assert (400, {"code": 400, "message": message}) == (status, body)


async def test_e2b_order_started_after_template_and_metadata_filter(
    aiohttp_client: AiohttpClient,
) -> None:
    """`order=asc` is oldest first; `startedAfter`, `template`, `metadata` narrow the list."""
    rows = e2b_sandboxes(4)
    rows[1] |= {"templateID": "code", "alias": "code-interpreter", "metadata": {"team": "a"}}
    rows[3] |= {"metadata": {"team": "a", "env": "prod"}}
    client = await start(aiohttp_client, E2bSimulator(sessions=rows))
    cases = [
        ({"order": "asc"}, ["sbx00", "sbx01", "sbx02", "sbx03"]),
        ({"startedAfter": iso(T0 + 1)}, ["sbx03", "sbx02"]),
        ({"template": "code"}, ["sbx01"]),
        ({"template": "code-interpreter"}, ["sbx01"]),
        ({"metadata": "team=a"}, ["sbx03", "sbx01"]),
        ({"metadata": "team=a&env=prod"}, ["sbx03"]),
    ]
    for params, expected in cases:
        _, body, _ = await get(client, "e2b", params)
        assert (params, expected) == (params, ids(body, "sandboxID"))


async def test_e2b_serves_rows_exactly(aiohttp_client: AiohttpClient) -> None:
    """A row has every key the SDK requires; `endAt` is set on paused rows too."""
    row = e2b_row("sbx1", "paused", T0, T0 + 300, alias="base", metadata={"k": "v"})
    client = await start(aiohttp_client, E2bSimulator(sessions=[row]))
    _, body, _ = await get(client, "e2b")
    assert [
        {
            "sandboxID": "sbx1",
            "templateID": "base",
            "alias": "base",
            "clientID": "6532622b",
            "startedAt": "2023-11-14T22:13:20.000Z",
            "endAt": "2023-11-14T22:18:20.000Z",
            "cpuCount": 2,
            "memoryMB": 512,
            "diskSizeMB": 1024,
            "metadata": {"k": "v"},
            "state": "paused",
            "envdVersion": "0.2.0",
        }
    ] == body
    assert "alias" not in e2b_row("sbx2", "running", T0, T0)


async def test_e2b_endless_repeats_the_last_page_with_its_own_token(
    aiohttp_client: AiohttpClient,
) -> None:
    """With `endless` the last page still names a token, one that asks for the same page."""
    client = await start(aiohttp_client, E2bSimulator(sessions=e2b_sandboxes(3), endless=True))
    _, first, headers = await get(client, "e2b", {"limit": "2"})
    _, second, again = await get(
        client, "e2b", {"limit": "2", "nextToken": headers["X-Next-Token"]}
    )
    _, third, _ = await get(client, "e2b", {"limit": "2", "nextToken": again["X-Next-Token"]})
    assert (["sbx02", "sbx01"], ["sbx00"], ["sbx00"]) == (
        ids(first, "sandboxID"),
        ids(second, "sandboxID"),
        ids(third, "sandboxID"),
    )
    assert headers["X-Next-Token"] == again["X-Next-Token"]  # the request's own token


async def test_e2b_token_header_is_not_sent_on_errors_or_fault_bodies(
    aiohttp_client: AiohttpClient,
) -> None:
    """Only a served page carries X-Next-Token: a 401 or a body fault never does."""
    sim = E2bSimulator(sessions=e2b_sandboxes(3))
    client = await start(aiohttp_client, sim)
    _, _, unauthorized = await get(client, "e2b", {"limit": "1"}, headers={})
    sim.fault = Fault(body=b"[]", times=1)
    _, _, faulted = await get(client, "e2b", {"limit": "1"})
    assert (None, None) == (unauthorized.get("X-Next-Token"), faulted.get("X-Next-Token"))


# --- browserbase -------------------------------------------------------------------------


def browserbase_sessions() -> list[dict[str, Any]]:
    """Each status twice, in stored order; the second of each carries user metadata."""
    return [
        browserbase_row(
            f"bb{i:02d}",
            status,
            T0 + i,
            T0 + i + 900,
            user_metadata={"team": "a"} if i >= 5 else None,
        )
        for i, status in enumerate(browserbase_module.STATUSES * 2)
    ]


async def test_browserbase_serves_one_bare_array_in_stored_order(
    aiohttp_client: AiohttpClient,
) -> None:
    """No paging: every session in one array, whatever `limit` or `page` say."""
    client = await start(aiohttp_client, BrowserbaseSimulator(sessions=browserbase_sessions()))
    _, body, _ = await get(client, "browserbase", {"limit": "2", "page": "3"})
    assert [f"bb{i:02d}" for i in range(10)] == ids(body)


@pytest.mark.parametrize("status", browserbase_module.STATUSES)
async def test_browserbase_filters_on_one_upper_case_status(
    aiohttp_client: AiohttpClient, status: str
) -> None:
    """`status=` takes one upper-case value, as the SDK sends it, and keeps those rows."""
    client = await start(aiohttp_client, BrowserbaseSimulator(sessions=browserbase_sessions()))
    _, body, _ = await get(client, "browserbase", {"status": status})
    assert [status, status] == [row["status"] for row in body]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"status": "running"}, "querystring/status must be equal to one of the allowed values"),
        ({"status": "LIVE"}, "querystring/status must be equal to one of the allowed values"),
        ({"q": "team=a"}, "Invalid query: team=a"),
    ],
)
async def test_browserbase_rejects_bad_parameters_with_a_fastify_400(
    aiohttp_client: AiohttpClient, params: dict[str, str], message: str
) -> None:
    """A lower-case or unknown status, or a malformed `q`, is a 400 validation error."""
    client = await start(aiohttp_client, BrowserbaseSimulator(sessions=browserbase_sessions()))
    status, body, _ = await get(client, "browserbase", params)
    expected = {
        "statusCode": 400,
        "error": "Bad Request",
        "message": message,
        "code": "FST_ERR_VALIDATION",
    }
    assert (400, expected) == (status, body)


async def test_browserbase_q_filters_on_user_metadata(aiohttp_client: AiohttpClient) -> None:
    """`q=user_metadata['team']:'a'` keeps the sessions whose metadata says so."""
    client = await start(aiohttp_client, BrowserbaseSimulator(sessions=browserbase_sessions()))
    _, body, _ = await get(client, "browserbase", {"q": "user_metadata['team']:'a'"})
    _, both, _ = await get(
        client,
        "browserbase",
        {"q": "user_metadata['team']:'a' AND user_metadata['team']:'b'", "status": "ERROR"},
    )
    assert (["bb05", "bb06", "bb07", "bb08", "bb09"], []) == (ids(body), both)


async def test_browserbase_serves_rows_exactly(aiohttp_client: AiohttpClient) -> None:
    """A row carries every key the SDK reads, timestamps RFC 3339, the status upper-case."""
    row = browserbase_row("bb1", "COMPLETED", T0, T0 + 900, ended_at=T0 + 60, keep_alive=True)
    client = await start(aiohttp_client, BrowserbaseSimulator(sessions=[row]))
    _, body, _ = await get(client, "browserbase")
    assert [
        {
            "id": "bb1",
            "createdAt": "2023-11-14T22:13:20.000Z",
            "startedAt": "2023-11-14T22:13:20.000Z",
            "updatedAt": "2023-11-14T22:13:20.000Z",
            "endedAt": "2023-11-14T22:14:20.000Z",
            "expiresAt": "2023-11-14T22:28:20.000Z",
            "keepAlive": True,
            "projectId": "proj_0001",
            "proxyBytes": 0,
            "region": "us-west-2",
            "status": "COMPLETED",
            "contextId": None,
            "userMetadata": None,
        }
    ] == body


# --- daytona -----------------------------------------------------------------------------


def daytona_sandboxes(count: int) -> list[dict[str, Any]]:
    """`count` sandboxes created a second apart, cycling started, stopped, creating."""
    states = ("started", "stopped", "creating")
    return [daytona_row(f"dt{i:02d}", states[i % 3], T0 + i) for i in range(count)]


async def test_daytona_walks_pages_by_next_cursor_null_on_the_last(
    aiohttp_client: AiohttpClient,
) -> None:
    """limit=3 over 7 sandboxes: three pages newest first, `nextCursor` null on the last."""
    client = await start(aiohttp_client, DaytonaSimulator(sessions=daytona_sandboxes(7)))
    pages, cursors, query = [], [], {"limit": "3"}
    while True:
        status, body, _ = await get(client, "daytona", query)
        assert (200, ["items", "nextCursor"]) == (status, sorted(body))
        pages.append(ids(body["items"]))
        cursors.append(body["nextCursor"])
        if body["nextCursor"] is None:
            break
        query = {"limit": "3", "cursor": body["nextCursor"]}
    assert [["dt06", "dt05", "dt04"], ["dt03", "dt02", "dt01"], ["dt00"]] == pages
    assert [token("dt04"), token("dt01"), None] == cursors


async def test_daytona_defaults_to_100_and_orders_ascending_on_request(
    aiohttp_client: AiohttpClient,
) -> None:
    """Without `limit` a page holds 100; `order=asc` lists oldest first."""
    client = await start(aiohttp_client, DaytonaSimulator(sessions=daytona_sandboxes(101)))
    _, body, _ = await get(client, "daytona")
    _, ascending, _ = await get(client, "daytona", {"order": "asc", "limit": "2"})
    assert (100, token("dt01"), ["dt00", "dt01"]) == (
        len(body["items"]),
        body["nextCursor"],
        ids(ascending["items"]),
    )


async def test_daytona_states_repeat_and_page_within_the_filter(
    aiohttp_client: AiohttpClient,
) -> None:
    """`states=a&states=b` keeps either state; the cursor continues the filtered list."""
    client = await start(aiohttp_client, DaytonaSimulator(sessions=daytona_sandboxes(9)))
    query = [("states", "started"), ("states", "creating"), ("limit", "4")]
    _, first, _ = await get(client, "daytona", query)
    _, second, _ = await get(client, "daytona", [*query, ("cursor", first["nextCursor"])])
    assert (["dt08", "dt06", "dt05", "dt03"], ["dt02", "dt00"], None) == (
        ids(first["items"]),
        ids(second["items"]),
        second["nextCursor"],
    )


async def test_daytona_reports_every_bad_parameter_at_once(aiohttp_client: AiohttpClient) -> None:
    """Bad limit, state, booleans, order and cursor: one NestJS 400 listing each problem."""
    client = await start(aiohttp_client, DaytonaSimulator(sessions=daytona_sandboxes(2)))
    query = [
        ("limit", "201"),
        ("states", "started,stopped"),
        ("order", "up"),
        ("includeWarm", "yes"),
        ("includeErroredDeleted", "1"),
        ("cursor", "bogus"),
    ]
    status, body, _ = await get(client, "daytona", query)
    states = ", ".join(daytona_module.STATES)
    assert (
        400,
        {
            "statusCode": 400,
            "message": [
                "limit must not be greater than 200",
                f"each value in states must be one of the following values: {states}",
                "order must be one of the following values: asc, desc",
                "includeWarm must be a boolean value",
                "includeErroredDeleted must be a boolean value",
                "cursor is invalid",
            ],
            "error": "Bad Request",
        },
    ) == (status, body)


@pytest.mark.parametrize(
    ("limit", "message"),
    [("0", "limit must not be less than 1"), ("x", "limit must be an integer number")],
)
async def test_daytona_limit_bounds(
    aiohttp_client: AiohttpClient, limit: str, message: str
) -> None:
    """`limit` is 1..200 and an integer."""
    client = await start(aiohttp_client, DaytonaSimulator())
    status, body, _ = await get(client, "daytona", {"limit": limit})
    assert (400, [message]) == (status, body["message"])


async def test_daytona_leaves_out_warm_pool_and_errored_deleted_unless_asked(
    aiohttp_client: AiohttpClient,
) -> None:
    """Unclaimed warm sandboxes and errored ones being destroyed come only when asked for."""
    rows = [
        daytona_row("plain", "started", T0),
        daytona_row("warm", "started", T0 + 1, warm_pool_id="wp1"),
        daytona_row("gone", "error", T0 + 2, desired_state="destroyed"),
        daytona_row("broken", "build_failed", T0 + 3),
    ]
    client = await start(aiohttp_client, DaytonaSimulator(sessions=rows))
    listed = []
    for query in ({}, {"includeWarm": "true"}, {"includeErroredDeleted": "true"}):
        _, body, _ = await get(client, "daytona", query)
        listed.append(ids(body["items"]))
    assert [["broken", "plain"], ["broken", "warm", "plain"], ["broken", "gone", "plain"]] == listed


async def test_daytona_id_and_name_are_prefix_filters(aiohttp_client: AiohttpClient) -> None:
    """`id=` and `name=` keep the sandboxes whose id or name starts with the value."""
    rows = [daytona_row("ab1", "started", T0, name="web"), daytona_row("b2", "started", T0 + 1)]
    client = await start(aiohttp_client, DaytonaSimulator(sessions=rows))
    _, by_id, _ = await get(client, "daytona", {"id": "ab"})
    _, by_name, _ = await get(client, "daytona", {"name": "b"})
    assert (["ab1"], ["b2"]) == (ids(by_id["items"]), ids(by_name["items"]))


async def test_daytona_organization_header_must_match_when_sent(
    aiohttp_client: AiohttpClient,
) -> None:
    """With `organization` set, naming another one is a 403; naming it or none is served."""
    sim = DaytonaSimulator(sessions=daytona_sandboxes(1), organization="org1")
    client = await start(aiohttp_client, sim)
    answers = []
    for extra in ({}, {"X-Daytona-Organization-ID": "org1"}, {"X-Daytona-Organization-ID": "x"}):
        status, body, _ = await get(client, "daytona", headers=auth("daytona") | extra)
        answers.append((status, body if status != 200 else None))
    assert [
        (200, None),
        (200, None),
        (403, {"statusCode": 403, "message": "Organization x not found", "error": "Forbidden"}),
    ] == answers
    assert ["org1", "x"] == [log.headers["X-Daytona-Organization-ID"] for log in sim.requests[1:]]


async def test_daytona_serves_rows_exactly(aiohttp_client: AiohttpClient) -> None:
    """A row carries the SDK's required keys; `state` may be absent; deadline inputs as set."""
    rows = [
        daytona_row(
            "dt1",
            "started",
            T0,
            last_activity_at=T0 + 60,
            auto_stop_interval=15,
            auto_pause_interval=30,
            auto_destroy_at=T0 + 7200,
        ),
        daytona_row("dt0", None, T0 - 1, last_activity_at=None),
    ]
    client = await start(aiohttp_client, DaytonaSimulator(sessions=rows))
    _, body, _ = await get(client, "daytona")
    required = {
        "organizationId": "org-0001",
        "target": "us",
        "user": "daytona",
        "public": False,
        "networkBlockAll": False,
        "cpu": 1,
        "gpu": 0,
        "memory": 1,
        "disk": 3,
        "labels": {},
        "toolboxProxyUrl": "https://proxy.app.daytona.io/toolbox",
        "autoArchiveInterval": 10_080,
        "autoDeleteInterval": -1,
    }
    assert {
        "items": [
            {
                "id": "dt1",
                "name": "dt1",
                "state": "started",
                "desiredState": "started",
                "createdAt": "2023-11-14T22:13:20.000Z",
                "updatedAt": "2023-11-14T22:14:20.000Z",
                "lastActivityAt": "2023-11-14T22:14:20.000Z",
                "autoStopInterval": 15,
                "autoPauseInterval": 30,
                "autoDestroyAt": "2023-11-15T00:13:20.000Z",
                **required,
            },
            {
                "id": "dt0",
                "name": "dt0",
                "desiredState": "started",
                "createdAt": "2023-11-14T22:13:19.000Z",
                "updatedAt": "2023-11-14T22:13:19.000Z",
                "autoStopInterval": 15,
                "autoPauseInterval": 0,
                "autoDestroyAt": None,
                **required,
            },
        ],
        "nextCursor": None,
    } == body


async def test_daytona_endless_names_a_cursor_on_the_last_page(
    aiohttp_client: AiohttpClient,
) -> None:
    """With `endless` the last page's cursor asks for that page again."""
    sim = DaytonaSimulator(sessions=daytona_sandboxes(3), endless=True)
    client = await start(aiohttp_client, sim)
    _, first, _ = await get(client, "daytona", {"limit": "2"})
    _, last, _ = await get(client, "daytona", {"limit": "2", "cursor": first["nextCursor"]})
    _, again, _ = await get(client, "daytona", {"limit": "2", "cursor": last["nextCursor"]})
    assert (["dt00"], first["nextCursor"], ["dt00"]) == (
        ids(last["items"]),
        last["nextCursor"],
        ids(again["items"]),
    )


# --- runloop -----------------------------------------------------------------------------


def runloop_devboxes(count: int) -> list[dict[str, Any]]:
    """`count` devboxes created a second apart, cycling running, suspended, shutdown."""
    statuses = ("running", "suspended", "shutdown")
    return [runloop_row(f"dbx_{i:02d}", statuses[i % 3], T0_MS + 1000 * i) for i in range(count)]


async def test_runloop_walks_pages_by_starting_after_until_has_more_is_false(
    aiohttp_client: AiohttpClient,
) -> None:
    """limit=3 over 7 devboxes: three pages newest first with the total on each."""
    client = await start(aiohttp_client, RunloopSimulator(sessions=runloop_devboxes(7)))
    pages, flags, query = [], [], {"limit": "3"}
    while True:
        status, body, _ = await get(client, "runloop", query)
        assert (200, 7) == (status, body["total_count"])
        pages.append(ids(body["devboxes"]))
        flags.append(body["has_more"])
        if not body["has_more"]:
            break
        query = {"limit": "3", "starting_after": body["devboxes"][-1]["id"]}
    assert [["dbx_06", "dbx_05", "dbx_04"], ["dbx_03", "dbx_02", "dbx_01"], ["dbx_00"]] == pages
    assert [True, True, False] == flags


async def test_runloop_defaults_to_20_and_can_leave_the_total_out(
    aiohttp_client: AiohttpClient,
) -> None:
    """Without `limit` a page holds 20; `include_total_count=false` makes the total null."""
    client = await start(aiohttp_client, RunloopSimulator(sessions=runloop_devboxes(21)))
    _, body, _ = await get(client, "runloop")
    _, uncounted, _ = await get(client, "runloop", {"include_total_count": "false"})
    assert (20, True, 21, None) == (
        len(body["devboxes"]),
        body["has_more"],
        body["total_count"],
        uncounted["total_count"],
    )


async def test_runloop_filters_on_one_status_and_pages_within_it(
    aiohttp_client: AiohttpClient,
) -> None:
    """`status=running` keeps running devboxes; the total and paging follow the filter."""
    client = await start(aiohttp_client, RunloopSimulator(sessions=runloop_devboxes(9)))
    _, first, _ = await get(client, "runloop", {"status": "running", "limit": "2"})
    query = {"status": "running", "limit": "2", "starting_after": "dbx_03"}
    _, second, _ = await get(client, "runloop", query)
    assert ((["dbx_06", "dbx_03"], True, 3), (["dbx_00"], False, 3)) == (
        (ids(first["devboxes"]), first["has_more"], first["total_count"]),
        (ids(second["devboxes"]), second["has_more"], second["total_count"]),
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": "5001"}, "Invalid limit: 5001 (an integer from 1 to 5000)"),
        ({"limit": "0"}, "Invalid limit: 0 (an integer from 1 to 5000)"),
        ({"status": "RUNNING"}, "Invalid status: RUNNING"),
        ({"status": "stopped"}, "Invalid status: stopped"),
        ({"starting_after": "dbx_99"}, "Invalid starting_after: devbox dbx_99 not found"),
        ({"include_total_count": "yes"}, "Invalid include_total_count: yes"),
    ],
)
async def test_runloop_rejects_bad_parameters_with_400(
    aiohttp_client: AiohttpClient, params: dict[str, str], message: str
) -> None:
    """A bad limit, status, cursor or flag is a 400."""
    client = await start(aiohttp_client, RunloopSimulator(sessions=runloop_devboxes(2)))
    status, body, _ = await get(client, "runloop", params)
    assert (400, {"error": message}) == (status, body)


async def test_runloop_accepts_5000_and_serves_rows_exactly(aiohttp_client: AiohttpClient) -> None:
    """`limit=5000` is the largest page; a row has epoch-ms times and its launch parameters."""
    idle = {"after_idle": {"idle_time_seconds": 600, "on_idle": "suspend"}}
    row = runloop_row("dbx_1", "suspended", T0_MS, keep_alive_time_seconds=None, lifecycle=idle)
    client = await start(aiohttp_client, RunloopSimulator(sessions=[row]))
    _, body, _ = await get(client, "runloop", {"limit": "5000"})
    assert {
        "devboxes": [
            {
                "id": "dbx_1",
                "name": None,
                "status": "suspended",
                "create_time_ms": T0_MS,
                "end_time_ms": None,
                "launch_parameters": {
                    "keep_alive_time_seconds": None,
                    "after_idle": None,
                    "lifecycle": idle,
                },
                "capabilities": [],
                "metadata": {},
                "state_transitions": [
                    {"status": "suspended", "transition_time_ms": T0_MS, "failure_reason": None}
                ],
                "failure_reason": None,
                "shutdown_reason": None,
                "blueprint_id": None,
                "snapshot_id": None,
            }
        ],
        "has_more": False,
        "total_count": 1,
    } == body


async def test_runloop_endless_says_has_more_and_repeats_the_last_page(
    aiohttp_client: AiohttpClient,
) -> None:
    """With `endless` the last page says `has_more` and asking after it serves it again."""
    sim = RunloopSimulator(sessions=runloop_devboxes(3), endless=True)
    client = await start(aiohttp_client, sim)
    _, last, _ = await get(client, "runloop", {"limit": "2", "starting_after": "dbx_01"})
    _, again, _ = await get(client, "runloop", {"limit": "2", "starting_after": "dbx_00"})
    assert ((["dbx_00"], True), (["dbx_00"], True)) == (
        (ids(last["devboxes"]), last["has_more"]),
        (ids(again["devboxes"]), again["has_more"]),
    )


# --- steel -------------------------------------------------------------------------------


def steel_sessions(count: int) -> list[dict[str, Any]]:
    """`count` sessions created a second apart, cycling live, released, failed."""
    return [
        steel_row(f"st{i:02d}", steel_module.STATUSES[i % 3], T0 + i, project_id=f"p{i % 2}")
        for i in range(count)
    ]


async def test_steel_walks_pages_by_cursor_id_the_last_row_id(
    aiohttp_client: AiohttpClient,
) -> None:
    """limit=3 over 7 sessions: `nextCursor` is the page's last id, null on the last page."""
    client = await start(aiohttp_client, SteelSimulator(sessions=steel_sessions(7)))
    pages, cursors, query = [], [], {"limit": "3"}
    while True:
        status, body, _ = await get(client, "steel", query)
        assert (200, ["nextCursor", "sessions"]) == (status, sorted(body))
        pages.append(ids(body["sessions"]))
        cursors.append(body["nextCursor"])
        if body["nextCursor"] is None:
            break
        query = {"limit": "3", "cursorId": body["nextCursor"]}
    assert [["st06", "st05", "st04"], ["st03", "st02", "st01"], ["st00"]] == pages
    assert ["st04", "st01", None] == cursors


async def test_steel_answers_a_cursor_at_the_last_row_with_an_empty_page(
    aiohttp_client: AiohttpClient,
) -> None:
    """The SDK asks once more after the last row: that is a normal, empty page."""
    client = await start(aiohttp_client, SteelSimulator(sessions=steel_sessions(3)))
    status, body, _ = await get(client, "steel", {"cursorId": "st00"})
    assert (200, {"sessions": [], "nextCursor": None}) == (status, body)


async def test_steel_defaults_to_50_and_counts_only_filtered_queries(
    aiohttp_client: AiohttpClient,
) -> None:
    """Without `limit` a page holds 50; `totalCount` comes only with a status filter."""
    client = await start(aiohttp_client, SteelSimulator(sessions=steel_sessions(60)))
    _, body, _ = await get(client, "steel")
    _, live, _ = await get(client, "steel", {"status": "live", "limit": "100"})
    assert (50, "st10", False, 20, {"live"}, 20) == (
        len(body["sessions"]),
        body["nextCursor"],
        "totalCount" in body,
        live["totalCount"],
        {row["status"] for row in live["sessions"]},
        len(live["sessions"]),
    )


async def test_steel_filters_by_status_and_project_and_pages_within(
    aiohttp_client: AiohttpClient,
) -> None:
    """`status=` and `projectId=` narrow the list; the cursor continues the filtered list."""
    client = await start(aiohttp_client, SteelSimulator(sessions=steel_sessions(12)))
    query = {"status": "released", "limit": "2"}
    _, first, _ = await get(client, "steel", query)
    _, second, _ = await get(client, "steel", query | {"cursorId": first["nextCursor"]})
    _, project, _ = await get(client, "steel", {"projectId": "p1", "status": "failed"})
    assert (["st10", "st07"], ["st04", "st01"], None, ["st11", "st05"]) == (
        ids(first["sessions"]),
        ids(second["sessions"]),
        second["nextCursor"],
        ids(project["sessions"]),
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": "101"}, "querystring/limit must be an integer from 1 to 100"),
        ({"limit": "0"}, "querystring/limit must be an integer from 1 to 100"),
        ({"status": "LIVE"}, "querystring/status must be equal to one of the allowed values"),
        ({"status": "running"}, "querystring/status must be equal to one of the allowed values"),
        ({"cursorId": "st99"}, "Invalid cursor: session st99 not found"),
    ],
)
async def test_steel_rejects_bad_parameters_with_a_fastify_400(
    aiohttp_client: AiohttpClient, params: dict[str, str], message: str
) -> None:
    """A bad limit, status or cursor is a 400."""
    client = await start(aiohttp_client, SteelSimulator(sessions=steel_sessions(2)))
    status, body, _ = await get(client, "steel", params)
    assert (400, {"statusCode": 400, "error": "Bad Request", "message": message}) == (
        status,
        body,
    )


async def test_steel_serves_rows_exactly(aiohttp_client: AiohttpClient) -> None:
    """A row has every key the SDK requires; `timeout` and `duration` in milliseconds."""
    row = steel_row(
        "st1",
        "released",
        T0,
        900_000,
        duration_ms=60_000,
        inactivity_timeout_ms=120_000,
        release_reason="user_requested",
    )
    client = await start(aiohttp_client, SteelSimulator(sessions=[row]))
    _, body, _ = await get(client, "steel")
    assert {
        "sessions": [
            {
                "id": "st1",
                "createdAt": "2023-11-14T22:13:20.000Z",
                "status": "released",
                "timeout": 900_000,
                "duration": 60_000,
                "inactivityTimeout": 120_000,
                "releaseReason": "user_requested",
                "creditsUsed": 0,
                "eventCount": 0,
                "proxyBytesUsed": 0,
                "debugUrl": "https://api.steel.dev/v1/sessions/debug?id=st1",
                "sessionViewerUrl": "https://app.steel.dev/sessions/st1",
                "websocketUrl": "wss://connect.steel.dev?sessionId=st1",
                "dimensions": {"width": 1920, "height": 1080},
                "optimizeBandwidth": {"blockImages": False},
                "headless": True,
                "isSelenium": False,
                "solveCaptcha": False,
            }
        ],
        "nextCursor": None,
    } == body


async def test_steel_endless_names_a_cursor_and_repeats_the_last_page(
    aiohttp_client: AiohttpClient,
) -> None:
    """With `endless` the last page names its last id, and asking after it serves it again."""
    client = await start(aiohttp_client, SteelSimulator(sessions=steel_sessions(3), endless=True))
    _, last, _ = await get(client, "steel", {"limit": "2", "cursorId": "st01"})
    _, again, _ = await get(client, "steel", {"limit": "2", "cursorId": "st00"})
    assert ((["st00"], "st00"), (["st00"], "st00")) == (
        (ids(last["sessions"]), last["nextCursor"]),
        (ids(again["sessions"]), again["nextCursor"]),
    )
