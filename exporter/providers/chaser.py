"""Chaser browser sessions: ``GET /v1/sessions`` with ``limit``/``offset`` paging and leases.

Chaser's ``status`` is free-form. The exporter maps it case-insensitively to a phase
(see ``STATUS_PHASES``, documented in the README); any other value keeps its
lower-cased name with phase ``unknown``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from exporter.fetch import PageFetcher
from exporter.providers import fields
from exporter.providers.base import Capabilities, Provider
from exporter.records import Phase, SessionRecord
from exporter.schema import TargetBase

STATUS_PHASES: Mapping[str, Phase] = {
    "pending": Phase.PENDING,
    "starting": Phase.PENDING,
    "running": Phase.LIVE,
    "active": Phase.LIVE,
    "idle": Phase.LIVE,
    "stopping": Phase.LIVE,
    "stopped": Phase.ENDED,
    "terminated": Phase.ENDED,
    "completed": Phase.ENDED,
    "expired": Phase.ENDED,
    "failed": Phase.FAILED,
    "error": Phase.FAILED,
}


class ChaserTarget(TargetBase):
    """A Chaser account."""

    default_base_url: ClassVar[str] = "https://api.chaser.sh"

    provider: Literal["chaser"]
    page_size: Annotated[int, Field(ge=1, le=1000)] = 100


class ChaserProvider(Provider[ChaserTarget]):
    """Pages ``limit``/``offset`` until ``total`` sessions have been walked."""

    id = "chaser"
    path = "/v1/sessions"
    capabilities = Capabilities(leases=True)

    def statuses(self) -> Mapping[str, Phase]:
        return STATUS_PHASES

    async def pages(self, fetcher: PageFetcher) -> AsyncIterator[Sequence[SessionRecord]]:
        offset = 0
        while True:
            body = fields.as_object(
                await fetcher.get_json(
                    {"limit": str(self.target.page_size), "offset": str(offset)}
                ),
                "response",
            )
            rows = fields.as_list(body.get("sessions"), "response.sessions")
            total = fields.integer(body, "total", "response")
            yield [parse_row(row, f"sessions[{offset + i}]") for i, row in enumerate(rows)]
            offset += len(rows)
            if not rows or offset >= total:
                return


def parse_row(value: object, where: str) -> SessionRecord:
    """One Chaser ``SessionInfo`` as a record."""
    row = fields.as_object(value, where)
    status = fields.text(row, "status", where).strip().lower()
    return SessionRecord(
        id=fields.text(row, "id", where),
        status=status,
        phase=STATUS_PHASES.get(status, Phase.UNKNOWN),
        created=fields.timestamp(row, "created_at", where),
        leases=fields.optional_integer(row, "active_connection_leases", where),
        kind=fields.optional_text(row, "session_type", where),
    )
