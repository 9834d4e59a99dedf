"""The HTTP endpoints of the real app, with its poll tasks running against simulators."""

from __future__ import annotations

import asyncio
import gzip

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from pytest_aiohttp import AiohttpClient

from exporter.config.settings import Settings
from exporter.simulators import ChaserSimulator, Fault, NotteSimulator, chaser_row, iso, notte_row
from exporter.web import landing
from exporter.web.app import EXPOSITION, STORE, create_app
from tests.conftest import Serve
from tests.harness import KEY, NOW, Exposition, settings_for

T = NOW  # a fixed "now" for the data: nothing here reads the wall clock at import


Client = TestClient[web.Request, web.Application]


async def start(
    aiohttp_client: AiohttpClient, served: Serve, *, slow: float = 0.0, fault: Fault | None = None
) -> Client:
    """The app over a Chaser and a Notte simulator; Notte's first answer takes ``slow`` s."""
    chaser = ChaserSimulator(sessions=[chaser_row("c1", "running", iso(T - 5))], api_key=KEY)
    notte = NotteSimulator(sessions=[notte_row("n1", "active", T - 9, T - 1)], api_key=KEY)
    notte.fault = Fault(delay=slow, times=1) if slow else fault
    settings = settings_for(
        {"name": "ch", "provider": "chaser", "base_url": await served(chaser)},
        {"name": "nt", "provider": "notte", "base_url": await served(notte)},
        poll_interval="1h",
    )
    return await aiohttp_client(create_app(settings))


async def until_ready(client: Client) -> None:
    """Wait (bounded) for /readyz to answer 200."""
    async with asyncio.timeout(5):
        while (await client.get("/readyz")).status != 200:
            await asyncio.sleep(0.02)


async def test_readyz_waits_for_every_first_poll(
    aiohttp_client: AiohttpClient, served: Serve
) -> None:
    """/readyz is 503 naming the targets still waiting, then 200 once all have polled."""
    client = await start(aiohttp_client, served, slow=0.5)

    async with asyncio.timeout(5):
        while "ch" in client.app[STORE].waiting():
            await asyncio.sleep(0.01)
    waiting = await client.get("/readyz")
    assert 503 == waiting.status
    assert "waiting for first poll of: nt\n" == await waiting.text()
    await until_ready(client)
    assert "ready\n" == await (await client.get("/readyz")).text()


async def test_healthz(aiohttp_client: AiohttpClient, served: Serve) -> None:
    """/healthz answers 200 at once, before any poll completed."""
    client = await start(aiohttp_client, served, slow=0.5)

    response = await client.get("/healthz")

    assert 200 == response.status
    assert "ok\n" == await response.text()


async def test_metrics_text_format(aiohttp_client: AiohttpClient, served: Serve) -> None:
    """Plain scrapes get the text format with both targets' data."""
    client = await start(aiohttp_client, served)
    await until_ready(client)

    response = await client.get("/metrics")

    assert 200 == response.status
    assert "text/plain; version=0.0.4; charset=utf-8" == response.headers["Content-Type"]
    metrics = Exposition.parse(await response.text())
    assert 1.0 == metrics.get("sessions", target="ch", status="running")
    assert 1.0 == metrics.get("sessions", target="nt", status="active")
    assert 1.0 == metrics.get("sessions_exporter_build_info")


async def test_metrics_openmetrics_when_asked(aiohttp_client: AiohttpClient, served: Serve) -> None:
    """An OpenMetrics Accept header gets OpenMetrics, ending in # EOF and parseable as such."""
    client = await start(aiohttp_client, served)
    await until_ready(client)

    response = await client.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )

    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    text = await response.text()
    assert text.endswith("# EOF\n")
    names = {f.name for f in text_string_to_metric_families(text)}  # type: ignore[no-untyped-call]
    assert {"sessions", "sessions_target_up", "sessions_exporter_poll_errors"} <= names


async def test_openmetrics_versions_share_one_rendering(
    aiohttp_client: AiohttpClient, served: Serve
) -> None:
    """A client cycling ``version=1.0.N`` (and ``1.0.x``) gets OpenMetrics 1.0.0 every time,
    rendered once: neither a render per version nor an HTTP 500."""
    client = await start(aiohttp_client, served)
    await until_ready(client)
    await client.get("/metrics")  # the text format, as Prometheus's own scrapes

    statuses, types = set(), set()
    for version in [*(f"1.0.{n}" for n in range(20)), "1.0.x"]:
        accept = f"application/openmetrics-text; version={version}"
        response = await client.get("/metrics", headers={"Accept": accept})
        statuses.add(response.status)
        types.add(response.headers["Content-Type"])
        assert (await response.text()).endswith("# EOF\n")

    assert {200} == statuses
    assert {
        "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores"
    } == types
    assert 2 == client.app[EXPOSITION].renders  # the text body and the OpenMetrics one


async def test_metrics_gzip_when_accepted(aiohttp_client: AiohttpClient, served: Serve) -> None:
    """Accept-Encoding: gzip gets a gzip body that inflates to the text exposition."""
    client = await start(aiohttp_client, served)
    await until_ready(client)

    async with (
        aiohttp.ClientSession(auto_decompress=False) as raw,
        raw.get(client.make_url("/metrics"), headers={"Accept-Encoding": "gzip"}) as response,
    ):
        body = await response.read()
        assert "gzip" == response.headers["Content-Encoding"]
    text = gzip.decompress(body).decode()
    assert 1.0 == Exposition.parse(text).get("sessions", target="ch", status="running")


async def test_landing_page_lists_targets(aiohttp_client: AiohttpClient, served: Serve) -> None:
    """/ shows the version and each target with its provider and last result."""
    client = await start(aiohttp_client, served, fault=Fault(status=500))
    await until_ready(client)

    page = await (await client.get("/")).text()

    assert '<h1>session-exporter <span class="version">0.1.0</span></h1>' in page
    assert '<tr id="target-ch"><td data-label="target"><b>ch</b><br>' in page
    assert '<a href="/probe?target=ch">probe</a></td><td data-label="provider">chaser</td>' in page
    assert '<td data-label="result"><span class="up">ok</span></td>' in page
    assert '<td data-label="sessions by phase">live 1</td>' in page
    assert (
        '<span class="down">failed (http_5xx)</span><br>'
        '<span class="error">HTTP 500: Internal Server Error</span>' in page
    )
    assert '<td data-label="interval">1h</td>' in page
    assert 'href="/metrics"' in page


async def test_landing_page_renders_the_config_once(
    aiohttp_client: AiohttpClient, served: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten requests for / dump the config as YAML once (it was once per request: 0.6 s at
    1,000 targets), and every page still shows it."""
    dumps = []
    real = landing.masked_config

    def counted(settings: Settings) -> str:
        dumps.append(settings)
        return real(settings)

    monkeypatch.setattr(landing, "masked_config", counted)
    client = await start(aiohttp_client, served)
    await until_ready(client)

    pages = [await (await client.get("/")).text() for _ in range(10)]

    assert 1 == len(dumps)
    assert all("name: ch" in page and "name: nt" in page for page in pages)
