"""List Notte sessions with the official SDK (`notte-sdk` + `notte-core` 1.10.0), every page.

Run by tests/sdk/test_sdk_contract.py with the SDK environment's interpreter:
``python drive_notte.py BASE_URL PAGE_SIZE ONLY_ACTIVE`` (the key in ``SDK_CONTRACT_KEY``;
``ONLY_ACTIVE`` is ``true`` or ``false``). Prints JSON: ``{"sessions": [...], "pages": n}``.

The SDK's ``sessions.list()`` returns one page's items and drops ``has_next``, so the
driver requests the same endpoint (``GET /sessions/``) parsed as the SDK's typed page model
and follows ``has_next``: the walk the SDK note found to work.

Telemetry and the version check are switched off before the SDK is imported: the test
also passes ``DISABLE_TELEMETRY=true`` and ``NOTTE_ENABLE_NEST_ASYNCIO=false``, and the
version check has no switch but the module flag set below.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

os.environ["DISABLE_TELEMETRY"] = "true"  # notte_core/telemetry.py, read at import
os.environ["NOTTE_ENABLE_NEST_ASYNCIO"] = "false"  # leave asyncio unpatched
os.environ.pop("NOTTE_API_KEY", None)  # the key is passed explicitly (no keyring lookup)

import notte_sdk.endpoints.base as _endpoints  # type: ignore[import-not-found, unused-ignore]

_endpoints._version_check_performed = True  # no version check against the package index

from notte_core.types import SessionListRequest  # type: ignore[import-not-found, unused-ignore]  # noqa: E402
from notte_sdk import NotteClient  # type: ignore[import-not-found, unused-ignore]  # noqa: E402
from notte_sdk._generated import models  # type: ignore[import-not-found, unused-ignore]  # noqa: E402
from notte_sdk._generated.operations import (  # type: ignore[import-not-found, unused-ignore]  # noqa: E402
    list_sessions,
)
from notte_sdk._requests import wire_request  # type: ignore[import-not-found, unused-ignore]  # noqa: E402


def main(base_url: str, page_size: int, only_active: bool) -> None:
    """Print every session of every page."""
    rows: list[dict[str, Any]] = []
    page = 1
    key = os.environ["SDK_CONTRACT_KEY"]
    with NotteClient(api_key=key, server_url=base_url, max_retries=0) as client:
        while True:
            query = {"page": page, "page_size": page_size, "only_active": only_active}
            endpoint = list_sessions(params=wire_request(SessionListRequest, query)).model_copy(
                update={"response": models.PaginatedResponseSessionResponse}
            )
            answer = client.sessions.request(endpoint, timeout=10)
            rows += [
                {
                    "id": session.session_id,
                    "status": session.status,
                    "created": session.created_at.timestamp(),
                    "last_activity": session.last_accessed_at.timestamp(),
                    "idle_timeout_minutes": session.idle_timeout_minutes,
                    "max_duration_minutes": session.max_duration_minutes,
                    "kind": session.browser_type,
                    "close_reason": session.close_reason,
                }
                for session in answer.items
            ]
            if not answer.has_next:
                break
            page += 1
    print(json.dumps({"sessions": rows, "pages": page}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3] == "true")
