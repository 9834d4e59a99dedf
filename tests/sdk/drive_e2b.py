"""List E2B sandboxes with the official SDK (`e2b` 2.63.0), every page.

Run by tests/sdk/test_sdk_more.py with the SDK environment's interpreter:
``python drive_e2b.py BASE_URL PAGE_SIZE STATES`` (the key in ``SDK_CONTRACT_KEY``; ``STATES``
a comma list of ``running``/``paused``, or ``-`` for no filter). Prints JSON:
``{"sessions": [...], "pages": n}``.

``Sandbox.list`` returns a paginator that sends ``GET /v2/sandboxes`` with ``state`` (comma
joined), ``limit`` and, after the first page, ``nextToken`` from the ``X-Next-Token`` answer
header; it is done when that header is missing or empty. The API URL is the simulator's
(``api_url=``, which the SDK also reads from ``E2B_API_URL``); ``retries=0`` makes each page
one request. The SDK has no telemetry and lists without touching the sandbox domain.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from e2b import Sandbox, SandboxQuery, SandboxState  # type: ignore[import-not-found, unused-ignore]


def main(base_url: str, page_size: int, states: list[str]) -> None:
    """Print every sandbox of every page."""
    query = SandboxQuery(state=[SandboxState(state) for state in states]) if states else None
    pager = Sandbox.list(
        query=query,
        limit=page_size,
        api_key=os.environ["SDK_CONTRACT_KEY"],
        api_url=base_url,
        retries=0,
        request_timeout=10,
    )
    rows: list[dict[str, Any]] = []
    pages = 0
    while pager.has_next:
        pages += 1
        rows += [
            {
                "id": sandbox.sandbox_id,
                "status": sandbox.state.value,
                "created": sandbox.started_at.timestamp(),
                "deadline": sandbox.end_at.timestamp(),
                "template": sandbox.template_id,
            }
            for sandbox in pager.next_items()
        ]
    print(json.dumps({"sessions": rows, "pages": pages}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), [] if sys.argv[3] == "-" else sys.argv[3].split(","))
