"""The exporter's own process series: memory, CPU, file descriptors, start time, GC, Python."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.core import logs

PROCESS_TTL = 1.0
"""Seconds the rendered process series are reused (:class:`exporter.exposition.cache.Runtime`)."""


def process_registry(*, standard: bool = True) -> CollectorRegistry:
    """A private registry holding the exporter's dropped log lines and, unless ``standard``
    is off (``--web.disable-exporter-metrics``), prometheus_client's standard process,
    platform and GC collectors: ``process_*`` (Linux ``/proc`` only), ``python_info`` and
    ``python_gc_*``."""
    registry = CollectorRegistry(auto_describe=True)
    if standard:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
    registry.register(LogCollector())
    return registry


class LogCollector(Collector):
    """``sessions_exporter_log_lines_dropped_total``: log lines lost, not written.

    A line is dropped when the queue to the log writer is full (the reader of the logs is
    slower than the exporter writes, or stalled) or when the stream refuses it (closed).
    """

    def collect(self) -> Iterator[Metric]:
        """The count of dropped lines so far."""
        family = CounterMetricFamily(
            "sessions_exporter_log_lines_dropped",
            "Log lines dropped, not written: the log queue was full (a slow or stalled "
            "reader) or the stream refused them (closed), since the exporter started.",
        )
        family.add_metric([], logs.dropped_lines())
        yield family
