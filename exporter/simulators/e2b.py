"""E2B: `GET /v2/sandboxes`, a bare array paged by the `X-Next-Token` response header.

As the official SDK (`e2b` 2.63.0) shows it: the key in `X-API-Key`; `state` a comma list of
`running` and `paused` (both when absent); `limit` (1..100, default 100); `nextToken` from the
previous answer's `X-Next-Token` header, which the last page leaves out; `order` (`asc` or
`desc` by start time, newest first by default), `startedAfter` (RFC 3339), `template` and
`metadata` (url-encoded `k=v&k2=v2`, all must match) as further filters. Errors are
`{"code": status, "message": ...}`. Rows carry every key the SDK requires, `endAt` (the
deadline) on paused rows too.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import datetime
from http import HTTPStatus
from typing import Any, ClassVar
from urllib.parse import parse_qsl

from multidict import MultiMapping

from .base import OMIT, QueryError, Simulator, parse_int, timestamp
from .keyset import Key, Row, begin_after, find, token, untoken

__all__ = ["PAGING_HEADER", "STATES", "E2bSimulator", "e2b_population", "e2b_row"]

STATES = ("running", "paused")
"""The SDK's `SandboxState`: any other value fails its whole page."""
PAGING_HEADER = "X-Next-Token"
DEFAULT_LIMIT = 100
MAX_LIMIT = 100


def e2b_row(
    id: str,
    state: str,
    started_at: str | float,
    end_at: str | float,
    *,
    template_id: str = "base",
    alias: str | None = OMIT,
    client_id: str = "6532622b",
    cpu_count: int = 2,
    memory_mb: int = 512,
    disk_size_mb: int = 1024,
    envd_version: str = "0.2.0",
    metadata: dict[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A `ListedSandbox` row; timestamps may be unix seconds. `extra` adds or overrides keys.

    `alias` may be left out (`OMIT`, the default): the SDK types it not-required.
    """
    row: dict[str, Any] = {
        "sandboxID": id,
        "templateID": template_id,
        "alias": alias,
        "clientID": client_id,
        "startedAt": timestamp(started_at),
        "endAt": timestamp(end_at),
        "cpuCount": cpu_count,
        "memoryMB": memory_mb,
        "diskSizeMB": disk_size_mb,
        "metadata": {} if metadata is None else metadata,
        "state": state,
        "envdVersion": envd_version,
    }
    return {key: value for key, value in row.items() if value is not OMIT} | extra


def e2b_population(now: float, *, seed: int = 0, size: int = 24) -> list[dict[str, Any]]:
    """`size` seeded sandboxes started within the hour before `now`, each state at least once.

    Running ones end 5 to 60 minutes after their start, some already past `now` (overdue).
    """
    rng = random.Random(seed)
    rows = []
    for i in range(size):
        state = STATES[i] if i < len(STATES) else rng.choice(("running", "running", "paused"))
        started = now - rng.uniform(30, 3600)
        rows.append(
            e2b_row(
                f"i{seed:02d}{i:04d}e2bsbx",
                state,
                started,
                started + rng.choice((300, 900, 3600)),
                template_id=rng.choice(("base", "code-interpreter-v1")),
                metadata={"team": rng.choice(("agents", "evals"))},
            )
        )
    return rows


class E2bSimulator(Simulator):
    """Serves the stored sandboxes as a bare array, newest first, `X-Next-Token` paged.

    With `endless` the API never ends: the last page carries a token that asks for itself
    again (a client that does not notice repeats forever).
    """

    provider: ClassVar[str] = "e2b"
    path: ClassVar[str] = "/v2/sandboxes"
    key_header: ClassVar[str] = "X-API-Key"
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
        self._next: str | None = None

    def answer_headers(self, status: int) -> dict[str, str]:
        next_token, self._next = self._next, None  # set by this request's `payload` only
        return {PAGING_HEADER: next_token} if status == HTTPStatus.OK and next_token else {}

    def payload(self, query: MultiMapping[str]) -> Any:
        self._next = None
        states = _states(query)
        limit = _limit(query)
        descending = _order(query)
        keep_started = _started_after(query)
        template = query.get("template")
        metadata = _metadata(query)
        ordered = sorted(
            (
                row
                for row in self.sessions
                if row.get("state") in states
                and (template is None or template in (row.get("templateID"), row.get("alias")))
                and metadata.items() <= (row.get("metadata") or {}).items()
                and (keep_started is None or _key(row)[0] > keep_started)
            ),
            key=_key,
            reverse=descending,
        )
        cursor = self._cursor(query)
        begin = begin_after(ordered, _key, cursor, descending=descending)
        page = ordered[begin : begin + limit]
        if begin + limit < len(ordered):
            self._next = token(page[-1]["sandboxID"])
        elif self.endless:
            self._next = query.get("nextToken") or token(_BEGINNING)
        return page

    def _cursor(self, query: MultiMapping[str]) -> Key | None:
        raw = query.get("nextToken")
        if raw is None:
            return None
        row_id = untoken(raw)
        if row_id == _BEGINNING:
            return None
        row = None if row_id is None else find(self.sessions, "sandboxID", row_id)
        if row is None:
            raise _bad_request(f"Invalid next token: {raw}")
        return _key(row)

    def error_body(self, status: int, message: str) -> Any:
        return {"code": status, "message": message}


_BEGINNING = "\x00start"
"""The row id an endless first page's token names: the beginning of the list."""


def _bad_request(message: str) -> QueryError:
    return QueryError({"code": 400, "message": message}, status=HTTPStatus.BAD_REQUEST)


def _states(query: MultiMapping[str]) -> tuple[str, ...]:
    raw = query.getall("state", [])
    if not raw:
        return STATES
    values = tuple(value for text in raw for value in text.split(","))
    for value in values:
        if value not in STATES:
            raise _bad_request(f"Invalid state: {value!r} (expected one of running, paused)")
    return values


def _limit(query: MultiMapping[str]) -> int:
    raw = query.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    value = parse_int(raw)
    if value is None:
        raise _bad_request(f"Invalid format for parameter limit: {raw!r} is not an integer")
    if not 1 <= value <= MAX_LIMIT:
        raise _bad_request(f"Invalid limit: {value} (must be between 1 and {MAX_LIMIT})")
    return value


def _order(query: MultiMapping[str]) -> bool:
    """Whether rows are newest first (`order=desc`, the default) rather than oldest first."""
    raw = query.get("order", "desc")
    if raw not in ("asc", "desc"):
        raise _bad_request(f"Invalid order: {raw!r} (expected asc or desc)")
    return raw == "desc"


def _started_after(query: MultiMapping[str]) -> datetime | None:
    raw = query.get("startedAfter")
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise _bad_request(f"Invalid format for parameter startedAfter: {raw!r} is not RFC 3339")
    return moment


def _metadata(query: MultiMapping[str]) -> dict[str, str]:
    raw = query.get("metadata")
    return {} if raw is None else dict(parse_qsl(raw, keep_blank_values=True))


def _key(row: Row) -> Key:
    """Sort key: (start time, id)."""
    return datetime.fromisoformat(row["startedAt"]), str(row["sandboxID"])
