"""A target's HTTP access to its provider: auth, timeouts, size limit, page guard, errors."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson
from pydantic import SecretStr

from exporter.errors import PollError, Reason

_SNIPPET = 300


class PageFetcher:
    """Fetches JSON pages of one list endpoint for one poll, counting requests and pages.

    Every failure becomes a :class:`PollError` with its reason; nothing it raises
    carries the API key.
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
    ) -> None:
        self._session = session
        self._url = url
        self._headers = {"Authorization": f"Bearer {key.get_secret_value()}"}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_pages = max_pages
        self._max_bytes = max_bytes
        self.requests: Counter[str] = Counter()
        self.pages = 0
        self.upstream_errors: list[str] = []

    def report_upstream_errors(self, messages: list[str]) -> None:
        """Record errors the provider listed in an otherwise good answer (logged and counted)."""
        self.upstream_errors.extend(messages)

    async def get_json(self, params: Mapping[str, str] | None = None) -> Any:
        """GET the endpoint with ``params`` and return the decoded JSON body."""
        if self.pages >= self._max_pages:
            raise PollError(
                Reason.TOO_MANY_PAGES,
                f"stopped after max_pages={self._max_pages} pages without reaching the end",
            )
        try:
            async with self._session.get(
                self._url,
                params=dict(params or {}),
                headers=self._headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                self.requests[str(response.status)] += 1
                body = await self._read(response)
                if response.status >= 300:
                    raise _status_error(response.status, body)
        except TimeoutError:
            raise PollError(
                Reason.TIMEOUT, f"no complete answer within {self._timeout.total:g}s"
            ) from None
        except aiohttp.ClientPayloadError as exc:
            raise PollError(Reason.DECODE, f"incomplete response body: {exc}") from None
        except aiohttp.ClientResponseError as exc:
            raise PollError(Reason.DECODE, f"invalid HTTP response: {exc.message}") from None
        except aiohttp.ClientError as exc:
            raise PollError(Reason.CONNECT, f"cannot reach {self._url}: {exc}") from None
        except OSError as exc:
            raise PollError(Reason.CONNECT, f"cannot reach {self._url}: {exc}") from None
        self.pages += 1
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise PollError(Reason.DECODE, f"response is not valid JSON: {exc}") from None

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


def _status_error(status: int, body: bytes) -> PollError:
    detail = _error_detail(body)
    message = f"HTTP {status}" + (f": {detail}" if detail else "")
    if status in (401, 403):
        return PollError(Reason.AUTH, message + " (check the target's API key)")
    if status >= 500:
        return PollError(Reason.HTTP_5XX, message)
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
            parts = [str(d.get("message")) for d in details if isinstance(d, dict)]
        detail = data.get("detail")
        if not parts and isinstance(detail, list):
            parts = [str(d.get("msg")) for d in detail if isinstance(d, dict)]
        elif not parts and detail is not None:
            parts = [str(detail)]
        errors = data.get("errors")
        if not parts and isinstance(errors, list):
            parts = [str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors]
        if not parts and data.get("error") is not None:
            parts = [str(data["error"])]
        elif isinstance(data.get("error"), str) and parts:
            parts.insert(0, data["error"] + ":")
    return " ".join(parts)[:_SNIPPET]
