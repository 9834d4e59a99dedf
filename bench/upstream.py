"""Simulated provider accounts with generated populations, served from their own process.

Each population is a provider simulator (``exporter.simulators``) filled with generated rows
and mounted under ``/<name>``, so a target's ``base_url`` is ``http://127.0.0.1:PORT/<name>``.
Every distinct query is answered by the simulator once and its bytes are kept, so after a
first poll the upstream costs the exporter's core nothing but the socket work: the benchmark
measures the exporter, not the simulator. ``GET /_stats`` answers the requests served per
population, for the "requests per poll" row.

Run as ``python -m bench.upstream SPEC...`` (``SPEC`` is ``name:provider:sessions``); it prints
``PORT <port>`` once it listens, and serves until its stdin closes.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from exporter.simulators import (
    SIMULATORS,
    ChaserSimulator,
    NotteSimulator,
    Simulator,
    TriggerSimulator,
    browserbase_population,
    chaser_row,
    daytona_population,
    e2b_population,
    notte_row,
    runloop_population,
    steel_population,
    trigger_row,
)

KEY = "bench-key-0123456789"
NOW = 1_767_225_600.0
"""The populations' reference time (2026-01-01T00:00:00Z); sessions were created before it."""

_CHASER_STATUSES = (
    ("running", 40),
    ("idle", 15),
    ("starting", 5),
    ("stopped", 30),
    ("failed", 5),
    ("expired", 5),
)
_NOTTE_STATUSES = (("active", 70), ("closed", 20), ("timed_out", 7), ("error", 3))

Handler = Callable[[web.Request], Awaitable[web.Response]]


def _pick(rng: random.Random, weighted: Sequence[tuple[str, int]]) -> str:
    return rng.choices([s for s, _ in weighted], [w for _, w in weighted])[0]


def _session_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def chaser_population(sessions: int, *, seed: int = 1) -> list[dict[str, Any]]:
    """``sessions`` Chaser rows: mixed statuses, ages up to two days, 0-3 leases."""
    rng = random.Random(seed)
    return [
        chaser_row(
            _session_id(rng),
            _pick(rng, _CHASER_STATUSES),
            NOW - rng.uniform(0, 172_800),
            rng.choice((0, 0, 1, 2, 3, None)),
            session_type=rng.choice(("browser", "browser", "headless")),
        )
        for _ in range(sessions)
    ]


def notte_population(sessions: int, *, seed: int = 1) -> list[dict[str, Any]]:
    """``sessions`` Notte rows: mostly active, ages up to a day."""
    rng = random.Random(seed)
    rows = []
    for _ in range(sessions):
        created = NOW - rng.uniform(0, 86_400)
        rows.append(
            notte_row(
                _session_id(rng),
                _pick(rng, _NOTTE_STATUSES),
                created,
                created + rng.uniform(0, NOW - created),
                idle_timeout_minutes=rng.choice((3, 5, 15)),
                max_duration_minutes=rng.choice((15, 60, None)),
            )
        )
    return rows


_TRIGGER_STATUSES = (("ACTIVE", 60), ("CLOSED", 30), ("EXPIRED", 10))


def trigger_population(sessions: int, *, seed: int = 1) -> list[dict[str, Any]]:
    """``sessions`` Trigger.dev rows: mostly active, created within the last day."""
    rng = random.Random(seed)
    rows = []
    for _ in range(sessions):
        created = NOW - rng.uniform(0, 86_400)
        rows.append(
            trigger_row(
                _session_id(rng),
                _pick(rng, _TRIGGER_STATUSES),
                created,
                created + rng.uniform(0, NOW - created),
                created + 86_400,
            )
        )
    return rows


POPULATIONS: dict[str, Callable[..., list[dict[str, Any]]]] = {
    "e2b": e2b_population,
    "browserbase": browserbase_population,
    "daytona": daytona_population,
    "runloop": runloop_population,
    "steel": steel_population,
}
"""The seeded populations of the providers shipped as definitions (every status held)."""


def population(provider: str, sessions: int) -> list[dict[str, Any]]:
    """The generated rows of ``provider``."""
    if provider in POPULATIONS:
        return POPULATIONS[provider](NOW, seed=1, size=sessions)
    return {
        "chaser": chaser_population,
        "notte": notte_population,
        "trigger": trigger_population,
    }[provider](sessions)


def simulator(provider: str, sessions: int) -> Simulator:
    """A simulator of ``provider`` holding a generated population of ``sessions``."""
    if provider == "chaser":
        return ChaserSimulator(sessions=chaser_population(sessions), api_key=KEY)
    if provider == "notte":
        return NotteSimulator(sessions=notte_population(sessions), api_key=KEY)
    if provider == "trigger":
        return TriggerSimulator(sessions=trigger_population(sessions), api_key=KEY)
    if provider in POPULATIONS:
        return SIMULATORS[provider](sessions=population(provider, sessions), api_key=KEY)
    raise ValueError(f"no generated population for provider {provider!r}")


@dataclass(frozen=True)
class Spec:
    """One population: served under ``/<name>`` by a ``provider`` simulator, each answer
    ``delay_ms`` late (a round trip over the internet, for the latency rows)."""

    name: str
    provider: str
    sessions: int
    delay_ms: int = 0

    @classmethod
    def parse(cls, text: str) -> Spec:
        name, provider, sessions, *delay = text.split(":")
        return cls(name, provider, int(sessions), int(delay[0]) if delay else 0)

    def __str__(self) -> str:
        return f"{self.name}:{self.provider}:{self.sessions}:{self.delay_ms}"


def app(specs: Sequence[Spec]) -> web.Application:
    """The upstream app: every population under its prefix, plus ``/_stats``."""
    served: dict[str, int] = {}
    listed: dict[str, int] = {}
    application = web.Application()
    for spec in specs:
        sim = simulator(spec.provider, spec.sessions)
        served[spec.name] = 0
        listed[spec.name] = sum(
            1 for row in sim.sessions if spec.provider != "notte" or row["status"] == "active"
        )  # what a poll with the target's defaults lists (notte: only_active)
        handler = _cached(spec.name, sim, served, spec.delay_ms / 1000)
        application.router.add_get(f"/{spec.name}{sim.path}", handler)

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response(
            {name: {"requests": served[name], "listed": listed[name]} for name in served}
        )

    application.router.add_get("/_stats", stats)
    return application


def _cached(name: str, sim: Simulator, served: dict[str, int], delay: float = 0.0) -> Handler:
    pages: dict[str, tuple[bytes, dict[str, str]]] = {}
    auth = f"{sim.key_prefix}{sim.api_key}"

    async def handle(request: web.Request) -> web.Response:
        if request.headers.get(sim.key_header) != auth:
            return web.json_response({"detail": "Unauthorized"}, status=401)
        served[name] += 1
        if delay:
            await asyncio.sleep(delay)
        page = pages.get(request.query_string)
        if page is None:  # the answer's headers too: E2B's cursor is one
            body = json.dumps(sim.payload(request.query)).encode()
            page = pages[request.query_string] = (body, sim.answer_headers(200))
        return web.Response(body=page[0], headers=page[1], content_type="application/json")

    return handle


async def _main(specs: Sequence[Spec]) -> None:
    runner = web.AppRunner(app(specs), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(f"PORT {port}", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the benchmark closes our stdin
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(_main([Spec.parse(arg) for arg in sys.argv[1:]]))
