"""Building the parts both ``serve`` and ``once`` run: store, registry, HTTP client, pollers."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

import aiohttp
from prometheus_client import CollectorRegistry

from exporter import __version__
from exporter.collector import SessionCollector
from exporter.config import Settings
from exporter.poller import TargetPoller
from exporter.state import ConfigStatus, Store
from exporter.supervisor import config_hash, fresh_snapshot

USER_AGENT = f"session-exporter/{__version__}"


def new_store(settings: Settings) -> Store:
    """A store with an empty (never polled) snapshot per target of this replica's shard, and
    the config's hash (``once`` shows the same ``sessions_exporter_config_hash`` as ``serve``)."""
    return Store(
        (fresh_snapshot(settings, t) for t in settings.own_targets()),
        config=ConfigStatus(
            hash=config_hash(settings), shard=settings.shard, total_shards=settings.total_shards
        ),
    )


def new_registry(store: Store) -> CollectorRegistry:
    """A private registry holding only the session collector (no process/GC noise)."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(SessionCollector(store))
    return registry


def new_client_session() -> aiohttp.ClientSession:
    """The one HTTP client shared by every target (timeouts are set per request)."""
    return aiohttp.ClientSession(
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        # no connection cap: each target walks its pages itself (a bounded few at a time),
        # and a shared cap would let hanging targets on one host starve the others
        connector=aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=300),
        raise_for_status=False,
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
