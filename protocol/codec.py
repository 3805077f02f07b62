"""Strict JSON for message bodies.

Encoding is canonical (sorted keys, no spaces, UTF-8) so the same message always has the same
bytes. Decoding refuses what a lenient parser would let through and a ledger must not: duplicate
keys (two parsers could read two different amounts), NaN and Infinity, any float (money is integer
fen), integers beyond 2**53 (a JavaScript or double-based reader would silently round them),
and anything that is not UTF-8.

It also puts a limit on everything a peer could use to make one parse expensive or crash it
(protocol.limits): nesting depth (checked on the text before the parser recurses), integer literal
length (checked before int() converts it), string length, fields per object and the characters of
field names. Each limit has its own refusal reason.
"""

import json
import re

from .errors import RemoteProtocolError
from .limits import (
    MAX_FIELD_NAME_CHARS,
    MAX_FIELDS_PER_OBJECT,
    MAX_JSON_DEPTH,
    MAX_NUMBER_DIGITS,
    MAX_SEQ,
    MAX_STRING_CHARS,
)
from .reasons import Reason

# A JSON string as written (the unrolled form: linear, no backtracking on a hostile body).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_BRACKET = re.compile(r"[\[\]{}]")
# Every field name of an object at once, joined by commas (one regex call per object, not per key).
_FIELD_NAMES = re.compile(rf"[a-z0-9_]{{1,{MAX_FIELD_NAME_CHARS}}}(?:,[a-z0-9_]{{1,{MAX_FIELD_NAME_CHARS}}})*")


def encode(obj: dict) -> bytes:
    """Canonical UTF-8 JSON bytes of ``obj``."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _check_depth(text: str) -> None:
    """Refuse nesting deeper than MAX_JSON_DEPTH before the parser, which recurses once per level,
    sees the text. Brackets count outside strings only; a body with few brackets anywhere (the
    usual request) is let through without looking further."""
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return
    if '\\"' in text:  # an escaped quote: only the regex tells where the strings end
        outside = _STRING.sub('""', text)
    else:  # no escaped quote: every other piece between quotes is outside the strings
        outside = "".join(text.split('"')[::2])
    if outside.count("[") + outside.count("{") <= MAX_JSON_DEPTH:
        return
    depth = 0
    for bracket in _BRACKET.findall(outside):
        if bracket in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise RemoteProtocolError(f"nested deeper than {MAX_JSON_DEPTH}", code=Reason.TOO_DEEP)
        else:
            depth -= 1  # unbalanced text is the parser's to refuse


def _check_strings(values) -> None:
    """Bounds on the strings among ``values`` and in their lists, at any depth (_check_depth bounds
    the recursion). Objects inside were checked by _checked_object as the parser built them."""
    for value in values:
        kind = type(value)
        if kind is str:
            if len(value) > MAX_STRING_CHARS:
                raise RemoteProtocolError(f"a string of {len(value)} characters", code=Reason.STRING_TOO_LONG)
        elif kind is list:
            _check_strings(value)


def _checked_object(pairs: list[tuple[str, object]]) -> dict:
    """The parser's hook for every object, innermost first: field count, names and duplicates, and
    the length of every string (integers are bounded by _bounded_int)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise RemoteProtocolError(f"field {key!r} appears twice", code=Reason.DUPLICATE_FIELD)
            seen.add(key)
    if len(obj) > MAX_FIELDS_PER_OBJECT:
        raise RemoteProtocolError(f"an object with {len(obj)} fields", code=Reason.TOO_MANY_FIELDS)
    names = ",".join(obj)
    # The comma count catches a name that itself holds a comma and would pass as two.
    if obj and (not _FIELD_NAMES.fullmatch(names) or names.count(",") != len(obj) - 1):
        raise RemoteProtocolError(f"field names must be [a-z0-9_]{{1,{MAX_FIELD_NAME_CHARS}}}", code=Reason.BAD_FIELD_NAME)
    _check_strings(obj.values())
    return obj


def _refuse_float(text: str):
    raise RemoteProtocolError(f"number {text[:20]} is not an integer", code=Reason.FLOAT_NOT_ALLOWED)


def _refuse_constant(text: str):
    raise RemoteProtocolError(f"{text} is not a number", code=Reason.NAN_NOT_ALLOWED)


def _bounded_int(text: str) -> int:
    # int() of a long digit string costs time and, past Python's own limit, raises ValueError: the
    # length is checked first. 16 digits still reach past 2**53, so the value is checked as well.
    if len(text) > MAX_NUMBER_DIGITS and len(text) > MAX_NUMBER_DIGITS + (text[0] == "-"):
        raise RemoteProtocolError(f"an integer literal of {len(text)} characters", code=Reason.NUMBER_TOO_LONG)
    value = int(text)
    if not -MAX_SEQ <= value <= MAX_SEQ:
        raise RemoteProtocolError(f"integer {text} is beyond 2**53", code=Reason.VALUE_OUT_OF_RANGE)
    return value


def decode(body: bytes) -> dict:
    """Parse a body into a dict, refusing everything listed in this module's docstring."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise RemoteProtocolError("body is not UTF-8", code=Reason.MALFORMED_BODY) from None
    _check_depth(text)
    try:
        obj = json.loads(text, object_pairs_hook=_checked_object, parse_float=_refuse_float,
                         parse_constant=_refuse_constant, parse_int=_bounded_int)
    except json.JSONDecodeError as error:
        raise RemoteProtocolError(f"body is not JSON: {error.msg} at {error.pos}", code=Reason.MALFORMED_BODY) from None
    except RecursionError:  # cannot happen past _check_depth; kept so it can never escape as a crash
        raise RemoteProtocolError("nested too deep", code=Reason.TOO_DEEP) from None
    if not isinstance(obj, dict):
        raise RemoteProtocolError("body is not a JSON object", code=Reason.MALFORMED_BODY)
    return obj
