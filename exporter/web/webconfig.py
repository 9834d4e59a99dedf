"""The web config file (``--web.config.file``): TLS, basic auth and response headers.

The format is the Prometheus exporter-toolkit's, so a file written for node_exporter or any
other toolkit-based exporter works unchanged: ``tls_server_config``, ``http_server_config``,
``basic_auth_users`` and ``rate_limit``, with unknown keys refused as the toolkit refuses them.
Relative file names are relative to the web config file's directory.

Python's ``ssl`` module cannot express every Go TLS setting; those are accepted and reported
once as a warning when the server starts (see :attr:`WebConfig.warnings`), never silently
weakened: a setting that cannot be honoured safely is an error instead.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import ipaddress
import os
import re
import ssl
import tempfile
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import bcrypt
import structlog
import yaml
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

from exporter.config.messages import describe, model_at, unknown_key
from exporter.config.settings import (
    ConfigError,
    Problem,
    dotted,
    duplicate_keys,
    key_place,
    line_of,
    parse_yaml,
    place,
    read_text,
)
from exporter.core.files import RefusedFileError, read_regular_file

WEB_CONFIG_ENV = "SESSION_EXPORTER_WEB_CONFIG_FILE"
REALM = "session-exporter"
OPEN_PATHS = frozenset({"/healthz"})
"""Paths served without basic auth or rate limit: liveness must stay probe-able."""

log = structlog.get_logger("exporter")

# --- the schema (exporter-toolkit's web/tls_config.go) ----------------------------------

TLS_VERSIONS: Mapping[str, ssl.TLSVersion] = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}

CIPHER_SUITES: Mapping[str, str | None] = {
    # Go's names (tls.CipherSuites(), past and present) -> OpenSSL's; None: a TLS 1.3 suite,
    # which neither Go nor Python lets a server configure.
    "TLS_AES_128_GCM_SHA256": None,
    "TLS_AES_256_GCM_SHA384": None,
    "TLS_CHACHA20_POLY1305_SHA256": None,
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    # listed by older Go releases, so older web config files may name them
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA": "DES-CBC3-SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA": "ECDHE-RSA-DES-CBC3-SHA",
}

CURVES: Mapping[str, str] = {
    "CurveP256": "prime256v1",
    "CurveP384": "secp384r1",
    "CurveP521": "secp521r1",
    "X25519": "X25519",
}

EXTRA_HEADERS: Mapping[str, tuple[str, ...]] = {
    # the toolkit allows these headers only; a non-empty tuple lists the allowed values
    "Strict-Transport-Security": (),
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": (),
    "Content-Security-Policy": (),
}

ClientAuthType = Literal[
    "",
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "RequireClientCert",  # the toolkit's old name of RequireAnyClientCert
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
]
TLSVersionName = Literal["TLS10", "TLS11", "TLS12", "TLS13"]

_BCRYPT = re.compile(r"\$2[abxy]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")
_GO_DURATION_PART = r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)"  # Go takes micro and Greek mu
_GO_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def _scalar_text(value: object) -> object:
    """Go's YAML decoder takes any scalar for a string, as in ``X-XSS-Protection: 1``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _cipher(name: str) -> str:
    if name not in CIPHER_SUITES:
        raise ValueError(
            f"unknown cipher {name!r}: use a name of Go's tls.CipherSuites(), "
            "like TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        )
    return name


def _curve(name: str) -> str:
    if name not in CURVES:
        raise ValueError(f"unknown curve {name!r}: use one of " + ", ".join(CURVES))
    return name


def _bcrypt_hash(value: str) -> str:
    if not _BCRYPT.fullmatch(value):  # the value is a secret: never echoed
        raise ValueError(
            "not a bcrypt hash: expected $2y$, $2b$ or $2a$, a cost of 04 to 31 and 53 "
            "characters of salt and hash (htpasswd -nBC 10 '' | tr -d ':\\n' makes one)"
        )
    return value


def _go_duration(value: object) -> float:
    """Seconds of a Go duration (``1s``, ``250ms``, ``1m30s``); a bare number is nanoseconds."""
    if isinstance(value, bool):
        raise ValueError("must be a duration such as 1s or 100ms")
    if isinstance(value, int | float):
        seconds = value * 1e-9
    elif isinstance(value, str):
        text = value.strip()
        if text in ("0", "+0", "-0"):
            return 0.0
        body = text.lstrip("+")
        if not re.fullmatch(f"(?:{_GO_DURATION_PART})+", body):
            raise ValueError(f"invalid duration {value!r}: use Go units like 1s, 250ms or 1m30s")
        seconds = sum(float(n) * _GO_UNITS[u] for n, u in re.findall(_GO_DURATION_PART, body))
    else:
        raise ValueError("must be a duration such as 1s or 100ms")
    if seconds < 0:
        raise ValueError(f"invalid duration {value!r}: must not be negative")
    return seconds


GoString = Annotated[str, BeforeValidator(_scalar_text)]
Cipher = Annotated[str, AfterValidator(_cipher)]
Curve = Annotated[str, AfterValidator(_curve)]
BcryptHash = Annotated[str, BeforeValidator(_scalar_text), AfterValidator(_bcrypt_hash)]
GoDuration = Annotated[float, BeforeValidator(_go_duration)]


class Section(BaseModel):
    """A mapping of the web config: unknown keys are errors, and a null value means the default.

    (Go's YAML decoder leaves a field at its zero value for ``key:`` with nothing after it.)
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _null_is_default(cls, data: Any) -> Any:
        if data is None:
            return {}
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None}
        return data


class TLSServerConfig(Section):
    """``tls_server_config``: the server certificate and the client certificate policy."""

    cert: GoString = ""
    key: SecretStr = SecretStr("")
    client_ca: GoString = ""
    cert_file: GoString = ""
    key_file: GoString = ""
    client_auth_type: ClientAuthType = ""
    client_ca_file: GoString = ""
    client_allowed_sans: list[GoString] | None = None
    min_version: TLSVersionName = "TLS12"
    max_version: TLSVersionName = "TLS13"
    cipher_suites: list[Cipher] = Field(default_factory=list)
    prefer_server_cipher_suites: bool = True
    curve_preferences: list[Curve] = Field(default_factory=list)

    @property
    def enabled(self) -> bool:
        """Whether TLS is on: any certificate, key, client CA or client auth setting given."""
        return any(
            (
                self.cert,
                self.cert_file,
                self.key.get_secret_value(),
                self.key_file,
                self.client_ca,
                self.client_ca_file,
                self.client_auth_type,
            )
        )

    @property
    def client_auth(self) -> str:
        """The client auth policy under its current name."""
        if self.client_auth_type == "RequireClientCert":
            return "RequireAnyClientCert"
        return self.client_auth_type or "NoClientCert"


class HTTPServerConfig(Section):
    """``http_server_config``: HTTP/2 (not available here) and extra response headers."""

    http2: bool = True
    headers: dict[GoString, GoString] = Field(default_factory=dict)


class RateLimitConfig(Section):
    """``rate_limit``: a token bucket over all requests (``interval`` 0 turns it off)."""

    interval: GoDuration = 0.0
    burst: Annotated[int, Field(ge=0)] = 0


class WebConfigFile(Section):
    """The whole web config file."""

    tls_server_config: TLSServerConfig = Field(default_factory=TLSServerConfig)
    http_server_config: HTTPServerConfig = Field(default_factory=HTTPServerConfig)
    rate_limit: RateLimitConfig = Field(default_factory=RateLimitConfig)
    basic_auth_users: dict[GoString, BcryptHash] = Field(default_factory=dict, repr=False)
    """User name -> bcrypt hash; kept out of the repr (hashes can be attacked offline)."""


# --- loading ------------------------------------------------------------------------------

Loc = tuple[str | int, ...]


class _TLSProblem(Exception):
    """A TLS setting that cannot be applied, at ``loc`` in the file."""

    def __init__(self, loc: Loc, message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


@dataclass(frozen=True)
class WebConfig:
    """A validated web config, ready to serve: its TLS context and its middlewares."""

    path: Path
    file: WebConfigFile
    ssl_context: ssl.SSLContext | None
    warnings: tuple[tuple[str, str], ...] = ()
    """(setting, what happens instead) for each setting Python cannot honour as written."""
    _logged: list[bool] = field(default_factory=lambda: [False], repr=False, compare=False)

    @property
    def scheme(self) -> str:
        """``https`` when TLS is on."""
        return "https" if self.ssl_context else "http"

    def middlewares(self) -> tuple[Middleware, ...]:
        """Headers (outermost, so every answer has them), client SANs, rate limit, basic auth."""
        out: list[Middleware] = []
        if self.file.http_server_config.headers:
            out.append(headers_middleware(self.file.http_server_config.headers))
        if self.ssl_context and self.file.tls_server_config.client_allowed_sans is not None:
            out.append(allowed_sans_middleware(self.file.tls_server_config.client_allowed_sans))
        limit = self.file.rate_limit
        if limit.interval > 0:
            out.append(rate_limit_middleware(TokenBucket(limit.interval, limit.burst)))
        if self.file.basic_auth_users:
            out.append(basic_auth_middleware(BasicAuth(self.file.basic_auth_users)))
        return tuple(out)

    def log_warnings(self) -> None:
        """Log each setting that is not honoured as written, once per process."""
        if self._logged[0]:
            return
        self._logged[0] = True
        for setting, detail in self.warnings:
            log.warning("web_config.setting_not_honoured", setting=setting, detail=detail)

    def summary(self) -> str:
        """One line for ``check-config``."""
        tls = self.file.tls_server_config
        parts = [
            f"TLS on (client certificates: {tls.client_auth})" if self.ssl_context else "TLS off",
            f"basic auth for {len(self.file.basic_auth_users)} user(s)"
            if self.file.basic_auth_users
            else "no basic auth",
        ]
        if self.file.http_server_config.headers:
            parts.append(f"{len(self.file.http_server_config.headers)} extra header(s)")
        if self.file.rate_limit.interval > 0:
            parts.append("rate limited")
        return f"web config ok: {', '.join(parts)}"


def web_config_path(explicit: str | None) -> Path | None:
    """The web config file: ``--web.config.file``, else ``$SESSION_EXPORTER_WEB_CONFIG_FILE``."""
    value = explicit or os.environ.get(WEB_CONFIG_ENV)
    return Path(value) if value else None


def load_web_config(path: Path) -> WebConfig:
    """Read and validate a web config and build its TLS context; raise ConfigError otherwise."""
    where = str(path)
    data, root = parse_yaml(read_text(path), where)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            [Problem(where, "", "the web config must be a mapping of keys to values")]
        )
    problems = duplicate_keys(root, where)
    try:
        parsed = WebConfigFile.model_validate(data)
    except ValidationError as exc:
        problems += [_problem(error, root, where) for error in exc.errors()]
        raise ConfigError(sorted(problems, key=line_of)) from None
    problems += [Problem(place(root, loc, where), dotted(loc), msg) for loc, msg in _check(parsed)]
    if problems:
        raise ConfigError(sorted(problems, key=line_of))
    warnings = _http_warnings(parsed.http_server_config)
    context = None
    if parsed.tls_server_config.enabled:
        try:
            context, tls_warnings = ssl_context(parsed.tls_server_config, path.parent)
        except _TLSProblem as exc:
            problem = Problem(place(root, exc.loc, where), dotted(exc.loc), exc.message)
            raise ConfigError([problem]) from None
        warnings += tls_warnings
    return WebConfig(path, parsed, context, tuple(warnings))


def _problem(error: Mapping[str, Any], root: yaml.Node | None, where: str) -> Problem:
    """One pydantic error in plain words (:mod:`exporter.config.messages`), located as the
    config's are: an unknown key where the key is written, anything else at its value."""
    is_key = error["loc"][-1:] == ("[key]",)  # a mapping's key, not its value, is wrong
    loc = tuple(part for part in error["loc"] if part != "[key]")
    if error["type"] == "extra_forbidden":
        message = unknown_key(str(loc[-1]), model_at(WebConfigFile, loc))
        if len(loc) == 1 and message == "unknown key":
            message += " (the web config has tls_server_config, http_server_config,"
            message += " basic_auth_users and rate_limit)"
        return Problem(key_place(root, loc, where), dotted(loc), message)
    message = describe(error, WebConfigFile)
    if is_key:  # pydantic names the key by its repr ('None'): name the mapping instead
        loc = loc[:-1]
        message = f"every key {message}" + (", not empty" if error.get("input") is None else "")
    return Problem(place(root, loc, where), dotted(loc), message)


def _check(parsed: WebConfigFile) -> list[tuple[Loc, str]]:
    """What the toolkit refuses beyond the types, each where it is in the file."""
    out: list[tuple[Loc, str]] = []
    tls = parsed.tls_server_config
    section: Loc = ("tls_server_config",)
    if tls.enabled:
        if not (tls.cert or tls.cert_file):
            out.append((section, "missing one of cert or cert_file"))
        if not (tls.key.get_secret_value() or tls.key_file):
            out.append((section, "missing one of key or key_file"))
    if (tls.client_ca or tls.client_ca_file) and tls.client_auth == "NoClientCert":
        where = "client_ca_file" if tls.client_ca_file else "client_ca"
        out.append(
            (
                (*section, where),
                "a client CA is configured without a client_auth_type that asks for certificates",
            )
        )
    if tls.client_allowed_sans is not None and tls.client_auth not in (
        "RequireAnyClientCert",
        "RequireAndVerifyClientCert",
    ):
        out.append(
            (
                (*section, "client_allowed_sans"),
                "needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert",
            )
        )
    if TLS_VERSIONS[tls.min_version] > TLS_VERSIONS[tls.max_version]:
        out.append(((*section, "min_version"), f"is above max_version {tls.max_version}"))
    for name, value in parsed.http_server_config.headers.items():
        loc: Loc = ("http_server_config", "headers", name)
        if name not in EXTRA_HEADERS:
            out.append(
                (loc, "this header can not be configured: use one of " + ", ".join(EXTRA_HEADERS))
            )
        elif EXTRA_HEADERS[name] and value not in EXTRA_HEADERS[name]:
            out.append(
                (loc, f"invalid value {value!r}: use one of " + ", ".join(EXTRA_HEADERS[name]))
            )
    if parsed.rate_limit.interval > 0 and parsed.rate_limit.burst < 1:
        out.append(
            (
                ("rate_limit", "burst"),
                "must be at least 1 when interval is set (with 0 every request is refused)",
            )
        )
    return out


def _http_warnings(http: HTTPServerConfig) -> list[tuple[str, str]]:
    if http.http2 and "http2" in http.model_fields_set:
        return [("http_server_config.http2", "HTTP/2 is not available here: HTTP/1.1 is served")]
    return []


# --- TLS ------------------------------------------------------------------------------------


def ssl_context(
    tls: TLSServerConfig, directory: Path
) -> tuple[ssl.SSLContext, list[tuple[str, str]]]:
    """The server's TLS context, and the settings Python's ``ssl`` cannot honour as written.

    ``directory`` is where relative file names are looked up (the web config's directory).
    A file that cannot be read or used raises a problem located at its setting.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    warnings: list[tuple[str, str]] = []
    context.minimum_version = TLS_VERSIONS[tls.min_version]
    context.maximum_version = TLS_VERSIONS[tls.max_version]
    if tls.min_version in ("TLS10", "TLS11"):
        warnings.append(
            (
                "tls_server_config.min_version",
                f"{tls.min_version} is allowed, but OpenSSL's security level may still refuse "
                "TLS 1.0 and 1.1 handshakes",
            )
        )
    _load_cert_and_key(context, tls, directory)
    _apply_client_auth(context, tls, directory, warnings)
    _apply_ciphers(context, tls, warnings)
    _apply_curves(context, tls, warnings)
    return context, warnings


def _resolve(directory: Path, name: str) -> Path:
    path = Path(name)
    return path if path.is_absolute() else directory / path


PEM_MAX_BYTES = 1024 * 1024
"""The largest certificate, key or CA file read (a CA bundle is a few hundred KiB)."""


def _pem(directory: Path, file_name: str, inline: str, setting: str, kind: str) -> str:
    """The PEM text of a ``*_file`` setting (read relative to ``directory``) or its inline twin."""
    if file_name:
        path = _resolve(directory, file_name)
        try:  # as key files: a FIFO or a device is refused at once, never waited on
            text = read_regular_file(path, max_bytes=PEM_MAX_BYTES).decode("utf-8")
        except RefusedFileError as exc:
            reason = {
                "too_big": f"larger than {PEM_MAX_BYTES // 1024} KiB: not PEM",
                "not_regular": f"not a regular file ({exc.detail})",
            }.get(exc.kind, exc.detail)
            raise _TLSProblem(
                ("tls_server_config", setting), f"cannot read {path}: {reason}"
            ) from None
        except UnicodeDecodeError:
            raise _TLSProblem(("tls_server_config", setting), f"{path} is not PEM text") from None
    else:
        text, setting = inline, setting.removesuffix("_file")
    if "-----BEGIN" not in text or kind not in text:
        raise _TLSProblem(("tls_server_config", setting), f"no PEM {kind.lower()} found")
    return text


@contextlib.contextmanager
def _private_files(*texts: str) -> Iterator[list[str]]:
    """The texts as files only this process can read, removed afterwards (ssl wants paths)."""
    with tempfile.TemporaryDirectory(prefix="session-exporter-tls-") as tmp:
        paths = []
        for index, text in enumerate(texts):
            path = Path(tmp) / f"{index}.pem"
            path.touch(mode=0o600)
            path.write_text(text, encoding="utf-8")
            paths.append(str(path))
        yield paths


def _no_password() -> str:
    raise _TLSProblem(
        ("tls_server_config", "key_file"),
        "the private key is encrypted: give it unencrypted, as the exporter-toolkit requires",
    )


def _load_cert_and_key(context: ssl.SSLContext, tls: TLSServerConfig, directory: Path) -> None:
    cert = _pem(directory, tls.cert_file, tls.cert, "cert_file", "CERTIFICATE")
    key = _pem(directory, tls.key_file, tls.key.get_secret_value(), "key_file", "PRIVATE KEY")
    with _private_files(cert, key) as (cert_path, key_path):
        try:
            context.load_cert_chain(cert_path, key_path, password=_no_password)
        except ssl.SSLError as exc:
            setting = "key_file" if tls.key_file else "key"
            if exc.reason == "KEY_VALUES_MISMATCH":
                message = "the private key does not match the certificate"
            else:
                message = f"cannot use the certificate and key: {exc.reason or exc}"
            raise _TLSProblem(("tls_server_config", setting), message) from None


def _apply_client_auth(
    context: ssl.SSLContext,
    tls: TLSServerConfig,
    directory: Path,
    warnings: list[tuple[str, str]],
) -> None:
    policy = tls.client_auth
    setting = "tls_server_config.client_auth_type"
    if policy == "NoClientCert":
        return
    if policy == "RequestClientCert":
        warnings.append(
            (
                setting,
                "RequestClientCert: Python cannot ask for a certificate without verifying it, "
                "so none is asked for (none would be checked either way)",
            )
        )
        return
    if tls.client_ca or tls.client_ca_file:
        cadata = _pem(directory, tls.client_ca_file, tls.client_ca, "client_ca_file", "CERTIFICATE")
        try:
            context.load_verify_locations(cadata=cadata)
        except ssl.SSLError as exc:
            where = "client_ca_file" if tls.client_ca_file else "client_ca"
            raise _TLSProblem(
                ("tls_server_config", where), f"cannot use the client CA: {exc.reason or exc}"
            ) from None
    elif policy == "RequireAnyClientCert":
        raise _TLSProblem(
            ("tls_server_config", "client_auth_type"),
            "RequireAnyClientCert needs client_ca_file here: Python's ssl module cannot require "
            "a client certificate without verifying it against a CA",
        )
    else:  # like Go without ClientCAs: the system's roots
        context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    if policy == "VerifyClientCertIfGiven":
        context.verify_mode = ssl.CERT_OPTIONAL
        return
    context.verify_mode = ssl.CERT_REQUIRED
    if policy == "RequireAnyClientCert":
        warnings.append(
            (
                setting,
                "RequireAnyClientCert: client certificates are also verified against the "
                "client CA (as RequireAndVerifyClientCert), which Python cannot skip",
            )
        )


def _apply_ciphers(
    context: ssl.SSLContext, tls: TLSServerConfig, warnings: list[tuple[str, str]]
) -> None:
    if tls.prefer_server_cipher_suites:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    wanted = {
        openssl: name for name in tls.cipher_suites if (openssl := CIPHER_SUITES[name]) is not None
    }
    if not wanted:
        return
    try:
        context.set_ciphers(":".join(wanted))
    except ssl.SSLError:
        raise _TLSProblem(
            ("tls_server_config", "cipher_suites"),
            "none of these cipher suites is available in this OpenSSL build",
        ) from None
    available = {c["name"] for c in context.get_ciphers()}
    missing = [go for openssl, go in wanted.items() if openssl not in available]
    if missing:
        warnings.append(
            (
                "tls_server_config.cipher_suites",
                "not available in this OpenSSL build, left out: " + ", ".join(missing),
            )
        )


def _apply_curves(
    context: ssl.SSLContext, tls: TLSServerConfig, warnings: list[tuple[str, str]]
) -> None:
    curves = list(dict.fromkeys(tls.curve_preferences))
    if len(curves) == 1:
        context.set_ecdh_curve(CURVES[curves[0]])
    elif curves:
        warnings.append(
            (
                "tls_server_config.curve_preferences",
                "Python's ssl module can restrict key exchange to one curve only, not order "
                "several: OpenSSL's default groups (which include all of "
                + ", ".join(curves)
                + ") are used",
            )
        )


# --- middlewares ----------------------------------------------------------------------------


def headers_middleware(headers: Mapping[str, str]) -> Middleware:
    """Add ``headers`` to every response, errors and 401s included."""
    fixed = dict(headers)

    @web.middleware
    async def add_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers.update(fixed)
            raise
        if not response.prepared:
            response.headers.update(fixed)
        return response

    return add_headers


def _peer_sans(cert: Mapping[str, Any] | None) -> set[str]:
    """The SAN values of a verified peer certificate, written as Go writes them."""
    values = set()
    for kind, value in (cert or {}).get("subjectAltName", ()):
        text = value
        if kind == "IP Address":
            with contextlib.suppress(ValueError):
                text = ipaddress.ip_address(value.strip()).compressed
        values.add(text)
    return values


def allowed_sans_middleware(allowed: Sequence[str]) -> Middleware:
    """Refuse (403) a client whose certificate has none of the ``allowed`` SANs."""
    allowed_set = frozenset(allowed)

    @web.middleware
    async def check_sans(request: web.Request, handler: Handler) -> web.StreamResponse:
        transport = request.transport
        cert = transport.get_extra_info("peercert") if transport else None
        if not _peer_sans(cert) & allowed_set:
            return web.Response(status=403, text="Forbidden: client certificate not allowed\n")
        return await handler(request)

    return check_sans


class TokenBucket:
    """Go's ``rate.NewLimiter(rate.Every(interval), burst)``: ``burst``, then one per interval."""

    def __init__(self, interval: float, burst: int) -> None:
        self.interval = interval
        self.burst = burst
        self._tokens = float(burst)
        self._last = time.monotonic()

    def allow(self) -> bool:
        """Take a token if there is one."""
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._last) / self.interval)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


def rate_limit_middleware(bucket: TokenBucket) -> Middleware:
    """Answer 429 when the bucket is empty (liveness on /healthz is never limited)."""

    @web.middleware
    async def limit(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in OPEN_PATHS and not bucket.allow():
            return web.Response(status=429, text="Too Many Requests\n")
        return await handler(request)

    return limit


_BCRYPT_MAX = 72  # bcrypt reads this many bytes of a password, as Go's bcrypt does
CACHE_SIZE = 1024
"""Checked (user, password) pairs remembered, successes and failures alike (as the toolkit)."""
BCRYPT_WORKERS = 2
"""bcrypt checks that run at once, in threads off the event loop."""
BCRYPT_QUEUE = 32
"""Distinct checks that may wait for a worker; past that a request is answered 503 at once."""


class AuthBusy(Exception):
    """Too many distinct password checks are waiting: answer 503 rather than queue more."""


def _checkpw(password: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password[:_BCRYPT_MAX], hashed)
    except ValueError:  # a hash this bcrypt cannot read
        return False


def _cost(hashed: bytes) -> int:
    return int(hashed[4:6])


class BasicAuth:
    """Checks ``Authorization: Basic`` against bcrypt hashes.

    bcrypt runs in :data:`BCRYPT_WORKERS` threads, never on the event loop and never more at
    once. Every result is cached under (user, sha256(password)) in an LRU of
    :data:`CACHE_SIZE`, failures too, and identical checks in flight share one bcrypt run, so
    a flood of one wrong password costs one check and a valid client is not queued behind
    it. Distinct checks waiting past :data:`BCRYPT_QUEUE` are refused (:class:`AuthBusy`).
    An unknown user is checked against a dummy hash of the highest configured cost, so the
    time of an answer does not tell which user names exist.
    """

    def __init__(
        self,
        users: Mapping[str, str],
        *,
        workers: int = BCRYPT_WORKERS,
        queue: int = BCRYPT_QUEUE,
    ) -> None:
        self._users = {user: hashed.encode() for user, hashed in users.items()}
        # two caches, so that a flood of wrong passwords can never evict a good one
        self._granted: OrderedDict[tuple[str, bytes], bool] = OrderedDict()
        self._refused: OrderedDict[tuple[str, bytes], bool] = OrderedDict()
        self._inflight: dict[tuple[str, bytes], asyncio.Future[bool]] = {}
        self._workers = workers
        self._queue = queue
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bcrypt")
        cost = max((_cost(h) for h in self._users.values()), default=10)
        self._dummy = self._pool.submit(bcrypt.hashpw, b"no such user", bcrypt.gensalt(cost))
        self.bcrypt_checks = 0
        self.waiting = 0
        """Requests waiting for a check now (for tests and debugging)."""

    async def check(self, authorization: str | None) -> bool:
        """Whether the header carries a configured user and that user's password.

        Raises :class:`AuthBusy` when the check would have to wait behind too many others.
        """
        credentials = _basic_credentials(authorization)
        if credentials is None:
            return False
        user, password = credentials
        key = (user, hashlib.sha256(password).digest())
        for cache in (self._granted, self._refused):
            if key in cache:
                cache.move_to_end(key)
                return cache[key]
        running = self._inflight.get(key)
        if running is None:
            if len(self._inflight) >= self._workers + self._queue:
                raise AuthBusy
            running = asyncio.ensure_future(self._bcrypt(user, password))
            self._inflight[key] = running
            running.add_done_callback(lambda done: self._finished(key, done))
        self.waiting += 1
        try:
            return await asyncio.shield(running)  # a client that leaves does not cancel it
        finally:
            self.waiting -= 1

    def _finished(self, key: tuple[str, bytes], done: asyncio.Future[bool]) -> None:
        del self._inflight[key]
        if done.cancelled() or done.exception() is not None:
            return
        cache = self._granted if done.result() else self._refused
        cache[key] = done.result()
        if len(cache) > CACHE_SIZE:
            cache.popitem(last=False)

    async def _bcrypt(self, user: str, password: bytes) -> bool:
        hashed = self._users.get(user)
        self.bcrypt_checks += 1
        loop = asyncio.get_running_loop()
        if hashed is None:
            dummy = await asyncio.wrap_future(self._dummy)
            await loop.run_in_executor(self._pool, _checkpw, password, dummy)
            return False
        return await loop.run_in_executor(self._pool, _checkpw, password, hashed)


def _basic_credentials(authorization: str | None) -> tuple[str, bytes] | None:
    """(user, password bytes) of a Basic authorization header, or None."""
    scheme, _, encoded = (authorization or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        raw = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = raw.partition(b":")
    if not sep:
        return None
    try:
        return user.decode("utf-8"), password
    except UnicodeDecodeError:
        return None


def basic_auth_middleware(auth: BasicAuth) -> Middleware:
    """401 with a Basic challenge unless the request authenticates (``/healthz`` stays open)."""

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            ok = request.path in OPEN_PATHS or await auth.check(
                request.headers.get("Authorization")
            )
        except AuthBusy:
            return web.Response(
                status=503,
                text="Service Unavailable: too many password checks waiting\n",
                headers={"Retry-After": "1"},
            )
        if ok:
            return await handler(request)
        return web.Response(
            status=401,
            text="Unauthorized\n",
            headers={"WWW-Authenticate": f'Basic realm="{REALM}"'},
        )

    return authenticate
