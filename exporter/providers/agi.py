"""AGI agent sessions: one ``GET /v1/sessions`` answering a bare JSON array, no paging.

The list holds every session, live and finished. ``status`` is matched
case-insensitively against the spec's seven values and the SDK's two more (see
``STATUS_PHASES``): ``initializing`` is ``pending``; ``ready``, ``running``, ``paused``
and ``waiting_for_input`` are ``live``; ``completed``, ``terminated`` and ``finished`` are
``ended``; ``error`` is ``failed``. Any other value
keeps its lower-cased name with phase ``unknown``. ``created_at`` is the creation time
and ``agent_name`` the session's kind; the API reports no deadline, activity or leases.

The whole list arrives in one answer, so ``max_response_bytes`` bounds it: a larger
answer fails the poll with reason ``too_large``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import ClassVar, Literal

import msgspec

from exporter.core.records import Phase
from exporter.providers import envelope, wire
from exporter.providers.base import Capabilities, Provider
from exporter.providers.rows import Aware, Page, RowCodec, RowStruct, Text
from exporter.providers.target import TargetBase
from exporter.upstream.errors import SchemaError
from exporter.upstream.fetch import PageFetcher

STATUS_PHASES: Mapping[str, Phase] = {
    "initializing": Phase.PENDING,
    "ready": Phase.LIVE,
    "running": Phase.LIVE,
    "paused": Phase.LIVE,
    "waiting_for_input": Phase.LIVE,
    "completed": Phase.ENDED,
    "terminated": Phase.ENDED,
    "finished": Phase.ENDED,
    "error": Phase.FAILED,
}
"""The spec's seven statuses and the SDK's ``waiting_for_input`` and ``finished``
(agi/types/shared.py)."""


class AgiTarget(TargetBase):
    """An AGI (agi.tech) account."""

    default_base_url: ClassVar[str] = "https://api.agi.tech"

    provider: Literal["agi"]


class AgiRow(RowStruct, gc=False):
    """One ``Session``, the fields the exporter reads."""

    id: Text = msgspec.field(name="session_id")
    status: Text
    created: Aware = msgspec.field(name="created_at")
    kind: str | None = msgspec.field(name="agent_name", default=None)
    deadline: ClassVar[None] = None
    last_activity: ClassVar[None] = None
    leases: ClassVar[None] = None
    executions: ClassVar[None] = None


CODEC = RowCodec(AgiRow)


class AgiProvider(Provider[AgiTarget]):
    """One request: the answer is the whole list as a bare array."""

    id = "agi"
    path = "/v1/sessions"
    capabilities = Capabilities()
    row_fields = CODEC.fields
    error_detail = staticmethod(wire.agi_error_detail)

    def statuses(self) -> Mapping[str, Phase]:
        return STATUS_PHASES

    async def pages(self, fetcher: PageFetcher) -> AsyncIterator[Page]:
        top = envelope.decode_any(await fetcher.get_body())
        if not isinstance(top, bytes):
            raise SchemaError("response: expected an array, got dict")
        async for page in CODEC.pages(top, where=lambda i: f"response[{i}]"):
            yield page
