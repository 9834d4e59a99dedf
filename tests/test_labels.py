"""Label values from provider data are made safe and capped per target."""

from __future__ import annotations

import hashlib
from collections import Counter
from functools import partial

import pytest

from exporter.core.labels import cap, clean, fold, session_id
from exporter.simulators import ChaserSimulator, chaser_row, iso
from tests import harness
from tests.conftest import Serve
from tests.harness import KEY, NOW, settings_for

T = NOW  # a fixed "now": the data below, and the clock of every poll and scrape here
poll_all = partial(harness.poll_all, clock=lambda: T)
scrape = partial(harness.scrape, clock=lambda: T)


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("running", "running"),
        ("bad\nstatus\x00", "bad status"),
        ("  tabs\tand   spaces ", "tabs and spaces"),
        ("x" * 100, "x" * 64),
        ("\x01\x02", "empty"),
        ("ñandú", "ñandú"),
    ],
)
def test_clean(raw: str, safe: str) -> None:
    """Control characters and runs of space collapse; at most 64 characters; never empty."""
    assert safe == clean(raw)


def digest(raw: str) -> str:
    """The first 8 hex digits of the raw id's SHA-256, as session_id appends them."""
    return hashlib.sha256(raw.encode()).hexdigest()[:8]


@pytest.mark.parametrize(
    ("raw", "head"),
    [
        ("sess_0123", None),
        ("a b", None),
        ("zero\u200bwidth", "zero width"),
        ("bell\x07", "bell"),
        ("x" * 200, "x" * 119),
    ],
)
def test_session_id(raw: str, head: str | None) -> None:
    """A safe id stays as it is; any other is cleaned, cut to 128, and marked with a digest."""
    assert (raw if head is None else f"{head}~{digest(raw)}") == session_id(raw)


def test_fold_is_the_sessions_mapping_from_raw_values() -> None:
    """Raw values map to documented names as they are, others cleaned and merged before
    capping (so `Odd\nOne` and `Odd One` count as one), the rest into `other`."""
    counts = {"running": 0, "Odd\nOne": 2, "Odd One": 2, "rare": 1, "rarer": 1}

    assert {
        "running": "running",
        "Odd\nOne": "Odd One",
        "Odd One": "Odd One",
        "rare": "other",
        "rarer": "other",
    } == fold(counts, keep={"running"}, limit=1)


def test_cap_keeps_documented_and_most_frequent() -> None:
    """Documented values always stay; of the rest the most frequent (ties by name) stay."""
    counts = Counter({"running": 1, "a": 5, "b": 5, "c": 9, "d": 1})

    mapping = cap(counts, keep={"running"}, limit=2)

    assert {"running": "running", "c": "c", "a": "a", "b": "other", "d": "other"} == mapping


async def test_undocumented_statuses_fold_into_other(served: Serve) -> None:
    """Past max_label_values, undocumented statuses fold into `other` and are counted."""
    rows = [chaser_row("r1", "running", iso(T - 5))]
    for i in range(12):
        rows += [chaser_row(f"w{i}-{n}", f"Weird-{i:02d}", iso(T - 100 * i)) for n in range(i + 1)]
    rows.append(chaser_row("ctl", "Bad\nStatus", iso(T - 7)))
    url = await served(ChaserSimulator(sessions=rows, api_key=KEY))
    target = {"name": "b", "provider": "chaser", "base_url": url, "max_label_values": 3}

    store = await poll_all(settings_for(target), rounds=2)
    metrics = scrape(store)

    statuses = metrics.by("sessions", "status", target="b")
    assert {"weird-11": 12.0, "weird-10": 11.0, "weird-09": 10.0} == {
        s: v for s, v in statuses.items() if s.startswith("weird-")
    }
    assert sum(range(1, 10)) + 1 == statuses["other"]  # weird-00..08 and the cleaned "bad status"
    assert "bad status" not in statuses
    assert "unknown" == dict(next(iter(metrics.select("sessions", status="other"))))["phase"]
    assert T - 800 == metrics.get("sessions_oldest_created_timestamp_seconds", status="other")
    assert 1.0 == statuses["running"]
    assert 0.0 == statuses["error"]
    assert 2 * 10.0 == metrics.get("sessions_exporter_label_values_folded_total", target="b")


async def test_kinds_in_per_session_series_are_capped(served: Serve) -> None:
    """session_info's kind label is cleaned and capped the same way."""
    rows = [
        chaser_row(f"s{i}", "running", iso(T - i), session_type=f"type\t{i % 4}") for i in range(8)
    ]
    url = await served(ChaserSimulator(sessions=rows, api_key=KEY))
    target = {
        "name": "b",
        "provider": "chaser",
        "base_url": url,
        "max_label_values": 2,
        "per_session": {"enabled": True},
    }

    metrics = scrape(await poll_all(settings_for(target)))

    kinds = Counter(dict(labels)["kind"] for labels in metrics.select("session_info"))
    assert {"type 0": 2, "type 1": 2, "other": 4} == kinds
    assert 2.0 == metrics.get("sessions_exporter_label_values_folded_total")
