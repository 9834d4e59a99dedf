"""Building the polling parts both ``serve`` and ``once`` run: the store and the pollers."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

import aiohttp

from exporter.config.settings import Settings
from exporter.polling.poller import TargetPoller
from exporter.polling.state import ConfigStatus, Store
from exporter.polling.supervisor import config_hash, fresh_snapshot


def new_store(settings: Settings) -> Store:
    """A store with an empty (never polled) snapshot per target of this replica's shard, and
    the config's hash (``once`` shows the same ``sessions_exporter_config_hash`` as ``serve``)."""
    return Store(
        (fresh_snapshot(settings, t) for t in settings.own_targets()),
        config=ConfigStatus(
            hash=config_hash(settings), shard=settings.shard, total_shards=settings.total_shards
        ),
    )


def new_pollers(
    settings: Settings,
    session: aiohttp.ClientSession,
    store: Store,
    *,
    clock: Callable[[], float] = time.time,
) -> list[TargetPoller]:
    """One poller per target of this replica's shard."""
    return [
        TargetPoller(
            target=t, interval=settings.interval(t), session=session, store=store, clock=clock
        )
        for t in settings.own_targets()
    ]


def settle_heap() -> None:
    """After startup: collect once, then keep every object alive now (modules, config, app)
    out of the cyclic GC's scans for good (``gc.freeze``).

    A poll makes almost no objects the GC tracks (rows are untracked structs, no record per
    row), so the collections that remain are the occasional full ones, and those no longer
    walk the startup heap: ``python -m bench`` measures both (docs/performance.md). The
    thresholds stay the defaults: a poll triggers no gen-0 collection to save.
    """
    gc.collect()
    gc.freeze()
