"""Chaser: `GET /v1/sessions`, limit/offset paging with a `total`."""

from __future__ import annotations

from typing import Any, ClassVar

from multidict import MultiMapping

from .base import QueryError, Simulator, parse_int, timestamp

__all__ = ["ChaserSimulator", "chaser_row"]

DEFAULT_LIMIT = 20


def chaser_row(
    id: str,
    status: str,
    created_at: str | float,
    leases: int | None = 0,
    *,
    session_type: str = "browser",
    video: str | None = None,
    persistence: bool | None = None,
    workspace_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A `SessionInfo` row; `created_at` may be unix seconds. `extra` adds or overrides keys."""
    row: dict[str, Any] = {
        "id": id,
        "status": status,
        "session_type": session_type,
        "created_at": timestamp(created_at),
        "endpoints": {"control": f"wss://api.chaser.sh/v1/sessions/{id}/cdp", "video": video},
        "active_connection_leases": leases,
        "persistence": persistence,
        "workspace_id": workspace_id,
    }
    return row | extra


class ChaserSimulator(Simulator):
    """Serves `{"sessions": rows[offset:offset+limit], "total": len(rows)}`."""

    provider: ClassVar[str] = "chaser"
    path: ClassVar[str] = "/v1/sessions"

    def payload(self, query: MultiMapping[str]) -> Any:
        limit = self._non_negative(query, "limit", DEFAULT_LIMIT)
        offset = self._non_negative(query, "offset", 0)
        return {"sessions": self.sessions[offset : offset + limit], "total": len(self.sessions)}

    def error_body(self, status: int, message: str) -> Any:
        return {"detail": message}

    @staticmethod
    def _non_negative(query: MultiMapping[str], name: str, default: int) -> int:
        raw = query.get(name)
        if raw is None:
            return default
        value = parse_int(raw)
        if value is None or value < 0:
            raise QueryError({"detail": f"{name} must be a non-negative integer"}, status=422)
        return value
