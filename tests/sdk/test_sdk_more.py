"""SDK contract tests of the five providers added later: E2B, Browserbase, Daytona, Runloop, Steel.

Each official SDK (pinned in requirements.txt) runs as its own client process against the
project's simulator over a real socket, lists every page of a dataset holding every status
(tests/sdk/datasets.py), with and without the status filter as the SDK sends it, and prints
what it got. The tests assert that it got exactly the dataset's ids and statuses (with the
fields the exporter reads) and that the requests it sent were the expected ones, page by
page. The machinery (environments, `run`, `sdk_listing`) is test_sdk_contract.py's.

`once` counts the same as the SDK lists (`test_exporter_counts_the_sessions_the_sdk_lists`),
and exports every status the SDK knows in the contract's phase.
"""

# House style is `assert expected == actual`, which SIM300 calls a Yoda condition.

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from exporter.simulators import Simulator
from exporter.simulators.keyset import token
from tests.conftest import Serve
from tests.sdk import datasets
from tests.sdk.test_sdk_contract import (
    TARGET,
    Scenario,
    counted,
    exporter_once,
    listed,
    sdk_listing,
    simulator,
)

ACTIVE = datasets.ACTIVE

SCENARIOS = [
    Scenario("e2b-all", "e2b", datasets.e2b, ("4", "-"), {"only_active": False, "page_size": 4}),
    Scenario(
        "e2b-active",
        "e2b",
        datasets.e2b,
        ("4", "running"),
        {"page_size": 4},
        {"statuses": ACTIVE["e2b"]},
    ),
    Scenario(
        "browserbase-all",
        "browserbase",
        datasets.browserbase,
        ("-",),
        {"only_active": False},
        paged=False,
    ),
    Scenario(
        "browserbase-active",
        "browserbase",
        datasets.browserbase,
        (",".join(ACTIVE["browserbase"]),),
        {},
        {"statuses": ACTIVE["browserbase"]},
        paged=False,
    ),
    Scenario(
        "daytona-all",
        "daytona",
        datasets.daytona,
        ("10", "-"),
        {"only_active": False, "page_size": 10},
    ),
    Scenario(
        "daytona-active",
        "daytona",
        datasets.daytona,
        ("10", ",".join(ACTIVE["daytona"])),
        {"page_size": 10},
        {"statuses": ACTIVE["daytona"]},
    ),
    Scenario(
        "daytona-organization",
        "daytona",
        lambda: datasets.daytona(organization="org-acme"),
        ("10", "-", "org-acme"),
        {"only_active": False, "page_size": 10, "organization_id": "org-acme"},
    ),
    Scenario(
        "runloop-all",
        "runloop",
        datasets.runloop,
        ("6", "-"),
        {"only_active": False, "page_size": 6},
    ),
    Scenario(
        "runloop-active",
        "runloop",
        datasets.runloop,
        ("6", ",".join(ACTIVE["runloop"])),
        {"page_size": 6},
        {"statuses": ACTIVE["runloop"]},
    ),
    Scenario(
        "steel-all", "steel", datasets.steel, ("5", "-"), {"only_active": False, "page_size": 5}
    ),
    Scenario(
        "steel-active",
        "steel",
        datasets.steel,
        ("5", "live"),
        {"page_size": 5},
        {"statuses": ACTIVE["steel"]},
    ),
]
BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}

PHASES: Mapping[str, Mapping[str, str]] = {
    "e2b": {"running": "live", "paused": "paused"},
    "browserbase": {
        "pending": "pending",
        "running": "live",
        "completed": "ended",
        "timed_out": "ended",
        "error": "failed",
    },
    "daytona": {
        **dict.fromkeys(
            (
                "creating",
                "restoring",
                "starting",
                "pending_build",
                "building_snapshot",
                "pulling_snapshot",
                "resuming",
                "resizing",
                "snapshotting",
                "forking",
            ),
            "pending",
        ),
        **dict.fromkeys(("started", "stopping", "pausing"), "live"),
        **dict.fromkeys(("stopped", "paused", "archiving", "archived"), "paused"),
        **dict.fromkeys(("destroying", "destroyed"), "ended"),
        **dict.fromkeys(("error", "build_failed"), "failed"),
        "unknown": "unknown",
    },
    "runloop": {
        **dict.fromkeys(
            ("scheduled", "queued", "provisioning", "initializing", "resuming"), "pending"
        ),
        **dict.fromkeys(("running", "suspending"), "live"),
        "suspended": "paused",
        "shutdown": "ended",
        "failure": "failed",
    },
    "steel": {"live": "live", "released": "ended", "failed": "failed"},
}
"""The phase of each status the SDK knows, as interface.md's "More providers" fixes it."""


def newest_first_ids(sim: Simulator, statuses: tuple[str, ...] | None = None) -> list[str]:
    """The ids the simulator serves by default, in its order, for the expected cursors."""
    rows = datasets.expected_rows(sim.provider, sim.sessions, statuses=statuses)
    key = "created_ms" if sim.provider == "runloop" else "created"
    ordered = sorted(rows, key=lambda row: (row[key], row["id"]), reverse=True)
    return [row["id"] for row in ordered]


Query = list[tuple[str, str]]


def expected_queries(scenario: Scenario, sim: Simulator) -> list[Query]:
    """The query of each request the SDK should send for the scenario, in order."""
    size = int(scenario.driver_args[0]) if scenario.provider != "browserbase" else 0
    statuses: tuple[str, ...] | None = scenario.query.get("statuses")
    match scenario.provider:
        case "e2b":  # nextToken = the simulator's token for the page's last row
            state = [("state", ",".join(statuses))] if statuses else []
            order = newest_first_ids(sim, statuses)
            return [
                [*state, *([("nextToken", token(order[i - 1]))] if i else []), ("limit", str(size))]
                for i in range(0, len(order), size)
            ]
        case "browserbase":
            return [[("status", status)] for status in statuses] if statuses else [[]]
        case "daytona":  # states repeated; cursor = the simulator's token for the last row
            states = [("states", state) for state in statuses or ()]
            order = newest_first_ids(sim, statuses)
            return [
                [*([("cursor", token(order[i - 1]))] if i else []), ("limit", str(size)), *states]
                for i in range(0, len(order), size)
            ]
        case "runloop":  # one listing per status, each paged by starting_after
            walks = [(s,) for s in statuses] if statuses else [None]
            queries: list[Query] = []
            for walk in walks:
                order = newest_first_ids(sim, walk)
                status = [("status", walk[0])] if walk else []
                queries += [
                    [
                        ("limit", str(size)),
                        *status,
                        *([("starting_after", order[i - 1])] if i else []),
                    ]
                    for i in range(0, len(order), size)
                ]
            return queries
        case _:  # steel: cursorId = the last row's id, once more after the last row
            order = newest_first_ids(sim, statuses)
            status = [("status", statuses[0])] if statuses else []
            return [
                [("limit", str(size)), *status, *([("cursorId", order[i - 1])] if i else [])]
                for i in [*range(0, len(order), size), len(order)]
            ]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
async def test_sdk_lists_exactly_the_dataset(
    served: Serve, tmp_path: Path, scenario: Scenario
) -> None:
    """The SDK lists every session of every page, with the fields the exporter reads."""
    sim = simulator(scenario)
    base_url = await served(sim)
    listing = await sdk_listing(scenario, base_url + _base_path(scenario), tmp_path)
    expected = datasets.expected_rows(scenario.provider, sim.sessions, **scenario.query)
    assert expected == sorted(listing["sessions"], key=lambda row: str(row["id"]))
    served_pages = [log for log in sim.requests if log.path == sim.path and log.authorized]
    if scenario.paged:  # the dataset spans pages, and the SDK asked for each once
        assert (True, len(served_pages)) == (listing["pages"] > 1, listing["pages"])


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
async def test_sdk_sends_the_expected_requests(
    served: Serve, tmp_path: Path, scenario: Scenario
) -> None:
    """Every request is authorized, on the SDK's route, with the query its paging implies."""
    sim = simulator(scenario)
    await sdk_listing(scenario, await served(sim) + _base_path(scenario), tmp_path)
    expected = [(sim.path, True, sorted(query)) for query in expected_queries(scenario, sim)]
    assert expected == [
        (log.path, log.authorized, sorted(log.query.items())) for log in sim.requests
    ]


def test_every_status_is_in_a_dataset_and_the_active_ones_in_a_filter() -> None:
    """Each dataset holds every status of its provider; each `-active` filter is the
    contract's pending and live statuses."""
    for provider, phases in PHASES.items():
        sim = getattr(datasets, provider)()
        rows = datasets.expected_rows(provider, sim.sessions)
        assert set(phases) == {str(row["status"]).lower() for row in rows}
        active = {status for status, phase in phases.items() if phase in ("pending", "live")}
        assert active == {status.lower() for status in ACTIVE[provider]}


async def test_daytona_sdk_sends_the_organization_on_every_request(
    served: Serve, tmp_path: Path
) -> None:
    """The generated Daytona client names the organization in each page's request."""
    scenario = BY_NAME["daytona-organization"]
    sim = simulator(scenario)
    listing = await sdk_listing(scenario, await served(sim) + "/api", tmp_path)
    assert [("org-acme", True)] * listing["pages"] == [
        (log.headers.get("X-Daytona-Organization-ID"), log.authorized) for log in sim.requests
    ]


async def test_steel_sdk_asks_once_more_after_the_last_page(served: Serve, tmp_path: Path) -> None:
    """Steel's pager ignores `nextCursor`: it asks after the last row and gets an empty page."""
    scenario = BY_NAME["steel-all"]
    sim = simulator(scenario)
    listing = await sdk_listing(scenario, await served(sim), tmp_path)
    last = sim.requests[-1].query["cursorId"]
    assert (4, 12, sorted(sim.sessions, key=lambda row: row["createdAt"])[0]["id"]) == (
        listing["pages"],
        len(listing["sessions"]),
        last,
    )


def _base_path(scenario: Scenario) -> str:
    """The path in the SDK's default base URL: Daytona's ends in /api, the others' in none."""
    return "/api" if scenario.provider == "daytona" else ""


# --- `once` counts what the SDK lists ------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
async def test_exporter_counts_the_sessions_the_sdk_lists(
    served: Serve, tmp_path: Path, scenario: Scenario
) -> None:
    """`once` over the same simulator succeeds and counts the SDK's sessions per status."""
    sim = simulator(scenario)
    base_url = await served(sim)
    listing = await sdk_listing(scenario, base_url + _base_path(scenario), tmp_path)
    code, exposition = await exporter_once(scenario, base_url, tmp_path)
    assert (0, listed(listing)) == (code, counted(exposition))


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if s.name.endswith("-all")], ids=str)
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
