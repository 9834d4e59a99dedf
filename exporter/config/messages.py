"""Config problems in plain words: pydantic's errors rewritten for the person editing the file.

pydantic's own phrases ("Input should be greater than 0", "List should have at least 1 item
after validation") never reach the user: every error type the config models can raise has a
sentence here, and an unknown key gets the nearest valid key ("did you mean") or the provider
it belongs to.
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, BeforeValidator
from pydantic.fields import FieldInfo

from exporter.core.durations import format_duration, parse_duration

PATTERNS: Mapping[str, str] = {
    r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$": (
        "must start with a letter or digit and hold only letters, digits and _ . : - "
        "(at most 128 characters)"
    ),
    r"^[^,]+$": "must not contain a comma (give several values as a list instead)",
}
"""What each ``pattern`` of the config models allows, in words."""

_KIND = {
    "bool": "true or false",
    "int": "a whole number",
    "float": "a number",
    "string": "text",
    "list": "a list (one `- item` per line, or [a, b])",
    "dict": "a mapping of keys to values",
}
_TYPES = {
    "bool_type": "bool",
    "bool_parsing": "bool",
    "int_type": "int",
    "int_parsing": "int",
    "int_from_float": "int",
    "int_parsing_size": "int",
    "float_type": "float",
    "float_parsing": "float",
    "string_type": "string",
    "list_type": "list",
    "tuple_type": "list",
    "set_type": "list",
    "frozen_set_type": "list",
    "iterable_type": "list",
    "dict_type": "dict",
    "model_type": "dict",
    "model_attributes_type": "dict",
    "mapping_type": "dict",
}
_YAML_SHAPE = {
    bool: "true/false",
    int: "a number",
    float: "a number",
    list: "a list",
    dict: "a mapping",
}


_BOUNDS = {
    "greater_than": ("gt", "must be more than {}"),
    "greater_than_equal": ("ge", "must be at least {}"),
    "less_than": ("lt", "must be less than {}"),
    "less_than_equal": ("le", "must be at most {}"),
    "multiple_of": ("multiple_of", "must be a multiple of {}"),
}
_FIXED = {
    "missing": "required key is missing",
    "finite_number": "must be a finite number (not inf or nan)",
    "path_type": "must be a file path",
}


def describe(error: Mapping[str, Any], root: type[BaseModel]) -> str:
    """One pydantic error of a ``root`` model's validation as a sentence."""
    kind: str = error["type"]
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    if kind in ("value_error", "assertion_error"):  # our own validators' messages
        return re.sub(r"^(Value|Assertion) error, ", "", str(error["msg"]))
    if kind in _TYPES:
        return _wrong_type(_TYPES[kind], error.get("input"))
    if kind in _BOUNDS:
        return _bound(kind, ctx, duration=_is_duration_at(root, error["loc"]))
    sentence = _FIXED.get(kind) or _sized(kind, ctx)
    if sentence is not None:
        return sentence
    if kind in ("literal_error", "enum"):
        return f"must be {_choices(str(ctx.get('expected', '')))}, not {_shown(error.get('input'))}"
    return _fallback(str(error.get("msg", "invalid value")))


def _bound(kind: str, ctx: Mapping[str, Any], *, duration: bool) -> str:
    key, words = _BOUNDS[kind]
    limit = ctx.get(key)
    if duration and isinstance(limit, int | float):  # a time is longer or shorter
        words = words.replace("more than", "longer than").replace("less than", "shorter than")
        return words.format(format_duration(float(limit)))
    if isinstance(limit, float) and limit.is_integer():
        return words.format(int(limit))
    return words.format(limit)


def _sized(kind: str, ctx: Mapping[str, Any]) -> str | None:
    """Lengths of lists and strings, and string patterns; None for another error type."""
    if kind == "too_short":
        return f"needs at least {_items(ctx.get('min_length', 1))}"
    if kind == "too_long":
        return f"may hold at most {_items(ctx.get('max_length', 0))}"
    if kind == "string_too_short":
        least = ctx.get("min_length", 1)
        return "must not be empty" if least == 1 else f"must be at least {least} characters long"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters long"
    if kind == "string_pattern_mismatch":
        return PATTERNS.get(str(ctx.get("pattern")), "has characters that are not allowed here")
    return None


def _is_duration_at(root: type[BaseModel], error_loc: Sequence[str | int]) -> bool:
    loc = list(error_loc)
    while loc and isinstance(loc[-1], int):
        loc.pop()  # an item of a list: the list's field says what the item may be
    model = model_at(root, loc)
    field = model.model_fields.get(str(loc[-1])) if model is not None and loc else None
    return field is not None and is_duration(field)


def unknown_key(
    key: str, model: type[BaseModel] | None, others: Mapping[str, type[BaseModel]] | None = None
) -> str:
    """An unknown key: the provider(s) it belongs to, or the nearest valid key, if any.

    ``others`` maps each provider id to its target model, for a key that is valid on another
    provider's targets (``ended_window`` on a Notte target belongs to trigger).
    """
    owners = [name for name, other in (others or {}).items() if key in other.model_fields]
    if owners and model is not None:
        return f"not an option of {_tag(model)} targets: {key} belongs to {_join(owners)}"
    valid = sorted(model.model_fields) if model is not None else []
    near = suggest(key, valid)
    return f"unknown key (did you mean {near}?)" if near else "unknown key"


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """The choice nearest to ``word`` (a likely typo of it), or None when none is close."""
    choices = list(choices)
    folded = {c.lower().replace("_", "").replace("-", ""): c for c in choices}
    same = folded.get(word.lower().replace("_", "").replace("-", ""))
    if same is not None:
        return same
    cut = [c for c in choices if len(word) > 3 and c.lower().startswith(word.lower())]
    if cut:  # the word is a choice cut short: cert_fil means cert_file, not cert
        return min(cut, key=len)
    stems = [c for c in choices if len(c) > 3 and word.lower().startswith(c.lower())]
    if stems:  # CONFIG_FILE means CONFIG (as --config.file), not WEB_CONFIG_FILE
        return max(stems, key=len)
    found = difflib.get_close_matches(word.lower(), [c.lower() for c in choices], n=1, cutoff=0.7)
    return next((c for c in choices if c.lower() == found[0]), None) if found else None


def model_at(root: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model holding the key at the end of ``loc`` (pydantic's location, tags included)."""
    current: type[BaseModel] | None = root
    pending: list[type[BaseModel]] = []
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if pending:  # the union's tag (a target's provider) picks one of the models
            current = next((m for m in pending if _tag(m) == part), None)
            pending = []
            if current is not None:
                continue
        if current is None or part not in current.model_fields:
            return None
        models = _models_in(current.model_fields[part].annotation)
        if len(models) == 1:
            current = models[0]
        elif models:
            pending, current = models, None
        else:
            return None
    return current


def is_duration(field: FieldInfo) -> bool:
    """Whether a field is written as a duration (``30s``) and held in seconds."""
    return any(_parses_durations(m) for m in field.metadata) or _parses_durations(field.annotation)


def _parses_durations(item: object) -> bool:
    if isinstance(item, BeforeValidator):
        return item.func is parse_duration
    if get_origin(item) is Annotated:
        return any(_parses_durations(m) for m in (*item.__metadata__, get_args(item)[0]))  # type: ignore[attr-defined]
    if get_origin(item) in (Union, types.UnionType):
        return any(_parses_durations(a) for a in get_args(item))
    return False


def _models_in(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in get_args(annotation):
        found += [m for m in _models_in(arg) if m not in found]
    return found


def _tag(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("provider")
    if field is None or get_origin(field.annotation) is not Literal:
        return None
    return str(get_args(field.annotation)[0])


def _wrong_type(kind: str, value: object) -> str:
    words = f"must be {_KIND[kind]}"
    if kind == "string" and isinstance(value, bool):
        return words + " (YAML reads yes/no/on/off/true/false as booleans: quote the value)"
    if kind == "string" and isinstance(value, int | float):
        return words + " (YAML read a number here: quote the value)"
    shape = next((n for t, n in _YAML_SHAPE.items() if type(value) is t), None)
    numeric = kind in ("int", "float") and shape == "a number"
    if shape is not None and kind != "dict" and not numeric:
        return f"{words}, not {shape}"
    if isinstance(value, str | float) and kind in ("bool", "int", "float"):
        return f"{words}, not {_shown(value)}"
    return words


def _shown(value: object) -> str:
    """A short rendering of the value that was given (strings quoted, as YAML would)."""
    if not isinstance(value, str):
        text = repr(value)
        return text if len(text) <= 40 else text[:39] + "…"
    return repr(value[:39] + "…") if len(value) > 40 else repr(value)


def _choices(expected: str) -> str:
    """pydantic's ``'a', 'b' or 'c'`` as ``one of a, b, c``; an empty choice as ``(or empty)``."""
    names = re.findall(r"'([^']*)'", expected)
    empty = " (or empty)" if "" in names else ""
    names = [name for name in names if name]
    if len(names) <= 1:
        return (names[0] if names else expected) + empty
    return "one of " + ", ".join(names) + empty


def _items(count: object) -> str:
    return f"{count} entry" if count == 1 else f"{count} entries"


def _join(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _fallback(message: str) -> str:
    """An error type without its own sentence: pydantic's wording turned into the house style."""
    message = re.sub(r"^Input should be\b", "must be", message)
    message = re.sub(r"^(\w+) should\b", "must", message)
    return re.sub(r",? after validation\b.*$", "", message.replace(" should ", " must "))
