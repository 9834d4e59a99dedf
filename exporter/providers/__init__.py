"""The provider modules and the registry that maps a target's config to its provider."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from exporter.providers.agi import AgiProvider, AgiTarget
from exporter.providers.base import Capabilities, Provider
from exporter.providers.chaser import ChaserProvider, ChaserTarget
from exporter.providers.notte import NotteProvider, NotteTarget
from exporter.providers.target import TargetBase
from exporter.providers.together import TogetherProvider, TogetherTarget
from exporter.providers.trigger import TriggerProvider, TriggerTarget

PROVIDERS: dict[type[TargetBase], type[Provider[Any]]] = {
    TogetherTarget: TogetherProvider,
    AgiTarget: AgiProvider,
    TriggerTarget: TriggerProvider,
    ChaserTarget: ChaserProvider,
    NotteTarget: NotteProvider,
}
"""Target config model -> provider class, one entry per supported provider."""

PROVIDER_IDS: tuple[str, ...] = tuple(p.id for p in PROVIDERS.values())

TargetConfig = Annotated[
    TogetherTarget | AgiTarget | TriggerTarget | ChaserTarget | NotteTarget,
    Field(discriminator="provider"),
]
"""Any target's config, told apart by its ``provider`` key."""


def provider_for(target: TargetBase) -> Provider[Any]:
    """The provider adapter for one configured target."""
    return PROVIDERS[type(target)](target)


__all__ = ["PROVIDERS", "PROVIDER_IDS", "Capabilities", "Provider", "TargetConfig", "provider_for"]
