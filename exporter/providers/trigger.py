"""Trigger.dev sessions: ``GET /api/v1/sessions``, one cursor-paged query per counted status.

A session row has no status field; status is only a filter. So each poll makes one
filtered query per counted status and pages it to the end (``page[size]=100``, then
``page[after]=<pagination.next>`` while ``pagination.next`` is present):

- ``filter[status]=ACTIVE`` always, over every active session -> status ``active``,
  phase ``live``;
- ``filter[status]=CLOSED`` and ``filter[status]=EXPIRED`` with
  ``filter[createdAt][period]=<ended_window>`` -> statuses ``closed`` and ``expired``,
  phase ``ended``; both are skipped (and not exported) when ``ended_window`` is ``0``.

Ended counts cover sessions created within ``ended_window``.

The window is sent in its largest whole unit (``1d``, ``2h``, ``30m``, ``90s``), so it
must be a whole number of seconds. The optional ``type``, ``tags`` and
``task_identifier`` lists narrow every query (``filter[type]``, ``filter[tags]``,
``filter[taskIdentifier]``, comma-joined); they are sent only when non-empty.

Every request carries ``x-trigger-api-version: 2025-07-16``, as ``@trigger.dev/core`` 4.x
sends it (the API version its response schemas are written for), and, when the target sets
``branch``, ``x-trigger-branch: <branch>`` (a preview or dev branch of the environment).

Per session: ``createdAt`` is the creation time, ``expiresAt`` (nullable) the deadline,
``updatedAt`` the last activity and ``type`` the kind; with ``per_session`` on,
``currentRunId`` (nullable) is read too, as the ``run_id`` label of ``session_info``.

The server reads a page's ids from a delayed store and filters those rows again in memory,
so a page may be short, or empty, while ``pagination.next`` is set: only a missing ``next``
ends a walk. ``filter[createdAt][from|to]`` would take epoch milliseconds; the exporter
sends the window as ``filter[createdAt][period]``, which needs no clock. A cursor that
repeats within one status walk fails the poll with a schema error rather than looping;
``max_pages`` bounds the total number of pages over all queries of a poll.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Annotated, ClassVar, Literal

import msgspec
from pydantic import Field, field_validator

from exporter.core.records import Phase
from exporter.providers import envelope, fields, wire
from exporter.providers.base import Capabilities, Provider
from exporter.providers.paging import merged
from exporter.providers.rows import Aware, Page, RowCodec, RowStruct, Text
from exporter.providers.target import Duration, TargetBase
from exporter.upstream.errors import SchemaError, clip
from exporter.upstream.fetch import PageFetcher

STATUS_PHASES: Mapping[str, Phase] = {
    "active": Phase.LIVE,
    "closed": Phase.ENDED,
    "expired": Phase.ENDED,
}
ACTIVE_ONLY: Mapping[str, Phase] = {"active": Phase.LIVE}
ENDED_STATUSES = ("CLOSED", "EXPIRED")
PAGE_SIZE = 100
DEFAULT_ENDED_WINDOW = 86_400.0
_UNITS = (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))

API_VERSION = "2025-07-16"
"""``x-trigger-api-version``, as ``@trigger.dev/core`` sends it on every request
(``apiClient/version.js``)."""

BranchName = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^\r\n\x00]+$")]
"""A header value: one line."""

FilterValue = Annotated[str, Field(min_length=1, pattern=r"^[^,]+$")]
"""One value of a list filter; values are sent comma-joined, so none may hold a comma."""


class TriggerTarget(TargetBase):
    """A Trigger.dev project environment."""

    default_base_url: ClassVar[str] = "https://api.trigger.dev"

    provider: Literal["trigger"]
    ended_window: Duration = DEFAULT_ENDED_WINDOW
    type: list[FilterValue] = Field(default_factory=list)
    tags: list[FilterValue] = Field(default_factory=list)
    task_identifier: list[FilterValue] = Field(default_factory=list)
    branch: BranchName | None = None
    """Sent as ``x-trigger-branch`` on every request, as the SDK's ``previewBranch`` is."""

    @field_validator("ended_window")
    @classmethod
    def _whole_seconds(cls, value: float) -> float:
        if value != int(value):
            raise ValueError(
                f"ended_window must be a whole number of seconds, got {value:g}s "
                "(the API's createdAt period has no smaller unit)"
            )
        return value


class TriggerRow(RowStruct, gc=False):
    """One ``SessionObject``, the fields the exporter reads; its status is the query's."""

    id: Text
    created: Aware = msgspec.field(name="createdAt")
    deadline: Aware | None = msgspec.field(name="expiresAt", default=None)
    last_activity: Aware | None = msgspec.field(name="updatedAt", default=None)
    kind: str | None = msgspec.field(name="type", default=None)
    status: ClassVar[str] = ""
    leases: ClassVar[None] = None
    executions: ClassVar[None] = None


class TriggerRunRow(TriggerRow, gc=False):
    """A row with the run it is executing now: what a ``per_session`` target reads."""

    run_id: str | None = msgspec.field(name="currentRunId", default=None)


CODEC = RowCodec(TriggerRow)
RUN_CODEC = RowCodec(TriggerRunRow)


class TriggerProvider(Provider[TriggerTarget]):
    """Walks ``ACTIVE``, then ``CLOSED`` and ``EXPIRED`` (when counted), each to its end."""

    id = "trigger"
    path = "/api/v1/sessions"
    capabilities = Capabilities(deadlines=True, activity=True)
    row_fields = CODEC.fields
    error_detail = staticmethod(wire.trigger_error_detail)
    rate_limit_reset = staticmethod(wire.trigger_rate_limit_reset)

    def __init__(self, target: TriggerTarget) -> None:
        super().__init__(target)
        self._codec: RowCodec[TriggerRow] = (
            RUN_CODEC if target.per_session.enabled else CODEC  # type: ignore[assignment]
        )

    def statuses(self) -> Mapping[str, Phase]:
        return STATUS_PHASES if self.target.ended_window > 0 else ACTIVE_ONLY

    def request_headers(self) -> Mapping[str, str]:
        headers = {"x-trigger-api-version": API_VERSION}
        branch = (self.target.branch or "").strip()
        if branch:
            headers["x-trigger-branch"] = branch
        return headers

    async def pages(self, fetcher: PageFetcher) -> AsyncIterator[Page]:
        common = self._filters()
        queries: list[tuple[str, dict[str, str]]] = [("ACTIVE", common)]
        if self.target.ended_window > 0:
            window = {"filter[createdAt][period]": render_period(self.target.ended_window)}
            queries += [(status, common | window) for status in ENDED_STATUSES]
        # the listings side by side: a poll costs the longest walk, not the sum (issue 19)
        async for page in merged([self._walk(fetcher, s, filters) for s, filters in queries]):
            yield page

    def _filters(self) -> dict[str, str]:
        """The configured list filters, comma-joined, only those that are non-empty."""
        target = self.target
        configured = {
            "filter[type]": target.type,
            "filter[tags]": target.tags,
            "filter[taskIdentifier]": target.task_identifier,
        }
        return {name: ",".join(values) for name, values in configured.items() if values}

    async def _walk(
        self, fetcher: PageFetcher, status: str, filters: Mapping[str, str]
    ) -> AsyncIterator[Page]:
        """One status query paged to its end, every row counted in that status."""
        params = {**filters, "filter[status]": status, "page[size]": str(PAGE_SIZE)}
        label = status.lower()
        used: set[str] = set()
        page = 1
        while True:
            where = f"{status}.page[{page}]"
            body = envelope.decode_object(await fetcher.get_body(params), where)
            rows = envelope.array(body.get("data"), f"{where}.data")
            async for part in self._codec.pages(rows, where=_where(where), status=label):
                yield part
            cursor = _next_cursor(body, where)
            if cursor is None:
                return
            if cursor in used:
                raise SchemaError(
                    f"{where}.pagination.next: cursor {clip(cursor, 60)!r} was already followed in "
                    f"this {status} walk; stopping instead of looping"
                )
            used.add(cursor)
            params["page[after]"] = cursor
            page += 1


def _where(page: str) -> Callable[[int], str]:
    """Names row ``i`` of ``page``."""
    return lambda i: f"{page}.data[{i}]"


def _next_cursor(body: Mapping[str, msgspec.Raw], where: str) -> str | None:
    """``pagination.next``, or None at the last page (no pagination, no or empty next)."""
    raw = body.get("pagination")
    if raw is None or bytes(raw).strip() == b"null":
        return None
    pagination = envelope.obj(raw, f"{where}.pagination")
    values = envelope.scalars(pagination, "next")
    return fields.optional_text(values, "next", f"{where}.pagination") or None


def render_period(seconds: float) -> str:
    """A whole number of seconds in its largest whole unit: 86400 -> ``1d``, 90 -> ``90s``."""
    whole = int(seconds)
    for unit, size in _UNITS:
        if whole % size == 0:
            return f"{whole // size}{unit}"
    raise AssertionError("unreachable: every whole number of seconds divides by 1")
