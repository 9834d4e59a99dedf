"""The benchmark command itself works: ``python -m bench --quick`` prints and writes every row."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_quick_benchmark_prints_every_row_with_its_ratio(tmp_path: Path) -> None:
    """A quick run exits 0, prints every table, and its JSON holds each goal with a ratio
    (render on change among them) and the scaling rows (each target polled once per cycle
    whatever the number of shards)."""
    out = tmp_path / "bench.json"

    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    assert 0 == done.returncode, done.stderr[-2000:]
    document = json.loads(out.read_text())
    goals = [row["goal"] for row in document["goals"]]
    assert [
        ">= 0.8x, p99 < 10 ms",
        ">= 50x",
        ">= 0.8x, p99 < 10 ms",
        ">= 50x",
        ">= 0.6x",  # chaser, page size 100
        ">= 0.6x",  # a definition of its API
        ">= 0.8x",  # chaser, page size 1000
        ">= 0.8x",  # a definition of its API
        ">= 0.6x",  # notte
        ">= 0.6x",  # a definition of its API
        "equal",
        "equal",
        "equal",
        "equal",
        # latency: three hand-written providers, each beside a definition, and the five shipped
        *["<= 1.2x"] * 11,
        "<= +64 MiB",
        "<= 1 ms",
        "<= 25 ms",
        "<= 25 ms",
        "<= 20 ms",
    ] == goals
    assert all(row["ratio"] for row in document["goals"])
    assert [(100, 1), (1_000, 1), (300, 3)] == [
        (g["sessions"], g["targets"]) for g in document["growth"]
    ]
    for row in document["goals"]:
        assert f"| {row['ratio']} | {row['goal']} |" in done.stdout
    assert "| sessions | targets | series | poll (all targets) |" in done.stdout
    assert [(10, 1), (10, 2), (30, 1), (30, 2)] == [
        (f["targets"], f["shards"]) for f in document["scaling"]
    ]
    assert [10, 10, 30, 30] == [f["requests_per_cycle"] for f in document["scaling"]]
    assert "| targets | shards | targets in the largest shard |" in done.stdout
    assert str(out) in done.stdout
