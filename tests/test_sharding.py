"""Sharding like kube-state-metrics: config, flags, the stable split, three shards end to end."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from exporter.config.settings import ConfigError, load_settings, shard_from_pod_name, shard_of
from exporter.simulators import (
    ChaserSimulator,
    NotteSimulator,
    Simulator,
    chaser_row,
    iso,
    notte_row,
)
from exporter.web.app import STORE, create_app, reload_config
from tests.conftest import Serve
from tests.harness import KEY, NOW, Exposition, settings_for
from tests.test_cli import run

T = NOW  # a fixed "now" for the data: nothing here reads the wall clock at import

SESSION_SERIES = {
    "sessions",
    "sessions_oldest_created_timestamp_seconds",
    "sessions_overdue",
    "sessions_next_deadline_timestamp_seconds",
    "sessions_connection_leases",
    "sessions_unleased",
    "sessions_oldest_activity_timestamp_seconds",
    "sessions_age_seconds_bucket",
    "sessions_age_seconds_gcount",
    "sessions_target_up",
}
"""Series whose values depend only on the upstream data (not on when or how often polled)."""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def problems(path: Path, **command_line: int) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(path, command_line=command_line or None)
    return [str(p) for p in caught.value.problems]


TARGETS = "targets:\n  - {name: a, provider: notte, api_key: k}\n"


# --- the split ------------------------------------------------------------------------------


def test_shard_of_is_sha256_based_and_pinned() -> None:
    """The shard is the first 8 bytes of SHA-256 of the name mod the total, never hash()."""
    for name in ("notte-prod", "browsers", "t17"):
        expected = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % 3
        assert expected == shard_of(name, 3)
    # pinned so a change of the function (which would reshuffle every fleet) fails loudly
    assert [0, 2, 2, 2, 0, 0, 1, 0, 0, 2, 2, 2] == [shard_of(f"t{i}", 3) for i in range(12)]
    assert {0} == {shard_of(f"t{i}", 1) for i in range(50)}


def test_every_target_belongs_to_exactly_one_shard() -> None:
    """Over 1,000 names and 1 to 5 shards, the shards' own targets partition the targets."""
    targets = [{"name": f"acct-{i}", "provider": "chaser"} for i in range(1000)]
    for total in range(1, 6):
        owned = [
            {t.name for t in settings_for(*targets, shard=s, total_shards=total).own_targets()}
            for s in range(total)
        ]
        assert 1000 == sum(len(o) for o in owned)
        assert {t["name"] for t in targets} == set().union(*owned)
        assert all(len(o) > 1000 / total / 2 for o in owned)  # roughly even


@pytest.mark.parametrize(
    ("pod", "ordinal"),
    [("session-exporter-0", 0), ("session-exporter-12", 12), ("a-b-c-3", 3)],
)
def test_shard_from_pod_name_takes_the_trailing_ordinal(pod: str, ordinal: int) -> None:
    """A StatefulSet pod name NAME-<n> gives shard n."""
    assert ordinal == shard_from_pod_name(pod)


@pytest.mark.parametrize("pod", ["session-exporter", "exporter-x1", "-3", "", "pod-\u0663"])
def test_shard_from_pod_name_rejects_names_without_an_ordinal(pod: str) -> None:
    """A name without a trailing ASCII ordinal is refused instead of guessed."""
    with pytest.raises(ValueError, match="StatefulSet ordinal"):
        shard_from_pod_name(pod)


# --- config -------------------------------------------------------------------------------------


def test_shard_keys_in_the_file(tmp_path: Path) -> None:
    """shard and total_shards are top-level keys; unset they mean 0 of 1 (everything)."""
    assert (0, 1) == (
        (s := load_settings(write(tmp_path, TARGETS))).shard,
        s.total_shards,
    )
    sharded = load_settings(write(tmp_path, "shard: 2\ntotal_shards: 4\n" + TARGETS))
    assert (2, 4) == (sharded.shard, sharded.total_shards)


def test_shard_out_of_range_is_a_located_problem(tmp_path: Path) -> None:
    """shard >= total_shards, a negative shard and total_shards 0 each name their place."""
    path = write(tmp_path, "shard: 3\ntotal_shards: 3\n" + TARGETS)
    assert [
        f"{path}:1:8: shard: shard 3 is out of range: with total_shards 3 it must be 0 to 2"
    ] == problems(path)

    path = write(tmp_path, "shard: -1\ntotal_shards: 0\n" + TARGETS)
    assert [
        f"{path}:1:8: shard: must be at least 0",
        f"{path}:2:15: total_shards: must be at least 1",
    ] == problems(path)


def test_environment_sets_and_locates_the_shard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SESSION_EXPORTER_SHARD / _TOTAL_SHARDS override the file; a bad one names the variable."""
    path = write(tmp_path, "total_shards: 2\n" + TARGETS)
    monkeypatch.setenv("SESSION_EXPORTER_SHARD", "1")
    monkeypatch.setenv("SESSION_EXPORTER_TOTAL_SHARDS", "3")
    assert (1, 3) == ((s := load_settings(path)).shard, s.total_shards)

    monkeypatch.setenv("SESSION_EXPORTER_SHARD", "5")
    assert [
        "environment SESSION_EXPORTER_SHARD: shard: shard 5 is out of range: "
        "with total_shards 3 it must be 0 to 2"
    ] == problems(path)


def test_command_line_wins_and_is_located(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--shard/--total-shards override environment and file; bad values say `command line`."""
    monkeypatch.setenv("SESSION_EXPORTER_SHARD", "0")
    path = write(tmp_path, "shard: 0\ntotal_shards: 2\n" + TARGETS)
    settings = load_settings(path, command_line={"shard": 2, "total_shards": 3})
    assert (2, 3) == (settings.shard, settings.total_shards)

    assert ["command line --total-shards: total_shards: must be at least 1"] == problems(
        path, total_shards=0
    )
    assert [
        "command line --shard: shard: shard 2 is out of range: "
        "with total_shards 2 it must be 0 to 1"
    ] == problems(path, shard=2)


# --- command line -------------------------------------------------------------------------------


def targets_yaml(names: list[str], base_url: str = "http://127.0.0.1:9") -> str:
    lines = ["targets:"]
    for name in names:
        lines.append(
            f"  - {{name: {name}, provider: chaser, api_key: {KEY}, base_url: {base_url}}}"
        )
    return "\n".join(lines) + "\n"


NAMES = [f"t{i}" for i in range(12)]


async def test_check_config_lists_the_shards_targets(tmp_path: Path) -> None:
    """check-config --shard 1 --total-shards 3 names exactly the targets of shard 1."""
    path = write(tmp_path, targets_yaml(NAMES))

    result = await run("check-config", "--config", str(path), "--shard", "1", "--total-shards", "3")

    assert 0 == result.returncode, result.output
    own = [n for n in NAMES if shard_of(n, 3) == 1]
    tail = result.stdout.splitlines()[-len(own) - 1 :]
    assert [f"shard 1 of 3: {len(own)} of 12 target(s)", *(f"  {n}" for n in own)] == tail


async def test_shard_from_pod_name_flag(tmp_path: Path) -> None:
    """--shard-from-pod-name reads $POD_NAME; without it, or with --shard too, exit 2."""
    path = write(tmp_path, targets_yaml(NAMES))
    args = ("check-config", "--config", str(path), "--total-shards", "3", "--shard-from-pod-name")

    ok = await run(*args, env={"POD_NAME": "session-exporter-2"})
    assert 0 == ok.returncode, ok.output
    assert f"shard 2 of 3: {sum(shard_of(n, 3) == 2 for n in NAMES)} of 12 target(s)" in ok.stdout

    missing = await run(*args)
    assert 2 == missing.returncode
    assert "--shard-from-pod-name needs $POD_NAME" in missing.stderr

    bad = await run(*args, env={"POD_NAME": "session-exporter"})
    assert 2 == bad.returncode
    assert "does not end in a StatefulSet ordinal" in bad.stderr

    both = await run(*args, "--shard", "1", env={"POD_NAME": "session-exporter-2"})
    assert 2 == both.returncode
    assert "not both" in both.stderr


async def test_once_exports_only_its_shard(tmp_path: Path, served: Serve) -> None:
    """`once --shard 0 --total-shards 3` polls and prints only shard 0's targets, and the gauges."""
    sim = ChaserSimulator(sessions=[chaser_row("c1", "running", iso(T - 90))], api_key=KEY)
    path = write(tmp_path, targets_yaml(NAMES, await served(sim)))

    result = await run("once", "--config", str(path), "--shard", "0", "--total-shards", "3")

    assert 0 == result.returncode, result.stderr
    exp = Exposition.parse(result.stdout)
    own = {n for n in NAMES if shard_of(n, 3) == 0}
    assert own == set(exp.by("sessions_target_up", "target"))
    assert len(own) == len(sim.requests)
    assert (0.0, 3.0) == (
        exp.get("sessions_exporter_shard_ordinal"),
        exp.get("sessions_exporter_total_shards"),
    )


# --- in-process apps over many simulators -----------------------------------------------------


def simulators(count: int) -> dict[str, Simulator]:
    """``count`` simulated accounts, by target name: two thirds Chaser, a third Notte."""
    sims: dict[str, Simulator] = {}
    for i in range(count):
        name = f"acct-{i:02d}"
        if i % 3 == 2:
            rows = [notte_row(f"n{j}", "active", T - 2000 - j, T - 100) for j in range(i % 4 + 1)]
            sims[name] = NotteSimulator(sessions=rows, api_key=KEY)
        else:
            rows = [
                chaser_row(f"c{j}", status, iso(T - 1000 - 50 * j), leases=j % 2)
                for j, status in enumerate(["running", "idle", "failed", "running"][: i % 4 + 1])
            ]
            sims[name] = ChaserSimulator(sessions=rows, api_key=KEY)
    return sims


async def target_specs(sims: Mapping[str, Simulator], served: Serve) -> list[dict[str, Any]]:
    return [
        {"name": name, "provider": sim.provider, "base_url": await served(sim)}
        for name, sim in sims.items()
    ]


@asynccontextmanager
async def apps(*settings: Any) -> AsyncIterator[list[str]]:
    """Run one real app per settings on a loopback port; yields their base URLs."""
    async with AsyncExitStack() as stack:
        urls = []
        for s in settings:
            runner = web.AppRunner(create_app(s))
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            urls.append(f"http://127.0.0.1:{port}")
        yield urls


async def ready_metrics(urls: list[str]) -> list[Exposition]:
    """Wait until every app is ready, then scrape each one's /metrics."""
    async with aiohttp.ClientSession() as http:
        async with asyncio.timeout(20):
            for url in urls:
                while (await http.get(f"{url}/readyz")).status != 200:
                    await asyncio.sleep(0.05)
        return [Exposition.parse(await (await http.get(f"{url}/metrics")).text()) for url in urls]


def session_series(exp: Exposition) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {key: value for key, value in exp.samples.items() if key[0] in SESSION_SERIES}


async def test_three_shards_split_the_targets_and_add_up_to_one_exporter(served: Serve) -> None:
    """30 targets, 3 shards: each simulator is asked by exactly one shard, once; the union of
    the shards' session series equals an unsharded exporter's, and the shard gauges are set."""
    sims = simulators(30)
    specs = await target_specs(sims, served)
    shards = [settings_for(*specs, poll_interval="1h", shard=s, total_shards=3) for s in range(3)]

    async with apps(*shards) as urls:
        exposed = await ready_metrics(urls)
        polled = {name: len(sim.requests) for name, sim in sims.items()}

    assert dict.fromkeys(sims, 1) == polled  # every target polled, by one shard, once
    owners: dict[str, list[int]] = {name: [] for name in sims}
    for shard, exp in enumerate(exposed):
        for name in exp.by("sessions_exporter_polls_total", "target"):
            owners[name].append(shard)
        assert (float(shard), 3.0) == (
            exp.get("sessions_exporter_shard_ordinal"),
            exp.get("sessions_exporter_total_shards"),
        )
    assert {name: [shard_of(name, 3)] for name in sims} == owners
    assert all(owned for owned in ([o for o in owners.values() if o == [s]] for s in range(3)))

    async with apps(settings_for(*specs, poll_interval="1h")) as urls:
        (single,) = await ready_metrics(urls)
    union: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for exp in exposed:
        part = session_series(exp)
        assert not part.keys() & union.keys()  # no series exported by two shards
        union.update(part)
    assert session_series(single) == union
    assert 30 == len(single.by("sessions_target_up", "target"))
    assert (0.0, 1.0) == (
        single.get("sessions_exporter_shard_ordinal"),
        single.get("sessions_exporter_total_shards"),
    )


async def test_two_replicas_of_one_shard_double_the_load_and_agree(served: Serve) -> None:
    """High availability: two replicas of the same shard each poll every one of its targets
    (twice the upstream requests) and export identical session series."""
    sims = simulators(9)
    specs = await target_specs(sims, served)
    replica = settings_for(*specs, poll_interval="1h", shard=1, total_shards=2)
    own = {t.name for t in replica.own_targets()}

    async with apps(replica, replica) as urls:
        first, second = await ready_metrics(urls)
        polled = {name: len(sim.requests) for name, sim in sims.items()}

    assert {name: 2 if name in own else 0 for name in sims} == polled
    assert session_series(first) == session_series(second)
    assert own == set(first.by("sessions_target_up", "target"))


async def test_reload_keeps_the_shard_filter(tmp_path: Path, served: Serve) -> None:
    """After a reload that adds targets (and a file saying shard 0), the replica started with
    --shard 1 --total-shards 3 still runs exactly shard 1's targets."""
    sim = ChaserSimulator(sessions=[chaser_row("c1", "running", iso(T - 90))], api_key=KEY)
    url = await served(sim)

    def own(names: list[str]) -> set[str]:
        return {n for n in names if shard_of(n, 3) == 1}

    path = write(tmp_path, "poll_interval: 1h\n" + targets_yaml(NAMES[:6], url))
    command_line = {"shard": 1, "total_shards": 3}
    settings = load_settings(path, command_line=command_line)
    app = create_app(settings, config_path=path, command_line=command_line)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        assert own(NAMES[:6]) == set(app[STORE].snapshots)
        path.write_text("shard: 0\npoll_interval: 1h\n" + targets_yaml(NAMES, url))
        assert await reload_config(app)
        assert own(NAMES) == set(app[STORE].snapshots)
        assert (1, 3) == (app[STORE].config.shard, app[STORE].config.total_shards)
    finally:
        await runner.cleanup()
