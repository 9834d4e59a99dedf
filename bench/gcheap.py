"""``python -m bench.gcheap CONFIG_JSON``: what a full collection of serve's heap costs.

Builds the app as ``serve`` does (``create_app`` on the config, its pollers not started) in a
fresh process, then times full collections (``gc.collect()``, best of 5) and counts the
objects the GC tracks, before and after :func:`exporter.polling.runtime.settle_heap`. Prints JSON.
"""

from __future__ import annotations

import gc
import json
import sys
import time

from exporter.config.settings import Settings
from exporter.polling.runtime import settle_heap
from exporter.web.app import create_app


def _full_collection_ms() -> float:
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        gc.collect()
        best = min(best, time.perf_counter() - started)
    return best * 1e3


def main(config: str) -> int:
    """Print ``{"tracked", "full_ms", "frozen_tracked", "frozen_full_ms", "frozen"}``."""
    app = create_app(Settings.model_validate(json.loads(config)), poll=False)
    before = {"tracked": len(gc.get_objects()), "full_ms": _full_collection_ms()}
    settle_heap()
    after = {"frozen_tracked": len(gc.get_objects()), "frozen_full_ms": _full_collection_ms()}
    print(json.dumps(before | after | {"frozen": gc.get_freeze_count()}))
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
