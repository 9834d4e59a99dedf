"""Provider wire details as plain functions: error-body readers and rate-limit reset units.

Each provider module attaches the ones it needs as its hooks (``Provider.error_detail``,
``Provider.rate_limit_reset``); the shapes follow each provider's official SDK. A reader
that finds nothing of its provider's shape falls back to :func:`generic_error_detail`, so
an answer from a proxy or gateway in front of the API still shows what it said.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import orjson

from exporter.upstream.errors import brief, clip
from exporter.upstream.fetch import ERROR_BODY_BYTES, header_number

SNIPPET = 300
"""The longest error detail, in characters (every key masked before the text is cut)."""
READ = ERROR_BODY_BYTES
"""How much of an error body is read for its detail: the fetcher reads no more of a failed
answer, and a longer body (a 2xx one) is read as text, never decoded whole."""


class _NotJson:
    """The decoded value of a body that is not JSON."""


_NOT_JSON = _NotJson()


class _Body:
    """The first :data:`READ` bytes of an error body, decoded once however many readers
    (a provider's, then the generic fallback) look at it."""

    __slots__ = ("_data", "_decoded", "raw")

    def __init__(self, body: bytes) -> None:
        self.raw = body[:READ]
        self._data: object = None
        self._decoded = False

    @property
    def data(self) -> object:
        """The decoded JSON, or ``_NOT_JSON`` (a body cut at :data:`READ` is not JSON)."""
        if not self._decoded:
            try:
                self._data = orjson.loads(self.raw)
            except orjson.JSONDecodeError:
                self._data = _NOT_JSON
            self._decoded = True
        return self._data


def _text(value: object) -> str | None:
    """A non-empty string value, whitespace-collapsed; None for anything else."""
    if isinstance(value, str) and value.strip():
        return brief(value, limit=SNIPPET)
    return None


def _done(parts: list[str], body: _Body) -> str:
    """The parts found, or the generic reading of the body when there are none."""
    text = " ".join(p for p in parts if p)
    return clip(text, SNIPPET) if text else _generic(body)


def generic_error_detail(body: bytes) -> str:
    """The human part of an error body: ``details[].message``, ``detail``, ``error`` or text.

    The default for a provider without its own reader (and the fallback of those readers).
    """
    return _generic(_Body(body))


def _generic(body: _Body) -> str:
    data = body.data
    if isinstance(data, _NotJson):
        # masked before it is cut: a key echoed across the cut must not leave half of itself
        return clip(body.raw.decode("utf-8", "replace").strip(), SNIPPET)
    parts: list[str] = []
    if isinstance(data, dict):
        details = data.get("details")
        if isinstance(details, list):
            parts = [brief(d.get("message")) for d in details if isinstance(d, dict)]
        detail = data.get("detail")
        if not parts and isinstance(detail, list):
            parts = [brief(d.get("msg")) for d in detail if isinstance(d, dict)]
        elif not parts and detail is not None:
            parts = [brief(detail)]
        errors = data.get("errors")
        if not parts and isinstance(errors, list):
            parts = [
                brief(e.get("message", e)) if isinstance(e, dict) else brief(e) for e in errors
            ]
        if not parts and data.get("error") is not None:
            parts = [brief(data["error"])]
        elif isinstance(data.get("error"), str) and parts:
            parts.insert(0, data["error"] + ":")
    return clip(" ".join(parts), SNIPPET)


def _coded(code: str | None, message: str | None) -> str:
    """``code: message``, or whichever of the two there is."""
    if code and message and code != message:
        return f"{code}: {message}"
    return message or code or ""


def chaser_error_detail(body: bytes) -> str:
    """Chaser: ``{"code", "message"}`` or ``{"error"}``, non-empty strings only.

    As chaser-sdk's ``api_error_from_response`` reads them (``code = code or error``,
    ``message = message or error``).
    """
    return _chaser(_Body(body))


def _chaser(body: _Body) -> str:
    data = body.data
    if not isinstance(data, dict):
        return _done([], body)
    error = _text(data.get("error"))
    code = _text(data.get("code")) or error
    message = _text(data.get("message")) or error
    return _done([_coded(code, message)], body)


def fastapi_error_detail(body: bytes) -> str:
    """AGI and Notte (FastAPI): ``{"detail": str}`` or ``{"detail": [{"loc", "msg", "type"}]}``.

    A validation list reads ``query.page_size: Input should be ...; ...``.
    """
    return _fastapi(_Body(body))


def _fastapi(body: _Body) -> str:
    data = body.data
    if not isinstance(data, dict) or data.get("detail") is None:
        return _done([], body)
    detail = data["detail"]
    if not isinstance(detail, list):
        return _done([brief(detail, limit=SNIPPET)], body)
    parts = []
    for item in detail:
        if not isinstance(item, dict):
            parts.append(brief(item))
            continue
        loc = item.get("loc")
        where = ".".join(str(p) for p in loc) if isinstance(loc, list) else ""
        msg = brief(item.get("msg", item))
        parts.append(f"{where}: {msg}" if where else msg)
    return _done(["; ".join(parts)], body)


agi_error_detail = fastapi_error_detail


def notte_error_detail(body: bytes) -> str:
    """Notte: FastAPI's ``detail``, else a top-level ``message`` (``{"status", "message"}``).

    notte-sdk reads both keys of an error body, and wraps a body that is not JSON as
    ``{"message": text}``; ``detail`` wins when both are there.
    """
    return _notte(_Body(body))


def _notte(body: _Body) -> str:
    data = body.data
    if isinstance(data, dict) and data.get("detail") is None:
        message = _text(data.get("message"))
        if message is not None:
            return _done([message], body)
    return _fastapi(body)


def trigger_error_detail(body: bytes) -> str:
    """Trigger.dev: ``{"error": str | {"message"}, "details": [{"code", "message", "path"}]}``.

    As ``ApiError.makeMessage`` of ``@trigger.dev/core`` reads ``error``, followed by the
    spec's ``details[].message``: ``Query Error: Invalid status values: FOOBAR``.
    """
    return _trigger(_Body(body))


def _trigger(body: _Body) -> str:
    data = body.data
    if not isinstance(data, dict):
        return _done([], body)
    error = data.get("error")
    head = _text(error.get("message")) if isinstance(error, dict) else _text(error)
    if head is None and isinstance(error, dict | list):
        head = brief(error, limit=SNIPPET)
    details = data.get("details")
    listed = [
        text
        for d in (details if isinstance(details, list) else [])
        if isinstance(d, dict) and (text := _text(d.get("message")))
    ]
    if head and listed:
        return _done([f"{head}: " + "; ".join(listed)], body)
    return _done([head or "; ".join(listed)], body)


def together_error_detail(body: bytes) -> str:
    """Together: ``{"error": {"message", "type", "code"}}``, ``{"error": str}`` or
    ``{"errors": [str | {"message"}]}``.

    The Stainless SDK keeps the decoded body and its tools read ``error.message``; the
    list form is the one of the API's envelope. Reads ``code: message`` (``type`` when
    there is no ``code``).
    """
    return _together(_Body(body))


def _together(body: _Body) -> str:
    data = body.data
    if not isinstance(data, dict):
        return _done([], body)
    error = data.get("error")
    if isinstance(error, dict):
        code = _text(error.get("code")) or _text(error.get("type"))
        return _done([_coded(code, _text(error.get("message")))], body)
    if _text(error):
        return _done([_text(error) or ""], body)
    errors = data.get("errors")
    if isinstance(errors, list):
        parts = [
            _text(e.get("message")) or brief(e) if isinstance(e, dict) else brief(e) for e in errors
        ]
        return _done(["; ".join(parts)], body)
    return _done([], body)


def trigger_rate_limit_reset(headers: Mapping[str, str], now: float) -> float | None:
    """Trigger.dev's ``x-ratelimit-reset``: a unix time in **milliseconds** (as seconds here).

    ``@trigger.dev/core``'s apiClient: "x-ratelimit-reset is the unix timestamp in
    milliseconds when the rate limit will reset". ``now`` is not needed for this unit.
    """
    return epoch_ms_rate_limit_reset(headers, now)


def epoch_ms_rate_limit_reset(headers: Mapping[str, str], now: float) -> float | None:
    """``X-RateLimit-Reset`` as a unix time in milliseconds (as seconds here): a
    definition's ``rate_limit_reset: epoch_ms``. ``now`` is not needed for this unit."""
    value = header_number(headers, "X-RateLimit-Reset")
    if value is None or not math.isfinite(value) or value < 0:
        return None
    return value / 1000.0
