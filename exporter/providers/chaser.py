"""Chaser browser sessions: ``GET /v1/sessions``, in either of the two list shapes Chaser documents.

- The API reference's shape (and ``chaser-sdk`` 0.2.1's): ``{sessions, total}``, paged with
  ``limit``/``offset``; rows carry ``active_connection_leases`` and ``session_type``. A bare
  JSON array, as the SDK accepts it, is the whole list.
- The newer guide's shape: ``{object: "list", data, next_cursor, has_more}``, paged with
  ``limit`` (1 to 100) and ``cursor``; ``sess_`` ids, statuses from ``creating`` to ``ready``,
  ``expires_at`` (a deadline), no leases and no ``session_type``.

The provider is its definition, ``definitions/chaser.yaml``, run by the engine: the
``answers`` it may get (each shape's rows, paging and the facts it reports), fields and
statuses. The first answer of a poll tells the shape, and the walk follows that shape's
paging (the offset walk re-reads where a shrinking list shifted); leases are reported only
from the reference's shape (the guide's answers carry none, so the lease series are absent,
never 0), deadlines from the guide's shape or wherever a row carries ``expires_at``.

What stays here is what a definition cannot say: the target model (its keys as before, with
``account`` sent as ``X-Chaser-Account``), the error-body reader
(``wire.chaser_error_detail``), and the wording the hand-written provider always reported
for a cursor missing while ``has_more`` is true and a cursor loop (:class:`ChaserHooks`).

Chaser's ``status`` is free-form. The exporter maps it case-insensitively to a phase
(see ``STATUS_PHASES``, documented in docs/providers.md); any other value keeps its
lower-cased name with phase ``unknown``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, cast

from pydantic import Field

from exporter.core.records import Phase
from exporter.providers import wire
from exporter.providers.catalog import SEEDS
from exporter.providers.definition import Paging
from exporter.providers.engine import DefinedProvider, provider_class
from exporter.providers.schema import RowSchema
from exporter.providers.target import TargetBase
from exporter.upstream.errors import SchemaError

DEFINITION = SEEDS["chaser"]
STATUS_PHASES: Mapping[str, Phase] = DEFINITION.statuses
"""The SDK's ready set (``ready``, ``running``, ``active``) is live, its terminal set
(``terminated``, ``failed``) ended and failed; the guide's ``creating`` (before ``ready``)
pending; the rest is the project's reading of the free-form status (docs/providers.md)."""

_CURSOR = DEFINITION.answer("/data")
assert _CURSOR is not None
assert _CURSOR.paging.max_size is not None
CURSOR_LIMIT: int = _CURSOR.paging.max_size
"""The largest ``limit`` the guide's cursor shape takes."""

AccountName = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^\r\n\x00]+$")]


class ChaserTarget(TargetBase):
    """A Chaser account: its keys as they were when hand-written (``page_size`` and
    ``page_concurrency`` among them, which a :class:`SeededTarget` fixes)."""

    default_base_url: ClassVar[str] = "https://api.chaser.sh"
    only_active: ClassVar[bool] = False

    provider: Literal["chaser"]
    page_size: Annotated[int, Field(ge=1, le=1000)] = 100
    page_concurrency: Annotated[int, Field(ge=1, le=32)] = 4
    account: AccountName | None = None
    """Sent as ``X-Chaser-Account`` on every request, as the SDK's ``account`` option does."""

    def option(self, name: str) -> str | None:
        """A Chaser target has no definition options."""
        return None


class ChaserHooks(DefinedProvider):
    """What only a :class:`ChaserTarget` tells the engine (the account header), and the
    hand-written provider's wording: a cursor missing while ``has_more`` is true
    (``page 1: next_cursor: ...``), and a cursor handed back again failing as the repeated
    cursor (``schema``) rather than as the repeated page."""

    cursor_loop_is_schema: ClassVar[bool] = True

    def request_headers(self) -> Mapping[str, str]:
        headers = dict(super().request_headers())
        account = cast(ChaserTarget, self.target).account
        if account and account.strip():
            headers["X-Chaser-Account"] = account.strip()
        return headers

    def cursor_missing(self, where: str, number: int, paging: Paging) -> SchemaError:
        return SchemaError(
            f"page {number}: next_cursor: expected a cursor while has_more is true, got none"
        )


if TYPE_CHECKING:  # a class built at import: checked as the engine's (tests annotate with it)
    ChaserProvider = ChaserHooks
else:
    ChaserProvider = provider_class(
        "chaser",
        DEFINITION,
        wire_labels=True,
        hooks={"error_detail": staticmethod(wire.chaser_error_detail), "rows_label": "sessions"},
        base=ChaserHooks,
    )
"""Walks the list in the shape its first answer has (see the module's docstring)."""
CODEC: RowSchema = ChaserProvider.schema
"""The row schema a poll decodes with."""
ChaserRow: Any = CODEC.row_type
"""One session of either shape, the fields the exporter reads (each shape lacks some)."""
