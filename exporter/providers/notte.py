"""Notte browser sessions: ``GET /sessions`` with ``page``/``page_size`` paging and deadlines.

A session's deadline is the earlier of ``created_at + max_duration_minutes`` (15 when
absent, the API's default) and ``last_accessed_at + idle_timeout_minutes``.
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
    "active": Phase.LIVE,
    "closed": Phase.ENDED,
    "timed_out": Phase.ENDED,
    "error": Phase.FAILED,
}
ACTIVE_ONLY: Mapping[str, Phase] = {"active": Phase.LIVE}
DEFAULT_MAX_DURATION_MINUTES = 15
PAGE_SIZE = 100


class NotteTarget(TargetBase):
    """A Notte account."""

    default_base_url: ClassVar[str] = "https://api.notte.cc"

    provider: Literal["notte"]
    only_active: bool = True


class NotteProvider(Provider[NotteTarget]):
    """Pages ``page=1,2,…`` with ``page_size=100`` while ``has_next`` is true."""

    id = "notte"
    path = "/sessions"
    capabilities = Capabilities(deadlines=True, activity=True)

    def statuses(self) -> Mapping[str, Phase]:
        return ACTIVE_ONLY if self.target.only_active else STATUS_PHASES

    async def pages(self, fetcher: PageFetcher) -> AsyncIterator[Sequence[SessionRecord]]:
        page = 1
        only_active = "true" if self.target.only_active else "false"
        while True:
            params = {"page": str(page), "page_size": str(PAGE_SIZE), "only_active": only_active}
            body = fields.as_object(await fetcher.get_json(params), "response")
            rows = fields.as_list(body.get("items"), "response.items")
            has_next = fields.boolean(body, "has_next", "response")
            yield [parse_row(row, f"page[{page}].items[{i}]") for i, row in enumerate(rows)]
            if not has_next:
                return
            page += 1


def parse_row(value: object, where: str) -> SessionRecord:
    """One Notte ``SessionResponse`` as a record, with its deadline computed."""
    row = fields.as_object(value, where)
    status = fields.text(row, "status", where).strip().lower()
    created = fields.timestamp(row, "created_at", where)
    accessed = fields.optional_timestamp(row, "last_accessed_at", where)
    max_minutes = fields.optional_integer(row, "max_duration_minutes", where)
    idle_minutes = fields.optional_integer(row, "idle_timeout_minutes", where)
    deadline = created + 60.0 * (
        DEFAULT_MAX_DURATION_MINUTES if max_minutes is None else max_minutes
    )
    if accessed is not None and idle_minutes is not None:
        deadline = min(deadline, accessed + 60.0 * idle_minutes)
    return SessionRecord(
        id=fields.text(row, "session_id", where),
        status=status,
        phase=STATUS_PHASES.get(status, Phase.UNKNOWN),
        created=created,
        deadline=deadline,
        last_activity=accessed,
        kind=fields.optional_text(row, "browser_type", where),
    )
