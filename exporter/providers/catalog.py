"""The built-in providers shipped as definitions (``definitions/*.yaml``), validated at import.

A broken file here is a bug of the package: importing fails with pydantic's message.
"""

from __future__ import annotations

from importlib import resources
from types import MappingProxyType

import yaml

from exporter.providers.definition import Definition

SHIPPED = ("e2b", "browserbase", "daytona", "runloop", "steel")
"""The built-in definitions, in the contract's order (each ``definitions/<id>.yaml``)."""


SEEDED = ("agi", "together", "trigger", "notte", "chaser")
"""The first five providers that moved to definitions (each ``definitions/<id>.yaml``).

They keep their own target model (the keys they had when hand-written) and their Python
hooks (see their modules), so they are not offered to a ``DefinedTarget``."""


def _load(names: tuple[str, ...]) -> dict[str, Definition]:
    folder = resources.files("exporter.providers") / "definitions"
    return {
        name: Definition.model_validate(
            yaml.safe_load((folder / f"{name}.yaml").read_text(encoding="utf-8"))
        )
        for name in names
    }


BUILTIN = MappingProxyType(_load(SHIPPED))
"""Built-in definition id -> its definition."""
SEEDS = MappingProxyType(_load(SEEDED))
"""Seed provider id -> its definition (polled under the provider's own target model)."""
