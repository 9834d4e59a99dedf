"""List Browserbase sessions with the official SDK (`browserbase` 1.22.0).

Run by tests/sdk/test_sdk_more.py with the SDK environment's interpreter:
``python drive_browserbase.py BASE_URL STATUSES`` (the key in ``SDK_CONTRACT_KEY``;
``STATUSES`` a comma list of upper-case statuses, one listing each, or ``-`` for one
unfiltered listing). Prints JSON: ``{"sessions": [...], "pages": n}``, ``pages`` counting
the listings.

``sessions.list(status=...)`` sends ``GET /v1/sessions`` with ``X-BB-API-Key`` and at most
one upper-case ``status``; the answer is one bare array, with no paging. ``max_retries=0``
makes each listing one request. The SDK has no telemetry.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from browserbase import Browserbase  # type: ignore[import-not-found, unused-ignore]


def main(base_url: str, statuses: list[str | None]) -> None:
    """Print every session of every listing."""
    client = Browserbase(
        api_key=os.environ["SDK_CONTRACT_KEY"], base_url=base_url, max_retries=0, timeout=10
    )
    rows: list[dict[str, Any]] = []
    for status in statuses:
        listed = client.sessions.list(status=status) if status else client.sessions.list()
        rows += [
            {
                "id": session.id,
                "status": session.status,
                "created": session.created_at.timestamp(),
                "deadline": session.expires_at.timestamp(),
                "region": session.region,
            }
            for session in listed
        ]
    print(json.dumps({"sessions": rows, "pages": len(statuses)}))


if __name__ == "__main__":
    main(sys.argv[1], [None] if sys.argv[2] == "-" else list(sys.argv[2].split(",")))
