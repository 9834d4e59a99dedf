"""Errors a 2xx answer lists beside its rows (a definition's ``errors``, Together's array).

They are counted in ``sessions_exporter_upstream_errors_total`` and the first ten are
logged; the poll still exports the rows it got. The array is read as rows are (a chunk at a
time, only the kept items decoded), so a hostile one of millions of items neither holds the
event loop nor builds them all. When the rows are missing, the schema error quotes the first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import msgspec

from exporter.providers import rows
from exporter.providers.rows import iter_array, raw_kind
from exporter.upstream.errors import SchemaError, brief

ERROR_TEXT_LIMIT = 200
"""Upstream error messages are cut to this many characters before they are logged."""
ERRORS_KEPT = 10
"""Listed upstream errors read and logged per answer; the rest are counted only."""
ERROR_ITEM_BYTES = 64 * 1024
"""A listed error longer than this is shown by its first bytes, not decoded."""


async def error_messages(
    value: msgspec.Raw | None, *, where: str = "response.errors"
) -> tuple[list[str], int]:
    """The first :data:`ERRORS_KEPT` of the listed errors (``where`` in the answer) as short
    strings, and how many more it lists (an absent or null array is no errors).

    Strings are taken as they are, an object by its ``message``, else as its JSON. Read as
    rows are: a chunk of whole items at a time, with a turn for the event loop between
    chunks, and only the kept items decoded; the others are counted, never built.
    """
    if value is None:
        return [], 0
    view = memoryview(value)
    text = bytes(view[:_HEAD]).lstrip()
    if text.startswith(b"null"):
        return [], 0
    if not text.startswith(b"["):
        raise SchemaError(f"{where}: expected an array, got {raw_kind(text)}")
    kept: list[str] = []
    listed = 0
    for chunk in iter_array(view, rows.CHUNK_BYTES):  # read when called: a test may lower it
        items = _RAW_ITEMS.decode(chunk)
        listed += len(items)
        for item in items[: ERRORS_KEPT - len(kept)]:
            kept.append(_error_text(_decoded(item)))
        del items
        await asyncio.sleep(0)
    return kept, listed - len(kept)


def quoted(exc: SchemaError, messages: list[str], *, name: str = "errors") -> SchemaError:
    """A schema error of an answer that listed errors, quoting the first (``name``: where
    the array is, as ``errors`` or ``meta.errors``); unchanged when it listed none."""
    if not messages:
        return exc
    return SchemaError(f"{exc.message} (the response's {name}[0]: {messages[0]})")


_HEAD = 16
_RAW_ITEMS = msgspec.json.Decoder(list[msgspec.Raw])
_ITEM = msgspec.json.Decoder(float_hook=float)
"""A listed error decoded: a number beyond a float's range reads as infinite, not failing."""


def _decoded(item: msgspec.Raw) -> object:
    """One listed error, decoded when it is of a reasonable size (else its first bytes)."""
    if len(item) > ERROR_ITEM_BYTES:
        return bytes(memoryview(item)[:ERROR_TEXT_LIMIT]).decode("utf-8", "replace")
    return _ITEM.decode(item)


def _error_text(item: object) -> str:
    if isinstance(item, Mapping):
        message = item.get("message")
        if isinstance(message, str) and message:
            item = message
    return brief(item, limit=ERROR_TEXT_LIMIT)
