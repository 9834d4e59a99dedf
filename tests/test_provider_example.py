"""The worked example of docs/providers.md, "Defining a provider", run as written:
check-config on its config (and on the three mistakes it shows), then diagnose and once
against a server answering as its example answer does."""

from __future__ import annotations

import json
import re
from pathlib import Path

from aiohttp import web

from exporter.core.names import TARGETS_ENV
from tests.origin import json_response, origin_server
from tests.test_cli import run

DOC = Path(__file__).resolve().parent.parent / "docs" / "providers.md"
KEY = "acme-key-0123456789"


def _section() -> str:
    text = DOC.read_text(encoding="utf-8")
    return text[text.index("### A worked example") :]


def _block(kind: str) -> str:
    found = re.search(rf"```{kind}\n(.*?)```", _section(), re.DOTALL)
    assert found is not None, f"no {kind} block in the worked example"
    return found.group(1)


def _broken(config: str) -> str:
    return (
        config.replace("style: page\n", "style: pages\n")
        .replace("id: /id", "id: id")
        .replace("running: live", "running: alive")
    )


async def test_the_example_config_is_valid_and_its_mistakes_read_as_documented(
    tmp_path: Path,
) -> None:
    """check-config accepts the documented config (exit 0) and reports the documented
    mistakes exactly as the doc shows them (exit 2)."""
    config = tmp_path / "acme.yaml"
    config.write_text(_block("yaml"), encoding="utf-8")
    good = await run("check-config", "--config", str(config), env={"ACME_API_KEY": KEY})
    assert 0 == good.returncode, good.stderr
    assert "acme-prod: acme at https://api.acme.dev" in good.stdout
    broken = tmp_path / "broken" / "acme.yaml"
    broken.parent.mkdir()
    broken.write_text(_broken(_block("yaml")), encoding="utf-8")
    bad = await run("check-config", "--config", str(broken), env={"ACME_API_KEY": KEY})
    assert 2 == bad.returncode
    expected = [f"{broken.parent}/{line}" for line in _block("text").strip().splitlines()]
    assert expected == bad.stderr.strip().splitlines()


async def test_the_example_polls_and_diagnoses_as_documented(tmp_path: Path) -> None:
    """diagnose and once on the documented config, against the documented answer: the
    series the doc names, and each row's fields read."""
    answer = json.loads(_block("json"))

    def handler(request: web.Request) -> web.Response:
        assert KEY == request.headers["X-API-Key"]
        return json_response(answer)

    config = tmp_path / "acme.yaml"
    config.write_text(_block("yaml"), encoding="utf-8")
    async with origin_server(handler) as origin:
        env = {"ACME_API_KEY": KEY, f"{TARGETS_ENV}__0__BASE_URL": origin.url}
        once = await run("once", "--config", str(config), env=env)
        diagnose = await run(
            "diagnose", "--config", str(config), "--target", "acme-prod", "--json", env=env
        )
    assert 0 == once.returncode, once.stderr
    for line in (
        'sessions{phase="live",provider="acme",status="running",target="acme-prod"} 1.0',
        'sessions{phase="paused",provider="acme",status="sleeping",target="acme-prod"} 1.0',
        'sessions{phase="ended",provider="acme",status="stopped",target="acme-prod"} 0.0',
        'sessions_connection_leases{provider="acme",target="acme-prod"} 1.0',
        'sessions_unleased{provider="acme",target="acme-prod"} 0.0',
        "sessions_next_deadline_timestamp_seconds"
        '{provider="acme",target="acme-prod"} 1.7672643e+09',
    ):
        assert line in once.stdout
    assert "/v1/sandboxes?per_page=100&page=1" in origin.paths()[0]
    assert 0 == diagnose.returncode, diagnose.stderr
    report = json.loads(diagnose.stdout)
    rows = report["rows"]
    assert [("running", "live"), ("sleeping", "paused")] == [
        (row["status"], row["phase"]) for row in rows
    ]
    assert ["2026-01-01T10:45:00Z", "2026-01-01T10:00:00Z"] == [row["deadline"] for row in rows]
    assert ["2026-01-01T10:30:00Z", None] == [row["last_activity"] for row in rows]
    assert [1, 0] == [row["leases"] for row in rows]
    assert KEY not in diagnose.stdout
