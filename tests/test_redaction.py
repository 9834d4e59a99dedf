"""Keys echoed by a provider are masked before any text is cut, in raw, URL-encoded and base64
form, so no part of a key reaches a log line, the landing page or a metric."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest

from exporter.core.logs import REDACTOR, Redactor
from exporter.providers import PROVIDERS
from exporter.simulators import ChaserSimulator, Fault, chaser_row, iso
from exporter.upstream.errors import brief, clip
from tests.conftest import Serve
from tests.harness import poll_all, settings_for

KEY = "sk-echo-9f8e7d6c5b4a3210ZyXw"
PROVIDERS_BY_ID = {provider.id: provider for provider in PROVIDERS.values()}
T = 1_767_225_600.0  # a fixed "now": nothing here depends on the wall clock


def fragments(key: str, size: int = 6) -> list[str]:
    """Every ``size``-character piece of ``key``: none may survive redaction."""
    return [key[i : i + size] for i in range(len(key) - size + 1)]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "echo",
    [
        KEY,
        f"Bearer {KEY}",
        quote(KEY, safe=""),
        quote(f"Bearer {KEY}"),
        b64(KEY),
        b64(KEY).rstrip("="),
        b64(f"Bearer {KEY}"),
        base64.urlsafe_b64encode(f"Bearer {KEY}".encode()).decode(),
        b64(f'{{"token":"{KEY}"}}'),  # the key inside a longer base64 text, offset 10
        b64(f'{{"t":"{KEY}","x":1}}'),  # offset 6
        b64(f'{{"tk":"{KEY}"}}'),  # offset 7
    ],
)
def test_every_form_of_the_key_is_masked(echo: str) -> None:
    """Raw, URL-encoded and base64 (also URL-safe, unpadded, and embedded at any of the three
    alignments) forms are masked, leaving at most two bytes' worth of base64 around it."""
    redactor = Redactor()
    redactor.add(KEY)

    masked = redactor.scrub(f"upstream said: {echo} (end)")

    assert "[REDACTED]" in masked
    for form in (KEY, b64(KEY).rstrip("=")):
        for piece in fragments(form, 8):
            assert piece not in masked, (piece, masked)


def test_unrelated_text_is_left_alone() -> None:
    """Registering a key changes nothing in text that does not hold it."""
    redactor = Redactor()
    redactor.add(KEY)
    text = "HTTP 401: invalid token, see https://docs.example.com/auth?x=1 " + b64("hello world")
    assert text == redactor.scrub(text)


def test_brief_masks_before_it_cuts() -> None:
    """A key that straddles the cut is masked whole, not cut in two halves of which the
    first would no longer be recognised."""
    REDACTOR.add(KEY)
    late = "x" * 190 + " " + KEY + " trailing"

    for text in (brief(late), brief({"error": late}), clip(late, 200)):
        assert len(text) <= 200
        for piece in fragments(KEY):
            assert piece not in text, (piece, text)


@pytest.mark.parametrize(
    "echo",
    [
        lambda: "y" * 180 + " you sent " + KEY,
        lambda: "token rejected: " + b64(f"Bearer {KEY}"),
        lambda: "z" * 180 + " " + quote(f"Bearer {KEY}"),
    ],
    ids=["late-raw", "base64-bearer", "late-url-encoded"],
)
async def test_a_401_echoing_the_key_leaks_no_part_of_it(served: Serve, echo: object) -> None:
    """A provider that echoes the key late in a 401 error body, or base64-encoded: the
    poll's error (what the log and the landing page show) holds no 6-character piece of it."""
    assert callable(echo)
    body = json.dumps({"error": echo()}).encode()
    sim = ChaserSimulator(sessions=[chaser_row("a", "running", iso(T))], api_key=KEY)
    sim.fault = Fault(status=401, body=body)
    url = await served(sim)

    store = await poll_all(
        settings_for({"name": "c", "provider": "chaser", "base_url": url, "api_key": KEY})
    )

    snap = store.snapshots["c"]
    assert "auth" == (snap.error_reason and snap.error_reason.value)
    error = snap.error or ""
    assert "[REDACTED]" in error
    for form in (KEY, b64(f"Bearer {KEY}"), quote(f"Bearer {KEY}")):
        for piece in fragments(form, 12 if form != KEY else 6):
            assert piece not in error, (piece, error)


@pytest.mark.parametrize("provider", sorted(PROVIDERS_BY_ID))
@pytest.mark.parametrize(
    "body",
    [
        ("x" * 280 + " key=" + KEY + " rest").encode(),
        json.dumps({"error": "y" * 270 + KEY, "detail": "z"}).encode(),
        json.dumps({"code": "bad", "message": "y" * 290 + KEY}).encode(),
        json.dumps({"detail": [{"loc": ["query", "x" * 290 + KEY], "msg": "m"}]}).encode(),
        json.dumps({"error": {"message": "y" * 290 + KEY}, "details": []}).encode(),
    ],
    ids=["text", "error", "code-message", "fastapi-loc", "nested-error"],
)
def test_every_error_reader_masks_a_key_across_its_cut(provider: str, body: bytes) -> None:
    """Each provider's error-body reader, whatever shape the body has, masks a key that
    crosses its 300-character cut: no 6-character piece of the key is left."""
    REDACTOR.add(KEY)
    detail = PROVIDERS_BY_ID[provider].error_detail(body)

    assert len(detail) <= 300
    for piece in fragments(KEY):
        assert piece not in detail, (piece, detail)
