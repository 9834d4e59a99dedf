"""``session-exporter diagnose``: the real CLI against each provider's simulator, over sockets.

Every test checks the parts of the report that do not depend on the machine exactly (times
are replaced by ``T.TTTs``, the simulator's address by ``BASE``), and that the key, echoed
by the server in a header, a body or a redirect, appears in none of its spellings.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import orjson

from exporter import __version__
from exporter.config.settings import Settings
from exporter.diagnose.masking import Masker, is_timestamp, json_type, render
from exporter.providers import CODED_IDS, provider_for
from exporter.providers.engine import DefinedProvider
from exporter.simulators import (
    AgiSimulator,
    ChaserSimulator,
    Fault,
    NotteSimulator,
    TogetherSimulator,
    TriggerSimulator,
    agi_row,
    chaser_list_row,
    chaser_row,
    iso,
    notte_row,
    together_row,
    trigger_row,
)
from tests.conftest import Serve
from tests.harness import free_port
from tests.test_cli import Result, run, write_config

KEY = "sk-diag/0123+4567=89abcdef"
"""A key with characters that percent-encoding changes, so every spelling is checked."""
T = 1_767_225_600.0
"""2026-01-01T00:00:00Z: the rows' times (the poll's own clock is the real one)."""
PAST = 978_307_200.0
"""2001-01-01T00:00:00Z: a deadline long gone, whatever the machine's clock says."""
FUTURE = 4_102_444_800.0
"""2100-01-01T00:00:00Z: a deadline still ahead."""
M = 60.0


def config(tmp_path: Path, provider: str, url: str, **options: Any) -> Path:
    """A config with one target ``t`` of ``provider`` at ``url``."""
    extra = "".join(f"\n            {k}: {json.dumps(v)}" for k, v in options.items())
    return write_config(
        tmp_path,
        f"""
        targets:
          - name: t
            provider: {provider}
            base_url: {url}
            api_key: "{KEY}"{extra}
        """,
    )


async def diagnose(tmp_path: Path, provider: str, url: str, *args: str, **options: Any) -> Result:
    """Run ``diagnose`` on the one target; assert the key is nowhere in its output."""
    result = await run(
        "diagnose", "--config", str(config(tmp_path, provider, url, **options)), *args
    )
    for spelling in (KEY, quote(KEY, safe=""), quote_plus(KEY), quote(KEY)):
        assert spelling not in result.output
    return result


def normalized(text: str, base: str) -> list[str]:
    """The report's lines, with the simulator's address, the version and every duration
    replaced."""
    text = text.replace(base, "BASE").replace(f"session-exporter {__version__} ", "VERSION ")
    return re.sub(r"\b\d+\.\d{3}s\b", "T.TTTs", text).splitlines()


def without_times(document: Any) -> Any:
    """A JSON report without its machine-dependent values (durations)."""
    document["result"]["duration_seconds"] = None
    for request in document["requests"]:
        request["elapsed_seconds"] = None
    return document


# --- per provider, over real sockets -------------------------------------------------------


async def test_chaser_text_report(tmp_path: Path, served: Serve) -> None:
    """Chaser, paged by 2: every request with its rate-limit headers (the key the server
    echoes in one is redacted), three row shapes with masked samples, and each row's mapping:
    a case-insensitive status, an unknown one, an unreadable time and lease count, a row left
    out for its empty id, and a string holding the key shown by its length alone."""
    rows = [
        chaser_row("run-0001-abcdef", "running", iso(T), leases=2, workspace_id=KEY),
        chaser_row("rdy-0002-abcdef", "Ready", iso(T - M), leases=0),
        chaser_row("bad-0003-abcdef", "running", "yesterday") | {"active_connection_leases": "3"},
        {"id": "", "status": "running", "created_at": iso(T)},
        chaser_row(
            "odd-0005-abcdef", "paused", iso(T - 2 * M), leases=None, session_type="sandbox"
        ),
    ]
    sim = ChaserSimulator(sessions=rows, api_key=KEY)
    sim.fault = Fault(headers={"x-ratelimit-remaining": "41", "x-ratelimit-limit": KEY})
    base = await served(sim)
    result = await diagnose(tmp_path, "chaser", base, page_size=2)

    assert 0 == result.returncode, result.stderr
    assert [
        "VERSION diagnose: target t (provider chaser), GET BASE/v1/sessions",
        "",
    ] == normalized(result.stdout, base)[:2]
    assert EXPECTED_CHASER == normalized(result.stdout, base)[2:]


EXPECTED_CHASER = [
    "result: ok in T.TTTs, 4 sessions counted",
    "  ready (live): 1",
    "  running (live): 2",
    "  paused (unknown): 1",
    "  0 in: creating, pending, starting, active, idle, stopping, stopped, terminated, completed, "
    "expired, failed, error",
    "  invalid rows by field: active_connection_leases 1, created_at 1, id 1",
    "",
    "requests (3)",
    "  #1 GET BASE/v1/sessions?limit=2&offset=0",
    "      200, T.TTTs, 622 bytes, 2 rows",
    "      x-ratelimit-limit: [REDACTED]",
    "      x-ratelimit-remaining: 41",
    "  #2 GET BASE/v1/sessions?limit=2&offset=2",
    "      200, T.TTTs, 375 bytes, 2 rows",
    "      x-ratelimit-limit: [REDACTED]",
    "      x-ratelimit-remaining: 41",
    "  #3 GET BASE/v1/sessions?limit=2&offset=4",
    "      200, T.TTTs, 315 bytes, 1 row",
    "      x-ratelimit-limit: [REDACTED]",
    "      x-ratelimit-remaining: 41",
    "",
    "row shapes (5): the keys of a row and their JSON types",
    "  shape 1: 1 row, the first is #1 row 0",
    '      id                        string   "run…" (15 chars)',
    '      status                    string   "r…" (7 chars)',
    '      session_type              string   "b…" (7 chars)',
    '      created_at                string   "2026-01-01T00:00:00.000Z"',
    '      endpoints                 object   {"control": "wss:…" (51 chars), "video": null}',
    "      active_connection_leases  integer  2",
    "      persistence               null     null",
    "      workspace_id              string   [REDACTED] (26 chars)",
    "  shape 2: 1 row, the first is #1 row 1",
    '      id                        string   "rdy…" (15 chars)',
    '      status                    string   "R…" (5 chars)',
    '      session_type              string   "b…" (7 chars)',
    '      created_at                string   "2025-12-31T23:59:00.000Z"',
    '      endpoints                 object   {"control": "wss:…" (51 chars), "video": null}',
    "      active_connection_leases  integer  0",
    "      persistence               null     null",
    "      workspace_id              null     null",
    "  shape 3: 1 row, the first is #2 row 0",
    '      id                        string  "bad…" (15 chars)',
    '      status                    string  "r…" (7 chars)',
    '      session_type              string  "b…" (7 chars)',
    '      created_at                string  "ye…" (9 chars)',
    '      endpoints                 object  {"control": "wss:…" (51 chars), "video": null}',
    '      active_connection_leases  string  "…" (1 char)',
    "      persistence               null    null",
    "      workspace_id              null    null",
    "  shape 4: 1 row, the first is #2 row 1",
    '      id          string  ""',
    '      status      string  "r…" (7 chars)',
    '      created_at  string  "2026-01-01T00:00:00.000Z"',
    "  shape 5: 1 row, the first is #3 row 0",
    '      id                        string  "odd…" (15 chars)',
    '      status                    string  "p…" (6 chars)',
    '      session_type              string  "s…" (7 chars)',
    '      created_at                string  "2025-12-31T23:58:00.000Z"',
    '      endpoints                 object  {"control": "wss:…" (51 chars), "video": null}',
    "      active_connection_leases  null    null",
    "      persistence               null    null",
    "      workspace_id              null    null",
    "",
    "rows (5): how each was read and counted",
    '  #1 row 0: id "run…" (15 chars), status "running" -> running (live), counted',
    '      created 2026-01-01T00:00:00Z, leases 2, kind "b…" (7 chars)',
    '  #1 row 1: id "rdy…" (15 chars), status "Ready" -> ready (live), counted',
    '      created 2025-12-31T23:59:00Z, leases 0, kind "b…" (7 chars)',
    '  #2 row 0: id "bad…" (15 chars), status "running" -> running (live), counted',
    '      created -, leases -, kind "b…" (7 chars)',
    '      invalid created_at: expected an ISO-8601 timestamp, got string "ye…" (9 chars)',
    '      invalid active_connection_leases: expected an integer, got string "…" (1 char)',
    '  #2 row 1: id "", left out',
    '      invalid id: expected a non-empty string, got string ""',
    '  #3 row 0: id "odd…" (15 chars), status "paused" -> paused (unknown), counted',
    '      created 2025-12-31T23:58:00Z, leases -, kind "s…" (7 chars)',
]


async def test_notte_json_report_with_a_redirect(tmp_path: Path, served: Serve) -> None:
    """Notte with ``only_active: false``: a 307 followed within the origin, to a URL that
    carries the key percent-encoded (masked in place); the five statuses, the deadline rule with the
    SDK's ``timeout_minutes`` standing in for the idle timeout, and overdue only while live."""
    rows = [
        notte_row("n-auth-000001", "authenticating", T, T, idle_timeout_minutes=5),
        notte_row(
            "n-live-000002",
            "active",
            FUTURE - 20 * M,
            FUTURE - 20 * M,
            idle_timeout_minutes=10,
            max_duration_minutes=60,
        ),
        notte_row("n-done-000003", "closed", T, T, closed_at=T + M),
        {
            k: v
            for k, v in notte_row("n-old-000004", "active", T, T).items()
            if k != "idle_timeout_minutes"
        }
        | {"timeout_minutes": 7},
    ]
    sim = NotteSimulator(sessions=rows, api_key=KEY)
    query = "page=1&page_size=100&only_active=false"
    sim.fault = Fault(
        status=307,
        headers={"Location": f"/sessions/?{query}&echo={quote(KEY, safe='')}"},
        times=1,
    )
    base = await served(sim)
    result = await diagnose(tmp_path, "notte", base, "--json", only_active=False)

    assert 0 == result.returncode, result.stderr
    report = without_times(json.loads(result.stdout.replace(base, "BASE")))
    assert ["deadline", "last_activity"] == report["reports"]
    assert {
        "ok": True,
        "reason": None,
        "error": None,
        "duration_seconds": None,
        "sessions": 4,
        "statuses": [
            {"status": "authenticating", "phase": "pending", "count": 1},
            {"status": "active", "phase": "live", "count": 2},
            {"status": "closed", "phase": "ended", "count": 1},
            {"status": "timed_out", "phase": "ended", "count": 0},
            {"status": "error", "phase": "failed", "count": 0},
        ],
        "invalid_rows": {
            "id": 0,
            "status": 0,
            "created_at": 0,
            "last_accessed_at": 0,
            "max_duration_minutes": 0,
            "idle_timeout_minutes": 0,
            "timeout_minutes": 0,
            "browser_type": 0,
        },
        "duplicates": 0,
        "dropped": 0,
        "retries": 0,
    } == report["result"]
    assert [
        {
            "number": 1,
            "method": "GET",
            "url": f"BASE/sessions/?{query}",
            "status": 307,
            "elapsed_seconds": None,
            "bytes": 32,
            "rows": None,
            "note": "redirect, followed",
            "headers": {},
        },
        {
            "number": 2,
            "method": "GET",
            "url": f"BASE/sessions/?{query}&echo=[REDACTED]",
            "status": 200,
            "elapsed_seconds": None,
            "bytes": 2633,
            "rows": 4,
            "note": None,
            "headers": {},
        },
    ] == report["requests"]
    # the timeout_minutes row and the closed one are shapes of their own
    assert [(2, 0), (1, 2), (1, 3)] == [(s["rows"], s["first"]["row"]) for s in report["shapes"]]
    samples = {f["name"]: (f["type"], f["sample"]) for f in report["shapes"][0]["fields"]}
    assert ("string", {"length": 13, "prefix": "n-a"}) == samples["session_id"]
    assert ("string", {"length": 14, "prefix": "aut"}) == samples["status"]
    assert ("string", {"timestamp": "2026-01-01T00:00:00.000000Z"}) == samples["created_at"]
    assert ("integer", 5) == samples["idle_timeout_minutes"]
    assert ("array", {"items": 0, "first": []}) == samples["steps"]
    assert ("boolean", True) == samples["headless"]
    assert "idle_timeout_minutes" not in {f["name"] for f in report["shapes"][2]["fields"]}
    assert [
        ("authenticating", "pending", "2026-01-01T00:05:00Z", True),  # created + idle 5 min
        ("active", "live", "2099-12-31T23:50:00Z", False),  # accessed + idle 10 min
        ("closed", "ended", "2026-01-01T00:03:00Z", None),  # ended: never overdue
        ("active", "live", "2026-01-01T00:07:00Z", True),  # timeout_minutes 7 as the idle one
    ] == [(r["label"], r["phase"], r["deadline"], r["overdue"]) for r in report["rows"]]
    assert {"length": 13, "prefix": "n-a"} == report["rows"][0]["id"]
    assert {"length": 8, "prefix": "ch"} == report["rows"][0]["kind"]


async def test_agi_rows_and_a_row_left_out(tmp_path: Path, served: Serve) -> None:
    """AGI's bare array: the SDK's two statuses mapped, a row without status left out, and a
    row whose ``created_at`` is not a timestamp counted with that field unknown."""
    rows = [
        agi_row("agi-1", "running", iso(T)),
        agi_row("agi-2", "waiting_for_input", iso(T - M), agent_name="browser-agent"),
        agi_row("agi-3", "finished", iso(T - 2 * M)),
        {"session_id": "agi-4", "created_at": iso(T), "agent_name": "x"},
        agi_row("agi-5", "paused", iso(T)) | {"created_at": 1767225600},
    ]
    base = await served(AgiSimulator(sessions=rows, api_key=KEY))
    result = await diagnose(tmp_path, "agi", base, "--json")

    assert 0 == result.returncode, result.stderr
    report = json.loads(result.stdout)
    assert [] == report["reports"]
    assert {"id": 0, "status": 1, "created_at": 1, "agent_name": 0} == report["result"][
        "invalid_rows"
    ]
    assert 4 == report["result"]["sessions"]
    assert [(s["rows"], s["first"]["row"]) for s in report["shapes"]] == [(3, 0), (1, 3), (1, 4)]
    assert [
        ("counted", "running", "live", "2026-01-01T00:00:00Z", {"length": 5, "prefix": "a"}),
        ("counted", "waiting_for_input", "live", "2025-12-31T23:59:00Z",
         {"length": 13, "prefix": "bro"}),
        ("counted", "finished", "ended", "2025-12-31T23:58:00Z", {"length": 5, "prefix": "a"}),
        ("left out", None, None, None, None),
        ("counted", "paused", "live", None, {"length": 5, "prefix": "a"}),
    ] == [
        (r["outcome"], r["label"], r["phase"], r["created"], r["kind"]) for r in report["rows"]
    ]  # fmt: skip
    assert [
        [],
        [],
        [],
        [{"field": "status", "expected": "expected a non-empty string",
          "got": "nothing (the key is missing)", "value": None}],
        [{"field": "created_at", "expected": "expected an ISO-8601 timestamp",
          "got": "integer", "value": 1767225600}],
    ] == [r["invalid"] for r in report["rows"]]  # fmt: skip
    assert {"length": 5, "prefix": "a"} == report["rows"][3]["id"]


async def test_agi_failed_poll_exits_1_without_the_key(tmp_path: Path, served: Serve) -> None:
    """A 500 whose body repeats the key: exit 1, the reason and the error, key redacted."""
    sim = AgiSimulator(api_key=KEY)
    sim.fault = Fault(
        status=500,
        body=orjson.dumps({"detail": f"internal error for key {KEY}"}),
        headers={"x-should-retry": "false"},
    )
    base = await served(sim)
    result = await diagnose(tmp_path, "agi", base)

    assert 1 == result.returncode, result.stderr
    assert [
        "VERSION diagnose: target t (provider agi), GET BASE/v1/sessions",
        "",
        "result: failed in T.TTTs, reason http_5xx: HTTP 500: internal error for key [REDACTED]",
        "",
        "requests (1)",
        "  #1 GET BASE/v1/sessions",
        "      500, T.TTTs, 62 bytes, HTTP 500: internal error for key [REDACTED]",
        "      x-should-retry: false",
        "",
        "row shapes (0): the keys of a row and their JSON types",
        "",
        "rows (0): how each was read and counted",
    ] == normalized(result.stdout, base)


async def test_together_shapes_and_executions(tmp_path: Path, served: Serve) -> None:
    """Together: rows in ``data.sessions``; a null deadline and an unreadable execution count
    make three shapes; an overdue deadline only where it has passed; executions per row."""
    rows = [
        together_row("tci-1", iso(T), iso(FUTURE), execute_count=3),
        together_row("tci-2", iso(T), iso(PAST), execute_count=1),
        together_row("tci-3", iso(T), iso(FUTURE)) | {"expires_at": None},
        together_row("tci-4", iso(T), iso(FUTURE)) | {"execute_count": "7"},
    ]
    base = await served(TogetherSimulator(sessions=rows, api_key=KEY))
    result = await diagnose(tmp_path, "together", base + "/v1")

    assert 0 == result.returncode, result.stderr
    assert EXPECTED_TOGETHER == normalized(result.stdout, base)


EXPECTED_TOGETHER = [
    "VERSION diagnose: target t (provider together), GET BASE/v1/tci/sessions",
    "",
    "result: ok in T.TTTs, 4 sessions counted",
    "  active (live): 4",
    "  invalid rows by field: execute_count 1",
    "",
    "requests (1)",
    "  #1 GET BASE/v1/tci/sessions",
    "      200, T.TTTs, 690 bytes, 4 rows",
    "",
    "row shapes (3): the keys of a row and their JSON types",
    "  shape 1: 2 rows, the first is #1 row 0",
    '      id               string   "t…" (5 chars)',
    '      started_at       string   "2026-01-01T00:00:00.000Z"',
    '      expires_at       string   "2100-01-01T00:00:00.000Z"',
    '      last_execute_at  string   "2026-01-01T00:00:00.000Z"',
    "      execute_count    integer  3",
    "  shape 2: 1 row, the first is #1 row 2",
    '      id               string   "t…" (5 chars)',
    '      started_at       string   "2026-01-01T00:00:00.000Z"',
    "      expires_at       null     null",
    '      last_execute_at  string   "2026-01-01T00:00:00.000Z"',
    "      execute_count    integer  0",
    "  shape 3: 1 row, the first is #1 row 3",
    '      id               string  "t…" (5 chars)',
    '      started_at       string  "2026-01-01T00:00:00.000Z"',
    '      expires_at       string  "2100-01-01T00:00:00.000Z"',
    '      last_execute_at  string  "2026-01-01T00:00:00.000Z"',
    '      execute_count    string  "…" (1 char)',
    "",
    "rows (4): how each was read and counted",
    '  #1 row 0: id "t…" (5 chars), status "active" -> active (live), counted',
    "      created 2026-01-01T00:00:00Z, deadline 2100-01-01T00:00:00Z",
    "      last activity 2026-01-01T00:00:00Z, executions 3",
    '  #1 row 1: id "t…" (5 chars), status "active" -> active (live), counted',
    "      created 2026-01-01T00:00:00Z, deadline 2001-01-01T00:00:00Z (overdue)",
    "      last activity 2026-01-01T00:00:00Z, executions 1",
    '  #1 row 2: id "t…" (5 chars), status "active" -> active (live), counted',
    "      created 2026-01-01T00:00:00Z, deadline -, last activity 2026-01-01T00:00:00Z, "
    "executions 0",
    '  #1 row 3: id "t…" (5 chars), status "active" -> active (live), counted',
    "      created 2026-01-01T00:00:00Z, deadline 2100-01-01T00:00:00Z",
    "      last activity 2026-01-01T00:00:00Z, executions -",
    '      invalid execute_count: expected an integer, got string "…" (1 char)',
]


async def test_trigger_status_queries_and_a_rate_limited_retry(
    tmp_path: Path, served: Serve
) -> None:
    """Trigger.dev: a 429 retried (its retry and millisecond reset headers shown), then one
    query per status; each row takes its status from its query."""
    rows = [
        trigger_row("session_a", "ACTIVE", iso(T), iso(T), iso(FUTURE)),
        trigger_row("session_b", "ACTIVE", iso(T - M), iso(T - M), None),
        trigger_row("session_c", "CLOSED", iso(T - 2 * M), iso(T - M)),
    ]
    sim = TriggerSimulator(sessions=rows, api_key=KEY)
    sim.now = lambda: T + M  # the createdAt window and the 429's reset count from here
    sim.fault = Fault(
        status=429, headers={"Retry-After": "0", "x-ratelimit-remaining": "0"}, times=1
    )
    base = await served(sim)
    result = await diagnose(tmp_path, "trigger", base)

    assert 0 == result.returncode, result.stderr
    assert EXPECTED_TRIGGER == normalized(result.stdout, base)


EXPECTED_TRIGGER = [
    "VERSION diagnose: target t (provider trigger), GET BASE/api/v1/sessions",
    "",
    "result: ok in T.TTTs, 3 sessions counted",
    "  active (live): 2",
    "  closed (ended): 1",
    "  0 in: expired",
    "  retried requests: 1",
    "",
    "requests (4)",
    "  #1 GET BASE/api/v1/sessions?filter%5Bstatus%5D=ACTIVE&page%5Bsize%5D=100",
    "      429, T.TTTs, 30 bytes, retried",
    "      x-ratelimit-remaining: 0",
    "      x-ratelimit-reset: 1767225661000",
    "      retry-after: 0",
    "  #2 GET BASE/api/v1/sessions?filter%5Bstatus%5D=ACTIVE&page%5Bsize%5D=100",
    "      200, T.TTTs, 620 bytes, 2 rows",
    "  #3 GET BASE/api/v1/sessions?filter%5BcreatedAt%5D%5Bperiod%5D=1d&filter%5Bstatus%5D=CLOSED&"
    "page%5Bsize%5D=100",
    "      200, T.TTTs, 335 bytes, 1 row",
    "  #4 GET BASE/api/v1/sessions?filter%5BcreatedAt%5D%5Bperiod%5D=1d&"
    "filter%5Bstatus%5D=EXPIRED&page%5Bsize%5D=100",
    "      200, T.TTTs, 30 bytes, 0 rows",
    "",
    "row shapes (3): the keys of a row and their JSON types",
    "  shape 1: 1 row, the first is #2 row 0",
    '      id              string  "se…" (9 chars)',
    "      externalId      null    null",
    '      type            string  "ch…" (10 chars)',
    '      taskIdentifier  string  "m…" (7 chars)',
    "      tags            array   []",
    "      metadata        null    null",
    "      currentRunId    null    null",
    "      closedAt        null    null",
    "      closedReason    null    null",
    '      expiresAt       string  "2100-01-01T00:00:00.000Z"',
    '      createdAt       string  "2026-01-01T00:00:00.000Z"',
    '      updatedAt       string  "2026-01-01T00:00:00.000Z"',
    "  shape 2: 1 row, the first is #2 row 1",
    '      id              string  "se…" (9 chars)',
    "      externalId      null    null",
    '      type            string  "ch…" (10 chars)',
    '      taskIdentifier  string  "m…" (7 chars)',
    "      tags            array   []",
    "      metadata        null    null",
    "      currentRunId    null    null",
    "      closedAt        null    null",
    "      closedReason    null    null",
    "      expiresAt       null    null",
    '      createdAt       string  "2025-12-31T23:59:00.000Z"',
    '      updatedAt       string  "2025-12-31T23:59:00.000Z"',
    "  shape 3: 1 row, the first is #3 row 0",
    '      id              string  "se…" (9 chars)',
    "      externalId      null    null",
    '      type            string  "ch…" (10 chars)',
    '      taskIdentifier  string  "m…" (7 chars)',
    "      tags            array   []",
    "      metadata        null    null",
    "      currentRunId    null    null",
    '      closedAt        string  "2025-12-31T23:59:00.000Z"',
    "      closedReason    null    null",
    "      expiresAt       null    null",
    '      createdAt       string  "2025-12-31T23:58:00.000Z"',
    '      updatedAt       string  "2025-12-31T23:59:00.000Z"',
    "",
    "rows (3): how each was read and counted",
    '  #2 row 0: id "se…" (9 chars), status "active" -> active (live), counted',
    "      created 2026-01-01T00:00:00Z, deadline 2100-01-01T00:00:00Z",
    '      last activity 2026-01-01T00:00:00Z, kind "ch…" (10 chars)',
    '  #2 row 1: id "se…" (9 chars), status "active" -> active (live), counted',
    "      created 2025-12-31T23:59:00Z, deadline -, last activity 2025-12-31T23:59:00Z",
    '      kind "ch…" (10 chars)',
    '  #3 row 0: id "se…" (9 chars), status "closed" -> closed (ended), counted',
    "      created 2025-12-31T23:58:00Z, deadline -, last activity 2025-12-31T23:59:00Z",
    '      kind "ch…" (10 chars)',
]


async def test_a_target_that_cannot_be_reached(tmp_path: Path) -> None:
    """No HTTP answer at all: each of the three attempts is listed with why it got none, in
    plain words (``connection refused``, no client internals), retries counted, exit 1."""
    base = f"http://127.0.0.1:{free_port()}"
    result = await diagnose(tmp_path, "agi", base, retries=2)

    lines = normalized(result.stdout, base)
    refused = "cannot reach BASE/v1/sessions: connection refused"
    assert 1 == result.returncode
    assert f"result: failed in T.TTTs, reason connect: {refused}" == lines[2]
    assert "  retried requests: 2" == lines[3]
    assert [
        "requests (3)",
        "  #1 GET BASE/v1/sessions",
        f"      no answer: {refused} (retried)",
        "  #2 GET BASE/v1/sessions",
        f"      no answer: {refused} (retried)",
        "  #3 GET BASE/v1/sessions",
        f"      no answer: {refused}",
    ] == lines[5:12]
    assert "ssl:default" not in result.stdout


# --- usage ----------------------------------------------------------------------------------


async def test_usage_errors_exit_2(tmp_path: Path) -> None:
    """No target named, a name not in the config, or a negative ``--rows``: exit 2, one line."""
    path = write_config(
        tmp_path,
        f"""
        targets:
          - {{name: a, provider: agi, api_key: "{KEY}"}}
          - {{name: b, provider: agi, api_key: "{KEY}"}}
        """,
    )
    ambiguous = await run("diagnose", "--config", str(path))
    unknown = await run("diagnose", "--config", str(path), "--target", "c")
    negative = await run("diagnose", "--config", str(path), "--target", "a", "--rows", "-1")

    assert (2, 2, 2) == (ambiguous.returncode, unknown.returncode, negative.returncode)
    assert [
        "session-exporter: the config has 2 targets; name one with --target (a, b)"
    ] == ambiguous.stderr.splitlines()
    assert [
        "session-exporter: no target named 'c' in the config (its targets: a, b)"
    ] == unknown.stderr.splitlines()
    assert [
        "session-exporter diagnose: argument --rows: must be 0 or more, got -1 (see --help)"
    ] == negative.stderr.splitlines()
    assert "" == ambiguous.stdout + unknown.stdout + negative.stdout


async def test_rows_limits_the_mappings_not_the_totals(tmp_path: Path, served: Serve) -> None:
    """``--rows 2`` shows two mappings and says how many more there are; shapes count all."""
    rows = [agi_row(f"agi-{i}", "running", iso(T - i)) for i in range(5)]
    base = await served(AgiSimulator(sessions=rows, api_key=KEY))
    result = await diagnose(tmp_path, "agi", base, "--rows", "2")

    lines = normalized(result.stdout, base)
    assert 0 == result.returncode, result.stderr
    assert "  shape 1: 5 rows, the first is #1 row 0" in lines
    assert [
        "rows (5): how each was read and counted",
        '  #1 row 0: id "a…" (5 chars), status "running" -> running (live), counted',
        '      created 2026-01-01T00:00:00Z, kind "a…" (5 chars)',
        '  #1 row 1: id "a…" (5 chars), status "running" -> running (live), counted',
        '      created 2025-12-31T23:59:59Z, kind "a…" (5 chars)',
        "  … 3 more rows not shown (--rows 0 shows every row)",
    ] == lines[-6:]


async def test_chaser_list_shape_rows_are_shown(tmp_path: Path, served: Serve) -> None:
    """An account served Chaser's newer list shape has its rows found under ``data`` and
    mapped like the others, ``creating`` pending, ``expires_at`` as the deadline."""
    rows = [
        chaser_list_row("sess_a", "creating", iso(T - 5), expires_at="2100-01-01T00:00:00Z"),
        chaser_list_row("sess_b", "ready", iso(T - 9), expires_at=iso(T - M)),
    ]
    base = await served(ChaserSimulator(sessions=rows, api_key=KEY, envelope="list"))
    result = await diagnose(tmp_path, "chaser", base, "--json")

    assert 0 == result.returncode, result.stderr
    document = json.loads(result.stdout)
    assert [2] == [request["rows"] for request in document["requests"]]
    assert [("pending", False), ("live", True)] == [
        (row["phase"], row["overdue"]) for row in document["rows"]
    ]


async def test_help_lists_the_options_and_exit_codes() -> None:
    """``diagnose --help`` names its options and its exit codes."""
    result = await run("diagnose", "--help")
    text = " ".join(result.stdout.split())

    assert 0 == result.returncode
    assert "--target NAME" in text
    assert "--json" in text
    assert "--rows N" in text
    assert (
        "diagnose: 0 the poll succeeded; 1 it failed (the report says why); 2 usage or config"
        in text
    )


# --- masking, without sockets ----------------------------------------------------------------


def test_every_provider_has_its_rows_located() -> None:
    """The diagnostic finds each built-in provider's rows where its definition says they
    are (every shape it accepts), and none where they are not."""
    engines = {name: _engine(name) for name in CODED_IDS}
    assert all(isinstance(engine, DefinedProvider) for engine in engines.values())
    assert [b'{"id":1}'] == [bytes(r) for r in engines["chaser"].raw_rows(b'[{"id":1}]') or []]
    assert engines["together"].raw_rows(b'[{"id":1}]') is None
    assert [b"{}"] == [
        bytes(r) for r in engines["together"].raw_rows(b'{"data":{"sessions":[{}]}}') or []
    ]
    assert engines["trigger"].raw_rows(b'{"data": 3}') is None
    assert engines["notte"].raw_rows(b"{not json") is None


def _engine(name: str) -> Any:
    """The provider of a target of built-in provider ``name``."""
    settings = Settings(targets=[{"name": "t", "provider": name, "api_key": "k"}])
    return provider_for(settings.targets[0])


def test_strings_show_their_length_and_a_few_leading_characters() -> None:
    """At most a quarter of a string and never more than four characters; timestamps whole;
    a string holding the key in any spelling by its length alone."""
    masker = Masker(KEY)
    assert {"length": 36, "prefix": "3f2a"} == masker.string("3f2a" + "x" * 32)
    assert {"length": 7, "prefix": "r"} == masker.string("running")
    assert {"length": 3, "prefix": ""} == masker.string("abc")
    assert {"timestamp": "2026-01-01T00:00:00.123Z"} == masker.string("2026-01-01T00:00:00.123Z")
    assert {"length": 13, "prefix": "179"} == masker.string("1796031511810")  # no timestamp
    for spelling in (KEY, quote(KEY, safe=""), quote_plus(KEY)):
        assert {"length": len(spelling) + 4, "redacted": True} == masker.string(f"key={spelling}")
    assert '"3f2a…" (36 chars)' == render(masker.string("3f2a" + "x" * 32))
    assert '"…" (1 char)' == render(masker.string("7"))
    assert '""' == render(masker.string(""))
    assert "[REDACTED] (26 chars)" == render(masker.string(KEY))


def test_nested_values_are_masked_to_a_depth() -> None:
    """Objects and arrays are masked inside; below three levels only their size is shown."""
    masker = Masker(None)
    value = {"a": [1, "two", {"deep": {"deeper": True}}, 4], "b": None}
    assert '{"a": [1, "…" (3 chars), {"deep": {… 1 key}}, … 4 items], "b": null}' == render(
        masker.value(value)
    )
    values: tuple[object, ...] = ("s", 1, 1.5, True, None, {}, [])
    assert ["string", "integer", "number", "boolean", "null", "object", "array"] == [
        json_type(v) for v in values
    ]


def test_timestamps_are_iso_dates_and_times_only() -> None:
    """A date or date-time in the extended form is a timestamp; digits alone are not."""
    assert is_timestamp("2026-01-01")
    assert is_timestamp("2026-01-01T10:00:00+02:00")
    assert not is_timestamp("20260101")
    assert not is_timestamp("2026-13-01T00:00:00Z")
    assert not is_timestamp("soon")


def test_scrub_and_url_remove_every_spelling_of_the_key() -> None:
    """The raw, percent-encoded and base64 key are replaced (as the logs do); a URL whose
    query holds the key only half encoded loses its query."""
    masker = Masker(KEY)
    assert "a [REDACTED] b [REDACTED] c [REDACTED]" == masker.scrub(
        f"a {KEY} b {quote(KEY, safe='')} c {quote_plus(KEY)}"
    )
    half = KEY.replace("+", "%2B")
    assert "http://h/p?[REDACTED]" == masker.url(f"http://h/p?x={half}")
    assert "http://h/p?page=1" == masker.url("http://h/p?page=1")
    assert "[REDACTED]" == masker.url(f"http://h/{half}/p")
    encoded = base64.b64encode(f"Bearer {KEY}".encode()).decode()
    assert "token [REDACTED]" == masker.scrub(f"token {encoded}")
    assert {"length": len(encoded), "redacted": True} == masker.string(encoded)
    assert "abc" == Masker("abc").scrub("abc")  # too short to look for, as in the logs
