"""What a provider module implements: its target options, statuses and page walk.

Wire details that differ per provider are hooks with defaults here, which a provider
overrides (usually with a function of :mod:`exporter.providers.wire`): how its error
bodies read, what unit its rate-limit reset has, and extra headers for every request.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import ClassVar, Generic, TypeVar

from exporter.core.records import Phase
from exporter.providers import wire
from exporter.providers.rows import Page
from exporter.providers.target import TargetBase
from exporter.upstream.fetch import PageFetcher, default_rate_limit_reset


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
    row_fields: ClassVar[tuple[str, ...]] = ()
    """The fields an invalid row is counted under (each exported, 0 when none)."""

    def __init__(self, target: TargetT) -> None:
        self.target = target

    @abstractmethod
    def statuses(self) -> Mapping[str, Phase]:
        """The documented statuses this target counts; each is exported, with 0 when empty."""

    def reported(self) -> Capabilities:
        """The facts the last walk's answers carried (:attr:`capabilities` or fewer): a
        provider whose answers come in more than one shape narrows it per walk."""
        return self.capabilities

    def counts_only_listed(self) -> bool:
        """Whether a row in a status outside :meth:`statuses` is dropped (and counted so)."""
        return False

    def request_headers(self) -> Mapping[str, str]:
        """Extra headers for every request of this target (never ``Authorization``)."""
        return {}

    def auth(self) -> tuple[str, str]:
        """The header the key is sent in, and the text before the key."""
        return ("Authorization", "Bearer ")

    @abstractmethod
    def pages(self, fetcher: PageFetcher) -> AsyncIterator[Page]:
        """Walk the list endpoint, yielding its rows a page (or a chunk of one) at a time."""

    @staticmethod
    def error_detail(body: bytes) -> str:
        """The human part of an error body, for ``HTTP <status>: <detail>`` (may be ``""``)."""
        return wire.generic_error_detail(body)

    @staticmethod
    def rate_limit_reset(headers: Mapping[str, str], now: float) -> float | None:
        """The rate-limit reset of an answer as a unix time in seconds, or None.

        The default: ``X-RateLimit-Reset``/``RateLimit-Reset`` above 1e9 is a unix time,
        else seconds from ``now``.
        """
        return default_rate_limit_reset(headers, now)
