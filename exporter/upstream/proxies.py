"""Which forward proxy a target's requests go through: its ``proxy_url``, else the environment.

The environment is read as curl reads it: ``https_proxy``/``HTTPS_PROXY`` for an https://
target and ``http_proxy``/``HTTP_PROXY`` for an http:// one (the lower-case name wins when
both are set), unless the host is in ``no_proxy``/``NO_PROXY`` (see :func:`bypasses`). Only
http:// proxies are supported (an https:// target is tunnelled through them with CONNECT).
A proxy's password is never part of anything shown: :attr:`Proxy.shown` masks it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from yarl import URL

MASKED_PASSWORD = "xxxxx"  # noqa: S105 - the mask, not a password
"""A proxy password as every message shows it (as Go's ``url.Redacted`` and Prometheus do)."""


class ProxyError(ValueError):
    """A proxy URL the exporter cannot use (the message never holds its password)."""


@dataclass(frozen=True, slots=True)
class Proxy:
    """A forward proxy: the URL handed to the HTTP client, and how messages show it."""

    url: URL
    """The proxy's URL, credentials included (never shown: use :attr:`shown`)."""
    source: str
    """Where it was configured: ``proxy_url`` or the environment variable's name."""

    @property
    def shown(self) -> str:
        """The URL for a message: the password masked, no path."""
        return masked_url(self.url)

    @property
    def named(self) -> str:
        """``the proxy http://xxxxx@host:port (from HTTPS_PROXY)``, for messages."""
        return f"the proxy {self.shown} (from {self.source})"

    @property
    def password(self) -> str | None:
        """The password (for the log redactor), or None."""
        return self.url.password

    @property
    def credentials(self) -> tuple[str, ...]:
        """The user name and password, those that are set (for the log redactor)."""
        return tuple(part for part in (self.url.user, self.url.password) if part)

    def __repr__(self) -> str:
        return f"Proxy({self.shown!r}, source={self.source!r})"


def masked_url(url: URL) -> str:
    """``scheme://xxxxx@host:port`` (or without user info): a URL safe to print. The user
    name is masked too: proxy services put their API key there (``http://KEY:@proxy``)."""
    shown = url.with_path("").with_query(None).with_fragment(None)
    if url.user or url.password:
        shown = shown.with_user(None).with_user(MASKED_PASSWORD)
    return str(shown)


def parse_proxy(value: str, source: str) -> Proxy:
    """An ``http://[user:password@]host[:port]`` proxy URL; a bare ``host:port`` is http.

    The error never repeats the value: it may hold a password.
    """
    text = value.strip()
    if "://" not in text:
        text = "http://" + text  # as curl: a proxy without a scheme is an HTTP proxy
    try:
        url = URL(text)
    except ValueError:
        raise ProxyError(f"{source} is not a valid URL") from None
    if url.scheme != "http":
        raise ProxyError(
            f"{source} must be an http:// proxy (got {url.scheme}://); https:// targets go "
            "through it in a CONNECT tunnel, still encrypted end to end"
        )
    if not url.host:
        raise ProxyError(f"{source} has no host")
    if url.path not in ("", "/") or url.query_string or url.fragment:
        raise ProxyError(f"{source} must be only scheme, host and port (no path or query)")
    return Proxy(url.with_path(""), source)  # user info percent-decoded by yarl, as sent


def environment_proxy(target_url: str, environ: Mapping[str, str]) -> Proxy | None:
    """The proxy the environment names for ``target_url``, or None (none, or bypassed)."""
    url = URL(target_url)
    scheme = url.scheme
    if scheme not in ("http", "https"):
        return None
    names = (f"{scheme}_proxy", f"{scheme.upper()}_PROXY")
    name = next((n for n in names if environ.get(n, "").strip()), None)
    if name is None:
        return None
    no_proxy_name = next((n for n in ("no_proxy", "NO_PROXY") if n in environ), None)
    if no_proxy_name is not None and bypasses(environ[no_proxy_name], url.host or ""):
        return None
    return parse_proxy(environ[name], name)


def bypasses(no_proxy: str, host: str) -> bool:
    """Whether a ``NO_PROXY`` value exempts ``host``, as curl 7.86+ reads it.

    Entries are separated by commas or spaces, compared without case:

    - ``*`` alone: every host;
    - a name (``example.com`` or ``.example.com``, the leading dot ignored): that name and
      every name under it (``api.example.com``), not ``badexample.com``;
    - an IP address (``10.1.2.3``, ``::1``, brackets allowed): that address;
    - a CIDR range (``10.0.0.0/8``, ``fd00::/8``): every address in it.

    Names and addresses are compared as written: ``localhost`` does not cover ``127.0.0.1``,
    and no name is resolved. ``*.example.com`` and entries with a port match nothing (curl
    does the same).
    """
    entries = [e for e in no_proxy.replace(",", " ").split() if e]
    if entries == ["*"]:
        return True
    name = host.strip("[]").rstrip(".").lower()
    address = _address(name)
    for entry in entries:
        item = entry.lower()
        if "/" in item:
            if address is not None and _in_network(address, item):
                return True
            continue
        item = item.strip("[]")
        entry_address = _address(item)
        if entry_address is not None:
            if address == entry_address:
                return True
            continue
        item = item.lstrip(".").rstrip(".")
        if item and address is None and (name == item or name.endswith("." + item)):
            return True
    return False


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _in_network(address: ipaddress.IPv4Address | ipaddress.IPv6Address, cidr: str) -> bool:
    try:
        network = ipaddress.ip_network(cidr.strip("[]"), strict=False)
    except ValueError:
        return False
    return address.version == network.version and address in network
