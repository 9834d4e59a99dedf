"""List AGI sessions with the official SDK (`agi-python` 0.5.1).

Run by tests/sdk/test_sdk_contract.py with the SDK environment's interpreter:
``python drive_agi.py BASE_URL`` (the key in ``SDK_CONTRACT_KEY``). Prints JSON:
``{"sessions": [...]}``, each with the fields the exporter reads. The list has no paging:
one ``GET /v1/sessions`` returns the whole bare array.
"""

from __future__ import annotations

import json
import os
import sys

from agi import AGIClient  # type: ignore[import-not-found, unused-ignore]


def main(base_url: str) -> None:
    """Print every session the SDK lists."""
    # max_retries counts attempts: 1 is a single request (0 would send none at all)
    with AGIClient(
        api_key=os.environ["SDK_CONTRACT_KEY"], base_url=base_url, timeout=10, max_retries=1
    ) as client:
        sessions = client.sessions.list()
    rows = [
        {
            "id": session.session_id,
            "status": session.status,
            "created": session.created_at.timestamp(),
            "kind": session.agent_name,
            "agent_session_type": session.agent_session_type,
        }
        for session in sessions
    ]
    print(json.dumps({"sessions": rows}))


if __name__ == "__main__":
    main(sys.argv[1])
