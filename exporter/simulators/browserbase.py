"""Browserbase: `GET /v1/sessions`, one bare array of every session, no paging.

As the official SDK (`browserbase` 1.22.0) shows it: the key in `X-BB-API-Key`; statuses
upper-case on the wire (`PENDING`, `RUNNING`, `ERROR`, `TIMED_OUT`, `COMPLETED`), in rows
and in the one-value `status=` filter; `q`, a user-metadata query
(`user_metadata['key']:'value'`, clauses joined by ` AND `). Errors are Fastify's
`{"statusCode", "error", "message"}` (the simulator's choice: the SDK reads none of it).
"""

from __future__ import annotations

import random
import re
from http import HTTPStatus
from typing import Any, ClassVar

from multidict import MultiMapping

from .base import QueryError, Simulator, phrase, timestamp

__all__ = ["STATUSES", "BrowserbaseSimulator", "browserbase_population", "browserbase_row"]

STATUSES = ("PENDING", "RUNNING", "ERROR", "TIMED_OUT", "COMPLETED")
"""The SDK's `Session.status` values, as the wire spells them."""
REGIONS = ("us-west-2", "us-east-1", "eu-central-1", "ap-southeast-1")
_CLAUSE = re.compile(r"user_metadata\['([^']+)'\]:'([^']*)'")


def browserbase_row(
    id: str,
    status: str,
    created_at: str | float,
    expires_at: str | float,
    *,
    started_at: str | float | None = None,
    updated_at: str | float | None = None,
    ended_at: str | float | None = None,
    keep_alive: bool = False,
    project_id: str = "proj_0001",
    proxy_bytes: int = 0,
    region: str = "us-west-2",
    context_id: str | None = None,
    user_metadata: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A `Session` row; timestamps may be unix seconds. `extra` adds or overrides keys.

    `startedAt` and `updatedAt` default to `created_at`.
    """
    row: dict[str, Any] = {
        "id": id,
        "createdAt": timestamp(created_at),
        "startedAt": timestamp(created_at if started_at is None else started_at),
        "updatedAt": timestamp(created_at if updated_at is None else updated_at),
        "endedAt": None if ended_at is None else timestamp(ended_at),
        "expiresAt": timestamp(expires_at),
        "keepAlive": keep_alive,
        "projectId": project_id,
        "proxyBytes": proxy_bytes,
        "region": region,
        "status": status,
        "contextId": context_id,
        "userMetadata": user_metadata,
    }
    return row | extra


def browserbase_population(now: float, *, seed: int = 0, size: int = 20) -> list[dict[str, Any]]:
    """`size` seeded sessions created within the hour before `now`, each status at least once.

    Each expires 5 to 60 minutes after its creation; ended ones have `endedAt`.
    """
    rng = random.Random(seed)
    rows = []
    for i in range(size):
        status = STATUSES[i] if i < len(STATUSES) else rng.choice(("RUNNING",) * 3 + STATUSES)
        created = now - rng.uniform(30, 3600)
        ended = None if status in ("PENDING", "RUNNING") else created + rng.uniform(10, 300)
        rows.append(
            browserbase_row(
                f"{seed:02d}{i:06d}-bbse-4000-8000-000000000000",
                status,
                created,
                created + rng.choice((300, 900, 3600)),
                ended_at=ended,
                updated_at=created if ended is None else ended,
                region=rng.choice(REGIONS),
                proxy_bytes=rng.randrange(0, 10_000_000),
            )
        )
    return rows


class BrowserbaseSimulator(Simulator):
    """Serves every stored session passing `status` and `q` as a bare array, in stored order."""

    provider: ClassVar[str] = "browserbase"
    path: ClassVar[str] = "/v1/sessions"
    key_header: ClassVar[str] = "X-BB-API-Key"
    key_prefix: ClassVar[str] = ""

    def payload(self, query: MultiMapping[str]) -> Any:
        status = query.get("status")
        if status is not None and status not in STATUSES:
            raise _invalid("querystring/status must be equal to one of the allowed values")
        wanted = _metadata_query(query.get("q"))
        return [
            row
            for row in self.sessions
            if (status is None or row.get("status") == status)
            and all(
                str((row.get("userMetadata") or {}).get(key)) == value
                for key, value in wanted.items()
            )
        ]

    def error_body(self, status: int, message: str) -> Any:
        return _fastify(status, message)


def _fastify(status: int, message: str) -> dict[str, Any]:
    """An error body as Fastify sends it: status, its reason phrase, the message."""
    return {"statusCode": status, "error": phrase(status), "message": message}


def _invalid(message: str) -> QueryError:
    body = _fastify(HTTPStatus.BAD_REQUEST, message) | {"code": "FST_ERR_VALIDATION"}
    return QueryError(body, status=HTTPStatus.BAD_REQUEST)


def _metadata_query(raw: str | None) -> dict[str, str]:
    """`user_metadata['k']:'v' AND ...` as `{k: v}`; a malformed query is a 400."""
    if raw is None:
        return {}
    wanted = {}
    for clause in raw.split(" AND "):
        match = _CLAUSE.fullmatch(clause.strip())
        if match is None:
            raise _invalid(f"Invalid query: {raw}")
        wanted[match[1]] = match[2]
    return wanted
