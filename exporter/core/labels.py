"""Label values that come from provider data: made safe, and capped in number per target."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping

OTHER = "other"
MAX_LENGTH = 64
SESSION_ID_MAX_LENGTH = 128
"""The longest ``session_id`` label value (ids are UUIDs or shorter; a 100 KB id is hostile)."""
_DIGEST = 8


def clean(value: str, *, max_length: int = MAX_LENGTH) -> str:
    """``value`` without control, format (zero-width) or other unprintable characters and
    runs of white space, at most ``max_length`` characters; never empty."""
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in value).split())
    return text[:max_length] or "empty"


def session_id(value: str) -> str:
    """A session id as a label value: as it is when that is safe, else cleaned and cut to
    :data:`SESSION_ID_MAX_LENGTH` with ``~`` and a digest of the raw id appended, so two ids
    that clean to the same text still make two series."""
    safe = clean(value, max_length=SESSION_ID_MAX_LENGTH)
    if safe == value:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:_DIGEST]
    return f"{clean(value, max_length=SESSION_ID_MAX_LENGTH - _DIGEST - 1)}~{digest}"


def fold(counts: Mapping[str, int], *, keep: Iterable[str], limit: int) -> dict[str, str]:
    """Each raw value's label: values in ``keep`` as they are, others :func:`clean`, and past
    ``limit`` distinct values (counted after cleaning) folded into ``other`` by :func:`cap`.

    The same mapping the ``sessions`` series apply to statuses, for per-session series.
    """
    kept = set(keep)
    cleaned = {raw: raw if raw in kept else clean(raw) for raw in counts}
    merged: Counter[str] = Counter()
    for raw, count in counts.items():
        merged[cleaned[raw]] += count
    mapping = cap(merged, keep=kept, limit=limit)
    return {raw: mapping[name] for raw, name in cleaned.items()}


def cap(counts: Counter[str], *, keep: Iterable[str], limit: int) -> dict[str, str]:
    """Map each value to itself or to ``other``.

    Values in ``keep`` (the documented ones) always stay; of the rest, the
    ``limit`` most frequent stay (ties by name) and the others fold into ``other``.
    """
    kept = set(keep)
    extra = sorted((v for v in counts if v not in kept), key=lambda v: (-counts[v], v))
    folded = set(extra[limit:])
    return {v: OTHER if v in folded else v for v in counts}
