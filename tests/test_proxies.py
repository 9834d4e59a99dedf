"""Forward proxies: a target's ``proxy_url``, and HTTPS_PROXY / HTTP_PROXY / NO_PROXY as curl
reads them, against a real tinyproxy (plain HTTP forwarded, HTTPS through a CONNECT tunnel,
basic auth, a proxy that refuses). A proxy's password is never printed anywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from exporter.config.settings import ConfigError, Settings, load_settings
from exporter.core.logs import REDACTOR
from exporter.polling.state import TargetSnapshot
from exporter.upstream.client import USER_AGENT
from exporter.upstream.errors import Reason
from exporter.upstream.proxies import bypasses, environment_proxy, parse_proxy
from exporter.web.landing import masked_config
from tests.harness import NOW, free_port, poll_all, settings_for
from tests.network import SERVER_NAME, make_ca, origin, server_context, tinyproxy
from tests.test_cli import run, write_config

USER = "alice"
PASSWORD = "pr0xy-Pa55word-9731"


def target(url: str, **extra: Any) -> dict[str, Any]:
    """An AGI target named ``t`` at ``url``, one attempt per poll unless ``extra`` says."""
    return {"name": "t", "provider": "agi", "base_url": url, "retries": 0, **extra}


async def poll(settings: Settings) -> TargetSnapshot:
    """One poll of target ``t`` through the real poller and client."""
    store = await poll_all(settings, clock=lambda: NOW)
    return store.snapshots["t"]


def with_password(proxy_url: str, user: str = USER, password: str = PASSWORD) -> str:
    return proxy_url.replace("http://", f"http://{user}:{password}@")


# --- NO_PROXY as curl reads it ------------------------------------------------------------


@pytest.mark.parametrize(
    ("no_proxy", "host", "bypassed"),
    [
        ("svc.test", "svc.test", True),
        ("svc.test", "api.svc.test", True),
        ("svc.test", "xsvc.test", False),
        (".svc.test", "svc.test", True),
        (".svc.test", "api.svc.test", True),
        ("SVC.test", "api.svc.TEST", True),
        ("*.svc.test", "api.svc.test", False),
        ("*", "anything.example", True),
        ("localhost, *", "anything.example", False),
        ("127.0.0.1", "127.0.0.1", True),
        ("127.0.0.1", "127.0.0.2", False),
        ("localhost", "127.0.0.1", False),
        ("127.0.0.0/8", "127.9.9.9", True),
        ("10.0.0.0/8", "127.0.0.1", False),
        ("::1", "::1", True),
        ("[::1]", "[::1]", True),
        ("fd00::/8", "fd12::1", True),
        ("127.0.0.1:8080", "127.0.0.1", False),
        ("a.test b.test", "b.test", True),
        (" a.test , svc.test ", "svc.test", True),
        ("", "svc.test", False),
    ],
)
def test_no_proxy_forms(no_proxy: str, host: str, bypassed: bool) -> None:
    """NO_PROXY: names match themselves and their subdomains (leading dot ignored), ``*`` alone
    matches all, IP addresses and CIDR ranges match addresses, globs and ports match nothing,
    without case, separated by commas or spaces, as curl 7.86+ does."""
    assert bypassed == bypasses(no_proxy, host)


def test_which_variable_applies() -> None:
    """https:// targets read https_proxy/HTTPS_PROXY, http:// ones http_proxy/HTTP_PROXY; the
    lower-case name wins; a bare host:port is an http:// proxy; no_proxy exempts."""
    env = {"HTTPS_PROXY": "upper:1", "https_proxy": "lower:2", "HTTP_PROXY": "http://plain:3"}
    secure = environment_proxy("https://api.example", env)
    plain = environment_proxy("http://api.example", env)
    assert secure is not None
    assert plain is not None
    assert ("http://lower:2", "https_proxy") == (str(secure.url), secure.source)
    assert ("http://plain:3", "HTTP_PROXY") == (str(plain.url), plain.source)
    assert environment_proxy("https://api.example", {**env, "NO_PROXY": "example"}) is None
    assert environment_proxy("https://api.example", {"HTTP_PROXY": "http://p:1"}) is None


def test_a_proxy_url_is_shown_with_its_password_masked() -> None:
    """``shown`` keeps scheme, host and port and masks the user info as ``xxxxx`` (a proxy
    service's API key is often the user name); a percent-encoded password is sent decoded,
    once; a key given as the user name alone is masked too."""
    proxy = parse_proxy(f"http://{USER}:{PASSWORD}@proxy.example:3128/", "proxy_url")
    encoded = parse_proxy("http://al%20ice:p%40ss%25x@proxy.example:3128", "proxy_url")
    assert "http://xxxxx@proxy.example:3128" == proxy.shown
    assert PASSWORD not in repr(proxy)
    assert ("al ice", "p@ss%x") == (encoded.url.user, encoded.password)
    assert "http://xxxxx@proxy.example:3128" == encoded.shown
    key_as_user = parse_proxy("http://ZYTEAPIKEY0123456789abcdef:@proxy.example:8011", "proxy_url")
    assert "the proxy http://xxxxx@proxy.example:8011 (from proxy_url)" == key_as_user.named


async def test_a_proxy_key_given_as_user_name_never_reaches_a_message() -> None:
    """A dead proxy whose API key is its user name (``http://KEY:@host``): the poll's error and
    its log lines name the proxy with the key masked, and the redactor knows the key."""
    key = "ZYTEAPIKEY0123456789abcdef"
    dead = f"http://{key}:@127.0.0.1:{free_port()}"
    with capture_logs() as logs:
        failed = await poll(settings_for(target("https://api.example", proxy_url=dead)))

    assert Reason.CONNECT == failed.error_reason
    assert failed.error is not None
    assert key not in failed.error
    assert key not in str(logs)
    assert "[REDACTED]" == REDACTOR.scrub(key)


# --- through a real tinyproxy ---------------------------------------------------------------


async def test_plain_http_through_the_proxy(tmp_path: Path) -> None:
    """An http:// target with ``proxy_url``: the request reaches the origin through the proxy
    (its Via header), with the exporter's User-Agent."""
    async with tinyproxy(tmp_path / "proxy") as proxy, origin() as up:
        snapshot = await poll(settings_for(target(up.url, proxy_url=proxy.url)))

    assert (True, None) == (snapshot.up, snapshot.error)
    assert 1 == len(up.seen)
    assert "tinyproxy" in up.seen[0].headers.get("Via", "")
    assert USER_AGENT == up.seen[0].headers["User-Agent"]


async def test_https_through_a_connect_tunnel_with_credentials(tmp_path: Path) -> None:
    """An https:// target through a proxy that wants basic auth: with user:password in
    ``proxy_url`` the tunnel opens and TLS verifies end to end (User-Agent included);
    without, the poll fails as ``connect`` saying the proxy asks for credentials (407)."""
    ca = make_ca(tmp_path / "pki")
    tls = {"ca_file": str(ca.cert_file), "server_name": SERVER_NAME}
    context = server_context(ca.issue("server"))
    async with (
        tinyproxy(tmp_path / "proxy", credentials=(USER, PASSWORD)) as proxy,
        origin(context=context) as up,
    ):
        good = await poll(settings_for(target(up.url, proxy_url=with_password(proxy.url), tls=tls)))
        bare = await poll(settings_for(target(up.url, proxy_url=proxy.url, tls=tls)))
        log = proxy.log_text()

    assert (True, None) == (good.up, good.error)
    assert [USER_AGENT] == [seen.headers["User-Agent"] for seen in up.seen]
    assert f"CONNECT 127.0.0.1:{up.url.rpartition(':')[2]}" in log
    assert Reason.CONNECT == bare.error_reason
    assert (
        f"the proxy {proxy.url} (from proxy_url) refused the request (HTTP 407 Proxy "
        "Authentication Required): it asks for credentials: give them as user:password@ in "
        "proxy_url"
    ) == bare.error


async def test_plain_http_through_a_proxy_that_asks_for_credentials(tmp_path: Path) -> None:
    """For an http:// target the proxy's 407 is an answer, not an exception: still reason
    ``connect`` with the same words; with the credentials the poll succeeds."""
    async with (
        tinyproxy(tmp_path / "proxy", credentials=(USER, PASSWORD)) as proxy,
        origin() as up,
    ):
        bare = await poll(settings_for(target(up.url, proxy_url=proxy.url)))
        good = await poll(settings_for(target(up.url, proxy_url=with_password(proxy.url))))

    assert Reason.CONNECT == bare.error_reason
    assert bare.error is not None
    assert "(HTTP 407 Proxy Authentication Required)" in bare.error
    assert (True, 1) == (good.up, len(up.seen))


async def test_environment_proxies_and_no_proxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP_PROXY (upper case) sends an http:// target through the proxy; NO_PROXY naming
    the host, or a CIDR range holding it, sends it direct; ``localhost`` does not cover
    127.0.0.1; a target's ``proxy_url`` wins over a dead HTTP_PROXY."""
    async with tinyproxy(tmp_path / "proxy") as proxy, origin() as up:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        via_env = await poll(settings_for(target(up.url)))
        routes = []
        for no_proxy in ("127.0.0.1", "127.0.0.0/8", "localhost"):
            monkeypatch.setenv("NO_PROXY", no_proxy)
            await poll(settings_for(target(up.url)))
            routes.append("Via" in up.seen[-1].headers)
        monkeypatch.delenv("NO_PROXY")
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
        override = await poll(settings_for(target(up.url, proxy_url=proxy.url)))

    assert via_env.up
    assert override.up
    assert "tinyproxy" in up.seen[0].headers.get("Via", "")
    assert [False, False, True] == routes
    assert "tinyproxy" in up.seen[-1].headers.get("Via", "")


async def test_a_dead_environment_proxy_fails_as_connect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTPS_PROXY pointing at a closed port: reason ``connect``, the message names the proxy
    and its variable, the password masked, in plain words; NO_PROXY then goes direct."""
    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("HTTPS_PROXY", with_password(dead))
    ca = make_ca(tmp_path / "pki")
    tls = {"ca_file": str(ca.cert_file), "server_name": SERVER_NAME}
    async with origin(context=server_context(ca.issue("server"))) as up:
        failed = await poll(settings_for(target(up.url, tls=tls)))
        monkeypatch.setenv("no_proxy", "127.0.0.1")
        direct = await poll(settings_for(target(up.url, tls=tls)))

    assert Reason.CONNECT == failed.error_reason
    assert (
        f"cannot reach the proxy {dead.replace('//', '//xxxxx@')} (from HTTPS_PROXY): "
        "connection refused"
    ) == failed.error
    assert (True, 1) == (direct.up, len(up.seen))


async def test_a_proxy_that_refuses(tmp_path: Path) -> None:
    """A proxy that filters every host refuses the CONNECT (403): reason ``connect``, the
    message names the proxy with its password masked and the host it would not reach."""
    ca = make_ca(tmp_path / "pki")
    tls = {"ca_file": str(ca.cert_file), "server_name": SERVER_NAME}
    async with (
        tinyproxy(tmp_path / "proxy", deny_all=True) as proxy,
        origin(context=server_context(ca.issue("server"))) as up,
    ):
        with capture_logs() as logs:
            snapshot = await poll(
                settings_for(target(up.url, proxy_url=with_password(proxy.url), tls=tls))
            )

    port = up.url.rpartition(":")[2]
    assert Reason.CONNECT == snapshot.error_reason
    assert (
        f"the proxy http://xxxxx@127.0.0.1:{proxy.port} (from proxy_url) refused to "
        f"connect to 127.0.0.1:{port} (HTTP 403 Filtered)"
    ) == snapshot.error
    assert [] == up.seen
    assert PASSWORD not in repr(logs)


async def test_the_proxy_password_is_never_printed(tmp_path: Path) -> None:
    """check-config, diagnose (against a dead proxy), the landing page's config and the
    settings' repr show the proxy, never its password."""
    dead = f"http://127.0.0.1:{free_port()}"
    path = write_config(
        tmp_path,
        f"""
        targets:
          - name: t
            provider: agi
            base_url: http://127.0.0.1:{free_port()}
            api_key: test-key-0123456789
            retries: 0
            proxy_url: {with_password(dead)}
        """,
    )
    checked = await run("check-config", "--config", str(path))
    diagnosed = await run("diagnose", "--config", str(path))
    settings = load_settings(path)

    assert 0 == checked.returncode
    assert 1 == diagnosed.returncode
    assert "cannot reach the proxy http://xxxxx@127.0.0.1:" in diagnosed.stdout
    for text in (checked.output, diagnosed.output, masked_config(settings), repr(settings)):
        assert PASSWORD not in text


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "socks5://127.0.0.1:1080",
            "proxy_url must be an http:// proxy (got socks5://); https:// targets go "
            "through it in a CONNECT tunnel, still encrypted end to end",
        ),
        (
            f"http://{USER}:{PASSWORD}@proxy.example:3128/path",
            "proxy_url must be only scheme, host and port (no path or query)",
        ),
    ],
)
def test_check_config_refuses_a_proxy_url(tmp_path: Path, value: str, message: str) -> None:
    """A proxy_url that is not http://host:port is a located config error, password unshown."""
    path = write_config(
        tmp_path,
        f"""
        targets:
          - name: t
            provider: agi
            api_key: test-key-0123456789
            proxy_url: "{value}"
        """,
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path)

    assert [f"{path}:5:16: targets[0].proxy_url: {message}"] == [
        str(p) for p in caught.value.problems
    ]
    assert PASSWORD not in str(caught.value)


def test_check_config_refuses_an_unusable_environment_proxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTPS_PROXY with a scheme the exporter cannot use fails the load, located at the
    target that would use it."""
    monkeypatch.setenv("HTTPS_PROXY", "socks5h://127.0.0.1:1080")
    path = write_config(
        tmp_path,
        """
        targets:
          - {name: t, provider: agi, api_key: test-key-0123456789}
        """,
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path)

    [problem] = caught.value.problems
    assert "targets[0]" == problem.path
    assert problem.message.startswith("HTTPS_PROXY must be an http:// proxy")
