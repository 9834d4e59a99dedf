"""Daytona: `GET /api/sandbox`, `{items, nextCursor}` pages, `states=` repeated.

As the official SDK (`daytona` with `daytona_api_client` 0.226.1) shows it: the key as
`Authorization: Bearer`, an optional `X-Daytona-Organization-ID`; `limit` 1..200 (default
100), `cursor` from the previous page's `nextCursor` (null on the last page); `states`
repeated, each one of the 22 wire states (the contract's 21 and `unknown`); `id` and `name`
prefix filters; `order` (`desc`, newest first, or `asc` by creation). Unclaimed warm-pool
sandboxes (`warmPoolId` set) are left out unless `includeWarm=true`, and errored sandboxes
whose desired state is `destroyed` unless `includeErroredDeleted=true`. A row's `state` is
optional. Errors are NestJS's `{"statusCode", "message", "error"}`, a validation failure's
message a list.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from datetime import datetime
from http import HTTPStatus
from typing import Any, ClassVar

from multidict import MultiMapping

from .base import OMIT, QueryError, Simulator, parse_int, phrase, timestamp
from .keyset import Key, Row, begin_after, find, token, untoken

__all__ = [
    "ORGANIZATION_HEADER",
    "STATES",
    "DaytonaSimulator",
    "daytona_population",
    "daytona_row",
]

STATES = (
    "creating",
    "restoring",
    "destroyed",
    "destroying",
    "started",
    "stopped",
    "starting",
    "stopping",
    "error",
    "build_failed",
    "pending_build",
    "building_snapshot",
    "unknown",
    "pulling_snapshot",
    "archived",
    "archiving",
    "resizing",
    "snapshotting",
    "forking",
    "pausing",
    "paused",
    "resuming",
)
"""The SDK's `SandboxState` wire values (its `unknown_default_open_api` is client-side only)."""
ORGANIZATION_HEADER = "X-Daytona-Organization-ID"
DEFAULT_LIMIT = 100
MAX_LIMIT = 200
_ERRORED = frozenset({"error", "build_failed"})
_BOOLEANS = {"true": True, "false": False}


def daytona_row(
    id: str,
    state: str | None,
    created_at: str | float,
    *,
    last_activity_at: str | float | None = OMIT,
    auto_stop_interval: int = 15,
    auto_pause_interval: int = 0,
    auto_archive_interval: int = 10_080,
    auto_delete_interval: int = -1,
    auto_destroy_at: str | float | None = None,
    desired_state: str | None = OMIT,
    updated_at: str | float | None = None,
    organization_id: str = "org-0001",
    name: str | None = None,
    target: str = "us",
    cpu: int = 1,
    gpu: int = 0,
    memory: int = 1,
    disk: int = 3,
    labels: dict[str, str] | None = None,
    warm_pool_id: str | None = OMIT,
    error_reason: str | None = OMIT,
    **extra: Any,
) -> dict[str, Any]:
    """A `SandboxListItem` row; timestamps may be unix seconds. `extra` adds or overrides keys.

    `state=None` leaves the (optional) key out. `last_activity_at` defaults to `created_at`
    and `updated_at` to the last activity; `desired_state` defaults to the state. Keys given
    `OMIT` are left out.
    """
    activity = created_at if last_activity_at is OMIT else last_activity_at
    row: dict[str, Any] = {
        "id": id,
        "organizationId": organization_id,
        "name": id if name is None else name,
        "target": target,
        "user": "daytona",
        "public": False,
        "networkBlockAll": False,
        "cpu": cpu,
        "gpu": gpu,
        "memory": memory,
        "disk": disk,
        "labels": {} if labels is None else labels,
        "toolboxProxyUrl": "https://proxy.app.daytona.io/toolbox",
        "state": OMIT if state is None else state,
        "desiredState": (state or "started") if desired_state is OMIT else desired_state,
        "createdAt": timestamp(created_at),
        "updatedAt": timestamp(
            (activity if activity is not None else created_at) if updated_at is None else updated_at
        ),
        "lastActivityAt": OMIT if activity is None else timestamp(activity),
        "autoStopInterval": auto_stop_interval,
        "autoPauseInterval": auto_pause_interval,
        "autoArchiveInterval": auto_archive_interval,
        "autoDeleteInterval": auto_delete_interval,
        "autoDestroyAt": None if auto_destroy_at is None else timestamp(auto_destroy_at),
        "warmPoolId": warm_pool_id,
        "errorReason": error_reason,
    }
    return {key: value for key, value in row.items() if value is not OMIT} | extra


def daytona_population(now: float, *, seed: int = 0, size: int = 40) -> list[dict[str, Any]]:
    """`size` seeded sandboxes created within the day before `now`, each state at least once.

    Started ones were active within the last half hour with a 15 or 30 minute auto-stop;
    some have a TTL (`autoDestroyAt`).
    """
    rng = random.Random(seed)
    rows = []
    for i in range(size):
        state = STATES[i] if i < len(STATES) else rng.choice(("started",) * 4 + STATES)
        created = now - rng.uniform(60, 86_400)
        rows.append(
            daytona_row(
                f"{seed:02d}{i:06d}-dayt-4000-8000-000000000000",
                state,
                created,
                last_activity_at=max(created, now - rng.uniform(0, 1800)),
                auto_stop_interval=rng.choice((0, 15, 30)),
                auto_destroy_at=now + rng.uniform(600, 7200) if rng.random() < 0.2 else None,
                labels={"team": rng.choice(("agents", "evals"))},
            )
        )
    return rows


class DaytonaSimulator(Simulator):
    """Serves `{"items": page, "nextCursor": token | null}`, newest first.

    With `organization` set, a request naming another organization in
    `X-Daytona-Organization-ID` gets 403 (an API key is bound to its organization, so the
    header may be absent). With `endless` the last page carries a cursor that asks for itself.
    """

    provider: ClassVar[str] = "daytona"
    path: ClassVar[str] = "/api/sandbox"

    def __init__(
        self,
        *,
        sessions: Iterable[dict[str, Any]] = (),
        api_key: str = "test-key",
        organization: str | None = None,
        endless: bool = False,
    ) -> None:
        super().__init__(sessions=sessions, api_key=api_key)
        self.organization = organization
        self.endless = endless

    def refusal(self, headers: Mapping[str, str]) -> str | None:
        named = headers.get(ORGANIZATION_HEADER)
        if self.organization is not None and named is not None and named != self.organization:
            return f"Organization {named} not found"
        return None

    def payload(self, query: MultiMapping[str]) -> Any:
        problems: list[str] = []
        limit = _limit(query, problems)
        states = _states(query, problems)
        descending = query.get("order", "desc") != "asc"
        if query.get("order", "desc") not in ("asc", "desc"):
            problems.append("order must be one of the following values: asc, desc")
        include_warm = _boolean(query, "includeWarm", problems)
        include_errored_deleted = _boolean(query, "includeErroredDeleted", problems)
        cursor = self._cursor(query, problems)
        if problems:
            raise QueryError(_nest(HTTPStatus.BAD_REQUEST, problems), status=HTTPStatus.BAD_REQUEST)
        id_prefix, name_prefix = query.get("id", ""), query.get("name", "")
        ordered = sorted(
            (
                row
                for row in self.sessions
                if (not states or row.get("state") in states)
                and str(row.get("id")).startswith(id_prefix)
                and str(row.get("name")).startswith(name_prefix)
                and (include_warm or row.get("warmPoolId") is None)
                and (
                    include_errored_deleted
                    or not (row.get("state") in _ERRORED and row.get("desiredState") == "destroyed")
                )
            ),
            key=_key,
            reverse=descending,
        )
        begin = begin_after(ordered, _key, cursor, descending=descending)
        page = ordered[begin : begin + limit]
        next_cursor = None
        if begin + limit < len(ordered):
            next_cursor = token(page[-1]["id"])
        elif self.endless:
            next_cursor = query.get("cursor") or token(_BEGINNING)
        return {"items": page, "nextCursor": next_cursor}

    def _cursor(self, query: MultiMapping[str], problems: list[str]) -> Key | None:
        raw = query.get("cursor")
        if not raw:
            return None
        row_id = untoken(raw)
        if row_id == _BEGINNING:
            return None
        row = None if row_id is None else find(self.sessions, "id", row_id)
        if row is None:
            problems.append("cursor is invalid")
            return None
        return _key(row)

    def error_body(self, status: int, message: str) -> Any:
        return _nest(status, message)


_BEGINNING = "\x00start"
"""The row id an endless first page's cursor names: the beginning of the list."""


def _nest(status: int, message: str | list[str]) -> dict[str, Any]:
    """An error body as NestJS sends it: status, message(s), the reason phrase."""
    return {"statusCode": status, "message": message, "error": phrase(status)}


def _limit(query: MultiMapping[str], problems: list[str]) -> int:
    raw = query.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    value = parse_int(raw)
    if value is None:
        problems.append("limit must be an integer number")
    elif value < 1:
        problems.append("limit must not be less than 1")
    elif value > MAX_LIMIT:
        problems.append(f"limit must not be greater than {MAX_LIMIT}")
    else:
        return value
    return DEFAULT_LIMIT


def _states(query: MultiMapping[str], problems: list[str]) -> frozenset[str]:
    values = query.getall("states", [])
    if any(value not in STATES for value in values):
        problems.append(
            f"each value in states must be one of the following values: {', '.join(STATES)}"
        )
    return frozenset(values)


def _boolean(query: MultiMapping[str], name: str, problems: list[str]) -> bool:
    raw = query.get(name, "false")
    if raw not in _BOOLEANS:
        problems.append(f"{name} must be a boolean value")
        return False
    return _BOOLEANS[raw]


def _key(row: Row) -> Key:
    """Sort key: (creation time, id)."""
    return datetime.fromisoformat(row["createdAt"]), str(row["id"])
