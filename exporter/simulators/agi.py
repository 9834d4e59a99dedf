"""AGI: `GET /v1/sessions`, a bare JSON array of every session, no paging."""

from __future__ import annotations

from typing import Any, ClassVar

from multidict import MultiMapping

from .base import Simulator, timestamp

__all__ = ["AgiSimulator", "agi_row"]


def agi_row(
    id: str, status: str, created_at: str | float, *, agent_name: str = "agi-0", **extra: Any
) -> dict[str, Any]:
    """A `Session` row; `created_at` may be unix seconds. `extra` adds or overrides keys."""
    row: dict[str, Any] = {
        "session_id": id,
        "agent_name": agent_name,
        "status": status,
        "created_at": timestamp(created_at),
    }
    return row | extra


class AgiSimulator(Simulator):
    """Serves the stored rows as a bare array; query parameters are ignored."""

    provider: ClassVar[str] = "agi"
    path: ClassVar[str] = "/v1/sessions"

    def payload(self, query: MultiMapping[str]) -> Any:
        return self.sessions
