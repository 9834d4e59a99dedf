"""List Runloop devboxes with the official SDK (`runloop_api_client` 3.0.0), every page.

Run by tests/sdk/test_sdk_more.py with the SDK environment's interpreter:
``python drive_runloop.py BASE_URL PAGE_SIZE STATUSES`` (the key in ``SDK_CONTRACT_KEY``;
``STATUSES`` a comma list, one listing each as the filter takes one value, or ``-`` for one
unfiltered listing). Prints JSON: ``{"sessions": [...], "pages": n}``.

``devboxes.list(limit=..., status=...)`` sends ``GET /v1/devboxes`` with ``Authorization:
Bearer``; its pager repeats the parameters with ``starting_after`` = the last devbox's id
until ``has_more`` is false (or a page is empty). ``iter_pages`` walks it page by page, so
``pages`` counts the requests. ``max_retries=0`` makes each page one request. The SDK has no
telemetry.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from runloop_api_client import Runloop  # type: ignore[import-not-found, unused-ignore]


def main(base_url: str, page_size: int, statuses: list[str | None]) -> None:
    """Print every devbox of every page of every listing."""
    client = Runloop(
        bearer_token=os.environ["SDK_CONTRACT_KEY"], base_url=base_url, max_retries=0, timeout=10
    )
    rows: list[dict[str, Any]] = []
    pages = 0
    for status in statuses:
        first = (
            client.devboxes.list(limit=page_size, status=status)
            if status
            else client.devboxes.list(limit=page_size)
        )
        for page in first.iter_pages():
            pages += 1
            for devbox in page.devboxes:
                launch = devbox.launch_parameters
                lifecycle = launch.lifecycle
                rows.append(
                    {
                        "id": devbox.id,
                        "status": devbox.status,
                        "created_ms": devbox.create_time_ms,
                        "keep_alive_seconds": launch.keep_alive_time_seconds,
                        "idles": launch.after_idle is not None
                        or (lifecycle is not None and lifecycle.after_idle is not None),
                    }
                )
    print(json.dumps({"sessions": rows, "pages": pages}))


if __name__ == "__main__":
    main(
        sys.argv[1],
        int(sys.argv[2]),
        [None] if sys.argv[3] == "-" else list(sys.argv[3].split(",")),
    )
