"""AGI: `GET /v1/sessions`, a bare JSON array of every session, no paging.

Beyond the spec, the official SDK (`agi-python`) shows the API's FastAPI error shape
`{"detail": message}`, the statuses `waiting_for_input` and `finished`, and five more row
fields (`vnc_url`, `agent_url`, `environment_id`, `goal`, `agent_session_type`); the
simulator follows it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from multidict import MultiMapping

from .base import Simulator, timestamp

__all__ = ["STATUSES", "AgiSimulator", "agi_row"]

STATUSES = (
    "initializing",
    "ready",
    "running",
    "paused",
    "waiting_for_input",
    "completed",
    "finished",
    "terminated",
    "error",
)
"""The spec's seven statuses and the SDK's `waiting_for_input` and `finished`."""


def agi_row(
    id: str,
    status: str,
    created_at: str | float,
    *,
    agent_name: str = "agi-0",
    vnc_url: str | None = None,
    agent_url: str | None = None,
    environment_id: str | None = None,
    goal: str | None = None,
    agent_session_type: str = "managed-cdp",
    **extra: Any,
) -> dict[str, Any]:
    """A `Session` row (the SDK's `SessionResponse`); `created_at` may be unix seconds.

    `agent_session_type` is one of the SDK's `managed-cdp`, `external-cdp`, `desktop`.
    `extra` adds or overrides keys.
    """
    row: dict[str, Any] = {
        "session_id": id,
        "vnc_url": vnc_url,
        "agent_url": agent_url,
        "agent_name": agent_name,
        "status": status,
        "created_at": timestamp(created_at),
        "environment_id": environment_id,
        "goal": goal,
        "agent_session_type": agent_session_type,
    }
    return row | extra


class AgiSimulator(Simulator):
    """Serves the stored rows as a bare array; query parameters are ignored."""

    provider: ClassVar[str] = "agi"
    path: ClassVar[str] = "/v1/sessions"

    def payload(self, query: MultiMapping[str]) -> Any:
        return self.sessions

    def error_body(self, status: int, message: str) -> Any:
        return {"detail": message}
