"""Which exposition format answers an ``Accept`` header: one of a few, whatever the header says.

prometheus_client's ``choose_encoder`` echoes the requested OpenMetrics version into the
content type, so every distinct ``version=1.0.N`` was a format of its own (rendered, cached
and, past a few, evicting the others), and a version that is no number (``1.0.x``) raised.
Here the answer is one of a closed set, chosen as ``choose_encoder`` chooses (the first
acceptable entry, in the order given; q-values are not weighed):

- ``application/openmetrics-text``: OpenMetrics 1.0.0, the version served, for any requested
  ``1.*`` version or none; an entry asking for another major version (``0.0.1``, ``2.0.0``) or
  a version that is no number is passed over.
- ``text/plain; version=1.*``: the text format 1.0.0; ``text/plain`` without a version, or
  ``0.0.4``, is passed over, as by ``choose_encoder``.
- anything else: the text format 0.0.4.

An ``escaping`` parameter (``underscores``, ``dots``, ``values``, ``allow-utf-8``; anything
else counts as ``underscores``) is echoed in the content type. Every name the exporter
writes is a valid legacy Prometheus name, so only ``dots`` (which also doubles underscores)
changes the bytes: the body is rendered for one of four :data:`Variant.body` keys.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.openmetrics import exposition as om
from prometheus_client.registry import Collector

Encoder = Callable[[Collector], bytes]

OPENMETRICS = "application/openmetrics-text"
TEXT = "text/plain"
ESCAPINGS = frozenset({om.UNDERSCORES, om.DOTS, om.VALUES, om.ALLOWUTF8})
OPENMETRICS_VERSION = "1.0.0"
TEXT_VERSION = "1.0.0"


@dataclass(frozen=True, slots=True)
class Variant:
    """An answer's content type and the key of the body bytes it is served with."""

    content_type: str
    body: tuple[str, str]
    """(``openmetrics`` or ``text``, the escaping the bytes are rendered with)."""

    def encoder(self) -> Encoder:
        """The encoder that renders this variant's body."""
        kind, escaping = self.body
        if kind == "openmetrics":
            return partial(om.generate_latest, escaping=escaping, version=OPENMETRICS_VERSION)
        return partial(generate_latest, escaping=escaping)


PLAIN = Variant(CONTENT_TYPE_PLAIN_0_0_4, ("text", om.UNDERSCORES))


def negotiate(accept: str) -> Variant:
    """The variant answering ``accept`` (see the module docstring)."""
    for entry in accept.split(","):
        media, *params = (part.strip() for part in entry.split(";"))
        if media not in (OPENMETRICS, TEXT):
            continue
        values = dict(_param(p) for p in params)
        version = values.get("version", "")
        if media == OPENMETRICS:
            if version and _major(version) != 1:
                continue
            if not version:  # as choose_encoder: no escaping parameter without a version
                return Variant(om.CONTENT_TYPE_LATEST, _body("openmetrics"))
            escaping = _escaping(values)
            return Variant(
                f"{OPENMETRICS}; version={OPENMETRICS_VERSION}; charset=utf-8; escaping={escaping}",
                _body("openmetrics", escaping),
            )
        if _major(version) == 1:
            escaping = _escaping(values)
            return Variant(
                f"{TEXT}; version={TEXT_VERSION}; charset=utf-8; escaping={escaping}",
                _body("text", escaping),
            )
    return PLAIN


def _param(text: str) -> tuple[str, str]:
    key, _, value = text.partition("=")
    return key.strip(), value.strip()


def _major(version: str) -> int | None:
    """The major version of ``1.0.0`` (also of ``1.0.x``); None when it is no number."""
    head = version.split(".", 1)[0]
    return int(head) if head.isascii() and head.isdigit() and len(head) < 4 else None


def _escaping(values: dict[str, str]) -> str:
    escaping = values.get("escaping", om.UNDERSCORES)
    return escaping if escaping in ESCAPINGS else om.UNDERSCORES


def _body(kind: str, escaping: str = om.UNDERSCORES) -> tuple[str, str]:
    """Names the exporter writes are legacy-valid: only ``dots`` escapes them differently."""
    return (kind, om.DOTS if escaping == om.DOTS else om.UNDERSCORES)
