"""Contract tests: the simulators' real HTTP responses validate against the providers' specs.

Where a provider's official SDK shows the real API doing more than its spec (a route, a
status, a row field, an envelope), the simulator follows the SDK and `sdk_spec` admits
exactly that difference, each with a comment naming where the SDK says so.
"""

# House style is `assert expected == actual`, which SIM300 calls a Yoda condition.

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

from exporter.simulators import (
    OMIT,
    SIMULATORS,
    AgiSimulator,
    ChaserSimulator,
    NotteSimulator,
    Simulator,
    TogetherSimulator,
    TriggerSimulator,
    agi_row,
    chaser_row,
    notte_row,
    together_row,
    trigger_row,
)
from exporter.simulators.agi import STATUSES as AGI_STATUSES
from tests.spec_schema import (
    load_spec,
    response_problems,
    response_schema,
    response_validator,
    spec_path,
    undeclared_keys,
)

SPECS = Path(
    os.environ.get(
        "SESSION_EXPORTER_SPECS", Path(__file__).resolve().parents[2] / "shared" / "specs"
    )
)
T0 = 1_700_000_000.0
SPECIFIED = ("agi", "chaser", "notte", "together", "trigger")
"""The providers with an OpenAPI spec in ../shared/specs (the five added later have only SDKs)."""
AUTH = {"Authorization": "Bearer test-key"}


@pytest.fixture
def specs() -> Path:
    if not SPECS.is_dir():
        pytest.skip(f"provider specs not found at {SPECS}: contract tests need ../shared/specs")
    return SPECS


def spec_of(specs: Path, provider: str) -> dict[str, Any]:
    return load_spec(specs / f"{provider}.openapi.yaml")


# --- allowances: what the official SDKs show beyond the specs ------------------------------

NULLABLE_STRING = {"anyOf": [{"type": "string"}, {"type": "null"}]}


def sdk_spec(specs: Path, provider: str) -> dict[str, Any]:
    """The provider's spec plus, explicitly, what its official SDK shows beyond it."""
    spec = copy.deepcopy(spec_of(specs, provider))
    schemas = spec["components"]["schemas"]
    if provider == "agi":
        row = schemas["Session"]["properties"]
        # agi-python 0.5.1 types/shared.py SessionStatus: two statuses the spec's enum lacks
        row["status"]["enum"] += ["waiting_for_input", "finished"]
        # agi-python 0.5.1 types/sessions.py SessionResponse: five optional row fields more
        row |= {
            "vnc_url": NULLABLE_STRING,
            "agent_url": NULLABLE_STRING,
            "environment_id": NULLABLE_STRING,
            "goal": NULLABLE_STRING,
            "agent_session_type": {
                "type": "string",
                "enum": ["managed-cdp", "external-cdp", "desktop"],  # types/shared.py
            },
        }
    elif provider == "notte":
        # notte-sdk 1.10.0 _generated/operations.py list_sessions: the route is the FastAPI
        # `/sessions/` (the spec says `/sessions`, which the API redirects)
        spec["paths"]["/sessions/"] = spec["paths"].pop("/sessions")
        row = schemas["SessionResponse"]["properties"]
        # notte-core 1.10.0 types.py SessionResponse.status: `authenticating` beside the four
        row["status"]["enum"] += ["authenticating"]
        # notte-core 1.10.0 types.py SessionResponse: three row fields more
        row |= {
            "close_reason": {
                "anyOf": [
                    {
                        "type": "string",
                        "enum": ["manual", "idle_timeout", "max_duration", "error", "unknown"],
                    },
                    {"type": "null"},
                ]
            },
            "auth_ids": {"type": "array", "items": {"type": "string"}},
            "system_hidden": {"type": "boolean"},
        }
    elif provider == "chaser":
        # chaser-sdk 0.2.1 client.py _normalize_list_sessions_response: a bare array of rows
        # is the whole list (the 0.1 line's only shape)
        answer = spec["paths"]["/v1/sessions"]["get"]["responses"]["200"]
        listed = answer["content"]["application/json"]["schema"]
        rows = {"type": "array", "items": {"$ref": "#/components/schemas/SessionInfo"}}
        answer["content"]["application/json"]["schema"] = {"anyOf": [listed, rows]}
    return spec


@dataclass(frozen=True)
class Case:
    """One request to one simulator, the status the spec documents for it, and rows expected."""

    name: str
    make: Callable[[], Simulator]
    params: dict[str, str] = field(default_factory=dict)
    status: int = 200
    rows: int = 0

    @property
    def provider(self) -> str:
        return self.make().provider


# --- datasets: every nullable field both null and set ------------------------------------


def chaser_sessions() -> list[dict[str, Any]]:
    return [
        chaser_row("c1", "running", T0, leases=None),
        chaser_row("c4", "ready", T0 + 2, leases=1, session_type="sandbox"),
        chaser_row(  # keys the SDK types not-required, left out
            "c5", "terminated", T0 + 3, leases=OMIT, video=OMIT, persistence=OMIT
        ),
        chaser_row(
            "c2",
            "stopped",
            T0 + 1,
            leases=3,
            video="wss://api.chaser.sh/v1/sessions/c2/video",
            persistence=True,
            workspace_id="ws_1",
        ),
        chaser_row("c3", "starting", "2024-05-01T10:00:00Z", persistence=False),
    ]


def notte_sessions() -> list[dict[str, Any]]:
    return [
        notte_row("n1", "active", T0, T0 + 30),
        notte_row("n5", "authenticating", T0, T0 + 2, system_hidden=True),
        notte_row(
            "n2",
            "closed",
            T0,
            T0 + 60,
            idle_timeout_minutes=5,
            max_duration_minutes=None,
            closed_at=T0 + 90,
            close_reason="manual",
            auth_ids=["auth_1"],
            error="browser crashed",
            duration="PT1M30S",
            user_agent="Mozilla/5.0",
            viewport_width=1280,
            viewport_height=720,
            solve_captchas=True,
            cdp_url="wss://cdp.notte.cc/n2",
            viewer_url="https://viewer.notte.cc/n2",
            steps=[{"action": "goto", "url": "https://example.com"}],
        ),
        notte_row("n3", "timed_out", T0, T0 + 1, browser_type="firefox", closed_at=T0 + 200),
        notte_row("n4", "error", "2024-05-01T10:00:00+00:00", "2024-05-01T10:05:00+00:00"),
    ]


def together_sessions() -> list[dict[str, Any]]:
    return [
        together_row("ses_abc", T0, T0 + 3600),
        together_row("ses_def", T0, T0 + 60, last_execute_at=T0 + 30, execute_count=4),
    ]


def agi_sessions() -> list[dict[str, Any]]:
    rows = [agi_row(f"a{i}", status, T0 + i) for i, status in enumerate(AGI_STATUSES)]
    rows[0] |= {
        "vnc_url": "https://vnc.agi.tech/a0",
        "agent_url": "https://desk.agi.tech/a0",
        "environment_id": "env_1",
        "goal": "book a flight",
        "agent_session_type": "desktop",
    }
    return rows


def trigger_sessions() -> list[dict[str, Any]]:
    return [
        trigger_row("session_1", "ACTIVE", T0 - 60, T0 - 60),
        trigger_row(
            "session_2",
            "CLOSED",
            T0 - 120,
            T0 - 30,
            expires_at=T0 + 86_400,
            tags=["chat:1", "vip"],
            external_id="chat_1",
            closed_reason="user left",
            metadata={"plan": "pro", "seats": 3},
        ),
        trigger_row("session_3", "EXPIRED", T0 - 7200, T0 - 3600, expires_at=T0 - 3600),
        trigger_row("session_4", "ACTIVE", T0 - 90_000, T0 - 90_000, type="batch"),
    ]


def trigger(sessions: list[dict[str, Any]]) -> TriggerSimulator:
    sim = TriggerSimulator(sessions=sessions)
    sim.now = lambda: T0
    return sim


def together_with_errors() -> TogetherSimulator:
    sim = TogetherSimulator(sessions=together_sessions())
    sim.errors = ["quota nearly exhausted", {"code": "degraded", "region": "us-east"}]
    return sim


CASES = [
    Case("populated", lambda: ChaserSimulator(sessions=chaser_sessions()), rows=5),
    Case(
        "bare-array",
        lambda: ChaserSimulator(sessions=chaser_sessions(), envelope="array"),
        {"limit": "1"},
        rows=5,
    ),
    Case(
        "paged",
        lambda: ChaserSimulator(sessions=chaser_sessions()),
        {"limit": "1", "offset": "1"},
        rows=1,
    ),
    Case("empty", ChaserSimulator),
    Case("active-only", lambda: NotteSimulator(sessions=notte_sessions()), rows=1),
    Case(
        "all", lambda: NotteSimulator(sessions=notte_sessions()), {"only_active": "false"}, rows=5
    ),
    Case(
        "no-system",
        lambda: NotteSimulator(sessions=notte_sessions()),
        {"only_active": "False", "include_system": "False"},  # the SDK's spelling of booleans
        rows=4,
    ),
    Case(
        "second-page",
        lambda: NotteSimulator(sessions=notte_sessions()),
        {"only_active": "false", "page": "2", "page_size": "1"},
        rows=1,
    ),
    Case("empty", NotteSimulator),
    Case("page_size-101", NotteSimulator, {"page_size": "101"}, status=422),
    Case("page-0", NotteSimulator, {"page": "0"}, status=422),
    Case("not-integer", NotteSimulator, {"page": "one"}, status=422),
    Case(
        "many-errors",
        NotteSimulator,
        {"page": "x", "page_size": "0", "only_active": "perhaps"},
        status=422,
    ),
    Case("populated", lambda: TogetherSimulator(sessions=together_sessions()), rows=2),
    Case("with-errors", together_with_errors, rows=2),
    Case("empty", TogetherSimulator),
    Case("populated", lambda: AgiSimulator(sessions=agi_sessions()), rows=9),
    Case("empty", AgiSimulator),
    Case("populated", lambda: trigger(trigger_sessions()), rows=4),
    Case(
        "middle-page",
        lambda: trigger(trigger_sessions()),
        {"page[size]": "1", "page[after]": "session_1"},
        rows=1,
    ),
    Case(
        "backward",
        lambda: trigger(trigger_sessions()),
        {"page[size]": "1", "page[before]": "session_3"},
        rows=1,
    ),
    Case(
        "filtered",
        lambda: trigger(trigger_sessions()),
        {
            "filter[status]": "CLOSED,EXPIRED",
            "filter[createdAt][period]": "1d",
            "filter[tags]": "vip",
        },
        rows=1,
    ),
    Case("empty", TriggerSimulator),
    Case("bad-status", TriggerSimulator, {"filter[status]": "FOOBAR"}, status=400),
    Case("bad-period", TriggerSimulator, {"filter[createdAt][period]": "forever"}, status=400),
    Case("bad-size", TriggerSimulator, {"page[size]": "1000"}, status=400),
    Case("unknown-cursor", TriggerSimulator, {"page[after]": "session_nope"}, status=400),
    Case(
        "many-errors",
        TriggerSimulator,
        {"page[size]": "0", "filter[status]": "open", "filter[createdAt][from]": "soon"},
        status=400,
    ),
]


def rows_of(provider: str, document: Any) -> list[Any]:
    """The session rows inside a 200 response of `provider`."""
    match provider:
        case "chaser":
            rows = document if isinstance(document, list) else document["sessions"]
        case "notte":
            rows = document["items"]
        case "together":
            rows = document["data"]["sessions"]
        case "agi":
            rows = document
        case _:
            rows = document["data"]
    assert isinstance(rows, list)
    return rows


async def fetch(
    aiohttp_client: AiohttpClient, sim: Simulator, params: dict[str, str]
) -> tuple[int, Any]:
    client = await aiohttp_client(sim.app())
    response = await client.get(sim.path, params=params, headers=AUTH)
    return response.status, await response.json()


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{case.provider}-{case.name}")
async def test_response_validates_against_the_spec(
    aiohttp_client: AiohttpClient, specs: Path, case: Case
) -> None:
    """Each response has the documented status, validates against its schema, invents no keys."""
    sim = case.make()
    status, document = await fetch(aiohttp_client, sim, case.params)
    assert case.status == status
    spec = sdk_spec(specs, sim.provider)
    assert [] == response_problems(spec, spec_path(spec, sim.path), case.status, document)
    if case.status == 200:
        assert case.rows == len(rows_of(sim.provider, document))


@pytest.mark.parametrize("provider", SPECIFIED)
def test_served_path_is_the_spec_operation(specs: Path, provider: str) -> None:
    """The simulator's path is a spec server's path prefix plus the documented operation path."""
    spec = sdk_spec(specs, provider)
    assert "get" in spec["paths"][spec_path(spec, SIMULATORS[provider].path)]


@pytest.mark.parametrize("provider", SPECIFIED)
def test_every_documented_json_response_is_exercised(specs: Path, provider: str) -> None:
    """Each status with a JSON schema in the spec has at least one case above (catches drift)."""
    spec = sdk_spec(specs, provider)
    responses = spec["paths"][spec_path(spec, SIMULATORS[provider].path)]["get"]["responses"]
    documented = {int(code) for code, response in responses.items() if "content" in response}
    covered = {case.status for case in CASES if case.provider == provider}
    assert documented == covered


# --- the validator itself is strict enough to notice drift -------------------------------


def notte_row_schema(specs: Path) -> dict[str, Any]:
    schema = response_schema(spec_of(specs, "notte"), "/sessions", 200)
    row = schema["properties"]["items"]["items"]
    assert isinstance(row, dict)
    return row


@pytest.mark.parametrize(
    ("field_name", "value"),
    [
        ("created_at", "yesterday"),
        ("created_at", "2024-05-01 10:00:00"),
        ("created_at", "2024-05-01T10:00:00"),
        ("created_at", "2024-02-30T10:00:00Z"),
        ("closed_at", "2024-05-01"),
        ("duration", "90 seconds"),
        ("status", "running"),
        ("idle_timeout_minutes", None),
    ],
)
def test_validator_rejects_drifted_values(specs: Path, field_name: str, value: Any) -> None:
    """Bad date-times/durations (format checking is on), wrong enums and wrong types fail."""
    spec = spec_of(specs, "notte")
    validator = response_validator(spec, "/sessions", 200)
    row = notte_row("n1", "active", T0, T0) | {field_name: value}
    page = {"items": [row], "page": 1, "page_size": 10, "has_next": False, "has_previous": False}
    assert not validator.is_valid(page)


@pytest.mark.parametrize(
    ("field_name", "value", "valid"),
    [
        ("externalId", None, True),
        ("externalId", "chat_1", True),
        ("externalId", 5, False),
        ("metadata", None, True),
        ("metadata", [], False),
        ("closedAt", None, True),
        ("closedAt", "not a date", False),
        ("createdAt", None, False),
    ],
)
def test_nullable_is_converted_to_a_null_union(
    specs: Path, field_name: str, value: Any, valid: bool
) -> None:
    """OpenAPI 3.0 `nullable: true` admits null, and only for the fields that declare it."""
    spec = spec_of(specs, "trigger")
    validator = response_validator(spec, "/api/v1/sessions", 200)
    row = {k: v for k, v in trigger_row("session_1", "ACTIVE", T0, T0).items() if k != "status"}
    assert valid == validator.is_valid({"data": [row | {field_name: value}], "pagination": {}})


def test_undeclared_keys_finds_invented_fields_at_any_depth(specs: Path) -> None:
    """Keys the spec never declares are reported by JSON path, nested objects included."""
    spec = spec_of(specs, "chaser")
    schema = response_schema(spec, "/v1/sessions", 200)
    row = chaser_row("c1", "running", T0, region="eu")
    row["endpoints"]["debug"] = "http://x"
    document = {"sessions": [row], "total": 1, "cursor": None}
    expected = {"$.sessions[0].endpoints.debug", "$.sessions[0].region", "$.cursor"}
    assert expected == set(undeclared_keys(document, schema))


def test_trigger_internal_status_would_be_caught(specs: Path) -> None:
    """The internal trigger `status` key is undeclared, so serving it would break the contract."""
    spec = spec_of(specs, "trigger")
    schema = response_schema(spec, "/api/v1/sessions", 200)
    document = {"data": [trigger_row("session_1", "ACTIVE", T0, T0)], "pagination": {}}
    assert ["$.data[0].status"] == undeclared_keys(document, schema)


@pytest.mark.parametrize(
    ("make", "params", "expected"),
    [
        (
            lambda: AgiSimulator(sessions=agi_sessions()),
            {},
            {
                "$[4].status: 'waiting_for_input' is not one of ['initializing',",
                "$[6].status: 'finished' is not one of ['initializing',",
                "$[0].agent_session_type: not declared in the spec",
            },
        ),
        (
            lambda: NotteSimulator(sessions=notte_sessions()),
            {"only_active": "false"},
            {
                "$.items[1].status: 'authenticating' is not one of "
                "['active', 'closed', 'error', 'timed_out']",
                "$.items[0].close_reason: not declared in the spec",
                "$.items[0].system_hidden: not declared in the spec",
            },
        ),
        (
            lambda: ChaserSimulator(sessions=chaser_sessions(), envelope="array"),
            {},
            {"is not of type 'object'"},
        ),
    ],
    ids=["agi", "notte", "chaser"],
)
async def test_each_sdk_allowance_admits_what_the_bare_spec_refuses(
    aiohttp_client: AiohttpClient,
    specs: Path,
    make: Callable[[], Simulator],
    params: dict[str, str],
    expected: set[str],
) -> None:
    """Without `sdk_spec`, the SDK-shaped answers fail the spec: no allowance is there idly."""
    sim = make()
    status, document = await fetch(aiohttp_client, sim, params)
    spec = spec_of(specs, sim.provider)
    operation = spec_path(spec, sim.path.rstrip("/"))  # Notte's spec spells it `/sessions`
    problems = response_problems(spec, operation, 200, document)
    missing = {text for text in expected if not any(text in problem for problem in problems)}
    assert (200, set()) == (status, missing)
