"""Large row arrays are decoded a chunk of whole rows at a time, with exact row indexes."""

from __future__ import annotations

import orjson

from exporter.providers import chaser
from exporter.providers.rows import CHUNK_BYTES, split_array
from exporter.simulators import chaser_row, iso

T = 1_767_225_600.0


def rows(n: int, *, kind: str = "browser") -> list[dict[str, object]]:
    """``n`` well-formed Chaser rows, distinct ids, each with ``kind`` as session_type."""
    return [chaser_row(f"s{i:06d}", "running", iso(T - i), session_type=kind) for i in range(n)]


async def test_a_bad_row_in_a_later_chunk_is_named_by_its_place_in_the_listing() -> None:
    """A 3 MiB array is read in several chunks; a bad row in the second one is reported
    under its index from the start of the listing, and every other row is kept."""
    listing = rows(12_000)
    bad = 9_000
    listing[bad] = listing[bad] | {"created_at": "not a time"}
    body = orjson.dumps(listing)
    assert len(body) > 2 * CHUNK_BYTES

    pages = [p async for p in chaser.CODEC.pages(body, where=lambda i: f"sessions[{i}]")]

    assert len(pages) >= 3
    assert 12_000 == sum(page.read for page in pages)
    assert 12_000 == sum(len(page.rows) for page in pages)
    problems = [problem for page in pages for problem in page.invalid]
    assert [f"sessions[{bad}].created_at: expected an ISO-8601 timestamp, got 'not a time'"] == [
        problem.message for problem in problems
    ]
    assert [f"s{i:06d}" for i in range(12_000)] == [r.id for p in pages for r in p.rows]


def test_cuts_inside_strings_are_found_and_moved_to_a_real_boundary() -> None:
    """Rows whose strings hold ``},{`` (where a cheap cut would land inside a string) are
    still split at real boundaries: every piece is valid JSON and they join to the array."""
    tricky = rows(6_000, kind='a"},{"b' + "},{" * 40)
    body = orjson.dumps(tricky)

    pieces = split_array(body, CHUNK_BYTES // 4)

    assert len(pieces) > 4
    decoded = [row for piece in pieces for row in orjson.loads(piece)]
    assert tricky == decoded


def test_an_array_of_scalars_is_split_on_commas() -> None:
    """An array without objects (no ``},{`` anywhere) is still split into whole elements."""
    body = orjson.dumps(list(range(400_000)))

    pieces = split_array(body, CHUNK_BYTES // 2)

    assert len(pieces) > 2
    assert list(range(400_000)) == [n for piece in pieces for n in orjson.loads(piece)]
