"""structlog setup: JSON lines by default, console rendering on a TTY, secrets redacted last.

Lines are written by one thread of their own, never by the caller: a log call renders its
line and puts it on a bounded queue, so a slow, stalled or closed log reader can neither
block the event loop nor raise into it. Lines that find the queue full, or that cannot be
written (the reader is gone), are dropped and counted (:func:`dropped_lines`).
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, MutableMapping
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


QUEUED_LINES = 10_000
"""Lines waiting for the writer thread at most; further ones are dropped (and counted)."""
_BATCH = 256
"""Lines the writer takes from the queue for one write."""
FLUSH_AT_EXIT = 1.0
"""Seconds the process waits at exit for queued lines to be written (a stalled reader)."""


class LineSink:
    """A bounded queue of rendered lines and the daemon thread that writes them.

    ``put`` never blocks and never raises. A stream with a file descriptor is written with
    ``os.write`` on a duplicate of it, so a write stalled on a full pipe holds no lock the
    rest of the process (``print``, the interpreter's exit) would wait for.
    """

    def __init__(self, stream: TextIO, *, capacity: int = QUEUED_LINES) -> None:
        self._stream = stream
        self._fd: int | None = None
        with contextlib.suppress(AttributeError, OSError, ValueError):
            self._fd = os.dup(stream.fileno())
        self._queue: queue.Queue[str | None] = queue.Queue(maxsize=capacity)
        self._lock = threading.Lock()
        self._dropped = 0
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()

    @property
    def dropped(self) -> int:
        """Lines dropped so far: the queue was full, or the stream could not take them."""
        return self._dropped

    def put(self, line: str) -> None:
        """Queue one line (without its newline); drop it when the queue is full."""
        try:
            self._queue.put_nowait(line)
        except queue.Full:
            self.drop(1)

    def drop(self, lines: int) -> None:
        """Count ``lines`` as dropped."""
        with self._lock:
            self._dropped += lines

    def close(self) -> None:
        """Stop the writer once the lines queued so far are written (within a bound)."""
        end = time.monotonic() + FLUSH_AT_EXIT
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=FLUSH_AT_EXIT)
        self._thread.join(max(0.0, end - time.monotonic()))
        if not self._thread.is_alive() and self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _run(self) -> None:
        while True:
            lines = [self._queue.get()]
            with contextlib.suppress(queue.Empty):
                while len(lines) < _BATCH:
                    lines.append(self._queue.get_nowait())
            stop = None in lines
            text = [line for line in lines if line is not None]
            try:
                self._write("".join(f"{line}\n" for line in text))
            except Exception:  # a closed or broken stream: the lines are lost
                self.drop(len(text))
            for _ in lines:
                self._queue.task_done()
            if stop:
                return

    def _write(self, data: str) -> None:
        if not data:
            return
        if self._fd is None:
            self._stream.write(data)
            self._stream.flush()
            return
        view = memoryview(data.encode("utf-8", "backslashreplace"))
        while view:
            view = view[os.write(self._fd, view) :]


class _SinkLogger:
    """structlog's logger at the end of the chain: hands the rendered line to the sink."""

    def __init__(self, sink: LineSink) -> None:
        self._sink = sink

    def msg(self, message: str) -> None:
        self._sink.put(message)

    log = debug = info = warn = warning = err = error = critical = exception = fatal = msg
    failure = msg


class _SinkHandler(logging.Handler):
    """stdlib logging (aiohttp's) into the same sink; a record that cannot be formatted is
    dropped and counted, never printed to stderr as ``--- Logging error ---``."""

    def __init__(self, sink: LineSink) -> None:
        super().__init__()
        self._sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # logging must never raise into its caller
            self._sink.drop(1)
            return
        self._sink.put(line)

    def handleError(self, record: logging.LogRecord) -> None:  # logging's own name
        self._sink.drop(1)


def _never_raising(renderer: Processor, sink: Callable[[], LineSink | None]) -> Processor:
    """``renderer``, with an event it cannot render dropped (and counted) instead of raised."""

    def render(logger: WrappedLogger, name: str, event: EventDict) -> Any:
        try:
            return renderer(logger, name, event)
        except Exception:  # logging must never raise into its caller
            current = sink()
            if current is not None:
                current.drop(1)
            raise structlog.DropEvent from None

    return render


_SINK: LineSink | None = None
_LEVEL_PINNED = False


def dropped_lines() -> int:
    """Log lines dropped since the process started (0 before logging is configured)."""
    return 0 if _SINK is None else _SINK.dropped


def _close_sink() -> None:
    if _SINK is not None:
        _SINK.close()


atexit.register(_close_sink)


def configure_logging(
    *,
    level: str = "info",
    fmt: LogFormat = "auto",
    stream: TextIO | None = None,
    pinned: bool = False,
) -> None:
    """Route structlog and stdlib logging (aiohttp's) through one pipeline to ``stream``.

    ``pinned``: the level was given on the command line, so a reloaded config's
    ``log_level`` does not change it (see :func:`follow_config_level`).
    """
    global _SINK, _LEVEL_PINNED  # noqa: PLW0603 - one logging pipeline per process
    out = stream or sys.stderr
    if _SINK is not None:
        _SINK.close()
    _SINK = sink = LineSink(out)
    _LEVEL_PINNED = pinned
    # a closed stderr is None: every line is then dropped (and counted)
    console = fmt == "console" or (fmt == "auto" and out is not None and out.isatty())
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
    tail: list[Processor] = [
        structlog.processors.format_exc_info,
        REDACTOR,
        _never_raising(renderer, lambda: _SINK),
    ]
    structlog.configure(
        processors=[*shared, *tail],
        logger_factory=lambda *_: _SinkLogger(sink),
        cache_logger_on_first_use=False,
    )
    handler = _SinkHandler(sink)
    handler.addFilter(AccessLines())  # before formatting, so the level shown is debug
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[_access_fields, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    _set_level(level)


def follow_config_level(level: str) -> bool:
    """Apply a reloaded config's ``log_level``, unless the command line pinned the level;
    whether it was applied."""
    if _LEVEL_PINNED or _SINK is None:
        return False
    _set_level(level)
    return True


def _set_level(level: str) -> None:
    """The level of structlog's events and of stdlib logging (aiohttp's)."""
    numeric = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(numeric))
    logging.getLogger().setLevel(max(numeric, logging.INFO))
    # access lines are debug events: above debug aiohttp skips them before formatting a line
    access_level = logging.NOTSET if numeric <= logging.DEBUG else logging.WARNING
    logging.getLogger(ACCESS_LOGGER).setLevel(access_level)
