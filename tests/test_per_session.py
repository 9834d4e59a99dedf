"""Opt-in per-session series: exactly the oldest `max_series` sessions, aggregates unaffected."""

from __future__ import annotations

from functools import partial

import pytest

from exporter.core.labels import session_id
from exporter.polling import aggregate
from exporter.providers import rows as rows_module
from exporter.simulators import (
    ChaserSimulator,
    NotteSimulator,
    TogetherSimulator,
    chaser_row,
    iso,
    notte_row,
    together_row,
)
from tests import harness
from tests.conftest import Serve
from tests.harness import KEY, NOW, settings_for

T = NOW  # a fixed "now": the data below, and the clock of every poll and scrape here
poll_all = partial(harness.poll_all, clock=lambda: T)
scrape = partial(harness.scrape, clock=lambda: T)
ROWS = [
    chaser_row("young", "running", iso(T - 10), leases=1, session_type="browser"),
    chaser_row("old", "idle", iso(T - 500), leases=0, session_type="browser"),
    chaser_row("older", "Starting", iso(T - 900), leases=None, session_type="headful"),
    chaser_row("oldest", "running", iso(T - 4000), leases=2, session_type="browser"),
    chaser_row("middle", "running", iso(T - 300), leases=3, session_type="browser"),
    chaser_row("ended", "stopped", iso(T - 9000), leases=0),
]


def chaser(url: str, **per_session: object) -> dict[str, object]:
    """A Chaser target with the given per_session options."""
    return {"name": "b", "provider": "chaser", "base_url": url, "per_session": per_session}


async def test_capped_at_max_series_oldest_first(served: Serve) -> None:
    """max_series=3 keeps the three oldest live/pending sessions and says 2 were left out."""
    url = await served(ChaserSimulator(sessions=ROWS, api_key=KEY))

    metrics = scrape(await poll_all(settings_for(chaser(url, enabled=True, max_series=3))))

    info = metrics.select("session_info")
    assert {
        frozenset(
            {
                ("provider", "chaser"),
                ("target", "b"),
                ("session_id", "oldest"),
                ("status", "running"),
                ("phase", "live"),
                ("kind", "browser"),
                ("run_id", ""),
            }
        ),
        frozenset(
            {
                ("provider", "chaser"),
                ("target", "b"),
                ("session_id", "older"),
                ("status", "starting"),
                ("phase", "pending"),
                ("kind", "headful"),
                ("run_id", ""),
            }
        ),
        frozenset(
            {
                ("provider", "chaser"),
                ("target", "b"),
                ("session_id", "old"),
                ("status", "idle"),
                ("phase", "live"),
                ("kind", "browser"),
                ("run_id", ""),
            }
        ),
    } == set(info)
    assert {1.0} == set(info.values())
    assert {"oldest": T - 4000, "older": T - 900, "old": T - 500} == metrics.by(
        "session_created_timestamp_seconds", "session_id"
    )
    assert {"oldest": 2.0, "old": 0.0} == metrics.by("session_connection_leases", "session_id")
    assert {} == metrics.select("session_deadline_timestamp_seconds")
    assert 2.0 == metrics.get("sessions_per_session_left_out", target="b")


async def test_off_by_default(served: Serve) -> None:
    """Without per_session there is no per-session series and no left-out gauge."""
    url = await served(ChaserSimulator(sessions=ROWS, api_key=KEY))

    metrics = scrape(
        await poll_all(settings_for({"name": "b", "provider": "chaser", "base_url": url}))
    )

    for name in (
        "session_info",
        "session_created_timestamp_seconds",
        "session_connection_leases",
        "sessions_per_session_left_out",
    ):
        assert {} == metrics.select(name), name


async def test_aggregates_do_not_depend_on_it(served: Serve) -> None:
    """Every aggregate family is identical with per_session on (capped at 1) and off."""
    url = await served(ChaserSimulator(sessions=ROWS, api_key=KEY))

    on = scrape(await poll_all(settings_for(chaser(url, enabled=True, max_series=1))))
    off = scrape(await poll_all(settings_for(chaser(url))))

    for name in (
        "sessions",
        "sessions_oldest_created_timestamp_seconds",
        "sessions_connection_leases",
        "sessions_unleased",
    ):
        assert off.select(name) == on.select(name), name


async def test_phases_select_which_sessions(served: Serve) -> None:
    """phases: [ended] shows only ended sessions; nothing is left out."""
    url = await served(ChaserSimulator(sessions=ROWS, api_key=KEY))

    metrics = scrape(await poll_all(settings_for(chaser(url, enabled=True, phases=["ended"]))))

    assert {"ended": 1.0} == metrics.by("session_info", "session_id")
    assert 0.0 == metrics.get("sessions_per_session_left_out")


async def test_deadline_series_for_providers_with_deadlines(served: Serve) -> None:
    """A Notte session's computed deadline is exported per session."""
    rows = [notte_row("n1", "active", T - 600, T - 60, idle_timeout_minutes=5)]
    url = await served(NotteSimulator(sessions=rows, api_key=KEY))
    target = {"name": "n", "provider": "notte", "base_url": url, "per_session": {"enabled": True}}

    metrics = scrape(await poll_all(settings_for(target)))

    assert {"n1": T + 240} == metrics.by("session_deadline_timestamp_seconds", "session_id")
    assert {"n1": "chromium"} == {
        dict(labels)["session_id"]: dict(labels)["kind"]
        for labels in metrics.select("session_info")
    }


async def test_hostile_ids_and_statuses_are_cleaned_capped_and_folded(served: Serve) -> None:
    """Per-session labels get the treatment of every provider label: control and zero-width
    characters go, a 100 KB id is cut to 128 characters (with a digest, so ids that clean
    alike stay apart), a 1,000-character status is cut to 64, and past max_label_values the
    statuses fold into `other` exactly as the sessions series fold them."""
    long_id = "i" * 100_000
    long_status = "s" * 1000
    rows = [
        chaser_row("plain", "running", iso(T - 10)),
        chaser_row("ctl\x00\n\u200bid", "running", iso(T - 20)),
        chaser_row("ctl  id", "running", iso(T - 30)),  # cleans to the same text
        chaser_row(long_id, "running", iso(T - 40)),
        chaser_row("long-status", long_status, iso(T - 50)),
        chaser_row("weird-1", "Weird\u200b\x07One", iso(T - 60)),
        chaser_row("weird-2", "weird-two", iso(T - 70)),
        chaser_row("weird-3", "weird-two", iso(T - 80)),
    ]
    url = await served(ChaserSimulator(sessions=rows, api_key=KEY))
    target = chaser(url, enabled=True, phases=["live", "pending", "unknown"])
    target["max_label_values"] = 1  # keeps weird-two (two sessions); the others fold

    metrics = scrape(await poll_all(settings_for(target)))

    info = {dict(labels)["session_id"]: dict(labels) for labels in metrics.select("session_info")}
    ctl = sorted(i for i in info if i.startswith("ctl"))
    assert 2 == len(ctl)
    assert all(len(i) == 15 and i[:7] == "ctl id~" for i in ctl), ctl
    long = [i for i in info if i.startswith("iii")]
    assert 1 == len(long)
    assert 128 == len(long[0])
    assert "i" * 119 + "~" == long[0][:120]
    statuses = {i: labels["status"] for i, labels in info.items()}
    assert "other" == statuses["long-status"]
    assert "other" == statuses["weird-1"]
    assert "weird-two" == statuses["weird-2"] == statuses["weird-3"]
    assert "running" == statuses["plain"]
    assert set(statuses.values()) <= set(metrics.by("sessions", "status"))
    for labels in metrics.select("session_info"):
        for _, value in labels:
            assert value.isprintable(), repr(value)
            assert len(value) <= 128


async def test_session_listed_again_past_the_dedup_window(
    served: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session listed again beyond the dedup window, with other values the second time,
    neither fails the poll (the top-N never compares two records: ``3 < None``) nor makes
    two ``session_info`` series of one id: the first listing's is kept, one is left out."""
    monkeypatch.setattr(aggregate, "DEDUP_WINDOW", 1)  # the window rotates on every page
    monkeypatch.setattr(rows_module, "CHUNK_BYTES", 1)  # one row per page
    listed = [
        together_row("a", T - 100, T + 900, execute_count=3),
        together_row("b", T - 50, T + 900),
        together_row("c", T - 40, T + 900),
        together_row("a", T - 100, T + 900, execute_count=None),  # type: ignore[arg-type]
    ]
    url = await served(TogetherSimulator(sessions=listed, api_key=KEY))
    target = {"name": "t", "provider": "together", "base_url": url + "/v1"}

    metrics = scrape(await poll_all(settings_for(target | {"per_session": {"enabled": True}})))

    assert 1 == metrics.get("sessions_target_up", target="t")
    assert ["a", "b", "c"] == sorted(metrics.by("session_info", "session_id"))
    assert 1 == metrics.get("sessions_per_session_left_out", target="t")


async def test_rewritten_session_ids_that_collide_make_one_series(served: Serve) -> None:
    """Two ids whose label values are the same (one rewritten, one already in that form)
    make one ``session_info`` series, the older session's, and one left out: never two
    samples with one label set, which would break the scrape."""
    hostile = "x\x00y"
    same = session_id(hostile)
    listed = [
        together_row(hostile, T - 100, T + 900),
        together_row(same, T - 50, T + 900),
    ]
    url = await served(TogetherSimulator(sessions=listed, api_key=KEY))
    target = {"name": "t", "provider": "together", "base_url": url + "/v1"}

    metrics = scrape(await poll_all(settings_for(target | {"per_session": {"enabled": True}})))

    assert {same: T - 100} == metrics.by("session_created_timestamp_seconds", "session_id")
    assert 1 == metrics.get("sessions_per_session_left_out", target="t")
    assert 2 == metrics.get("sessions", target="t", status="active")


async def test_status_that_cleans_to_a_documented_one_is_it_everywhere(served: Serve) -> None:
    """``running\\u200b`` (a zero-width space) is ``running``, phase live, in every series:
    counted in ``sessions``, in the live-age histogram and in the leases, not live in one
    and unknown in the others."""
    listed = [
        chaser_row("a", "running", iso(T - 10), leases=1),
        chaser_row("b", "running\u200b", iso(T - 20), leases=2),
    ]
    url = await served(ChaserSimulator(sessions=listed, api_key=KEY))

    metrics = scrape(await poll_all(settings_for(chaser(url))))

    assert {"running": 2.0} == {
        s: v for s, v in metrics.by("sessions", "status", target="b").items() if v
    }
    assert 2 == metrics.get("sessions_age_seconds_gcount", target="b")
    assert 3 == metrics.get("sessions_connection_leases", target="b")
