"""Label values that come from provider data: made safe, and capped in number per target."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

OTHER = "other"
MAX_LENGTH = 64


def clean(value: str) -> str:
    """``value`` without control characters or runs of white space, at most 64 characters."""
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in value).split())
    return text[:MAX_LENGTH] or "empty"


def cap(counts: Counter[str], *, keep: Iterable[str], limit: int) -> dict[str, str]:
    """Map each value to itself or to ``other``.

    Values in ``keep`` (the documented ones) always stay; of the rest, the
    ``limit`` most frequent stay (ties by name) and the others fold into ``other``.
    """
    kept = set(keep)
    extra = sorted((v for v in counts if v not in kept), key=lambda v: (-counts[v], v))
    folded = set(extra[limit:])
    return {v: OTHER if v in folded else v for v in counts}
