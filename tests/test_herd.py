"""The start-up herd: upstream connections are bounded, and first polls are staggered."""

from __future__ import annotations

import asyncio
import json
import resource
from pathlib import Path

from exporter.config.settings import load_settings
from exporter.polling.runtime import new_store
from exporter.polling.supervisor import Supervisor, first_poll_delay
from exporter.simulators import ChaserSimulator, chaser_row, iso
from exporter.upstream.client import new_client_session
from tests.conftest import Serve
from tests.harness import KEY, NOW, Exposition, console_script

TARGETS = 1_000
DESCRIPTORS = 256


def _limit_descriptors() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (DESCRIPTORS, DESCRIPTORS))


async def test_a_thousand_targets_at_once_with_256_descriptors(
    tmp_path: Path, served: Serve
) -> None:
    """``once`` polls 1,000 targets at the same moment with a descriptor limit of 256, and
    every poll succeeds: at most 64 upstream connections are open, the rest wait for one.
    With no bound, about half the first polls failed with "too many open files"."""
    url = await served(
        ChaserSimulator(sessions=[chaser_row("a", "running", iso(NOW))], api_key=KEY)
    )
    config = tmp_path / "config.json"
    targets = [
        {"name": f"t{i}", "provider": "chaser", "base_url": url, "api_key": KEY}
        for i in range(TARGETS)
    ]
    config.write_text(json.dumps({"log_level": "error", "targets": targets}), encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        console_script(),
        "once",
        "--config",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        preexec_fn=_limit_descriptors,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)

    metrics = Exposition.parse(out.decode())
    up = metrics.by("sessions_target_up", "target")
    assert TARGETS == len(up)
    errors = metrics.select("sessions_exporter_poll_errors_total", reason="connect")
    assert 0 == sum(errors.values())
    assert TARGETS == sum(up.values())
    assert 0 == proc.returncode


async def test_first_polls_are_staggered_over_the_interval(tmp_path: Path, served: Serve) -> None:
    """Each target's first poll waits its own share of the spread (here the whole interval),
    the same in every process (from a hash of its name): the targets are first polled in
    the order of those shares, not all at once."""
    url = await served(
        ChaserSimulator(sessions=[chaser_row("a", "running", iso(NOW))], api_key=KEY)
    )
    names = ["alpha", "beta", "gamma", "delta"]
    items = "".join(
        f'  - {{name: {n}, provider: chaser, base_url: "{url}", api_key: "{KEY}"}}\n' for n in names
    )
    path = tmp_path / "c.yaml"
    path.write_text(f"poll_interval: 3s\ntargets:\n{items}", encoding="utf-8")
    settings = load_settings(path)
    delays = {n: first_poll_delay(n, 3.0) for n in names}
    store = new_store(settings)
    async with new_client_session() as session:
        supervisor = Supervisor(  # a spread of 1 s per target: over the 3 s interval
            settings=settings, session=session, store=store, first_poll_spread=1.0
        )
        supervisor.start()
        async with asyncio.timeout(10):
            while not all(store.snapshots[n].polls for n in names):
                await asyncio.sleep(0.01)
        await supervisor.stop()

    assert {"alpha": 1.674, "beta": 2.863, "gamma": 2.234, "delta": 0.929} == {
        n: round(d, 3) for n, d in delays.items()
    }
    assert ["delta", "alpha", "gamma", "beta"] == sorted(
        names, key=lambda n: store.snapshots[n].last_poll or 0.0
    )
