"""A target's ``headers:`` (sent on every request, never the key's header) and the
``User-Agent: session-exporter/<version>`` every request carries."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web

from exporter import __version__
from exporter.config.settings import ConfigError, load_settings
from exporter.web.landing import masked_config
from tests.harness import KEY, settings_for
from tests.network import origin
from tests.origin import json_response, redirect
from tests.test_cli import write_config
from tests.test_proxies import poll, target

GATEWAY_TOKEN = "gw-token-5f1e0c9a77"  # a header value that is a credential


async def test_headers_and_user_agent_on_every_request(tmp_path: Path) -> None:
    """The target's headers and ``User-Agent: session-exporter/<version>`` reach the origin on
    the request and on the redirect it follows; the key stays in Authorization."""

    def answer(request: object) -> object:
        path = getattr(request, "path", "")
        return redirect(307, "/v2/sessions") if path == "/v1/sessions" else json_response([])

    headers = {"X-Gateway-Token": GATEWAY_TOKEN, "X-Org": "research"}
    async with origin(handler=answer) as up:  # type: ignore[arg-type]
        snapshot = await poll(settings_for(target(up.url, headers=headers)))

    assert snapshot.up
    assert ["/v1/sessions", "/v2/sessions"] == up.paths()
    for seen in up.seen:
        assert f"session-exporter/{__version__}" == seen.headers["User-Agent"]
        assert GATEWAY_TOKEN == seen.headers["X-Gateway-Token"]
        assert "research" == seen.headers["X-Org"]
        assert f"Bearer {KEY}" == seen.authorization


@pytest.mark.parametrize(
    ("provider", "lines", "at", "key", "message"),
    [
        (
            "agi",
            ["authorization: Bearer other"],
            "6:7",
            "targets[0].headers",
            "header 'authorization' carries the provider's key: set it with api_key, "
            "api_key_env or api_key_file, never in headers",
        ),
        (
            "agi",
            ["Proxy-Authorization: Basic eA=="],
            "6:7",
            "targets[0].headers",
            "header 'Proxy-Authorization': give the proxy's credentials as user:password@ in "
            "proxy_url",
        ),
        (
            "agi",
            ["USER-AGENT: curl/8"],
            "6:7",
            "targets[0].headers",
            "header 'USER-AGENT': every request is sent as session-exporter/<version>",
        ),
        (
            "agi",
            ["X-Org: a", "x-org: b"],
            "6:7",
            "targets[0].headers",
            "header 'x-org' is given twice (as 'X-Org')",
        ),
        (
            "agi",
            ['"Bad Name": x'],
            "6:7",
            "targets[0].headers",
            "header name 'Bad Name' is not a valid HTTP header name",
        ),
        (
            "agi",
            ['X-Org: "a\\r\\nX-Injected: 1"'],
            "6:14",
            "targets[0].headers.X-Org",
            "a header value must be one line (no CR, LF, NUL or other control)",
        ),
        (
            "trigger",
            ["X-Trigger-Api-Version: '1999-01-01'"],
            "6:7",
            "targets[0].headers.X-Trigger-Api-Version",
            "header 'X-Trigger-Api-Version' is set by the exporter for provider trigger and "
            "cannot be replaced",
        ),
    ],
)
def test_check_config_refuses_a_header(
    tmp_path: Path, *, provider: str, lines: list[str], at: str, key: str, message: str
) -> None:
    """Authorization (any case), the proxy's and the client's own headers, a name given
    twice, an invalid name, a value with CR/LF, and a header the provider sets itself: each a
    located problem."""
    body = "\n".join(f"              {line}" for line in lines)
    path = write_config(
        tmp_path,
        f"""
        targets:
          - name: t
            provider: {provider}
            api_key: {KEY}
            headers:
{body}
        """,
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path)

    assert [f"{path}:{at}: {key}: {message}"] == [str(p) for p in caught.value.problems]


async def test_a_header_value_echoed_in_an_error_body_is_redacted() -> None:
    """A gateway that echoes its token in a 500's body: the poll's error shows the token as
    [REDACTED], as it would a key, never the value."""

    def echo(request: object) -> object:
        token = getattr(request, "headers", {}).get("X-Gateway-Token", "")
        return web.Response(text=f"bad gateway token {token}", status=500)

    async with origin(handler=echo) as up:  # type: ignore[arg-type]
        snapshot = await poll(
            settings_for(target(up.url, headers={"X-Gateway-Token": GATEWAY_TOKEN}))
        )

    assert "HTTP 500: bad gateway token [REDACTED]" == snapshot.error


def test_header_values_are_shown_masked() -> None:
    """Header values may be credentials: the landing page's config and the settings' repr
    show the names only."""
    settings = settings_for(
        target("http://127.0.0.1:1", headers={"X-Gateway-Token": GATEWAY_TOKEN})
    )
    assert "X-Gateway-Token" in masked_config(settings)
    for text in (masked_config(settings), repr(settings)):
        assert GATEWAY_TOKEN not in text
