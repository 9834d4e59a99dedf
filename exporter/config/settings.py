"""Loading and validating the config: a YAML file plus ``SESSION_EXPORTER_*`` environment overrides.

Environment variables win over the file: ``SESSION_EXPORTER_POLL_INTERVAL=10s``,
``SESSION_EXPORTER_LISTEN=:9000``; ``__`` separates nested keys, and the target
list can be given whole as JSON in ``SESSION_EXPORTER_TARGETS``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import structlog
import yaml
from pydantic import (
    AfterValidator,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)
from yaml._yaml import CParser

from exporter.config.messages import describe, model_at, suggest, unknown_key
from exporter.core import names
from exporter.core.durations import format_duration
from exporter.core.files import RefusedFileError, read_regular_file
from exporter.providers import PROVIDER_IDS, PROVIDERS, TargetConfig, UserProviderId, provider_for
from exporter.providers.definition import ID_PATTERN, Definition
from exporter.providers.engine import USER_DEFINITIONS
from exporter.providers.target import Duration, PositiveDuration, TargetBase

ENV_PREFIX = names.ENV_PREFIX
CONFIG_ENV = names.CONFIG_ENV
TARGETS_ENV = names.TARGETS_ENV
DEFAULT_PORT = names.DEFAULT_PORT
TARGET_MODELS = {provider.id: model for model, provider in PROVIDERS.items()}
"""Each provider id's target model (an unknown key may be another provider's option)."""

log = structlog.get_logger("exporter.config")


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``[v6]:PORT`` as a (host, port) pair; empty host is all."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"listen must be HOST:PORT, got {value!r}")
    host = host.strip("[]") or "0.0.0.0"  # noqa: S104 - the documented default is all interfaces
    return host, int(port_text)


def _listen(value: str) -> str:
    parse_listen(value)
    return value


ListenAddress = Annotated[str, AfterValidator(_listen)]


class Settings(BaseSettings):
    """The whole config; see the README's config reference."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    poll_interval: PositiveDuration = 30.0
    stale_after: PositiveDuration | None = None
    listen: ListenAddress = f"0.0.0.0:{DEFAULT_PORT}"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    shard: Annotated[int, Field(ge=0)] = 0
    total_shards: Annotated[int, Field(ge=1)] = 1
    config_auto_reload_interval: Annotated[Duration, Field(ge=0, le=366 * 86400)] = 0.0
    """How often the config file (and the files it names, key files aside) is checked for a
    change, which is then reloaded as SIGHUP would; 0 is off (``--config.auto-reload-interval``
    wins over it)."""
    providers: dict[UserProviderId, Definition] = {}
    """The config's own providers, by id (docs/providers.md, "Defining a provider")."""
    targets: Annotated[list[TargetConfig], Field(min_length=1)]

    demo: ClassVar[bool] = False
    """Whether these settings are the demo's simulated world (the landing page says so)."""

    @model_validator(mode="wrap")
    @classmethod
    def _with_definitions(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """Validate with the config's provider ids known, so a target may name them."""
        raw = data.get("providers") if isinstance(data, dict) else None
        known: dict[str, Definition | None] = {}
        if isinstance(raw, dict):
            for name, value in raw.items():
                if name in PROVIDER_IDS or not re.fullmatch(ID_PATTERN, str(name)):
                    continue  # refused under providers
                try:
                    known[str(name)] = Definition.model_validate(value)
                except ValidationError:
                    known[str(name)] = None  # reported under providers
        token = USER_DEFINITIONS.set(known)
        try:
            return handler(data)
        finally:
            USER_DEFINITIONS.reset(token)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The environment overrides the file, which is passed in as init values."""
        return _EnvSource(settings_cls), init_settings

    def owns(self, target: TargetBase) -> bool:
        """Whether ``target`` belongs to this replica's shard (always, when not sharded)."""
        return shard_of(target.name, self.total_shards) == self.shard

    def own_targets(self) -> list[TargetConfig]:
        """The targets this replica polls and exports: those of its shard."""
        return [t for t in self.targets if self.owns(t)]

    def interval(self, target: TargetBase) -> float:
        """The poll interval of one target (its own, or the global one)."""
        return target.poll_interval or self.poll_interval

    def staleness(self, target: TargetBase) -> float:
        """How old a target's data may get before its session series are dropped."""
        return target.stale_after or self.stale_after or 3 * self.interval(target)


class _EnvSource(EnvSettingsSource):
    """The ``SESSION_EXPORTER_*`` variables, less ``SESSION_EXPORTER_TARGETS__…``.

    Those address one target of the file's list by index or name, which
    pydantic-settings cannot do; :func:`_target_overrides` applies them.
    """

    def __call__(self) -> dict[str, Any]:
        data = super().__call__()
        if isinstance(data.get("targets"), dict) and TARGETS_ENV not in os.environ:
            del data["targets"]  # only SESSION_EXPORTER_TARGETS__… variables made it
        return data


def shard_of(name: str, total_shards: int) -> int:
    """The shard a target name belongs to: the first 8 bytes of its SHA-256, modulo the total.

    Stable across processes, restarts, machines and Python versions (unlike ``hash()``), so
    every replica given the same config agrees on who polls what.
    """
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big") % total_shards


def shard_from_pod_name(pod_name: str) -> int:
    """The ordinal a StatefulSet gives its pod: the number after the name's last ``-``."""
    head, sep, ordinal = pod_name.rpartition("-")
    if not head or not sep or not ordinal.isdigit() or not ordinal.isascii():
        raise ValueError(
            f"pod name {pod_name!r} does not end in a StatefulSet ordinal (NAME-<number>)"
        )
    return int(ordinal)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the config, and where."""

    where: str
    path: str
    message: str

    def __str__(self) -> str:
        return (
            f"{self.where}: {self.path}: {self.message}"
            if self.path
            else f"{self.where}: {self.message}"
        )


class ConfigError(Exception):
    """The config cannot be used; ``problems`` lists every reason."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("\n".join(map(str, problems)))
        self.problems = tuple(problems)


def misspelt_variables(
    environ: Mapping[str, str], settings: Settings | None = None
) -> list[Problem]:
    """``SESSION_EXPORTER_*`` variables that are no setting but look like one (a typo).

    Such a variable is ignored, so the setting it was meant for silently keeps its value. A
    variable a target names as its ``api_key_env`` is no typo, whatever it is called.
    """
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    known |= {CONFIG_ENV, names.WEB_CONFIG_ENV}
    keys = {t.api_key_env for t in settings.targets} if settings is not None else set()
    problems = []
    for var in sorted(environ):
        if not var.startswith(ENV_PREFIX) or var in known or var in keys:
            continue
        if var.startswith(TARGETS_ENV + "__"):
            continue  # one target's key: checked against that target's options
        near = suggest(var.removeprefix(ENV_PREFIX), [k.removeprefix(ENV_PREFIX) for k in known])
        if near is not None:
            problems.append(
                Problem(
                    f"environment {var}",
                    "",
                    f"not a setting, so it is ignored (did you mean {ENV_PREFIX}{near}?)",
                )
            )
    return problems


MIN_POLL_INTERVAL = 1.0
"""A poll interval below this is accepted with a warning (as Prometheus warns of a tiny
scrape interval): it is more likely ``1ms`` meant for ``1m`` than a wish to poll a provider
a thousand times a second."""


def short_intervals(settings: Settings, path: Path) -> list[Problem]:
    """Warnings for each ``poll_interval`` under :data:`MIN_POLL_INTERVAL`, located where it
    is written (``1ms`` suggests ``1m``)."""
    given: list[tuple[tuple[Any, ...], float]] = [(("poll_interval",), settings.poll_interval)]
    given += [
        (("targets", index, "poll_interval"), target.poll_interval)
        for index, target in enumerate(settings.targets)
        if target.poll_interval
    ]
    short = [(loc, value) for loc, value in given if value < MIN_POLL_INTERVAL]
    if not short:
        return []
    root: yaml.Node | None = None
    with contextlib.suppress(ConfigError):
        _, root = parse_yaml(read_text(path), str(path))
    warnings = []
    for loc, value in short:
        node = _node_at(root, loc)
        written = str(node.value).strip() if isinstance(node, yaml.ScalarNode) else ""
        number = written.removesuffix("ms")
        meant = number != written and number.isdigit() and 0 < int(number) <= 60
        hint = f" (did you mean {number}m?)" if meant else ""
        warnings.append(
            Problem(
                _env_source(loc) or place(root, loc, str(path)),
                dotted(loc),
                f"{format_duration(value)} is shorter than 1s{hint}: each target it applies "
                f"to is polled {1 / value:g} times a second",
            )
        )
    return warnings


def _node_at(root: yaml.Node | None, loc: Sequence[Any]) -> yaml.Node | None:
    node = root
    for part in loc:
        node = _child(node, part)
    return node


def config_path(explicit: str | None) -> Path:
    """The config file: ``--config``, else ``$SESSION_EXPORTER_CONFIG``."""
    value = explicit or os.environ.get(CONFIG_ENV)
    if not value:
        raise ConfigError(
            [Problem("config", "", f"no config file given: pass --config FILE or set {CONFIG_ENV}")]
        )
    return Path(value)


def load_settings(
    path: Path,
    *,
    overrides: Mapping[str, Any] | None = None,
    command_line: Mapping[str, int] | None = None,
) -> Settings:
    """Read, merge and validate the config; raise :class:`ConfigError` with every problem.

    ``command_line`` holds ``shard`` / ``total_shards`` given as flags: they win over the
    environment and the file, and are checked like them (located ``command line --flag``).
    """
    where = str(path)
    data, root = parse_yaml(read_text(path), where)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([Problem(where, "", "the config must be a mapping of keys to values")])
    data = {**data, **(overrides or {})}
    targets_from_env = TARGETS_ENV in os.environ
    env_places, problems = _target_overrides(data, targets_from_env)
    problems += duplicate_keys(root, where)
    if not targets_from_env:
        problems += _duplicate_names(data, root, where)
    try:
        settings = Settings(**data)
    except SettingsError as exc:
        raise ConfigError([_env_parse_problem(exc), *problems]) from None
    except ValidationError as exc:
        located = [_problem(error, root, where, env_places) for error in exc.errors()]
        raise ConfigError(sorted(located + problems, key=line_of)) from None
    if command_line:
        settings = settings.model_copy(update=dict(command_line))
    problems += _after_merge(settings, root, where, targets_from_env=targets_from_env)
    problems += _sharding(settings, root, where, command_line or {})
    problems += _header_clashes(settings, root, where, targets_from_env=targets_from_env)
    if problems:
        raise ConfigError(sorted(problems, key=line_of))
    _warn(insecure_targets(settings, root, where, targets_from_env=targets_from_env))
    return settings


def _header_clashes(
    settings: Settings, root: yaml.Node | None, where: str, *, targets_from_env: bool
) -> list[Problem]:
    """A target's ``headers:`` naming a header its provider sets itself (the API version)."""
    problems = []
    for index, target in enumerate(settings.targets):
        own = {name.lower() for name in provider_for(target).request_headers()}
        for name in target.headers:
            if name.lower() in own:
                loc = ("targets", index, "headers", name)
                at = (
                    f"environment {TARGETS_ENV}"
                    if targets_from_env
                    else key_place(root, loc, where)
                )
                problems.append(
                    Problem(
                        at,
                        dotted(loc),
                        f"header {name!r} is set by the exporter for provider "
                        f"{provider_for(target).id} and cannot be replaced",
                    )
                )
    return problems


def insecure_targets(
    settings: Settings, root: yaml.Node | None, where: str, *, targets_from_env: bool = False
) -> list[Problem]:
    """A warning per target whose ``tls.insecure_skip_verify`` is true (given at every load)."""
    warnings = []
    for index, target in enumerate(settings.targets):
        if target.tls is not None and target.tls.insecure_skip_verify:
            loc = ("targets", index, "tls", "insecure_skip_verify")
            at = f"environment {TARGETS_ENV}" if targets_from_env else place(root, loc, where)
            warnings.append(
                Problem(
                    at,
                    dotted(loc),
                    f"target {target.name}: the provider's certificate is not verified, so "
                    "anyone on the path can read the API key; set tls.ca_file instead",
                )
            )
    return warnings


def _warn(warnings: Sequence[Problem]) -> None:
    """Log each warning (``config.warning``), or print it to stderr before logging is set up
    (``check-config``, and the first load of ``serve``)."""
    for warning in warnings:
        if structlog.is_configured():
            log.warning(
                "config.warning", where=warning.where, key=warning.path, problem=warning.message
            )
        else:
            print(f"warning: {warning}", file=sys.stderr)


def _target_overrides(
    data: dict[str, Any], targets_from_env: bool
) -> tuple[dict[tuple[Any, ...], str], list[Problem]]:
    """Apply ``SESSION_EXPORTER_TARGETS__<index or name>__<key>`` to the file's targets.

    Returns where each overridden value came from (for error locations) and the
    problems with the variables themselves.
    """
    places: dict[tuple[Any, ...], str] = {}
    problems: list[Problem] = []
    prefix = TARGETS_ENV + "__"
    targets = data.get("targets")
    for var, value in sorted(os.environ.items()):
        if not var.upper().startswith(prefix):
            continue
        selector, _, key = var[len(prefix) :].partition("__")
        matches = _select_targets(targets, selector)
        index = matches[0] if len(matches) == 1 else None
        if targets_from_env:
            message = f"cannot be combined with {TARGETS_ENV}, which replaces the file's targets"
        elif not key:
            message = f"expected {prefix}<index or name>__<key>"
        elif len(matches) > 1:
            names = ", ".join(f"targets[{i}] {targets[i]['name']!r}" for i in matches)  # type: ignore[index]
            message = f"{selector!r} names {len(matches)} targets ({names}): give its index"
        elif index is None:
            message = f"no target {selector!r} in the file (give its index or its name)"
        else:
            message = ""
        if message:
            problems.append(Problem(f"environment {var}", "", message))
            continue
        assert isinstance(targets, list)
        assert index is not None
        path = [part.lower() for part in key.split("__")]
        entry = dict(targets[index])
        targets[index] = entry
        for part in path[:-1]:
            child = dict(entry.get(part) or {})
            entry[part] = child
            entry = child
        entry[path[-1]] = value
        places[("targets", index, *path)] = f"environment {var}"
    return places, problems


def _select_targets(targets: object, selector: str) -> list[int]:
    """The indexes of the targets a variable names by index or by name (``-`` and ``.`` read
    as ``_``, any case): more than one (``prod-a``, ``prod.a``, ``PROD_A``) is ambiguous."""
    if not isinstance(targets, list):
        return []
    if selector.isdigit():
        return [int(selector)] if int(selector) < len(targets) else []
    wanted = selector.upper()
    return [
        index
        for index, target in enumerate(targets)
        if isinstance(target, dict)
        and isinstance(name := target.get("name"), str)
        and re.sub(r"[-.]", "_", name).upper() == wanted
    ]


def _after_merge(
    settings: Settings, root: yaml.Node | None, where: str, *, targets_from_env: bool
) -> list[Problem]:
    """Checks that need the merged settings: names from the environment, staleness."""
    problems: list[Problem] = []
    first: dict[str, int] = {}
    for index, target in enumerate(settings.targets):
        if targets_from_env and target.name in first:
            problems.append(
                Problem(
                    f"environment {TARGETS_ENV}",
                    f"targets[{index}].name",
                    f"duplicate target name {target.name!r} "
                    f"(first used by targets[{first[target.name]}])",
                )
            )
        first.setdefault(target.name, index)
        interval, stale = settings.interval(target), settings.staleness(target)
        if stale <= interval:
            loc: tuple[Any, ...] = (
                ("targets", index, "stale_after") if target.stale_after else ("stale_after",)
            )
            at = f"environment {TARGETS_ENV}" if targets_from_env else place(root, loc, where)
            problems.append(
                Problem(
                    at,
                    dotted(loc),
                    f"must be longer than the poll interval ({format_duration(interval)}), "
                    f"or the target's session series would vanish between polls",
                )
            )
    return problems


def _sharding(
    settings: Settings, root: yaml.Node | None, where: str, command_line: Mapping[str, int]
) -> list[Problem]:
    """``0 <= shard < total_shards``, located where each value came from."""

    def at(key: str) -> str:
        if key in command_line:
            return f"command line --{key.replace('_', '-')}"
        return _env_source((key,)) or place(root, (key,), where)

    problems = []
    for key, minimum in (("shard", 0), ("total_shards", 1)):
        if key in command_line and command_line[key] < minimum:
            problems.append(Problem(at(key), key, f"must be at least {minimum}"))
    if not problems and not settings.shard < settings.total_shards:
        problems.append(
            Problem(
                at("shard"),
                "shard",
                f"shard {settings.shard} is out of range: with total_shards "
                f"{settings.total_shards} it must be 0 to {settings.total_shards - 1}",
            )
        )
    return problems


YAML_NODE_BUDGET = 100_000
"""The most YAML nodes a config (or web config) may have with its aliases expanded.

Aliases let a few hundred bytes stand for billions of nodes (an "alias bomb"), which every
walk of the document (the duplicate-key check, validation) would follow. A target of six
keys is 13 nodes, so this leaves room for about 7,000 targets. Enforced while the document
is composed, node by node: a longer document is refused before it is built."""
YAML_MAX_DEPTH = 64
"""The deepest nesting of lists and mappings a config may have (a config needs 5)."""
CONFIG_MAX_BYTES = 4 * 1024 * 1024
"""The largest config file read (7,000 targets are about 1 MiB)."""


_Mark = Any
"""Where an event starts: libyaml's mark or PyYAML's (the stubs also allow None)."""


class _BoundedComposer(yaml.composer.Composer):
    """PyYAML's composer, counting nodes as it composes them (an alias counts the nodes of
    its anchor), and refusing the document the moment it passes :data:`YAML_NODE_BUDGET`
    nodes or :data:`YAML_MAX_DEPTH` levels, or an alias refers to its own anchor."""

    where: str
    peek_event: Callable[[], yaml.Event]  # the parser's

    def _bounded_setup(self, where: str) -> None:
        self.where = where
        self._nodes = 0
        self._aliases = False
        self._sizes: dict[str, int] = {}
        self._open: list[_Mark] = []  # start of each collection being composed
        self._open_anchors: dict[str, _Mark] = {}

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            name = str(event.anchor)
            opened = self._open_anchors.get(name)
            if opened is not None:
                raise ConfigError(
                    [_at_mark(opened, self.where, "an alias refers to its own anchor (a cycle)")]
                )
            self._aliases = True
            self._count(self._sizes.get(name, 1), event)
            return super().compose_node(parent, index)
        self._count(1, event)
        before = self._nodes - 1
        anchor: str | None = getattr(event, "anchor", None)
        collection = isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent)
        if collection:
            if len(self._open) >= YAML_MAX_DEPTH:
                raise ConfigError(
                    [
                        _at_mark(
                            event.start_mark,
                            self.where,
                            f"nested more than {YAML_MAX_DEPTH} levels deep: a config needs 5",
                        )
                    ]
                )
            self._open.append(event.start_mark)
            if anchor is not None:
                self._open_anchors[anchor] = event.start_mark
        try:
            node = super().compose_node(parent, index)
        finally:
            if collection:
                self._open.pop()
                if anchor is not None:
                    self._open_anchors.pop(anchor, None)
        if anchor is not None:
            self._sizes[anchor] = self._nodes - before
        return node

    def _count(self, nodes: int, event: yaml.Event) -> None:
        self._nodes += nodes
        if self._nodes <= YAML_NODE_BUDGET:
            return
        at = self._open[-1] if self._open else event.start_mark
        limit = YAML_NODE_BUDGET
        message = (
            f"too many YAML nodes: this expands to more than {limit:,} with its aliases "
            "(an alias bomb?); write the values out or use fewer aliases"
            if self._aliases
            else f"too many YAML nodes: more than {limit:,} (about 7,000 targets); "
            "split the targets over several exporters"
        )
        raise ConfigError([_at_mark(at, self.where, message)])


class _Loader(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    _BoundedComposer,
    yaml.constructor.SafeConstructor,
    yaml.resolver.Resolver,
):
    """PyYAML's safe loader, with :class:`_BoundedComposer` composing its events (pure
    Python: its messages are the ones the hints know; used to word a syntax error)."""

    def __init__(self, text: str, where: str) -> None:
        yaml.reader.Reader.__init__(self, text)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        self._bounded_setup(where)


class _FastLoader(
    _BoundedComposer,
    CParser,  # libyaml's events, ten times as fast; composed in Python, counted
    yaml.constructor.SafeConstructor,
    yaml.resolver.Resolver,
):
    """:class:`_Loader` over libyaml's parser."""

    def __init__(self, text: str, where: str) -> None:
        CParser.__init__(self, text)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        self._bounded_setup(where)


def parse_yaml(text: str, where: str) -> tuple[Any, yaml.Node | None]:
    """The document and its node tree (for locations); a YAML error is a located ConfigError.

    A document of more than :data:`YAML_NODE_BUDGET` nodes once its aliases are expanded, or
    nested deeper than :data:`YAML_MAX_DEPTH`, is refused while it is composed, before
    anything walks it. libyaml parses; a syntax error is worded by PyYAML's own parser.
    """
    try:
        return _load(_FastLoader(text, where))
    except yaml.YAMLError as fast:
        try:
            _load(_Loader(text, where))
        except yaml.YAMLError as exc:
            raise ConfigError([yaml_problem(exc, where)]) from None
        raise ConfigError([yaml_problem(fast, where)]) from None


def _load(loader: _Loader | _FastLoader) -> tuple[Any, yaml.Node | None]:
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None
        kept = _mapping_values(root)
        data = loader.construct_document(root)
        for node, value in kept:  # merge keys (``<<``) are merged into the nodes: undone
            node.value = value
        return data, root
    finally:
        loader.dispose()


_YAML_HINTS = {
    "found character '\\t'": " (indent with spaces: YAML does not allow tabs)",
    "expected <block end>": " (this line's indentation does not match the lines above it)",
    "mapping values are not allowed here": " (quote a value that contains ': ')",
}
"""PyYAML's messages for the usual mistakes, and what to do about each."""


def yaml_problem(exc: yaml.YAMLError, where: str) -> Problem:
    """A YAML syntax error, located where the mistake is written.

    A quote left open makes PyYAML complain at the end of the file; the problem is the
    quote, so it is located at the line that opens it.
    """
    mark = getattr(exc, "problem_mark", None)
    context = getattr(exc, "context", None) or ""
    if context.startswith("while scanning a quoted scalar"):
        mark = getattr(exc, "context_mark", None) or mark
        reason = "a quoted value is never closed: add the closing quote on this line"
    else:
        problem = getattr(exc, "problem", None) or str(exc)
        hint = next((h for start, h in _YAML_HINTS.items() if problem.startswith(start)), "")
        reason = f"invalid YAML: {problem}{hint}"
    at = f"{where}:{mark.line + 1}:{mark.column + 1}" if mark else where
    return Problem(at, "", reason)


def _mapping_values(root: yaml.Node) -> list[tuple[yaml.MappingNode, list[Any]]]:
    """Each mapping node of the tree, with its pairs as composed (each node once)."""
    kept: list[tuple[yaml.MappingNode, list[Any]]] = []
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            kept.append((node, list(node.value)))
            stack.extend(part for pair in node.value for part in pair)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return kept


def _at_mark(mark: _Mark, where: str, message: str) -> Problem:
    return Problem(f"{where}:{mark.line + 1}:{mark.column + 1}", "", message)


def read_text(path: Path) -> str:
    """A config file's text: a regular file (or a link to one) of at most
    :data:`CONFIG_MAX_BYTES`, in UTF-8; anything else is a ConfigError, at once (a FIFO is
    refused, not waited on)."""
    try:
        data = read_regular_file(path, max_bytes=CONFIG_MAX_BYTES)
    except RefusedFileError as exc:
        if exc.kind == "too_big":
            reason = f"larger than {CONFIG_MAX_BYTES // (1024 * 1024)} MiB: not a config file"
        elif exc.kind == "not_regular":
            reason = f"not a regular file ({exc.detail}): a config must be a file"
        else:
            reason = f"cannot read: {exc.detail}"
        raise ConfigError([Problem(str(path), "", reason)]) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError([Problem(str(path), "", "not UTF-8 text")]) from None


def duplicate_keys(node: yaml.Node | None, where: str, path: str = "") -> list[Problem]:
    """Keys given twice in one mapping (YAML would silently keep the last)."""
    problems: list[Problem] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            child = f"{path}.{name}" if path else name
            if name in seen:
                mark = key.start_mark
                problems.append(
                    Problem(
                        f"{where}:{mark.line + 1}:{mark.column + 1}",
                        child,
                        "key given twice (the last one would silently win)",
                    )
                )
            seen.add(name)
            problems += duplicate_keys(value, where, child)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            problems += duplicate_keys(item, where, f"{path}[{index}]")
    return problems


def _duplicate_names(data: Mapping[str, Any], root: yaml.Node | None, where: str) -> list[Problem]:
    targets = data.get("targets")
    if not isinstance(targets, list):
        return []
    first: dict[str, int] = {}
    problems = []
    for index, target in enumerate(targets):
        name = target.get("name") if isinstance(target, dict) else None
        if not isinstance(name, str):
            continue
        if name in first:
            loc = ("targets", index, "name")
            problems.append(
                Problem(
                    place(root, loc, where),
                    dotted(loc),
                    f"duplicate target name {name!r} (first used by targets[{first[name]}])",
                )
            )
        else:
            first[name] = index
    return problems


def _problem(
    error: Mapping[str, Any],
    root: yaml.Node | None,
    where: str,
    env_places: Mapping[tuple[Any, ...], str],
) -> Problem:
    loc = tuple(
        part
        for i, part in enumerate(error["loc"])
        # drop the discriminator tag pydantic inserts after a target's index
        if not (i == 2 and error["loc"][0] == "targets" and part in _TAGS) and part != "[key]"
    )
    at: str | None = None
    if error["type"] == "extra_forbidden" and loc[0] == "providers":
        message = unknown_key(str(loc[-1]), model_at(Definition, ("x", *loc[2:])[1:]), None)
        at = key_place(root, loc, where)
    elif error["type"] == "extra_forbidden":
        model = model_at(Settings, error["loc"])
        others = TARGET_MODELS if model in TARGET_MODELS.values() else None
        message = unknown_key(str(loc[-1]), model, others)
        at = key_place(root, loc, where)
    elif error["type"] == "union_tag_invalid":
        loc = (*loc, "provider")
        given = error["input"].get("provider")
        near = suggest(str(given), PROVIDER_IDS)
        message = (
            f"unknown provider {given!r}: "
            + (f"did you mean {near}? " if near else "")
            + "use one of "
            + ", ".join(PROVIDER_IDS)
        )
    elif error["type"] == "union_tag_not_found":
        loc = (*loc, "provider")
        message = "required key is missing (one of " + ", ".join(PROVIDER_IDS) + ")"
    else:
        message = describe(error, Settings)
    env = next(
        (env_places[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in env_places), None
    ) or _env_source(loc)
    return Problem(env or at or place(root, loc, where), dotted(loc), message)


_TAGS = frozenset({*PROVIDER_IDS, "defined"})
"""The union tags pydantic puts in a target's error location."""


def _env_parse_problem(exc: SettingsError) -> Problem:
    """An environment value pydantic-settings could not even decode (e.g. bad JSON)."""
    match = re.search(r'field "(\w+)"', str(exc))
    field = match.group(1) if match else ""
    where = f"environment {ENV_PREFIX}{field.upper()}" if field else "environment"
    return Problem(where, field, "cannot parse the value: a list or mapping must be valid JSON")


def line_of(problem: Problem) -> int:
    """Sort key: the problem's line in the file (environment problems first)."""
    parts = problem.where.rsplit(":", 2)
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else 0


def _env_source(loc: tuple[Any, ...]) -> str | None:
    """The environment variable a value came from, when one did."""
    for depth in range(len(loc), 0, -1):
        name = ENV_PREFIX + "__".join(str(p) for p in loc[:depth]).upper()
        if name in os.environ:
            return f"environment {name}"
    return None


def dotted(loc: Sequence[Any]) -> str:
    """A location as the config writes it: ``targets[0].base_url``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def place(root: yaml.Node | None, loc: Sequence[Any], where: str) -> str:
    """``file:line:column`` of the deepest node of ``loc`` present in the YAML."""
    node = root
    for part in loc:
        child = _child(node, part)
        if child is None:
            break
        node = child
    if node is None:
        return where
    return f"{where}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"


def key_place(root: yaml.Node | None, loc: Sequence[Any], where: str) -> str:
    """``file:line:column`` of the key at the end of ``loc`` (where an unknown key is written)."""
    node = root
    for part in loc[:-1]:
        node = _child(node, part)
    if isinstance(node, yaml.MappingNode):
        for key, _ in node.value:
            if key.value == str(loc[-1]):
                return f"{where}:{key.start_mark.line + 1}:{key.start_mark.column + 1}"
    return place(root, loc, where)


def _child(node: yaml.Node | None, part: Any) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == str(part):
                return value if isinstance(value, yaml.Node) else None
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        child = node.value[part]
        return child if isinstance(child, yaml.Node) else None
    return None
