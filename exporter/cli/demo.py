"""``session-exporter demo``: ten simulated providers with a living population, and the exporter.

Each provider's population is seeded and evolves once a second: sessions are
created, start, run, idle, pause, expire, fail and close, and Chaser leases come
and go. Chaser has two accounts, one served each of its two list shapes (the API
reference's, with leases, and the newer guide's, with deadlines). A few fixtures stay on
purpose so every shipped alert has something to fire on: a session stuck for hours,
sessions past their deadline, a browser nobody is connected to, an AGI account that fails
for 20 minutes (long enough for the target-down and data-stale alerts) and recovers, and a
wave of failing Chaser browsers.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import structlog
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from exporter.config.settings import Settings
from exporter.core.timeparse import parse_timestamp
from exporter.simulators import (
    AgiSimulator,
    BrowserbaseSimulator,
    ChaserSimulator,
    DaytonaSimulator,
    E2bSimulator,
    Fault,
    NotteSimulator,
    RunloopSimulator,
    Simulator,
    SteelSimulator,
    TogetherSimulator,
    TriggerSimulator,
    agi_row,
    browserbase_population,
    chaser_list_row,
    chaser_row,
    daytona_population,
    e2b_population,
    iso,
    notte_row,
    runloop_population,
    serve,
    steel_population,
    together_row,
    trigger_row,
)
from exporter.web.server import base_url, run_server
from exporter.web.webconfig import WebConfig

DEMO_KEY = "demo-key-not-a-secret"
TICK = 1.0
POLL_INTERVAL = 5.0
KEEP_ENDED = 180.0
"""Ended sessions stay listed this long (seconds) before the simulated provider forgets them."""
KEEP_FAILED = 20 * 60.0
"""Failed sessions stay listed longer, so a wave of failures shows as failed sessions rising."""
DEMO_PRICES = {"together": 0.03, "chaser": 0.09, "notte": 0.12}
"""Made-up prices of a session-hour, so the dashboard's spend panels have numbers; the AGI and
Trigger.dev targets have none, as an account without a known price."""

BASE_PATHS = {"together": "/v1", "daytona": "/api"}
"""The path in a provider's default base URL, which its simulator serves under."""

log = structlog.get_logger("exporter.cli.demo")


@dataclass(frozen=True, slots=True)
class Outage:
    """A target that fails (HTTP 503) for ``length`` seconds every ``period``, from ``start``."""

    start: float = 60.0
    length: float = 20 * 60.0
    period: float = 45 * 60.0

    def active(self, elapsed: float) -> bool:
        """Whether the outage is on ``elapsed`` seconds into the demo."""
        return elapsed >= self.start and (elapsed - self.start) % self.period < self.length


AGI_ENDED = frozenset({"completed", "finished", "terminated", "error"})
"""AGI statuses a session never leaves."""

FAILURE_WAVE = Outage(start=120.0, length=180.0, period=30 * 60.0)
"""When Chaser browsers fail ten times as often (so failed sessions rise, then settle)."""


class Population:
    """One simulated account whose sessions change on every tick; ``key`` names it (its
    provider, unless that provider has two accounts)."""

    def __init__(
        self, sim: Simulator, rng: random.Random, now: float, *, key: str | None = None
    ) -> None:
        self.sim = sim
        self.key = key or sim.provider
        self.rng = rng
        self.started = now
        self.serial = 0
        self.ended: dict[str, float] = {}
        """Id of each ended session -> when the simulated provider stops listing it."""
        self.seed(now)

    def seed(self, now: float) -> None:
        """The starting population (fixtures included)."""

    def tick(self, now: float) -> None:
        """Advance the population one step."""

    def new_id(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial:05d}"

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def live(self, key: str) -> int:
        """How many listed sessions have not ended."""
        return sum(1 for row in self.sim.sessions if row[key] not in self.ended)

    def end(self, row: dict[str, Any], key: str, now: float, *, keep: float = KEEP_ENDED) -> None:
        """Remember that a row ended, so it is dropped ``keep`` seconds later."""
        self.ended.setdefault(row[key], now + keep)

    def prune(self, key: str, now: float) -> None:
        """Forget rows whose time to stay listed has passed."""
        gone = {i for i, until in self.ended.items() if now > until}
        if gone:
            self.sim.sessions[:] = [r for r in self.sim.sessions if r[key] not in gone]
            for i in gone:
                del self.ended[i]


class ChaserPopulation(Population):
    """Browsers: pending, starting, ready, running <-> idle, stopping, stopped; leases vary.

    Some sessions are sandboxes that report `active` instead of `running`, and some end as
    `terminated`: with `ready` and `failed` these are the statuses the official SDK knows.
    """

    def seed(self, now: float) -> None:
        # fixture: live for six hours with nobody connected (stuck and unleased)
        self.sim.sessions.append(chaser_row("chs-stuck", "running", iso(now - 6 * 3600), leases=0))
        for _ in range(10):
            self.sim.sessions.append(
                chaser_row(
                    self.new_id("chs-"),
                    self.rng.choice(["running", "running", "idle", "starting", "ready", "active"]),
                    iso(now - self.rng.uniform(60, 3000)),
                    leases=self.rng.choice([0, 1, 1, 2, 3, None]),
                    session_type=self.rng.choice(["browser", "browser", "sandbox"]),
                )
            )

    def tick(self, now: float) -> None:
        if self.chance(0.25) and self.live("id") < 25:
            kind = "sandbox" if self.chance(0.3) else "browser"
            self.sim.sessions.append(
                chaser_row(self.new_id("chs-"), "pending", iso(now), leases=0, session_type=kind)
            )
        for row in self.sim.sessions:
            if row["id"] == "chs-stuck":
                continue
            status = row["status"]
            if status == "pending" and self.chance(0.4):
                row["status"] = "starting"
            elif status == "starting" and self.chance(0.4):
                row["status"] = "ready"
            elif status == "ready" and self.chance(0.4):
                busy = "active" if row["session_type"] == "sandbox" else "running"
                row.update(status=busy, active_connection_leases=self.rng.randint(1, 3))
            elif status in ("running", "active", "idle"):
                self._live(row, now)
            elif status == "stopping" and self.chance(0.5):
                ended = "terminated" if self.chance(0.3) else "stopped"
                row.update(status=ended, active_connection_leases=0)
                self.end(row, "id", now)
        self.prune("id", now)

    def _live(self, row: dict[str, Any], now: float) -> None:
        wave = FAILURE_WAVE.active(now - self.started)
        if self.chance(0.01 if wave else 0.0002):
            row.update(status="failed", active_connection_leases=None)
            self.end(row, "id", now, keep=KEEP_FAILED)
        elif self.chance(0.012):
            row["status"] = "stopping"
        elif self.chance(0.15):
            busy = "active" if row["session_type"] == "sandbox" else "running"
            row["status"] = "idle" if row["status"] == busy else busy
        if self.chance(0.2):
            row["active_connection_leases"] = self.rng.choice([0, 0, 1, 1, 2, 3, None])


class ChaserListPopulation(Population):
    """Chaser sessions served in the newer guide's list shape: creating, then ready until they
    end (terminated, or failed now and then) or outlive their ``expires_at`` a while (overdue).
    """

    def seed(self, now: float) -> None:
        # fixture: ready, past its expiry for an hour and still listed (overdue, stuck)
        self.sim.sessions.append(
            chaser_list_row("sess_overdue", "ready", now - 3 * 3600, expires_at=now - 3600)
        )
        for _ in range(6):
            created = now - self.rng.uniform(60, 1200)
            self._create(created, "ready")

    def _create(self, created: float, status: str) -> None:
        self.sim.sessions.append(
            chaser_list_row(
                self.new_id("sess_"),
                status,
                created,
                expires_at=created + self.rng.uniform(600, 1800),
                bytes_in=0,
                bytes_out=0,
            )
        )

    def tick(self, now: float) -> None:
        if self.chance(0.2) and self.live("id") < 20:
            self._create(now, "creating")
        for row in self.sim.sessions:
            if row["id"] in self.ended or row["id"] == "sess_overdue":
                continue
            if row["status"] == "creating":
                if self.chance(0.4):
                    row["status"] = "ready"
                continue
            row["bytes_in"] += self.rng.randint(0, 40_000)
            row["bytes_out"] += self.rng.randint(0, 4_000)
            expired = now > parse_timestamp(row["expires_at"])
            if self.chance(0.002) or (expired and self.chance(0.05)):
                failed = self.chance(0.1)
                row.update(
                    status="failed" if failed else "terminated",
                    ended_at=iso(now),
                    ended_reason="error" if failed else ("expired" if expired else "user"),
                )
                self.end(row, "id", now, keep=KEEP_FAILED if failed else KEEP_ENDED)
        self.prune("id", now)


class NottePopulation(Population):
    """Browsers with deadlines: authenticating, then active, accessed, idle out, close or error."""

    def seed(self, now: float) -> None:
        # fixture: still reported active two hours after its 15 minute limit (overdue, stuck)
        self.sim.sessions.append(
            notte_row("ntt-overdue", "active", now - 2 * 3600, now - 30, idle_timeout_minutes=60)
        )
        for _ in range(8):
            created = now - self.rng.uniform(30, 600)
            self.sim.sessions.append(
                notte_row(self.new_id("ntt-"), "active", created, created, idle_timeout_minutes=5)
            )

    def tick(self, now: float) -> None:
        if self.chance(0.2) and self.live("session_id") < 20:
            status = "authenticating" if self.chance(0.5) else "active"
            self.sim.sessions.append(
                notte_row(self.new_id("ntt-"), status, now, now, idle_timeout_minutes=5)
            )
        for row in self.sim.sessions:
            if row["status"] == "authenticating":
                self._authenticate(row, now)
                continue
            if row["status"] != "active":
                continue
            if row["session_id"] == "ntt-overdue":
                row["last_accessed_at"] = iso(now, fraction=6)
            elif self.chance(0.002):
                row.update(
                    status="error",
                    error="browser crashed",
                    close_reason="error",
                    closed_at=iso(now, fraction=6),
                )
                self.end(row, "session_id", now, keep=KEEP_FAILED)
            elif self.chance(0.01):
                row.update(status="closed", close_reason="manual", closed_at=iso(now, fraction=6))
                self.end(row, "session_id", now)
            elif self.chance(0.004):
                row.update(
                    status="timed_out", close_reason="idle_timeout", closed_at=iso(now, fraction=6)
                )
                self.end(row, "session_id", now)
            elif self.chance(0.3):
                row["last_accessed_at"] = iso(now, fraction=6)
        self.prune("session_id", now)

    def _authenticate(self, row: dict[str, Any], now: float) -> None:
        """A managed login finishes (active), or fails (error) now and then."""
        if self.chance(0.02):
            row.update(
                status="error",
                error="login failed",
                close_reason="error",
                closed_at=iso(now, fraction=6),
            )
            self.end(row, "session_id", now, keep=KEEP_FAILED)
        elif self.chance(0.3):
            row.update(status="active", last_accessed_at=iso(now, fraction=6))


class TogetherPopulation(Population):
    """Code interpreter sessions that execute code; expired ones linger listed a while (overdue)."""

    def seed(self, now: float) -> None:
        # fixture: started three hours ago and kept alive (stuck, never overdue)
        self.sim.sessions.append(
            together_row("ses_stuck", now - 3 * 3600, now + 1200, last_execute_at=now - 5)
        )
        for _ in range(6):
            self._create(now - self.rng.uniform(10, 500))

    def _create(self, started: float) -> None:
        self.sim.sessions.append(
            together_row(
                self.new_id("ses_"),
                started,
                started + self.rng.uniform(120, 600),
                last_execute_at=started,
                execute_count=0,
            )
        )

    def tick(self, now: float) -> None:
        if self.chance(0.25) and len(self.sim.sessions) < 30:
            self._create(now)
        keep = []
        for row in self.sim.sessions:
            if row["id"] == "ses_stuck":
                row["expires_at"] = iso(now + 1200)
            elif now > parse_timestamp(row["expires_at"]):
                if self.chance(0.05):
                    continue  # the provider finally stops listing it; until then it is overdue
            elif self.chance(0.4):
                row["execute_count"] += 1
                row["last_execute_at"] = iso(now)
            keep.append(row)
        self.sim.sessions[:] = keep


class AgiPopulation(Population):
    """Agents: initializing -> ready -> running <-> paused / waiting_for_input -> ended, or error.

    An agent ends completed, finished or terminated (`finished` and `waiting_for_input` are
    the official SDK's statuses beside the spec's).
    """

    def seed(self, now: float) -> None:
        # fixture: an agent running for five hours (stuck)
        self.sim.sessions.append(agi_row("agi-stuck", "running", now - 5 * 3600))
        for _ in range(8):
            self.sim.sessions.append(
                agi_row(
                    self.new_id("agi-"),
                    self.rng.choice(["ready", "running", "running", "paused", "waiting_for_input"]),
                    now - self.rng.uniform(60, 1800),
                    agent_name=self.rng.choice(["agi-0", "agi-0-fast"]),
                )
            )

    def tick(self, now: float) -> None:
        if self.chance(0.2) and self.live("session_id") < 25:
            self.sim.sessions.append(agi_row(self.new_id("agi-"), "initializing", now))
        step = {"initializing": "ready", "ready": "running"}
        for row in self.sim.sessions:
            status = row["status"]
            if row["session_id"] == "agi-stuck" or status in AGI_ENDED:
                continue
            if status in step and self.chance(0.3):
                row["status"] = step[status]
            elif status in ("running", "paused", "waiting_for_input"):
                if self.chance(0.01):
                    row["status"] = self.rng.choice(["completed", "finished", "terminated"])
                    self.end(row, "session_id", now)
                elif self.chance(0.003):
                    row["status"] = "error"
                    self.end(row, "session_id", now, keep=KEEP_FAILED)
                elif status != "running" and self.chance(0.1):
                    row["status"] = "running"
                elif self.chance(0.1):
                    row["status"] = self.rng.choice(["paused", "waiting_for_input"])
        self.prune("session_id", now)


class TriggerPopulation(Population):
    """Chat sessions: ACTIVE until closed, or EXPIRED a little after ``expiresAt`` passes."""

    def seed(self, now: float) -> None:
        # fixture: active for three hours with a deadline that keeps moving (stuck, not overdue)
        self.sim.sessions.append(
            trigger_row("session_stuck", "ACTIVE", now - 3 * 3600, now - 60, now + 3600)
        )
        for _ in range(8):
            self._create(now - self.rng.uniform(10, 300))
        for _ in range(20):
            created = now - self.rng.uniform(3600, 20 * 3600)
            status = self.rng.choice(["CLOSED", "CLOSED", "EXPIRED"])
            row = trigger_row(
                self.new_id("session_"),
                status,
                created,
                created + 600,
                created + 900,
                closed_at=created + 600 if status == "CLOSED" else None,
            )
            self.sim.sessions.append(row)
            self.end(row, "id", now - self.rng.uniform(0, KEEP_ENDED))

    def _create(self, created: float) -> None:
        self.sim.sessions.append(
            trigger_row(
                self.new_id("session_"),
                "ACTIVE",
                created,
                created,
                created + self.rng.uniform(120, 600),
            )
        )

    def tick(self, now: float) -> None:
        active = [r for r in self.sim.sessions if r["status"] == "ACTIVE"]
        if self.chance(0.25) and len(active) < 25:
            self._create(now)
        for row in active:
            if row["id"] == "session_stuck":
                row.update(expiresAt=iso(now + 3600), updatedAt=iso(now))
            elif self.chance(0.02):
                row.update(status="CLOSED", closedAt=iso(now), updatedAt=iso(now))
                self.end(row, "id", now)
            elif now > parse_timestamp(row["expiresAt"]):
                if self.chance(0.1):  # the provider notices a little late: overdue meanwhile
                    row.update(status="EXPIRED", updatedAt=iso(now))
                    self.end(row, "id", now)
            elif self.chance(0.3):
                row["updatedAt"] = iso(now)
        self.prune("id", now)


SEEDED: dict[str, Callable[..., list[dict[str, Any]]]] = {
    "e2b": e2b_population,
    "browserbase": browserbase_population,
    "daytona": daytona_population,
    "runloop": runloop_population,
    "steel": steel_population,
}
"""The seeded population of each provider shipped as a definition (every status held)."""
RESEED = 10 * 60.0
"""How often those accounts are seeded afresh: new sessions, new times, new deadlines."""


class SeededPopulation(Population):
    """A provider shipped as a definition: its simulator's seeded population, which holds
    every status (some sessions past their deadline), renewed every ``RESEED`` seconds."""

    seeded = 0.0
    rounds = 0

    def seed(self, now: float) -> None:
        self.seeded = now
        self.rounds += 1
        self.sim.sessions[:] = SEEDED[self.sim.provider](now, seed=self.rounds)

    def tick(self, now: float) -> None:
        if now - self.seeded >= RESEED:
            self.seed(now)


class DemoWorld:
    """The simulated accounts (ten providers, Chaser twice: one per list shape), their
    populations, and the AGI outage schedule."""

    def __init__(self, *, seed: int = 7, now: float | None = None, outage: Outage = Outage()):
        start = time.time() if now is None else now
        rng = random.Random(seed)  # noqa: S311 - simulated data, not cryptography
        self.started = start
        self.outage = outage
        self.together = TogetherPopulation(TogetherSimulator(api_key=DEMO_KEY), rng, start)
        self.agi = AgiPopulation(AgiSimulator(api_key=DEMO_KEY), rng, start)
        self.trigger = TriggerPopulation(TriggerSimulator(api_key=DEMO_KEY), rng, start)
        self.chaser = ChaserPopulation(ChaserSimulator(api_key=DEMO_KEY), rng, start)
        self.chaser_list = ChaserListPopulation(
            ChaserSimulator(api_key=DEMO_KEY, envelope="list"), rng, start, key="chaser-list"
        )
        # both spellings of Notte's route are served, so the demo's exporter needs no redirect
        notte = NotteSimulator(api_key=DEMO_KEY, redirect_slashless=False)
        self.notte = NottePopulation(notte, rng, start)
        self.populations: list[Population] = [
            self.together,
            self.agi,
            self.trigger,
            self.chaser,
            self.chaser_list,
            self.notte,
            *(
                SeededPopulation(sim(api_key=DEMO_KEY), rng, start)
                for sim in (
                    E2bSimulator,
                    BrowserbaseSimulator,
                    DaytonaSimulator,
                    RunloopSimulator,
                    SteelSimulator,
                )
            ),
        ]

    def tick(self, now: float) -> None:
        """Advance every population and switch the AGI outage on or off."""
        for population in self.populations:
            population.tick(now)
        failing = self.outage.active(now - self.started)
        if failing and self.agi.sim.fault is None:
            self.agi.sim.fault = Fault(status=503)
            log.info("demo.outage_started", target="agi-demo")
        elif not failing and self.agi.sim.fault is not None:
            self.agi.sim.fault = None
            log.info("demo.outage_ended", target="agi-demo")

    def targets(self, urls: dict[str, str]) -> list[dict[str, Any]]:
        """The exporter's target list for simulators served at ``urls`` (by population key)."""
        targets: list[dict[str, Any]] = []
        for population in self.populations:
            provider = population.sim.provider
            target: dict[str, Any] = {
                "name": f"{population.key}-demo",
                "provider": provider,
                "base_url": urls[population.key] + BASE_PATHS.get(provider, ""),
                "api_key": DEMO_KEY,
                "per_session": {"enabled": True, "max_series": 20},
            }
            if provider == "notte":
                target["only_active"] = False
            if provider in DEMO_PRICES:
                target["price_per_session_hour"] = DEMO_PRICES[provider]
            targets.append(target)
        return targets

    @asynccontextmanager
    async def running(self, *, tick: float = TICK) -> AsyncIterator[dict[str, str]]:
        """Serve the simulators on loopback and evolve them; yield their URLs by key."""
        async with AsyncExitStack() as stack:
            urls = {p.key: await stack.enter_async_context(serve(p.sim)) for p in self.populations}
            task = asyncio.create_task(self._evolve(tick), name="demo:evolve")
            try:
                yield urls
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _evolve(self, tick: float) -> None:
        while True:
            await asyncio.sleep(tick)
            self.tick(time.time())


class DemoSettings(Settings):
    """Settings built from the demo's own values only: no SESSION_EXPORTER_* variable applies."""

    demo: ClassVar[bool] = True

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the values passed in."""
        return (init_settings,)


async def run_demo(
    host: str,
    port: int,
    *,
    poll_interval: float = POLL_INTERVAL,
    web_config: WebConfig | None = None,
) -> None:
    """Run the simulated world and serve the exporter over it until SIGTERM/SIGINT."""
    world = DemoWorld()
    async with world.running() as urls:
        settings = DemoSettings(
            poll_interval=poll_interval,
            listen=f"{host}:{port}",
            targets=world.targets(urls),
        )
        url = base_url(host, port, tls=bool(web_config and web_config.ssl_context))
        log.info(
            "demo.started",
            metrics=f"{url}/metrics",
            landing_page=f"{url}/",
            providers=sorted({p.sim.provider for p in world.populations}),
            targets=len(urls),
            note="simulated providers on loopback; no key and no network needed",
        )
        await run_server(settings, host, port, web_config=web_config)
