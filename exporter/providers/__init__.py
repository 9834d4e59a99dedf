"""The provider modules and the registry that maps a target's config to its provider."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, Discriminator, Tag

from exporter.providers.agi import AgiProvider, AgiTarget
from exporter.providers.base import Capabilities, Provider
from exporter.providers.catalog import BUILTIN
from exporter.providers.chaser import ChaserProvider, ChaserTarget
from exporter.providers.definition import ID_PATTERN
from exporter.providers.engine import CODED_IDS as _CODED
from exporter.providers.engine import DefinedTarget, defined_provider
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
"""Target config model -> provider class, one entry per provider with a module of its own
(a seed definition run by the engine, keeping its target model's keys)."""

CODED_IDS: tuple[str, ...] = tuple(p.id for p in PROVIDERS.values())
_CODED.extend(CODED_IDS)
PROVIDER_IDS: tuple[str, ...] = (*CODED_IDS, *BUILTIN)
"""Every built-in provider id: those with a module of their own, then the other shipped
definitions."""
DEFINED_TAG = "defined"
"""The union tag of a target whose provider is a definition (built-in or the config's)."""


def _tag(value: Any) -> str | None:
    if not isinstance(value, dict | TargetBase):
        return DEFINED_TAG  # not a mapping: the model says so
    provider = (
        value.get("provider") if isinstance(value, dict) else getattr(value, "provider", None)
    )
    if not isinstance(provider, str):
        return None
    return provider if provider in CODED_IDS else DEFINED_TAG


TargetConfig = Annotated[
    Annotated[TogetherTarget, Tag("together")]
    | Annotated[AgiTarget, Tag("agi")]
    | Annotated[TriggerTarget, Tag("trigger")]
    | Annotated[ChaserTarget, Tag("chaser")]
    | Annotated[NotteTarget, Tag("notte")]
    | Annotated[DefinedTarget, Tag(DEFINED_TAG)],
    Discriminator(_tag),
]
"""Any target's config, told apart by its ``provider`` key (any other id: a definition)."""


def _not_builtin(value: str) -> str:
    if not re.fullmatch(ID_PATTERN, value):
        raise ValueError(
            f"{value!r} is not a provider id: lower-case letters, digits, '_' and '-', "
            "starting with a letter or digit (it becomes the provider label)"
        )
    if value in PROVIDER_IDS:
        raise ValueError(f"{value!r} is a built-in provider id: give your definition another id")
    return value


UserProviderId = Annotated[str, AfterValidator(_not_builtin)]
"""The id of a provider the config defines."""


def provider_for(target: TargetBase) -> Provider[Any]:
    """The provider adapter for one configured target."""
    if isinstance(target, DefinedTarget):
        return defined_provider(target)
    return PROVIDERS[type(target)](target)


__all__ = [
    "PROVIDERS",
    "PROVIDER_IDS",
    "Capabilities",
    "DefinedTarget",
    "Provider",
    "TargetConfig",
    "UserProviderId",
    "provider_for",
]
