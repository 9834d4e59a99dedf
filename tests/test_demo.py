"""The demo: a living simulated world, and `session-exporter demo` serving all five providers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from types import ModuleType

import aiohttp
import orjson

from exporter.cli.demo import DEMO_PRICES, DemoWorld, Outage
from exporter.config.settings import Settings
from exporter.polling.aggregate import Aggregate, AggregateBuilder
from exporter.providers import agi, chaser, notte, together, trigger
from exporter.providers.base import Capabilities
from exporter.simulators import Fault
from tests.conftest import Serve
from tests.harness import Exposition, console_script, free_port, poll_all, scrape

PROVIDERS = ("together", "agi", "trigger", "chaser", "notte")
DEFINED = ("e2b", "browserbase", "daytona", "runloop", "steel")
"""The providers shipped as definitions, each with a seeded population in the demo."""
MODULES: dict[str, ModuleType] = {
    "together": together,
    "agi": agi,
    "trigger": trigger,
    "chaser": chaser,
    "notte": notte,
}
CAPABILITIES = {
    "together": together.TogetherProvider.capabilities,
    "agi": agi.AgiProvider.capabilities,
    "trigger": trigger.TriggerProvider.capabilities,
    "chaser": chaser.ChaserProvider.capabilities,
    "notte": notte.NotteProvider.capabilities,
}


def test_fixtures_for_every_alert() -> None:
    """The seeded world holds stuck sessions, an overdue one and an unleased live browser."""
    world = DemoWorld(now=1_800_000_000.0)

    chaser = {r["id"]: r for r in world.chaser.sim.sessions}
    assert ("running", 0) == (
        chaser["chs-stuck"]["status"],
        chaser["chs-stuck"]["active_connection_leases"],
    )
    assert "ses_stuck" == world.together.sim.sessions[0]["id"]
    assert "session_stuck" == world.trigger.sim.sessions[0]["id"]
    assert "agi-stuck" == world.agi.sim.sessions[0]["session_id"]
    assert "ntt-overdue" == world.notte.sim.sessions[0]["session_id"]


REPORTED = {"chaser": Capabilities(leases=True), "chaser-list": Capabilities(deadlines=True)}
"""What each Chaser account's answers carry: leases in the reference's shape, deadlines in
the guide's (the others report all their provider's facts)."""


def aggregates(world: DemoWorld, now: float, *, since: float | None = None) -> dict[str, Aggregate]:
    """Each simulated account's sessions folded exactly as a poll at ``now`` would fold them
    (after a successful one at ``since``), by the account's key."""
    out: dict[str, Aggregate] = {}
    for population in world.populations:
        name = population.sim.provider
        if name in DEFINED:
            continue  # seeded afresh every 10 minutes, not moved every tick
        module = MODULES[name]
        builder = AggregateBuilder(
            statuses=module.STATUS_PHASES, capabilities=CAPABILITIES[name], now=now, since=since
        )
        for i, row in enumerate(population.sim.sessions):
            status = row["status"].lower() if name == "trigger" else None
            page = module.CODEC.decode(
                orjson.dumps([row]), first=i, where=lambda j: f"[{j}]", status=status
            )
            assert not page.invalid, page.invalid
            builder.add_page(page)
        out[population.key] = builder.build(reported=REPORTED.get(population.key))
    return out


def test_every_aggregate_moves() -> None:
    """Every contract aggregate changes in the demo's first minute, and in every 3 minutes after.

    Sampled every 10 simulated seconds over 30 minutes.
    """
    start = 1_800_000_000.0
    world = DemoWorld(now=start)
    samples: list[dict[str, tuple[object, ...]]] = []
    for second in range(1, 1801):
        world.tick(start + second)
        if second % 10 == 0:
            by_provider = aggregates(world, start + second)
            samples.append(
                {
                    "sessions": tuple(
                        sorted(
                            (p, s, c.count)
                            for p, a in by_provider.items()
                            for s, c in a.statuses.items()
                        )
                    ),
                    "oldest": tuple(
                        sorted(
                            (p, s, c.oldest_created)
                            for p, a in by_provider.items()
                            for s, c in a.statuses.items()
                        )
                    ),
                    "overdue": tuple(a.overdue for a in by_provider.values()),
                    "next_deadline": tuple(a.next_deadline for a in by_provider.values()),
                    "leases": tuple(a.leases for a in by_provider.values()),
                    "unleased": tuple(a.unleased for a in by_provider.values()),
                    "activity": tuple(a.oldest_activity for a in by_provider.values()),
                    "executions": tuple(a.executions for a in by_provider.values()),
                }
            )

    for family in samples[0]:
        first_minute = {sample[family] for sample in samples[:6]}
        assert len(first_minute) > 1, f"{family} did not move in the first minute"
        for window in range(len(samples) - 18):
            values = {sample[family] for sample in samples[window : window + 19]}
            assert len(values) > 1, f"{family} stood still for 3 minutes from sample {window}"


def test_population_evolves_and_is_seeded() -> None:
    """Ticks change statuses; two worlds with the same seed evolve identically."""
    first, second = DemoWorld(now=1_800_000_000.0), DemoWorld(now=1_800_000_000.0)
    before = [r["status"] for r in first.agi.sim.sessions]

    for step in range(1, 120):
        first.tick(1_800_000_000.0 + step)
        second.tick(1_800_000_000.0 + step)

    assert before != [r["status"] for r in first.agi.sim.sessions[: len(before)]]
    assert first.chaser.sim.sessions == second.chaser.sim.sessions
    assert first.trigger.sim.sessions == second.trigger.sim.sessions


def test_outage_schedule_fails_and_recovers_agi() -> None:
    """The AGI simulator answers 503 during the outage window and recovers after it."""
    world = DemoWorld(now=0.0, outage=Outage(start=10.0, length=5.0, period=20.0))

    world.tick(9.0)
    assert world.agi.sim.fault is None
    world.tick(10.0)
    assert Fault(status=503) == world.agi.sim.fault
    world.tick(15.0)
    assert world.agi.sim.fault is None
    world.tick(31.0)
    assert Fault(status=503) == world.agi.sim.fault


def test_schedule_exercises_the_shipped_alerts() -> None:
    """The AGI outage outlasts target-down (10m) and data-stale (15m + 1m) and then ends;
    the Chaser failure wave raises failed sessions by well over 3 for over 5 minutes."""
    start = 1_800_000_000.0
    world = DemoWorld(now=start)
    down: list[int] = []
    failed: dict[int, int] = {0: 0}
    for second in range(1, 45 * 60):  # one outage period
        world.tick(start + second)
        if world.agi.sim.fault is not None:
            down.append(second)
        failed[second] = sum(1 for r in world.chaser.sim.sessions if r["status"] == "failed")

    assert (60, 20 * 60 + 59) == (down[0], down[-1])
    assert len(down) == down[-1] - down[0] + 1  # one unbroken outage, then recovery
    # Prometheus compares with 15 minutes ago (or the first sample, early on)
    rising = [s for s in range(1, 45 * 60) if failed[s] - failed[max(0, s - 15 * 60)] >= 3]
    assert len(rising) > 5 * 60


async def test_demo_command_serves_all_ten_providers() -> None:
    """`session-exporter demo` as a subprocess: every provider up with live sessions."""
    exe = console_script()
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        exe,
        "demo",
        "--listen",
        f"127.0.0.1:{port}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "SESSION_EXPORTER_CONFIG": ""},
    )
    try:
        async with aiohttp.ClientSession() as http, asyncio.timeout(30):
            while True:
                try:
                    async with http.get(f"http://127.0.0.1:{port}/readyz") as ready:
                        if ready.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.1)
            async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                metrics = Exposition.parse(await response.text())
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 10)

    assert 0 == proc.returncode, err.decode()[-2000:]
    for name in (*PROVIDERS, "chaser-list", *DEFINED):
        assert 1.0 == metrics.get("sessions_target_up", target=f"{name}-demo"), name
        live = metrics.select("sessions", target=f"{name}-demo", phase="live")
        assert sum(live.values()) > 0, name
    assert 1.0 <= (metrics.get("sessions_overdue", provider="notte") or 0)
    assert 1.0 <= (metrics.get("sessions_unleased", target="chaser-demo") or 0)
    # Chaser's two list shapes: leases from the reference's, deadlines from the guide's
    assert 1.0 == metrics.get("sessions_target_up", target="chaser-list-demo")
    assert 1.0 <= (metrics.get("sessions_overdue", target="chaser-list-demo") or 0)
    assert {} == metrics.select("sessions_connection_leases", target="chaser-list-demo")
    assert {} == metrics.select("sessions_overdue", target="chaser-demo")
    assert metrics.select("session_info", session_id="chs-stuck")
    assert b'"event": "demo.started"' in err


async def test_demo_listens_on_loopback_by_default() -> None:
    """Without --listen the demo serves 127.0.0.1:9864 (loopback only), not every interface.

    The `demo.started` line names the URL before the port is bound, so the test holds whether
    the port is free (the demo starts) or taken by someone else (the demo exits 1).
    """
    proc = await asyncio.create_subprocess_exec(
        console_script(),
        "demo",
        "--log-format",
        "json",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "SESSION_EXPORTER_CONFIG": ""},
    )
    assert proc.stderr is not None
    started: dict[str, object] = {}
    try:
        async with asyncio.timeout(30):
            while not started:
                line = await proc.stderr.readline()
                assert line, "the demo ended without logging demo.started"
                if b'"demo.started"' in line:
                    started = json.loads(line)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.communicate(), 10)

    assert "http://127.0.0.1:9864/metrics" == started["metrics"]


async def demo_log(*flags: str) -> list[dict[str, object]]:
    """The demo's JSON log events until every target has been polled twice, then SIGTERM."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        console_script(),
        "demo",
        "--listen",
        f"127.0.0.1:{port}",
        "--log-format",
        "json",
        *flags,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "SESSION_EXPORTER_CONFIG": ""},
    )
    try:
        async with aiohttp.ClientSession() as http, asyncio.timeout(60):
            while True:
                try:
                    async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                        polls = Exposition.parse(await response.text()).select(
                            "sessions_exporter_polls_total"
                        )
                except aiohttp.ClientConnectionError:
                    polls = {}
                if len(polls) == len(PROVIDERS + DEFINED) + 1 and min(polls.values()) >= 2:
                    break
                await asyncio.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 10)
    return [json.loads(line) for line in err.decode().splitlines()]


async def test_demo_keeps_simulator_access_lines_out_of_the_info_log() -> None:
    """At the default level the simulated providers' requests are not logged at all."""
    events = await demo_log()

    names = [e["event"] for e in events]
    assert "http.access" not in names
    assert not [n for n in names if "HTTP/1.1" in str(n)]  # aiohttp's raw access line
    assert {"demo.started", "server.started"} <= set(names)


async def test_demo_access_lines_are_short_debug_events_with_fields() -> None:
    """With --log-level debug each simulator request is one `http.access` event with fields."""
    events = await demo_log("--log-level", "debug")

    access = [e for e in events if e["event"] == "http.access"]
    assert access
    for event in access:
        assert "debug" == event["level"]
        assert "GET" == event["method"]
        assert str(event["path"]).startswith("/")
        assert isinstance(event["status"], int)
    assert not [e for e in events if "HTTP/1.1" in str(e["event"])]


async def test_the_demo_burns_session_hours_and_prices_some_targets(served: Serve) -> None:
    """Two polls of the demo world 30 simulated seconds apart: every target's
    sessions_live_seconds_total grows by exactly what its pending and live sessions spent since
    the first poll, and together, chaser and notte carry their made-up prices, agi and trigger
    none, so the dashboard's spend panels have moving numbers."""
    start = 1_800_000_000.0
    world = DemoWorld(now=start)
    urls = {p.key: await served(p.sim) for p in world.populations}
    settings = Settings(targets=world.targets(urls))
    now = start

    store = await poll_all(settings, clock=lambda: now)
    for second in range(1, 31):
        world.tick(start + second)
    now = start + 30
    await poll_all(settings, store=store, clock=lambda: now)

    metrics = scrape(store, clock=lambda: now)
    spent = metrics.by("sessions_live_seconds_total", "target")
    expected = {
        f"{key}-demo": aggregate.live_seconds
        for key, aggregate in aggregates(world, now, since=start).items()
    }
    assert expected == {name: spent[name] for name in expected}
    assert set(expected) | {f"{name}-demo" for name in DEFINED} == set(spent)
    assert all(seconds > 0 for seconds in spent.values()), spent
    prices = {p.key: DEMO_PRICES.get(p.sim.provider) for p in world.populations}
    assert {f"{k}-demo": v for k, v in prices.items() if v is not None} == metrics.by(
        "sessions_price_per_session_hour", "target"
    )
