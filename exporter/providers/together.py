"""Together Code Interpreter sessions: one ``GET /v1/tci/sessions``, no paging, no status.

The API lists only the currently active sessions and has no status field, so every
listed session is counted as status ``active``, phase ``live``. Per session:
``started_at`` is the creation time, ``expires_at`` the deadline (a session still
listed after it is overdue), ``last_execute_at`` the last activity and
``execute_count`` the executions summed into ``sessions_executions``.

A row without a readable ``id`` is left out; a ``started_at`` that is missing or
unreadable, or a value of the wrong type in another field, makes that fact unknown and
is counted in ``sessions_exporter_invalid_rows`` (one bad row never fails the poll).
``expires_at``, ``last_execute_at`` and ``execute_count`` are required by the spec too,
but a null or missing one only makes that fact unknown, and is not counted as invalid.

The response's top-level ``errors`` array (strings or objects) is counted in
``sessions_exporter_upstream_errors_total`` and its first ten are logged; the poll still
exports the sessions it got. The array is read as rows are (a chunk at a time, only the
logged items decoded), so a hostile one of millions of items neither holds the loop nor
builds them all.
When ``data.sessions`` is missing or malformed the poll fails with a schema error whose
message quotes the first upstream error.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import ClassVar, Literal

import msgspec

from exporter.core.records import Phase
from exporter.providers import envelope, wire
from exporter.providers.base import Capabilities, Provider
from exporter.providers.rows import (
    CHUNK_BYTES,
    Aware,
    Count,
    Page,
    RowCodec,
    RowStruct,
    Text,
    iter_array,
    raw_kind,
)
from exporter.providers.target import TargetBase
from exporter.upstream.errors import SchemaError, brief
from exporter.upstream.fetch import PageFetcher

STATUS = "active"
STATUS_PHASES: Mapping[str, Phase] = {STATUS: Phase.LIVE}
ERROR_TEXT_LIMIT = 200
"""Upstream error messages are cut to this many characters before they are logged."""
ERRORS_KEPT = 10
"""Listed upstream errors read and logged per poll; the rest are counted only."""
ERROR_ITEM_BYTES = 64 * 1024
"""A listed error longer than this is shown by its first bytes, not decoded."""


class TogetherTarget(TargetBase):
    """A Together AI account's Code Interpreter sessions."""

    default_base_url: ClassVar[str] = "https://api.together.ai/v1"

    provider: Literal["together"]


class TogetherRow(RowStruct, gc=False):
    """One Code Interpreter session; every listed session is ``active``."""

    id: Text
    created: Aware = msgspec.field(name="started_at")
    deadline: Aware | None = msgspec.field(name="expires_at", default=None)
    last_activity: Aware | None = msgspec.field(name="last_execute_at", default=None)
    executions: Count | None = msgspec.field(name="execute_count", default=None)
    status: ClassVar[str] = STATUS
    leases: ClassVar[None] = None
    kind: ClassVar[None] = None


CODEC = RowCodec(TogetherRow)


class TogetherProvider(Provider[TogetherTarget]):
    """One request: the whole list comes in a single answer."""

    id = "together"
    path = "/tci/sessions"
    capabilities = Capabilities(deadlines=True, activity=True, executions=True)
    row_fields = CODEC.fields
    error_detail = staticmethod(wire.together_error_detail)

    def statuses(self) -> Mapping[str, Phase]:
        return STATUS_PHASES

    async def pages(self, fetcher: PageFetcher) -> AsyncIterator[Page]:
        body = envelope.decode_object(await fetcher.get_body(), "response")
        messages, more = await error_messages(body.get("errors"))
        if messages:
            fetcher.report_upstream_errors(messages, more=more)
        try:
            data = envelope.obj(body.get("data"), "response.data")
            rows = envelope.array(data.get("sessions"), "response.data.sessions")
        except SchemaError as exc:
            if not messages:
                raise
            raise SchemaError(f"{exc.message} (the response's errors[0]: {messages[0]})") from None
        async for page in CODEC.pages(rows, where=lambda i: f"data.sessions[{i}]", status=STATUS):
            yield page


async def error_messages(value: msgspec.Raw | None) -> tuple[list[str], int]:
    """The first :data:`ERRORS_KEPT` of the response's ``errors`` as short strings, and how
    many more it lists (an absent or null array is no errors).

    Read as rows are: a chunk of whole items at a time, with a turn for the event loop between
    chunks, and only the kept items decoded; the others are counted, never built.
    """
    if value is None:
        return [], 0
    view = memoryview(value)
    text = bytes(view[:_HEAD]).lstrip()
    if text.startswith(b"null"):
        return [], 0
    if not text.startswith(b"["):
        raise SchemaError(f"response.errors: expected an array, got {raw_kind(text)}")
    kept: list[str] = []
    listed = 0
    for chunk in iter_array(view, CHUNK_BYTES):
        items = _RAW_ITEMS.decode(chunk)
        listed += len(items)
        for item in items[: ERRORS_KEPT - len(kept)]:
            kept.append(_error_text(_decoded(item)))
        del items
        await asyncio.sleep(0)
    return kept, listed - len(kept)


_HEAD = 16
_RAW_ITEMS = msgspec.json.Decoder(list[msgspec.Raw])


def _decoded(item: msgspec.Raw) -> object:
    """One listed error, decoded when it is of a reasonable size (else its first bytes)."""
    if len(item) > ERROR_ITEM_BYTES:
        return bytes(memoryview(item)[:ERROR_TEXT_LIMIT]).decode("utf-8", "replace")
    return msgspec.json.decode(item)


def _error_text(item: object) -> str:
    if isinstance(item, Mapping):
        message = item.get("message")
        if isinstance(message, str) and message:
            item = message
    return brief(item, limit=ERROR_TEXT_LIMIT)
