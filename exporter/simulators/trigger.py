"""Trigger.dev: `GET /api/v1/sessions`, newest first, cursor paging, status as a filter only.

Beyond the spec, the official SDK (`@trigger.dev/sdk` with `@trigger.dev/core`) shows:
`filter[createdAt][from]`/`[to]` as unix **milliseconds** (the SDK sends `Date#getTime()`,
and the query schema it ships coerces them to integers; an ISO string is a 400), the
message of the both-cursors refinement, `x-ratelimit-reset` on a 429 as a unix time in
milliseconds (the only rate-limit header the SDK reads), and `currentRunId` on list rows.

The server's own code shows it reads a page's ids from a delayed store and then filters
those rows again in memory: a row may carry `stored_status`, the status the delayed store
still has for it (internal, never served). A page is cut from the rows whose stored status
matches, then the rows whose real `status` does not are dropped: the page comes out short,
or empty, while `pagination.next` is still set.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from contextlib import suppress
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, ClassVar

from multidict import MultiMapping

from .base import QueryError, Simulator, parse_int, timestamp

__all__ = ["STATUSES", "TriggerSimulator", "trigger_row"]

STATUSES = ("ACTIVE", "CLOSED", "EXPIRED")
DEFAULT_SIZE = 20
MAX_SIZE = 100
_PERIOD = re.compile(r"([0-9]+)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}

Key = tuple[datetime, str]


def trigger_row(
    id: str,
    status: str,
    created_at: str | float,
    updated_at: str | float,
    expires_at: str | float | None = None,
    *,
    type: str = "chat.agent",
    task_identifier: str = "my-chat",
    tags: Iterable[str] = (),
    external_id: str | None = None,
    closed_at: str | float | None = None,
    closed_reason: str | None = None,
    metadata: dict[str, Any] | None = None,
    current_run_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A `SessionObject` list row plus the internal `status` key the simulator filters on
    (and `stored_status`, given in `extra`, for the delayed store's view of it).

    Timestamps may be unix seconds. A CLOSED row's `closedAt` defaults to `updated_at`.
    `extra` adds or overrides keys.
    """
    if closed_at is None and status == "CLOSED":
        closed_at = updated_at
    row: dict[str, Any] = {
        "id": id,
        "externalId": external_id,
        "type": type,
        "taskIdentifier": task_identifier,
        "tags": list(tags),
        "metadata": metadata,
        "currentRunId": current_run_id,
        "closedAt": None if closed_at is None else timestamp(closed_at),
        "closedReason": closed_reason,
        "expiresAt": None if expires_at is None else timestamp(expires_at),
        "createdAt": timestamp(created_at),
        "updatedAt": timestamp(updated_at),
        "status": status,
    }
    return row | extra


class TriggerSimulator(Simulator):
    """Serves `{"data": rows, "pagination": {...}}`, rows newest first without `status`.

    `now` is the clock the `filter[createdAt][period]` window is measured from, and the one
    a 429's `x-ratelimit-reset` counts from: `rate_limit_reset` seconds later (None: no such
    header).
    """

    provider: ClassVar[str] = "trigger"
    path: ClassVar[str] = "/api/v1/sessions"

    def __init__(
        self, *, sessions: Iterable[dict[str, Any]] = (), api_key: str = "test-key"
    ) -> None:
        super().__init__(sessions=sessions, api_key=api_key)
        self.now: Callable[[], float] = time.time
        self.rate_limit_reset: float | None = 1.0

    def answer_headers(self, status: int) -> dict[str, str]:
        if status != HTTPStatus.TOO_MANY_REQUESTS or self.rate_limit_reset is None:
            return {}
        reset_ms = round((self.now() + self.rate_limit_reset) * 1000)
        return {"x-ratelimit-reset": str(reset_ms)}

    def payload(self, query: MultiMapping[str]) -> Any:
        details: list[dict[str, Any]] = []
        size = _size(query, details)
        keep = self._filter(query, details)
        cursor = self._cursor(query, details)
        if details:
            raise QueryError({"error": "Query Error", "details": details}, status=400)
        stored = [row for row in self.sessions if keep(_as_stored(row))]
        ordered = sorted(stored, key=_key, reverse=True)
        begin, end = _window(ordered, cursor, size)
        window = ordered[begin:end]
        pagination: dict[str, str] = {}
        if window and end < len(ordered):
            pagination["next"] = window[-1]["id"]
        if window and begin > 0:
            pagination["previous"] = window[0]["id"]
        page = [_served(row) for row in window if keep(row)]  # filtered again in memory
        return {"data": page, "pagination": pagination}

    def _cursor(
        self, query: MultiMapping[str], details: list[dict[str, Any]]
    ) -> tuple[Key, bool] | None:
        """The sort key of the `page[after]`/`page[before]` row and whether paging is forward."""
        after, before = query.get("page[after]"), query.get("page[before]")
        if after is not None and before is not None:
            message = "Cannot pass both page[after] and page[before] on the same request"
            details.append(_detail("page[before]", message))
            return None
        name, cursor = ("page[after]", after) if before is None else ("page[before]", before)
        if not cursor:
            return None
        for row in self.sessions:  # keyset: the cursor row need not pass the filters
            if row.get("id") == cursor:
                return _key(row), name == "page[after]"
        details.append(_detail(name, f"Session not found: {cursor}"))
        return None

    def _filter(
        self, query: MultiMapping[str], details: list[dict[str, Any]]
    ) -> Callable[[dict[str, Any]], bool]:
        """A predicate for the `filter[...]` parameters; problems are appended to `details`."""
        statuses = _values(query, "filter[status]")
        invalid = [value for value in statuses if value not in STATUSES]
        if invalid:
            message = f"Invalid status values: {', '.join(invalid)}"
            details.append(_detail("filter[status]", message))
        types = _values(query, "filter[type]")
        tags = _values(query, "filter[tags]")
        tasks = _values(query, "filter[taskIdentifier]")
        external_id = query.get("filter[externalId]")
        earliest = self._period_start(query, details)
        since = _instant(query, "filter[createdAt][from]", details)
        until = _instant(query, "filter[createdAt][to]", details)

        def keep(row: dict[str, Any]) -> bool:
            created = _key(row)[0]
            return (
                (not statuses or row.get("status") in statuses)
                and (not types or row.get("type") in types)
                and (not tags or any(tag in (row.get("tags") or ()) for tag in tags))
                and (not tasks or row.get("taskIdentifier") in tasks)
                and (external_id is None or row.get("externalId") == external_id)
                and (earliest is None or created.timestamp() >= earliest)
                and (since is None or created >= since)
                and (until is None or created <= until)
            )

        return keep

    def _period_start(
        self, query: MultiMapping[str], details: list[dict[str, Any]]
    ) -> float | None:
        name = "filter[createdAt][period]"
        raw = query.get(name)
        if raw is None:
            return None
        match = _PERIOD.fullmatch(raw)
        if match is None:
            details.append(_detail(name, f"Invalid period: {raw}"))
            return None
        return self.now() - int(match[1]) * _UNIT_SECONDS[match[2]]


def _window(
    ordered: list[dict[str, Any]], cursor: tuple[Key, bool] | None, size: int
) -> tuple[int, int]:
    """The slice of the newest-first `ordered` rows that makes up the requested page."""
    if cursor is None:
        return 0, size
    key, forward = cursor
    if forward:  # rows strictly older than the cursor row
        begin = sum(1 for row in ordered if _key(row) >= key)
        return begin, begin + size
    end = sum(1 for row in ordered if _key(row) > key)  # rows strictly newer
    return max(0, end - size), end


def _size(query: MultiMapping[str], details: list[dict[str, Any]]) -> int:
    raw = query.get("page[size]")
    if raw is None:
        return DEFAULT_SIZE
    value = parse_int(raw)
    if value is None:
        details.append(_detail("page[size]", f"Expected integer, received {raw!r}", "invalid_type"))
    elif value < 1:
        message = "Number must be greater than or equal to 1"
        details.append(_detail("page[size]", message, "too_small"))
    elif value > MAX_SIZE:
        message = f"Number must be less than or equal to {MAX_SIZE}"
        details.append(_detail("page[size]", message, "too_big"))
    else:
        return value
    return DEFAULT_SIZE


def _values(query: MultiMapping[str], name: str) -> tuple[str, ...]:
    """The distinct comma-separated values of a (possibly repeated) array filter, in order."""
    values = (value.strip() for raw in query.getall(name, []) for value in raw.split(","))
    return tuple(dict.fromkeys(value for value in values if value))


def _instant(query: MultiMapping[str], name: str, details: list[dict[str, Any]]) -> datetime | None:
    """A `filter[createdAt][from|to]` bound: an integer of unix milliseconds, as the SDK sends."""
    raw = query.get(name)
    if raw is None:
        return None
    milliseconds = parse_int(raw)
    if milliseconds is not None:
        with suppress(OverflowError, OSError, ValueError):  # out of datetime's range
            return datetime.fromtimestamp(milliseconds / 1000, UTC)
    details.append(_detail(name, "Invalid input: expected number, received NaN", "invalid_type"))
    return None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _key(row: dict[str, Any]) -> Key:
    """Sort key: newest first is descending (createdAt, id)."""
    return _aware(datetime.fromisoformat(row["createdAt"])), str(row["id"])


def _as_stored(row: dict[str, Any]) -> dict[str, Any]:
    """The row as the delayed store has it (its `stored_status`, if it has one)."""
    if "stored_status" not in row:
        return row
    return row | {"status": row["stored_status"]}


def _served(row: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in row.items() if name not in _INTERNAL}


_INTERNAL = frozenset({"status", "stored_status"})


def _detail(path: str, message: str, code: str = "custom") -> dict[str, Any]:
    return {"code": code, "message": message, "path": [path]}
