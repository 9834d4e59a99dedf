"""List Together Code Interpreter sessions with the official SDK (`together` 2.42.0).

Run by tests/sdk/test_sdk_contract.py with the SDK environment's interpreter:
``python drive_together.py BASE_URL`` (the key in ``SDK_CONTRACT_KEY``). Prints JSON:
``{"sessions": [...]}``, each with the fields the exporter reads. The list has no paging:
one call returns it.
"""

from __future__ import annotations

import json
import os
import sys

import httpx  # type: ignore[import-not-found, unused-ignore]
from together import Together  # type: ignore[import-not-found, unused-ignore]


def main(base_url: str) -> None:
    """Print every session the SDK lists."""
    with Together(
        api_key=os.environ["SDK_CONTRACT_KEY"],
        base_url=f"{base_url}/v1",
        max_retries=0,
        timeout=httpx.Timeout(10.0, connect=5.0),
    ) as client:
        answer = client.code_interpreter.sessions.list()
    sessions = answer.data.sessions if answer.data is not None else []
    rows = [
        {
            "id": session.id,
            "status": "active",  # the type has no status: every listed session is live
            "created": session.started_at.timestamp(),
            "deadline": session.expires_at.timestamp(),
            "last_activity": session.last_execute_at.timestamp(),
            "executions": session.execute_count,
        }
        for session in sessions
    ]
    print(json.dumps({"sessions": rows, "errors": answer.errors or []}))


if __name__ == "__main__":
    main(sys.argv[1])
