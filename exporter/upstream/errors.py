"""Domain errors of a poll, each mapped to the ``reason`` label of the error counter."""

from __future__ import annotations

import json
from enum import StrEnum

from exporter.core.logs import REDACTOR


class Reason(StrEnum):
    """Why a poll failed; every value is pre-declared with 0 in the error counter."""

    TIMEOUT = "timeout"
    CONNECT = "connect"
    TLS = "tls"
    HTTP_4XX = "http_4xx"
    HTTP_5XX = "http_5xx"
    AUTH = "auth"
    DECODE = "decode"
    SCHEMA = "schema"
    TOO_MANY_PAGES = "too_many_pages"
    TOO_LARGE = "too_large"
    KEY = "key"
    UNEXPECTED = "unexpected"


_BRIEF_DEPTH = 3
_BRIEF_ITEMS = 8


def brief(value: object, *, limit: int = 200) -> str:
    """A short rendering of a decoded JSON value for a message, safe at any nesting depth.

    A string is shown as it is; anything else as compact JSON, containers to a few levels
    and items; registered keys are masked before the cut (see :func:`clip`).
    ``repr``/``str`` (or ``orjson.dumps``) of a value nested a thousand deep,
    which orjson decodes, would overflow the stack instead.
    """

    def render(item: object, depth: int) -> str:
        if isinstance(item, dict):
            if depth >= _BRIEF_DEPTH:
                return "{…}"
            parts = [
                f"{json.dumps(str(k))}:{render(v, depth + 1)}"
                for k, v in list(item.items())[:_BRIEF_ITEMS]
            ]
            return "{" + ",".join(parts) + (",…}" if len(item) > _BRIEF_ITEMS else "}")
        if isinstance(item, list):
            if depth >= _BRIEF_DEPTH:
                return "[…]"
            parts = [render(v, depth + 1) for v in item[:_BRIEF_ITEMS]]
            return "[" + ",".join(parts) + (",…]" if len(item) > _BRIEF_ITEMS else "]")
        return json.dumps(item, ensure_ascii=False, default=repr)

    text = value if isinstance(value, str) else render(value, 0)
    return clip(" ".join(text.split()), limit)


def clip(text: str, limit: int) -> str:
    """``text`` with every registered key masked (in each of its forms), then cut to ``limit``.

    Masking comes first: were the text cut first, a key echoed across the cut would lose its
    tail, its first part would no longer be recognised, and it would reach the log and the
    landing page. Every place that shortens text from a provider calls this.
    """
    text = REDACTOR.scrub(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
