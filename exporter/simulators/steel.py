"""Steel: `GET /v1/sessions`, `{sessions, nextCursor, totalCount}` paged by `cursorId`.

As the official SDK (`steel-sdk` 0.19.0) shows it: the key in `steel-api-key`; `limit`
1..100 (default 50); `cursorId` the id of the previous page's last session, which is also
what `nextCursor` holds (null on the last page); the SDK's own pager ignores `nextCursor` and
asks after the last row until a page is empty, so `cursorId` naming the very last session is
answered with an empty page, normally. `status` is one of `live`, `released`, `failed`;
`projectId` filters by project; `totalCount` is present only on filtered queries. Rows are
newest first; `timeout`, `duration` and `inactivityTimeout` are milliseconds. Errors are
Fastify's `{"statusCode", "error", "message"}` (the simulator's choice: the SDK reads none).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable
from datetime import datetime
from http import HTTPStatus
from typing import Any, ClassVar

from multidict import MultiMapping

from .base import OMIT, QueryError, Simulator, parse_int, phrase, timestamp
from .keyset import Key, Row, begin_after, find

__all__ = ["STATUSES", "SteelSimulator", "steel_population", "steel_row"]

STATUSES = ("live", "released", "failed")
"""The SDK's `Session.status` values."""
DEFAULT_LIMIT = 50
MAX_LIMIT = 100


def steel_row(
    id: str,
    status: str,
    created_at: str | float,
    timeout_ms: int = 300_000,
    *,
    duration_ms: int = 0,
    inactivity_timeout_ms: int | None = OMIT,
    release_reason: str | None = OMIT,
    project_id: str | None = OMIT,
    credits_used: int = 0,
    event_count: int = 0,
    proxy_bytes_used: int = 0,
    **extra: Any,
) -> dict[str, Any]:
    """A `Session` row; `created_at` may be unix seconds. `extra` adds or overrides keys.

    `inactivity_timeout_ms`, `release_reason` and `project_id` are optional: `OMIT` (the
    default) leaves them out. `release_reason` is one of the SDK's `user_requested`,
    `timeout`, `inactivity_timeout`, `creation_timeout`, `startup_failed`, `browser_closed`,
    `browser_crashed` or None.
    """
    row: dict[str, Any] = {
        "id": id,
        "createdAt": timestamp(created_at),
        "status": status,
        "timeout": timeout_ms,
        "duration": duration_ms,
        "inactivityTimeout": inactivity_timeout_ms,
        "releaseReason": release_reason,
        "projectId": project_id,
        "creditsUsed": credits_used,
        "eventCount": event_count,
        "proxyBytesUsed": proxy_bytes_used,
        "debugUrl": f"https://api.steel.dev/v1/sessions/debug?id={id}",
        "sessionViewerUrl": f"https://app.steel.dev/sessions/{id}",
        "websocketUrl": f"wss://connect.steel.dev?sessionId={id}",
        "dimensions": {"width": 1920, "height": 1080},
        "optimizeBandwidth": {"blockImages": False},
        "headless": True,
        "isSelenium": False,
        "solveCaptcha": False,
    }
    return {key: value for key, value in row.items() if value is not OMIT} | extra


def steel_population(now: float, *, seed: int = 0, size: int = 20) -> list[dict[str, Any]]:
    """`size` seeded sessions created within the hour before `now`, each status at least once.

    Timeouts are 5, 15 or 60 minutes; released ones name a release reason.
    """
    rng = random.Random(seed)
    rows = []
    for i in range(size):
        status = STATUSES[i] if i < len(STATUSES) else rng.choice(("live", "live", *STATUSES))
        created = now - rng.uniform(30, 3600)
        rows.append(
            steel_row(
                str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                status,
                created,
                rng.choice((300_000, 900_000, 3_600_000)),
                duration_ms=round((now - created) * 1000),
                release_reason={"released": "user_requested", "failed": "browser_crashed"}.get(
                    status
                ),
            )
        )
    return rows


class SteelSimulator(Simulator):
    """Serves `{"sessions": page, "nextCursor": last id | null[, "totalCount": n]}`.

    With `endless` every page names a `nextCursor`, and `cursorId` the last session serves
    the last page again (the SDK's own pager then never ends).
    """

    provider: ClassVar[str] = "steel"
    path: ClassVar[str] = "/v1/sessions"
    key_header: ClassVar[str] = "steel-api-key"
    key_prefix: ClassVar[str] = ""

    def __init__(
        self,
        *,
        sessions: Iterable[dict[str, Any]] = (),
        api_key: str = "test-key",
        endless: bool = False,
    ) -> None:
        super().__init__(sessions=sessions, api_key=api_key)
        self.endless = endless

    def payload(self, query: MultiMapping[str]) -> Any:
        limit = _limit(query)
        status = query.get("status")
        if status is not None and status not in STATUSES:
            message = "querystring/status must be equal to one of the allowed values"
            raise QueryError(
                _fastify(HTTPStatus.BAD_REQUEST, message), status=HTTPStatus.BAD_REQUEST
            )
        project = query.get("projectId")
        ordered = sorted(
            (
                row
                for row in self.sessions
                if (status is None or row.get("status") == status)
                and (project is None or row.get("projectId") == project)
            ),
            key=_key,
            reverse=True,
        )
        begin = begin_after(ordered, _key, self._cursor(query), descending=True)
        if self.endless and ordered and begin >= len(ordered):
            begin = (len(ordered) - 1) // limit * limit  # the last page again
        page = ordered[begin : begin + limit]
        more = self.endless or begin + limit < len(ordered)
        answer: dict[str, Any] = {
            "sessions": page,
            "nextCursor": page[-1]["id"] if more and page else None,
        }
        if status is not None:
            answer["totalCount"] = len(ordered)
        return answer

    def _cursor(self, query: MultiMapping[str]) -> Key | None:
        raw = query.get("cursorId")
        if not raw:
            return None
        row = find(self.sessions, "id", raw)
        if row is None:
            message = f"Invalid cursor: session {raw} not found"
            raise QueryError(
                _fastify(HTTPStatus.BAD_REQUEST, message), status=HTTPStatus.BAD_REQUEST
            )
        return _key(row)

    def error_body(self, status: int, message: str) -> Any:
        return _fastify(status, message)


def _fastify(status: int, message: str) -> dict[str, Any]:
    """An error body as Fastify sends it: status, its reason phrase, the message."""
    return {"statusCode": status, "error": phrase(status), "message": message}


def _limit(query: MultiMapping[str]) -> int:
    raw = query.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    value = parse_int(raw)
    if value is None or not 1 <= value <= MAX_LIMIT:
        message = f"querystring/limit must be an integer from 1 to {MAX_LIMIT}"
        raise QueryError(_fastify(HTTPStatus.BAD_REQUEST, message), status=HTTPStatus.BAD_REQUEST)
    return value


def _key(row: Row) -> Key:
    """Sort key: (creation time, id)."""
    return datetime.fromisoformat(row["createdAt"]), str(row["id"])
