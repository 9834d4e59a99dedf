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


def _load() -> dict[str, Definition]:
    folder = resources.files("exporter.providers") / "definitions"
    return {
        name: Definition.model_validate(
            yaml.safe_load((folder / f"{name}.yaml").read_text(encoding="utf-8"))
        )
        for name in SHIPPED
    }


BUILTIN = MappingProxyType(_load())
"""Built-in definition id -> its definition."""
