"""A target's HTTP access to its provider: auth, timeouts, retries, rate limit, size limit.

Transient failures (timeouts, refused connections, HTTP 5xx and 429, cut-off
bodies) are retried within the poll with exponential backoff and full jitter,
honouring ``Retry-After``, and never past the poll's own deadline. Every
failure that remains becomes a :class:`PollError` with its reason; nothing
raised here carries the API key.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import orjson
import structlog
from pydantic import SecretStr

from exporter.errors import PollError, Reason, brief

_SNIPPET = 300
_EPOCH_THRESHOLD = 1e9
"""A rate-limit reset value above this is a unix time; below, seconds from now."""

log = structlog.get_logger("exporter.fetch")


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


class PageFetcher:
    """Fetches JSON pages of one list endpoint for one poll, counting requests and pages.

    Safe to call concurrently (e.g. several pages with ``asyncio.gather``).
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
    ) -> None:
        self._session = session
        self._url = url
        self._headers = {"Authorization": f"Bearer {key.get_secret_value()}"}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_pages = max_pages
        self._max_bytes = max_bytes
        self._deadline = deadline
        self._limiter = limiter or RateLimiter(0)
        self._retry = retry or RetryPolicy()
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._started = 0
        self.requests: Counter[str] = Counter()
        self.pages = 0
        self.retries = 0
        self.rate_limit = RateLimitInfo()
        self.upstream_errors: list[str] = []

    def report_upstream_errors(self, messages: list[str]) -> None:
        """Record errors the provider listed in an otherwise good answer (logged and counted)."""
        self.upstream_errors.extend(messages)

    async def get_json(self, params: Mapping[str, str] | None = None) -> Any:
        """GET the endpoint with ``params`` and return the decoded JSON body."""
        if self._started >= self._max_pages:
            raise PollError(
                Reason.TOO_MANY_PAGES,
                f"stopped after max_pages={self._max_pages} pages without reaching the end",
            )
        self._started += 1
        query = dict(params or {})
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
                    url=self._url,
                    attempt=attempt,
                    reason=exc.reason.value,
                    error=exc.message,
                    delay_s=round(delay, 3),
                )
                await asyncio.sleep(delay)
                attempt += 1
                continue
            self.pages += 1
            try:
                return orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise PollError(Reason.DECODE, f"response is not valid JSON: {exc}") from None

    def _retry_delay(self, exc: PollError, attempt: int) -> float | None:
        """How long to wait before retrying, or None when the error is final."""
        if not exc.retryable or attempt >= self._retry.attempts:
            return None
        delay = self._retry.backoff(attempt, self._rng)
        if exc.retry_after is not None:
            delay = exc.retry_after
        if self._deadline is not None and time.monotonic() + delay >= self._deadline:
            if exc.retry_after is not None:
                exc.message += f" (Retry-After {exc.retry_after:g}s is past the poll's deadline)"
            return None
        return delay

    async def _get_once(self, query: dict[str, str]) -> bytes:
        try:
            async with self._session.get(
                self._url,
                params=query,
                headers=self._headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                self.requests[str(response.status)] += 1
                self._note_rate_limit(response.headers)
                body = await self._read(response)
                if response.status >= 300:
                    raise _status_error(response.status, body, response.headers)
                return body
        except TimeoutError:
            raise PollError(
                Reason.TIMEOUT,
                f"no complete answer within {self._timeout.total:g}s",
                retryable=True,
            ) from None
        except aiohttp.ClientPayloadError as exc:
            raise PollError(
                Reason.DECODE, f"incomplete response body: {exc}", retryable=True
            ) from None
        except aiohttp.ClientResponseError as exc:
            raise PollError(Reason.DECODE, f"invalid HTTP response: {exc.message}") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise PollError(
                Reason.CONNECT, f"cannot reach {self._url}: {exc}", retryable=True
            ) from None

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        length = response.content_length
        if length is not None and length > self._max_bytes:
            raise PollError(Reason.TOO_LARGE, self._too_large())
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(256 * 1024):
            size += len(chunk)
            if size > self._max_bytes:
                raise PollError(Reason.TOO_LARGE, self._too_large())
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self) -> str:
        return f"response larger than max_response_bytes={self._max_bytes}"

    def _note_rate_limit(self, headers: Mapping[str, str]) -> None:
        remaining = _number(headers, "X-RateLimit-Remaining", "RateLimit-Remaining")
        reset = _number(headers, "X-RateLimit-Reset", "RateLimit-Reset")
        if remaining is None and reset is None:
            return
        if reset is not None and reset < _EPOCH_THRESHOLD:
            reset += time.time()
        self.rate_limit = RateLimitInfo(remaining=remaining, reset=reset)


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
    if text.isdigit():
        seconds = float(text)
    else:
        try:
            when = parsedate_to_datetime(text)
            seconds = max(0.0, when.timestamp() - (time.time() if now is None else now))
        except (TypeError, ValueError, OverflowError):
            return None
    return seconds if seconds <= limit else None


def _status_error(status: int, body: bytes, headers: Mapping[str, str]) -> PollError:
    if 300 <= status < 400:
        where = headers.get("Location", "nowhere")
        return PollError(
            Reason.HTTP_4XX, f"HTTP {status}: redirect to {where} not followed (check base_url)"
        )
    detail = _error_detail(body)
    message = f"HTTP {status}" + (f": {detail}" if detail else "")
    if status in (401, 403):
        return PollError(Reason.AUTH, message + " (check the target's API key)")
    wait = retry_after(headers.get("Retry-After"))
    if status >= 500:
        return PollError(Reason.HTTP_5XX, message, retryable=True, retry_after=wait)
    if status == 429:
        return PollError(Reason.HTTP_4XX, message, retryable=True, retry_after=wait)
    return PollError(Reason.HTTP_4XX, message)


def _error_detail(body: bytes) -> str:
    """The human part of an error body: ``details[].message``, ``detail``, ``error`` or text."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:_SNIPPET].decode("utf-8", "replace").strip()
    parts: list[str] = []
    if isinstance(data, dict):
        details = data.get("details")
        if isinstance(details, list):
            parts = [brief(d.get("message")) for d in details if isinstance(d, dict)]
        detail = data.get("detail")
        if not parts and isinstance(detail, list):
            parts = [brief(d.get("msg")) for d in detail if isinstance(d, dict)]
        elif not parts and detail is not None:
            parts = [brief(detail)]
        errors = data.get("errors")
        if not parts and isinstance(errors, list):
            parts = [
                brief(e.get("message", e)) if isinstance(e, dict) else brief(e) for e in errors
            ]
        if not parts and data.get("error") is not None:
            parts = [brief(data["error"])]
        elif isinstance(data.get("error"), str) and parts:
            parts.insert(0, data["error"] + ":")
    return " ".join(parts)[:_SNIPPET]
