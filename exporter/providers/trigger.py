"""Trigger.dev sessions: ``GET /api/v1/sessions``, one cursor-paged query per counted status.

The provider is its definition, ``definitions/trigger.yaml`` (paging, fields, statuses,
the API-version header, the millisecond rate-limit reset), run by the engine; what stays
here is the target model (its keys as before), the error-body reader, and what only the
target knows: the ended listings' window (dropped at ``0``), the list filters and the
branch header (:class:`TriggerHooks`).

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

import functools
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, ClassVar, Literal, cast

from pydantic import Field, field_validator

from exporter.core.records import Phase
from exporter.providers import wire
from exporter.providers.catalog import SEEDS
from exporter.providers.engine import DefinedProvider, SeededTarget, provider_class, text_cursor
from exporter.providers.schema import RowSchema
from exporter.providers.target import Duration

DEFINITION = SEEDS["trigger"]
STATUS_PHASES: Mapping[str, Phase] = DEFINITION.statuses
ACTIVE_ONLY: Mapping[str, Phase] = DEFINITION.active
ENDED_STATUSES = ("CLOSED", "EXPIRED")
PAGE_SIZE = DEFINITION.paging.size
DEFAULT_ENDED_WINDOW = 86_400.0
_UNITS = (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))
assert DEFINITION.status_filter is not None  # a listing per status: its rows carry none
STATUS_PARAM = DEFINITION.status_filter.param
"""``filter[status]``: the status of a listing's rows (the diagnostic reads it too)."""
PERIOD_PARAM = "filter[createdAt][period]"

API_VERSION = DEFINITION.headers["x-trigger-api-version"]
"""``x-trigger-api-version``, as ``@trigger.dev/core`` sends it on every request
(``apiClient/version.js``)."""

BranchName = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^\r\n\x00]+$")]
"""A header value: one line."""

FilterValue = Annotated[str, Field(min_length=1, pattern=r"^[^,]+$")]
"""One value of a list filter; values are sent comma-joined, so none may hold a comma."""


class TriggerTarget(SeededTarget):
    """A Trigger.dev project environment."""

    default_base_url: ClassVar[str] = "https://api.trigger.dev"
    page_concurrency: ClassVar[int] = len(STATUS_PHASES)
    """Each listing one request at a time, the listings side by side."""

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


class TriggerHooks(DefinedProvider):
    """What only a :class:`TriggerTarget` tells the engine: the ended listings' window
    (dropped at ``0``), the list filters, the branch header; and the hand-written provider's
    places (``ACTIVE.page[2].data[3]``), text-only cursors and a cursor loop named as one."""

    cursor_loop_is_schema: ClassVar[bool] = True

    @property
    def _trigger(self) -> TriggerTarget:
        return cast(TriggerTarget, self.target)

    def statuses(self) -> Mapping[str, Phase]:
        return STATUS_PHASES if self._trigger.ended_window > 0 else ACTIVE_ONLY

    def listings(self) -> list[tuple[list[tuple[str, str]], str | None]]:
        return self._listings

    @functools.cached_property
    def _listings(self) -> list[tuple[list[tuple[str, str]], str | None]]:
        """The listings, built once: a target never changes (a reload makes a new one)."""
        target = self._trigger
        common = list(_filters(target).items())
        window = [(PERIOD_PARAM, render_period(target.ended_window))]
        out = []
        for query, status in super().listings():
            if DEFINITION.statuses.get(status or "") is not Phase.ENDED:
                out.append(([*common, *query], status))
            elif target.ended_window > 0:
                out.append(([*common, *window, *query], status))
        return out

    def request_headers(self) -> Mapping[str, str]:
        headers = dict(super().request_headers())
        branch = (self._trigger.branch or "").strip()
        if branch:
            headers["x-trigger-branch"] = branch
        return headers

    def listing_place(self, query: Sequence[tuple[str, str]]) -> str:
        return dict(query).get(STATUS_PARAM) or super().listing_place(query)

    def cursor_text(self, value: Any, where: str) -> str | None:
        return text_cursor(value, where)


TriggerProvider = provider_class(
    "trigger",
    DEFINITION,
    wire_labels=True,
    hooks={"error_detail": staticmethod(wire.trigger_error_detail)},
    base=TriggerHooks,
)
"""Walks ``ACTIVE``, and ``CLOSED`` and ``EXPIRED`` when counted, side by side, each to its end."""
CODEC: RowSchema = TriggerProvider.schema
"""The row schema a poll decodes with (``per_session`` on: ``RUN_CODEC``)."""
RUN_CODEC: RowSchema | None = TriggerProvider.run_schema
"""The row schema that reads ``currentRunId`` too, as the ``run_id`` label."""


def _filters(target: TriggerTarget) -> dict[str, str]:
    """The configured list filters, comma-joined, only those that are non-empty."""
    configured = {
        "filter[type]": target.type,
        "filter[tags]": target.tags,
        "filter[taskIdentifier]": target.task_identifier,
    }
    return {name: ",".join(values) for name, values in configured.items() if values}


def render_period(seconds: float) -> str:
    """A whole number of seconds in its largest whole unit: 86400 -> ``1d``, 90 -> ``90s``."""
    whole = int(seconds)
    for unit, size in _UNITS:
        if whole % size == 0:
            return f"{whole // size}{unit}"
    raise AssertionError("unreachable: every whole number of seconds divides by 1")
