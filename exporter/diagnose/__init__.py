"""``session-exporter diagnose``: one poll of one target, shown request by request and row by row.

For checking what a real account sends, and reporting it: the poll is the one ``once``
makes (the same poller, fetcher and provider code), recorded by a
:class:`~exporter.diagnose.recording.RecordingFetcher`; the bodies are decoded a second
time afterwards for the rows' shapes and mappings. Values are masked and the key never
appears in the report (:mod:`exporter.diagnose.masking`).
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable

from exporter.config.settings import Settings
from exporter.diagnose.masking import Masker
from exporter.diagnose.recording import Call, RecordingFetcher
from exporter.diagnose.render import as_json, as_text
from exporter.diagnose.report import Report, build
from exporter.polling.poller import TargetPoller
from exporter.polling.state import Store, TargetSnapshot
from exporter.providers import provider_for
from exporter.providers.target import KeyUnavailableError, TargetBase
from exporter.upstream.client import new_client_session

__all__ = ["Report", "as_json", "as_text", "diagnose"]


async def diagnose(
    settings: Settings,
    target: TargetBase,
    *,
    max_rows: int | None = 50,
    clock: Callable[[], float] = time.time,
) -> Report:
    """Poll ``target`` once, recording every request, and build the masked report."""
    provider = provider_for(target)
    secret: str | None = None
    with contextlib.suppress(KeyUnavailableError):  # the poll reports it as reason key
        secret = target.secret().get_secret_value()
    masker = Masker(secret)
    store = Store(
        [
            TargetSnapshot(
                name=target.name, provider=provider.id, stale_after=settings.staleness(target)
            )
        ]
    )
    calls: list[Call] = []
    now = clock()
    async with new_client_session() as session:
        poller = TargetPoller(
            target=target,
            interval=settings.interval(target),
            session=session,
            store=store,
            clock=clock,
            new_fetcher=functools.partial(RecordingFetcher, calls=calls),
        )
        snapshot = await poller.poll()
    return build(
        provider=provider,
        url=target.url + provider.path,
        calls=calls,
        snapshot=snapshot,
        masker=masker,
        now=now,
        max_rows=max_rows,
    )
