"""Durations as the config writes them: seconds or Prometheus-style units, and back."""

from __future__ import annotations

import math
import re

import pytest

from exporter.core.durations import format_duration, parse_duration

UNITS_HINT = "use a number of seconds or units like 500ms, 30s, 5m, 1h, 1d, 1m30s"
NOT_NEGATIVE = "must be a finite, non-negative time"
WRONG_TYPE = "expected a duration such as 30s, 5m or a number of seconds"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("1ms", 0.001),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1d", 86400.0),
        ("1w", 604800.0),
        ("1y", 31536000.0),
    ],
)
def test_every_unit(text: str, seconds: float) -> None:
    """Each Prometheus unit (ms, s, m, h, d, w, y) scales its number to seconds."""
    assert seconds == pytest.approx(parse_duration(text))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1m30s", 90.0),
        ("1h30m", 5400.0),
        ("1d2h3m4s", 93784.0),
        ("1s500ms", 1.5),
        ("2h0m", 7200.0),
    ],
)
def test_unit_combinations_add_up(text: str, seconds: float) -> None:
    """Concatenated unit parts are summed, as Prometheus durations are."""
    assert seconds == pytest.approx(parse_duration(text))


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (30, 30.0),
        (0, 0.0),
        (2.5, 2.5),
        ("30", 30.0),
        ("0.25", 0.25),
        ("  30s  ", 30.0),
        ("1.5s", 1.5),
    ],
)
def test_plain_numbers_are_seconds(value: object, seconds: float) -> None:
    """Numbers, numeric strings and surrounding whitespace are read as seconds."""
    assert seconds == parse_duration(value)


def test_result_is_a_float() -> None:
    """An int in the config still yields a float, so callers never see mixed types."""
    assert isinstance(parse_duration(30), float)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", f"invalid duration '': {UNITS_HINT}"),
        ("   ", f"invalid duration '   ': {UNITS_HINT}"),
        ("5x", f"invalid duration '5x': {UNITS_HINT}"),
        ("-1s", f"invalid duration '-1s': {UNITS_HINT}"),
        ("1.5.5s", f"invalid duration '1.5.5s': {UNITS_HINT}"),
        ("30 s", f"invalid duration '30 s': {UNITS_HINT}"),
        ("s", f"invalid duration 's': {UNITS_HINT}"),
        ("1m30", f"invalid duration '1m30': {UNITS_HINT}"),
        ("-1", f"invalid duration '-1': {NOT_NEGATIVE}"),
        (-5, f"invalid duration -5: {NOT_NEGATIVE}"),
        ("nan", f"invalid duration 'nan': {NOT_NEGATIVE}"),
        (math.nan, f"invalid duration nan: {NOT_NEGATIVE}"),
        ("inf", f"invalid duration 'inf': {NOT_NEGATIVE}"),
        (math.inf, f"invalid duration inf: {NOT_NEGATIVE}"),
        (True, WRONG_TYPE),
        (False, WRONG_TYPE),
        (None, WRONG_TYPE),
        ([30], WRONG_TYPE),
    ],
)
def test_bad_input_is_rejected_with_a_readable_message(value: object, message: str) -> None:
    """Malformed, negative, non-finite and non-duration values raise ValueError saying why."""
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        parse_duration(value)
    assert message == str(caught.value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.5, "0.5s"),
        (1, "1s"),
        (30, "30s"),
        (60, "1m"),
        (90, "1m30s"),
        (3600, "1h"),
        (5400, "1h30m"),
        (86400, "1d"),
        (90061, "1d1h1m1s"),
        (1.5, "1.5s"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    """Seconds are rendered the way a config file would write them."""
    assert text == format_duration(seconds)


@pytest.mark.parametrize(
    "seconds", [0.0, 0.001, 0.5, 1.0, 30.0, 90.0, 90.25, 3600.5, 5400.0, 93784.0, 172800.5]
)
def test_format_then_parse_round_trips(seconds: float) -> None:
    """What format_duration writes, parse_duration reads back as the same number of seconds.

    172800.5 (two days and half a second) guards against a lossy rendering: with
    six significant digits it would print as ``172800s`` (or worse, in exponent form).
    """
    assert seconds == parse_duration(format_duration(seconds))


@pytest.mark.parametrize("value", ["1h1h", "30s1m", "1m1h", "5ms1s"])
def test_units_must_descend_once_each(value: str) -> None:
    """As in Prometheus, units go from largest to smallest and appear at most once."""
    with pytest.raises(ValueError, match="units must go from largest to smallest") as caught:
        parse_duration(value)
    assert f"invalid duration {value!r}" in str(caught.value)


@pytest.mark.parametrize("value", ["1_000", "1e3", "0x10", "+5"])
def test_python_only_number_forms_are_rejected(value: str) -> None:
    """Number spellings Python accepts but Prometheus does not are refused."""
    with pytest.raises(ValueError, match="use a number of seconds or units"):
        parse_duration(value)
