"""``session-exporter healthcheck``: ask a running server's ``/healthz``, for container checks.

It reads the same config and web config as ``serve`` (the flags or the environment), so it
asks the port the server listens on, over TLS when the web config turns TLS on. ``/healthz``
is never behind basic auth, so no password is needed. Exit 0 when it answers 200, else 1 (a
container engine reads every other code as unhealthy too, and 2 is reserved by Docker).
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import ssl
import sys

from exporter.cli.exits import EXIT_FAILED, EXIT_OK
from exporter.config.settings import (
    ConfigError,
    config_path,
    parse_listen,
    parse_yaml,
    read_text,
)
from exporter.core.names import CONFIG_ENV, DEFAULT_PORT, ENV_PREFIX
from exporter.web.webconfig import load_web_config, web_config_path

LISTEN_ENV = ENV_PREFIX + "LISTEN"
USER_AGENT = "session-exporter-healthcheck"
_ALL = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}  # noqa: S104 - mapped to loopback


def check_health(args: argparse.Namespace) -> int:
    """Run the check; print one line saying what was asked and what came back."""
    try:
        host, port = parse_listen(args.listen or listen_setting(args.config))
        path = web_config_path(args.web_config_file)
        web_config = load_web_config(path) if path else None
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"unhealthy: {problem}", file=sys.stderr)
        return EXIT_FAILED
    except ValueError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return EXIT_FAILED
    host = _ALL.get(host, host)
    tls = web_config is not None and web_config.ssl_context is not None
    shown = f"[{host}]" if ":" in host else host
    url = f"{'https' if tls else 'http'}://{shown}:{port}/healthz"
    required = web_config is not None and web_config.file.tls_server_config.client_auth in (
        "RequireAnyClientCert",
        "RequireAndVerifyClientCert",
    )
    if tls and required:  # no client certificate to present: a finished handshake is the answer
        healthy, outcome = _handshake(host, port, timeout=args.timeout)
    else:
        healthy, outcome = _ask(host, port, tls=tls, timeout=args.timeout)
    print(
        f"{'healthy' if healthy else 'unhealthy'}: {url} {outcome}",
        file=sys.stdout if healthy else sys.stderr,
    )
    return EXIT_OK if healthy else EXIT_FAILED


def _ask(host: str, port: int, *, tls: bool, timeout: float) -> tuple[bool, str]:
    """Whether ``GET /healthz`` answered 200, and what happened in words."""
    try:
        status = _get(host, port, tls=tls, timeout=timeout)
    except ssl.SSLError as exc:
        return False, f"failed: TLS error {exc.reason or exc}"
    except (OSError, http.client.HTTPException) as exc:
        reason = os.strerror(exc.errno) if isinstance(exc, OSError) and exc.errno else str(exc)
        return False, f"failed: {reason or type(exc).__name__}"
    if status != 200:
        return False, f"answered HTTP {status}"
    return True, "answered 200"


def listen_setting(explicit_config: str | None) -> str:
    """The ``listen`` the server uses: ``$SESSION_EXPORTER_LISTEN``, the config's, or the default.

    Only ``listen`` is read (not the targets), so a key that cannot be read now does not turn
    a running server unhealthy. Without any config file the default port is asked.
    """
    if os.environ.get(LISTEN_ENV):
        return os.environ[LISTEN_ENV]
    default = f"0.0.0.0:{DEFAULT_PORT}"
    if not (explicit_config or os.environ.get(CONFIG_ENV)):
        return default
    path = config_path(explicit_config)
    data, _ = parse_yaml(read_text(path), str(path))
    listen = data.get("listen", default) if isinstance(data, dict) else default
    return str(listen)


def _handshake(host: str, port: int, *, timeout: float) -> tuple[bool, str]:
    """Whether the server completes a TLS handshake (it requires a client certificate).

    In TLS 1.3 the server finishes its side of the handshake before it checks the client's
    certificate, so a completed handshake shows the process is up and serving.
    """
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            _client_context().wrap_socket(raw, server_hostname=host),
        ):
            pass
    except ssl.SSLError as exc:
        return False, f"failed: TLS error {exc.reason or exc}"
    except OSError as exc:
        return False, f"failed: {os.strerror(exc.errno) if exc.errno else exc}"
    return True, "completed a TLS handshake (it requires client certificates, so no request)"


def _client_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # liveness of our own listener, not a trust decision
    return context


def _get(host: str, port: int, *, tls: bool, timeout: float) -> int:
    """The status of ``GET /healthz``; TLS without verification: it is this server's own port."""
    connection: http.client.HTTPConnection
    if tls:
        context = _client_context()
        connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request(
            "GET", "/healthz", headers={"User-Agent": "session-exporter-healthcheck"}
        )
        return connection.getresponse().status
    finally:
        connection.close()
