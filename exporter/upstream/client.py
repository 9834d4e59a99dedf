"""The one HTTP client every target's polls share."""

from __future__ import annotations

import resource

import aiohttp

from exporter import __version__

USER_AGENT = f"session-exporter/{__version__}"
MAX_UPSTREAM_CONNECTIONS = 256
"""The most upstream connections open at once, whatever the descriptor limit allows."""


def connection_limit() -> int:
    """Upstream connections open at once at most: a quarter of the descriptor limit (the rest
    is for scrapes, key and config files and the logs), between 8 and 256.

    Without a bound, 1,000 targets polled at once with 512 descriptors failed 495 first
    polls with "too many open files"; with it, a poll past the bound waits for a
    connection (within its own timeout) instead.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_UPSTREAM_CONNECTIONS
    return max(8, min(MAX_UPSTREAM_CONNECTIONS, soft // 4))


def new_client_session() -> aiohttp.ClientSession:
    """The one HTTP client shared by every target (timeouts are set per request)."""
    return aiohttp.ClientSession(
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        # a bound on all connections, none per host: targets on one host share the bound
        # with the others, and hanging ones hold one connection each until their timeout
        connector=aiohttp.TCPConnector(
            limit=connection_limit(), limit_per_host=0, ttl_dns_cache=300
        ),
        raise_for_status=False,
    )
