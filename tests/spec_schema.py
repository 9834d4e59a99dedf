"""Turn the providers' OpenAPI documents into strict JSON-Schema validators for tests."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from jsonschema import Draft202012Validator, FormatChecker

__all__ = [
    "format_checker",
    "load_spec",
    "resolve",
    "response_problems",
    "response_schema",
    "response_validator",
    "spec_path",
    "undeclared_keys",
]

_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_DURATION = re.compile(
    r"P(?!$)([0-9]+Y)?([0-9]+M)?([0-9]+W)?([0-9]+D)?"
    r"(T(?=[0-9])([0-9]+H)?([0-9]+M)?([0-9]+(\.[0-9]+)?S)?)?"
)


def load_spec(path: Path) -> dict[str, Any]:
    """Parse one OpenAPI YAML document."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict), f"{path} is not an OpenAPI document"
    return document


def spec_path(spec: dict[str, Any], served: str) -> str:
    """The `paths` key whose URL (a server's path prefix + the key) is `served`."""
    prefixes = [urlsplit(server["url"]).path.rstrip("/") for server in spec.get("servers") or []]
    for key in spec["paths"]:
        if any(prefix + key == served for prefix in prefixes or [""]):
            return str(key)
    raise KeyError(f"no operation of the spec is served at {served}")


def response_schema(
    spec: dict[str, Any], path: str, status: int, *, method: str = "get"
) -> dict[str, Any]:
    """The JSON-Schema of one documented response, `$ref`s inlined and `nullable` converted."""
    response = spec["paths"][path][method]["responses"][str(status)]
    schema = resolve(response["content"]["application/json"]["schema"], spec)
    assert isinstance(schema, dict)
    return schema


def response_validator(
    spec: dict[str, Any], path: str, status: int, *, method: str = "get"
) -> Draft202012Validator:
    """A Draft 2020-12 validator, with date-time and duration formats enforced."""
    return _validator(response_schema(spec, path, status, method=method))


def response_problems(
    spec: dict[str, Any], path: str, status: int, document: Any, *, method: str = "get"
) -> list[str]:
    """Everything wrong with `document` as that response: schema errors, then undeclared keys."""
    schema = response_schema(spec, path, status, method=method)
    errors = [
        f"{error.json_path}: {error.message}" for error in _validator(schema).iter_errors(document)
    ]
    return errors + [
        f"{key}: not declared in the spec" for key in undeclared_keys(document, schema)
    ]


def resolve(node: Any, spec: dict[str, Any]) -> Any:
    """Inline local `$ref`s and turn OpenAPI 3.0 `nullable: true` into a `null` type union."""
    if isinstance(node, list):
        return [resolve(item, spec) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return resolve(_pointer(spec, node["$ref"]), spec)
    schema = {key: resolve(value, spec) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is not True:
        return schema
    if isinstance(schema.get("type"), str):
        schema["type"] = [schema["type"], "null"]
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
        return schema
    return {"anyOf": [schema, {"type": "null"}]}


def format_checker() -> FormatChecker:
    """A checker for the formats the specs use, needing no optional jsonschema extras."""
    checker = FormatChecker(formats=())
    checker.checks("date-time")(_is_date_time)
    checker.checks("duration")(_is_duration)
    return checker


def undeclared_keys(instance: Any, schema: dict[str, Any], where: str = "$") -> list[str]:
    """JSON paths of object keys in `instance` that `schema` does not declare as properties.

    Objects whose schema declares no properties at all (free-form maps) are not checked.
    For `anyOf`/`oneOf`, the first branch the instance validates against is followed.
    """
    schema = _branch(instance, schema)
    if isinstance(instance, dict):
        properties = _properties(schema)
        if not properties:
            return []
        found: list[str] = []
        for key, value in instance.items():
            if key in properties:
                found += undeclared_keys(value, properties[key], f"{where}.{key}")
            else:
                found.append(f"{where}.{key}")
        return found
    if isinstance(instance, list) and isinstance(schema.get("items"), dict):
        return [
            key
            for index, item in enumerate(instance)
            for key in undeclared_keys(item, schema["items"], f"{where}[{index}]")
        ]
    return []


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=format_checker())


def _pointer(spec: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"only local references are supported, not {ref}"
    node: Any = spec
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _branch(instance: Any, schema: dict[str, Any]) -> dict[str, Any]:
    for keyword in ("anyOf", "oneOf"):
        for option in schema.get(keyword, []):
            if Draft202012Validator(option).is_valid(instance):
                return _branch(instance, option)
    return schema


def _properties(schema: dict[str, Any]) -> dict[str, Any]:
    """Declared properties, merged across `allOf` parts."""
    properties = dict(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        properties |= _properties(part)
    return properties


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if _DATE_TIME.fullmatch(value) is None:
        return False
    try:
        datetime.fromisoformat(value.upper())
    except ValueError:
        return False
    return True


def _is_duration(value: object) -> bool:
    return not isinstance(value, str) or _DURATION.fullmatch(value) is not None
