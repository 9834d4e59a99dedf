"""Notte browser sessions: ``GET /sessions/`` with ``page``/``page_size`` paging and deadlines.

The provider is its definition, ``definitions/notte.yaml`` (paging while ``has_next``, a bare
array as the whole list, the ``only_active`` flag, ``include_system``, the deadline rule, a
2xx ``detail`` as an error), run by the engine. What stays here is the target model (its
keys as before), the error-body reader (``detail``, else ``message``: a definition names no
error format) and how a page is named in a log (``page 2``, ``page[1].items[3]``).

A session's deadline is the earlier of ``created_at + max_duration_minutes`` (15 when
absent, the API's default) and ``last_accessed_at + idle_timeout_minutes`` (the SDK's older
``timeout_minutes`` when that is absent).

The list query also takes ``include_system``: whether to list *internal system sessions*,
the sessions Notte runs itself, which a row marks ``system_hidden: true`` (the SDK's words:
"an internal system run", "omitted from session.list() unless include_system=True is
requested"). The API's default is true (``notte-sdk`` 1.10.0's generated query model), so
they are listed and counted unless the target sets ``include_system: false``; the parameter
is sent only when the target sets it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from exporter.core.records import Phase
from exporter.providers import wire
from exporter.providers.catalog import SEEDS
from exporter.providers.engine import DefinedProvider, key_option, provider_class
from exporter.providers.schema import RowSchema
from exporter.providers.target import TargetBase

DEFINITION = SEEDS["notte"]
STATUS_PHASES: Mapping[str, Phase] = DEFINITION.statuses
"""The spec's four statuses and the SDK's fifth, ``authenticating`` (notte_core/types.py)."""


class NotteTarget(TargetBase):
    """A Notte account: a seed target (as ``SeededTarget``) whose ``only_active`` and
    ``page_concurrency`` are keys of its own, as they always were."""

    default_base_url: ClassVar[str] = "https://api.notte.cc"
    page_size: ClassVar[int | None] = None

    provider: Literal["notte"]
    only_active: bool = True
    """Sent as the API's own ``only_active`` flag; true: only ``active`` is counted."""
    include_system: bool | None = None
    """Sent as ``include_system`` only when set; unset, the API's default (true) applies."""
    page_concurrency: Annotated[int, Field(ge=1, le=32)] = 4

    def option(self, name: str) -> str | None:
        """The definition's ``include_system`` option: this target's key."""
        return key_option(self, name)


def _places(self: DefinedProvider, label: str, name: str, at: int) -> tuple[str, str]:
    """A page as Notte's log has always named it: ``page 2``; its rows ``page[2].items[i]``."""
    return f"page {at}", f"page[{at}].items"


NotteProvider = provider_class(
    "notte",
    DEFINITION,
    wire_labels=True,
    hooks={
        "error_detail": staticmethod(wire.notte_error_detail),
        "numbered_places": _places,
        "paging_first": True,
    },
)
"""Pages ``page=1,2,…`` with ``page_size=100`` while ``has_next`` is true.

The API tells no total, so pages are fetched ahead (up to ``page_concurrency`` at a time)
only as far as the previous poll of this target went: in a steady state a poll requests
exactly the pages it needs. A page that repeats the previous one row for row ends the walk
(``too_many_pages``). The list route is ``/sessions/`` (a FastAPI route; the SDK asks for
it with the slash)."""
CODEC: RowSchema = NotteProvider.schema
"""The row schema a poll decodes with."""
