"""Reading a provider's answer around its rows: the envelope, decoded without the rows.

The top level is decoded into raw JSON values (no copies, nothing built for the rows), so
the rows array can then be decoded by the provider's typed schema a chunk at a time.
Messages name the place as the checked reads do (``response.items: expected an array,
got dict``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from exporter.providers.fields import scalar
from exporter.providers.rows import CHUNK_BYTES, Buffer, raw_kind
from exporter.upstream.errors import PollError, Reason, SchemaError

_OBJECT = msgspec.json.Decoder(dict[str, msgspec.Raw])
T = TypeVar("T")


def typed(decoder: msgspec.json.Decoder[T], body: bytes) -> T | None:
    """A small answer decoded whole in one C call, when it is valid for ``decoder``'s type
    (envelope and rows); else ``None``, and the checked path reads it (a large answer
    always: its rows are decoded a chunk at a time)."""
    if len(body) > CHUNK_BYTES:
        return None
    try:
        return decoder.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return None


def decode_object(body: bytes, where: str) -> dict[str, msgspec.Raw]:
    """The answer's top-level object, its values raw."""
    try:
        return _OBJECT.decode(body)
    except msgspec.ValidationError:
        raise SchemaError(f"{where}: expected an object, got {raw_kind(body)}") from None
    except msgspec.DecodeError as exc:
        raise PollError(Reason.DECODE, f"response is not valid JSON: {exc}") from None
    except RecursionError:
        raise too_deep() from None


def too_deep() -> PollError:
    """The error of an answer nested deeper than the decoder follows."""
    return PollError(Reason.DECODE, "response is not valid JSON: nested too deeply")


def decode_any(body: bytes) -> dict[str, msgspec.Raw] | bytes:
    """The answer's top-level object (values raw), or the answer itself when it is an array."""
    if body.lstrip()[:1] == b"[":
        try:
            msgspec.json.decode(body, type=msgspec.Raw)
        except msgspec.DecodeError as exc:
            raise PollError(Reason.DECODE, f"response is not valid JSON: {exc}") from None
        except RecursionError:
            raise too_deep() from None
        return body
    return decode_object(body, "response")


def array(value: msgspec.Raw | None, where: str) -> Buffer:
    """A raw value that must be a JSON array: a view of the answer's bytes (no copy)."""
    text = memoryview(b"null" if value is None else value)
    if text[:1].tobytes() != b"[":
        raise SchemaError(f"{where}: expected an array, got {raw_kind(bytes(text))}")
    return text


def obj(value: msgspec.Raw | None, where: str) -> dict[str, msgspec.Raw]:
    """A raw value that must be a JSON object, its values raw."""
    return decode_object(b"null" if value is None else bytes(value), where)


def scalars(values: Mapping[str, msgspec.Raw], *keys: str) -> dict[str, Any]:
    """The named values decoded (nested ones only by shape), for the checked reads."""
    return {key: scalar(values[key]) for key in keys if key in values}
