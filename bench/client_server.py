"""The usual Python exporter, as a baseline: prometheus_client's ``start_http_server`` with
the session collector rendering on every scrape, in a process of its own.

Its own process, because its scrapes render while holding the GIL in server threads that
keep answering queued requests after a load run ends; sharing the benchmark's process,
they would stall whatever is measured next.

``python -m bench.client_server CONFIG_JSON`` polls the targets once, then serves and prints
``PORT <port>``, until its stdin closes.
"""

from __future__ import annotations

import asyncio
import json
import sys

import structlog
from prometheus_client import CollectorRegistry, start_http_server

from bench.measure import fill
from exporter.config.settings import Settings
from exporter.exposition.collector import SessionCollector
from exporter.polling.runtime import new_store


def main(config: Settings) -> None:
    """Poll, serve, and wait for the benchmark to close stdin."""
    store = new_store(config)
    asyncio.run(fill(store, config))
    registry = CollectorRegistry(auto_describe=True)
    registry.register(SessionCollector(store))
    httpd, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    print(f"PORT {httpd.server_address[1]}", flush=True)
    sys.stdin.read()
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    main(Settings(**json.loads(sys.argv[1])))
