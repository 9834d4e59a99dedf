"""A row's raw status as the label it is counted under, and its phase."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from exporter.core import labels
from exporter.core.records import Phase

T = TypeVar("T")


class StatusLabels:
    """A raw status -> (label value, phase), memoized for the first ``keep`` distinct values.

    A raw status that cleans (:func:`exporter.core.labels.clean`) to a documented one is it.

    The providers' hot path: one dict lookup per session instead of strip/lower/lookup.
    """

    def __init__(self, phases: Mapping[str, Phase], *, keep: int = 256) -> None:
        self._phases = phases
        self._keep = keep
        self._known: dict[str, tuple[str, Phase]] = {}

    def __call__(self, raw: str) -> tuple[str, Phase]:
        known = self._known.get(raw)
        if known is None:
            status = raw.strip().lower()
            phase = self._phases.get(status)
            if phase is None:
                # a status that only its unprintable characters (``running\u200b``) tell
                # from a documented one is that one, in every series: its label is cleaned
                # into the documented value anyway
                cleaned = labels.clean(status)
                phase = self._phases.get(cleaned)
                status = status if phase is None else cleaned
            known = (status, phase or Phase.UNKNOWN)
            if len(self._known) < self._keep:
                self._known[raw] = known
        return known
