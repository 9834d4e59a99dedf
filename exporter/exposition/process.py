"""The exporter's own process series: memory, CPU, file descriptors, start time, GC, Python."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector

PROCESS_TTL = 1.0
"""Seconds the rendered process series are reused (:class:`exporter.exposition.cache.Runtime`)."""


def process_registry() -> CollectorRegistry:
    """A private registry holding prometheus_client's standard process, platform and GC
    collectors: ``process_*`` (Linux ``/proc`` only), ``python_info`` and ``python_gc_*``."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry
