"""structlog setup: JSON lines by default, console rendering on a TTY, secrets redacted last."""

from __future__ import annotations

import base64
import contextlib
import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Literal, TextIO
from urllib.parse import quote, quote_plus

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

LogFormat = Literal["auto", "json", "console"]
_MIN_SECRET = 4
_MASK = "[REDACTED]"


class Redactor:
    """Replaces every registered secret, in every form a server may echo it, in every string of
    a log event.

    The exporter never logs a key on purpose; this is the last line of defence for one that
    slips into an exception message, a traceback or an error body the provider sent back.
    Besides the key itself it masks its URL-encoded forms and its base64 forms, also inside
    a longer base64 text (``Bearer <key>`` encoded, a token that embeds the key): for each of
    the three alignments a key can have in base64, the characters that depend on the key alone.
    """

    def __init__(self) -> None:
        self._keys: frozenset[str] = frozenset()
        self._forms: tuple[str, ...] = ()

    def add(self, secret: str) -> None:
        """Register a secret (too-short values are ignored: masking them would mangle logs)."""
        if len(secret) < _MIN_SECRET or secret in self._keys:
            return
        self._keys = self._keys | {secret}
        forms = set(self._forms) | _forms(secret)
        self._forms = tuple(sorted(forms, key=lambda f: (-len(f), f)))  # longest first

    def __call__(self, _logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
        if self._forms:
            for key, value in event.items():
                event[key] = self._scrub(value)
        return event

    def scrub(self, text: str) -> str:
        """``text`` with every registered secret masked, in each of its forms."""
        for form in self._forms:
            if form in text:
                text = text.replace(form, _MASK)
        return text

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, MutableMapping):
            return {k: self._scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._scrub(v) for v in value]
        return value


_MIN_CORE = 8
"""Shorter base64 fragments are not masked: they would match unrelated text."""


def _forms(secret: str) -> set[str]:
    """The key as written, URL-encoded, and in base64 (standard and URL-safe alphabets)."""
    forms = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret)}
    raw = secret.encode("utf-8", "surrogatepass")
    encoded = [base64.b64encode(raw).decode(), base64.b64encode(b"Bearer " + raw).decode()]
    for offset in range(3):
        # in base64 of any text holding the key at this offset mod 3, these characters are
        # fixed: skip those that mix in bytes before the key, stop at the last whole group
        text = base64.b64encode(b"\0" * offset + raw).decode()
        core = text[(0, 2, 3)[offset] : 4 * ((offset + len(raw)) // 3)]
        if len(core) >= _MIN_CORE:
            encoded.append(core)
    for form in encoded:
        forms |= {
            form,
            form.rstrip("="),
            form.translate(_URLSAFE),
            form.translate(_URLSAFE).rstrip("="),
        }
    return {f for f in forms if len(f) >= _MIN_SECRET}


_URLSAFE = str.maketrans("+/", "-_")


REDACTOR = Redactor()
"""The process-wide redactor; keys are registered with it as they are resolved."""

ACCESS_LOGGER = "aiohttp.access"
"""aiohttp's access log: only the demo's simulated providers write it (``serve`` has none)."""


class AccessLines(logging.Filter):
    """Turns aiohttp's access lines into debug events: ``http.access`` with fields.

    aiohttp logs each request at info with the whole Apache-style line as its message; the
    demo's simulators answer a few dozen requests per poll round, which buried the warnings.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == ACCESS_LOGGER:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


def _access_fields(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    """An access record's fields (method, path, status, bytes) instead of its text line."""
    record = event.get("_record")
    if record is None or record.name != ACCESS_LOGGER:
        return event
    method, _, rest = str(getattr(record, "first_request_line", "")).partition(" ")
    event["event"] = "http.access"
    event["method"] = method
    event["path"] = rest.rpartition(" ")[0] or rest
    with contextlib.suppress(TypeError, ValueError):
        event["status"] = int(getattr(record, "response_status", ""))
    with contextlib.suppress(TypeError, ValueError):
        event["bytes"] = int(getattr(record, "response_size", ""))
    return event


def configure_logging(
    *, level: str = "info", fmt: LogFormat = "auto", stream: TextIO | None = None
) -> None:
    """Route structlog and stdlib logging (aiohttp's) through one pipeline to ``stream``."""
    out = stream or sys.stderr
    console = fmt == "console" or (fmt == "auto" and out.isatty())
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(colors=False)
        if console
        else structlog.processors.JSONRenderer()
    )
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    tail: list[Processor] = [structlog.processors.format_exc_info, REDACTOR, renderer]
    numeric = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[*shared, *tail],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.addFilter(AccessLines())  # before formatting, so the level shown is debug
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[_access_fields, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, logging.INFO))
    # access lines are debug events: above debug aiohttp skips them before formatting a line
    access_level = logging.NOTSET if numeric <= logging.DEBUG else logging.WARNING
    logging.getLogger(ACCESS_LOGGER).setLevel(access_level)
