"""Reusable pydantic types and the base of every target's config model."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, ClassVar
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from exporter.durations import parse_duration
from exporter.records import Phase

Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds, written as a number or as ``500ms``/``30s``/``5m``/``1h``/``1d``/``1m30s``."""

PositiveDuration = Annotated[Duration, Field(gt=0, le=366 * 86400)]
"""A duration above zero and at most a year."""

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"base_url must be an http:// or https:// URL with a host, got {value!r}")
    return value.rstrip("/")


HttpUrl = Annotated[str, AfterValidator(_http_url)]
TargetName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")]


class Model(BaseModel):
    """Strict model: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class PerSession(Model):
    """Opt-in per-session series, capped: the ``max_series`` oldest sessions in ``phases``."""

    enabled: bool = False
    max_series: Annotated[int, Field(ge=1, le=10_000)] = 100
    phases: Annotated[frozenset[Phase], Field(min_length=1)] = frozenset(
        {Phase.PENDING, Phase.LIVE}
    )


class TargetBase(Model):
    """What every target has, whatever its provider; providers subclass it with their options."""

    default_base_url: ClassVar[str]

    name: TargetName
    base_url: HttpUrl | None = None
    api_key_env: str | None = None
    api_key_file: Path | None = None
    api_key: SecretStr | None = None
    timeout: PositiveDuration = 10.0
    poll_interval: PositiveDuration | None = None
    stale_after: PositiveDuration | None = None
    poll_timeout: PositiveDuration | None = None
    max_pages: Annotated[int, Field(ge=1)] = 1000
    max_response_bytes: Annotated[int, Field(ge=1024)] = 64 * 1024 * 1024
    per_session: PerSession = PerSession()
    max_label_values: Annotated[int, Field(ge=1, le=1000)] = 20
    rate_limit: Annotated[float, Field(ge=0)] = 20.0
    retries: Annotated[int, Field(ge=0, le=10)] = 2

    @field_validator("api_key_env")
    @classmethod
    def _env_is_set(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.fullmatch(value):
            # never echo it: a value that is not a variable name is often the key itself
            raise ValueError(
                "api_key_env must be the NAME of an environment variable (letters, digits, _), "
                "not the key; use api_key or api_key_file for the key itself"
            )
        if value is not None and not os.environ.get(value, "").strip():
            raise ValueError(f"environment variable {value} named by api_key_env is unset or empty")
        return value

    @field_validator("api_key")
    @classmethod
    def _key_not_empty(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("api_key is empty")
        return value

    @field_validator("api_key_file")
    @classmethod
    def _file_is_readable(cls, value: Path | None) -> Path | None:
        if value is not None:
            _read_key_file(value)
        return value

    @model_validator(mode="after")
    def _exactly_one_key(self) -> TargetBase:
        given = [
            key
            for key in ("api_key_env", "api_key_file", "api_key")
            if getattr(self, key) is not None
        ]
        if len(given) != 1:
            found = ", ".join(given) if given else "none"
            raise ValueError(
                f"set exactly one of api_key_env, api_key_file, api_key (found: {found})"
            )
        return self

    @property
    def url(self) -> str:
        """The server url: ``base_url`` or the provider's public default."""
        return self.base_url or self.default_base_url

    def secret(self) -> SecretStr:
        """Resolve the API key now (env and file are read on each call, so rotation works)."""
        if self.api_key is not None:
            return self.api_key
        if self.api_key_env is not None:
            value = os.environ.get(self.api_key_env, "").strip()
            if not value:
                raise KeyUnavailableError(
                    f"environment variable {self.api_key_env} is unset or empty"
                )
            return SecretStr(value)
        assert self.api_key_file is not None
        return SecretStr(_read_key_file(self.api_key_file))


class KeyUnavailableError(ValueError):
    """The configured key source cannot be read (message never contains the key)."""


def _read_key_file(path: Path) -> str:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise KeyUnavailableError(
            f"cannot read api_key_file {path}: {exc.strerror or exc}"
        ) from None
    except UnicodeDecodeError:
        raise KeyUnavailableError(f"api_key_file {path} is not UTF-8 text") from None
    if not value:
        raise KeyUnavailableError(f"api_key_file {path} is empty")
    return value
