"""AGI agent sessions: one ``GET /v1/sessions`` answering a bare JSON array, no paging.

The list holds every session, live and finished. ``status`` is matched
case-insensitively against the seven documented values (see ``STATUS_PHASES``):
``initializing`` is ``pending``; ``ready``, ``running`` and ``paused`` are ``live``;
``completed`` and ``terminated`` are ``ended``; ``error`` is ``failed``. Any other value
keeps its lower-cased name with phase ``unknown``. ``created_at`` is the creation time
and ``agent_name`` the session's kind; the API reports no deadline, activity or leases.

The whole list arrives in one answer, so ``max_response_bytes`` bounds it: a larger
answer fails the poll with reason ``too_large``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import ClassVar, Literal

from exporter.fetch import PageFetcher
from exporter.providers import fields
from exporter.providers.base import Capabilities, Provider
from exporter.records import Phase, SessionRecord
from exporter.schema import TargetBase

STATUS_PHASES: Mapping[str, Phase] = {
    "initializing": Phase.PENDING,
    "ready": Phase.LIVE,
    "running": Phase.LIVE,
    "paused": Phase.LIVE,
    "completed": Phase.ENDED,
    "terminated": Phase.ENDED,
    "error": Phase.FAILED,
}


class AgiTarget(TargetBase):
    """An AGI (agi.tech) account."""

    default_base_url: ClassVar[str] = "https://api.agi.tech"

    provider: Literal["agi"]


class AgiProvider(Provider[AgiTarget]):
    """One request: the answer is the whole list as a bare array."""

    id = "agi"
    path = "/v1/sessions"
    capabilities = Capabilities()

    def statuses(self) -> Mapping[str, Phase]:
        return STATUS_PHASES

    async def pages(self, fetcher: PageFetcher) -> AsyncIterator[Sequence[SessionRecord]]:
        rows = fields.as_list(await fetcher.get_json(), "response")
        yield [parse_row(row, f"response[{i}]") for i, row in enumerate(rows)]


def parse_row(value: object, where: str) -> SessionRecord:
    """One AGI ``Session`` as a record."""
    row = fields.as_object(value, where)
    status = fields.text(row, "status", where).strip().lower()
    return SessionRecord(
        id=fields.text(row, "session_id", where),
        status=status,
        phase=STATUS_PHASES.get(status, Phase.UNKNOWN),
        created=fields.timestamp(row, "created_at", where),
        kind=fields.optional_text(row, "agent_name", where),
    )
