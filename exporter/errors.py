"""Domain errors of a poll, each mapped to the ``reason`` label of the error counter."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why a poll failed; every value is pre-declared with 0 in the error counter."""

    TIMEOUT = "timeout"
    CONNECT = "connect"
    HTTP_4XX = "http_4xx"
    HTTP_5XX = "http_5xx"
    AUTH = "auth"
    DECODE = "decode"
    SCHEMA = "schema"
    TOO_MANY_PAGES = "too_many_pages"
    TOO_LARGE = "too_large"
    KEY = "key"
    UNEXPECTED = "unexpected"


class PollError(Exception):
    """A poll failed for a known reason; the message is safe to log and show (no secrets)."""

    def __init__(
        self,
        reason: Reason,
        message: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after


class SchemaError(PollError):
    """The provider answered valid JSON of a shape its spec does not allow."""

    def __init__(self, message: str) -> None:
        super().__init__(Reason.SCHEMA, message)
