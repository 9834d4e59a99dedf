"""The SDK contract tests' datasets: every status the SDK and the contract know, several pages.

Nullable fields are both null and set. Each builder returns the simulator, filled; the
expected rows are derived from the same rows by `expected_rows`.
"""

from __future__ import annotations

from typing import Any

from exporter.core.timeparse import parse_timestamp
from exporter.simulators import (
    OMIT,
    AgiSimulator,
    ChaserSimulator,
    NotteSimulator,
    TogetherSimulator,
    TriggerSimulator,
    agi_row,
    chaser_row,
    notte_row,
    together_row,
    trigger_row,
)
from exporter.simulators.agi import STATUSES as AGI_STATUSES
from exporter.simulators.notte import STATUSES as NOTTE_STATUSES

T0 = 1_700_000_000.0
"""The datasets' clock: rows are created around it, Trigger's period filter counts from it."""
DAY = 86_400.0

CHASER_STATUSES = (
    "ready",  # the SDK's ready set: ready, running, active
    "running",
    "active",
    "terminated",  # the SDK's terminal set: terminated, failed
    "failed",
    "pending",  # the project's documented mapping (README) for the free-form rest
    "starting",
    "idle",
    "stopping",
    "stopped",
    "completed",
    "expired",
    "error",
)
TRIGGER_STATUSES = ("ACTIVE", "CLOSED", "EXPIRED")


def together() -> TogetherSimulator:
    """Three live sessions (the API has no status and no paging)."""
    return TogetherSimulator(
        sessions=[
            together_row("ses_1", T0, T0 + 600),
            together_row("ses_2", T0 + 1, T0 + 60, last_execute_at=T0 + 30, execute_count=4),
            together_row("ses_3", "2023-11-14T22:13:22.5+00:00", T0 + 3600, execute_count=1),
        ],
        errors=["quota nearly used", {"code": "warn", "message": "slow"}],
    )


def agi() -> AgiSimulator:
    """Each of the nine statuses twice, the SDK's optional fields null and set."""
    rows = []
    for i, status in enumerate(AGI_STATUSES * 2):
        extra: dict[str, Any] = {}
        if i % 2:
            extra = {
                "vnc_url": f"https://vnc.agi.tech/{i}",
                "agent_url": f"https://desk.agi.tech/{i}",
                "environment_id": f"env_{i}",
                "goal": "book a flight",
                "agent_session_type": "desktop",
            }
        rows.append(agi_row(f"agi_{i:02d}", status, T0 + i, agent_name="agi-0-fast", **extra))
    return AgiSimulator(sessions=rows)


def chaser(**options: Any) -> ChaserSimulator:
    """Each of the thirteen statuses twice; leases, video, persistence null, set and absent."""
    rows = []
    for i, status in enumerate(CHASER_STATUSES * 2):
        absent = i % 3 == 2
        rows.append(
            chaser_row(
                f"chs_{i:02d}",
                status,
                T0 + i,
                leases=OMIT if absent else (None if i % 3 else i % 4),
                session_type="sandbox" if i % 2 else "browser",
                video=OMIT
                if absent
                else (f"wss://api.chaser.sh/v1/sessions/{i}/video" if i % 3 else None),
                persistence=OMIT if absent else (True if i % 3 else None),
                workspace_id=f"ws_{i}" if i % 2 else None,
            )
        )
    return ChaserSimulator(sessions=rows, **options)


def notte() -> NotteSimulator:
    """Each of the five statuses three times; closed_at, error, close_reason null and set."""
    rows = []
    for i, status in enumerate(NOTTE_STATUSES * 3):
        ended = status not in ("active", "authenticating")
        rows.append(
            notte_row(
                f"ntt_{i:02d}",
                status,
                T0 + i,
                T0 + i + 30,
                idle_timeout_minutes=3 + i % 4,
                max_duration_minutes=None if i % 2 else 30,
                closed_at=T0 + i + 60 if ended else None,
                error="browser crashed" if status == "error" else None,
                close_reason={"closed": "manual", "timed_out": "idle_timeout"}.get(status),
                browser_type="firefox" if i % 3 == 0 else "chromium",
            )
        )
    return NotteSimulator(sessions=rows)


def trigger() -> TriggerSimulator:
    """Each status four times within a day of `T0`, plus an ACTIVE and a CLOSED row older."""
    rows = []
    for i, status in enumerate(TRIGGER_STATUSES * 4):
        created = T0 - 3600 - 60 * i
        rows.append(
            trigger_row(
                f"session_{i:02d}",
                status,
                created,
                created + 30,
                None if i % 2 else created + 900,
                tags=["chat", f"n{i}"] if i % 2 else (),
                external_id=f"chat_{i}" if i % 2 else None,
                closed_reason="user left" if status == "CLOSED" and i % 2 else None,
                metadata={"plan": "pro"} if i % 3 == 0 else None,
                type="batch" if i % 4 == 0 else "chat.agent",
            )
        )
    rows.append(trigger_row("session_old_active", "ACTIVE", T0 - 3 * DAY, T0 - 2 * DAY))
    rows.append(trigger_row("session_old_closed", "CLOSED", T0 - 3 * DAY, T0 - 2 * DAY))
    sim = TriggerSimulator(sessions=rows)
    sim.now = lambda: T0
    return sim


def expected_rows(provider: str, rows: list[dict[str, Any]], **query: Any) -> list[dict[str, Any]]:
    """What a client listing `rows` should get, in the drivers' shape, ordered by id."""
    out: list[dict[str, Any]]
    match provider:
        case "together":
            out = [
                {
                    "id": row["id"],
                    "status": "active",
                    "created": parse_timestamp(row["started_at"]),
                    "deadline": parse_timestamp(row["expires_at"]),
                    "last_activity": parse_timestamp(row["last_execute_at"]),
                    "executions": row["execute_count"],
                }
                for row in rows
            ]
        case "agi":
            out = [
                {
                    "id": row["session_id"],
                    "status": row["status"],
                    "created": parse_timestamp(row["created_at"]),
                    "kind": row["agent_name"],
                    "agent_session_type": row["agent_session_type"],
                }
                for row in rows
            ]
        case "chaser":
            out = [
                {
                    "id": row["id"],
                    "status": row["status"],
                    "created": row["created_at"],
                    "leases": row.get("active_connection_leases"),
                    "kind": row["session_type"],
                }
                for row in rows
            ]
        case "notte":
            out = [
                {
                    "id": row["session_id"],
                    "status": row["status"],
                    "created": parse_timestamp(row["created_at"]),
                    "last_activity": parse_timestamp(row["last_accessed_at"]),
                    "idle_timeout_minutes": row["idle_timeout_minutes"],
                    "max_duration_minutes": row.get("max_duration_minutes", 15),
                    "kind": row["browser_type"],
                    "close_reason": row["close_reason"],
                }
                for row in rows
                if not query["only_active"] or row["status"] == "active"
            ]
        case _:
            out = [
                {
                    "id": row["id"],
                    "status": row["status"],
                    "created": parse_timestamp(row["createdAt"]),
                    "deadline": None
                    if row["expiresAt"] is None
                    else parse_timestamp(row["expiresAt"]),
                    "last_activity": parse_timestamp(row["updatedAt"]),
                    "kind": row["type"],
                }
                for row in rows
                if row["status"] == "ACTIVE" or parse_timestamp(row["createdAt"]) >= T0 - DAY
            ]
    return sorted(out, key=lambda row: str(row["id"]))
