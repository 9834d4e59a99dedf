"""Error bodies read in each provider's own shape, through the provider's hook."""

from __future__ import annotations

import gzip

import orjson
import pytest
from aiohttp import web

from exporter.providers import PROVIDERS, wire
from exporter.providers.base import Provider
from exporter.providers.chaser import ChaserProvider
from exporter.simulators import Fault, NotteSimulator
from exporter.upstream.client import new_client_session
from exporter.upstream.errors import PollError, Reason
from exporter.upstream.fetch import ErrorDetail, Exchange
from tests.conftest import Serve
from tests.harness import KEY, poll_all, settings_for
from tests.origin import json_response, new_fetcher, origin_server


def dumps(document: object) -> bytes:
    """A JSON body."""
    return orjson.dumps(document)


VALIDATION = {
    "detail": [
        {"loc": ["query", "page_size"], "msg": "Input should be less than 100", "type": "x"},
        {"loc": ["query", "page"], "msg": "Field required", "type": "missing"},
    ]
}


@pytest.mark.parametrize(
    ("reader", "body", "detail"),
    [
        # Chaser: chaser-sdk's api_error_from_response
        (wire.chaser_error_detail, {"code": "rate_limited", "message": "slow down"},
         "rate_limited: slow down"),
        (wire.chaser_error_detail, {"message": "slow down"}, "slow down"),
        (wire.chaser_error_detail, {"code": "rate_limited"}, "rate_limited"),
        (wire.chaser_error_detail, {"error": "Unauthorized"}, "Unauthorized"),
        (wire.chaser_error_detail, {"code": "", "message": "  ", "detail": "Not Found"},
         "Not Found"),
        # AGI and Notte: FastAPI
        (wire.fastapi_error_detail, {"detail": "Session limit reached"}, "Session limit reached"),
        (wire.fastapi_error_detail, VALIDATION,
         "query.page_size: Input should be less than 100; query.page: Field required"),
        (wire.fastapi_error_detail, {"detail": [{"msg": "bad"}, "odd"]}, "bad; odd"),
        (wire.fastapi_error_detail, {"detail": {"why": 1}}, '{"why":1}'),
        (wire.fastapi_error_detail, {"error": "Too Many Requests"}, "Too Many Requests"),
        # Notte: notte-sdk also reads a top-level message; detail wins over it
        (wire.notte_error_detail, {"status": 503, "message": "Service busy"}, "Service busy"),
        (wire.notte_error_detail, {"detail": "Not Found", "message": "ignored"}, "Not Found"),
        (wire.notte_error_detail, VALIDATION,
         "query.page_size: Input should be less than 100; query.page: Field required"),
        (wire.notte_error_detail, {"message": " ", "error": "Unauthorized"}, "Unauthorized"),
        # Trigger.dev: spec's {"error", "details"} and the core apiClient's error.message
        (wire.trigger_error_detail,
         {"error": "Query Error", "details": [
             {"code": "custom", "message": "Invalid status values: FOOBAR", "path": ["x"]},
             {"code": "custom", "message": "Invalid period: 1y", "path": ["y"]}]},
         "Query Error: Invalid status values: FOOBAR; Invalid period: 1y"),
        (wire.trigger_error_detail, {"error": {"message": "Invalid API key", "code": "x"}},
         "Invalid API key"),
        (wire.trigger_error_detail, {"error": "Unauthorized"}, "Unauthorized"),
        (wire.trigger_error_detail, {"details": [{"message": "only details"}]}, "only details"),
        # Together: the Stainless error object, a string, or the envelope's errors list
        (wire.together_error_detail,
         {"error": {"message": "Rate limit exceeded", "type": "rate_limit",
                    "code": "rate_limit_exceeded"}},
         "rate_limit_exceeded: Rate limit exceeded"),
        (wire.together_error_detail, {"error": {"message": "Invalid key", "type": "auth"}},
         "auth: Invalid key"),
        (wire.together_error_detail, {"error": "Unauthorized"}, "Unauthorized"),
        (wire.together_error_detail, {"errors": ["Not Found", {"message": "again"}]},
         "Not Found; again"),
    ],
)  # fmt: skip
def test_provider_shapes(reader: ErrorDetail, body: object, detail: str) -> None:
    """Each reader turns its provider's documented error shapes into the message's detail."""
    assert detail == reader(dumps(body))


@pytest.mark.parametrize(
    "reader",
    [
        wire.generic_error_detail,
        wire.chaser_error_detail,
        wire.fastapi_error_detail,
        wire.notte_error_detail,
        wire.trigger_error_detail,
        wire.together_error_detail,
    ],
)
def test_other_bodies_fall_back_to_the_generic_reading(reader: ErrorDetail) -> None:
    """A gateway's text, a foreign shape or an empty body read the same with every reader."""
    assert "<html>502 Bad Gateway</html>" == reader(b"  <html>502 Bad Gateway</html>\n")
    assert "x" * 299 + "…" == reader(b"x" * 1000)  # cut, and marked as cut
    assert "" == reader(b"")
    assert "" == reader(dumps({"unrelated": True}))


def test_generic_reading_is_todays_rule() -> None:
    """The default: ``details[].message``, ``detail``, ``errors[]``, ``error`` or the text."""
    read = wire.generic_error_detail
    assert "Query Error: a b" == read(dumps({"error": "Query Error", "details": [
        {"message": "a"}, {"message": "b"}]}))  # fmt: skip
    assert "bad" == read(dumps({"detail": [{"msg": "bad"}]}))
    assert "Not Found" == read(dumps({"errors": ["Not Found"]}))
    assert '{"message":"m"}' == read(dumps({"error": {"message": "m"}}))


def test_every_provider_has_the_hook_with_the_generic_default() -> None:
    """Provider.error_detail is the generic reading unless a provider module overrides it."""
    body = dumps({"detail": "x"})
    assert "x" == Provider.error_detail(body)
    for provider in PROVIDERS.values():
        assert isinstance(provider.error_detail(body), str)


def error(status: int, document: object) -> web.Response:
    """An error answer the server does not want retried."""
    return json_response(document, status=status, headers={"x-should-retry": "false"})


async def test_page_fetcher_reads_errors_with_the_hook_it_is_given() -> None:
    """The hook's detail makes the message ``HTTP <status>: <detail>``, over a real socket."""

    def answer(_: web.Request) -> web.Response:
        return error(429, {"code": "rate_limited", "message": "slow down"})

    async with origin_server(answer) as api, new_client_session() as session:
        with pytest.raises(PollError) as chaser:
            await new_fetcher(
                session, api.url + "/v1/sessions", error_detail=wire.chaser_error_detail
            ).get_body()
        with pytest.raises(PollError) as plain:
            await new_fetcher(session, api.url + "/v1/sessions").get_body()

    assert (Reason.HTTP_4XX, "HTTP 429: rate_limited: slow down") == (
        chaser.value.reason,
        chaser.value.message,
    )
    # without a hook, fetch.py guesses no shape: the body is shown as it is
    assert 'HTTP 429: {"code":"rate_limited","message":"slow down"}' == plain.value.message


async def test_the_poller_passes_the_providers_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    """A provider's error_detail reaches the poll's error (as the provider rewrite attaches it)."""
    monkeypatch.setattr(ChaserProvider, "error_detail", staticmethod(wire.chaser_error_detail))
    answer = error(400, {"code": "bad_offset", "message": "offset must be >= 0"})
    async with origin_server(lambda _: answer) as api:
        store = await poll_all(
            settings_for({"name": "c", "provider": "chaser", "base_url": api.url})
        )

    snap = store.snapshots["c"]
    assert Reason.HTTP_4XX == snap.error_reason
    assert "HTTP 400: bad_offset: offset must be >= 0" == snap.error


async def test_notte_poll_shows_a_top_level_message(served: Serve) -> None:
    """A Notte error body with only ``message`` (as notte-sdk reads it) is the poll's detail."""
    notte = NotteSimulator(api_key=KEY)
    notte.fault = Fault(
        status=503,
        body=dumps({"status": 503, "message": "Service busy, try later"}),
        headers={"x-should-retry": "false"},
    )
    store = await poll_all(
        settings_for({"name": "n", "provider": "notte", "base_url": await served(notte)})
    )

    snap = store.snapshots["n"]
    assert (Reason.HTTP_5XX, "HTTP 503: Service busy, try later") == (
        snap.error_reason,
        snap.error,
    )


async def test_a_body_without_detail_keeps_the_bare_status() -> None:
    """No readable detail: the message is just ``HTTP 503``."""
    answer = web.Response(status=503, headers={"x-should-retry": "false"})
    async with origin_server(lambda _: answer) as api, new_client_session() as session:
        with pytest.raises(PollError) as caught:
            await new_fetcher(
                session, api.url + "/", error_detail=wire.fastapi_error_detail
            ).get_body()

    assert (Reason.HTTP_5XX, "HTTP 503") == (caught.value.reason, caught.value.message)


SHOWN = ('{"detail":[' + ",".join(["{}"] * 100))[:299] + "…"
"""How the start of :func:`detail_bomb` shows: as text, cut to 300 characters."""


def detail_bomb(size: int) -> bytes:
    """A FastAPI-shaped error body of about ``size`` bytes: ``{"detail": [{}, {}, ...]}``."""
    return b'{"detail":[' + b",".join([b"{}"] * (size // 3)) + b"]}"


async def test_only_the_first_64_kib_of_an_error_body_is_read() -> None:
    """Of a 16 MiB error body sent as ~16 KiB of gzip, the fetcher reads 64 KiB and no more
    (the request trace shows it), and the detail is that prefix shown as text: a cut body is
    not JSON, so nothing is decoded whole. It used to read, and decode three times, all of it
    (+882 MiB RSS, ~1 s on the loop)."""
    body = gzip.compress(detail_bomb(16 * 1024 * 1024), 9)
    answer = web.Response(
        body=body,
        status=503,
        headers={"Content-Encoding": "gzip", "x-should-retry": "false"},
    )
    seen: list[Exchange] = []
    async with origin_server(lambda _: answer) as api, new_client_session() as session:
        with pytest.raises(PollError) as caught:
            await new_fetcher(
                session,
                api.url + "/",
                error_detail=wire.notte_error_detail,
                max_bytes=64 * 1024 * 1024,
                on_response=seen.append,
            ).get_body()

    assert [64 * 1024] == [exchange.body_bytes for exchange in seen]
    assert f"HTTP 503: {SHOWN}" == caught.value.message


@pytest.mark.parametrize("reader", [wire.notte_error_detail, wire.generic_error_detail])
def test_a_long_body_is_shown_by_its_first_bytes(reader: ErrorDetail) -> None:
    """A body longer than the read bound (a Notte 2xx with ``detail``, whose whole page is
    passed) is read as its first 64 KiB, shown as text, never decoded whole."""
    body = detail_bomb(1024 * 1024)

    assert SHOWN == reader(body)
