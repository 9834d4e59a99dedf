"""Runloop: `GET /v1/devboxes`, `{devboxes, has_more, total_count}` paged by `starting_after`.

As the official SDK (`runloop_api_client` 3.0.0) shows it: the key as `Authorization:
Bearer`; `limit` 1..5000 (default 20); `starting_after` the id of the previous page's last
devbox; `status` one of ten values (`scheduled` deprecated for `queued`);
`include_total_count` (default true; false leaves `total_count` null). Rows are newest first,
times in epoch milliseconds, the deadline inputs in `launch_parameters`
(`keep_alive_time_seconds`, the deprecated `after_idle` and `lifecycle.after_idle`). Errors
are `{"error": message}` (the simulator's choice: the SDK reads none of it).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any, ClassVar

from multidict import MultiMapping

from .base import QueryError, Simulator, parse_int
from .keyset import Key, Row, begin_after, find

__all__ = ["STATUSES", "RunloopSimulator", "runloop_population", "runloop_row"]

STATUSES = (
    "scheduled",
    "queued",
    "provisioning",
    "initializing",
    "running",
    "suspending",
    "suspended",
    "resuming",
    "failure",
    "shutdown",
)
"""The SDK's `DevboxView.status` values."""
DEFAULT_LIMIT = 20
MAX_LIMIT = 5000
_BOOLEANS = {"true": True, "false": False}


def runloop_row(
    id: str,
    status: str,
    create_time_ms: int,
    *,
    keep_alive_time_seconds: int | None = 3600,
    after_idle: dict[str, Any] | None = None,
    lifecycle: dict[str, Any] | None = None,
    end_time_ms: int | None = None,
    name: str | None = None,
    failure_reason: str | None = None,
    shutdown_reason: str | None = None,
    metadata: dict[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A `DevboxView` row; times are epoch milliseconds. `extra` adds or overrides keys.

    `after_idle` is the deprecated `launch_parameters.after_idle`; `lifecycle` is
    `launch_parameters.lifecycle` (whose `after_idle` is the preferred spelling), e.g.
    `{"after_idle": {"idle_time_seconds": 600, "on_idle": "suspend"}}`.
    """
    row: dict[str, Any] = {
        "id": id,
        "name": name,
        "status": status,
        "create_time_ms": create_time_ms,
        "end_time_ms": end_time_ms,
        "launch_parameters": {
            "keep_alive_time_seconds": keep_alive_time_seconds,
            "after_idle": after_idle,
            "lifecycle": lifecycle,
        },
        "capabilities": [],
        "metadata": {} if metadata is None else metadata,
        "state_transitions": [
            {"status": status, "transition_time_ms": create_time_ms, "failure_reason": None}
        ],
        "failure_reason": failure_reason,
        "shutdown_reason": shutdown_reason,
        "blueprint_id": None,
        "snapshot_id": None,
    }
    return row | extra


def runloop_population(now: float, *, seed: int = 0, size: int = 30) -> list[dict[str, Any]]:
    """`size` seeded devboxes created within the two hours before `now`, each status at least once.

    Most keep alive for 5 minutes to 2 hours; some idle out instead (`lifecycle.after_idle`).
    """
    rng = random.Random(seed)
    rows = []
    for i in range(size):
        status = STATUSES[i] if i < len(STATUSES) else rng.choice(("running",) * 4 + STATUSES)
        created = round((now - rng.uniform(60, 7200)) * 1000)
        idles = rng.random() < 0.25
        ended = status in ("failure", "shutdown")
        rows.append(
            runloop_row(
                f"dbx_{seed:02d}{i:04d}",
                status,
                created,
                keep_alive_time_seconds=rng.choice((300, 3600, 7200, None)),
                lifecycle={"after_idle": {"idle_time_seconds": 600, "on_idle": "suspend"}}
                if idles
                else None,
                end_time_ms=created + rng.randrange(10_000, 600_000) if ended else None,
                failure_reason="execution_failed" if status == "failure" else None,
                shutdown_reason="api_shutdown" if status == "shutdown" else None,
            )
        )
    return rows


class RunloopSimulator(Simulator):
    """Serves `{"devboxes": page, "has_more": bool, "total_count": n}`, newest first.

    With `endless` every page says `has_more: true`, and `starting_after` the last devbox
    serves the last page again.
    """

    provider: ClassVar[str] = "runloop"
    path: ClassVar[str] = "/v1/devboxes"

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
            raise _bad_request(f"Invalid status: {status}")
        raw_count = query.get("include_total_count", "true")
        if raw_count not in _BOOLEANS:
            raise _bad_request(f"Invalid include_total_count: {raw_count}")
        ordered = sorted(
            (row for row in self.sessions if status is None or row.get("status") == status),
            key=_key,
            reverse=True,
        )
        begin = begin_after(ordered, _key, self._cursor(query), descending=True)
        if self.endless and begin >= len(ordered):
            begin = max(0, (len(ordered) - 1) // limit * limit)  # the last page again
        page = ordered[begin : begin + limit]
        return {
            "devboxes": page,
            "has_more": self.endless or begin + limit < len(ordered),
            "total_count": len(ordered) if _BOOLEANS[raw_count] else None,
        }

    def _cursor(self, query: MultiMapping[str]) -> Key | None:
        raw = query.get("starting_after")
        if not raw:
            return None
        row = find(self.sessions, "id", raw)
        if row is None:
            raise _bad_request(f"Invalid starting_after: devbox {raw} not found")
        return _key(row)


def _bad_request(message: str) -> QueryError:
    return QueryError({"error": message}, status=HTTPStatus.BAD_REQUEST)


def _limit(query: MultiMapping[str]) -> int:
    raw = query.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    value = parse_int(raw)
    if value is None or not 1 <= value <= MAX_LIMIT:
        raise _bad_request(f"Invalid limit: {raw} (an integer from 1 to {MAX_LIMIT})")
    return value


def _key(row: Row) -> Key:
    """Sort key: (creation time in ms, id)."""
    return int(row["create_time_ms"]), str(row["id"])
