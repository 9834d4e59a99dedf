"""Notte: `GET /sessions/`, page/page_size paging, `only_active` filter, FastAPI-style 422s.

Beyond the spec (which says `/sessions`), the official SDK (`notte-sdk` with `notte-core`)
lists at `/sessions/`, a FastAPI route: the simulator serves that and, as FastAPI's
`redirect_slashes` does, answers `/sessions` with a 307 to it, the query string kept. The
SDK also knows the status `authenticating` (a session still starting), the query parameter
`include_system` and the row fields `close_reason`, `auth_ids` and `system_hidden`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from multidict import MultiMapping

from .base import QueryError, Simulator, parse_int, timestamp

__all__ = ["STATUSES", "NotteSimulator", "notte_row"]

STATUSES = ("authenticating", "active", "closed", "timed_out", "error")
"""The spec's four statuses and the SDK's `authenticating`."""
SLASHLESS = "/sessions"
"""The spec's spelling of the route, redirected to the SDK's (`NotteSimulator.path`)."""

_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})


def notte_row(
    id: str,
    status: str,
    created_at: str | float,
    last_accessed_at: str | float,
    *,
    idle_timeout_minutes: int = 3,
    max_duration_minutes: int | None = 15,
    closed_at: str | float | None = None,
    error: str | None = None,
    browser_type: str = "chromium",
    close_reason: str | None = None,
    system_hidden: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """A `SessionResponse` row as the API serializes it; timestamps may be unix seconds.

    `max_duration_minutes=None` omits the key (the spec gives it a default, not `null`);
    `close_reason` is one of the SDK's `manual`, `idle_timeout`, `max_duration`, `error`,
    `unknown` or None. `extra` adds or overrides keys.
    """
    row: dict[str, Any] = {
        "session_id": id,
        "idle_timeout_minutes": idle_timeout_minutes,
        "max_duration_minutes": max_duration_minutes,
        "created_at": timestamp(created_at, fraction=6),
        "closed_at": None if closed_at is None else timestamp(closed_at, fraction=6),
        "last_accessed_at": timestamp(last_accessed_at, fraction=6),
        "status": status,
        "close_reason": close_reason,
        "steps": [],
        "error": error,
        "proxies": False,
        "browser_type": browser_type,
        "use_file_storage": False,
        "network_request_bytes": 0,
        "network_response_bytes": 0,
        "user_agent": None,
        "viewport_width": None,
        "viewport_height": None,
        "headless": True,
        "solve_captchas": None,
        "cdp_url": None,
        "viewer_url": None,
        "web_bot_auth": False,
        "auth_ids": [],
        "system_hidden": system_hidden,
        "timeout_minutes": idle_timeout_minutes,
    }
    if max_duration_minutes is None:
        del row["max_duration_minutes"]
    return row | extra


class NotteSimulator(Simulator):
    """Serves a `PaginatedResponse[SessionResponse]` page of (by default only active) rows.

    With `endless` the API never ends: every page says `has_next: true`, and a page past
    the data serves the last page's rows again. `redirect_slashless=False` serves the spec's
    `/sessions` directly too, instead of redirecting it. `include_system=false` leaves out
    the rows whose `system_hidden` is true; the server's default is to include them (the
    SDK's generated server model says so; its docstring for the field says otherwise).
    """

    provider: ClassVar[str] = "notte"
    path: ClassVar[str] = "/sessions/"

    def __init__(
        self,
        *,
        sessions: Iterable[dict[str, Any]] = (),
        api_key: str = "test-key",
        endless: bool = False,
        redirect_slashless: bool = True,
    ) -> None:
        super().__init__(sessions=sessions, api_key=api_key)
        self.endless = endless
        self.redirect_slashless = redirect_slashless

    def redirects(self) -> dict[str, str]:
        return {SLASHLESS: self.path} if self.redirect_slashless else {}

    def aliases(self) -> tuple[str, ...]:
        return () if self.redirect_slashless else (SLASHLESS,)

    def payload(self, query: MultiMapping[str]) -> Any:
        errors: list[dict[str, Any]] = []
        page = _integer(query, "page", default=1, minimum=1, maximum=None, errors=errors)
        size = _integer(query, "page_size", default=10, minimum=1, maximum=100, errors=errors)
        only_active = _boolean(query, "only_active", default=True, errors=errors)
        _boolean(
            query, "only_current_token", default=False, errors=errors
        )  # validated, then ignored
        include_system = _boolean(query, "include_system", default=True, errors=errors)
        if errors:
            raise QueryError({"detail": errors}, status=422)
        rows = [
            row
            for row in self.sessions
            if (not only_active or row.get("status") == "active")
            and (include_system or not row.get("system_hidden"))
        ]
        start = (page - 1) * size
        if self.endless and start >= len(rows):
            start = max(0, (len(rows) - 1) // size * size)  # the last page again
        return {
            "items": rows[start : start + size],
            "page": page,
            "page_size": size,
            "has_next": self.endless or start + size < len(rows),
            "has_previous": page > 1,
        }

    def error_body(self, status: int, message: str) -> Any:
        return {"detail": message}


def _integer(
    query: MultiMapping[str],
    name: str,
    *,
    default: int,
    minimum: int,
    maximum: int | None,
    errors: list[dict[str, Any]],
) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    value = parse_int(raw)
    if value is None:
        message = "Input should be a valid integer, unable to parse string as an integer"
        errors.append(_error(name, "int_parsing", message, raw))
    elif value < minimum:
        message = f"Input should be greater than or equal to {minimum}"
        errors.append(_error(name, "greater_than_equal", message, raw, {"ge": minimum}))
    elif maximum is not None and value > maximum:
        message = f"Input should be less than or equal to {maximum}"
        errors.append(_error(name, "less_than_equal", message, raw, {"le": maximum}))
    else:
        return value
    return default


def _boolean(
    query: MultiMapping[str], name: str, *, default: bool, errors: list[dict[str, Any]]
) -> bool:
    raw = query.get(name)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    message = "Input should be a valid boolean, unable to interpret input"
    errors.append(_error(name, "bool_parsing", message, raw))
    return default


def _error(
    name: str, kind: str, message: str, raw: str, ctx: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One pydantic v2 `ValidationError` entry as FastAPI serializes it."""
    entry: dict[str, Any] = {"type": kind, "loc": ["query", name], "msg": message, "input": raw}
    if ctx is not None:
        entry["ctx"] = ctx
    return entry
