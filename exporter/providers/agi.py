"""AGI agent sessions: one ``GET /v1/sessions`` answering a bare JSON array, no paging.

The provider is its definition, ``definitions/agi.yaml`` (statuses, fields), run by the
engine; what stays here is the target model (its keys as before) and the error-body reader
(AGI's ``{"detail": ...}``, which a definition cannot name). The whole list arrives in one
answer, so ``max_response_bytes`` bounds it: a larger answer fails the poll with reason
``too_large``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

from exporter.core.records import Phase
from exporter.providers import wire
from exporter.providers.catalog import SEEDS
from exporter.providers.engine import SeededTarget, provider_class
from exporter.providers.schema import RowSchema

DEFINITION = SEEDS["agi"]
STATUS_PHASES: Mapping[str, Phase] = DEFINITION.statuses
"""The spec's seven statuses and the SDK's ``waiting_for_input`` and ``finished``
(agi/types/shared.py)."""


class AgiTarget(SeededTarget):
    """An AGI (agi.tech) account."""

    default_base_url: ClassVar[str] = "https://api.agi.tech"

    provider: Literal["agi"]


AgiProvider = provider_class(
    "agi",
    DEFINITION,
    wire_labels=True,
    hooks={"error_detail": staticmethod(wire.agi_error_detail), "rows_label": "response"},
)
"""One request: the answer is the whole list as a bare array."""
CODEC: RowSchema = AgiProvider.schema
"""The row schema a poll decodes with."""
