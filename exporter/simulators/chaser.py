"""Chaser: `GET /v1/sessions`, in the API reference's shape or the newer guide's.

The reference's shape (the spec's): limit/offset paging with a `total`. The guide's
(`envelope="list"`): `{"object": "list", "data", "next_cursor", "has_more"}`, paged with
`limit` (1 to 100) and `cursor`, `sess_` ids, statuses from `creating` to `ready`,
`expires_at`, `ended_at`, `ended_reason` and byte counts, no leases and no `session_type`
(rows from `chaser_list_row`; the byte counts' names are the simulator's, the guide's prose
gives none). Its cursor is opaque: the simulator's encodes the sort key of the page's last
row (newest first), so a page follows on whatever ended meanwhile.

Beyond the spec, the official SDK (`chaser-sdk`) shows: a bare JSON array accepted as the
whole list (its 0.1 line's only envelope; `envelope="array"` serves one), the account header
`X-Chaser-Account` (recorded in `requests`; `account=` makes it required), errors shaped
`{"code": ..., "message": ...}`, the statuses of its ready set (`ready`, `running`, `active`)
and terminal set (`terminated`, `failed`), and row keys that may be absent (`OMIT`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, ClassVar, Literal

from multidict import MultiMapping

from .base import OMIT, QueryError, Simulator, parse_int, timestamp

__all__ = ["ACCOUNT_HEADER", "ChaserSimulator", "chaser_list_row", "chaser_row"]

DEFAULT_LIMIT = 20
CURSOR_LIMIT = 100
"""The largest `limit` the guide's shape takes."""
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


def chaser_list_row(
    id: str,
    status: str,
    created_at: str | float,
    *,
    expires_at: str | float | None = None,
    ended_at: str | float | None = None,
    ended_reason: str | None = None,
    bytes_in: int = 0,
    bytes_out: int = 0,
    **extra: Any,
) -> dict[str, Any]:
    """A row of the guide's shape; timestamps may be unix seconds. `extra` adds or overrides
    keys (`expires_at=OMIT` leaves the key out)."""
    row: dict[str, Any] = {
        "id": id,
        "object": "session",
        "status": status,
        "created_at": timestamp(created_at),
        "expires_at": None if expires_at is None or expires_at is OMIT else timestamp(expires_at),
        "ended_at": None if ended_at is None else timestamp(ended_at),
        "ended_reason": ended_reason,
        "bytes_in": bytes_in,
        "bytes_out": bytes_out,
    }
    if expires_at is OMIT:
        del row["expires_at"]
    return row | extra


class ChaserSimulator(Simulator):
    """Serves `{"sessions": rows[offset:offset+limit], "total": len(rows)}`.

    With `envelope="array"` it serves every row as a bare array instead, `limit` and
    `offset` ignored (the SDK shows no paging for that shape). With `envelope="list"` it
    serves the guide's shape, newest first, `limit` (1 to 100) rows after `cursor`; a
    `limit` out of range or a cursor it did not make is a 422. With `account` set, a request
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
        envelope: Literal["object", "array", "list"] = "object",
        account: str | None = None,
    ) -> None:
        super().__init__(sessions=sessions, api_key=api_key)
        self.envelope = envelope
        self.account = account

    def payload(self, query: MultiMapping[str]) -> Any:
        if self.envelope == "array":
            return self.sessions
        if self.envelope == "list":
            return self._list(query)
        limit = self._non_negative(query, "limit", DEFAULT_LIMIT)
        offset = self._non_negative(query, "offset", 0)
        return {"sessions": self.sessions[offset : offset + limit], "total": len(self.sessions)}

    def error_body(self, status: int, message: str) -> Any:
        return {"code": ERROR_CODES.get(status, "error"), "message": message}

    def refusal(self, headers: Mapping[str, str]) -> str | None:
        if self.account is not None and headers.get(ACCOUNT_HEADER) != self.account:
            return f"not a member of account {self.account}"
        return None

    def _list(self, query: MultiMapping[str]) -> dict[str, Any]:
        """One page of the guide's shape."""
        limit = self._non_negative(query, "limit", DEFAULT_LIMIT)
        if not 1 <= limit <= CURSOR_LIMIT:
            raise _invalid(f"limit must be between 1 and {CURSOR_LIMIT}")
        rows = sorted(self.sessions, key=_sort_key, reverse=True)
        cursor = query.get("cursor")
        if cursor:
            after = _decode_cursor(cursor)
            rows = [row for row in rows if _sort_key(row) < after]
        page = rows[:limit]
        more = len(rows) > limit
        return {
            "object": "list",
            "data": page,
            "next_cursor": _encode_cursor(_sort_key(page[-1])) if more else None,
            "has_more": more,
        }

    @staticmethod
    def _non_negative(query: MultiMapping[str], name: str, default: int) -> int:
        raw = query.get(name)
        if raw is None:
            return default
        value = parse_int(raw)
        if value is None or value < 0:
            raise _invalid(f"{name} must be a non-negative integer")
        return value


SortKey = tuple[datetime, str]


def _invalid(message: str) -> QueryError:
    body = {"code": ERROR_CODES[HTTPStatus.UNPROCESSABLE_ENTITY], "message": message}
    return QueryError(body, status=HTTPStatus.UNPROCESSABLE_ENTITY)


def _sort_key(row: dict[str, Any]) -> SortKey:
    """Newest first is descending (created_at, id)."""
    created = datetime.fromisoformat(str(row["created_at"]).replace("Z", "+00:00"))
    return (created if created.tzinfo else created.replace(tzinfo=UTC)), str(row["id"])


def _encode_cursor(key: SortKey) -> str:
    text = f"{key[0].isoformat()}|{key[1]}"
    return "cur_" + base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> SortKey:
    try:
        raw = cursor.removeprefix("cur_")
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        moment, _, id = text.partition("|")
        return datetime.fromisoformat(moment), id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _invalid("cursor is not valid") from None
