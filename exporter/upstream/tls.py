"""A target's TLS to its provider: the client context built from Prometheus' ``tls_config``
keys, and a failed verification said in plain words.

The context is built once per config load (:func:`client_tls`); equal settings over files
with equal contents compare equal, so a reload that changes neither keeps the target as it
is, and one that changes a file's contents restarts it with the new context.
"""

from __future__ import annotations

import hashlib
import os
import ssl
import stat
from dataclasses import dataclass, field
from pathlib import Path

TLS_FILE_MAX_BYTES = 1024 * 1024
"""The largest CA, certificate or key file accepted (a bundle of every public CA is ~200 KiB)."""


class TLSFileError(ValueError):
    """A TLS file that cannot be used; the message names the file, never its contents."""


@dataclass(frozen=True, slots=True, eq=False)
class ClientTLS:
    """One target's client context, compared by the settings and file contents it came from."""

    context: ssl.SSLContext
    server_name: str | None
    verify: bool
    client_certificate: bool
    fingerprint: bytes = field(repr=False)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ClientTLS) and self.fingerprint == other.fingerprint

    def __hash__(self) -> int:
        return hash(self.fingerprint)


def check_file(path: Path, key: str) -> bytes:
    """The contents of a regular, readable TLS file of at most :data:`TLS_FILE_MAX_BYTES`.

    Opened without blocking and checked before the read, so a FIFO or a device is refused
    at once rather than hanging the load.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise TLSFileError(f"cannot read {key} {path}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise TLSFileError(f"{key} {path} is not a regular file")
        if info.st_size > TLS_FILE_MAX_BYTES:
            raise TLSFileError(f"{key} {path} is larger than {TLS_FILE_MAX_BYTES // 1024} KiB")
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, TLS_FILE_MAX_BYTES + 1 - size):
            chunks.append(chunk)
            size += len(chunk)
            if size > TLS_FILE_MAX_BYTES:
                raise TLSFileError(f"{key} {path} is larger than {TLS_FILE_MAX_BYTES // 1024} KiB")
    except OSError as exc:
        raise TLSFileError(f"cannot read {key} {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if not b"".join(chunks).strip():
        raise TLSFileError(f"{key} {path} is empty")
    return b"".join(chunks)


def client_tls(
    *,
    ca_file: Path | None = None,
    cert_file: Path | None = None,
    key_file: Path | None = None,
    server_name: str | None = None,
    insecure_skip_verify: bool = False,
) -> ClientTLS:
    """The client context for these settings, every file read and checked now.

    ``ca_file`` replaces the system's trusted CAs for this target (as in Prometheus);
    ``cert_file`` and ``key_file`` (both or neither) are the client certificate;
    ``insecure_skip_verify`` checks neither the chain nor the name.
    """
    digest = hashlib.sha256(repr((server_name, insecure_skip_verify)).encode())
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca_file is not None:
        data = check_file(ca_file, "ca_file")
        digest.update(b"ca" + data)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        try:
            context.load_verify_locations(cadata=data.decode("ascii", "replace"))
        except (ssl.SSLError, ValueError):
            raise TLSFileError(
                f"ca_file {ca_file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
            ) from None
    if (cert_file is None) != (key_file is None):
        given, missing = (
            ("cert_file", "key_file") if key_file is None else ("key_file", "cert_file")
        )
        raise TLSFileError(f"{given} needs {missing}: a client certificate takes both")
    if cert_file is not None and key_file is not None:
        digest.update(b"cert" + check_file(cert_file, "cert_file"))
        digest.update(b"key" + check_file(key_file, "key_file"))
        try:
            context.load_cert_chain(cert_file, key_file, password=_no_password)
        except _EncryptedKeyError:
            raise TLSFileError(
                f"key_file {key_file} is encrypted: give the key unencrypted (a passphrase "
                "cannot be asked for)"
            ) from None
        except ssl.SSLError as exc:
            raise TLSFileError(_chain_problem(exc, cert_file, key_file)) from None
        except OSError as exc:
            raise TLSFileError(f"cannot read cert_file or key_file: {exc.strerror}") from None
    if insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return ClientTLS(
        context=context,
        server_name=server_name,
        verify=not insecure_skip_verify,
        client_certificate=cert_file is not None,
        fingerprint=digest.digest(),
    )


def _chain_problem(exc: ssl.SSLError, cert_file: Path, key_file: Path) -> str:
    reason = (exc.reason or "").upper()
    if "KEY_VALUES_MISMATCH" in reason:
        return f"key_file {key_file} is not the key of cert_file {cert_file}"
    if "PEM" in reason or "NO_START_LINE" in reason or "CA_MD" in reason:
        return f"cert_file {cert_file} or key_file {key_file} is not a PEM certificate and key"
    return f"cert_file {cert_file} and key_file {key_file} cannot be used: {exc.reason or exc}"


_UNKNOWN_CA = frozenset({2, 18, 19, 20, 21, 27})
"""OpenSSL's verify codes for a chain that does not end at a trusted CA."""
_EXPIRED, _NOT_YET_VALID = 10, 9
_WRONG_NAME = frozenset({62, 64})
"""Hostname and IP address mismatch."""


def verify_failure(error: BaseException, host: str) -> str:
    """Which check a server's certificate failed, and what setting would help."""
    code = getattr(error, "verify_code", None)
    detail = str(getattr(error, "verify_message", "") or getattr(error, "reason", "") or error)
    if code == _EXPIRED:
        return f"TLS: the certificate of {host} has expired ({detail})"
    if code == _NOT_YET_VALID:
        return f"TLS: the certificate of {host} is not valid yet ({detail}); check the clock"
    if code in _WRONG_NAME:
        return (
            f"TLS: wrong name: the certificate is not valid for {host} ({detail}); "
            "set tls.server_name to a name the certificate has"
        )
    if code in _UNKNOWN_CA:
        return (
            f"TLS: unknown CA: the certificate of {host} is not signed by a trusted CA "
            f"({detail}); set tls.ca_file to the CA that signed it"
        )
    return f"TLS: the certificate of {host} does not verify ({detail})"


def handshake_failure(error: BaseException, host: str) -> str:
    """A TLS failure other than verification (an alert from the server, a protocol error)."""
    reason = str(getattr(error, "reason", None) or "").upper()
    if "CERTIFICATE_REQUIRED" in reason or "HANDSHAKE_FAILURE" in reason:
        return (
            f"TLS: the handshake with {host} failed ({reason.lower()}): the server may require "
            "a client certificate (set tls.cert_file and tls.key_file)"
        )
    if "UNKNOWN_CA" in reason or "BAD_CERTIFICATE" in reason or "DECRYPT_ERROR" in reason:
        return (
            f"TLS: {host} refused the client certificate ({reason.lower()}); "
            "check tls.cert_file and tls.key_file"
        )
    if "WRONG_VERSION_NUMBER" in reason:
        return f"TLS: {host} did not answer with TLS (is it plain http://?)"
    return f"TLS: the handshake with {host} failed ({reason.lower() or error})"


class _EncryptedKeyError(Exception):
    """The client key asks for a passphrase (OpenSSL would prompt on the terminal)."""


def _no_password() -> str:
    raise _EncryptedKeyError
