"""One poll task per target, and applying a new config to them without a restart."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp
import structlog

from exporter.config.settings import ConfigError, Settings, load_settings
from exporter.core import logs
from exporter.polling.poller import TargetPoller
from exporter.polling.state import Store, TargetSnapshot
from exporter.providers import provider_for
from exporter.providers.target import TargetBase

log = structlog.get_logger("exporter.polling.supervisor")


def config_hash(settings: Settings) -> float:
    """A number identifying the config (48 bits of its SHA-256; keys are masked, not hashed).

    Sets (per_session's phases) are dumped sorted: their order changes from one process to
    the next (string hashes are randomized), and the same file must give the same number.
    """
    document = json.dumps(settings.model_dump(), default=_canonical, separators=(",", ":"))
    digest = hashlib.sha256(document.encode()).digest()
    return float(int.from_bytes(digest[:6], "big"))


def _canonical(value: object) -> object:
    if isinstance(value, set | frozenset):
        return sorted(value)
    return str(value)  # a masked key, a URL


FIRST_POLL_SPREAD = 0.01
"""Seconds of spread of the first polls per target: 1,000 targets start over 10 s (or over
their interval, when shorter), a handful within a few hundredths of a second."""


def first_poll_delay(name: str, window: float) -> float:
    """The wait before a target's first poll: its share of ``window``, from the SHA-256 of
    its name, the same in every process (as Prometheus offsets each target's scrapes), so the
    first polls of many targets spread over the window instead of starting as one herd."""
    digest = hashlib.sha256(name.encode()).digest()
    return window * int.from_bytes(digest[:8], "big") / 2**64


def fresh_snapshot(settings: Settings, target: TargetBase) -> TargetSnapshot:
    """A never-polled snapshot for ``target``."""
    return TargetSnapshot(
        name=target.name,
        provider=provider_for(target).id,
        stale_after=settings.staleness(target),
        price_per_session_hour=target.price_per_session_hour,
    )


def _unpriced(target: TargetBase) -> TargetBase:
    """``target`` without its price: a price is bookkeeping, changing it changes no poll."""
    return target.model_copy(update={"price_per_session_hour": None})


def _repriced(snapshot: TargetSnapshot, target: TargetBase) -> TargetSnapshot:
    """A kept target's snapshot with the reloaded price (its data and counters unchanged)."""
    if snapshot.price_per_session_hour == target.price_per_session_hour:
        return snapshot
    return replace(snapshot, price_per_session_hour=target.price_per_session_hour)


@dataclass(frozen=True, slots=True)
class Changes:
    """What a reload did to the targets, by name."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()


class Supervisor:
    """Runs a poll task per target of the current settings; ``reload`` swaps the settings.

    A reloaded config is validated first: when it is invalid the old one stays
    and the failure is logged and counted. Otherwise removed targets stop,
    added ones start, and changed ones (any key but the price, or the interval or staleness
    they inherit) restart with a fresh snapshot; unchanged targets keep polling
    undisturbed, their data and counters intact (a new price is simply shown). Only the
    targets of this replica's shard are polled; ``command_line`` (``--shard``,
    ``--total-shards``) is re-applied on every reload, so a reloaded config keeps the shard
    the replica was started with. A new ``log_level`` is applied, unless ``--log-level``
    pinned it.

    Each target's first poll (at start, or when a reload adds or changes it) waits its
    :func:`first_poll_delay` within ``first_poll_spread`` seconds per target of the shard
    (at most its interval); 0 starts every first poll at once.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        session: aiohttp.ClientSession,
        store: Store,
        clock: Callable[[], float] = time.time,
        command_line: Mapping[str, int] | None = None,
        first_poll_spread: float = FIRST_POLL_SPREAD,
    ) -> None:
        self.settings = settings
        self._spread = first_poll_spread
        self._command_line = dict(command_line or {})
        self._session = session
        self._store = store
        self._clock = clock
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._lock = asyncio.Lock()
        store.set_config(
            replace(
                store.config,
                hash=config_hash(settings),
                last_success=clock(),
                shard=settings.shard,
                total_shards=settings.total_shards,
            )
        )

    def start(self) -> None:
        """Start a poll task for every target of this replica's shard."""
        targets = self.settings.own_targets()
        for target in targets:
            self._start(self.settings, target, len(targets))

    async def stop(self) -> None:
        """Cancel every poll task and wait for them to end."""
        await self._cancel(list(self._tasks))

    def tasks(self) -> dict[str, asyncio.Task[None]]:
        """The running poll tasks by target name."""
        return dict(self._tasks)

    async def reload(self, path: Path) -> bool:
        """Load ``path``; apply it when valid. Returns whether the reload succeeded."""
        async with self._lock:
            try:
                # off the loop: key files are read and checked, within a timeout each
                settings = await asyncio.to_thread(
                    load_settings, path, command_line=self._command_line
                )
            except ConfigError as exc:
                problems = [str(p) for p in exc.problems]
            else:
                problems = []
            if problems:
                status = self._store.config
                self._store.set_config(
                    replace(status, last_reload_ok=False, reloads_failed=status.reloads_failed + 1)
                )
                log.error(
                    "config.reload_failed",
                    path=str(path),
                    problems=problems,
                    note="the previous config stays in force",
                )
                return False
            level = self.settings.log_level
            changes = await self._apply(settings)
            level_applied = settings.log_level != level and logs.follow_config_level(
                settings.log_level
            )
            log.info(
                "config.reloaded",
                path=str(path),
                added=list(changes.added),
                removed=list(changes.removed),
                changed=list(changes.changed),
                **({"log_level": settings.log_level} if level_applied else {}),
            )
            return True

    async def _apply(self, settings: Settings) -> Changes:
        old = {t.name: t for t in self.settings.own_targets()}
        new = {t.name: t for t in settings.own_targets()}
        removed = [name for name in old if name not in new]
        changed = [
            name for name in new if name in old and self._differs(settings, old[name], new[name])
        ]
        added = [name for name in new if name not in old]
        await self._cancel(removed + changed)
        current = self._store.snapshots
        snapshots = {
            name: _repriced(current[name], target)
            if name in old and name not in changed
            else fresh_snapshot(settings, target)
            for name, target in new.items()
        }
        status = self._store.config
        self._store.retarget(
            snapshots,
            replace(
                status,
                hash=config_hash(settings),
                last_reload_ok=True,
                last_success=self._clock(),
                reloads_ok=status.reloads_ok + 1,
                shard=settings.shard,
                total_shards=settings.total_shards,
            ),
        )
        if settings.listen != self.settings.listen:
            log.warning("config.listen_needs_restart", listen=settings.listen)
        self.settings = settings
        for name in added + changed:
            self._start(settings, new[name], len(new))
        return Changes(tuple(added), tuple(removed), tuple(changed))

    def _differs(self, settings: Settings, before: TargetBase, after: TargetBase) -> bool:
        return (
            _unpriced(before) != _unpriced(after)
            or self.settings.interval(before) != settings.interval(after)
            or self.settings.staleness(before) != settings.staleness(after)
        )

    def _start(self, settings: Settings, target: TargetBase, targets: int) -> None:
        """Start ``target``'s poll task; ``targets``: how many the shard has (the spread)."""
        poller = TargetPoller(
            target=target,
            interval=settings.interval(target),
            session=self._session,
            store=self._store,
            clock=self._clock,
        )
        window = min(settings.interval(target), self._spread * targets)
        delay = first_poll_delay(target.name, window)
        self._tasks[target.name] = asyncio.create_task(
            poller.run(first_delay=delay), name=f"poll:{target.name}"
        )

    async def _cancel(self, names: list[str]) -> None:
        tasks = [self._tasks.pop(name) for name in names if name in self._tasks]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
