"""A few seconds of the soak's core (``python -m tests.soak``) inside the test run."""

# House style is `assert expected == actual`, which SIM300 calls a Yoda condition.

from __future__ import annotations

from tests.soak import run_soak


async def test_soak_core_leaves_no_task_behind() -> None:
    """Five seconds of churn, random faults, polls every 0.2 s and continuous scrapes end,
    once everything has shut down, with the asyncio task count back at its baseline."""
    report = await run_soak(5.0, warmup=1.0, fault_period=0.2, settle=0.3)
    assert report.baseline_tasks == report.after_tasks, report.leftover
    assert 0 == report.scrapes_failed
    assert report.scrapes_ok > 0
    assert sum(report.injected.values()) > 0
    assert ["boot", "start", "end"] == [sample.label for sample in report.samples]
