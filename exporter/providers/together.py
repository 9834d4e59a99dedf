"""Together Code Interpreter sessions: one ``GET /v1/tci/sessions``, no paging, no status.

The provider is its definition, ``definitions/together.yaml`` (every listed session is
``active``, phase ``live``; ``started_at``, ``expires_at``, ``last_execute_at`` and
``execute_count`` as the session's facts; the top-level ``errors`` array counted, logged
and quoted when ``data.sessions`` is missing), run by the engine. What stays here is the
target model (its keys as before) and the error-body reader (Together's
``{"error": {"message", "code"}}``, ``{"error": str}`` or ``{"errors": [...]}``,
``wire.together_error_detail``, which a definition cannot name).

A row without a readable ``id`` is left out; a ``started_at`` that is missing or
unreadable, or a value of the wrong type in another field, makes that fact unknown and is
counted in ``sessions_exporter_invalid_rows`` under its wire key (one bad row never fails
the poll). A null or missing ``expires_at``, ``last_execute_at`` or ``execute_count`` only
makes that fact unknown.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar, Literal

from exporter.core.records import Phase
from exporter.providers import wire
from exporter.providers.catalog import SEEDS
from exporter.providers.engine import DefinedProvider, SeededTarget, provider_class
from exporter.providers.schema import RowSchema

DEFINITION = SEEDS["together"]
STATUS_PHASES: Mapping[str, Phase] = DEFINITION.statuses
"""The one status every listed session has."""


class TogetherTarget(SeededTarget):
    """A Together AI account's Code Interpreter sessions."""

    default_base_url: ClassVar[str] = "https://api.together.ai/v1"

    provider: Literal["together"]


if TYPE_CHECKING:  # a class built at import: checked as the engine's (tests annotate with it)
    TogetherProvider = DefinedProvider
else:
    TogetherProvider = provider_class(
        "together",
        DEFINITION,
        wire_labels=True,
        hooks={
            "error_detail": staticmethod(wire.together_error_detail),
            "rows_label": "data.sessions",
        },
    )
"""One request: the whole list comes in a single answer."""
CODEC: RowSchema = TogetherProvider.schema
"""The row schema a poll decodes with."""
