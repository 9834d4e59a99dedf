"""Chaser: `GET /v1/sessions`, limit/offset paging with a `total`.

Beyond the spec, the official SDK (`chaser-sdk`) shows: a bare JSON array accepted as the
whole list (its 0.1 line's only envelope; `envelope="array"` serves one), the account header
`X-Chaser-Account` (recorded in `requests`; `account=` makes it required), errors shaped
`{"code": ..., "message": ...}`, the statuses of its ready set (`ready`, `running`, `active`)
and terminal set (`terminated`, `failed`), and row keys that may be absent (`OMIT`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any, ClassVar, Literal

from multidict import MultiMapping

from .base import OMIT, QueryError, Simulator, parse_int, timestamp

__all__ = ["ACCOUNT_HEADER", "ChaserSimulator", "chaser_row"]

DEFAULT_LIMIT = 20
ACCOUNT_HEADER = "X-Chaser-Account"
ERROR_CODES: dict[int, str] = {
    HTTPStatus.UNAUTHORIZED: "unauthorized",
    HTTPStatus.FORBIDDEN: "forbidden",
    HTTPStatus.NOT_FOUND: "not_found",
    HTTPStatus.UNPROCESSABLE_ENTITY: "invalid_request",
    HTTPStatus.TOO_MANY_REQUESTS: "rate_limited",
}
"""The simulator's own `code` values (the SDK reads `code` but shows none of the API's)."""


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
    """A `SessionInfo` row; `created_at` may be unix seconds. `extra` adds or overrides keys.

    `leases`, `video`, `persistence` and `workspace_id` may be `OMIT`: the SDK types those
    keys not-required, so a row may lack them.
    """
    endpoints: dict[str, Any] = {"control": f"wss://api.chaser.sh/v1/sessions/{id}/cdp"}
    if video is not OMIT:
        endpoints["video"] = video
    row: dict[str, Any] = {
        "id": id,
        "status": status,
        "session_type": session_type,
        "created_at": timestamp(created_at),
        "endpoints": endpoints,
        "active_connection_leases": leases,
        "persistence": persistence,
        "workspace_id": workspace_id,
    }
    return {key: value for key, value in row.items() if value is not OMIT} | extra


class ChaserSimulator(Simulator):
    """Serves `{"sessions": rows[offset:offset+limit], "total": len(rows)}`.

    With `envelope="array"` it serves every row as a bare array instead, `limit` and
    `offset` ignored (the SDK shows no paging for that shape). With `account` set, a request
    whose `X-Chaser-Account` differs gets 403 (the simulator's choice: the SDK does not show
    the API's answer to a wrong account).
    """

    provider: ClassVar[str] = "chaser"
    path: ClassVar[str] = "/v1/sessions"

    def __init__(
        self,
        *,
        sessions: Iterable[dict[str, Any]] = (),
        api_key: str = "test-key",
        envelope: Literal["object", "array"] = "object",
        account: str | None = None,
    ) -> None:
        super().__init__(sessions=sessions, api_key=api_key)
        self.envelope = envelope
        self.account = account

    def payload(self, query: MultiMapping[str]) -> Any:
        if self.envelope == "array":
            return self.sessions
        limit = self._non_negative(query, "limit", DEFAULT_LIMIT)
        offset = self._non_negative(query, "offset", 0)
        return {"sessions": self.sessions[offset : offset + limit], "total": len(self.sessions)}

    def error_body(self, status: int, message: str) -> Any:
        return {"code": ERROR_CODES.get(status, "error"), "message": message}

    def refusal(self, headers: Mapping[str, str]) -> str | None:
        if self.account is not None and headers.get(ACCOUNT_HEADER) != self.account:
            return f"not a member of account {self.account}"
        return None

    @staticmethod
    def _non_negative(query: MultiMapping[str], name: str, default: int) -> int:
        raw = query.get(name)
        if raw is None:
            return default
        value = parse_int(raw)
        if value is None or value < 0:
            message = f"{name} must be a non-negative integer"
            body = {"code": ERROR_CODES[HTTPStatus.UNPROCESSABLE_ENTITY], "message": message}
            raise QueryError(body, status=HTTPStatus.UNPROCESSABLE_ENTITY)
        return value
