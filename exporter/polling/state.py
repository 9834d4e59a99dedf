"""The latest poll result of every target, swapped in whole with one assignment per poll."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from exporter.polling.aggregate import Aggregate
from exporter.upstream.errors import Reason
from exporter.upstream.fetch import RateLimitInfo

_NO_ERRORS: Mapping[Reason, int] = MappingProxyType(dict.fromkeys(Reason, 0))
_EMPTY: Mapping[str, int] = MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetSnapshot:
    """Everything the exporter shows about one target, as of its last poll.

    Counters are cumulative since the process started; ``aggregate`` is the
    last *successful* poll's data and ``last_success`` says how old it is.
    """

    name: str
    provider: str
    stale_after: float
    polls: int = 0
    failures: int = 0
    """Consecutive failed polls (0 after a success): what the poll loop backs off by."""
    up: bool = False
    last_poll: float | None = None
    last_success: float | None = None
    poll_duration: float | None = None
    aggregate: Aggregate | None = None
    error: str | None = None
    error_reason: Reason | None = None
    errors: Mapping[Reason, int] = field(default_factory=lambda: _NO_ERRORS)
    requests: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    pages: int = 0
    upstream_errors: int = 0
    folded_label_values: int = 0
    retries: int = 0
    rate_limit: RateLimitInfo = field(default_factory=RateLimitInfo)
    live_seconds: float = 0.0
    """Session-seconds in phase pending or live, summed over the successful polls."""
    price_per_session_hour: float | None = None
    """The target's configured price of a session-hour (its ``price_per_session_hour``)."""

    @property
    def counted_until(self) -> float | None:
        """Up to when ``live_seconds`` has counted: the last successful poll's ``now``.

        Not ``last_success`` (when that poll finished): the next poll's ``now`` is taken when
        it starts, so counting from a finish would drop each poll's own duration.
        """
        return None if self.aggregate is None else self.aggregate.observed

    @property
    def polled(self) -> bool:
        """Whether the target has completed at least one poll, good or bad."""
        return self.polls > 0

    def fresh_aggregate(self, now: float) -> Aggregate | None:
        """The session data while it is younger than ``stale_after``, else ``None``."""
        if self.aggregate is None or self.last_success is None:
            return None
        if now - self.last_success > self.stale_after:
            return None
        return self.aggregate

    def after_poll(
        self,
        *,
        finished: float,
        duration: float,
        aggregate: Aggregate | None,
        reason: Reason | None,
        error: str | None,
        requests: Mapping[str, int],
        pages: int,
        upstream_errors: int = 0,
        retries: int = 0,
        rate_limit: RateLimitInfo | None = None,
    ) -> TargetSnapshot:
        """The next snapshot: this one with a poll's outcome folded in."""
        merged = dict(self.requests)
        for code, count in requests.items():
            merged[code] = merged.get(code, 0) + count
        errors = self.errors
        if reason is not None:
            errors = MappingProxyType({**errors, reason: errors[reason] + 1})
        ok = reason is None
        return replace(
            self,
            polls=self.polls + 1,
            failures=0 if ok else self.failures + 1,
            up=ok,
            last_poll=finished,
            last_success=finished if ok else self.last_success,
            poll_duration=duration,
            aggregate=aggregate if ok else self.aggregate,
            error=error,
            error_reason=reason,
            errors=errors,
            requests=MappingProxyType(merged),
            pages=self.pages + pages,
            upstream_errors=self.upstream_errors + upstream_errors,
            folded_label_values=self.folded_label_values
            + (aggregate.folded_label_values if aggregate else 0),
            retries=self.retries + retries,
            live_seconds=self.live_seconds + (aggregate.live_seconds if aggregate else 0.0),
            rate_limit=rate_limit
            if rate_limit is not None and rate_limit.seen
            else self.rate_limit,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigStatus:
    """The loaded config's identity and the outcome of reloads, for the config metrics."""

    hash: float = 0.0
    last_reload_ok: bool = True
    last_success: float | None = None
    reloads_ok: int = 0
    reloads_failed: int = 0
    shard: int = 0
    total_shards: int = 1


class Store:
    """Holds the current snapshot of each target, and the config's status.

    ``snapshots`` is an immutable mapping replaced by a single assignment on
    every change (a caller that caches by its identity sees every change), so
    a reader (the collector) always sees a consistent view.
    """

    def __init__(
        self, snapshots: Iterable[TargetSnapshot], *, config: ConfigStatus | None = None
    ) -> None:
        self.snapshots: Mapping[str, TargetSnapshot] = MappingProxyType(
            {s.name: s for s in snapshots}
        )
        self.config = config or ConfigStatus()

    def publish(self, snapshot: TargetSnapshot) -> None:
        """Replace one target's snapshot (ignored for a target no longer configured)."""
        if snapshot.name in self.snapshots:
            self.snapshots = MappingProxyType({**self.snapshots, snapshot.name: snapshot})

    def retarget(self, snapshots: Mapping[str, TargetSnapshot], config: ConfigStatus) -> None:
        """After a reload: the new set of targets, and the new config status."""
        self.config = config
        self.snapshots = MappingProxyType(dict(snapshots))

    def set_config(self, config: ConfigStatus) -> None:
        """A new config status (a failed reload); the snapshots mapping is renewed with it."""
        self.config = config
        self.snapshots = MappingProxyType(dict(self.snapshots))

    def waiting(self) -> list[str]:
        """Names of targets still waiting for their first poll."""
        return [s.name for s in self.snapshots.values() if not s.polled]
