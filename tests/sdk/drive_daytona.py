"""List Daytona sandboxes with the official SDK (`daytona_api_client` 0.226.1), every page.

Run by tests/sdk/test_sdk_more.py with the SDK environment's interpreter:
``python drive_daytona.py BASE_URL PAGE_SIZE STATES [ORGANIZATION]`` (the key in
``SDK_CONTRACT_KEY``; ``STATES`` a comma list, sent as repeated ``states=``, or ``-`` for
no filter). Prints JSON: ``{"sessions": [...], "pages": n}``.

The driver uses the generated client the high-level ``daytona.Daytona`` wraps, with the same
walk as ``Daytona.list``: ``GET {api_url}/sandbox`` with ``limit``, ``states`` and, after the
first page, ``cursor`` = the previous ``nextCursor``, until that is null or empty. The
high-level client is avoided on purpose: constructing it opens a Socket.IO websocket to
``{api_url}/socket.io/`` in a background thread and reads ``.env`` files from the working
directory; the generated client does neither. It also sends ``X-Daytona-Organization-ID``
when given one, which the high-level client does only with JWT auth. Timestamps stay the
strings the SDK leaves them.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from daytona_api_client import (  # type: ignore[import-not-found, unused-ignore]
    ApiClient,
    Configuration,
    SandboxApi,
    SandboxState,
)


def main(base_url: str, page_size: int, states: list[str], organization: str | None) -> None:
    """Print every sandbox of every page."""
    api = ApiClient(Configuration(host=base_url))
    api.default_headers["Authorization"] = f"Bearer {os.environ['SDK_CONTRACT_KEY']}"
    sandboxes = SandboxApi(api)
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = sandboxes.list_sandboxes(
            x_daytona_organization_id=organization,
            cursor=cursor,
            limit=page_size,
            states=[SandboxState(state) for state in states] if states else None,
            _request_timeout=10,
        )
        pages += 1
        rows += [
            {
                "id": item.id,
                "status": None if item.state is None else item.state.value,
                "created": item.created_at,
                "last_activity": item.last_activity_at,
                "auto_stop_minutes": item.auto_stop_interval,
                "auto_pause_minutes": item.auto_pause_interval,
                "auto_destroy_at": item.auto_destroy_at,
            }
            for item in page.items
        ]
        cursor = page.next_cursor or None
        if cursor is None:
            break
    print(json.dumps({"sessions": rows, "pages": pages}))


if __name__ == "__main__":
    main(
        sys.argv[1],
        int(sys.argv[2]),
        [] if sys.argv[3] == "-" else sys.argv[3].split(","),
        sys.argv[4] if len(sys.argv) > 4 else None,
    )
