"""Reading a provider's answer around its rows: the envelope, decoded without the rows.

The top level is decoded into raw JSON values (no copies, nothing built for the rows), so
the rows array can then be decoded by the provider's typed schema a chunk at a time.
Messages name the place as the checked reads do (``response.items: expected an array,
got dict``).
"""

from __future__ import annotations

import msgspec

from exporter.providers.rows import Buffer, raw_kind
from exporter.upstream.errors import PollError, Reason, SchemaError

_OBJECT = msgspec.json.Decoder(dict[str, msgspec.Raw])


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
