"""``/probe?target=NAME``: one target's metrics from the snapshot, for the multi-target pattern."""

from __future__ import annotations

import asyncio
import gzip
from dataclasses import replace
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from pytest_aiohttp import AiohttpClient

from exporter.config.settings import load_settings, shard_of
from exporter.core.records import Phase
from exporter.exposition.cache import ExpositionCache
from exporter.polling.aggregate import Aggregate, StatusCount
from exporter.polling.state import Store, TargetSnapshot
from exporter.simulators import ChaserSimulator, NotteSimulator, chaser_row, iso, notte_row
from exporter.web.app import PROBES, STORE, create_app, reload_config
from tests.conftest import Serve
from tests.harness import KEY, NOW, Exposition, settings_for

T = NOW  # a fixed "now" for the data: nothing here reads the wall clock at import
Client = TestClient[web.Request, web.Application]
EXPORTER_WIDE = {
    "sessions_exporter_build_info",
    "sessions_exporter_shard_ordinal",
    "sessions_exporter_total_shards",
}


async def start(
    aiohttp_client: AiohttpClient, served: Serve, **top: object
) -> tuple[Client, ChaserSimulator, NotteSimulator]:
    """A ready app over a Chaser target `ch` and a Notte target `nt`."""
    chaser = ChaserSimulator(
        sessions=[
            chaser_row("c1", "running", iso(T - 500), leases=0),
            chaser_row("c2", "failed", iso(T - 90)),
        ],
        api_key=KEY,
    )
    notte = NotteSimulator(sessions=[notte_row("n1", "active", T - 900, T - 1)], api_key=KEY)
    settings = settings_for(
        {"name": "ch", "provider": "chaser", "base_url": await served(chaser)},
        {"name": "nt", "provider": "notte", "base_url": await served(notte)},
        poll_interval="1h",
        **top,
    )
    client = await aiohttp_client(create_app(settings))
    async with asyncio.timeout(5):
        while (await client.get("/readyz")).status != 200:
            await asyncio.sleep(0.02)
    return client, chaser, notte


async def test_probe_shows_exactly_one_targets_series(
    aiohttp_client: AiohttpClient, served: Serve
) -> None:
    """/probe?target=ch holds exactly /metrics' samples labelled target="ch", plus the
    exporter's build and shard series; nothing of `nt` and none of the config series."""
    client, _, _ = await start(aiohttp_client, served)

    response = await client.get("/probe", params={"target": "ch"})
    assert 200 == response.status
    assert "text/plain; version=0.0.4; charset=utf-8" == response.headers["Content-Type"]
    probe = Exposition.parse(await response.text())
    full = Exposition.parse(await (await client.get("/metrics")).text())

    expected = {
        key: value
        for key, value in full.samples.items()
        if ("target", "ch") in key[1] or key[0] in EXPORTER_WIDE
    }
    assert expected == probe.samples
    assert {"running": 1.0, "failed": 1.0} == {
        s: v for s, v in probe.by("sessions", "status").items() if v
    }
    assert 1.0 == probe.get("sessions_unleased", target="ch")
    assert 'target="nt"' not in probe.text
    assert "sessions_exporter_config_hash" not in probe.text


async def test_probe_never_calls_upstream(aiohttp_client: AiohttpClient, served: Serve) -> None:
    """Probing every target many times sends no request to any provider, and renders once."""
    client, chaser, notte = await start(aiohttp_client, served)
    before = (len(chaser.requests), len(notte.requests))

    for _ in range(20):
        for name in ("ch", "nt"):
            assert 200 == (await client.get("/probe", params={"target": name})).status

    assert before == (len(chaser.requests), len(notte.requests))
    assert {"ch": 1, "nt": 1} == {n: c.renders for n, c in client.app[PROBES].caches.items()}


async def test_probe_openmetrics_and_gzip(aiohttp_client: AiohttpClient, served: Serve) -> None:
    """The probe negotiates OpenMetrics and gzip exactly like /metrics does."""
    client, _, _ = await start(aiohttp_client, served)
    accept = "application/openmetrics-text; version=1.0.0"
    params = {"target": "nt"}

    plain = await client.get("/probe", params=params, headers={"Accept": accept})
    zipped = await client.get(
        "/probe",
        params=params,
        headers={"Accept": accept, "Accept-Encoding": "gzip"},
        auto_decompress=False,
    )

    assert plain.headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    body = await plain.read()
    assert body.endswith(b"# EOF\n")
    families = {f.name for f in text_string_to_metric_families(body.decode())}  # type: ignore[no-untyped-call]
    assert {"sessions", "sessions_target_up", "sessions_exporter_total_shards"} <= families
    assert ("gzip", "Accept, Accept-Encoding") == (
        zipped.headers["Content-Encoding"],
        zipped.headers["Vary"],
    )
    assert body == gzip.decompress(await zipped.read())


async def test_probe_without_target_is_400(aiohttp_client: AiohttpClient, served: Serve) -> None:
    """No target parameter (or an empty one, or two) is a client error, saying how to ask."""
    client, _, _ = await start(aiohttp_client, served)

    for query in ("/probe", "/probe?target="):
        response = await client.get(query)
        assert 400 == response.status
        assert "missing the target parameter: /probe?target=NAME\n" == await response.text()

    twice = await client.get("/probe?target=ch&target=nt")
    assert 400 == twice.status
    assert "give one target: /probe?target=NAME\n" == await twice.text()


async def test_probe_of_unknown_or_other_shards_target_is_404(
    aiohttp_client: AiohttpClient, served: Serve
) -> None:
    """An unknown target is 404; so is a configured one of another shard, naming its shard."""
    names = ["ch", "nt"]
    shard = shard_of("ch", 2)
    client, _, _ = await start(aiohttp_client, served, shard=shard, total_shards=2)
    other = [n for n in names if shard_of(n, 2) != shard]

    unknown = await client.get("/probe", params={"target": "nope"})
    assert (404, "unknown target 'nope'\n") == (unknown.status, await unknown.text())
    assert 200 == (await client.get("/probe", params={"target": "ch"})).status
    for name in other:
        response = await client.get("/probe", params={"target": name})
        assert (
            404,
            f"target {name!r} belongs to shard {1 - shard} of 2; this replica serves shard "
            f"{shard}\n",
        ) == (response.status, await response.text())
    probes = client.app[PROBES].caches
    assert set(client.app[STORE].snapshots) == set(probes)


def test_probe_cache_follows_only_its_target() -> None:
    """A target's cached probe survives other targets' polls, and is re-rendered when its own
    snapshot changes or its data goes stale."""
    now = [1000.0]
    store = Store(
        [
            TargetSnapshot(name="a", provider="chaser", stale_after=60),
            TargetSnapshot(name="b", provider="chaser", stale_after=60),
        ]
    )
    cache = ExpositionCache(store, target="a", clock=lambda: now[0])
    cache.response("", "")
    assert 1 == cache.renders

    store.publish(replace(store.snapshots["b"], polls=1))
    cache.response("", "")
    assert 1 == cache.renders  # another target's change

    data = Aggregate(
        statuses={"running": StatusCount(Phase.LIVE, 2, 900.0)},
        folded_label_values=0,
        sessions=2,
        duplicates=0,
        overdue=None,
        next_deadline=None,
        leases=None,
        unleased=None,
        oldest_activity=None,
        executions=None,
    )
    store.publish(
        replace(store.snapshots["a"], polls=1, up=True, last_success=now[0], aggregate=data)
    )
    body, _ = cache.response("", "")
    assert 2 == cache.renders  # its own change
    assert b'sessions{phase="live",provider="chaser",status="running",target="a"} 2.0' in body
    assert b'target="b"' not in body

    now[0] += 60
    cache.response("", "")
    assert 2 == cache.renders  # still fresh at exactly stale_after
    now[0] += 1
    body, _ = cache.response("", "")
    assert 3 == cache.renders  # gone stale: the session series are withdrawn
    assert b"sessions{" not in body


async def test_a_target_renamed_by_a_reload_loses_its_probe_cache(
    aiohttp_client: AiohttpClient, served: Serve, tmp_path: Path
) -> None:
    """After a reload renames target `old` to `new`, the first probe drops `old`'s cache
    (which held its rendered bodies) instead of keeping it for good."""
    url = await served(
        ChaserSimulator(sessions=[chaser_row("c1", "running", iso(T - 5))], api_key=KEY)
    )
    path = tmp_path / "config.yaml"

    def write(name: str) -> None:
        path.write_text(
            "poll_interval: 1h\ntargets:\n"
            f'  - {{name: {name}, provider: chaser, base_url: "{url}", api_key: "{KEY}"}}\n',
            encoding="utf-8",
        )

    write("old")
    client = await aiohttp_client(create_app(load_settings(path), config_path=path))
    async with asyncio.timeout(5):
        while (await client.get("/readyz")).status != 200:
            await asyncio.sleep(0.02)
    assert 200 == (await client.get("/probe", params={"target": "old"})).status
    assert {"old"} == set(client.app[PROBES].caches)

    write("new")
    assert await reload_config(client.app)
    async with asyncio.timeout(5):
        while (await client.get("/readyz")).status != 200:
            await asyncio.sleep(0.02)
    response = await client.get("/probe", params={"target": "new"})

    assert 200 == response.status
    assert {"new"} == set(client.app[PROBES].caches)
