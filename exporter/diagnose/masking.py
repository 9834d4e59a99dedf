"""Masking the values a diagnostic shows, so a report can be shared without the data in it.

A string is shown by its length and at most ``PREFIX`` leading characters (fewer for short
ones); a timestamp is shown whole; numbers, booleans and null are shown as they are. A
string holding the API key (in any of the forms the logs mask, or JSON-escaped) is shown by
its length alone, and :meth:`Masker.scrub` removes the key from any finished text as the
last step.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, unquote_plus

from exporter.core.logs import Redactor
from exporter.core.timeparse import parse_datetime

PREFIX = 4
"""The most leading characters of a string that are shown (a quarter of its length at most)."""
REDACTED = "[REDACTED]"
"""The key's stand-in, as in the logs and poll errors."""
TRACE_MASK = "[redacted]"
"""The stand-in the fetcher's request trace already put in URLs and headers."""
MIN_SECRET = 4
"""A shorter key is not searched for (masking it would mangle the report, as in the logs)."""
DEPTH = 3
"""Nested objects and arrays are shown this many levels deep."""
ITEMS = 3
"""An array shows its first few items."""

_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?)?"
    r"(?:[Zz]|[+-][0-9]{2}:?[0-9]{2})?"
)
"""An ISO 8601 date or date-time in the extended format (a string of digits is no timestamp)."""

Masked = Any
"""A masked JSON value: a scalar, or a dict tagged by what it stands for (see :meth:`value`)."""


def json_type(value: object) -> str:
    """The JSON type of a decoded value: string, integer, number, boolean, null, object, array."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def is_timestamp(text: str) -> bool:
    """Whether ``text`` is an ISO 8601 timestamp (shown whole: it is no secret)."""
    if not _TIMESTAMP.fullmatch(text):
        return False
    try:
        parse_datetime(text)
    except ValueError:
        return False
    return True


class Masker:
    """Masks values and scrubs text for one target's key (``None``: no key to hide)."""

    def __init__(self, secret: str | None) -> None:
        self._redactor = Redactor()  # the logs' forms: raw, URL-encoded, base64
        escaped: set[str] = set()
        if secret and len(secret) >= MIN_SECRET:
            self._redactor.add(secret)
            escaped = {json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
            escaped.discard(secret)
        self._escaped = tuple(sorted(escaped, key=len, reverse=True))

    def holds_secret(self, text: str) -> bool:
        """Whether ``text`` contains the key in any form, percent-decoded or not."""
        return any(
            self.scrub(form) != form.replace(TRACE_MASK, REDACTED)
            for form in (text, unquote(text), unquote_plus(text))
        )

    def scrub(self, text: str) -> str:
        """``text`` with every form of the key replaced by ``[REDACTED]``."""
        for form in self._escaped:
            text = text.replace(form, REDACTED)
        return self._redactor.scrub(text).replace(TRACE_MASK, REDACTED)

    def url(self, text: str) -> str:
        """A URL to show: scrubbed, its query (or all of it) redacted if the key is in it
        in a spelling :meth:`scrub` cannot replace (partly percent-encoded)."""
        text = self.scrub(text)
        if not self.holds_secret(text):
            return text
        base = text.partition("?")[0]
        return REDACTED if self.holds_secret(base) else f"{base}?{REDACTED}"

    def string(self, text: str) -> Masked:
        """A string: ``{"timestamp": text}``, ``{"length", "prefix"}`` or ``{"length",
        "redacted"}``."""
        if self.holds_secret(text):
            return {"length": len(text), "redacted": True}
        if is_timestamp(text):
            return {"timestamp": text}
        return {"length": len(text), "prefix": text[: min(PREFIX, len(text) // 4)]}

    def value(self, value: object, depth: int = 0) -> Masked:
        """Any decoded JSON value, masked; objects and arrays to ``DEPTH`` levels.

        An object is ``{"object": {key: masked}}`` (``{"keys": n}`` below the depth), an
        array ``{"items": n, "first": [masked, ...]}`` (``{"items": n}`` below the depth).
        """
        if isinstance(value, str):
            return self.string(value)
        if isinstance(value, dict):
            if depth >= DEPTH:
                return {"keys": len(value)}
            return {
                "object": {self.scrub(str(k)): self.value(v, depth + 1) for k, v in value.items()}
            }
        if isinstance(value, list):
            if depth >= DEPTH:
                return {"items": len(value)}
            first = [self.value(v, depth + 1) for v in value[:ITEMS]]
            return {"items": len(value), "first": first}
        return value


def render(masked: Masked) -> str:
    """One masked value as the text report shows it: ``"sess…" (36 chars)``, ``12``, ..."""
    if not isinstance(masked, dict):
        return json.dumps(masked)
    if "timestamp" in masked:
        return json.dumps(masked["timestamp"])
    if "length" in masked:
        return _string(masked)
    if "object" in masked:
        inner = ", ".join(f"{json.dumps(k)}: {render(v)}" for k, v in masked["object"].items())
        return "{" + inner + "}"
    if "keys" in masked:
        return f"{{… {_plural(masked['keys'], 'key')}}}"
    return _array(masked)


def _string(masked: Mapping[str, Any]) -> str:
    length = masked["length"]
    if masked.get("redacted"):
        return f"{REDACTED} ({_chars(length)})"
    if not length:
        return '""'
    return f"{json.dumps(masked['prefix'] + '…', ensure_ascii=False)} ({_chars(length)})"


def _array(masked: Mapping[str, Any]) -> str:
    items = masked["items"]
    if "first" not in masked:
        return f"[… {_plural(items, 'item')}]"
    shown = [render(v) for v in masked["first"]]
    if items > len(shown):
        shown.append(f"… {_plural(items, 'item')}")
    return "[" + ", ".join(shown) + "]"


def _chars(length: int) -> str:
    return _plural(length, "char")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
