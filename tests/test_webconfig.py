"""The web config file (``--web.config.file``): loading, TLS, mutual TLS, basic auth, headers.

Certificates are made per test session with ``cryptography`` (a CA, a server certificate for
127.0.0.1, client certificates from that CA and from a stranger CA); every HTTP check goes over
a real loopback socket through the real app, with a Chaser simulator behind it.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import os
import signal
import socket
import ssl
import textwrap
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import bcrypt
import pytest
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from structlog.testing import capture_logs

from exporter.cli.main import main
from exporter.config.settings import ConfigError
from exporter.simulators import ChaserSimulator, chaser_row
from exporter.web import webconfig
from exporter.web.app import EXPOSITION, create_app
from exporter.web.webconfig import (
    REALM,
    WEB_CONFIG_ENV,
    AuthBusy,
    BasicAuth,
    WebConfig,
    basic_auth_middleware,
    load_web_config,
    web_config_path,
)
from tests.conftest import Serve
from tests.harness import KEY, Exposition, alias_bomb, console_script, free_port, settings_for
from tests.test_cli import STOP_LIMIT, Server, child_env, stop, wait_ready
from tests.test_config import PYDANTIC_PHRASES

ALICE_PASSWORD = "correct horse battery staple"
BOB_PASSWORD = "s3cret-bob"


def bcrypt_hash(password: str, *, prefix: str = "$2y$", cost: int = 4) -> str:
    """A bcrypt hash of ``password`` in htpasswd's ``$2y$`` form (cost 4: fast tests)."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(cost)).decode()
    return prefix + hashed[4:]


ALICE_HASH = bcrypt_hash(ALICE_PASSWORD)
BOB_HASH = bcrypt_hash(BOB_PASSWORD, prefix="$2b$")


# --- a small PKI ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """PEM files: a CA, a server certificate it signed, and three client certificates."""

    dir: Path
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path  # signed by the CA, SAN DNS scraper.example
    client_key: Path
    other_client_cert: Path  # signed by the CA, SAN DNS intruder.example
    other_client_key: Path
    stranger_cert: Path  # signed by another CA
    stranger_key: Path

    def client_context(self, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
        """A client trusting the test CA, presenting ``cert`` when given."""
        context = ssl.create_default_context(cafile=str(self.ca))
        if cert and key:
            context.load_cert_chain(str(cert), str(key))
        return context


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    sans: list[x509.GeneralName] | None = None,
    usage: x509.ObjectIdentifier | None = None,
) -> x509.Certificate:
    """A certificate for ``key``; self-signed CA when ``issuer`` is None."""
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, issuer_key = issuer or (_name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if issuer is None:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=None), critical=True
        ).add_extension(
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
    else:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=False, path_length=None), critical=True
        )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(
    directory: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> tuple[Path, Path]:
    cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """One PKI for the whole run (key generation is the slow part)."""
    directory = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _issue("session-exporter test CA", ca_key, None)
    ca_path, _ = _write(directory, "ca", ca_cert, ca_key)
    ca = (ca_cert.subject, ca_key)

    def leaf(
        stem: str,
        sans: list[x509.GeneralName],
        usage: x509.ObjectIdentifier,
        issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] = ca,
    ) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        return _write(directory, stem, _issue(stem, key, issuer, sans=sans, usage=usage), key)

    server = leaf(
        "server",
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
        ExtendedKeyUsageOID.SERVER_AUTH,
    )
    client = leaf("client", [x509.DNSName("scraper.example")], ExtendedKeyUsageOID.CLIENT_AUTH)
    other = leaf("other", [x509.DNSName("intruder.example")], ExtendedKeyUsageOID.CLIENT_AUTH)
    stranger_ca_key = ec.generate_private_key(ec.SECP256R1())
    stranger_ca = _issue("stranger CA", stranger_ca_key, None)
    stranger = leaf(
        "stranger",
        [x509.DNSName("scraper.example")],
        ExtendedKeyUsageOID.CLIENT_AUTH,
        issuer=(stranger_ca.subject, stranger_ca_key),
    )
    return Pki(directory, ca_path, *server, *client, *other, *stranger)


# --- helpers ----------------------------------------------------------------------------------


def write_web_config(directory: Path, text: str, name: str = "web.yml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    """Every problem ``load_web_config`` reports for ``path``, as printed."""
    with pytest.raises(ConfigError) as caught:
        load_web_config(path)
    return [str(p) for p in caught.value.problems]


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@dataclass(frozen=True)
class Running:
    """The app served over a real socket with a web config."""

    app: web.Application
    base: str


@asynccontextmanager
async def serving(
    served: Serve, web_config: WebConfig, middlewares: Sequence[Middleware] | None = None
) -> AsyncIterator[Running]:
    """The exporter app over one Chaser simulator, served as run_server serves it (with the
    web config's middlewares, or ``middlewares``)."""
    chaser = ChaserSimulator(sessions=[chaser_row("c1", "running", 1_700_000_000.0)], api_key=KEY)
    settings = settings_for(
        {"name": "ch", "provider": "chaser", "base_url": await served(chaser)},
        poll_interval="1h",
    )
    app = create_app(
        settings, middlewares=web_config.middlewares() if middlewares is None else middlewares
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.create_server(("127.0.0.1", 0))
    try:
        await web.SockSite(runner, sock, ssl_context=web_config.ssl_context).start()
        yield Running(app, f"{web_config.scheme}://127.0.0.1:{sock.getsockname()[1]}")
    finally:
        await runner.cleanup()


async def until_ready(
    http: aiohttp.ClientSession, url: str, headers: Mapping[str, str] | None = None
) -> None:
    """Wait (bounded) for ``url``/readyz to answer 200."""
    async with asyncio.timeout(5):
        while True:
            async with http.get(f"{url}/readyz", headers=headers) as response:
                if response.status == 200:
                    return
            await asyncio.sleep(0.02)


def tls_config(pki: Pki, *lines: str) -> str:
    """A tls_server_config with the test server certificate, plus ``lines`` in the section."""
    body = [f"cert_file: {pki.server_cert}", f"key_file: {pki.server_key}", *lines]
    return "tls_server_config:\n" + "".join(f"  {line}\n" for line in body)


# --- loading ----------------------------------------------------------------------------------


def test_realistic_exporter_toolkit_file_loads(tmp_path: Path, pki: Pki) -> None:
    """A node_exporter-style web config with every toolkit key loads, TLS on, users in."""
    for name in ("server.crt", "server.key", "ca.crt"):
        (tmp_path / name).write_bytes((pki.dir / name).read_bytes())
    path = write_web_config(
        tmp_path,
        f"""
        # TLS and basic authentication configuration example.
        tls_server_config:
          cert_file: server.crt
          key_file: server.key
          client_auth_type: VerifyClientCertIfGiven
          client_ca_file: ca.crt
          min_version: TLS12
          max_version: TLS13
          cipher_suites:
            - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
            - TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
            - TLS_AES_128_GCM_SHA256
          prefer_server_cipher_suites: true
          curve_preferences: [CurveP256]

        http_server_config:
          http2: false
          headers:
            X-Frame-Options: deny
            Strict-Transport-Security: max-age=31536000; includeSubDomains
            X-Content-Type-Options: nosniff
            X-XSS-Protection: 1
            Content-Security-Policy: "default-src 'self'"

        # Usernames and passwords required to connect.
        basic_auth_users:
          alice: {ALICE_HASH}
          bob: {BOB_HASH}

        rate_limit:
          interval: 100ms
          burst: 50
        """,
    )

    config = load_web_config(path)

    assert config.ssl_context is not None
    assert ssl.CERT_OPTIONAL == config.ssl_context.verify_mode
    assert ssl.TLSVersion.TLSv1_2 == config.ssl_context.minimum_version
    assert {"alice", "bob"} == set(config.file.basic_auth_users)
    assert "1" == config.file.http_server_config.headers["X-XSS-Protection"]
    assert 0.1 == pytest.approx(config.file.rate_limit.interval)
    assert () == config.warnings
    assert "https" == config.scheme
    assert 3 == len(config.middlewares())  # headers, rate limit, auth (no SAN list)
    assert ALICE_HASH not in repr(config)


def test_relative_paths_are_relative_to_the_web_config_directory(
    tmp_path: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cert_file/key_file/client_ca_file resolve against the file's directory, not the cwd."""
    certs = tmp_path / "etc" / "certs"
    certs.mkdir(parents=True)
    for name in ("server.crt", "server.key", "ca.crt"):
        (certs / name).write_bytes((pki.dir / name).read_bytes())
    path = write_web_config(
        tmp_path / "etc",
        """
        tls_server_config:
          cert_file: certs/server.crt
          key_file: certs/server.key
          client_ca_file: certs/ca.crt
          client_auth_type: RequireAndVerifyClientCert
        """,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    config = load_web_config(Path("..") / "etc" / "web.yml")

    assert config.ssl_context is not None
    assert ssl.CERT_REQUIRED == config.ssl_context.verify_mode
    assert path.exists()


def test_inline_cert_key_and_client_ca(tmp_path: Path, pki: Pki) -> None:
    """The toolkit's inline cert, key and client_ca (PEM text in the file) work too."""

    def block(path: Path) -> str:
        return textwrap.indent(path.read_text(), "    ")

    path = tmp_path / "web.yml"
    path.write_text(
        "tls_server_config:\n"
        f"  cert: |\n{block(pki.server_cert)}"
        f"  key: |\n{block(pki.server_key)}"
        f"  client_ca: |\n{block(pki.ca)}"
        "  client_auth_type: RequireAndVerifyClientCert\n",
        encoding="utf-8",
    )

    config = load_web_config(path)

    assert config.ssl_context is not None
    assert ssl.CERT_REQUIRED == config.ssl_context.verify_mode


@pytest.mark.parametrize(
    "text",
    ["", "# nothing yet\n", "basic_auth_users:\nhttp_server_config:\ntls_server_config:\n"],
)
def test_empty_file_or_sections_mean_plain_http_without_auth(tmp_path: Path, text: str) -> None:
    """An empty file, or sections left empty, are the defaults: no TLS, no auth, no headers."""
    path = tmp_path / "web.yml"
    path.write_text(text, encoding="utf-8")

    config = load_web_config(path)

    assert config.ssl_context is None
    assert () == config.middlewares()
    assert "web config ok: TLS off, no basic auth" == config.summary()


def test_every_problem_is_located(tmp_path: Path) -> None:
    """Each wrong key or value is reported with file:line:column, all at once."""
    path = write_web_config(
        tmp_path,
        """
        tls_server_config:
          cert_file: server.crt
          key_file: server.key
          client_auth_type: RequireClientCertPlease
          min_version: TLS14
          cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]
          curve_preferences: [CurveP999]
          ocsp: true
        http_server_config:
          http3: true
        basic_auth_users:
          alice: not-a-hash
        rate_limit:
          interval: 10 parsecs
        web_listen_address: ":9100"
        """,
    )
    w = str(path)

    assert [
        f"{w}:4:21: tls_server_config.client_auth_type: must be one of NoClientCert, "
        "RequestClientCert, RequireAnyClientCert, RequireClientCert, VerifyClientCertIfGiven, "
        "RequireAndVerifyClientCert (or empty), not 'RequireClientCertPlease'",
        f"{w}:5:16: tls_server_config.min_version: must be one of TLS10, TLS11, TLS12, TLS13, "
        "not 'TLS14'",
        f"{w}:6:19: tls_server_config.cipher_suites[0]: unknown cipher "
        "'TLS_RSA_WITH_RC4_128_SHA': use a name of Go's tls.CipherSuites(), like "
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        f"{w}:7:23: tls_server_config.curve_preferences[0]: unknown curve 'CurveP999': use one "
        "of CurveP256, CurveP384, CurveP521, X25519",
        f"{w}:8:3: tls_server_config.ocsp: unknown key",
        f"{w}:10:3: http_server_config.http3: unknown key (did you mean http2?)",
        f"{w}:12:10: basic_auth_users.alice: not a bcrypt hash: expected $2y$, $2b$ or $2a$, a "
        "cost of 04 to 31 and 53 characters of salt and hash (htpasswd -nBC 10 '' | tr -d "
        "':\\n' makes one)",
        f"{w}:14:13: rate_limit.interval: invalid duration '10 parsecs': use Go units like 1s, "
        "250ms or 1m30s",
        f"{w}:15:1: web_listen_address: unknown key (the web config has tls_server_config, "
        "http_server_config, basic_auth_users and rate_limit)",
    ] == problems_of(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"""
            tls_server_config:
              cert: {{file: server.crt}}
              key: [not-shown]
              prefer_server_cipher_suites: maybe
              cipher_suites: TLS_AES_128_GCM_SHA256
              client_allowed_sans: scraper.example
              max_version: 13
            http_server_config:
              http2: 3
              headers:
                X-Frame-Options: [deny]
            rate_limit:
              interval: true
              burst: -1
            basic_auth_users:
              alice: {{hash: x}}
              ~: {ALICE_HASH}
            """,
            [
                "2:9: tls_server_config.cert: must be text, not a mapping",
                "3:8: tls_server_config.key: must be text, not a list",
                "4:32: tls_server_config.prefer_server_cipher_suites: must be true or false, "
                "not 'maybe'",
                "5:18: tls_server_config.cipher_suites: must be a list (one `- item` per line, "
                "or [a, b])",
                "6:24: tls_server_config.client_allowed_sans: must be a list (one `- item` per "
                "line, or [a, b])",
                "7:16: tls_server_config.max_version: must be one of TLS10, TLS11, TLS12, TLS13, "
                "not 13",
                "9:10: http_server_config.http2: must be true or false, not a number",
                "11:22: http_server_config.headers.X-Frame-Options: must be text, not a list",
                "13:13: rate_limit.interval: must be a duration such as 1s or 100ms",
                "14:10: rate_limit.burst: must be at least 0",
                "16:10: basic_auth_users.alice: must be text, not a mapping",
                "16:3: basic_auth_users: every key must be text, not empty",
            ],
        ),
        (
            """
            tls_server_config: yes
            http_server_config:
              headers: nosniff
            rate_limit: [1s]
            basic_auth_users: [alice]
            """,
            [
                "1:20: tls_server_config: must be a mapping of keys to values",
                "3:12: http_server_config.headers: must be a mapping of keys to values",
                "4:13: rate_limit: must be a mapping of keys to values",
                "5:19: basic_auth_users: must be a mapping of keys to values",
            ],
        ),
        (
            """
            tls_config: {}
            rate_limit:
              burst: lots
              intervall: 1s
            """,
            [
                "1:1: tls_config: unknown key (did you mean tls_server_config?)",
                "3:10: rate_limit.burst: must be a whole number, not 'lots'",
                "4:3: rate_limit.intervall: unknown key (did you mean interval?)",
            ],
        ),
        (
            "rate_limit:\n  burst: 2.5\n",
            ["2:10: rate_limit.burst: must be a whole number, not 2.5"],
        ),
    ],
    ids=["values", "sections", "typos", "fraction"],
)
def test_every_error_type_reads_in_plain_words(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    """Each kind of wrong value in a web config says what is allowed, located file:line:col
    (an unknown key at the key, with the nearest valid one); no pydantic phrase remains."""
    path = write_web_config(tmp_path, text)

    found = problems_of(path)

    assert [f"{path}:{problem}" for problem in expected] == found
    for problem in found:
        assert not any(phrase in problem for phrase in PYDANTIC_PHRASES), problem
    assert not any("not-shown" in problem for problem in found)


def test_rules_beyond_the_types_are_located(tmp_path: Path, pki: Pki) -> None:
    """The toolkit's cross-key rules and header rules are problems at the offending key."""
    path = write_web_config(
        tmp_path,
        f"""
        tls_server_config:
          client_ca_file: {pki.ca}
          client_allowed_sans: [scraper.example]
          min_version: TLS13
          max_version: TLS12
        http_server_config:
          headers:
            X-Frame-Options: allow-all
            Server: session-exporter
        rate_limit:
          interval: 1s
        """,
    )
    w = str(path)

    assert [
        f"{w}:2:3: tls_server_config: missing one of cert or cert_file",
        f"{w}:2:3: tls_server_config: missing one of key or key_file",
        f"{w}:2:19: tls_server_config.client_ca_file: a client CA is configured without a "
        "client_auth_type that asks for certificates",
        f"{w}:3:24: tls_server_config.client_allowed_sans: needs client_auth_type "
        "RequireAnyClientCert or RequireAndVerifyClientCert",
        f"{w}:4:16: tls_server_config.min_version: is above max_version TLS12",
        f"{w}:8:22: http_server_config.headers.X-Frame-Options: invalid value 'allow-all': use "
        "one of deny, sameorigin",
        f"{w}:9:13: http_server_config.headers.Server: this header can not be configured: use "
        "one of Strict-Transport-Security, X-Content-Type-Options, X-Frame-Options, "
        "X-XSS-Protection, Content-Security-Policy",
        f"{w}:11:3: rate_limit.burst: must be at least 1 when interval is set (with 0 every "
        "request is refused)",
    ] == problems_of(path)


def test_yaml_errors_and_duplicate_keys_are_located(tmp_path: Path) -> None:
    """Broken YAML is one located line; a key given twice is located where it repeats."""
    broken = write_web_config(tmp_path, "basic_auth_users: [\n", name="broken.yml")
    twice = write_web_config(
        tmp_path,
        f"""
        basic_auth_users:
          alice: {ALICE_HASH}
          alice: {BOB_HASH}
        """,
        name="twice.yml",
    )

    assert [f"{broken}:2:1: invalid YAML: expected the node content, but found '<stream end>'"] == (
        problems_of(broken)
    )
    assert [
        f"{twice}:3:3: basic_auth_users.alice: key given twice (the last one would silently win)"
    ] == problems_of(twice)


def test_alias_bomb_in_the_web_config_is_refused_at_once(tmp_path: Path) -> None:
    """The web config has the same node budget: a bomb is one located problem, at once."""
    path = tmp_path / "bomb.yml"
    path.write_text("basic_auth_users: {}\n" + alias_bomb(), encoding="utf-8")

    assert [
        f"{path}:8:7: too many YAML nodes: this expands to more than 100,000 with its aliases "
        "(an alias bomb?); write the values out or use fewer aliases"
    ] == problems_of(path)


def test_unusable_tls_files_are_located(tmp_path: Path, pki: Pki) -> None:
    """A missing certificate, a key of another certificate, a CA without certificates."""
    missing = write_web_config(
        tmp_path, "tls_server_config:\n  cert_file: nope.crt\n  key_file: nope.key\n", "a.yml"
    )
    mismatch = write_web_config(
        tmp_path,
        f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: {pki.client_key}\n",
        "b.yml",
    )
    (tmp_path / "empty-ca.pem").write_text("no certificates here\n")
    empty_ca = write_web_config(
        tmp_path,
        tls_config(
            pki, "client_auth_type: RequireAndVerifyClientCert", "client_ca_file: empty-ca.pem"
        ),
        "c.yml",
    )

    assert [
        f"{missing}:2:14: tls_server_config.cert_file: cannot read {tmp_path / 'nope.crt'}: "
        "No such file or directory"
    ] == problems_of(missing)
    assert [
        f"{mismatch}:3:13: tls_server_config.key_file: the private key does not match the "
        "certificate"
    ] == problems_of(mismatch)
    assert [
        f"{empty_ca}:5:19: tls_server_config.client_ca_file: no PEM certificate found"
    ] == problems_of(empty_ca)


def test_a_bad_hash_is_never_echoed(tmp_path: Path) -> None:
    """A malformed password hash is reported without its value (it may be a password)."""
    path = write_web_config(tmp_path, "basic_auth_users:\n  alice: hunter2-plain\n")

    (problem,) = problems_of(path)

    assert problem.startswith(f"{path}:2:10: basic_auth_users.alice: not a bcrypt hash")
    assert "hunter2" not in problem


def test_require_any_client_cert_without_a_ca_is_refused(tmp_path: Path, pki: Pki) -> None:
    """Python cannot require a client certificate unverified: refused rather than weakened."""
    path = write_web_config(tmp_path, tls_config(pki, "client_auth_type: RequireAnyClientCert"))

    assert [
        f"{path}:4:21: tls_server_config.client_auth_type: RequireAnyClientCert needs "
        "client_ca_file here: Python's ssl module cannot require a client certificate without "
        "verifying it against a CA"
    ] == problems_of(path)


def test_settings_python_cannot_honour_are_warned_once(tmp_path: Path, pki: Pki) -> None:
    """http2, several curves, RequestClientCert and OpenSSL-less ciphers: one warning each, once."""
    path = write_web_config(
        tmp_path,
        tls_config(
            pki,
            "client_auth_type: RequestClientCert",
            "cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_RSA_WITH_3DES_EDE_CBC_SHA]",
            "curve_preferences: [X25519, CurveP256]",
        )
        + "http_server_config:\n  http2: true\n",
    )
    config = load_web_config(path)

    with capture_logs() as logs:
        config.log_warnings()
        config.log_warnings()

    assert [
        "http_server_config.http2",
        "tls_server_config.client_auth_type",
        "tls_server_config.cipher_suites",
        "tls_server_config.curve_preferences",
    ] == [entry["setting"] for entry in logs]
    assert {"web_config.setting_not_honoured"} == {entry["event"] for entry in logs}
    assert {"warning"} == {entry["log_level"] for entry in logs}
    assert "TLS_RSA_WITH_3DES_EDE_CBC_SHA" in logs[2]["detail"]
    assert config.ssl_context is not None
    assert ssl.CERT_NONE == config.ssl_context.verify_mode


def test_web_config_path_from_flag_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """--web.config.file wins over $SESSION_EXPORTER_WEB_CONFIG_FILE; neither means none."""
    monkeypatch.delenv(WEB_CONFIG_ENV, raising=False)
    assert web_config_path(None) is None
    monkeypatch.setenv(WEB_CONFIG_ENV, "/etc/env.yml")
    assert Path("/etc/env.yml") == web_config_path(None)
    assert Path("flag.yml") == web_config_path("flag.yml")


def test_check_config_validates_the_web_config(
    tmp_path: Path, pki: Pki, capsys: pytest.CaptureFixture[str]
) -> None:
    """check-config prints a web config summary, or its located problems with exit 2."""
    config = tmp_path / "config.yaml"
    config.write_text(
        f"targets:\n  - name: a\n    provider: chaser\n    base_url: http://127.0.0.1:1\n"
        f"    api_key: {KEY}\n",
        encoding="utf-8",
    )
    good = write_web_config(
        tmp_path, tls_config(pki) + f"basic_auth_users:\n  alice: {ALICE_HASH}\n", "good.yml"
    )
    bad = write_web_config(tmp_path, "tls_server_config:\n  cert_fil: x.crt\n", "bad.yml")

    assert 0 == main(["check-config", "--config", str(config), "--web.config.file", str(good)])
    out = capsys.readouterr().out
    assert (
        "web config ok: TLS on (client certificates: NoClientCert), basic auth for 1 user(s)\n"
        in out
    )

    assert 2 == main(["check-config", "--config", str(config), "--web.config.file", str(bad)])
    captured = capsys.readouterr()
    assert (
        f"{bad}:2:3: tls_server_config.cert_fil: unknown key (did you mean cert_file?)\n"
        == captured.err
    )
    assert "Traceback" not in captured.out + captured.err


# --- basic auth over a real socket ------------------------------------------------------------


async def test_basic_auth_guards_every_endpoint_but_healthz(tmp_path: Path, served: Serve) -> None:
    """No or wrong credentials get 401 with a Basic challenge; right ones get through.

    /metrics, /readyz and / need credentials (an unknown path too); /healthz never does.
    """
    path = write_web_config(
        tmp_path, f"basic_auth_users:\n  alice: {ALICE_HASH}\n  bob: {BOB_HASH}\n"
    )
    async with (
        serving(served, load_web_config(path)) as running,
        aiohttp.ClientSession() as http,
    ):
        alice = basic("alice", ALICE_PASSWORD)
        await until_ready(http, running.base, headers=alice)
        for route in ("/metrics", "/readyz", "/", "/nowhere"):
            for headers in (
                {},
                basic("alice", "wrong"),
                basic("bob", ALICE_PASSWORD),
                basic("mallory", ALICE_PASSWORD),
                {"Authorization": "Basic !!!not-base64"},
                {"Authorization": f"Bearer {ALICE_PASSWORD}"},
            ):
                async with http.get(running.base + route, headers=headers) as response:
                    assert 401 == response.status, (route, headers)
                    assert f'Basic realm="{REALM}"' == response.headers["WWW-Authenticate"]
                    assert "Unauthorized\n" == await response.text()
        for route, status in (("/metrics", 200), ("/readyz", 200), ("/", 200), ("/nowhere", 404)):
            async with http.get(running.base + route, headers=alice) as response:
                assert status == response.status, route
            async with http.get(
                running.base + route, headers=basic("bob", BOB_PASSWORD)
            ) as response:
                assert status == response.status, route
        async with http.get(f"{running.base}/healthz") as response:
            assert 200 == response.status
            assert "ok\n" == await response.text()


async def test_checks_are_cached_failures_too() -> None:
    """bcrypt runs once per (user, password), whether it succeeded or failed; an unknown user
    costs a check too (against the dummy hash)."""
    auth = BasicAuth({"alice": ALICE_HASH})

    assert all([await auth.check(basic("alice", ALICE_PASSWORD)["Authorization"]) for _ in "abc"])
    assert 1 == auth.bcrypt_checks
    assert not any([await auth.check(basic("alice", "nope")["Authorization"]) for _ in "ab"])
    assert 2 == auth.bcrypt_checks
    assert not await auth.check(basic("eve", ALICE_PASSWORD)["Authorization"])
    assert 3 == auth.bcrypt_checks  # an unknown user costs a bcrypt check too (no timing leak)
    assert not await auth.check(None)
    assert 3 == auth.bcrypt_checks


async def test_wrong_passwords_never_evict_a_good_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """More distinct wrong passwords than the cache holds leave a client's cached good
    credentials cached: successes and failures are kept apart."""
    monkeypatch.setattr(webconfig, "CACHE_SIZE", 4)
    auth = BasicAuth({"alice": bcrypt_hash("right", cost=4)})
    good = basic("alice", "right")["Authorization"]
    assert await auth.check(good)
    for i in range(10):
        assert not await auth.check(basic("alice", f"wrong-{i}")["Authorization"])
    checks = auth.bcrypt_checks

    assert await auth.check(good)
    assert checks == auth.bcrypt_checks  # still cached: no bcrypt run for it


async def test_identical_checks_in_flight_share_one_bcrypt_run() -> None:
    """Fifty concurrent requests with the same wrong password cost one bcrypt check."""
    auth = BasicAuth({"alice": ALICE_HASH})
    header = basic("alice", "wrong")["Authorization"]

    results = await asyncio.gather(*(auth.check(header) for _ in range(50)))

    assert [False] * 50 == results
    assert 1 == auth.bcrypt_checks


async def test_too_many_distinct_checks_waiting_are_refused_at_once() -> None:
    """Past workers + queue distinct checks in flight, the next one raises AuthBusy (503)
    instead of queueing without bound; the cache of earlier results still answers."""
    auth = BasicAuth({"alice": ALICE_HASH}, workers=1, queue=2)
    assert await auth.check(basic("alice", ALICE_PASSWORD)["Authorization"])
    checks = [
        asyncio.ensure_future(auth.check(basic("alice", f"wrong-{i}")["Authorization"]))
        for i in range(3)
    ]
    await asyncio.sleep(0)  # every check has started and is in flight

    with pytest.raises(AuthBusy):
        await auth.check(basic("alice", "one-too-many")["Authorization"])
    assert await auth.check(basic("alice", ALICE_PASSWORD)["Authorization"])  # cached
    assert [False] * 3 == await asyncio.gather(*checks)


def test_the_dummy_hash_has_the_cost_of_the_configured_ones() -> None:
    """Unknown users are checked against a hash of the highest configured cost, so they take
    as long as known ones."""
    auth = BasicAuth({"alice": ALICE_HASH, "bob": bcrypt_hash("x", cost=6)})
    assert auth._dummy.result(timeout=30).startswith(b"$2b$06$")


async def test_a_valid_client_is_answered_during_a_wrong_password_flood(
    tmp_path: Path, served: Serve
) -> None:
    """With 200 wrong-password requests queued, a client whose (valid) credentials are not
    cached yet is answered within a few bcrypt checks, far below the flood's serial cost
    (200 checks: one global lock made it wait 21.5 s). Measured against this machine's own
    bcrypt time, so load does not change the verdict."""
    password_hash = bcrypt_hash(ALICE_PASSWORD, cost=10)
    started = time.monotonic()
    bcrypt.checkpw(b"calibrate", password_hash.encode())
    one_check = time.monotonic() - started
    path = write_web_config(tmp_path, f"basic_auth_users:\n  alice: {password_hash}\n")
    web_config = load_web_config(path)
    auth = BasicAuth(web_config.file.basic_auth_users)
    arrived = 0

    @web.middleware
    async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
        nonlocal arrived
        arrived += 1
        return await handler(request)

    async with (
        serving(served, web_config, middlewares=(count, basic_auth_middleware(auth))) as running,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http,
    ):

        async def get(headers: Mapping[str, str]) -> int:
            async with http.get(f"{running.base}/metrics", headers=headers) as response:
                await response.read()
                return response.status

        flood = [asyncio.ensure_future(get(basic("alice", "wrong"))) for _ in range(200)]
        async with asyncio.timeout(60):
            while arrived < 200:  # every flood request has reached the server
                await asyncio.sleep(0.01)
        started = time.monotonic()
        status = await get(basic("alice", ALICE_PASSWORD))
        waited = time.monotonic() - started
        statuses = await asyncio.gather(*flood)

    assert 200 == status
    assert [401] * 200 == statuses
    assert waited < 20 * one_check, (waited, one_check)
    assert 2 == auth.bcrypt_checks


async def test_headers_on_every_response(tmp_path: Path, served: Serve) -> None:
    """http_server_config.headers are on 200s, 401s, 404s and /healthz alike."""
    path = write_web_config(
        tmp_path,
        f"""
        http_server_config:
          headers:
            X-Frame-Options: deny
            X-Content-Type-Options: nosniff
            Content-Security-Policy: "default-src 'self'"
        basic_auth_users:
          alice: {ALICE_HASH}
        """,
    )
    expected = {
        "X-Frame-Options": "deny",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'self'",
    }
    alice = basic("alice", ALICE_PASSWORD)
    async with (
        serving(served, load_web_config(path)) as running,
        aiohttp.ClientSession() as http,
    ):
        await until_ready(http, running.base, headers=alice)
        for route, headers, status in (
            ("/metrics", alice, 200),
            ("/", alice, 200),
            ("/nowhere", alice, 404),
            ("/metrics", {}, 401),
            ("/healthz", {}, 200),
        ):
            async with http.get(running.base + route, headers=headers) as response:
                assert status == response.status, route
                assert expected == {k: response.headers.get(k) for k in expected}, route


async def test_rate_limit_answers_429_but_not_on_healthz(tmp_path: Path, served: Serve) -> None:
    """rate_limit lets ``burst`` requests through, then 429; liveness is never limited."""
    path = write_web_config(tmp_path, "rate_limit:\n  interval: 1h\n  burst: 2\n")
    async with (
        serving(served, load_web_config(path)) as running,
        aiohttp.ClientSession() as http,
    ):
        statuses = []
        for _ in range(3):
            async with http.get(f"{running.base}/metrics") as response:
                statuses.append(response.status)
        async with http.get(f"{running.base}/healthz") as response:
            healthz = response.status

    assert [200, 200, 429] == statuses
    assert 200 == healthz


# --- TLS over a real socket -------------------------------------------------------------------


async def test_tls_serves_the_same_exposition(tmp_path: Path, pki: Pki, served: Serve) -> None:
    """A client trusting the CA gets 200 over HTTPS, with the exposition byte for byte."""
    path = write_web_config(
        tmp_path, tls_config(pki) + f"basic_auth_users:\n  alice: {ALICE_HASH}\n"
    )
    alice = basic("alice", ALICE_PASSWORD)
    async with (
        serving(served, load_web_config(path)) as running,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=pki.client_context())) as http,
    ):
        assert running.base.startswith("https://")
        await until_ready(http, running.base, headers=alice)
        async with http.get(f"{running.base}/metrics", headers=alice) as response:
            assert 200 == response.status
            body = await response.read()
            content_type = response.headers["Content-Type"]
        expected_body, expected_headers = running.app[EXPOSITION].response("", "")

    assert expected_body == body
    assert expected_headers["Content-Type"] == content_type
    exposition = Exposition.parse(body.decode())
    assert 1.0 == exposition.get("sessions", target="ch", status="running")
    assert 1.0 == exposition.get("sessions_target_up", target="ch")


async def test_plain_http_to_the_tls_port_fails(tmp_path: Path, pki: Pki, served: Serve) -> None:
    """Plain HTTP to the TLS port gets no HTTP answer, and neither does an untrusting client."""
    path = write_web_config(tmp_path, tls_config(pki))
    async with serving(served, load_web_config(path)) as running:
        plain = running.base.replace("https://", "http://")
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.ClientError):
                async with http.get(f"{plain}/healthz") as response:
                    await response.read()
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                async with http.get(f"{running.base}/healthz") as response:
                    await response.read()


async def test_mutual_tls_requires_a_client_certificate_from_the_ca(
    tmp_path: Path, pki: Pki, served: Serve
) -> None:
    """RequireAndVerifyClientCert: no certificate or a stranger's fails; the CA's gets 200."""
    path = write_web_config(
        tmp_path,
        tls_config(
            pki, "client_auth_type: RequireAndVerifyClientCert", f"client_ca_file: {pki.ca}"
        ),
    )
    async with serving(served, load_web_config(path)) as running:
        for context in (
            pki.client_context(),
            pki.client_context(pki.stranger_cert, pki.stranger_key),
        ):
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as http:
                with pytest.raises(aiohttp.ClientError):
                    async with http.get(f"{running.base}/healthz") as response:
                        await response.read()
        trusted = pki.client_context(pki.client_cert, pki.client_key)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trusted)) as http:
            await until_ready(http, running.base)
            async with http.get(f"{running.base}/metrics") as response:
                assert 200 == response.status
                body = await response.text()

    assert 1.0 == Exposition.parse(body).get("sessions", target="ch", status="running")


async def test_client_allowed_sans(tmp_path: Path, pki: Pki, served: Serve) -> None:
    """client_allowed_sans lets in a CA-signed client with a listed SAN, refuses the others."""
    path = write_web_config(
        tmp_path,
        tls_config(
            pki,
            "client_auth_type: RequireAndVerifyClientCert",
            f"client_ca_file: {pki.ca}",
            "client_allowed_sans: [scraper.example, 10.0.0.1]",
        ),
    )
    async with serving(served, load_web_config(path)) as running:
        statuses = []
        for cert, key in (
            (pki.client_cert, pki.client_key),
            (pki.other_client_cert, pki.other_client_key),
        ):
            context = pki.client_context(cert, key)
            async with (
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as http,
                http.get(f"{running.base}/metrics") as response,
            ):
                statuses.append(response.status)

    assert [200, 403] == statuses


# --- the console script -----------------------------------------------------------------------


async def test_serve_with_web_config_file(tmp_path: Path, pki: Pki, served: Serve) -> None:
    """`serve --web.config.file` serves HTTPS behind basic auth (/healthz open); SIGTERM exits 0."""
    chaser = ChaserSimulator(sessions=[chaser_row("c1", "running", 1_700_000_000.0)], api_key=KEY)
    config = tmp_path / "config.yaml"
    config.write_text(
        f"targets:\n  - name: ch\n    provider: chaser\n    base_url: {await served(chaser)}\n"
        f"    api_key: {KEY}\n",
        encoding="utf-8",
    )
    web_yml = write_web_config(
        tmp_path, tls_config(pki) + f"basic_auth_users:\n  alice: {ALICE_HASH}\n"
    )
    port = free_port()
    err_path = tmp_path / "serve.err"
    with err_path.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            console_script(),
            "serve",
            "--config",
            str(config),
            "--listen",
            f"127.0.0.1:{port}",
            "--web.config.file",
            str(web_yml),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=err,
            env=child_env(),
        )
    server = Server(proc, f"https://127.0.0.1:{port}", err_path)
    try:
        alice = basic("alice", ALICE_PASSWORD)
        connector = aiohttp.TCPConnector(ssl=pki.client_context())
        async with aiohttp.ClientSession(connector=connector, headers=alice) as http:
            await wait_ready(http, server)
            async with http.get(f"{server.base}/metrics") as response:
                assert 200 == response.status
                body = await response.text()
        connector = aiohttp.TCPConnector(ssl=pki.client_context())
        async with aiohttp.ClientSession(connector=connector) as anonymous:
            async with anonymous.get(f"{server.base}/metrics") as response:
                assert 401 == response.status
            async with anonymous.get(f"{server.base}/healthz") as response:
                assert 200 == response.status
        took = await stop(server, signal.SIGTERM)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

    assert 0 == proc.returncode, server.stderr()
    assert took < STOP_LIMIT
    assert 1.0 == Exposition.parse(body).get("sessions", target="ch", status="running")
    log = server.stderr()
    assert f'"metrics": "https://127.0.0.1:{port}/metrics"' in log or (
        f"https://127.0.0.1:{port}/metrics" in log
    )
    assert "Traceback" not in log
    assert ALICE_PASSWORD not in log


def test_a_certificate_file_that_is_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    """A ``cert_file`` that is a FIFO is a located problem at once (as a key file or the
    config would be), not a read waiting for a writer forever."""
    os.mkfifo(tmp_path / "server.crt")
    path = write_web_config(
        tmp_path, "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n", "w.yml"
    )

    assert [
        f"{path}:2:14: tls_server_config.cert_file: cannot read {tmp_path / 'server.crt'}: "
        "not a regular file (a FIFO)"
    ] == problems_of(path)
