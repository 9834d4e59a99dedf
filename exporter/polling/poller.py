"""Polling one target: a whole poll into a snapshot, and the loop that repeats it."""

from __future__ import annotations

import asyncio
import ipaddress
import random
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import aiohttp
import structlog

from exporter.core.logs import REDACTOR
from exporter.polling.aggregate import Aggregate, AggregateBuilder
from exporter.polling.state import Store, TargetSnapshot
from exporter.providers import provider_for
from exporter.providers.target import KeyUnavailableError, TargetBase
from exporter.upstream.errors import PollError, Reason
from exporter.upstream.fetch import Exchange, PageFetcher, RateLimiter, RetryPolicy

log = structlog.get_logger("exporter.polling.poller")

JITTER = 0.05
"""Each wait is the poll interval +/- this fraction, so targets do not poll in lockstep."""

INVALID_EXAMPLE_LIMIT = 200
"""The example of an invalid row in the log is cut to this many characters (after masking)."""

BACKOFF_CAP = 300.0
"""The longest wait between polls of a failing target (never shorter than its interval)."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a URL's host name or address) is this machine's loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # any other name, e.g. localhost.example.com, may be anywhere


class TargetPoller:
    """Polls one target and publishes each outcome to the store.

    ``on_response`` sees every HTTP answer (a request trace); ``new_fetcher`` builds each
    poll's :class:`PageFetcher` from its keyword settings (the diagnostic's records bodies).
    """

    def __init__(
        self,
        *,
        target: TargetBase,
        interval: float,
        session: aiohttp.ClientSession,
        store: Store,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        on_response: Callable[[Exchange], None] | None = None,
        new_fetcher: Callable[..., PageFetcher] = PageFetcher,
    ) -> None:
        self.target = target
        self.interval = interval
        self._provider = provider_for(target)
        self._session = session
        self._store = store
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._on_response = on_response
        self._new_fetcher = new_fetcher
        self._url = target.url + self._provider.path
        self._last_crash: str | None = None
        self._limiter = RateLimiter(target.rate_limit)
        self._retry = RetryPolicy(attempts=target.retries + 1)
        host = urlsplit(target.url).hostname or ""
        if target.url.startswith("http://") and not is_loopback(host):
            log.warning(
                "config.plain_http",
                target=target.name,
                host=host,
                note="the API key travels unencrypted; use https",
            )

    async def run(self, *, first_delay: float = 0.0) -> None:
        """Poll forever, every ``interval`` (with jitter), independent of scrapes, the first
        time after ``first_delay`` seconds.

        A target that keeps failing is polled less often (the wait doubles per
        consecutive failure, up to ``BACKOFF_CAP``); one success restores the interval.
        """
        if first_delay > 0:
            await asyncio.sleep(first_delay)
        failures = 0
        while True:
            started = time.monotonic()
            try:
                snapshot = await self.poll()
            except Exception:  # a bug outside the poll body must not end this target's loop
                log.exception("poll.loop_failed", target=self.target.name)
                failures += 1
            else:
                failures = 0 if snapshot.up else failures + 1
            wait = self.next_wait(failures) * (1 + self._rng.uniform(-JITTER, JITTER))
            await asyncio.sleep(max(0.0, wait - (time.monotonic() - started)))

    def next_wait(self, failures: int) -> float:
        """The wait before the next poll after ``failures`` consecutive failed polls."""
        if failures <= 1:
            return self.interval
        return min(self.interval * 2.0 ** (failures - 1), max(self.interval, BACKOFF_CAP))

    async def poll(self) -> TargetSnapshot:
        """Poll once, publish the new snapshot and return it. Never raises but cancellation."""
        started = time.monotonic()
        previous = self._store.snapshots[self.target.name]
        fetcher: PageFetcher | None = None
        aggregate: Aggregate | None = None
        reason: Reason | None = None
        error: str | None = None
        try:
            fetcher = await self._fetcher()
            aggregate = await self._walk(fetcher, previous.counted_until)
        except PollError as exc:
            reason, error = exc.reason, exc.message
        except TimeoutError:
            reason = Reason.TIMEOUT
            error = f"poll did not finish within {self._deadline():g}s"
        except Exception as exc:
            reason, error = Reason.UNEXPECTED, f"{type(exc).__name__}: {exc}"
            if error != self._last_crash:  # the traceback once per distinct error in a row
                log.exception("poll.crashed", target=self.target.name, error=error)
            self._last_crash = error
        duration = time.monotonic() - started
        if reason is not Reason.UNEXPECTED:
            self._last_crash = None
        if error is not None:
            error = REDACTOR.scrub(error)  # a provider may echo the key in its error body
        # the store's snapshot now, not the one read at the start: a reload may have given
        # this target a new price meanwhile (see Supervisor), and the poll must not undo it
        current = self._store.snapshots.get(self.target.name, previous)
        snapshot = current.after_poll(
            finished=self._clock(),
            duration=duration,
            aggregate=aggregate,
            reason=reason,
            error=error,
            requests=fetcher.requests if fetcher else {},
            pages=fetcher.pages if fetcher else 0,
            upstream_errors=(
                len(fetcher.upstream_errors) + fetcher.upstream_errors_more if fetcher else 0
            ),
            retries=fetcher.retries if fetcher else 0,
            rate_limit=fetcher.rate_limit if fetcher else None,
        )
        self._store.publish(snapshot)
        self._log(previous, snapshot)
        if aggregate is not None and any(aggregate.invalid.values()):
            log.warning(
                "poll.invalid_rows",
                target=self.target.name,
                provider=snapshot.provider,
                fields={name: n for name, n in aggregate.invalid.items() if n},
                example=REDACTOR.scrub(aggregate.invalid_example or "")[:INVALID_EXAMPLE_LIMIT],
            )
        if fetcher and fetcher.upstream_errors:
            log.warning(
                "poll.upstream_errors",
                target=self.target.name,
                provider=snapshot.provider,
                count=len(fetcher.upstream_errors) + fetcher.upstream_errors_more,
                errors=fetcher.upstream_errors[:10],
            )
        return snapshot

    async def _fetcher(self) -> PageFetcher:
        try:
            key = await self.target.resolve_secret()  # a key file is read off the loop
        except KeyUnavailableError as exc:
            raise PollError(Reason.KEY, str(exc)) from None
        REDACTOR.add(key.get_secret_value())
        return self._new_fetcher(
            session=self._session,
            url=self._url,
            key=key,
            timeout=self.target.timeout,
            max_pages=self.target.max_pages,
            max_bytes=self.target.max_response_bytes,
            deadline=time.monotonic() + self._deadline(),
            limiter=self._limiter,
            retry=self._retry,
            rng=self._rng,
            headers=self._provider.request_headers(),
            auth=self._provider.auth(),
            transport=self.target.transport,
            error_detail=self._provider.error_detail,
            rate_limit_reset=self._provider.rate_limit_reset,
            on_response=self._on_response,
            clock=self._clock,
        )

    def _deadline(self) -> float:
        """How long a whole poll may take: ``poll_timeout``, else the interval (or timeout)."""
        return self.target.poll_timeout or max(self.interval, self.target.timeout)

    async def _walk(self, fetcher: PageFetcher, since: float | None) -> Aggregate:
        per_session = self.target.per_session
        provider = self._provider
        builder = AggregateBuilder(
            statuses=provider.statuses(),
            capabilities=provider.capabilities,
            now=self._clock(),
            only_listed=provider.counts_only_listed(),
            since=since,
            detail_phases=per_session.phases if per_session.enabled else None,
            detail_max=per_session.max_series,
            max_label_values=self.target.max_label_values,
            row_fields=provider.row_fields,
        )
        async with asyncio.timeout(self._deadline()):
            async for page in provider.pages(fetcher):
                builder.add_page(page)
        return builder.build(reported=provider.reported())

    def _log(self, previous: TargetSnapshot, snapshot: TargetSnapshot) -> None:
        fields = {
            "target": snapshot.name,
            "provider": snapshot.provider,
            "duration_s": round(snapshot.poll_duration or 0.0, 4),
        }
        if snapshot.up:
            data = snapshot.aggregate
            assert data is not None
            event = "poll.recovered" if previous.polled and not previous.up else "poll.succeeded"
            level = log.info if event == "poll.recovered" else log.debug
            level(event, sessions=data.sessions, duplicates=data.duplicates, **fields)
        else:
            log.warning(
                "poll.failed",
                reason=snapshot.error_reason.value if snapshot.error_reason else None,
                error=snapshot.error,
                **fields,
            )
