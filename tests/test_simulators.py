"""Behaviour of the simulated providers over a real socket: paging, auth, filters, faults."""

# House style is `assert expected == actual`, which SIM300 calls a Yoda condition.

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from multidict import MultiDict
from pytest_aiohttp import AiohttpClient

from exporter.cli.demo import DemoWorld
from exporter.simulators import (
    OMIT,
    SIMULATORS,
    AgiSimulator,
    ChaserSimulator,
    Fault,
    NotteSimulator,
    Simulator,
    TogetherSimulator,
    TriggerSimulator,
    agi_row,
    chaser_list_row,
    chaser_row,
    iso,
    notte_row,
    serve,
    together_row,
    trigger_row,
)
from exporter.simulators.base import TRICKLE_CHUNK
from tests.conftest import Serve

T0 = 1_700_000_000.0
AUTH = {"Authorization": "Bearer test-key"}
PROVIDERS = ["together", "agi", "trigger", "chaser", "notte"]

Client = TestClient[web.Request, web.Application]
Params = Mapping[str, str] | list[tuple[str, str]] | None


def sample(provider: str) -> Simulator:
    """A simulator of `provider` holding one row it serves with default parameters."""
    rows = {
        "together": [together_row("ses_1", T0, T0 + 600)],
        "agi": [agi_row("a1", "running", T0)],
        "trigger": [trigger_row("session_1", "ACTIVE", T0, T0)],
        "chaser": [chaser_row("c1", "running", T0)],
        "notte": [notte_row("n1", "active", T0, T0 + 5)],
    }
    return SIMULATORS[provider](sessions=rows[provider])


async def start(aiohttp_client: AiohttpClient, sim: Simulator) -> Client:
    return await aiohttp_client(sim.app())


async def get_json(
    client: Client, path: str, *, params: Params = None, headers: Mapping[str, str] = AUTH
) -> tuple[int, Any]:
    response = await client.get(path, params=params, headers=headers)
    return response.status, await response.json()


def ids(rows: list[dict[str, Any]], key: str = "id") -> list[str]:
    return [row[key] for row in rows]


# --- helpers of the package -------------------------------------------------------------


@pytest.mark.parametrize(
    ("fraction", "zulu", "expected"),
    [
        (0, True, "2023-11-14T22:13:20Z"),
        (3, True, "2023-11-14T22:13:20.250Z"),
        (6, True, "2023-11-14T22:13:20.250000Z"),
        (3, False, "2023-11-14T22:13:20.250+00:00"),
        (0, False, "2023-11-14T22:13:20+00:00"),
    ],
)
def test_iso_formats_utc_with_the_requested_precision_and_suffix(
    fraction: int, zulu: bool, expected: str
) -> None:
    """iso() renders UTC with 0/3/6 fraction digits and a `Z` or `+00:00` suffix."""
    assert expected == iso(T0 + 0.25, fraction=fraction, zulu=zulu)


def test_iso_rejects_other_precisions() -> None:
    """iso() only knows the 0, 3 and 6 digit precisions the providers use."""
    with pytest.raises(ValueError, match="fraction must be 0, 3 or 6"):
        iso(T0, fraction=2)


def test_registry_maps_each_provider_id_to_its_simulator() -> None:
    """SIMULATORS is keyed by the provider id each class declares, with the SDKs' paths."""
    expected = {
        "together": (TogetherSimulator, "/v1/tci/sessions"),
        "agi": (AgiSimulator, "/v1/sessions"),
        "trigger": (TriggerSimulator, "/api/v1/sessions"),
        "chaser": (ChaserSimulator, "/v1/sessions"),
        "notte": (NotteSimulator, "/sessions/"),  # the SDK's route (the spec: /sessions)
    }
    # the five added later are tested in tests/test_simulators_more.py
    seed = {key: cls for key, cls in SIMULATORS.items() if key in PROVIDERS}
    assert expected == {key: (cls, cls.path) for key, cls in seed.items()}
    assert 10 == len(SIMULATORS)
    assert all(key == cls.provider for key, cls in SIMULATORS.items())


def test_row_factories_format_unix_times_and_keep_strings_verbatim() -> None:
    """Factories format unix seconds, keep strings verbatim, and let keywords add or override."""
    assert "2023-11-14T22:13:20.000Z" == chaser_row("c", "running", T0)["created_at"]
    assert "yesterday-ish" == chaser_row("c", "running", "yesterday-ish")["created_at"]
    assert "2023-11-14T22:13:20.000000Z" == notte_row("n", "active", T0, T0)["created_at"]
    row = chaser_row("c", "x", T0, session_type="cdp", extra=1)
    assert ("c", "x", "cdp", 1) == (row["id"], row["status"], row["session_type"], row["extra"])


def test_notte_row_omits_max_duration_when_none_and_mirrors_timeout_minutes() -> None:
    """notte_row drops `max_duration_minutes` for None; deprecated `timeout_minutes` = idle."""
    row = notte_row("n", "active", T0, T0, idle_timeout_minutes=7, max_duration_minutes=None)
    assert "max_duration_minutes" not in row
    assert 7 == row["timeout_minutes"]
    assert 15 == notte_row("n", "active", T0, T0)["max_duration_minutes"]


def test_trigger_row_defaults_closed_at_of_closed_rows_to_updated_at() -> None:
    """A CLOSED trigger row gets `closedAt` = `updatedAt` unless given; others get null."""
    assert iso(T0 + 9) == trigger_row("s", "CLOSED", T0, T0 + 9)["closedAt"]
    assert trigger_row("s", "ACTIVE", T0, T0 + 9)["closedAt"] is None
    assert iso(T0 + 1) == trigger_row("s", "CLOSED", T0, T0 + 9, closed_at=T0 + 1)["closedAt"]


async def test_serve_yields_a_reachable_base_url_and_closes_the_socket_on_exit() -> None:
    """serve() binds a real port, yields `http://host:port`, and stops listening on exit."""
    sim = sample("agi")
    async with aiohttp.ClientSession() as session:
        async with serve(sim) as base_url:
            assert base_url.startswith("http://127.0.0.1:")
            async with session.get(base_url + "/v1/sessions", headers=AUTH) as response:
                assert 200 == response.status
                assert ["a1"] == ids(await response.json(), "session_id")
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(base_url + "/v1/sessions", headers=AUTH)


async def test_serve_exit_cuts_pending_delays_short() -> None:
    """Leaving serve() does not wait out a long delay fault of an abandoned request."""
    sim = sample("agi")
    sim.fault = Fault(delay=30)
    began = time.monotonic()
    async with aiohttp.ClientSession() as session, serve(sim) as base_url:
        with pytest.raises(TimeoutError):
            await session.get(
                base_url + "/v1/sessions", headers=AUTH, timeout=aiohttp.ClientTimeout(total=0.1)
            )
    assert time.monotonic() - began < 5


# --- behaviour common to every provider --------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "test-key"}],
    ids=["missing", "wrong-key", "no-scheme"],
)
async def test_requests_without_the_bearer_key_get_401(
    aiohttp_client: AiohttpClient, provider: str, headers: dict[str, str]
) -> None:
    """Without `Authorization: Bearer <api_key>` every provider answers 401 in its error shape.

    The shapes are those the SDKs read: AGI's FastAPI `detail`, Chaser's `code`/`message`.
    """
    sim = sample(provider)
    client = await start(aiohttp_client, sim)
    expected = {
        "together": {"errors": ["Unauthorized"]},
        "agi": {"detail": "Unauthorized"},
        "trigger": {"error": "Unauthorized"},
        "chaser": {"code": "unauthorized", "message": "Unauthorized"},
        "notte": {"detail": "Unauthorized"},
    }
    assert (401, expected[provider]) == await get_json(client, sim.path, headers=headers)
    assert [False] == [log.authorized for log in sim.requests]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_custom_api_key_is_the_one_accepted(
    aiohttp_client: AiohttpClient, provider: str
) -> None:
    """The key given to the constructor is required; the default `test-key` then fails."""
    sim = SIMULATORS[provider](api_key="secret")
    client = await start(aiohttp_client, sim)
    status, _ = await get_json(client, sim.path, headers={"Authorization": "Bearer secret"})
    assert 200 == status
    status, _ = await get_json(client, sim.path)
    assert 401 == status


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_status_fault_without_body_sends_provider_error_then_clears(
    aiohttp_client: AiohttpClient, provider: str
) -> None:
    """Fault(status, times=1) answers once with a provider-shaped JSON error, then clears."""
    sim = sample(provider)
    sim.fault = Fault(status=503, times=1)
    client = await start(aiohttp_client, sim)
    expected = {
        "together": {"errors": ["Service Unavailable"]},
        "agi": {"detail": "Service Unavailable"},
        "trigger": {"error": "Service Unavailable"},
        "chaser": {"code": "error", "message": "Service Unavailable"},
        "notte": {"detail": "Service Unavailable"},
    }
    assert (503, expected[provider]) == await get_json(client, sim.path)
    assert sim.fault is None
    status, _ = await get_json(client, sim.path)
    assert 200 == status


async def test_body_fault_sends_the_raw_bytes_as_json(aiohttp_client: AiohttpClient) -> None:
    """Fault(body=...) serves the bytes verbatim with status 200 and a JSON content type."""
    sim = sample("chaser")
    sim.fault = Fault(body=b'{"sessions": [')
    client = await start(aiohttp_client, sim)
    response = await client.get(sim.path, headers=AUTH)
    assert (200, "application/json", '{"sessions": [') == (
        response.status,
        response.content_type,
        await response.text(),
    )


async def test_body_fault_with_status_and_content_type_header(
    aiohttp_client: AiohttpClient,
) -> None:
    """A fault's own Content-Type header replaces the JSON one (e.g. an HTML gateway page)."""
    sim = sample("notte")
    sim.fault = Fault(
        status=502, body=b"<html>bad gateway</html>", headers={"Content-Type": "text/html"}
    )
    client = await start(aiohttp_client, sim)
    response = await client.get(sim.path, headers=AUTH)
    assert (502, "text/html", "<html>bad gateway</html>") == (
        response.status,
        response.content_type,
        await response.text(),
    )


async def test_fault_headers_are_sent(aiohttp_client: AiohttpClient) -> None:
    """Fault headers (e.g. Retry-After on a 429) are added to the response."""
    sim = sample("trigger")
    sim.fault = Fault(status=429, headers={"Retry-After": "3"})
    client = await start(aiohttp_client, sim)
    response = await client.get(sim.path, headers=AUTH)
    assert (429, "3", {"error": "Too Many Requests"}) == (
        response.status,
        response.headers["Retry-After"],
        await response.json(),
    )


async def test_headers_only_fault_decorates_the_normal_response(
    aiohttp_client: AiohttpClient,
) -> None:
    """A fault with neither status nor body still serves the page, with its extra headers."""
    sim = sample("agi")
    sim.fault = Fault(headers={"X-RateLimit-Remaining": "0"})
    client = await start(aiohttp_client, sim)
    response = await client.get(sim.path, headers=AUTH)
    assert (200, "0") == (response.status, response.headers["X-RateLimit-Remaining"])
    assert ["a1"] == ids(await response.json(), "session_id")


async def test_fault_without_times_persists_until_cleared(aiohttp_client: AiohttpClient) -> None:
    """times=None keeps failing every request until the test sets `fault` to None."""
    sim = sample("together")
    sim.fault = Fault(status=500)
    client = await start(aiohttp_client, sim)
    statuses = [(await client.get(sim.path, headers=AUTH)).status for _ in range(3)]
    sim.fault = None
    statuses.append((await client.get(sim.path, headers=AUTH)).status)
    assert [500, 500, 500, 200] == statuses


async def test_fault_times_counts_requests_down(aiohttp_client: AiohttpClient) -> None:
    """times=2 fails exactly two requests, then the simulator clears the fault itself."""
    sim = sample("chaser")
    sim.fault = Fault(status=500, times=2)
    client = await start(aiohttp_client, sim)
    statuses = [(await client.get(sim.path, headers=AUTH)).status for _ in range(3)]
    assert [500, 500, 200] == statuses
    assert sim.fault is None


async def test_delay_fault_with_times_1_times_out_once(aiohttp_client: AiohttpClient) -> None:
    """Fault(delay, times=1) makes one request outlast the client timeout; the next is prompt."""
    sim = sample("notte")
    sim.fault = Fault(delay=5, times=1)
    client = await start(aiohttp_client, sim)
    with pytest.raises(TimeoutError):
        await client.get(sim.path, headers=AUTH, timeout=aiohttp.ClientTimeout(total=0.2))
    assert sim.fault is None
    began = time.monotonic()
    status, body = await get_json(client, sim.path)
    assert (200, ["n1"]) == (status, ids(body["items"], "session_id"))
    assert time.monotonic() - began < 1


async def test_delay_precedes_the_faulted_answer(aiohttp_client: AiohttpClient) -> None:
    """A fault with delay and status waits `delay` seconds, then sends the error."""
    sim = sample("trigger")
    sim.fault = Fault(status=500, delay=0.3)
    client = await start(aiohttp_client, sim)
    began = time.monotonic()
    status, _ = await get_json(client, sim.path)
    assert 500 == status
    assert time.monotonic() - began >= 0.3


async def test_faults_apply_before_auth(aiohttp_client: AiohttpClient) -> None:
    """An outage fault answers even a request with a wrong key, and that request uses it up."""
    sim = sample("agi")
    sim.fault = Fault(status=503, times=1)
    client = await start(aiohttp_client, sim)
    status, _ = await get_json(client, sim.path, headers={})
    assert 503 == status
    status, _ = await get_json(client, sim.path, headers={})
    assert 401 == status


async def test_every_request_is_logged_with_path_query_and_authorization(
    aiohttp_client: AiohttpClient,
) -> None:
    """`requests` records each request in order, including repeated query keys and 404s."""
    sim = sample("trigger")
    client = await start(aiohttp_client, sim)
    await client.get(sim.path, params=[("filter[tags]", "a"), ("filter[tags]", "b")], headers=AUTH)
    await client.get(sim.path)
    await client.get("/elsewhere", params={"x": "1"}, headers=AUTH)
    assert [
        ("/api/v1/sessions", {"filter[tags]": ["a", "b"]}, True),
        ("/api/v1/sessions", {}, False),
        ("/elsewhere", {"x": ["1"]}, True),
    ] == [
        (log.path, {key: log.query.getall(key) for key in log.query}, log.authorized)
        for log in sim.requests
    ]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_other_paths_answer_404(aiohttp_client: AiohttpClient, provider: str) -> None:
    """Only the provider's own path is served; anything else is a 404 with a JSON body."""
    sim = sample(provider)
    client = await start(aiohttp_client, sim)
    response = await client.get(sim.path + "/extra", headers=AUTH)
    assert (404, "application/json") == (response.status, response.content_type)


async def test_on_request_gets_indices_of_authorized_requests_before_paging(
    aiohttp_client: AiohttpClient,
) -> None:
    """on_request sees 0, 1, ... for authorized requests only, and its edits show in that page."""
    sim = AgiSimulator()
    seen: list[int] = []

    def hook(target: Simulator, index: int) -> None:
        seen.append(index)
        target.sessions.append(agi_row(f"a{index}", "running", T0))

    sim.on_request = hook
    client = await start(aiohttp_client, sim)
    first = await get_json(client, sim.path)
    await get_json(client, sim.path, headers={})
    second = await get_json(client, sim.path)
    assert [0, 1] == seen
    assert (200, ["a0"]) == (first[0], ids(first[1], "session_id"))
    assert (200, ["a0", "a1"]) == (second[0], ids(second[1], "session_id"))


# --- faults of the transport: trickle, truncate, drop -----------------------------------


@dataclass(frozen=True)
class RawAnswer:
    """What arrived on the socket for one request, read until the server closed it."""

    head: bytes
    body: bytes
    seconds: float

    @property
    def content_length(self) -> int:
        for line in self.head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                return int(value)
        raise AssertionError(f"no Content-Length in {self.head!r}")


async def raw_get(base_url: str, path: str) -> RawAnswer:
    """One authorized GET over a fresh socket (Connection: close), read to EOF and timed."""
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    began = time.monotonic()
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer test-key\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return RawAnswer(head, body, time.monotonic() - began)


def served_bytes(document: Any) -> bytes:
    """The exact body the simulators send for a JSON document."""
    return json.dumps(document).encode()


async def test_trickle_fault_sends_the_whole_body_slowly_in_small_pieces(
    served: Serve,
) -> None:
    """Fault(trickle=s) sends the normal answer with its true length, s seconds per piece."""
    sim = sample("agi")
    sim.fault = Fault(trickle=0.02)
    answer = await raw_get(await served(sim), sim.path)
    expected = served_bytes(sim.sessions)
    pieces = -(-len(expected) // TRICKLE_CHUNK)
    assert (expected, len(expected)) == (answer.body, answer.content_length)
    assert answer.head.startswith(b"HTTP/1.1 200 ")
    assert pieces > 3
    assert answer.seconds >= (pieces - 1) * 0.02


async def test_trickle_fault_outlasts_a_client_read_timeout(served: Serve) -> None:
    """A trickled body sends its headers at once, then too slowly for a short client timeout."""
    sim = sample("chaser")
    sim.fault = Fault(trickle=0.5)
    base_url = await served(sim)
    async with aiohttp.ClientSession() as session:
        response = await session.get(
            base_url + sim.path, headers=AUTH, timeout=aiohttp.ClientTimeout(sock_read=0.1)
        )
        assert 200 == response.status
        with pytest.raises(TimeoutError):
            await response.read()
        response.close()


async def test_trickle_fault_streams_fault_and_error_answers_too(served: Serve) -> None:
    """trickle applies to whatever is answered: here the provider's 503 error body."""
    sim = sample("notte")
    sim.fault = Fault(status=503, trickle=0.001)
    answer = await raw_get(await served(sim), sim.path)
    assert answer.head.startswith(b"HTTP/1.1 503 ")
    assert served_bytes({"detail": "Service Unavailable"}) == answer.body


@pytest.mark.parametrize("trickle", [0.0, 0.005], ids=["at-once", "trickled"])
async def test_truncate_fault_declares_the_full_length_but_sends_half(
    served: Serve, trickle: float
) -> None:
    """Fault(truncate=True) announces the real Content-Length, sends half, then closes."""
    sim = sample("trigger")
    sim.fault = Fault(truncate=True, trickle=trickle)
    answer = await raw_get(await served(sim), sim.path)
    full = default_body(sim)
    assert (len(full), full[: len(full) // 2]) == (answer.content_length, answer.body)


def default_body(sim: Simulator) -> bytes:
    """The body bytes `sim` answers to a query without parameters, computed directly."""
    return served_bytes(sim.payload(MultiDict()))


async def test_truncate_fault_is_an_incomplete_payload_to_an_http_client(served: Serve) -> None:
    """aiohttp sees the cut body as a payload error, and the next request is whole again."""
    sim = sample("together")
    sim.fault = Fault(truncate=True, times=1)
    base_url = await served(sim)
    async with aiohttp.ClientSession() as session:
        async with session.get(base_url + sim.path, headers=AUTH) as response:
            assert 200 == response.status
            with pytest.raises(aiohttp.ClientPayloadError):
                await response.read()
        async with session.get(base_url + sim.path, headers=AUTH) as response:
            assert ["ses_1"] == ids((await response.json())["data"]["sessions"])


async def test_drop_fault_closes_the_connection_without_a_byte(served: Serve) -> None:
    """Fault(drop=True) reads and logs the request, then hangs up without any answer."""
    sim = sample("chaser")
    sim.fault = Fault(drop=True)
    answer = await raw_get(await served(sim), sim.path)
    assert (b"", b"") == (answer.head, answer.body)
    assert [(sim.path, True)] == [(log.path, log.authorized) for log in sim.requests]


async def test_drop_fault_after_a_delay_then_clears(served: Serve) -> None:
    """drop waits out `delay` first; an HTTP client sees a server disconnect, then recovery.

    aiohttp retries an idempotent request once after a disconnect, so it takes two drops
    (`times=2`) for the client to see the error.
    """
    sim = sample("notte")
    sim.fault = Fault(drop=True, delay=0.1, times=2)
    base_url = await served(sim)
    began = time.monotonic()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await session.get(base_url + sim.path, headers=AUTH)
        assert time.monotonic() - began >= 0.2
        assert 2 == len(sim.requests)
        async with session.get(base_url + sim.path, headers=AUTH) as response:
            assert ["n1"] == ids((await response.json())["items"], "session_id")


async def test_serve_exit_cuts_a_trickle_short() -> None:
    """Leaving serve() does not wait for a slow trickle to finish sending."""
    sim = sample("agi")
    sim.fault = Fault(trickle=30)
    began = time.monotonic()
    async with aiohttp.ClientSession() as session, serve(sim) as base_url:
        response = await session.get(base_url + sim.path, headers=AUTH)
        assert 200 == response.status
        response.close()
    assert time.monotonic() - began < 5


async def test_chaser_total_can_promise_rows_it_never_serves(served: Serve) -> None:
    """A body fault makes chaser claim a `total` it never serves (paging that never ends)."""
    sim = sample("chaser")
    sim.fault = Fault(body=served_bytes({"sessions": [], "total": 1000}))
    answer = await raw_get(await served(sim), sim.path)
    assert {"sessions": [], "total": 1000} == json.loads(answer.body)


# --- chaser ------------------------------------------------------------------------------


def chaser_sessions(count: int) -> list[dict[str, Any]]:
    return [chaser_row(f"c{i}", "running", T0 + i) for i in range(count)]


async def test_chaser_defaults_to_limit_20_offset_0(aiohttp_client: AiohttpClient) -> None:
    """Without limit/offset chaser serves the first 20 stored rows and the full total."""
    sim = ChaserSimulator(sessions=chaser_sessions(25))
    client = await start(aiohttp_client, sim)
    status, body = await get_json(client, sim.path)
    assert (200, [f"c{i}" for i in range(20)], 25) == (status, ids(body["sessions"]), body["total"])


async def test_chaser_limit_offset_walk(aiohttp_client: AiohttpClient) -> None:
    """Pages of 3 over 7 rows come back 3, 3, 1, then empty; `total` is always 7."""
    sim = ChaserSimulator(sessions=chaser_sessions(7))
    client = await start(aiohttp_client, sim)
    pages = []
    for offset in (0, 3, 6, 7):
        _, body = await get_json(client, sim.path, params={"limit": "3", "offset": str(offset)})
        pages.append((ids(body["sessions"]), body["total"]))
    assert [
        (["c0", "c1", "c2"], 7),
        (["c3", "c4", "c5"], 7),
        (["c6"], 7),
        ([], 7),
    ] == pages


async def test_chaser_serves_rows_unchanged(aiohttp_client: AiohttpClient) -> None:
    """Chaser rows are served exactly as stored, nullable fields included."""
    rows = [
        chaser_row("c1", "running", T0, leases=None, workspace_id="ws_1", video="wss://v/1"),
        chaser_row("c2", "stopped", T0 + 1, leases=2, persistence=True, custom="kept"),
    ]
    sim = ChaserSimulator(sessions=rows)
    client = await start(aiohttp_client, sim)
    assert (200, {"sessions": rows, "total": 2}) == await get_json(client, sim.path)


async def test_chaser_list_shape_pages_newest_first_by_cursor(
    aiohttp_client: AiohttpClient,
) -> None:
    """The guide's shape: `{object, data, next_cursor, has_more}`, newest first, each
    `next_cursor` leading on after the page's last row; the last page has none."""
    rows = [chaser_list_row(f"sess_{i}", "ready", T0 + i) for i in range(5)]
    sim = ChaserSimulator(sessions=rows, envelope="list")
    client = await start(aiohttp_client, sim)
    pages, params = [], {"limit": "2"}
    while True:
        status, body = await get_json(client, sim.path, params=params)
        assert (200, "list") == (status, body["object"])
        pages.append((ids(body["data"]), body["has_more"]))
        if not body["has_more"]:
            assert body["next_cursor"] is None
            break
        params = {"limit": "2", "cursor": body["next_cursor"]}
    assert [
        (["sess_4", "sess_3"], True),
        (["sess_2", "sess_1"], True),
        (["sess_0"], False),
    ] == pages


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": "101"}, "limit must be between 1 and 100"),
        ({"limit": "0"}, "limit must be between 1 and 100"),
        ({"cursor": "cur_!!"}, "cursor is not valid"),
    ],
)
async def test_chaser_list_shape_refuses_a_bad_limit_or_cursor(
    aiohttp_client: AiohttpClient, params: dict[str, str], message: str
) -> None:
    """A `limit` outside 1 to 100 or a cursor it did not make is a 422 in Chaser's shape."""
    sim = ChaserSimulator(sessions=[chaser_list_row("sess_1", "ready", T0)], envelope="list")
    client = await start(aiohttp_client, sim)
    assert (422, {"code": "invalid_request", "message": message}) == await get_json(
        client, sim.path, params=params
    )


async def test_chaser_empty_dataset(aiohttp_client: AiohttpClient) -> None:
    """With no sessions chaser answers an empty page and total 0."""
    sim = ChaserSimulator()
    client = await start(aiohttp_client, sim)
    assert (200, {"sessions": [], "total": 0}) == await get_json(client, sim.path)


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"limit": "abc"}, "limit must be a non-negative integer"),
        ({"limit": "-1"}, "limit must be a non-negative integer"),
        ({"limit": "1.5"}, "limit must be a non-negative integer"),
        ({"limit": ""}, "limit must be a non-negative integer"),
        ({"offset": "x"}, "offset must be a non-negative integer"),
        ({"offset": "-5"}, "offset must be a non-negative integer"),
    ],
)
async def test_chaser_rejects_bad_limit_or_offset_with_422(
    aiohttp_client: AiohttpClient, params: dict[str, str], detail: str
) -> None:
    """Non-integer or negative limit/offset is a 422 in the SDK's `code`/`message` shape."""
    sim = ChaserSimulator(sessions=chaser_sessions(2))
    client = await start(aiohttp_client, sim)
    expected = {"code": "invalid_request", "message": detail}
    assert (422, expected) == await get_json(client, sim.path, params=params)


async def test_chaser_offsets_shift_when_a_session_is_inserted_mid_walk(
    aiohttp_client: AiohttpClient,
) -> None:
    """A row inserted at the front between pages (via on_request) re-serves a row: offsets shift."""
    sim = ChaserSimulator(sessions=chaser_sessions(4))

    def insert_on_second_page(target: Simulator, index: int) -> None:
        if index == 1:
            target.sessions.insert(0, chaser_row("new", "running", T0 + 99))

    sim.on_request = insert_on_second_page
    client = await start(aiohttp_client, sim)
    _, first = await get_json(client, sim.path, params={"limit": "2", "offset": "0"})
    _, second = await get_json(client, sim.path, params={"limit": "2", "offset": "2"})
    assert (["c0", "c1"], ["c1", "c2"], 5) == (
        ids(first["sessions"]),
        ids(second["sessions"]),
        second["total"],
    )


# --- notte -------------------------------------------------------------------------------


def notte_sessions(active: int, closed: int = 0) -> list[dict[str, Any]]:
    rows = [notte_row(f"n{i}", "active", T0 + i, T0 + i) for i in range(active)]
    rows += [notte_row(f"x{i}", "closed", T0 + i, T0 + i, closed_at=T0 + 60) for i in range(closed)]
    return rows


async def test_notte_defaults_to_active_only_page_1_size_10(aiohttp_client: AiohttpClient) -> None:
    """Without parameters notte serves the first 10 active rows and flags a next page."""
    sim = NotteSimulator(sessions=notte_sessions(12, closed=3))
    client = await start(aiohttp_client, sim)
    status, body = await get_json(client, sim.path)
    assert 200 == status
    assert [f"n{i}" for i in range(10)] == ids(body.pop("items"), "session_id")
    assert {"page": 1, "page_size": 10, "has_next": True, "has_previous": False} == body


async def test_notte_page_walk_flags(aiohttp_client: AiohttpClient) -> None:
    """Pages of 4 over 10 rows: 4, 4, 2 rows with has_next/has_previous exact, then empty."""
    sim = NotteSimulator(sessions=notte_sessions(10))
    client = await start(aiohttp_client, sim)
    pages = []
    for page in (1, 2, 3, 4):
        _, body = await get_json(client, sim.path, params={"page": str(page), "page_size": "4"})
        pages.append(
            (ids(body["items"], "session_id"), body["page"], body["has_next"], body["has_previous"])
        )
    assert [
        (["n0", "n1", "n2", "n3"], 1, True, False),
        (["n4", "n5", "n6", "n7"], 2, True, True),
        (["n8", "n9"], 3, False, True),
        ([], 4, False, True),
    ] == pages


async def test_notte_exact_last_page_has_no_next(aiohttp_client: AiohttpClient) -> None:
    """When the rows fill the page exactly, has_next is false."""
    sim = NotteSimulator(sessions=notte_sessions(5))
    client = await start(aiohttp_client, sim)
    _, body = await get_json(client, sim.path, params={"page_size": "5"})
    assert (5, False) == (len(body["items"]), body["has_next"])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("false", ["n0", "x0", "x1"]),
        ("0", ["n0", "x0", "x1"]),
        ("true", ["n0"]),
        ("1", ["n0"]),
        ("False", ["n0", "x0", "x1"]),
    ],
)
async def test_notte_only_active_switch(
    aiohttp_client: AiohttpClient, value: str, expected: list[str]
) -> None:
    """only_active=false/0 serves every row; true/1 only rows whose status is "active"."""
    sim = NotteSimulator(sessions=notte_sessions(1, closed=2))
    client = await start(aiohttp_client, sim)
    _, body = await get_json(client, sim.path, params={"only_active": value})
    assert expected == ids(body["items"], "session_id")


async def test_notte_only_current_token_is_accepted_and_ignored(
    aiohttp_client: AiohttpClient,
) -> None:
    """only_current_token=true changes nothing in the simulated single-token account."""
    sim = NotteSimulator(sessions=notte_sessions(2))
    client = await start(aiohttp_client, sim)
    _, body = await get_json(client, sim.path, params={"only_current_token": "true"})
    assert ["n0", "n1"] == ids(body["items"], "session_id")


async def test_notte_empty_dataset(aiohttp_client: AiohttpClient) -> None:
    """With no sessions notte answers an empty first page with both flags false."""
    sim = NotteSimulator()
    client = await start(aiohttp_client, sim)
    assert (
        200,
        {"items": [], "page": 1, "page_size": 10, "has_next": False, "has_previous": False},
    ) == await get_json(client, sim.path)


async def test_notte_endless_never_says_the_last_page(served: Serve) -> None:
    """NotteSimulator(endless=True) flags has_next on every page, re-serving the last page."""
    sim = NotteSimulator(sessions=notte_sessions(5), endless=True)
    base_url = await served(sim)
    pages = []
    async with aiohttp.ClientSession() as session:
        for page in (1, 2, 3, 4, 50):
            params = {"page": str(page), "page_size": "2"}
            async with session.get(base_url + sim.path, params=params, headers=AUTH) as response:
                body = await response.json()
            pages.append((ids(body["items"], "session_id"), body["page"], body["has_next"]))
    assert [
        (["n0", "n1"], 1, True),
        (["n2", "n3"], 2, True),
        (["n4"], 3, True),
        (["n4"], 4, True),
        (["n4"], 50, True),
    ] == pages


async def test_notte_endless_with_no_rows_still_has_next(aiohttp_client: AiohttpClient) -> None:
    """An endless empty account answers empty pages that still claim a next one."""
    sim = NotteSimulator(endless=True)
    client = await start(aiohttp_client, sim)
    _, body = await get_json(client, sim.path, params={"page": "3"})
    assert ([], True) == (body["items"], body["has_next"])


INT_MSG = "Input should be a valid integer, unable to parse string as an integer"
BOOL_MSG = "Input should be a valid boolean, unable to interpret input"


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        (
            {"page_size": "101"},
            [
                {
                    "type": "less_than_equal",
                    "loc": ["query", "page_size"],
                    "msg": "Input should be less than or equal to 100",
                    "input": "101",
                    "ctx": {"le": 100},
                }
            ],
        ),
        (
            {"page_size": "0"},
            [
                {
                    "type": "greater_than_equal",
                    "loc": ["query", "page_size"],
                    "msg": "Input should be greater than or equal to 1",
                    "input": "0",
                    "ctx": {"ge": 1},
                }
            ],
        ),
        (
            {"page": "0"},
            [
                {
                    "type": "greater_than_equal",
                    "loc": ["query", "page"],
                    "msg": "Input should be greater than or equal to 1",
                    "input": "0",
                    "ctx": {"ge": 1},
                }
            ],
        ),
        (
            {"page": "two"},
            [{"type": "int_parsing", "loc": ["query", "page"], "msg": INT_MSG, "input": "two"}],
        ),
        (
            {"only_active": "maybe"},
            [
                {
                    "type": "bool_parsing",
                    "loc": ["query", "only_active"],
                    "msg": BOOL_MSG,
                    "input": "maybe",
                }
            ],
        ),
        (
            {"page": "x", "page_size": "y", "only_current_token": "z"},
            [
                {"type": "int_parsing", "loc": ["query", "page"], "msg": INT_MSG, "input": "x"},
                {
                    "type": "int_parsing",
                    "loc": ["query", "page_size"],
                    "msg": INT_MSG,
                    "input": "y",
                },
                {
                    "type": "bool_parsing",
                    "loc": ["query", "only_current_token"],
                    "msg": BOOL_MSG,
                    "input": "z",
                },
            ],
        ),
    ],
    ids=["page_size-101", "page_size-0", "page-0", "page-text", "only_active-text", "all-at-once"],
)
async def test_notte_rejects_invalid_parameters_with_validation_errors(
    aiohttp_client: AiohttpClient, params: dict[str, str], detail: list[dict[str, Any]]
) -> None:
    """Out-of-range or unparsable parameters give 422 listing every problem, FastAPI style."""
    sim = NotteSimulator(sessions=notte_sessions(2))
    client = await start(aiohttp_client, sim)
    assert (422, {"detail": detail}) == await get_json(client, sim.path, params=params)


# --- together and agi --------------------------------------------------------------------


async def test_together_wraps_all_sessions_with_errors(aiohttp_client: AiohttpClient) -> None:
    """Together serves every stored row under data.sessions, unpaged, with `errors` []."""
    rows = [together_row(f"ses_{i}", T0, T0 + 600, execute_count=i) for i in range(30)]
    sim = TogetherSimulator(sessions=rows)
    client = await start(aiohttp_client, sim)
    expected = {"data": {"sessions": rows}, "errors": []}
    assert (200, expected) == await get_json(client, sim.path, params={"limit": "1"})


async def test_together_errors_pass_through(aiohttp_client: AiohttpClient) -> None:
    """Whatever `errors` holds (strings, objects) is served beside the sessions."""
    sim = TogetherSimulator(sessions=[together_row("ses_1", T0, T0 + 60)])
    sim.errors = ["partial outage", {"code": "region_down", "region": "eu"}]
    client = await start(aiohttp_client, sim)
    _, body = await get_json(client, sim.path)
    assert (["partial outage", {"code": "region_down", "region": "eu"}], ["ses_1"]) == (
        body["errors"],
        ids(body["data"]["sessions"]),
    )


async def test_together_empty_dataset(aiohttp_client: AiohttpClient) -> None:
    """With no sessions together answers an empty list."""
    sim = TogetherSimulator()
    client = await start(aiohttp_client, sim)
    assert (200, {"data": {"sessions": []}, "errors": []}) == await get_json(client, sim.path)


async def test_agi_serves_a_bare_array_in_stored_order(aiohttp_client: AiohttpClient) -> None:
    """AGI answers every stored row as a bare JSON array, ignoring any query."""
    rows = [
        agi_row(f"a{i}", status, T0 - i) for i, status in enumerate(["ready", "error", "paused"])
    ]
    sim = AgiSimulator(sessions=rows)
    client = await start(aiohttp_client, sim)
    assert (200, rows) == await get_json(client, sim.path, params={"limit": "1"})


async def test_agi_empty_dataset(aiohttp_client: AiohttpClient) -> None:
    """With no sessions AGI answers `[]`."""
    sim = AgiSimulator()
    client = await start(aiohttp_client, sim)
    assert (200, []) == await get_json(client, sim.path)


# --- trigger -----------------------------------------------------------------------------


def trigger_sessions(count: int) -> list[dict[str, Any]]:
    """`count` ACTIVE rows `session_000`... created one second apart, stored shuffled."""
    order = sorted(range(count), key=lambda i: (i * 37) % count)
    return [trigger_row(f"session_{i:03d}", "ACTIVE", T0 + i, T0 + i) for i in order]


def newest_first(count: int) -> list[str]:
    return [f"session_{i:03d}" for i in reversed(range(count))]


async def test_trigger_serves_newest_first_without_status(aiohttp_client: AiohttpClient) -> None:
    """Rows come back sorted by createdAt descending, minus the internal `status` key."""
    sim = TriggerSimulator(sessions=trigger_sessions(5))
    client = await start(aiohttp_client, sim)
    status, body = await get_json(client, sim.path)
    assert (200, newest_first(5), {}) == (status, ids(body["data"]), body["pagination"])
    stored = {row["id"]: {k: v for k, v in row.items() if k != "status"} for row in sim.sessions}
    assert [stored[row["id"]] for row in body["data"]] == body["data"]
    assert all("status" in row for row in sim.sessions)


async def test_trigger_sorts_mixed_timestamp_precisions_chronologically(
    aiohttp_client: AiohttpClient,
) -> None:
    """Sorting parses createdAt, so `...20Z`, `...20.5+00:00` and `...20.250Z` order by time."""
    rows = [
        trigger_row("session_a", "ACTIVE", iso(T0, fraction=0), T0),
        trigger_row("session_b", "ACTIVE", iso(T0 + 0.5, zulu=False), T0),
        trigger_row("session_c", "ACTIVE", iso(T0 + 0.25, fraction=6), T0),
    ]
    sim = TriggerSimulator(sessions=rows)
    client = await start(aiohttp_client, sim)
    _, body = await get_json(client, sim.path)
    assert ["session_b", "session_c", "session_a"] == ids(body["data"])


async def test_trigger_default_page_size_is_20(aiohttp_client: AiohttpClient) -> None:
    """Without page[size] trigger serves 20 rows and a `next` cursor at the 20th."""
    sim = TriggerSimulator(sessions=trigger_sessions(25))
    client = await start(aiohttp_client, sim)
    _, body = await get_json(client, sim.path)
    assert (newest_first(25)[:20], {"next": "session_005"}) == (
        ids(body["data"]),
        body["pagination"],
    )


async def test_trigger_walks_more_than_ten_pages_forward(aiohttp_client: AiohttpClient) -> None:
    """Following `next` via page[after] visits all 95 rows in 11 pages, each exactly once."""
    sim = TriggerSimulator(sessions=trigger_sessions(95))
    client = await start(aiohttp_client, sim)
    pages: list[tuple[list[str], dict[str, str]]] = []
    params: dict[str, str] = {"page[size]": "9"}
    while True:
        status, body = await get_json(client, sim.path, params=params)
        assert 200 == status
        pages.append((ids(body["data"]), body["pagination"]))
        if "next" not in body["pagination"]:
            break
        params = {"page[size]": "9", "page[after]": body["pagination"]["next"]}
    expected_ids = newest_first(95)
    chunks = [expected_ids[i : i + 9] for i in range(0, 95, 9)]
    assert 11 == len(pages)
    assert chunks == [page for page, _ in pages]
    assert [
        {
            **({"next": chunk[-1]} if index < 10 else {}),
            **({"previous": chunk[0]} if index > 0 else {}),
        }
        for index, chunk in enumerate(chunks)
    ] == [pagination for _, pagination in pages]


async def test_trigger_walks_backward_with_page_before(aiohttp_client: AiohttpClient) -> None:
    """Following `previous` via page[before] from the oldest row reaches the newest page."""
    sim = TriggerSimulator(sessions=trigger_sessions(95))
    client = await start(aiohttp_client, sim)
    pages: list[tuple[list[str], dict[str, str]]] = []
    params = {"page[size]": "9", "page[before]": "session_005"}
    while True:
        _, body = await get_json(client, sim.path, params=params)
        pages.append((ids(body["data"]), body["pagination"]))
        if "previous" not in body["pagination"]:
            break
        params = {"page[size]": "9", "page[before]": body["pagination"]["previous"]}
    expected_ids = newest_first(95)
    # rows newer than session_005 are the first 89; backward pages end-align on them
    chunks = [expected_ids[max(0, end - 9) : end] for end in range(89, 0, -9)]
    assert 10 == len(pages)
    assert chunks == [page for page, _ in pages]
    assert [
        {"next": chunk[-1], **({"previous": chunk[0]} if index < 9 else {})}
        for index, chunk in enumerate(chunks)
    ] == [pagination for _, pagination in pages]


async def test_trigger_page_before_the_newest_row_is_empty(aiohttp_client: AiohttpClient) -> None:
    """Nothing is newer than the newest row, so page[before] it is empty without cursors."""
    sim = TriggerSimulator(sessions=trigger_sessions(3))
    client = await start(aiohttp_client, sim)
    body = (await get_json(client, sim.path, params={"page[before]": "session_002"}))[1]
    assert {"data": [], "pagination": {}} == body


async def test_trigger_exact_last_page_has_no_next(aiohttp_client: AiohttpClient) -> None:
    """When the remaining rows fill the page exactly, `next` is omitted."""
    sim = TriggerSimulator(sessions=trigger_sessions(6))
    client = await start(aiohttp_client, sim)
    _, body = await get_json(
        client, sim.path, params={"page[size]": "3", "page[after]": "session_003"}
    )
    assert (["session_002", "session_001", "session_000"], {"previous": "session_002"}) == (
        ids(body["data"]),
        body["pagination"],
    )


async def test_trigger_cursor_is_stable_when_sessions_arrive_mid_walk(
    aiohttp_client: AiohttpClient,
) -> None:
    """A newer session created between pages neither repeats nor skips rows of the walk."""
    sim = TriggerSimulator(sessions=trigger_sessions(30))

    def arrive(target: Simulator, index: int) -> None:
        target.sessions.insert(
            0, trigger_row(f"session_new{index}", "ACTIVE", T0 + 100 + index, T0)
        )

    sim.on_request = arrive
    client = await start(aiohttp_client, sim)
    seen: list[str] = []
    params = {"page[size]": "10"}
    while True:
        _, body = await get_json(client, sim.path, params=params)
        seen += ids(body["data"])
        if "next" not in body["pagination"]:
            break
        params = {"page[size]": "10", "page[after]": body["pagination"]["next"]}
    assert ["session_new0", *newest_first(30)] == seen


async def test_trigger_empty_dataset(aiohttp_client: AiohttpClient) -> None:
    """With no sessions trigger answers no rows and an empty pagination object."""
    sim = TriggerSimulator()
    client = await start(aiohttp_client, sim)
    assert (200, {"data": [], "pagination": {}}) == await get_json(client, sim.path)


NOT_A_NUMBER = "Invalid input: expected number, received NaN"


def query_error(path: str, message: str, code: str = "custom") -> dict[str, Any]:
    return {"error": "Query Error", "details": [{"code": code, "message": message, "path": [path]}]}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {"filter[status]": "FOOBAR"},
            query_error("filter[status]", "Invalid status values: FOOBAR"),
        ),
        (
            {"filter[status]": "ACTIVE,active,nope"},
            query_error("filter[status]", "Invalid status values: active, nope"),
        ),
        (
            {"page[size]": "0"},
            query_error("page[size]", "Number must be greater than or equal to 1", "too_small"),
        ),
        (
            {"page[size]": "101"},
            query_error("page[size]", "Number must be less than or equal to 100", "too_big"),
        ),
        (
            {"page[size]": "ten"},
            query_error("page[size]", "Expected integer, received 'ten'", "invalid_type"),
        ),
        (
            {"page[after]": "session_gone"},
            query_error("page[after]", "Session not found: session_gone"),
        ),
        (
            {"page[before]": "session_gone"},
            query_error("page[before]", "Session not found: session_gone"),
        ),
        (
            {"page[after]": "session_001", "page[before]": "session_000"},
            query_error(
                "page[before]", "Cannot pass both page[after] and page[before] on the same request"
            ),
        ),
        (
            {"filter[createdAt][period]": "abc"},
            query_error("filter[createdAt][period]", "Invalid period: abc"),
        ),
        (
            {"filter[createdAt][period]": "10x"},
            query_error("filter[createdAt][period]", "Invalid period: 10x"),
        ),
        (
            {"filter[createdAt][period]": "-1h"},
            query_error("filter[createdAt][period]", "Invalid period: -1h"),
        ),
        (
            {"filter[createdAt][period]": ""},
            query_error("filter[createdAt][period]", "Invalid period: "),
        ),
        (
            {"filter[createdAt][from]": "monday"},
            query_error("filter[createdAt][from]", NOT_A_NUMBER, "invalid_type"),
        ),
        (  # the SDK sends unix milliseconds: a date-time, as the spec has it, is refused
            {"filter[createdAt][to]": "2024-01-01T00:00:00Z"},
            query_error("filter[createdAt][to]", NOT_A_NUMBER, "invalid_type"),
        ),
        (
            {"filter[createdAt][to]": "1" + "0" * 30},
            query_error("filter[createdAt][to]", NOT_A_NUMBER, "invalid_type"),
        ),
    ],
)
async def test_trigger_rejects_bad_queries_with_400_details(
    aiohttp_client: AiohttpClient, params: dict[str, str], expected: dict[str, Any]
) -> None:
    """Invalid filters, sizes and unknown cursors are 400 Query Errors naming the parameter."""
    sim = TriggerSimulator(sessions=trigger_sessions(2))
    client = await start(aiohttp_client, sim)
    assert (400, expected) == await get_json(client, sim.path, params=params)


async def test_trigger_reports_every_bad_parameter_at_once(aiohttp_client: AiohttpClient) -> None:
    """Several problems in one query are all listed in `details`."""
    sim = TriggerSimulator(sessions=trigger_sessions(2))
    client = await start(aiohttp_client, sim)
    params = {"page[size]": "500", "filter[status]": "DONE", "filter[createdAt][period]": "soon"}
    _, body = await get_json(client, sim.path, params=params)
    assert [["page[size]"], ["filter[status]"], ["filter[createdAt][period]"]] == [
        detail["path"] for detail in body["details"]
    ]


def filterable_sessions() -> list[dict[str, Any]]:
    return [
        trigger_row(
            "session_a", "ACTIVE", T0 + 5, T0 + 5, tags=["chat:1", "vip"], external_id="chat_1"
        ),
        trigger_row(
            "session_b",
            "CLOSED",
            T0 + 4,
            T0 + 6,
            task_identifier="other",
            tags=["chat:2"],
            external_id="chat_2",
        ),
        trigger_row("session_c", "EXPIRED", T0 + 3, T0 + 3, expires_at=T0 + 4, type="batch"),
        trigger_row(
            "session_d",
            "ACTIVE",
            T0 + 2,
            T0 + 2,
            type="batch",
            task_identifier="other",
            tags=["vip"],
        ),
    ]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["session_a", "session_b", "session_c", "session_d"]),
        ({"filter[status]": "ACTIVE"}, ["session_a", "session_d"]),
        ({"filter[status]": "CLOSED,EXPIRED"}, ["session_b", "session_c"]),
        ([("filter[status]", "CLOSED"), ("filter[status]", "EXPIRED")], ["session_b", "session_c"]),
        ({"filter[type]": "batch"}, ["session_c", "session_d"]),
        (
            {"filter[type]": "chat.agent,batch"},
            ["session_a", "session_b", "session_c", "session_d"],
        ),
        ({"filter[tags]": "vip"}, ["session_a", "session_d"]),
        ({"filter[tags]": "chat:2,vip"}, ["session_a", "session_b", "session_d"]),
        ({"filter[tags]": "none"}, []),
        ({"filter[taskIdentifier]": "other"}, ["session_b", "session_d"]),
        ({"filter[externalId]": "chat_2"}, ["session_b"]),
        (
            {"filter[status]": "ACTIVE", "filter[type]": "batch", "filter[tags]": "vip"},
            ["session_d"],
        ),
        (  # unix milliseconds, as the SDK sends `Date#getTime()`
            {"filter[createdAt][from]": str(int((T0 + 3) * 1000))},
            ["session_a", "session_b", "session_c"],
        ),
        (
            {"filter[createdAt][to]": str(int((T0 + 4) * 1000))},
            ["session_b", "session_c", "session_d"],
        ),
    ],
)
async def test_trigger_filters(
    aiohttp_client: AiohttpClient, params: Params, expected: list[str]
) -> None:
    """Array filters match any listed value (tags: any shared tag); filters combine with AND.

    The creation bounds are unix milliseconds, inclusive.
    """
    sim = TriggerSimulator(sessions=filterable_sessions())
    client = await start(aiohttp_client, sim)
    _, body = await get_json(client, sim.path, params=params)
    assert expected == ids(body["data"])


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        ("30m", ["session_10m"]),
        ("1h", ["session_10m", "session_45m", "session_1h"]),
        ("1d", ["session_10m", "session_45m", "session_1h", "session_2h"]),
        ("7d", ["session_10m", "session_45m", "session_1h", "session_2h", "session_2d"]),
        ("1w", ["session_10m", "session_45m", "session_1h", "session_2h", "session_2d"]),
        ("3600s", ["session_10m", "session_45m", "session_1h"]),
    ],
)
async def test_trigger_period_filter_uses_the_simulator_clock(
    aiohttp_client: AiohttpClient, period: str, expected: list[str]
) -> None:
    """filter[createdAt][period] keeps rows created within `now - period` (boundary included)."""
    ages = {"10m": 600, "45m": 2700, "1h": 3600, "2h": 7200, "2d": 172_800, "8d": 691_200}
    sim = TriggerSimulator(
        sessions=[
            trigger_row(f"session_{name}", "ACTIVE", T0 - age, T0 - age)
            for name, age in ages.items()
        ]
    )
    sim.now = lambda: T0
    client = await start(aiohttp_client, sim)
    _, body = await get_json(client, sim.path, params={"filter[createdAt][period]": period})
    assert expected == ids(body["data"])


async def test_trigger_cursors_page_within_the_filtered_rows(
    aiohttp_client: AiohttpClient,
) -> None:
    """With a status filter, pages and cursors skip rows the filter excludes."""
    rows = [
        trigger_row(f"session_{i:02d}", "ACTIVE" if i % 3 else "CLOSED", T0 + i, T0 + i)
        for i in range(12)
    ]
    sim = TriggerSimulator(sessions=rows)
    client = await start(aiohttp_client, sim)
    base = {"page[size]": "3", "filter[status]": "ACTIVE"}
    _, first = await get_json(client, sim.path, params=base)
    _, second = await get_json(
        client, sim.path, params={**base, "page[after]": first["pagination"]["next"]}
    )
    assert (["session_11", "session_10", "session_08"], {"next": "session_08"}) == (
        ids(first["data"]),
        first["pagination"],
    )
    assert (
        ["session_07", "session_05", "session_04"],
        {"next": "session_04", "previous": "session_07"},
    ) == (ids(second["data"]), second["pagination"])


async def test_trigger_cursor_may_name_a_row_the_filter_excludes(
    aiohttp_client: AiohttpClient,
) -> None:
    """A cursor row outside the filter still positions the page (keyset on createdAt, id)."""
    sim = TriggerSimulator(sessions=filterable_sessions())
    client = await start(aiohttp_client, sim)
    params = {"filter[status]": "ACTIVE", "page[after]": "session_b"}
    _, body = await get_json(client, sim.path, params=params)
    assert (["session_d"], {"previous": "session_d"}) == (ids(body["data"]), body["pagination"])


# --- what the official SDKs show beyond the specs ----------------------------------------


async def test_request_log_keeps_the_headers_but_never_the_credentials(
    aiohttp_client: AiohttpClient,
) -> None:
    """Headers beside the key are recorded (e.g. the account); Authorization and Cookie never."""
    sim = sample("chaser")
    client = await start(aiohttp_client, sim)
    sent = AUTH | {"X-Chaser-Account": "acme", "Cookie": "sid=1", "Accept": "application/json"}
    await client.get(sim.path, headers=sent)
    (log,) = sim.requests
    assert ("acme", "application/json") == (log.headers["x-chaser-account"], log.headers["Accept"])
    assert set() == {"authorization", "cookie"} & {name.lower() for name in log.headers}
    assert log.authorized


async def test_notte_redirects_the_slashless_route_keeping_the_query(served: Serve) -> None:
    """`/sessions?...` answers 307 to the absolute `/sessions/?...`, before any auth check."""
    sim = NotteSimulator(sessions=notte_sessions(1))
    base = await served(sim)
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{base}/sessions?page=2&only_active=False", allow_redirects=False) as response,
    ):
        assert (307, f"{base}/sessions/?page=2&only_active=False") == (
            response.status,
            response.headers["Location"],
        )
    assert [("/sessions", False)] == [(log.path, log.authorized) for log in sim.requests]


async def test_notte_redirect_is_followed_to_the_page(served: Serve) -> None:
    """A client that follows the 307 with its key gets the page the query asked for."""
    sim = NotteSimulator(sessions=notte_sessions(3))
    base = await served(sim)
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{base}/sessions", params={"page_size": "2"}, headers=AUTH) as response,
    ):
        body = await response.json()
    assert (200, ["n0", "n1"]) == (response.status, ids(body["items"], "session_id"))
    assert [("/sessions", {"page_size": "2"}), ("/sessions/", {"page_size": "2"})] == [
        (log.path, dict(log.query)) for log in sim.requests
    ]


async def test_notte_can_serve_the_slashless_route_too(aiohttp_client: AiohttpClient) -> None:
    """With `redirect_slashless=False` both spellings serve the page, without a redirect."""
    sim = NotteSimulator(sessions=notte_sessions(1), redirect_slashless=False)
    client = await start(aiohttp_client, sim)
    for path in ("/sessions", "/sessions/"):
        status, body = await get_json(client, path)
        assert (200, ["n0"]) == (status, ids(body["items"], "session_id"))


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["n0", "n1"]),
        ({"include_system": "true"}, ["n0", "n1"]),
        ({"include_system": "False"}, ["n0"]),
    ],
)
async def test_notte_include_system_false_leaves_out_system_hidden_rows(
    aiohttp_client: AiohttpClient, params: dict[str, str], expected: list[str]
) -> None:
    """System runs are listed by default (the server model's default) unless asked not to."""
    rows = [
        notte_row("n0", "active", T0, T0),
        notte_row("n1", "active", T0, T0, system_hidden=True),
    ]
    sim = NotteSimulator(sessions=rows)
    client = await start(aiohttp_client, sim)
    _, body = await get_json(client, sim.path, params=params)
    assert expected == ids(body["items"], "session_id")


async def test_notte_rejects_a_bad_include_system(aiohttp_client: AiohttpClient) -> None:
    """`include_system` is validated like the other booleans: 422 `bool_parsing`."""
    sim = NotteSimulator()
    client = await start(aiohttp_client, sim)
    status, body = await get_json(client, sim.path, params={"include_system": "maybe"})
    assert (422, ["bool_parsing"]) == (status, [error["type"] for error in body["detail"]])


async def test_chaser_bare_array_serves_every_row_and_ignores_paging(
    aiohttp_client: AiohttpClient,
) -> None:
    """`envelope="array"` answers the rows themselves, whatever limit and offset say."""
    sim = ChaserSimulator(sessions=chaser_sessions(3), envelope="array")
    client = await start(aiohttp_client, sim)
    status, body = await get_json(client, sim.path, params={"limit": "1", "offset": "1"})
    assert (200, ["c0", "c1", "c2"]) == (status, ids(body))


async def test_chaser_account_is_required_when_set(aiohttp_client: AiohttpClient) -> None:
    """With `account`, only a request naming it in X-Chaser-Account is served; others get 403."""
    sim = ChaserSimulator(sessions=chaser_sessions(1), account="acme")
    client = await start(aiohttp_client, sim)
    assert (
        403,
        {"code": "forbidden", "message": "not a member of account acme"},
    ) == await get_json(client, sim.path, headers=AUTH | {"X-Chaser-Account": "other"})
    status, body = await get_json(client, sim.path, headers={"X-Chaser-Account": "acme"})
    assert (401, "unauthorized") == (status, body["code"])  # the key is checked first
    status, body = await get_json(client, sim.path, headers=AUTH | {"X-Chaser-Account": "acme"})
    assert (200, ["c0"]) == (status, ids(body["sessions"]))
    assert ["other", "acme", "acme"] == [
        log.headers.get("X-Chaser-Account") for log in sim.requests
    ]


def test_chaser_row_leaves_out_the_keys_given_omit() -> None:
    """OMIT drops a key the SDK types not-required, `endpoints.video` included; None keeps it."""
    row = chaser_row("c1", "ready", T0, leases=OMIT, video=OMIT, workspace_id=OMIT)
    assert {"id", "status", "session_type", "created_at", "endpoints", "persistence"} == set(row)
    assert {"control"} == set(row["endpoints"])
    assert None is chaser_row("c1", "ready", T0, leases=None)["active_connection_leases"]


def test_agi_row_carries_the_sdk_fields() -> None:
    """An AGI row has the SDK's optional fields, null or defaulted, and takes values for them."""
    assert {
        "vnc_url": None,
        "agent_url": None,
        "environment_id": None,
        "goal": None,
        "agent_session_type": "managed-cdp",
    } == {
        key: value
        for key, value in agi_row("a1", "waiting_for_input", T0).items()
        if key not in {"session_id", "agent_name", "status", "created_at"}
    }
    assert (
        "desktop" == agi_row("a1", "ready", T0, agent_session_type="desktop")["agent_session_type"]
    )


async def test_trigger_429_carries_the_reset_in_milliseconds(
    aiohttp_client: AiohttpClient,
) -> None:
    """A 429 says when the limit resets as unix milliseconds on the simulator's clock."""
    sim = TriggerSimulator(sessions=trigger_sessions(1))
    sim.now = lambda: T0
    sim.fault = Fault(status=429, times=1)
    client = await start(aiohttp_client, sim)
    response = await client.get(sim.path, headers=AUTH)
    assert (429, str(int((T0 + 1) * 1000))) == (
        response.status,
        response.headers["x-ratelimit-reset"],
    )
    response = await client.get(sim.path, headers=AUTH)
    assert (200, None) == (response.status, response.headers.get("x-ratelimit-reset"))


async def test_trigger_reset_header_yields_to_the_fault_and_can_be_switched_off(
    aiohttp_client: AiohttpClient,
) -> None:
    """A fault's own x-ratelimit-reset wins; `rate_limit_reset = None` sends none at all."""
    sim = TriggerSimulator()
    sim.fault = Fault(status=429, headers={"X-RateLimit-Reset": "42"})
    client = await start(aiohttp_client, sim)
    response = await client.get(sim.path, headers=AUTH)
    assert ["42"] == response.headers.getall("x-ratelimit-reset")
    sim.rate_limit_reset = None
    sim.fault = Fault(status=429)
    response = await client.get(sim.path, headers=AUTH)
    assert (429, None) == (response.status, response.headers.get("x-ratelimit-reset"))


# --- the demo's populations ------------------------------------------------------------


def test_demo_populations_show_every_status_the_sdks_know() -> None:
    """Within the demo's first half hour, each SDK status beyond the specs shows up."""
    start = 1_800_000_000.0
    world = DemoWorld(now=start)
    seen: dict[str, set[str]] = {"agi": set(), "chaser": set(), "notte": set()}
    for second in range(1, 1801):
        world.tick(start + second)
        for name in seen:
            population = getattr(world, name)
            seen[name] |= {row["status"] for row in population.sim.sessions}
    assert {"waiting_for_input", "finished"} <= seen["agi"]
    assert {"ready", "running", "active", "terminated", "failed"} <= seen["chaser"]
    assert {"authenticating", "active", "closed", "error"} <= seen["notte"]
    assert {"browser", "sandbox"} == {row["session_type"] for row in world.chaser.sim.sessions}
