"""A target's ``tls:`` (Prometheus' tls_config keys) over real HTTPS origins with a private CA
made in the test: a certificate that names only a DNS name (``server_name``), one that
requires a client certificate, an expired one; failures are reason ``tls`` saying which check
failed, and check-config reads every file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from structlog.testing import capture_logs

from exporter.config.settings import ConfigError, load_settings
from exporter.upstream.errors import Reason
from tests.harness import KEY, settings_for
from tests.network import SERVER_NAME, make_ca, origin, server_context
from tests.test_cli import run, write_config
from tests.test_proxies import poll, target


async def test_a_certificate_that_names_only_a_dns_name(tmp_path: Path) -> None:
    """Reached as 127.0.0.1, a certificate for sessions.internal.test verifies with
    ``server_name``; without it the poll fails as ``tls``, wrong name; without ``ca_file``,
    unknown CA. None of these is retried."""
    ca = make_ca(tmp_path / "pki")
    async with origin(context=server_context(ca.issue("server"))) as up:
        named = await poll(
            settings_for(
                target(up.url, tls={"ca_file": str(ca.cert_file), "server_name": SERVER_NAME})
            )
        )
        unnamed = await poll(
            settings_for(target(up.url, retries=2, tls={"ca_file": str(ca.cert_file)}))
        )
        unknown = await poll(settings_for(target(up.url, tls={"server_name": SERVER_NAME})))

    host = up.url.removeprefix("https://")
    assert (True, None) == (named.up, named.error)
    assert (Reason.TLS, 0) == (unnamed.error_reason, unnamed.retries)
    assert (
        f"TLS: wrong name: the certificate is not valid for {host} (IP address mismatch, "
        "certificate is not valid for '127.0.0.1'.); set tls.server_name to a name the "
        "certificate has"
    ) == unnamed.error
    assert Reason.TLS == unknown.error_reason
    assert (
        f"TLS: unknown CA: the certificate of {SERVER_NAME} is not signed by a trusted CA "
        "(unable to get local issuer certificate); set tls.ca_file to the CA that signed it"
    ) == unknown.error
    assert 1 == len(up.seen)


async def test_an_expired_certificate(tmp_path: Path) -> None:
    """An expired certificate fails as ``tls``, expired; ``insecure_skip_verify`` accepts it."""
    ca = make_ca(tmp_path / "pki")
    tls = {"ca_file": str(ca.cert_file), "server_name": SERVER_NAME}
    async with origin(context=server_context(ca.issue("old", expired=True))) as up:
        expired = await poll(settings_for(target(up.url, tls=tls)))
        skipped = await poll(settings_for(target(up.url, tls={"insecure_skip_verify": True})))

    assert Reason.TLS == expired.error_reason
    assert (
        f"TLS: the certificate of {SERVER_NAME} has expired (certificate has expired)"
    ) == expired.error
    assert (True, 1) == (skipped.up, len(up.seen))


async def test_a_server_that_requires_a_client_certificate(tmp_path: Path) -> None:
    """With ``cert_file`` and ``key_file`` the poll succeeds. Without, the server cuts the
    connection (TLS 1.3 closes it after the handshake, TLS 1.2 resets it in the handshake):
    reason ``connect``, in plain words, saying a client certificate may be needed."""
    ca = make_ca(tmp_path / "pki")
    client = ca.issue("client", dns="exporter.test", client=True)
    server = ca.issue("server")
    tls: dict[str, Any] = {"ca_file": str(ca.cert_file), "server_name": SERVER_NAME}
    with_cert = tls | {"cert_file": str(client.cert), "key_file": str(client.key)}
    async with (
        origin(context=server_context(server, client_ca=ca.cert_file)) as up13,
        origin(context=server_context(server, client_ca=ca.cert_file, tls12=True)) as up12,
    ):
        refused13 = await poll(settings_for(target(up13.url, tls=tls)))
        refused12 = await poll(settings_for(target(up12.url, tls=tls)))
        good13 = await poll(settings_for(target(up13.url, tls=with_cert)))
        good12 = await poll(settings_for(target(up12.url, tls=with_cert)))

    hint = "(if it requires a client certificate, set tls.cert_file and tls.key_file)"
    assert (Reason.CONNECT, Reason.CONNECT) == (refused13.error_reason, refused12.error_reason)
    assert (
        f"cannot reach {up13.url}/v1/sessions: the server closed the connection without an "
        f"answer {hint}"
    ) == refused13.error
    assert f"cannot reach {up12.url}/v1/sessions: the connection was reset {hint}" == (
        refused12.error
    )
    assert (True, True) == (good13.up, good12.up)
    assert (1, 1) == (len(up13.seen), len(up12.seen))


def tls_config(tmp_path: Path, tls: str) -> Path:
    """A config of one AGI target with the ``tls:`` lines given (indented by 6)."""
    tls = tls.replace("\n", "\n" + " " * 8)  # under the template's own indentation
    return write_config(
        tmp_path,
        f"""
        targets:
          - name: t
            provider: agi
            api_key: {KEY}
            tls:
        {tls}
        """,
    )


def test_check_config_reads_the_tls_files(tmp_path: Path) -> None:
    """A missing file, a directory, a file that is no certificate, a certificate without its
    key, and a key of another certificate: each a located problem."""
    ca = make_ca(tmp_path / "pki")
    one, two = ca.issue("one"), ca.issue("two")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    cases = {
        f"      ca_file: {tmp_path}/missing.pem": (
            "6:16",
            "targets[0].tls.ca_file",
            f"cannot read ca_file {tmp_path}/missing.pem: No such file or directory",
        ),
        f"      ca_file: {tmp_path}": (
            "6:16",
            "targets[0].tls.ca_file",
            f"ca_file {tmp_path} is not a regular file",
        ),
        f"      ca_file: {junk}": (
            "6:7",
            "targets[0].tls",
            f"ca_file {junk} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
        ),
        f"      cert_file: {one.cert}": (
            "6:7",
            "targets[0].tls",
            "cert_file needs key_file: a client certificate takes both",
        ),
        f"      cert_file: {one.cert}\n      key_file: {two.key}": (
            "6:7",
            "targets[0].tls",
            f"key_file {two.key} is not the key of cert_file {one.cert}",
        ),
    }
    for tls, (at, key, message) in cases.items():
        path = tls_config(tmp_path, tls)
        with pytest.raises(ConfigError) as caught:
            load_settings(path)
        assert [f"{path}:{at}: {key}: {message}"] == [str(p) for p in caught.value.problems]


def test_an_encrypted_client_key_is_refused_not_prompted_for(tmp_path: Path) -> None:
    """A passphrase-protected ``tls.key_file`` is a located problem at once: OpenSSL is never
    left to ask for the passphrase on the terminal (check-config or a reload would hang)."""
    ca = make_ca(tmp_path / "pki")
    client = ca.issue("client", client=True)
    key = serialization.load_pem_private_key(client.key.read_bytes(), password=None)
    locked = tmp_path / "locked.key"
    locked.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    path = tls_config(tmp_path, f"      cert_file: {client.cert}\n      key_file: {locked}")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert [
        f"{path}:6:7: targets[0].tls: key_file {locked} is encrypted: give the key unencrypted "
        "(a passphrase cannot be asked for)"
    ] == [str(p) for p in caught.value.problems]


async def test_insecure_skip_verify_warns_at_every_load(tmp_path: Path) -> None:
    """check-config prints a located warning for ``insecure_skip_verify: true`` (and exits 0);
    so does every load."""
    path = tls_config(tmp_path, "      insecure_skip_verify: true")
    checked = await run("check-config", "--config", str(path))
    again = await run("check-config", "--config", str(path))

    warning = (
        f"warning: {path}:6:29: targets[0].tls.insecure_skip_verify: target t: the provider's "
        "certificate is not verified, so anyone on the path can read the API key; set "
        "tls.ca_file instead"
    )
    assert (0, [warning]) == (checked.returncode, checked.stderr.splitlines())
    assert [warning] == again.stderr.splitlines()


def test_the_context_is_built_once_per_load(tmp_path: Path) -> None:
    """Each load builds the target's SSLContext once (every request of every poll uses it);
    two loads of the same files give equal targets (a reload keeps it polling), and a CA
    file whose contents change makes the target differ (a reload restarts it)."""
    ca = make_ca(tmp_path / "pki")
    path = tls_config(tmp_path, f"      ca_file: {ca.cert_file}")
    first = load_settings(path).targets[0]
    second = load_settings(path).targets[0]
    assert first.tls is not None
    assert second.tls is not None
    assert first.transport.tls is first.tls.client
    assert first.transport.tls is not None
    assert first.transport.tls.context is first.transport.tls.context
    assert first.transport.tls.context is not second.transport.tls.context  # type: ignore[union-attr]
    assert first == second

    ca.cert_file.write_bytes(make_ca(tmp_path / "other", "Another CA").cert_file.read_bytes())
    assert first != load_settings(path).targets[0]


def test_insecure_skip_verify_is_logged_once_logging_runs(tmp_path: Path) -> None:
    """Once logging is set up (a reload in ``serve``), the warning is a ``config.warning``
    event with its place, at each load."""
    path = tls_config(tmp_path, "      insecure_skip_verify: true")
    with capture_logs() as logs:
        load_settings(path)
        load_settings(path)

    warnings = [e for e in logs if e["event"] == "config.warning"]
    assert 2 == len(warnings)
    assert f"{path}:6:29" == warnings[0]["where"]
    assert "targets[0].tls.insecure_skip_verify" == warnings[0]["key"]
    assert "warning" == warnings[0]["log_level"]
