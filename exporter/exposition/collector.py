"""The custom collector: renders the latest target snapshots as fresh metric families."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from exporter import __version__
from exporter.core.records import SessionRecord
from exporter.polling.state import ConfigStatus, Store, TargetSnapshot

TARGET = ["provider", "target"]
STATUS = [*TARGET, "status", "phase"]
SESSION = [*TARGET, "session_id"]
_LAST = " (from the target's last successful poll)"


class SessionCollector(Collector):
    """Yields every family anew on each collect; a series exists only while its data does.

    Session series of a target whose last success is older than its
    ``stale_after`` are left out (Prometheus then marks them stale); the
    health series of every target are always present.

    With ``target`` it renders that one target only (``/probe``): its session and health
    series, and the exporter's build and shard series, none of the config's.
    """

    def __init__(
        self, store: Store, *, clock: Callable[[], float] = time.time, target: str | None = None
    ) -> None:
        self._store = store
        self._clock = clock
        self._target = target

    def describe(self) -> Iterator[Metric]:
        """The families this collector can produce, without samples."""
        return iter(_Families().all(config=self._target is None))

    def collect(self) -> Iterator[Metric]:
        """Fresh families from the snapshots current at this moment."""
        families = _Families()
        now = self._clock()
        config = self._store.config
        if self._target is None:
            for snapshot in self._store.snapshots.values():
                families.add(snapshot, now)
            families.add_config(config)
        else:
            only = self._store.snapshots.get(self._target)
            if only is not None:
                families.add(only, now)
        families.add_shard(config)
        return iter(families.all(config=self._target is None))


def target_families(snapshot: TargetSnapshot | None, now: float) -> list[Metric]:
    """The per-target families holding the series of ``snapshot`` alone (none without one).

    What a target shows depends on its snapshot and on whether its data is fresh at ``now``
    only: :mod:`exporter.exposition.cache` caches this per snapshot and freshness.
    """
    families = _Families()
    if snapshot is not None:
        families.add(snapshot, now)
    return families.per_target()


def exporter_families(config: ConfigStatus, *, with_config: bool = True) -> list[Metric]:
    """The exporter's own families: config status (unless not ``with_config``), shard, build."""
    families = _Families()
    if with_config:
        families.add_config(config)
    families.add_shard(config)
    return families.exporter(config=with_config)


class _Families:
    """One set of metric families being filled for a single collect."""

    def __init__(self) -> None:
        g, c = GaugeMetricFamily, CounterMetricFamily
        self.sessions = g(
            "sessions",
            "Sessions in each status" + _LAST + ". Where a target counts ended sessions over a "
            "history window (Trigger.dev's ended_window), ended statuses cover only sessions "
            "created within it.",
            labels=STATUS,
        )
        self.oldest = g(
            "sessions_oldest_created_timestamp_seconds",
            "Unix creation time of the oldest session in each status" + _LAST + ".",
            labels=STATUS,
        )
        self.overdue = g(
            "sessions_overdue",
            "Sessions still reported live whose deadline has passed" + _LAST + ".",
            labels=TARGET,
        )
        self.next_deadline = g(
            "sessions_next_deadline_timestamp_seconds",
            "Earliest deadline among sessions still reported live" + _LAST + ".",
            labels=TARGET,
        )
        self.leases = g(
            "sessions_connection_leases",
            "Active connection leases summed over pending and live sessions" + _LAST + ".",
            labels=TARGET,
        )
        self.unleased = g(
            "sessions_unleased",
            "Live sessions reporting exactly 0 connection leases" + _LAST + ".",
            labels=TARGET,
        )
        self.activity = g(
            "sessions_oldest_activity_timestamp_seconds",
            "Least recent last-activity time among live sessions" + _LAST + ".",
            labels=TARGET,
        )
        self.executions = g(
            "sessions_executions",
            "Code executions summed over pending and live sessions" + _LAST + ".",
            labels=TARGET,
        )
        self.ages = GaugeHistogramMetricFamily(
            "sessions_age_seconds",
            "Ages, measured at poll time, of sessions still reported live" + _LAST + ".",
            labels=TARGET,
        )
        self.info = g(
            "session_info",
            "One series per session, opt-in and capped to the oldest (per_session)" + _LAST + ".",
            labels=[*TARGET, "session_id", "status", "phase", "kind", "run_id"],
        )
        self.created = g(
            "session_created_timestamp_seconds",
            "Unix creation time of each session shown by session_info" + _LAST + ".",
            labels=SESSION,
        )
        self.deadline = g(
            "session_deadline_timestamp_seconds",
            "Deadline of each session shown by session_info, where it has one" + _LAST + ".",
            labels=SESSION,
        )
        self.session_leases = g(
            "session_connection_leases",
            "Connection leases of each session shown by session_info, where known" + _LAST + ".",
            labels=SESSION,
        )
        self.live_seconds = c(
            "sessions_live_seconds",
            "Session-seconds spent in phase pending or live, as observed by the successful "
            "polls since the target started (increase()/3600 is session-hours).",
            labels=TARGET,
        )
        self.price = g(
            "sessions_price_per_session_hour",
            "The configured price of one session-hour on the target's account, in its own "
            "currency (price_per_session_hour); absent without a price.",
            labels=TARGET,
        )
        self.invalid_rows = g(
            "sessions_exporter_invalid_rows",
            "Rows of the last successful poll with a field that could not be read (counted "
            "with that field unknown), or left out for an unreadable id or status.",
            labels=[*TARGET, "field"],
        )
        self.rows_dropped = g(
            "sessions_exporter_rows_dropped",
            "Rows of the last successful poll in a status the target does not count "
            "(Notte's only_active), left out of every count.",
            labels=TARGET,
        )
        self.left_out = g(
            "sessions_per_session_left_out",
            "Sessions in the per_session phases left out by max_series" + _LAST + ".",
            labels=TARGET,
        )
        self.up = g(
            "sessions_target_up",
            "1 when the target's last poll succeeded, else 0.",
            labels=TARGET,
        )
        self.last_success = g(
            "sessions_target_last_success_timestamp_seconds",
            "Unix time of the target's last successful poll.",
            labels=TARGET,
        )
        self.last_poll = g(
            "sessions_exporter_last_poll_timestamp_seconds",
            "Unix time the target's last poll finished, successful or not.",
            labels=TARGET,
        )
        self.duration = g(
            "sessions_exporter_poll_duration_seconds",
            "Wall time the target's last poll took, successful or not.",
            labels=TARGET,
        )
        self.polls = c(
            "sessions_exporter_polls",
            "Polls of the target completed since the exporter started.",
            labels=TARGET,
        )
        self.errors = c(
            "sessions_exporter_poll_errors",
            "Failed polls of the target by reason, since the exporter started.",
            labels=[*TARGET, "reason"],
        )
        self.requests = c(
            "sessions_exporter_api_requests",
            "Requests to the provider API by HTTP status code, since the exporter started.",
            labels=[*TARGET, "code"],
        )
        self.upstream = c(
            "sessions_exporter_upstream_errors",
            "Errors the provider reported inside otherwise successful answers, since start.",
            labels=TARGET,
        )
        self.folded = c(
            "sessions_exporter_label_values_folded",
            "Distinct status or kind values folded into 'other' by max_label_values, summed "
            "over polls since the exporter started.",
            labels=TARGET,
        )
        self.retries = c(
            "sessions_exporter_api_retries",
            "Requests to the provider retried within a poll (timeouts, 5xx, 429), since start.",
            labels=TARGET,
        )
        self.rate_remaining = g(
            "sessions_exporter_rate_limit_remaining",
            "Requests left in the provider's rate-limit window, from its latest answer's headers.",
            labels=TARGET,
        )
        self.rate_reset = g(
            "sessions_exporter_rate_limit_reset_timestamp_seconds",
            "Unix time the provider's rate-limit window resets, from its latest answer's headers.",
            labels=TARGET,
        )
        self.pages = c(
            "sessions_exporter_pages_fetched",
            "List pages fetched and decoded from the provider, since the exporter started.",
            labels=TARGET,
        )
        self.config_hash = g(
            "sessions_exporter_config_hash",
            "A number identifying the loaded config (48 bits of its SHA-256).",
        )
        self.config_ok = g(
            "sessions_exporter_config_last_reload_successful",
            "1 when the last config reload succeeded (or none was tried), 0 when it failed.",
        )
        self.config_time = g(
            "sessions_exporter_config_last_reload_success_timestamp_seconds",
            "Unix time the config in force was loaded (at start or by a reload).",
        )
        self.reloads = c(
            "sessions_exporter_config_reloads",
            "Config reloads by result (success or failure), since the exporter started.",
            labels=["result"],
        )
        self.shard_ordinal = g(
            "sessions_exporter_shard_ordinal",
            "The shard of targets this replica polls and exports (0 when not sharded).",
        )
        self.total_shards = g(
            "sessions_exporter_total_shards",
            "How many shards the targets are split into (1 when not sharded).",
        )
        self.build = g(
            "sessions_exporter_build_info",
            "Build of the running exporter; the value is always 1.",
            labels=["version", "python_version"],
        )

    def all(self, *, config: bool = True) -> list[Metric]:
        """Every family; without ``config`` the config's own families are left out."""
        return [*self.per_target(), *self.exporter(config=config)]

    def per_target(self) -> list[Metric]:
        """The families :meth:`add` fills: every series of theirs belongs to one target."""
        return [
            self.sessions,
            self.oldest,
            self.overdue,
            self.next_deadline,
            self.leases,
            self.unleased,
            self.activity,
            self.executions,
            self.ages,
            self.info,
            self.created,
            self.deadline,
            self.session_leases,
            self.left_out,
            self.live_seconds,
            self.price,
            self.invalid_rows,
            self.rows_dropped,
            self.up,
            self.last_success,
            self.last_poll,
            self.duration,
            self.polls,
            self.errors,
            self.requests,
            self.upstream,
            self.folded,
            self.retries,
            self.rate_remaining,
            self.rate_reset,
            self.pages,
        ]

    def exporter(self, *, config: bool = True) -> list[Metric]:
        """The exporter's own families (config, shard, build), after the per-target ones."""
        families: list[Metric] = []
        if config:
            families += [self.config_hash, self.config_ok, self.config_time, self.reloads]
        return [*families, self.shard_ordinal, self.total_shards, self.build_info()]

    def build_info(self) -> Metric:
        self.build.samples.clear()
        self.build.add_metric([__version__, platform.python_version()], 1)
        return self.build

    def add_config(self, config: ConfigStatus) -> None:
        self.config_hash.add_metric([], config.hash)
        self.config_ok.add_metric([], 1 if config.last_reload_ok else 0)
        if config.last_success is not None:
            self.config_time.add_metric([], config.last_success)
        self.reloads.add_metric(["success"], config.reloads_ok)
        self.reloads.add_metric(["failure"], config.reloads_failed)

    def add_shard(self, config: ConfigStatus) -> None:
        self.shard_ordinal.add_metric([], config.shard)
        self.total_shards.add_metric([], config.total_shards)

    def add(self, snap: TargetSnapshot, now: float) -> None:
        target = [snap.provider, snap.name]
        self._health(snap, target)
        data = snap.fresh_aggregate(now)
        if data is None:
            return
        for status, tally in data.statuses.items():
            labels = [*target, status, tally.phase.value]
            self.sessions.add_metric(labels, tally.count)
            if tally.oldest_created is not None:
                self.oldest.add_metric(labels, tally.oldest_created)
        for family, value in (
            (self.overdue, data.overdue),
            (self.next_deadline, data.next_deadline),
            (self.leases, data.leases),
            (self.unleased, data.unleased),
            (self.activity, data.oldest_activity),
            (self.executions, data.executions),
        ):
            if value is not None:
                family.add_metric(target, value)
        self.ages.add_metric(target, data.age_buckets, gsum_value=data.age_sum)
        for name, count in sorted(data.invalid.items()):
            self.invalid_rows.add_metric([*target, name], count)
        self.rows_dropped.add_metric(target, data.dropped)
        if data.detail is not None:
            self._detail(data.detail, target)
            self.left_out.add_metric(target, data.detail_left_out)

    def _detail(self, records: tuple[SessionRecord, ...], target: list[str]) -> None:
        for record in records:
            labels = [*target, record.id]
            values = [record.status, record.phase.value, record.kind or "", record.run_id or ""]
            self.info.add_metric([*labels, *values], 1)
            if record.created is not None:
                self.created.add_metric(labels, record.created)
            if record.deadline is not None:
                self.deadline.add_metric(labels, record.deadline)
            if record.leases is not None:
                self.session_leases.add_metric(labels, record.leases)

    def _health(self, snap: TargetSnapshot, target: list[str]) -> None:
        if snap.polled:  # absent until the first poll ends, so a restart raises no false alarm
            self.up.add_metric(target, 1 if snap.up else 0)
        if snap.last_success is not None:
            self.last_success.add_metric(target, snap.last_success)
        if snap.last_poll is not None:
            self.last_poll.add_metric(target, snap.last_poll)
        if snap.poll_duration is not None:
            self.duration.add_metric(target, snap.poll_duration)
        self.polls.add_metric(target, snap.polls)
        self.live_seconds.add_metric(target, snap.live_seconds)
        if snap.price_per_session_hour is not None:
            self.price.add_metric(target, snap.price_per_session_hour)
        for reason, count in snap.errors.items():
            self.errors.add_metric([*target, reason.value], count)
        for code, count in sorted(snap.requests.items()):
            self.requests.add_metric([*target, code], count)
        self.pages.add_metric(target, snap.pages)
        self.upstream.add_metric(target, snap.upstream_errors)
        self.folded.add_metric(target, snap.folded_label_values)
        self.retries.add_metric(target, snap.retries)
        if snap.rate_limit.remaining is not None:
            self.rate_remaining.add_metric(target, snap.rate_limit.remaining)
        if snap.rate_limit.reset is not None:
            self.rate_reset.add_metric(target, snap.rate_limit.reset)


def new_registry(store: Store) -> CollectorRegistry:
    """A private registry holding only the session collector (no process/GC noise)."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(SessionCollector(store))
    return registry
