"""How one target's requests travel: through which proxy, with which TLS, with which extra
headers. Built once per config load (see ``TargetBase.transport``), used by every request."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from exporter.upstream.proxies import Proxy
from exporter.upstream.tls import ClientTLS


@dataclass(frozen=True, slots=True, kw_only=True)
class Transport:
    """A target's network settings; the default goes direct, with the system's CAs."""

    proxy: Proxy | None = None
    tls: ClientTLS | None = None
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    """Extra request headers from the target's ``headers:`` (never ``Authorization``); not in
    the repr, as a value may be a credential."""

    def request_options(self) -> Mapping[str, Any]:
        """The keyword arguments of ``ClientSession.get`` that apply these settings."""
        options: dict[str, Any] = {}
        if self.proxy is not None:
            options["proxy"] = self.proxy.url
        if self.tls is not None:
            options["ssl"] = self.tls.context
            if self.tls.server_name:
                options["server_hostname"] = self.tls.server_name
        return options


DIRECT = Transport()
"""No proxy, default TLS, no extra headers."""
