"""The five providers shipped as definitions, polled against the project's simulators of
their wire formats (exporter/simulators), over real sockets: every page, exact counts by
status and phase, for the SDK contract datasets with and without the status filter."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from exporter.simulators import Simulator
from tests.conftest import Serve
from tests.harness import KEY, NOW, poll_all, settings_for
from tests.sdk import datasets
from tests.sdk.test_sdk_more import PHASES, SCENARIOS


def _status(provider: str, row: dict[str, Any]) -> str:
    return str(row["status"]).lower()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
async def test_a_poll_counts_what_the_simulator_serves(served: Serve, scenario: Any) -> None:
    """One poll of the target the SDK scenario names counts each of the dataset's sessions
    the scenario asks for in its status, with the contract's phase, in one request per page
    the simulator serves."""
    sim: Simulator = scenario.make()
    sim.api_key = KEY
    base = await served(sim)
    target = {
        "name": "t",
        "provider": scenario.provider,
        "base_url": base + ("/api" if scenario.provider == "daytona" else ""),
        **scenario.target,
    }
    store = await poll_all(settings_for(target), clock=lambda: NOW)
    snapshot = store.snapshots["t"]
    assert snapshot.error is None
    aggregate = snapshot.aggregate
    assert aggregate is not None
    rows = datasets.expected_rows(sim.provider, sim.sessions, **scenario.query)
    expected = Counter(_status(scenario.provider, row) for row in rows)
    counted = {s: c.count for s, c in aggregate.statuses.items() if c.count}
    assert dict(expected) == counted
    phases = PHASES[scenario.provider]
    assert {s: phases[s] for s in counted} == {s: aggregate.statuses[s].phase for s in counted}
    assert 0 == sum(aggregate.invalid.values())
