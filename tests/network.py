"""The operator's network, for the upstream tests: a private CA with HTTPS origins, and a real
forward proxy (Debian's tinyproxy) started per test on a free loopback port.

Certificates are made in the test with ``cryptography``. TLS checks validity against the real
clock (no fixed clock reaches OpenSSL), so a valid certificate spans a day either side of
now and an expired one ended a day ago.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import signal
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.harness import free_port
from tests.origin import Origin, Seen, json_response
from tests.tools import require

SERVER_NAME = "sessions.internal.test"
"""The only name the HTTPS origins' certificates hold (no IP address): reached as 127.0.0.1,
they verify only with ``tls.server_name``."""

DAY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class Issued:
    """A certificate and its key as PEM files."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class CA:
    """A private CA: its certificate file, and its key for issuing."""

    cert_file: Path
    name: x509.Name
    key: ec.EllipticCurvePrivateKey
    dir: Path

    def issue(
        self,
        stem: str,
        *,
        dns: str = SERVER_NAME,
        expired: bool = False,
        client: bool = False,
    ) -> Issued:
        """A leaf certificate for ``dns``, valid now (or ended a day ago) and signed here."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        start, end = (now - 3 * DAY, now - DAY) if expired else (now - DAY, now + DAY)
        usage = x509.oid.ExtendedKeyUsageOID
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(dns))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
            .add_extension(
                x509.ExtendedKeyUsage([usage.CLIENT_AUTH if client else usage.SERVER_AUTH]),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        return Issued(
            _write_cert(self.dir / f"{stem}.crt", cert), _write_key(self.dir / f"{stem}.key", key)
        )


def make_ca(directory: Path, name: str = "Test Upstream CA") -> CA:
    """A self-signed CA written to ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - DAY)
        .not_valid_after(now + 30 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    stem = name.lower().replace(" ", "-")
    return CA(_write_cert(directory / f"{stem}.crt", cert), _name(name), key, directory)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_cert(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def server_context(
    issued: Issued, *, client_ca: Path | None = None, tls12: bool = False
) -> ssl.SSLContext:
    """A server context presenting ``issued``; requiring a client certificate from
    ``client_ca`` when given; at most TLS 1.2 with ``tls12`` (which refuses a missing client
    certificate in the handshake, where TLS 1.3 closes the connection after it)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if tls12:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(issued.cert, issued.key)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(client_ca)
    return context


def empty_agi(_request: web.Request) -> web.Response:
    """An AGI answer with no sessions (a poll that succeeds)."""
    return json_response([])


@asynccontextmanager
async def origin(
    *,
    context: ssl.SSLContext | None = None,
    handler: Callable[[web.Request], web.StreamResponse] = empty_agi,
) -> AsyncIterator[Origin]:
    """An origin on a free loopback port, HTTPS with ``context``; it logs every request."""
    served = Origin(url="")

    async def handle(request: web.Request) -> web.StreamResponse:
        served.seen.append(
            Seen(request.method, request.path, request.query_string, request.headers.copy())
        )
        return handler(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        scheme = "https" if context else "http"
        served.url = f"{scheme}://127.0.0.1:{runner.addresses[0][1]}"
        yield served
    finally:
        await runner.cleanup()


@dataclass(frozen=True)
class TinyProxy:
    """A running tinyproxy: its URL (no credentials) and its log file."""

    url: str
    port: int
    log: Path

    def log_text(self) -> str:
        """What it has logged so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@asynccontextmanager
async def tinyproxy(
    directory: Path, *, credentials: tuple[str, str] | None = None, deny_all: bool = False
) -> AsyncIterator[TinyProxy]:
    """Debian's tinyproxy in the foreground on a free loopback port (skips when missing).

    CONNECT is allowed to any port (no ``ConnectPort`` line); ``credentials`` turn on basic
    auth (407 without them); ``deny_all`` filters every host (403 ``Filtered``).
    """
    process, port, log = _launch(require("tinyproxy"), directory, credentials, deny_all)
    try:
        await _wait_listening(port, process)
        yield TinyProxy(url=f"http://127.0.0.1:{port}", port=port, log=log)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        await asyncio.to_thread(process.wait, 10)


def _launch(
    binary: str, directory: Path, credentials: tuple[str, str] | None, deny_all: bool
) -> tuple[subprocess.Popen[bytes], int, Path]:
    """Write the config and start tinyproxy in the foreground (``-d``)."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = directory / "tinyproxy.log"
    lines = [
        f"Port {port}",
        "Listen 127.0.0.1",
        "Timeout 30",
        f'LogFile "{log}"',
        "LogLevel Info",
        "MaxClients 20",
        "Allow 127.0.0.1",
    ]
    if credentials is not None:
        lines.append(f"BasicAuth {credentials[0]} {credentials[1]}")
    if deny_all:
        (directory / "filter").write_text("")
        lines += [f'Filter "{directory / "filter"}"', "FilterType fnmatch", "FilterDefaultDeny Yes"]
    conf = directory / "tinyproxy.conf"
    conf.write_text("\n".join(lines) + "\n")
    process = subprocess.Popen(
        [binary, "-d", "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return process, port, log


async def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    """Until the port accepts a connection (bounded), or the proxy has exited."""
    async with asyncio.timeout(10):
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"tinyproxy exited with {process.returncode} before listening")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            except OSError:
                await asyncio.sleep(0.02)
