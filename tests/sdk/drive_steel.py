"""List Steel sessions with the official SDK (`steel-sdk` 0.19.0), every page.

Run by tests/sdk/test_sdk_more.py with the SDK environment's interpreter:
``python drive_steel.py BASE_URL PAGE_SIZE STATUS`` (the key in ``SDK_CONTRACT_KEY``;
``STATUS`` one of ``live``, ``released``, ``failed``, or ``-`` for no filter). Prints JSON:
``{"sessions": [...], "pages": n}``.

``sessions.list(limit=..., status=...)`` sends ``GET /v1/sessions`` with ``steel-api-key``;
its pager ignores ``nextCursor`` and asks again with ``cursorId`` = the last session's id
until a page comes back empty, so a full walk costs one request more than the pages with
rows. ``iter_pages`` walks it page by page (the empty one included), so ``pages`` counts the
requests. ``max_retries=0`` makes each page one request. The SDK has no telemetry.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from steel import Steel  # type: ignore[import-not-found, unused-ignore]


def main(base_url: str, page_size: int, status: str | None) -> None:
    """Print every session of every page."""
    client = Steel(
        steel_api_key=os.environ["SDK_CONTRACT_KEY"], base_url=base_url, max_retries=0, timeout=10
    )
    first = (
        client.sessions.list(limit=page_size, status=status)
        if status
        else client.sessions.list(limit=page_size)
    )
    rows: list[dict[str, Any]] = []
    pages = 0
    for page in first.iter_pages():
        pages += 1
        rows += [
            {
                "id": session.id,
                "status": session.status,
                "created": session.created_at.timestamp(),
                "timeout_ms": session.timeout,
            }
            for session in page.sessions
        ]
    print(json.dumps({"sessions": rows, "pages": pages}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), None if sys.argv[3] == "-" else sys.argv[3])
