"""Test helpers: run the real pollers against simulators and read the exposition back."""

from __future__ import annotations

import asyncio
import shutil
import socket
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter.config.settings import Settings
from exporter.exposition.collector import SessionCollector, new_registry
from exporter.polling.runtime import new_pollers, new_store
from exporter.polling.state import Store
from exporter.upstream.client import new_client_session

KEY = "test-key-0123456789"
NOW = 1_767_225_600.0
"""A fixed "now" (2026-01-01T00:00:00Z) for test data and the clock of in-process polls:
no test module reads the wall clock when it is imported, so the time between collection
and a test's run (170 s on a loaded machine) cannot push data past a deadline or margin."""


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def console_script() -> str:
    """The installed ``session-exporter`` script of the running virtual environment."""
    found = shutil.which("session-exporter", path=str(Path(sys.executable).parent))
    assert found is not None, "session-exporter is not installed in this environment"
    return found


def settings_for(*targets: Mapping[str, Any], **top: Any) -> Settings:
    """Settings for ``targets`` (each gets ``api_key: KEY`` unless it names a key source)."""
    full = []
    for target in targets:
        entry = dict(target)
        if not {"api_key", "api_key_env", "api_key_file"} & entry.keys():
            entry["api_key"] = KEY
        full.append(entry)
    return Settings(targets=full, **top)


async def poll_all(
    settings: Settings,
    *,
    store: Store | None = None,
    rounds: int = 1,
    clock: Callable[[], float] = time.time,
) -> Store:
    """Poll every target ``rounds`` times through the real pollers and HTTP client."""
    store = store or new_store(settings)
    async with new_client_session() as session:
        pollers = new_pollers(settings, session, store, clock=clock)
        for _ in range(rounds):
            await asyncio.gather(*(p.poll() for p in pollers))
    return store


@dataclass(frozen=True)
class Exposition:
    """A parsed text exposition: every sample by name and labels."""

    text: str
    samples: Mapping[tuple[str, frozenset[tuple[str, str]]], float]

    @classmethod
    def parse(cls, text: str) -> Exposition:
        samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return cls(text=text, samples=samples)

    def get(self, name: str, **labels: str) -> float | None:
        """The one sample of ``name`` whose labels include ``labels``, or None when absent."""
        found = self.select(name, **labels)
        if len(found) > 1:
            raise AssertionError(f"{len(found)} series of {name} match {labels}: {found}")
        return next(iter(found.values()), None)

    def select(self, name: str, **labels: str) -> dict[frozenset[tuple[str, str]], float]:
        """Every sample of ``name`` whose labels include ``labels``."""
        want = set(labels.items())
        return {lbl: v for (n, lbl), v in self.samples.items() if n == name and want <= lbl}

    def by(self, name: str, label: str, **labels: str) -> dict[str, float]:
        """Samples of ``name`` matching ``labels``, keyed by the value of ``label``."""
        return {dict(lbl)[label]: v for lbl, v in self.select(name, **labels).items()}

    def names(self) -> set[str]:
        """Every sample name present."""
        return {name for name, _ in self.samples}


def scrape(store: Store, *, clock: Callable[[], float] = time.time) -> Exposition:
    """Render the store exactly as /metrics would (text format) and parse it."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(SessionCollector(store, clock=clock))
    return Exposition.parse(generate_latest(registry).decode())


def rows(
    factory: Callable[..., dict[str, Any]], specs: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Build dataset rows from keyword specs with a provider's row factory."""
    return [factory(**spec) for spec in specs]


__all__ = [
    "KEY",
    "Exposition",
    "console_script",
    "free_port",
    "new_registry",
    "poll_all",
    "rows",
    "scrape",
    "settings_for",
]


def invalid_rows(
    store: Store, name: str, *, clock: Callable[[], float] = time.time
) -> dict[str, float]:
    """The target's non-zero ``sessions_exporter_invalid_rows`` by field, from a scrape."""
    counts = scrape(store, clock=clock).by("sessions_exporter_invalid_rows", "field", target=name)
    return {field: n for field, n in counts.items() if n}


def invalid_example(store: Store, name: str) -> str:
    """The example message of the target's invalid rows in its last successful poll."""
    aggregate = store.snapshots[name].aggregate
    assert aggregate is not None
    assert aggregate.invalid_example is not None
    return aggregate.invalid_example


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """A YAML "billion laughs": a few hundred bytes whose aliases expand to width**levels
    nodes (9**9, about 387 million, by default), under a ``bomb`` key."""
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * width)}]")
    return "bomb:\n" + "".join(f"  {line}\n" for line in lines)
