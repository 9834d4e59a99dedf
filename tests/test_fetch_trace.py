"""PageFetcher's raw bodies, its request trace (``on_response``) and extra request headers."""

from __future__ import annotations

import dataclasses

import pytest
from aiohttp import web

from exporter.polling.poller import TargetPoller
from exporter.polling.runtime import new_store
from exporter.providers import provider_for
from exporter.providers.chaser import ChaserProvider
from exporter.upstream.client import new_client_session
from exporter.upstream.errors import PollError, Reason
from exporter.upstream.fetch import Exchange
from tests.harness import KEY, settings_for
from tests.origin import json_response, new_fetcher, origin_server, redirect

EMPTY = {"sessions": [], "total": 0}


def slashed(request: web.Request) -> web.StreamResponse:
    """``/v1/sessions`` redirects to ``/v1/sessions/``, which answers; both with a limit."""
    limits = {"X-RateLimit-Remaining": "9", "X-RateLimit-Reset": "30", "X-Other": "x"}
    if request.path == "/v1/sessions":
        response = redirect(308, f"/v1/sessions/?{request.query_string}")
        response.headers.update(limits)
        return response
    return json_response(EMPTY, headers=limits)


def untimed(exchanges: list[Exchange]) -> list[Exchange]:
    """The exchanges with ``elapsed`` zeroed, for exact comparison."""
    return [dataclasses.replace(e, elapsed=0.0) for e in exchanges]


async def test_each_answer_is_traced_once_with_its_hop() -> None:
    """A redirect and its page: two exchanges, URL with query, hop count, rate-limit headers."""
    seen: list[Exchange] = []
    async with origin_server(slashed) as api, new_client_session() as session:
        fetcher = new_fetcher(session, api.url + "/v1/sessions", on_response=seen.append)
        await fetcher.get_body({"limit": "100", "offset": "0"})

    limits = (("x-ratelimit-remaining", "9"), ("x-ratelimit-reset", "30"))
    assert [
        Exchange(
            method="GET",
            url=f"{api.url}/v1/sessions?limit=100&offset=0",
            status=308,
            elapsed=0.0,
            body_bytes=0,
            rate_limit=limits,
            redirects=0,
        ),
        Exchange(
            method="GET",
            url=f"{api.url}/v1/sessions/?limit=100&offset=0",
            status=200,
            elapsed=0.0,
            body_bytes=len(b'{"sessions":[],"total":0}'),
            rate_limit=limits,
            redirects=1,
        ),
    ] == untimed(seen)
    assert all(0.0 <= e.elapsed < 10.0 for e in seen)


async def test_the_trace_never_holds_the_key() -> None:
    """A server echoing the key into a Location and a traced header: both are redacted."""

    def echo(request: web.Request) -> web.StreamResponse:
        if request.path == "/v1/sessions":
            return redirect(307, f"/v1/sessions/?echo={KEY}")
        return json_response(EMPTY, headers={"Retry-After": f"0 {KEY}"})

    seen: list[Exchange] = []
    async with origin_server(echo) as api, new_client_session() as session:
        await new_fetcher(session, api.url + "/v1/sessions", on_response=seen.append).get_body()

    assert 2 == len(seen)
    assert KEY not in repr(seen)
    assert f"{api.url}/v1/sessions/?echo=[redacted]" == seen[1].url
    assert (("retry-after", "0 [redacted]"),) == seen[1].rate_limit


async def test_a_refused_answer_is_traced_too() -> None:
    """An answer over the size limit is traced with the bytes read (none: its length said so)."""
    seen: list[Exchange] = []
    big = b"x" * 5000

    async with (
        origin_server(lambda _: web.Response(body=big)) as api,
        new_client_session() as session,
    ):
        fetcher = new_fetcher(session, api.url + "/", on_response=seen.append, max_bytes=1024)
        with pytest.raises(PollError) as caught:
            await fetcher.get_body()

    assert Reason.TOO_LARGE == caught.value.reason
    assert [(200, 0, 0)] == [(e.status, e.body_bytes, e.redirects) for e in seen]


async def test_get_body_is_the_raw_body() -> None:
    """get_body returns the bytes as sent, valid JSON or not (decoding is the provider's)."""
    async with (
        origin_server(lambda _: web.Response(body=b"{oops")) as api,
        new_client_session() as session,
    ):
        fetcher = new_fetcher(session, api.url + "/")
        assert b"{oops" == await fetcher.get_body()

    assert 1 == fetcher.pages
    assert {"200": 1} == dict(fetcher.requests)


async def test_max_pages_bounds_get_body() -> None:
    """The page guard acts on get_body: no request beyond max_pages."""
    async with (
        origin_server(lambda _: json_response(EMPTY)) as api,
        new_client_session() as session,
    ):
        fetcher = new_fetcher(session, api.url + "/", max_pages=2)
        await fetcher.get_body()
        await fetcher.get_body()
        with pytest.raises(PollError) as caught:
            await fetcher.get_body()

    assert Reason.TOO_MANY_PAGES == caught.value.reason
    assert 2 == len(api.seen)


async def test_the_poller_sends_the_providers_headers_and_traces(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Provider.request_headers goes with every request; the poller's on_response sees each."""
    monkeypatch.setattr(
        ChaserProvider, "request_headers", lambda self: {"X-Chaser-Account": "acme"}
    )
    seen: list[Exchange] = []
    async with origin_server(slashed) as api:
        settings = settings_for({"name": "c", "provider": "chaser", "base_url": api.url})
        store = new_store(settings)
        async with new_client_session() as session:
            poller = TargetPoller(
                target=settings.targets[0],
                interval=30,
                session=session,
                store=store,
                clock=lambda: 1_767_225_600.0,
                on_response=seen.append,
            )
            snapshot = await poller.poll()

    assert snapshot.up
    assert [("acme", f"Bearer {KEY}")] * 2 == [
        (s.headers.get("X-Chaser-Account"), s.authorization) for s in api.seen
    ]
    assert [(308, 0), (200, 1)] == [(e.status, e.redirects) for e in seen]
    assert 1_767_225_630.0 == snapshot.rate_limit.reset


def test_the_default_hooks() -> None:
    """Without an override a provider sends no extra header."""
    settings = settings_for({"name": "c", "provider": "chaser", "base_url": "http://h"})
    assert {} == provider_for(settings.targets[0]).request_headers()
