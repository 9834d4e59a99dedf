"""List Chaser sessions with the official SDK (`chaser-sdk` 0.2.1), every page.

Run by tests/sdk/test_sdk_contract.py with the SDK environment's interpreter:
``python drive_chaser.py BASE_URL PAGE_SIZE [ACCOUNT]`` (the key in ``SDK_CONTRACT_KEY``).
Prints JSON: ``{"sessions": [...], "pages": n}``.

The SDK's ``sessions.list()`` makes one request without paging parameters, so the driver
walks ``limit``/``offset`` through the client's own request method and normalizes each
answer as ``list_page`` does (a bare array is the whole list), stopping at an empty page or
at ``total``: the walk the SDK note found to work.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from chaser_sdk import ChaserClient  # type: ignore[import-not-found, unused-ignore]
from chaser_sdk.client import (  # type: ignore[import-not-found, unused-ignore]
    _normalize_list_sessions_response,
)


def main(base_url: str, page_size: int, account: str | None) -> None:
    """Print every session of every page."""
    client = ChaserClient(
        base_url=base_url, api_key=os.environ["SDK_CONTRACT_KEY"], account=account, timeout=10.0
    )
    rows: list[dict[str, Any]] = []
    offset = pages = 0
    while True:
        query = {"limit": page_size, "offset": offset}
        page = _normalize_list_sessions_response(
            client._request_json("GET", "/v1/sessions", query=query)
        )
        pages += 1
        rows += [
            {
                "id": session["id"],
                "status": session["status"],
                "created": session["created_at"],  # the SDK keeps it a string
                "leases": session.get("active_connection_leases"),
                "kind": session["session_type"],
            }
            for session in page["sessions"]
        ]
        offset += len(page["sessions"])
        if not page["sessions"] or offset >= page["total"]:
            break
    print(json.dumps({"sessions": rows, "pages": pages}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)
