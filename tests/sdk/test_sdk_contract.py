"""SDK contract tests: each provider's official SDK lists a simulator, and the exporter agrees.

The SDKs are the second contract after the specs (interface.md). Each runs as its own
client process (the SDK environment's Python, or node for the npm SDKs: Trigger.dev's, and
Together's `together-ai`, the living reference since the Python SDK 3.x dropped Code
Interpreter, beside the pinned Python 2.42) against the
project's simulator over a real socket, lists every page of a dataset holding every status
the SDK and the contract know, and prints what it got. The test asserts the SDK got exactly
the dataset, and that `session-exporter once` against the same simulator counts the same
sessions per status, with the phases interface.md fixes.

`make sdk` builds the environments (.ci/run does before `make test`); without them these
tests skip saying so, and CI's SESSION_EXPORTER_NO_SKIP=1 turns that into a failure.
"""

# House style is `assert expected == actual`, which SIM300 calls a Yoda condition.

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.simulators import Simulator
from tests.conftest import Serve
from tests.harness import Exposition, console_script
from tests.sdk import datasets

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SDK_PYTHON = ROOT / ".sdk" / "python" / "bin" / "python"
NODE_PACKAGES = {"trigger": "@trigger.dev/sdk", "together": "together-ai"}
"""Each npm SDK's folder under tests/sdk/ and the package `npm ci` installs there."""
KEY = "sdk-contract-key-0123456789"
KEY_ENV = "SDK_CONTRACT_KEY"
RUN_LIMIT = 120.0
"""Seconds a client process may take (an SDK's imports are slow on a loaded machine)."""
TARGET = "sdk-contract"

"""Why an assertion fails on today's exporter: it is the contract as it SHOULD be."""

PHASES: Mapping[str, Mapping[str, str]] = {
    "together": {"active": "live"},
    "agi": {
        "initializing": "pending",
        "ready": "live",
        "running": "live",
        "paused": "live",
        "waiting_for_input": "live",
        "completed": "ended",
        "terminated": "ended",
        "finished": "ended",
        "error": "failed",
    },
    "trigger": {"active": "live", "closed": "ended", "expired": "ended"},
    "chaser": {  # the SDK's ready and terminal sets; the rest is the project's mapping
        "ready": "live",
        "running": "live",
        "active": "live",
        "terminated": "ended",
        "failed": "failed",
    },
    "notte": {
        "authenticating": "pending",
        "active": "live",
        "closed": "ended",
        "timed_out": "ended",
        "error": "failed",
    },
}
"""The phase of each status the SDK knows, as interface.md's table fixes it."""


@dataclass(frozen=True)
class Scenario:
    """One dataset served one way, the SDK's way of listing it, and the exporter's target."""

    name: str
    provider: str
    make: Callable[[], Simulator]
    driver_args: tuple[str, ...] = ()
    target: Mapping[str, Any] = field(default_factory=dict)
    query: Mapping[str, Any] = field(default_factory=dict)
    paged: bool = True
    node: str | None = None
    """The npm SDK's folder under tests/sdk/ (its `list_sessions.mjs`), or None: Python."""

    def __str__(self) -> str:
        return self.name


SCENARIOS = [
    Scenario("together", "together", datasets.together, paged=False),
    Scenario("together-npm", "together", datasets.together, paged=False, node="together"),
    Scenario("agi", "agi", datasets.agi, paged=False),
    Scenario("trigger", "trigger", datasets.trigger, ("2", "1d"), node="trigger"),
    Scenario("chaser", "chaser", datasets.chaser, ("5",), {"page_size": 5}),
    Scenario(
        "chaser-account",
        "chaser",
        lambda: datasets.chaser(account="acme"),
        ("5", "acme"),
        {"page_size": 5, "account": "acme"},
    ),
    Scenario(
        "chaser-array",
        "chaser",
        lambda: datasets.chaser(envelope="array"),
        ("5",),
        {"page_size": 5},
        paged=False,
    ),
    Scenario(
        "notte-all",
        "notte",
        datasets.notte,
        ("4", "false"),
        {"only_active": False},
        {"only_active": False},
    ),
    Scenario("notte-active", "notte", datasets.notte, ("1", "true"), {}, {"only_active": True}),
]
BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}


def simulator(scenario: Scenario) -> Simulator:
    """The scenario's simulator, filled, taking the test key."""
    sim = scenario.make()
    sim.api_key = KEY
    return sim


# --- running the clients ------------------------------------------------------------------


def sdk_command(scenario: Scenario, base_url: str) -> tuple[list[str], Path]:
    """The SDK client's command line and working directory, or skip saying what is missing."""
    if scenario.node is not None:
        folder, package = HERE / scenario.node, NODE_PACKAGES[scenario.node]
        node = shutil.which("node")
        if node is None:
            pytest.skip(f"node not on PATH: the {package} SDK contract test needs Node 20+")
        if not (folder / "node_modules" / package).is_dir():
            pytest.skip(f"the {package} SDK is not installed in {folder}: run `make sdk`")
        script = folder / "list_sessions.mjs"
        return [node, str(script), base_url, *scenario.driver_args], folder
    if not SDK_PYTHON.is_file():
        pytest.skip(
            f"the Python SDK environment {SDK_PYTHON.parent.parent} is missing: run `make sdk`"
        )
    script = HERE / f"drive_{scenario.provider}.py"
    return [str(SDK_PYTHON), str(script), base_url, *scenario.driver_args], HERE


def sdk_env(home: Path) -> dict[str, str]:
    """A clean environment for an SDK: no proxies, no provider variables, a throwaway home."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / "cache"),
        "LANG": "C.UTF-8",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "DISABLE_TELEMETRY": "true",  # Notte's telemetry (notte_core/telemetry.py)
        "NOTTE_ENABLE_NEST_ASYNCIO": "false",  # Notte: leave asyncio unpatched
        KEY_ENV: KEY,
    }


async def run(command: Sequence[str], *, env: Mapping[str, str], cwd: Path) -> tuple[int, str, str]:
    """Run a program to completion within `RUN_LIMIT` seconds: exit code, stdout, stderr."""
    proc = await asyncio.create_subprocess_exec(
        *command,
        cwd=cwd,
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), RUN_LIMIT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"{command[:2]} did not finish within {RUN_LIMIT}s") from None
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def sdk_listing(scenario: Scenario, base_url: str, home: Path) -> dict[str, Any]:
    """What the SDK listed: `{"sessions": [...], "pages": n}`."""
    command, cwd = sdk_command(scenario, base_url)
    code, out, err = await run(command, env=sdk_env(home), cwd=cwd)
    assert 0 == code, f"the {scenario.provider} SDK failed:\n{err}"
    listing = json.loads(out)
    assert isinstance(listing, dict)
    return listing


async def exporter_once(
    scenario: Scenario, base_url: str, tmp_path: Path
) -> tuple[int, Exposition]:
    """`session-exporter once` over one target at `base_url`: exit code and exposition."""
    target = {
        "name": TARGET,
        "provider": scenario.provider,
        "base_url": base_url + {"together": "/v1", "daytona": "/api"}.get(scenario.provider, ""),
        "api_key_env": KEY_ENV,
        **scenario.target,
    }
    config = tmp_path / "exporter.yaml"
    config.write_text(yaml.safe_dump({"targets": [target]}), encoding="utf-8")
    env = os.environ | {KEY_ENV: KEY}
    code, out, err = await run(
        [console_script(), "once", "--config", str(config)], env=env, cwd=tmp_path
    )
    assert code in (0, 1), f"once exited {code}:\n{err}"
    return code, Exposition.parse(out)


def counted(exposition: Exposition) -> dict[str, float]:
    """The exporter's non-zero session counts by status."""
    return {
        status: value
        for status, value in exposition.by("sessions", "status", target=TARGET).items()
        if value
    }


def listed(listing: dict[str, Any]) -> dict[str, float]:
    """The SDK's sessions counted by status, lower-cased as the exporter labels them."""
    return dict(Counter(str(row["status"]).lower() for row in listing["sessions"]))


# --- the SDK gets exactly the dataset ------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
async def test_sdk_lists_exactly_the_dataset(
    served: Serve, tmp_path: Path, scenario: Scenario
) -> None:
    """The SDK lists every session of every page, with the fields the exporter reads."""
    sim = simulator(scenario)
    base_url = await served(sim)
    listing = await sdk_listing(scenario, base_url, tmp_path)
    expected = datasets.expected_rows(scenario.provider, sim.sessions, **scenario.query)
    assert expected == sorted(listing["sessions"], key=lambda row: str(row["id"]))
    served_pages = [log for log in sim.requests if log.path == sim.path and log.authorized]
    if scenario.paged:  # the dataset spans pages, and the SDK asked for each once
        assert (True, len(served_pages)) == (listing["pages"] > 1, listing["pages"])


async def test_sdk_sends_the_chaser_account_on_every_request(served: Serve, tmp_path: Path) -> None:
    """The Chaser SDK names the account in X-Chaser-Account on each page it asks for."""
    scenario = BY_NAME["chaser-account"]
    sim = simulator(scenario)
    listing = await sdk_listing(scenario, await served(sim), tmp_path)
    assert [("acme", True)] * listing["pages"] == [
        (log.headers.get("X-Chaser-Account"), log.authorized) for log in sim.requests
    ]


async def test_together_npm_sdk_asks_for_the_exporters_path(served: Serve, tmp_path: Path) -> None:
    """`together-ai` on npm lists with one GET of `/v1/tci/sessions`, the path the exporter
    polls under its default `https://api.together.ai/v1`, with the key as a bearer token."""
    scenario = BY_NAME["together-npm"]
    sim = simulator(scenario)
    listing = await sdk_listing(scenario, await served(sim), tmp_path)
    assert 3 == len(listing["sessions"])
    assert [("/v1/tci/sessions", True)] == [(log.path, log.authorized) for log in sim.requests]


async def test_notte_sdk_lists_at_the_slashed_route_without_a_redirect(
    served: Serve, tmp_path: Path
) -> None:
    """The Notte SDK asks for `/sessions/` itself: the simulator never had to redirect it."""
    scenario = BY_NAME["notte-all"]
    sim = simulator(scenario)
    listing = await sdk_listing(scenario, await served(sim), tmp_path)
    assert ["/sessions/"] * listing["pages"] == [log.path for log in sim.requests]


# --- the exporter counts what the SDK lists ------------------------------------------------


@pytest.mark.parametrize(
    "scenario",
    [
        BY_NAME["together"],
        BY_NAME["together-npm"],
        BY_NAME["agi"],
        BY_NAME["trigger"],
        BY_NAME["chaser"],
        BY_NAME["chaser-account"],
        BY_NAME["chaser-array"],
        BY_NAME["notte-all"],
        BY_NAME["notte-active"],
    ],
    ids=str,
)
async def test_exporter_counts_the_sessions_the_sdk_lists(
    served: Serve, tmp_path: Path, scenario: Scenario
) -> None:
    """`once` over the same simulator succeeds and counts the SDK's sessions per status."""
    sim = simulator(scenario)
    base_url = await served(sim)
    listing = await sdk_listing(scenario, base_url, tmp_path)
    code, exposition = await exporter_once(scenario, base_url, tmp_path)
    assert (0, listed(listing)) == (code, counted(exposition))


@pytest.mark.parametrize(
    "scenario",
    [
        BY_NAME["together"],
        BY_NAME["agi"],
        BY_NAME["trigger"],
        BY_NAME["chaser"],
        BY_NAME["notte-all"],
    ],
    ids=str,
)
async def test_exporter_phases_follow_the_contract(
    served: Serve, tmp_path: Path, scenario: Scenario
) -> None:
    """Every status the SDK knows is exported (0 when empty) in the phase interface.md fixes."""
    sim = simulator(scenario)
    code, exposition = await exporter_once(scenario, await served(sim), tmp_path)
    series = exposition.select("sessions", target=TARGET)
    phases = {dict(labels)["status"]: dict(labels)["phase"] for labels in series}
    expected = PHASES[scenario.provider]
    assert (0, expected) == (code, {status: phases.get(status) for status in expected})
