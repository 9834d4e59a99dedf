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
    BrowserbaseSimulator,
    ChaserSimulator,
    DaytonaSimulator,
    E2bSimulator,
    NotteSimulator,
    RunloopSimulator,
    SteelSimulator,
    TogetherSimulator,
    TriggerSimulator,
    agi_row,
    browserbase_row,
    chaser_row,
    daytona_row,
    e2b_row,
    notte_row,
    runloop_row,
    steel_row,
    together_row,
    trigger_row,
)
from exporter.simulators.agi import STATUSES as AGI_STATUSES
from exporter.simulators.browserbase import STATUSES as BROWSERBASE_STATUSES
from exporter.simulators.daytona import STATES as DAYTONA_STATES
from exporter.simulators.e2b import STATES as E2B_STATES
from exporter.simulators.notte import STATUSES as NOTTE_STATUSES
from exporter.simulators.runloop import STATUSES as RUNLOOP_STATUSES
from exporter.simulators.steel import STATUSES as STEEL_STATUSES

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
T0_MS = round(T0 * 1000)

ACTIVE: dict[str, tuple[str, ...]] = {
    "e2b": ("running",),
    "browserbase": ("PENDING", "RUNNING"),
    "daytona": (
        "creating",
        "restoring",
        "starting",
        "pending_build",
        "building_snapshot",
        "pulling_snapshot",
        "resuming",
        "resizing",
        "snapshotting",
        "forking",
        "started",
        "stopping",
        "pausing",
    ),
    "runloop": (
        "scheduled",
        "queued",
        "provisioning",
        "initializing",
        "resuming",
        "running",
        "suspending",
    ),
    "steel": ("live",),
}
"""The statuses of phase pending and live (interface.md, "More providers"): what a target
with `only_active: true` asks each API's filter for, in the wire's spelling."""


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


def e2b() -> E2bSimulator:
    """Both states five times (the SDK fails a page holding any other), deadlines spread."""
    rows = [
        e2b_row(
            f"i{i:02d}sbx",
            state,
            T0 + i,
            T0 + i + (300 if i % 2 else 3600),
            template_id="code-interpreter-v1" if i % 3 else "base",
            alias="code-interpreter" if i % 3 else OMIT,
            metadata={"user": f"u{i}"} if i % 2 else None,
        )
        for i, state in enumerate(E2B_STATES * 5)
    ]
    return E2bSimulator(sessions=rows)


def browserbase() -> BrowserbaseSimulator:
    """Each of the five statuses three times; ended ones with `endedAt`, metadata null and set."""
    rows = []
    for i, status in enumerate(BROWSERBASE_STATUSES * 3):
        ended = status not in ("PENDING", "RUNNING")
        rows.append(
            browserbase_row(
                f"{i:08d}-bbse-4000-8000-000000000000",
                status,
                T0 + i,
                T0 + i + 900,
                ended_at=T0 + i + 60 if ended else None,
                keep_alive=bool(i % 2),
                region=("us-west-2", "eu-central-1")[i % 2],
                context_id=f"ctx_{i}" if i % 3 == 0 else None,
                user_metadata={"run": str(i)} if i % 2 else None,
            )
        )
    return BrowserbaseSimulator(sessions=rows)


def daytona(**options: Any) -> DaytonaSimulator:
    """Each of the 22 wire states twice, deadline inputs set and unset; plus an unclaimed
    warm-pool sandbox and an errored one being destroyed, which the API leaves out by default.
    """
    rows = []
    for i, state in enumerate(DAYTONA_STATES * 2):
        rows.append(
            daytona_row(
                f"{i:08d}-dayt-4000-8000-000000000000",
                state,
                T0 + i,
                last_activity_at=None if i % 5 == 4 else T0 + i + 30,
                auto_stop_interval=(0, 15, 60)[i % 3],
                auto_pause_interval=(0, 30)[i % 2],
                auto_destroy_at=T0 + 7200 + i if i % 4 == 0 else None,
            )
        )
    rows.append(daytona_row("warm-0001", "started", T0 + 100, warm_pool_id="wp_1"))
    rows.append(daytona_row("gone-0001", "error", T0 + 101, desired_state="destroyed"))
    return DaytonaSimulator(sessions=rows, **options)


def runloop() -> RunloopSimulator:
    """Each of the ten statuses twice; keep-alive null and set, idle policies both spellings."""
    idle = {"idle_time_seconds": 600, "on_idle": "suspend"}
    rows = []
    for i, status in enumerate(RUNLOOP_STATUSES * 2):
        rows.append(
            runloop_row(
                f"dbx_{i:02d}",
                status,
                T0_MS + 1000 * i,
                keep_alive_time_seconds=None if i % 4 == 3 else 600 * (i + 1),
                after_idle=idle if i % 6 == 1 else None,
                lifecycle={"after_idle": idle} if i % 6 == 2 else None,
                end_time_ms=T0_MS + 1000 * i + 5000 if status in ("failure", "shutdown") else None,
                failure_reason="execution_failed" if status == "failure" else None,
                shutdown_reason="api_shutdown" if status == "shutdown" else None,
            )
        )
    return RunloopSimulator(sessions=rows)


def steel() -> SteelSimulator:
    """Each of the three statuses four times; optional fields absent, null and set."""
    rows = []
    for i, status in enumerate(STEEL_STATUSES * 4):
        rows.append(
            steel_row(
                f"{i:08d}-stee-4000-8000-000000000000",
                status,
                T0 + i,
                (300_000, 900_000)[i % 2],
                duration_ms=1000 * i,
                inactivity_timeout_ms=(OMIT, None, 60_000)[i % 3],
                release_reason={"released": "user_requested", "failed": "browser_crashed"}.get(
                    status, OMIT
                ),
                project_id=f"proj_{i % 2}",
            )
        )
    return SteelSimulator(sessions=rows)


def _wanted(row_status: Any, statuses: tuple[str, ...] | None) -> bool:
    return statuses is None or row_status in statuses


def expected_rows(provider: str, rows: list[dict[str, Any]], **query: Any) -> list[dict[str, Any]]:
    """What a client listing `rows` should get, in the drivers' shape, ordered by id.

    For the five providers added later `query` holds `statuses`: the status filter's values
    (None: no filter).
    """
    out: list[dict[str, Any]]
    statuses: tuple[str, ...] | None = query.get("statuses")
    match provider:
        case "e2b":
            out = [
                {
                    "id": row["sandboxID"],
                    "status": row["state"],
                    "created": parse_timestamp(row["startedAt"]),
                    "deadline": parse_timestamp(row["endAt"]),
                    "template": row["templateID"],
                }
                for row in rows
                if _wanted(row["state"], statuses)
            ]
        case "browserbase":
            out = [
                {
                    "id": row["id"],
                    "status": row["status"],
                    "created": parse_timestamp(row["createdAt"]),
                    "deadline": parse_timestamp(row["expiresAt"]),
                    "region": row["region"],
                }
                for row in rows
                if _wanted(row["status"], statuses)
            ]
        case "daytona":
            out = [
                {
                    "id": row["id"],
                    "status": row.get("state"),
                    "created": row["createdAt"],
                    "last_activity": row.get("lastActivityAt"),
                    "auto_stop_minutes": row["autoStopInterval"],
                    "auto_pause_minutes": row["autoPauseInterval"],
                    "auto_destroy_at": row["autoDestroyAt"],
                }
                for row in rows
                if _wanted(row.get("state"), statuses)
                and row.get("warmPoolId") is None  # the API's defaults leave these two out
                and not (row.get("state") == "error" and row.get("desiredState") == "destroyed")
            ]
        case "runloop":
            out = [
                {
                    "id": row["id"],
                    "status": row["status"],
                    "created_ms": row["create_time_ms"],
                    "keep_alive_seconds": row["launch_parameters"]["keep_alive_time_seconds"],
                    "idles": row["launch_parameters"]["after_idle"] is not None
                    or (row["launch_parameters"]["lifecycle"] or {}).get("after_idle") is not None,
                }
                for row in rows
                if _wanted(row["status"], statuses)
            ]
        case "steel":
            out = [
                {
                    "id": row["id"],
                    "status": row["status"],
                    "created": parse_timestamp(row["createdAt"]),
                    "timeout_ms": row["timeout"],
                }
                for row in rows
                if _wanted(row["status"], statuses)
            ]
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
