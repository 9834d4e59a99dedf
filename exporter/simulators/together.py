"""Together Code Interpreter: `GET /v1/tci/sessions`, every listed session is live, no paging."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from multidict import MultiMapping

from .base import Simulator, timestamp

__all__ = ["TogetherSimulator", "together_row"]


def together_row(
    id: str,
    started_at: str | float,
    expires_at: str | float,
    *,
    last_execute_at: str | float | None = None,
    execute_count: int = 0,
    **extra: Any,
) -> dict[str, Any]:
    """A session row; timestamps may be unix seconds, `last_execute_at` defaults to `started_at`.

    `extra` adds or overrides keys.
    """
    row: dict[str, Any] = {
        "id": id,
        "started_at": timestamp(started_at),
        "expires_at": timestamp(expires_at),
        "last_execute_at": timestamp(started_at if last_execute_at is None else last_execute_at),
        "execute_count": execute_count,
    }
    return row | extra


class TogetherSimulator(Simulator):
    """Serves `{"data": {"sessions": rows}, "errors": errors}`; `errors` is settable."""

    provider: ClassVar[str] = "together"
    path: ClassVar[str] = "/v1/tci/sessions"

    def __init__(
        self,
        *,
        sessions: Iterable[dict[str, Any]] = (),
        api_key: str = "test-key",
        errors: Iterable[Any] = (),
    ) -> None:
        super().__init__(sessions=sessions, api_key=api_key)
        self.errors: list[Any] = list(errors)

    def payload(self, query: MultiMapping[str]) -> Any:
        return {"data": {"sessions": self.sessions}, "errors": self.errors}

    def error_body(self, status: int, message: str) -> Any:
        return {"errors": [message]}
