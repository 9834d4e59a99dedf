"""Reusable pydantic types and the base of every target's config model."""

from __future__ import annotations

import asyncio
import os
import re
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError
from pathlib import Path
from typing import Annotated, Any, ClassVar
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)

from exporter.core.durations import parse_duration
from exporter.core.files import RefusedFileError, read_regular_file
from exporter.core.logs import REDACTOR
from exporter.core.records import Phase
from exporter.upstream.proxies import Proxy, ProxyError, environment_proxy, parse_proxy
from exporter.upstream.tls import ClientTLS, TLSFileError, check_file, client_tls
from exporter.upstream.transport import Transport

Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds, written as a number or as ``500ms``/``30s``/``5m``/``1h``/``1d``/``1m30s``."""

PositiveDuration = Annotated[Duration, Field(gt=0, le=366 * 86400)]
"""A duration above zero and at most a year."""

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

KEY_FILE_MAX_BYTES = 64 * 1024
"""The largest ``api_key_file`` accepted: keys are short, and each poll reads the file again."""

KEY_FILE_TIMEOUT = 5.0
"""How long reading an ``api_key_file`` may take before it is a ``key`` error (a hung mount)."""

_KEY_READERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="key-file")
_PENDING: dict[Path, Future[str]] = {}
_PENDING_LOCK = threading.Lock()
"""Key files are read here, never on the event loop; two threads, so a hung mount costs at
most two and every later read times out instead of piling up threads."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_KEY_LIKE_RUN = re.compile(r"[A-Za-z0-9]{12,}")


def shown(value: str) -> str:
    """A key-source setting (``api_key_env``, ``api_key_file``) as messages may print it.

    In full when it looks like a name or path; otherwise (a key pasted into the wrong field,
    such as ``tr_prod_…``, which is also a valid variable name) only the part before the
    first key-like run of characters, and the length.
    """
    for match in _KEY_LIKE_RUN.finditer(value):
        run = match.group()
        has_digit = any(c.isdigit() for c in run)
        has_alpha = any(c.isalpha() for c in run)
        mixed_case = run != run.lower() and run != run.upper()
        if (has_digit and has_alpha) or (mixed_case and len(run) >= 16):
            head = value[: min(match.start(), 12)]
            return f"{head}… ({len(value)} characters, not shown: it may be a key)"
    return value


def _one_line(value: str, source: str) -> str:
    """``value`` when it can go into an HTTP header; a key with CR, LF, NUL is refused."""
    if _CONTROL.search(value):
        raise KeyUnavailableError(
            f"{source} contains a control character (CR, LF, NUL, ...): "
            "a key is one line of printable text"
        )
    return value


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"base_url must be an http:// or https:// URL with a host, got {value!r}")
    if parts.username is not None or parts.password is not None:
        # never echo it: the credentials may be a key
        raise ValueError(
            "base_url must not hold credentials (user:password@); the key goes in api_key, "
            "api_key_env or api_key_file"
        )
    return value.rstrip("/")


HttpUrl = Annotated[str, AfterValidator(_http_url)]
TargetName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")]


class Model(BaseModel):
    """Strict model: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class PerSession(Model):
    """Opt-in per-session series, capped: the ``max_series`` oldest sessions in ``phases``."""

    enabled: bool = False
    max_series: Annotated[int, Field(ge=1, le=10_000)] = 100
    phases: Annotated[frozenset[Phase], Field(min_length=1)] = frozenset(
        {Phase.PENDING, Phase.LIVE}
    )


class ProxyURL(SecretStr):
    """A ``proxy_url``: shown with its password masked (``http://xxxxx@host:port``)."""

    def _display(self) -> str:
        return self.proxy.shown

    @property
    def proxy(self) -> Proxy:
        """The parsed proxy (validated when the config was loaded)."""
        return parse_proxy(self.get_secret_value(), "proxy_url")


def _proxy_url(value: ProxyURL) -> ProxyURL:
    try:
        value.proxy  # noqa: B018 - parsed to check it; the error never holds the password
    except ProxyError as exc:
        raise ValueError(str(exc)) from None
    return value


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
"""An HTTP header name (RFC 9110 token)."""
RESERVED_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "host",
        "user-agent",
        "content-length",
        "transfer-encoding",
        "connection",
        "te",
        "upgrade",
        "keep-alive",
        "trailer",
    }
)
"""Headers ``headers:`` cannot set: the key's, the proxy's, the User-Agent, and those the
HTTP client owns."""


def _header_value(value: SecretStr) -> SecretStr:
    if _CONTROL.search(value.get_secret_value().replace("\t", "")):
        raise ValueError("a header value must be one line (no CR, LF, NUL or other control)")
    return value


HeaderValue = Annotated[SecretStr, AfterValidator(_header_value)]


class TLSConfig(Model):
    """TLS to the provider, with the keys of Prometheus' ``tls_config``; files read at load."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    server_name: Annotated[str, Field(min_length=1, max_length=253)] | None = None
    insecure_skip_verify: bool = False
    _client: ClientTLS | None = PrivateAttr(default=None)

    @field_validator("ca_file", "cert_file", "key_file")
    @classmethod
    def _readable(cls, value: Path | None, info: Any) -> Path | None:
        if value is not None:
            try:
                check_file(value, info.field_name)
            except TLSFileError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _context(self) -> TLSConfig:
        try:
            self._client = client_tls(
                ca_file=self.ca_file,
                cert_file=self.cert_file,
                key_file=self.key_file,
                server_name=self.server_name,
                insecure_skip_verify=self.insecure_skip_verify,
            )
        except TLSFileError as exc:
            raise ValueError(str(exc)) from None
        return self

    @property
    def client(self) -> ClientTLS:
        """The client context, built when the config was loaded."""
        assert self._client is not None
        return self._client


class TargetBase(Model):
    """What every target has, whatever its provider; providers subclass it with their options."""

    default_base_url: ClassVar[str]
    auth_header: ClassVar[str] = "Authorization"
    """The header the provider's key travels in (``headers:`` may not set it)."""

    name: TargetName
    base_url: HttpUrl | None = None
    api_key_env: str | None = None
    api_key_file: Path | None = None
    api_key: SecretStr | None = None
    timeout: PositiveDuration = 10.0
    poll_interval: PositiveDuration | None = None
    stale_after: PositiveDuration | None = None
    poll_timeout: PositiveDuration | None = None
    max_pages: Annotated[int, Field(ge=1)] = 1000
    max_response_bytes: Annotated[int, Field(ge=1024)] = 16 * 1024 * 1024
    per_session: PerSession = PerSession()
    max_label_values: Annotated[int, Field(ge=1, le=1000)] = 20
    rate_limit: Annotated[float, Field(ge=0)] = 20.0
    retries: Annotated[int, Field(ge=0, le=10)] = 2
    price_per_session_hour: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    """What one session-hour costs on this account, in its own currency; None: no price."""
    proxy_url: Annotated[ProxyURL, AfterValidator(_proxy_url)] | None = None
    """An http:// forward proxy for this target; overrides HTTPS_PROXY/HTTP_PROXY/NO_PROXY."""
    tls: TLSConfig | None = None
    headers: dict[str, HeaderValue] = Field(default_factory=dict)
    """Extra request headers (values are shown masked, as they may be credentials)."""
    _transport: Transport | None = PrivateAttr(default=None)

    @field_validator("headers")
    @classmethod
    def _headers_allowed(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        seen: dict[str, str] = {}
        for name in value:
            if not _TOKEN.fullmatch(name):
                raise ValueError(f"header name {name!r} is not a valid HTTP header name")
            folded = name.lower()
            if folded in RESERVED_HEADERS or folded == cls.auth_header.lower():
                raise ValueError(_reserved(name, cls.auth_header))
            if folded in seen:
                raise ValueError(f"header {name!r} is given twice (as {seen[folded]!r})")
            seen[folded] = name
        return value

    @field_validator("api_key_env")
    @classmethod
    def _env_is_set(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.fullmatch(value):
            # never echo it: a value that is not a variable name is often the key itself
            raise ValueError(
                "api_key_env must be the NAME of an environment variable (letters, digits, _), "
                "not the key; use api_key or api_key_file for the key itself"
            )
        if value is not None:
            _env_key(value)
        return value

    @field_validator("api_key")
    @classmethod
    def _key_not_empty(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("api_key is empty")
        if value is not None:
            _one_line(value.get_secret_value().strip(), "api_key")
        return value

    @field_validator("api_key_file")
    @classmethod
    def _file_is_readable(cls, value: Path | None) -> Path | None:
        if value is not None:
            _read_key_file(value)
        return value

    @model_validator(mode="after")
    def _exactly_one_key(self) -> TargetBase:
        given = [
            key
            for key in ("api_key_env", "api_key_file", "api_key")
            if getattr(self, key) is not None
        ]
        if len(given) != 1:
            found = ", ".join(given) if given else "none"
            raise ValueError(
                f"set exactly one of api_key_env, api_key_file, api_key (found: {found})"
            )
        return self

    @model_validator(mode="after")
    def _route(self) -> TargetBase:
        """The transport, built now (once per load): the proxy from ``proxy_url`` or the
        environment as it is at this load, the TLS context, the headers."""
        if self.proxy_url is not None:
            proxy: Proxy | None = self.proxy_url.proxy
        else:
            try:
                proxy = environment_proxy(self.url, os.environ)
            except ProxyError as exc:
                raise ValueError(f"{exc} (the environment's proxy for {self.url})") from None
        # the last line of defence, as for keys: proxy credentials and header values (an
        # upstream may echo a gateway token in an error body) never reach a log or a message
        for secret in (
            *(proxy.credentials if proxy is not None else ()),
            *(v.get_secret_value() for v in self.headers.values()),
        ):
            REDACTOR.add(secret)
        self._transport = Transport(
            proxy=proxy,
            tls=self.tls.client if self.tls is not None else None,
            headers=tuple((k, v.get_secret_value()) for k, v in self.headers.items()),
        )
        return self

    @property
    def transport(self) -> Transport:
        """How this target's requests travel (proxy, TLS, extra headers), built at load."""
        assert self._transport is not None
        return self._transport

    @property
    def url(self) -> str:
        """The server url: ``base_url`` or the provider's public default."""
        return self.base_url or self.default_base_url

    def secret(self) -> SecretStr:
        """Resolve the API key now (env and file are read on each call, so rotation works).

        A key file is read in a worker thread, bounded by :data:`KEY_FILE_TIMEOUT`; this call
        waits for it, so on the event loop use :meth:`resolve_secret`.
        """
        if self.api_key is not None:
            return SecretStr(self.api_key.get_secret_value().strip())
        if self.api_key_env is not None:
            return SecretStr(_env_key(self.api_key_env))
        assert self.api_key_file is not None
        return SecretStr(_read_key_file(self.api_key_file))

    async def resolve_secret(self) -> SecretStr:
        """:meth:`secret` without blocking the event loop (a key file is read off it)."""
        if self.api_key_file is None:
            return self.secret()
        path = self.api_key_file
        future = asyncio.wrap_future(_submit(path))
        try:
            return SecretStr(await asyncio.wait_for(future, KEY_FILE_TIMEOUT))
        except TimeoutError:
            raise _read_timeout(path) from None


def _reserved(name: str, auth_header: str) -> str:
    folded = name.lower()
    if folded == auth_header.lower() or folded == "authorization":
        return (
            f"header {name!r} carries the provider's key: set it with api_key, api_key_env "
            "or api_key_file, never in headers"
        )
    if folded == "proxy-authorization":
        return f"header {name!r}: give the proxy's credentials as user:password@ in proxy_url"
    if folded == "user-agent":
        return f"header {name!r}: every request is sent as session-exporter/<version>"
    return f"header {name!r} is set by the HTTP client and cannot be replaced"


class KeyUnavailableError(ValueError):
    """The configured key source cannot be read (message never contains the key)."""


def _env_key(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise KeyUnavailableError(
            f"environment variable {shown(name)} named by api_key_env is unset or empty"
        )
    return _one_line(value, f"environment variable {shown(name)}")


def _submit(path: Path) -> Future[str]:
    """A read of ``path`` in a worker thread; refused while an earlier read of it still hangs.

    A read that never returns (a hung mount) keeps its worker: without this, two such reads
    would take both workers, and every other target's key file would wait behind them.
    """
    with _PENDING_LOCK:
        earlier = _PENDING.get(path)
        if earlier is not None and not earlier.done():
            raise _read_timeout(path)
        future = _KEY_READERS.submit(_read_key_file_now, path)
        _PENDING[path] = future
    return future


def _read_key_file(path: Path) -> str:
    """The key in ``path``, read in a worker thread within :data:`KEY_FILE_TIMEOUT`."""
    future = _submit(path)
    try:
        return future.result(timeout=KEY_FILE_TIMEOUT)
    except FutureTimeoutError:
        raise _read_timeout(path) from None


def _read_timeout(path: Path) -> KeyUnavailableError:
    return KeyUnavailableError(
        f"api_key_file {shown(str(path))}: not read within {KEY_FILE_TIMEOUT:g}s"
    )


def _read_key_file_now(path: Path) -> str:
    """The key in ``path``: a regular file of at most :data:`KEY_FILE_MAX_BYTES`.

    Opened without blocking and checked before any read, so a FIFO (which would wait for a
    writer), a device such as ``/dev/zero`` (endless) or a directory is refused at once.
    """
    name = shown(str(path))
    try:
        data = read_regular_file(path, max_bytes=KEY_FILE_MAX_BYTES)
    except RefusedFileError as exc:
        if exc.kind == "too_big":
            raise KeyUnavailableError(_too_big(name)) from None
        if exc.kind == "not_regular":
            raise KeyUnavailableError(
                f"api_key_file {name} is not a regular file ({exc.detail})"
            ) from None
        raise KeyUnavailableError(f"cannot read api_key_file {name}: {exc.detail}") from None
    try:
        value = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise KeyUnavailableError(f"api_key_file {name} is not UTF-8 text") from None
    if not value:
        raise KeyUnavailableError(f"api_key_file {name} is empty")
    return _one_line(value, f"api_key_file {name}")


def _too_big(name: str) -> str:
    return f"api_key_file {name} is larger than {KEY_FILE_MAX_BYTES // 1024} KiB: not a key"
