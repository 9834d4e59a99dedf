"""Redirects: followed by hand within the target's origin only, with the key, at most 5 hops."""

from __future__ import annotations

import orjson
import pytest
from aiohttp import web
from yarl import URL

from exporter.upstream.client import new_client_session
from exporter.upstream.errors import PollError, Reason
from exporter.upstream.fetch import MAX_REDIRECTS, redirect_refusal
from tests.harness import KEY, poll_all, settings_for
from tests.origin import json_response, new_fetcher, origin_server, redirect

BEARER = f"Bearer {KEY}"
PAGE = {"items": [], "page": 1, "has_next": False}


def fastapi(request: web.Request) -> web.StreamResponse:
    """Notte's list route as FastAPI serves it: ``/sessions/``, and ``/sessions`` redirects.

    Starlette's ``redirect_slashes`` answers 307 with the absolute URL, query kept.
    """
    if request.path == "/sessions":
        return redirect(307, str(request.url.with_path("/sessions/").with_query(request.query)))
    if request.path == "/sessions/":
        return json_response(PAGE)
    return json_response({"detail": "Not Found"}, status=404)


async def test_fastapi_trailing_slash_redirect_is_followed_with_the_key() -> None:
    """``/sessions`` -> 307 -> ``/sessions/``: one page, both requests with the key and query."""
    async with origin_server(fastapi) as api, new_client_session() as session:
        fetcher = new_fetcher(session, api.url + "/sessions")

        assert PAGE == orjson.loads(await fetcher.get_body({"page": "1", "page_size": "50"}))

    assert ["/sessions?page=1&page_size=50", "/sessions/?page=1&page_size=50"] == api.paths()
    assert [BEARER, BEARER] == [s.authorization for s in api.seen]
    assert {"307": 1, "200": 1} == dict(fetcher.requests)
    assert 1 == fetcher.pages
    assert 0 == fetcher.retries


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize(
    ("location", "followed"),
    [("/v1/list/", "/v1/list/"), ("list/", "/v1/list/"), ("../other", "/other")],
)
async def test_relative_locations_resolve_against_the_request_url(
    status: int, location: str, followed: str
) -> None:
    """Every redirect status is followed, a relative Location resolved against the request."""

    def handler(request: web.Request) -> web.StreamResponse:
        if request.path == "/v1/sessions":
            return redirect(status, location)
        return json_response(PAGE)

    async with origin_server(handler) as api, new_client_session() as session:
        body = await new_fetcher(session, api.url + "/v1/sessions").get_body()

    assert b'{"items":[],"page":1,"has_next":false}' == body
    assert ["/v1/sessions", followed] == api.paths()
    assert ["GET", "GET"] == [s.method for s in api.seen]


async def test_redirect_to_another_port_is_not_followed_and_the_key_stays() -> None:
    """Another port is another origin: the poll fails http_4xx, and nothing reaches it."""
    async with (
        origin_server(lambda _: json_response({"sessions": [], "total": 0})) as other,
        origin_server(lambda _: redirect(307, f"{other.url}/v1/sessions?token=abc#frag")) as api,
    ):
        store = await poll_all(
            settings_for({"name": "c", "provider": "chaser", "base_url": api.url})
        )

    snap = store.snapshots["c"]
    assert Reason.HTTP_4XX == snap.error_reason
    assert (
        f"HTTP 307: redirect to {other.url}/v1/sessions not followed: it leaves the origin "
        f"{api.url} (the key is only sent to the configured origin; check base_url)" == snap.error
    )
    assert [] == other.seen
    assert 1 == len(api.seen)
    assert {"307": 1} == dict(snap.requests)
    assert 0 == snap.retries


@pytest.mark.parametrize(
    ("origin", "target", "refusal"),
    [
        ("https://api.example.com/v1/sessions", "https://api.example.com/v1/sessions/", None),
        ("https://api.example.com/v1", "https://API.Example.com:443/v2?x=1", None),
        ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/other", None),
        (
            "https://api.example.com/v1",
            "http://api.example.com/v1",
            "it downgrades https to http",
        ),
        (
            "https://api.example.com:8443/v1",
            "http://api.example.com:8443/v1",
            "it downgrades https to http",
        ),
        (
            "http://api.example.com/v1",
            "https://api.example.com/v1",
            "it leaves the origin http://api.example.com",
        ),
        (
            "https://api.example.com/v1",
            "https://api.example.com:8443/v1",
            "it leaves the origin https://api.example.com",
        ),
        (
            "https://api.example.com/v1",
            "https://evil.example.com/v1",
            "it leaves the origin https://api.example.com",
        ),
        (
            "https://api.example.com/v1",
            "ftp://api.example.com/v1",
            "it leaves the origin https://api.example.com",
        ),
        (
            "https://api.example.com/v1",
            "https://user:pw@api.example.com/v2",
            "it carries credentials in the URL",
        ),
    ],
)
def test_origin_check(origin: str, target: str, refusal: str | None) -> None:
    """Only the same scheme, host (any case) and port is followed; https never goes to http."""
    assert refusal == redirect_refusal(URL(origin), URL(target))


async def test_a_redirect_loop_fails_the_poll() -> None:
    """/a -> /b -> /a stops at the repeat, with http_4xx and no retry."""

    def handler(request: web.Request) -> web.StreamResponse:
        return redirect(307, "/b" if request.path == "/a" else "/a")

    async with origin_server(handler) as api, new_client_session() as session:
        fetcher = new_fetcher(session, api.url + "/a")
        with pytest.raises(PollError) as caught:
            await fetcher.get_body()

    assert Reason.HTTP_4XX == caught.value.reason
    assert (
        f"HTTP 307: redirect loop: {api.url}/a was already requested (check base_url)"
        == caught.value.message
    )
    assert ["/a", "/b"] == api.paths()


def chain(request: web.Request) -> web.StreamResponse:
    """``/r0`` -> ``/r1`` -> ... : each ``/rN`` redirects to the next; ``/end`` answers."""
    if request.path == "/end":
        return json_response(PAGE)
    hop = int(request.path.removeprefix("/r"))
    last = int(request.query.get("last", "0"))
    return redirect(308, "/end" if hop >= last else f"/r{hop + 1}?last={last}")


async def test_five_hops_are_followed_a_sixth_fails() -> None:
    """Exactly 5 redirects end on the page; one more fails the poll naming the last hop."""
    async with origin_server(chain) as api, new_client_session() as session:
        fetcher = new_fetcher(session, api.url + "/r0")
        assert PAGE == orjson.loads(await fetcher.get_body({"last": str(MAX_REDIRECTS - 1)}))
        assert {"308": 5, "200": 1} == dict(fetcher.requests)

        too_far = new_fetcher(session, api.url + "/r0")
        with pytest.raises(PollError) as caught:
            await too_far.get_body({"last": str(MAX_REDIRECTS)})

    assert 5 == MAX_REDIRECTS
    assert (
        f"HTTP 308: more than 5 redirects, the last to {api.url}/end (check base_url)"
        == caught.value.message
    )
    assert {"308": 6} == dict(too_far.requests)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (web.Response(status=307), "HTTP 307: redirect without a Location header"),
        (
            web.Response(status=304, headers={"Location": "/x"}),
            "HTTP 304: not a redirect the exporter follows (check base_url)",
        ),
        (
            web.Response(status=300, headers={"Location": "/x"}),
            "HTTP 300: not a redirect the exporter follows (check base_url)",
        ),
    ],
)
async def test_other_3xx_answers_fail(answer: web.Response, message: str) -> None:
    """No Location, or a 3xx that is no redirect to follow: http_4xx after one request."""
    async with origin_server(lambda _: answer) as api, new_client_session() as session:
        fetcher = new_fetcher(session, api.url + "/v1/sessions")
        with pytest.raises(PollError) as caught:
            await fetcher.get_body()

    assert (Reason.HTTP_4XX, message) == (caught.value.reason, caught.value.message)
    assert 1 == len(api.seen)


async def test_extra_headers_are_kept_on_redirects_and_cannot_replace_the_key() -> None:
    """``headers`` go with every hop; an ``authorization`` among them is ignored."""
    async with origin_server(fastapi) as api, new_client_session() as session:
        fetcher = new_fetcher(
            session,
            api.url + "/sessions",
            headers={"X-Chaser-Account": "acme", "authorization": "Bearer stolen"},
        )
        await fetcher.get_body()

    assert [("acme", BEARER), ("acme", BEARER)] == [
        (s.headers.get("X-Chaser-Account"), s.authorization) for s in api.seen
    ]
    assert [1, 1] == [len(s.headers.getall("Authorization")) for s in api.seen]
