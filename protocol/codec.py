"""Strict JSON for message bodies.

Encoding is canonical (sorted keys, no spaces, UTF-8) so the same message always has the same
bytes. Decoding refuses what a lenient parser would let through and a ledger must not: duplicate
keys (two parsers could read two different amounts), NaN and Infinity, any float (money is integer
fen), integers beyond 2**53 (a JavaScript or double-based reader would silently round them),
and anything that is not UTF-8.
"""

import json

from .errors import RemoteProtocolError
from .limits import MAX_SEQ
from .reasons import Reason


def encode(obj: dict) -> bytes:
    """Canonical UTF-8 JSON bytes of ``obj``."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _refuse_duplicates(pairs: list[tuple[str, object]]) -> dict:
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise RemoteProtocolError(f"field {key!r} appears twice", code=Reason.DUPLICATE_FIELD)
        obj[key] = value
    return obj


def _refuse_float(text: str):
    raise RemoteProtocolError(f"number {text} is not an integer", code=Reason.FLOAT_NOT_ALLOWED)


def _refuse_constant(text: str):
    raise RemoteProtocolError(f"{text} is not a number", code=Reason.NAN_NOT_ALLOWED)


def _bounded_int(text: str) -> int:
    # Python's int() of a huge digit string is itself a denial-of-service risk; the payload limit
    # already bounds the digits, and anything past 2**53 is refused right here.
    value = int(text)
    if abs(value) > MAX_SEQ:
        raise RemoteProtocolError(f"integer {text[:20]} is beyond 2**53", code=Reason.VALUE_OUT_OF_RANGE)
    return value


def decode(body: bytes) -> dict:
    """Parse a body into a dict, refusing everything listed in this module's docstring."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise RemoteProtocolError("body is not UTF-8", code=Reason.MALFORMED_BODY) from None
    try:
        obj = json.loads(
            text,
            object_pairs_hook=_refuse_duplicates,
            parse_float=_refuse_float,
            parse_constant=_refuse_constant,
            parse_int=_bounded_int,
        )
    except json.JSONDecodeError as error:
        raise RemoteProtocolError(f"body is not JSON: {error.msg} at {error.pos}", code=Reason.MALFORMED_BODY) from None
    if not isinstance(obj, dict):
        raise RemoteProtocolError("body is not a JSON object", code=Reason.MALFORMED_BODY)
    return obj
