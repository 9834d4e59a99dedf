"""Provider timestamps (ISO-8601) into unix seconds: offsets, fractions, naive means UTC."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from exporter.core.timeparse import parse_timestamp

# 2024-01-02T03:04:05Z
BASE = 1704164645.0


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-02T03:04:05Z",
        "2024-01-02T03:04:05+00:00",
        "2024-01-02T03:04:05-00:00",
        "2024-01-02T05:04:05+02:00",
        "2024-01-01T22:04:05-05:00",
        "2024-01-02T08:34:05+05:30",
        "2024-01-02 03:04:05Z",
    ],
)
def test_zulu_and_offsets_give_the_same_instant(text: str) -> None:
    """`Z`, `+00:00` and any other offset are applied, so one instant parses to one number."""
    assert BASE == parse_timestamp(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2024-01-02T03:04:05.123Z", BASE + 0.123),
        ("2024-01-02T03:04:05.123456Z", BASE + 0.123456),
        ("2024-01-02T03:04:05.123456+00:00", BASE + 0.123456),
        ("2024-01-02T03:04:05.5Z", BASE + 0.5),
        ("2024-01-02T05:04:05.250+02:00", BASE + 0.25),
    ],
)
def test_fractions_are_kept(text: str, seconds: float) -> None:
    """Millisecond (3-digit) and microsecond (6-digit) fractions survive into the result."""
    assert seconds == pytest.approx(parse_timestamp(text), abs=1e-6)


@pytest.fixture
def new_york_tz(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run with the process's local time zone set to America/New_York (UTC-5 in January)."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    assert 5 * 3600 == time.timezone, "the tz database must know America/New_York"
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("new_york_tz")
@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2024-01-02T03:04:05", BASE),
        ("2024-01-02T03:04:05.123", BASE + 0.123),
        ("2024-01-02T03:04:05.123456", BASE + 0.123456),
    ],
)
def test_naive_timestamp_is_utc_not_local(text: str, seconds: float) -> None:
    """A timestamp without an offset means UTC even when the local zone is UTC-5."""
    assert seconds == pytest.approx(parse_timestamp(text), abs=1e-6)


@pytest.mark.usefixtures("new_york_tz")
def test_offset_timestamp_ignores_local_zone() -> None:
    """With an explicit offset the local zone plays no part either."""
    assert BASE == parse_timestamp("2024-01-02T03:04:05Z")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "nope",
        "2024-13-01T00:00:00Z",
        "2024-01-32T00:00:00Z",
        "2024-01-02T25:00:00Z",
        "2024-01-02T03:04:05+25:00",
        "1704164645",
        "yesterday",
    ],
)
def test_invalid_strings_raise_value_error(text: str) -> None:
    """Strings that are not ISO-8601 timestamps raise ValueError (a schema error upstream)."""
    with pytest.raises(ValueError, match=r"."):
        parse_timestamp(text)


@pytest.mark.parametrize(
    ("value", "type_name"),
    [(None, "NoneType"), (1704164645, "int"), (1704164645.5, "float"), (b"2024", "bytes")],
)
def test_non_strings_raise_value_error_naming_the_type(value: object, type_name: str) -> None:
    """A number, null or bytes is not a timestamp; the message names what was found."""
    with pytest.raises(ValueError, match=r"^expected a timestamp string") as caught:
        parse_timestamp(value)
    assert f"expected a timestamp string, got {type_name}" == str(caught.value)


def test_lower_case_zone_designator() -> None:
    """RFC 3339 allows `z`; it means UTC like `Z`."""
    assert 1772359200.25 == parse_timestamp("2026-03-01T10:00:00.250z")
