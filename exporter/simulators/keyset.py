"""Keyset paging shared by the cursor simulators: rows in a fixed order, a page after a row.

A cursor names a row (by id, or an opaque token that wraps the id). The next page starts at
the first row that sorts strictly after it, so a walk is stable when rows arrive or leave
mid-walk. The named row need not pass the request's filters, only exist.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["Key", "Row", "begin_after", "find", "token", "untoken"]

Row = dict[str, Any]
Key = tuple[Any, ...]


def begin_after(
    ordered: Sequence[Row], key: Callable[[Row], Key], cursor: Key | None, *, descending: bool
) -> int:
    """Index in `ordered` (sorted by `key`) of the first row strictly after `cursor`."""
    if cursor is None:
        return 0
    if descending:
        return sum(1 for row in ordered if key(row) >= cursor)
    return sum(1 for row in ordered if key(row) <= cursor)


def find(rows: Sequence[Row], id_key: str, wanted: str) -> Row | None:
    """The row whose `id_key` is `wanted`, else None."""
    return next((row for row in rows if row.get(id_key) == wanted), None)


def token(row_id: str) -> str:
    """An opaque cursor naming a row: its id in unpadded URL-safe base64."""
    return base64.urlsafe_b64encode(row_id.encode()).decode().rstrip("=")


def untoken(raw: str) -> str | None:
    """The row id an opaque cursor from `token` names, or None when it is not one."""
    try:
        decoded = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return decoded if decoded and token(decoded) == raw else None
