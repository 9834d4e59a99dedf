"""The one HTTP client every target's polls share."""

from __future__ import annotations

import aiohttp

from exporter import __version__

USER_AGENT = f"session-exporter/{__version__}"


def new_client_session() -> aiohttp.ClientSession:
    """The one HTTP client shared by every target (timeouts are set per request)."""
    return aiohttp.ClientSession(
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        # no connection cap: each target walks its pages itself (a bounded few at a time),
        # and a shared cap would let hanging targets on one host starve the others
        connector=aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=300),
        raise_for_status=False,
    )
