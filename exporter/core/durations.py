"""Prometheus-style durations (``500ms``, ``30s``, ``5m``, ``1h``, ``1d``, ``1m30s``) or seconds."""

from __future__ import annotations

import math
import re

_UNITS = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
    "y": 31536000.0,
}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?|-?(?:nan|inf(?:inity)?)", re.IGNORECASE)
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w|y))+")


def parse_duration(value: object) -> float:
    """Return the duration in seconds; raise ``ValueError`` with a readable message otherwise."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m or a number of seconds")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if _NUMBER.fullmatch(text):
            seconds = float(text)
        elif _WHOLE.fullmatch(text):
            parts = _PART.findall(text)
            sizes = [_UNITS[unit] for _, unit in parts]
            if sizes != sorted(set(sizes), reverse=True):
                raise ValueError(
                    f"invalid duration {value!r}: units must go from largest to smallest, "
                    "each at most once (like 1h30m)"
                )
            seconds = sum(float(n) * _UNITS[u] for n, u in parts)
        else:
            raise ValueError(
                f"invalid duration {value!r}: use a number of seconds or units "
                "like 500ms, 30s, 5m, 1h, 1d, 1m30s"
            )
    else:
        raise ValueError("expected a duration such as 30s, 5m or a number of seconds")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"invalid duration {value!r}: must be a finite, non-negative time")
    return seconds


def format_duration(seconds: float) -> str:
    """Render seconds the way a config file would write them (``90`` -> ``1m30s``)."""
    if seconds == 0:
        return "0s"
    if seconds < 1 or seconds != int(seconds):
        return f"{seconds:.6f}".rstrip("0").rstrip(".") + "s"
    rest = int(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
