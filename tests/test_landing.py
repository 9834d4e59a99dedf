"""The landing page, rendered by headless Chromium against a real `serve` and `demo`.

Chromium (Debian's ``chromium``, installed by ``.ci/run``) loads the page and dumps the DOM
after its scripts ran; the page writes its own scroll and viewport widths into ``<html>``, so
a horizontal overflow at a phone's width shows in the dump.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from exporter import __version__
from exporter.simulators import ChaserSimulator, NotteSimulator, chaser_row, notte_row
from exporter.web.landing import LastPage, human_error, masked_config
from tests.conftest import Serve
from tests.harness import console_script, free_port, settings_for
from tests.test_cli import KEY, KEY_ENV, serving, wait_ready, write_config
from tests.tools import require

FILE_KEY = "sk-test-landing-file-9d8c7b6a5f4e"
CHROMIUM_TIMEOUT = 90.0


async def dump_dom(url: str, *, width: int, height: int = 800) -> str:
    """The DOM of ``url`` after load, as headless Chromium at ``width`` x ``height`` sees it."""
    chromium = require("chromium")
    with tempfile.TemporaryDirectory() as profile:
        proc = await asyncio.create_subprocess_exec(
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "--dump-dom",
            url,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), CHROMIUM_TIMEOUT)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise AssertionError(f"chromium did not finish within {CHROMIUM_TIMEOUT}s") from None
    assert 0 == proc.returncode, err.decode()[-2000:]
    return out.decode()


def widths(dom: str) -> tuple[int, int]:
    """(scroll width, client width) the page wrote into ``<html>`` once loaded."""
    scroll = re.search(r'data-scroll-width="(\d+)"', dom)
    client = re.search(r'data-client-width="(\d+)"', dom)
    assert scroll, dom[:500]
    assert client, dom[:500]
    return int(scroll.group(1)), int(client.group(1))


def split_headers(dom: str) -> list[str]:
    """The column headers' words that the page saw broken across two lines once loaded."""
    split = re.search(r'data-split-headers="([^"]*)"', dom)
    assert split, dom[:500]
    return split.group(1).split()


def row(dom: str, name: str) -> str:
    """The text of one target's row (tags stripped)."""
    match = re.search(rf'<tr id="target-{re.escape(name)}">(.*?)</tr>', dom, flags=re.DOTALL)
    assert match, f"no row for {name}"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(1))).strip()


async def test_serve_page_shows_every_target_and_never_a_key(tmp_path: Path, served: Serve) -> None:
    """Each target's row with its poll facts, errors in plain words, the config with keys masked."""
    chaser = ChaserSimulator(
        api_key=KEY,
        sessions=[
            chaser_row("c1", "running", 1_700_000_000),
            chaser_row("c2", "pending", 1_700_000_000),
        ],
    )
    notte = NotteSimulator(
        api_key=FILE_KEY, sessions=[notte_row("n1", "active", 1_700_000_000, 1_700_000_000)]
    )
    key_file = tmp_path / "notte.key"
    key_file.write_text(FILE_KEY + "\n", encoding="utf-8")
    dead = free_port()
    path = write_config(
        tmp_path,
        f"""
        poll_interval: 1h
        targets:
          - name: browsers
            provider: chaser
            base_url: {await served(chaser)}
            api_key: "{KEY}"
          - name: notte-prod
            provider: notte
            base_url: {await served(notte)}
            api_key_file: {key_file}
          - name: gone
            provider: chaser
            base_url: http://127.0.0.1:{dead}
            api_key_env: {KEY_ENV}
            retries: 0
        """,
    )
    async with (
        serving(tmp_path, path, env={KEY_ENV: KEY}) as server,
        aiohttp.ClientSession() as http,
    ):
        await wait_ready(http, server)
        dom = await dump_dom(f"{server.base}/", width=1280)
        async with http.get(f"{server.base}/") as response:
            raw = await response.text()

    assert [] == split_headers(dom)  # an error in a row squeezes no header mid-word
    assert f"session-exporter {__version__}" in re.sub(r"<[^>]+>", "", dom)
    assert re.search(r"Started \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, up \d+s\.", dom)
    browsers = row(dom, "browsers")
    assert browsers.startswith("browsers probe chaser ")
    assert re.search(
        r"chaser \d+s ago \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC ok pending 1 · live 1 1h \d+ ms none$",
        browsers,
    )
    assert "ok live 1 1h" in row(dom, "notte-prod")
    gone = row(dom, "gone")
    assert (
        f"failed (connect) cannot reach http://127.0.0.1:{dead}/v1/sessions: connection refused "
        "no data yet 1h" in gone
    )
    assert "ssl:default" not in dom
    assert '<a href="/probe?target=notte-prod">probe</a>' in dom
    assert "Demo mode" not in dom
    config = re.search(r'<details id="config">(.*?)</details>', dom, flags=re.DOTALL)
    assert config
    assert "api_key: &lt;secret&gt;" in config.group(1)
    assert "poll_interval: 1h" in config.group(1)  # durations as the config writes them
    assert f"api_key_env: {KEY_ENV}" in config.group(1)  # a variable's name is no secret
    assert f"api_key_file: {key_file}" in config.group(1)
    for page in (dom, raw):
        assert KEY not in page
        assert FILE_KEY not in page


@asynccontextmanager
async def demo() -> AsyncIterator[str]:
    """`session-exporter demo` on a free port until every target polled once; its base URL."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        console_script(),
        "demo",
        "--listen",
        f"127.0.0.1:{port}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "SESSION_EXPORTER_CONFIG": ""},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http, asyncio.timeout(30):
            while True:
                try:
                    async with http.get(f"{base}/readyz") as ready:
                        if ready.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.1)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 10)


async def test_demo_page_at_a_phone_width() -> None:
    """At 360 px the demo page shows the banner and all five rows with no horizontal scroll."""
    async with demo() as base:
        dom = await dump_dom(f"{base}/", width=360)

    scroll, client = widths(dom)
    assert client <= 500  # the narrow viewport took effect
    assert scroll <= client  # nothing sticks out sideways
    assert "Demo mode: the five providers are simulated in this process" in dom
    for provider in ("together", "agi", "trigger", "chaser", "notte"):
        assert re.search(r"(^| )ok ", row(dom, f"{provider}-demo") + " "), row(
            dom, f"{provider}-demo"
        )
    assert "refreshes every 5s" in dom.lower()


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "cannot reach http://127.0.0.1:1/sessions: Cannot connect to host 127.0.0.1:1 "
            "ssl:default [Connect call failed ('127.0.0.1', 1)]",
            "cannot reach http://127.0.0.1:1/sessions: connection refused",
        ),
        (
            "cannot reach http://nowhere.invalid/x: Cannot connect to host nowhere.invalid:80 "
            "ssl:default [Name or service not known]",
            "cannot reach http://nowhere.invalid/x: the host name does not resolve",
        ),
        (
            "cannot reach https://h:443/x: Cannot connect to host h:443 ssl:True "
            "[SSLCertVerificationError: (1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify "
            "failed: self-signed certificate (_ssl.c:1006)')]",
            "cannot reach https://h:443/x: TLS: self-signed certificate",
        ),
        (
            "cannot reach http://h:1/x: Cannot connect to host h:1 ssl:default [Something new]",
            "cannot reach http://h:1/x: cannot connect to h:1",
        ),
        ("HTTP 500: Internal Server Error", "HTTP 500: Internal Server Error"),
        ("no complete answer within 10s", "no complete answer within 10s"),
    ],
)
def test_poll_errors_read_as_sentences(message: str, expected: str) -> None:
    """aiohttp's connection details (``ssl:default``, the errno list) become a plain reason."""
    assert expected == human_error(message)


def test_masked_config_hides_inline_keys_only() -> None:
    """An inline api_key is <secret>; key variable names and file paths are shown as written."""
    settings = settings_for(
        {"name": "a", "provider": "chaser", "api_key": "sk-inline-123456789"},
        {"name": "b", "provider": "notte", "api_key_env": "PATH"},
    )
    text = masked_config(settings)

    assert "sk-inline-123456789" not in text
    assert "api_key: <secret>" in text
    assert "api_key_env: PATH" in text


def test_the_page_is_reused_within_its_second_while_nothing_changed() -> None:
    """The last page serves every request of the same second shown from the same objects; a
    new second, or a new snapshots mapping (a publish), renders again."""
    pages = LastPage()
    snapshots: dict[str, object] = {}
    settings = settings_for({"name": "a", "provider": "chaser", "api_key_env": "PATH"})

    assert pages.get(100, snapshots, settings) is None
    pages.put("first")
    assert "first" == pages.get(100, snapshots, settings)
    assert pages.get(100, dict(snapshots), settings) is None  # equal, but another mapping
    pages.put("second")
    assert pages.get(101, snapshots, settings) is None
