"""What a provider module implements: its target options, statuses and page walk."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import ClassVar, Generic, TypeVar

from exporter.fetch import PageFetcher
from exporter.providers.rows import Page
from exporter.records import Phase
from exporter.schema import TargetBase


@dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    """Which optional facts a provider reports; metrics for missing ones are absent."""

    deadlines: bool = False
    leases: bool = False
    activity: bool = False
    executions: bool = False


TargetT = TypeVar("TargetT", bound=TargetBase)


class Provider(ABC, Generic[TargetT]):
    """Adapter from one provider's list API to pages of rows the aggregate counts."""

    id: ClassVar[str]
    path: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    def __init__(self, target: TargetT) -> None:
        self.target = target

    @abstractmethod
    def statuses(self) -> Mapping[str, Phase]:
        """The documented statuses this target counts; each is exported, with 0 when empty."""

    def counts_only_listed(self) -> bool:
        """Whether a row in a status outside :meth:`statuses` is dropped (and counted so)."""
        return False

    def request_headers(self) -> Mapping[str, str]:
        """Headers sent on every request besides ``Authorization`` (none by default)."""
        return {}

    @abstractmethod
    def pages(self, fetcher: PageFetcher) -> AsyncIterator[Page]:
        """Walk the list endpoint, yielding its rows a page (or a chunk of one) at a time."""
