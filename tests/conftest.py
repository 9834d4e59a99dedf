"""Shared fixtures: simulators served over real sockets, and CI's no-skip rule."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack

import pytest

from exporter.simulators import Simulator, serve

NO_SKIP = "SESSION_EXPORTER_NO_SKIP"
PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY")
"""Read by every target at load: the machine's own would send the tests' loopback polls away."""

Serve = Callable[[Simulator], Awaitable[str]]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    """With SESSION_EXPORTER_NO_SKIP=1 (set by CI) a skipped test is reported as failed."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and os.environ.get(NO_SKIP) == "1" and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped, but {NO_SKIP}=1 forbids skips: {report.longrepr}"
    return None


@pytest.fixture(autouse=True)
def no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no proxy variables (tests that need them set their own)."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def served() -> AsyncIterator[Serve]:
    """Start simulators on loopback ports; each call returns the simulator's base URL."""
    async with AsyncExitStack() as stack:

        async def start(sim: Simulator) -> str:
            return await stack.enter_async_context(serve(sim))

        yield start
