"""The aggregate's de-duplication: exact within its window, and memory that stays flat."""

from __future__ import annotations

import gc
import itertools
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime

from exporter.polling.aggregate import DEDUP_WINDOW, Aggregate, AggregateBuilder
from exporter.providers.chaser import STATUS_PHASES, ChaserProvider, ChaserRow
from exporter.providers.rows import Page

T = 1_767_225_600.0
CREATED = datetime.fromtimestamp(T - 60, UTC)
MIB = 1024 * 1024


def builder() -> AggregateBuilder:
    """A Chaser target's builder at the fixed time ``T``."""
    return AggregateBuilder(statuses=STATUS_PHASES, capabilities=ChaserProvider.capabilities, now=T)


def pages(ids: Iterator[str], size: int = 1000) -> Iterator[Page]:
    """Pages of ``size`` running sessions with these ids (rows made as they are read)."""
    while True:
        rows = [
            ChaserRow(id=i, status="running", created=CREATED) for i in itertools.islice(ids, size)
        ]
        if not rows:
            return
        yield Page(rows, len(rows))


def fold(ids: Iterator[str], target: AggregateBuilder | None = None) -> Aggregate:
    """Every id folded, a page at a time."""
    target = target or builder()
    for page in pages(ids):
        target.add_page(page)
    return target.build()


def test_a_repeat_within_the_window_counts_once() -> None:
    """A session listed again 60,000 sessions later (a list shifted while paged) is counted
    once, and so is one repeated at the far end of the window."""
    ids = [f"s-{i}" for i in range(100_000)]
    listed = [*ids[:60_000], "s-0", *ids[60_000:], ids[100_000 - DEDUP_WINDOW]]

    aggregate = fold(iter(listed))

    assert 100_000 == aggregate.sessions
    assert 2 == aggregate.duplicates
    assert 100_000 == aggregate.statuses["running"].count


def test_a_repeat_beyond_the_window_is_counted_again() -> None:
    """The documented limit: a repeat more than twice the window back is counted twice."""
    ids = [f"s-{i}" for i in range(3 * DEDUP_WINDOW)]

    aggregate = fold(iter([*ids, "s-0"]))

    assert 3 * DEDUP_WINDOW + 1 == aggregate.sessions
    assert 0 == aggregate.duplicates


def test_memory_of_a_big_poll_stays_flat() -> None:
    """Folding 150,000 sessions leaves the builder holding at most ~10 MiB, whatever the
    number of sessions: no id string is kept alive (a set of the ids held 18 MiB here)."""
    gc.collect()
    tracemalloc.start()
    try:
        target = builder()
        fold((f"session-{i:08d}-0000-4000-8000-{i:012d}" for i in range(150_000)), target)
        gc.collect()
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert held < 12 * MIB, f"{held / MIB:.1f} MiB"


def test_a_flood_of_distinct_statuses_goes_into_other_as_it_is_counted() -> None:
    """5,000 sessions each in a status of its own: the first 1,024 undocumented statuses are
    told apart, the rest go into ``other`` as they are counted (so building the aggregate
    folds about a thousand values, not five thousand); every session is still counted once,
    and every value folded into ``other`` is counted as folded."""
    fold = builder()
    rows = [ChaserRow(id=f"s{i}", status=f"st{i:04d}", created=CREATED) for i in range(5000)]
    fold.add_page(Page(rows, len(rows)))
    aggregate = fold.build()

    counts = {status: tally.count for status, tally in aggregate.statuses.items()}
    assert 5000 == sum(counts.values())
    assert 4981 == counts["other"]  # 3,976 past the limit, and 1,005 of the 1,024 folded
    assert len(STATUS_PHASES) + 19 + 1 == len(counts)  # documented, 19 kept, and other
    assert 4981 == aggregate.folded_label_values
