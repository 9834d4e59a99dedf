"""A target's HTTP access to its provider: auth, timeouts, redirects, retries, rate limit, size.

Transient failures (timeouts, refused connections, cut-off bodies, HTTP 408, 409, 429
and 5xx, or any status the server marks ``x-should-retry: true``) are retried within the
poll with exponential backoff and full jitter, honouring ``retry-after-ms``, then
``Retry-After``, then (on a 429) the provider's rate-limit reset, and never past the
poll's own deadline. Redirects are followed by hand, only within the target's origin
(see :func:`redirect_refusal`), so the key never leaves it. Every failure that remains
becomes a :class:`PollError` with its reason, said in plain words (``connection refused``,
not the HTTP client's internals); nothing raised here carries the API key or a proxy's
password. A target's :class:`~exporter.upstream.transport.Transport` says which proxy, TLS
context and extra headers its requests use.

What differs per provider comes in as callables (the provider module's hooks): how an
error body reads, what unit a rate-limit reset has, and extra request headers.
"""

from __future__ import annotations

import asyncio
import errno
import math
import random
import re
import ssl
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

import aiohttp
import orjson
import structlog
from multidict import CIMultiDict
from pydantic import SecretStr
from yarl import URL

from exporter.upstream.errors import PollError, Reason, brief, clip
from exporter.upstream.proxies import Proxy
from exporter.upstream.tls import handshake_failure, verify_failure
from exporter.upstream.transport import DIRECT, Transport

_SNIPPET = 300
ERROR_BODY_BYTES = 64 * 1024
"""How much of an answer that is not a 2xx is read: its detail is in the first bytes, and a
hostile error body (gzip inflating to gigabytes) must not be read, let alone decoded, whole."""
_EPOCH_THRESHOLD = 1e9
"""A rate-limit reset value above this is a unix time; below, seconds from now."""

REDIRECTS = frozenset({301, 302, 303, 307, 308})
"""The statuses that are followed (within the origin); 301/302/303 become a GET, as we GET."""
MAX_REDIRECTS = 5
"""Redirect hops followed per request; one more fails the poll."""
RETRIED_STATUSES = frozenset({408, 409, 429})
"""4xx statuses retried like a 5xx (request timeout, lock timeout, rate limit)."""
TRACE_HEADERS = (
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "retry-after",
    "retry-after-ms",
    "x-should-retry",
)
"""The answer headers a request trace shows (rate limit and retry only)."""
_TRACE_VALUE = 100

ErrorDetail = Callable[[bytes], str]
"""A provider's reading of an error body: the human part, or ``""``."""
ResetRule = Callable[[Mapping[str, str], float], float | None]
"""A provider's rate-limit reset as a unix time in seconds, from the headers and now."""

log = structlog.get_logger("exporter.upstream.fetch")


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How often and how patiently one request is retried within a poll."""

    attempts: int = 3
    base: float = 0.5
    cap: float = 8.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**(attempt-1))]."""
        return rng.uniform(0.0, min(self.cap, self.base * 2 ** (attempt - 1)))


class RateLimiter:
    """At most ``rate`` requests per second for one target, across polls and concurrent pages.

    Each caller reserves the next free slot, so concurrent callers are spaced
    out rather than released together. A rate of 0 means no limit.
    """

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0

    async def acquire(self) -> None:
        """Wait for this caller's slot."""
        if not self._interval:
            return
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + self._interval
        if slot > now:
            await asyncio.sleep(slot - now)


@dataclass(frozen=True, slots=True)
class RateLimitInfo:
    """What the provider's rate-limit headers said on its latest answer."""

    remaining: float | None = None
    reset: float | None = None

    @property
    def seen(self) -> bool:
        """Whether the provider sent any rate-limit header."""
        return self.remaining is not None or self.reset is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class Exchange:
    """One HTTP answer, or one attempt that got none, as a request trace shows it; nothing in
    it can hold the API key."""

    method: str
    url: str
    """The URL requested, with its query string, without user info or the key."""
    status: int | None
    """The answer's status; None when the attempt got no answer (see ``error``)."""
    elapsed: float
    """Seconds from sending the request to the end of its body (or to the failure)."""
    body_bytes: int
    """Bytes of body received (up to the size limit)."""
    rate_limit: tuple[tuple[str, str], ...]
    """The rate-limit and retry headers of the answer (``TRACE_HEADERS``), lower-cased."""
    redirects: int
    """Redirect hops followed before this request (0: the target's own URL)."""
    error: str | None = None
    """Why an attempt got no answer (a refused connection, a timeout, TLS), else None."""


Params = Mapping[str, str] | Sequence[tuple[str, str]]
"""A request's query parameters: a mapping, or pairs (a parameter may repeat)."""
_Query = list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Answer:
    """A 2xx answer's body and headers."""

    body: bytes
    headers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class _Answer:
    url: URL
    status: int
    headers: Mapping[str, str]
    body: bytes


class _StatusError(PollError):
    """A failed status, with what the server said about waiting (for the deadline message)."""

    def __init__(
        self,
        reason: Reason,
        message: str,
        *,
        retryable: bool = False,
        wait: tuple[float, str] | None = None,
    ) -> None:
        super().__init__(
            reason, message, retryable=retryable, retry_after=wait[0] if wait else None
        )
        self.wait_source = wait[1] if wait else None


class PageFetcher:
    """Fetches pages of one list endpoint for one poll, counting requests and pages.

    Safe to call concurrently (e.g. several pages with ``asyncio.gather``). ``transport``
    holds the target's proxy, TLS and extra headers; ``headers`` (the provider's) are sent
    on every request after those, then ``Authorization`` (which neither can replace);
    ``error_detail`` and ``rate_limit_reset`` are the provider's readings of error bodies
    and of the reset header; ``on_response`` sees every HTTP answer (a request trace);
    ``clock`` is the wall clock for reset arithmetic; ``auth`` is the header the key is sent
    in and the text before the key (``Authorization: Bearer <key>`` unless a provider says
    otherwise).
    """

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession,
        url: str,
        key: SecretStr,
        timeout: float,
        max_pages: int,
        max_bytes: int,
        deadline: float | None = None,
        limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        rng: random.Random | None = None,
        headers: Mapping[str, str] | None = None,
        transport: Transport = DIRECT,
        error_detail: ErrorDetail | None = None,
        rate_limit_reset: ResetRule | None = None,
        on_response: Callable[[Exchange], None] | None = None,
        clock: Callable[[], float] = time.time,
        auth: tuple[str, str] = ("Authorization", "Bearer "),
    ) -> None:
        self._session = session
        self._url = URL(url)
        self._key = key.get_secret_value()
        header, prefix = auth
        merged: CIMultiDict[str] = CIMultiDict()
        for name, value in [*transport.headers, *(headers or {}).items()]:
            merged[name] = value  # replaces any earlier spelling of the same name
        merged.popall("Authorization", None)
        merged.popall(header, None)
        merged[header] = f"{prefix}{self._key}"
        self._headers = merged
        self._transport = transport
        self._options = transport.request_options()
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_pages = max_pages
        self._max_bytes = max_bytes
        self._deadline = deadline
        self._limiter = limiter or RateLimiter(0)
        self._retry = retry or RetryPolicy()
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._error_detail = error_detail or plain_error_detail
        self._reset_rule = rate_limit_reset or default_rate_limit_reset
        self._on_response = on_response
        self._clock = clock
        self._started = 0
        self.requests: Counter[str] = Counter()
        self.pages = 0
        self.retries = 0
        self.rate_limit = RateLimitInfo()
        self.upstream_errors: list[str] = []
        self.upstream_errors_more = 0
        """Errors the provider listed past those kept in :attr:`upstream_errors` (counted)."""

    def report_upstream_errors(self, messages: list[str], *, more: int = 0) -> None:
        """Record errors the provider listed in an otherwise good answer (logged and counted);
        ``more``: how many further ones it listed, counted but not kept."""
        self.upstream_errors.extend(messages)
        self.upstream_errors_more += more

    async def get_body(self, params: Params | None = None) -> bytes:
        """GET the endpoint with ``params`` and return the raw body of its 2xx answer.

        Redirects are followed (within the origin), failures retried; the body is within
        ``max_bytes``. Counts one page.
        """
        return (await self.get(params)).body

    async def get(self, params: Params | None = None) -> Answer:
        """:meth:`get_body`, with the answer's headers (a cursor may be in one).

        ``params`` is a mapping, or pairs where a parameter is repeated (``states=a&states=b``).
        """
        if self._started >= self._max_pages:
            raise PollError(
                Reason.TOO_MANY_PAGES,
                f"stopped after max_pages={self._max_pages} pages without reaching the end",
            )
        self._started += 1
        query: _Query = list(params.items() if isinstance(params, Mapping) else params or ())
        attempt = 1
        while True:
            await self._limiter.acquire()
            try:
                body = await self._get_once(query)
            except PollError as exc:
                delay = self._retry_delay(exc, attempt)
                if delay is None:
                    raise
                self.retries += 1
                log.debug(
                    "request.retry",
                    url=str(self._url),
                    attempt=attempt,
                    reason=exc.reason.value,
                    error=exc.message,
                    delay_s=round(delay, 3),
                )
                await asyncio.sleep(delay)
                attempt += 1
                continue
            self.pages += 1
            return Answer(body.body, body.headers)

    def _retry_delay(self, exc: PollError, attempt: int) -> float | None:
        """How long to wait before retrying, or None when the error is final."""
        if not exc.retryable or attempt >= self._retry.attempts:
            return None
        delay = self._retry.backoff(attempt, self._rng)
        if exc.retry_after is not None:
            delay = exc.retry_after
        if self._deadline is not None and time.monotonic() + delay >= self._deadline:
            source = exc.wait_source if isinstance(exc, _StatusError) else None
            if source is not None:
                exc.message += f" ({source} is past the poll's deadline)"
            return None
        return delay

    async def _get_once(self, query: _Query) -> _Answer:
        """One attempt: the request and the redirects it is answered with, to a 2xx body."""
        answer = await self._follow(query)
        if answer.status >= 300:
            raise self._status_error(answer)
        return answer

    async def _follow(self, query: _Query) -> _Answer:
        """The request, then each redirect it is answered with (within the rules)."""
        answer = await self._exchange(self._url, query, 0)
        requested = {str(answer.url)}
        hops = 0
        while answer.status in REDIRECTS:
            target = self._redirect(answer, hops, requested)
            hops += 1
            requested.add(str(target))
            answer = await self._exchange(target, None, hops)
        return answer

    async def _exchange(self, url: URL, query: _Query | None, hops: int) -> _Answer:
        """One HTTP request and its whole (bounded) body; every answer is counted and traced,
        and so is an attempt that gets none (with why)."""
        started = time.monotonic()
        answered = False
        try:
            async with self._session.get(
                url,
                params=query,
                headers=self._headers,
                timeout=self._timeout,
                allow_redirects=False,
                **self._options,
            ) as response:
                answered = True
                self.requests[str(response.status)] += 1
                self._note_rate_limit(response.headers)
                received = [0]
                try:
                    if 200 <= response.status < 300:
                        body = await self._read(response, received)
                    else:
                        body = await _read_prefix(response, received)
                finally:
                    self._trace(response, hops, received[0], time.monotonic() - started)
                return _Answer(response.url, response.status, response.headers, body)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            error = self._failure(exc, url)
            if not answered:
                self._trace_failure(url, query, hops, error, time.monotonic() - started)
            raise error from None

    def _failure(self, exc: BaseException, url: URL) -> PollError:
        """The PollError for a request that raised, in plain words (no client internals)."""
        if isinstance(exc, TimeoutError):
            return PollError(
                Reason.TIMEOUT,
                f"no complete answer within {self._timeout.total:g}s",
                retryable=True,
            )
        proxy = self._transport.proxy
        if proxy is not None and isinstance(
            exc, aiohttp.ClientHttpProxyError | aiohttp.ClientProxyConnectionError
        ):
            return _proxy_failure(exc, proxy, url)
        tls = self._transport.tls
        host = (tls.server_name if tls and tls.server_name else None) or _authority(url)
        tls_failure = _tls_failure(exc, host)
        if tls_failure is not None:
            return tls_failure
        if isinstance(exc, aiohttp.ClientPayloadError):
            return PollError(Reason.DECODE, f"incomplete response body: {exc}", retryable=True)
        if isinstance(exc, aiohttp.ClientResponseError):
            return PollError(Reason.DECODE, f"invalid HTTP response: {exc.message}")
        via = f" (through {proxy.named})" if proxy is not None else ""
        hint = ""
        words = connect_failure(exc)
        if (
            words in _CUT_OFF
            and url.scheme == "https"
            and (tls is None or not tls.client_certificate)
        ):  # how servers refuse a missing client certificate (TLS 1.3: after the handshake)
            hint = " (if it requires a client certificate, set tls.cert_file and tls.key_file)"
        return PollError(
            Reason.CONNECT,
            f"cannot reach {_shown(self._url)}{via}: {words}{hint}",
            retryable=True,
        )

    def _trace_failure(
        self, url: URL, query: _Query | None, hops: int, error: PollError, elapsed: float
    ) -> None:
        if self._on_response is None:
            return
        shown = url.with_query(query) if query else url
        self._on_response(
            Exchange(
                method="GET",
                url=self._scrub(str(shown.with_user(None))),
                status=None,
                elapsed=elapsed,
                body_bytes=0,
                rate_limit=(),
                redirects=hops,
                error=self._scrub(error.message),
            )
        )

    def _trace(
        self, response: aiohttp.ClientResponse, hops: int, size: int, elapsed: float
    ) -> None:
        if self._on_response is None:
            return
        shown = [
            (name, self._scrub(value)[:_TRACE_VALUE])
            for name in TRACE_HEADERS
            if (value := response.headers.get(name)) is not None
        ]
        self._on_response(
            Exchange(
                method="GET",
                url=self._scrub(str(response.url.with_user(None))),
                status=response.status,
                elapsed=elapsed,
                body_bytes=size,
                rate_limit=tuple(shown),
                redirects=hops,
            )
        )

    def _scrub(self, text: str) -> str:
        """``text`` without the key (a server could echo it into a header or a Location)."""
        return text.replace(self._key, "[redacted]") if self._key else text

    def _redirect(self, answer: _Answer, hops: int, requested: set[str]) -> URL:
        """Where a redirect answer leads, or the PollError saying why it is not followed."""
        status = answer.status
        location = answer.headers.get("Location")
        if not location:
            raise PollError(Reason.HTTP_4XX, f"HTTP {status}: redirect without a Location header")
        try:
            target = answer.url.join(URL(location.strip())).with_fragment(None)
        except ValueError:
            raise PollError(
                Reason.HTTP_4XX, f"HTTP {status}: redirect to an invalid Location, not followed"
            ) from None
        shown = _shown(target)
        refusal = redirect_refusal(self._url, target)
        if refusal is not None:
            raise PollError(
                Reason.HTTP_4XX,
                f"HTTP {status}: redirect to {shown} not followed: {refusal} "
                "(the key is only sent to the configured origin; check base_url)",
            )
        if str(target) in requested:
            raise PollError(
                Reason.HTTP_4XX,
                f"HTTP {status}: redirect loop: {shown} was already requested (check base_url)",
            )
        if hops >= MAX_REDIRECTS:
            raise PollError(
                Reason.HTTP_4XX,
                f"HTTP {status}: more than {MAX_REDIRECTS} redirects, the last to {shown} "
                "(check base_url)",
            )
        return target

    def _status_error(self, answer: _Answer) -> PollError:
        status, headers = answer.status, answer.headers
        proxy = self._transport.proxy
        if status == 407 and proxy is not None:  # from the proxy, for a plain http:// target
            return proxy_refusal(proxy, status, "Proxy Authentication Required", answer.url)
        if 300 <= status < 400:
            return PollError(
                Reason.HTTP_4XX,
                f"HTTP {status}: not a redirect the exporter follows (check base_url)",
            )
        detail = self._error_detail(answer.body)
        message = f"HTTP {status}" + (f": {detail}" if detail else "")
        if status in (401, 403):
            return PollError(Reason.AUTH, message + " (check the target's API key)")
        reason = Reason.HTTP_5XX if status >= 500 else Reason.HTTP_4XX
        if not should_retry(status, headers):
            return PollError(reason, message)
        return _StatusError(reason, message, retryable=True, wait=self._server_wait(answer))

    def _server_wait(self, answer: _Answer) -> tuple[float, str] | None:
        """The wait the server asks for, and its source: ``retry-after-ms``, ``Retry-After``,
        then, on a 429, the rate-limit reset; None when it says nothing usable."""
        headers = answer.headers
        millis = _number(headers, "retry-after-ms")
        if millis is not None and math.isfinite(millis) and millis >= 0:
            return millis / 1000.0, f"retry-after-ms {millis:g}"
        now = self._clock()
        seconds = retry_after(headers.get("Retry-After"), now=now)
        if seconds is not None:
            return seconds, f"Retry-After {seconds:g}s"
        if answer.status == 429:
            reset = self._reset_rule(headers, now)
            if reset is not None and reset > now:
                wait = reset - now
                return wait, f"the rate-limit reset in {round(wait, 3):g}s"
        return None

    async def _read(self, response: aiohttp.ClientResponse, received: list[int]) -> bytes:
        length = response.content_length
        if length is not None and length > self._max_bytes:
            raise PollError(Reason.TOO_LARGE, self._too_large())
        if length is not None and "Content-Encoding" not in response.headers:
            body = await response.read()  # the parser stops at Content-Length: within bounds
            received[0] = len(body)
            return body
        chunks: list[bytes] = []
        async for chunk in response.content.iter_chunked(256 * 1024):
            received[0] += len(chunk)
            if received[0] > self._max_bytes:
                raise PollError(Reason.TOO_LARGE, self._too_large())
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self) -> str:
        return f"response larger than max_response_bytes={self._max_bytes}"

    def _note_rate_limit(self, headers: Mapping[str, str]) -> None:
        remaining = _number(headers, "X-RateLimit-Remaining", "RateLimit-Remaining")
        reset = self._reset_rule(headers, self._clock())
        if remaining is None and reset is None:
            return
        self.rate_limit = RateLimitInfo(remaining=remaining, reset=reset)


def _proxy_failure(exc: BaseException, proxy: Proxy, url: URL) -> PollError:
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        return proxy_refusal(proxy, exc.status, exc.message, url)
    return PollError(
        Reason.CONNECT, f"cannot reach {proxy.named}: {connect_failure(exc)}", retryable=True
    )


def proxy_refusal(proxy: Proxy, status: int, message: str, url: URL) -> PollError:
    """The proxy answered instead of the provider: it wants credentials, or it refuses."""
    said = f"HTTP {status}" + (f" {message}" if message else "")
    if status == 407:
        hint = (
            "its credentials are wrong (check user:password in proxy_url)"
            if proxy.url.user is not None
            else "it asks for credentials: give them as user:password@ in proxy_url"
        )
        text = f"{proxy.named} refused the request ({said}): {hint}"
    else:
        text = f"{proxy.named} refused to connect to {_authority(url)} ({said})"
    return PollError(Reason.CONNECT, clip(text, 500), retryable=status >= 500)


async def _read_prefix(response: aiohttp.ClientResponse, received: list[int]) -> bytes:
    """The first :data:`ERROR_BODY_BYTES` of a failed answer's body; the rest is not read (the
    connection is then closed, not reused)."""
    chunks: list[bytes] = []
    while received[0] < ERROR_BODY_BYTES:
        chunk = await response.content.read(ERROR_BODY_BYTES - received[0])
        if not chunk:
            break
        chunks.append(chunk)
        received[0] += len(chunk)
    return b"".join(chunks)[:ERROR_BODY_BYTES]


def should_retry(status: int, headers: Mapping[str, str]) -> bool:
    """Whether a failed status is worth another attempt (not for 401/403: see the caller).

    ``x-should-retry: true|false`` decides when present; else 408, 409, 429 and 5xx are
    retried. 409 is safe to retry because we only GET: nothing is written twice.
    """
    flag = (headers.get("x-should-retry") or "").strip().lower()
    if flag in ("true", "false"):
        return flag == "true"
    return status in RETRIED_STATUSES or status >= 500


def redirect_refusal(origin: URL, target: URL) -> str | None:
    """Why a redirect from a target at ``origin`` to ``target`` is not followed, or None.

    Only the same origin (scheme, host and port) is followed: the key goes nowhere else.
    """
    if origin.scheme == "https" and target.scheme == "http":
        return "it downgrades https to http"
    if target.user is not None or target.password is not None:
        return "it carries credentials in the URL"
    if _origin(target) != _origin(origin):
        return f"it leaves the origin {origin.origin()}"
    return None


def _origin(url: URL) -> tuple[str, str, int | None]:
    return (url.scheme.lower(), (url.host or "").lower(), url.port)


_RESET = "the connection was reset"
_CLOSED = "the server closed the connection without an answer"
_CUT_OFF = frozenset({_RESET, _CLOSED})
_ERRNO_WORDS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: _RESET,
    errno.ETIMEDOUT: "the connection timed out",
    errno.ENETUNREACH: "the network is unreachable",
    errno.EHOSTUNREACH: "no route to the host",
    errno.EPIPE: "the connection was closed while sending",
    errno.EMFILE: "too many open files",
    errno.EADDRNOTAVAIL: "the address is not available",
}
_TYPE_WORDS: tuple[tuple[type[OSError], str], ...] = (
    (ConnectionRefusedError, "connection refused"),
    (ConnectionResetError, _RESET),
    (ConnectionAbortedError, "the connection was aborted"),
    (BrokenPipeError, "the connection was closed while sending"),
)
_TEXT_WORDS = (
    (re.compile(r"Connect call failed|Connection refused", re.I), "connection refused"),
    (
        re.compile(r"Name or service not known|nodename nor servname|name resolution", re.I),
        "the host name does not resolve",
    ),
    (re.compile(r"Network is unreachable", re.I), "the network is unreachable"),
    (re.compile(r"No route to host", re.I), "no route to the host"),
    (re.compile(r"timed out", re.I), "the connection timed out"),
)


def connect_failure(exc: BaseException) -> str:
    """Why a connection failed, in the words the landing page uses: ``connection refused``,
    ``the host name does not resolve``, ... (never ``ssl:default [Connect call failed ...]``)."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "the host name does not resolve"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return _CLOSED
    cause = getattr(exc, "os_error", None) or exc
    text = str(cause)
    words = (
        _ERRNO_WORDS.get(getattr(cause, "errno", None) or -1)
        or next((said for kind, said in _TYPE_WORDS if isinstance(cause, kind)), None)
        or next((said for pattern, said in _TEXT_WORDS if pattern.search(text)), None)
    )
    if words is not None:
        return words
    strerror = getattr(cause, "strerror", None)
    if strerror:
        return str(strerror)[:1].lower() + str(strerror)[1:]
    text = re.sub(r"^Cannot connect to host \S+ ssl:\S+ ", "", text)
    return text or type(exc).__name__


def _tls_failure(exc: BaseException, host: str) -> PollError | None:
    """Reason ``tls`` for a certificate that does not verify or a failed handshake (also
    one the server reports on the first read, as TLS 1.3 does), else None."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return PollError(Reason.TLS, verify_failure(exc.certificate_error, host))
    for candidate in (exc, getattr(exc, "os_error", None), exc.__cause__, exc.__context__):
        if isinstance(candidate, ssl.SSLCertVerificationError):
            return PollError(Reason.TLS, verify_failure(candidate, host))
        if isinstance(candidate, ssl.SSLError):
            return PollError(Reason.TLS, handshake_failure(candidate, host))
    return None


def _authority(url: URL) -> str:
    """``host:port`` of a URL (the port always shown)."""
    host = url.host or ""
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{url.port}" if url.port is not None else host


def _shown(url: URL) -> str:
    """A URL for a message: without user info, query string or fragment."""
    return str(url.with_user(None).with_query(None).with_fragment(None))


def header_number(headers: Mapping[str, str], *names: str) -> float | None:
    """The first of ``names`` present in ``headers`` as a number; None when absent or not one."""
    return _number(headers, *names)


def default_rate_limit_reset(headers: Mapping[str, str], now: float) -> float | None:
    """``X-RateLimit-Reset``/``RateLimit-Reset``: above 1e9 a unix time, else seconds from now."""
    reset = _number(headers, "X-RateLimit-Reset", "RateLimit-Reset")
    if reset is None or not math.isfinite(reset):
        return None
    return reset if reset >= _EPOCH_THRESHOLD else now + reset


def plain_error_detail(body: bytes) -> str:
    """An error body shown as it is: compact JSON or text, cut short (no provider shapes)."""
    body = body[:ERROR_BODY_BYTES]
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        # masked before it is cut (a key echoed across the cut must not leave half of it)
        return clip(body.decode("utf-8", "replace").strip(), _SNIPPET)
    return "" if data is None else brief(data, limit=_SNIPPET)


def _number(headers: Mapping[str, str], *names: str) -> float | None:
    """The first of the ``names`` headers as a finite number; None when absent or not one.

    Only ASCII: ``float()`` would also read other scripts' digits (``"١٢"``), and a value
    no HTTP server sends is treated as absent rather than trusted.
    """
    for name in names:
        value = headers.get(name)
        if value is not None:
            text = value.strip()
            if not text.isascii():
                return None
            try:
                number = float(text)
            except ValueError:
                return None
            return number if math.isfinite(number) else None
    return None


_DELTA_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def retry_after(
    value: str | None, *, now: float | None = None, limit: float = 86400.0
) -> float | None:
    """``Retry-After`` in seconds: delta-seconds or an HTTP-date; None when absent or invalid.

    Invalid includes digits of other scripts (``²``, which ``str.isdigit`` accepts and
    ``float`` refuses), dates that overflow, and anything more than ``limit`` (a day) ahead:
    the request is then retried on the ordinary backoff.
    """
    if value is None:
        return None
    text = value.strip()
    if not text.isascii():
        return None
    if _DELTA_SECONDS.fullmatch(text):
        seconds = float(text)  # the SDKs also read a fraction ("1.5")
    else:
        try:
            when = parsedate_to_datetime(text)
            if when.tzinfo is None:  # "-0000": no zone said, which HTTP dates mean as GMT
                when = when.replace(tzinfo=UTC)
            seconds = max(0.0, when.timestamp() - (time.time() if now is None else now))
        except (TypeError, ValueError, OverflowError):
            return None
    return seconds if seconds <= limit else None
