"""What a provider module implements: its target options, statuses and page walk."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Generic, TypeVar

from exporter.fetch import PageFetcher
from exporter.records import Phase, SessionRecord
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
    """Adapter from one provider's list API to normalized :class:`SessionRecord` pages."""

    id: ClassVar[str]
    path: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    def __init__(self, target: TargetT) -> None:
        self.target = target

    @abstractmethod
    def statuses(self) -> Mapping[str, Phase]:
        """The documented statuses this target counts; each is exported, with 0 when empty."""

    @abstractmethod
    def pages(self, fetcher: PageFetcher) -> AsyncIterator[Sequence[SessionRecord]]:
        """Walk the list endpoint, yielding each page's sessions as records."""
