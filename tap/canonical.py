"""Canonical JSON out, strict JSON in: protocol.codec's rules, written for MicroPython.

MicroPython's ``json`` takes no keyword arguments (no sorted keys, no hooks) and keeps the last of
two duplicate keys, so both directions are written out here. The encoder gives the bytes of
``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)``.
The decoder refuses what protocol.codec.decode refuses, with the same reason and in the same order
(depth first, on the text; then, as the parse meets them, each integer when read and each object
when it closes: duplicates, field count, field names, string lengths).

One known difference, harmless on a tap: a ``\\ud800`` escape not followed by its low half is
refused here (MALFORMED_BODY, MicroPython's strings are UTF-8 and cannot hold it), where CPython
parses it and the field check refuses it. The tap parses only bodies whose ledger signature held.
"""

from tap.errors import (
    TapError, BAD_FIELD_NAME, DUPLICATE_FIELD, FLOAT_NOT_ALLOWED, MALFORMED_BODY, NAN_NOT_ALLOWED,
    NUMBER_TOO_LONG, STRING_TOO_LONG, TOO_DEEP, TOO_MANY_FIELDS, VALUE_OUT_OF_RANGE,
)

MAX_JSON_DEPTH = 8
MAX_NUMBER_DIGITS = 16
MAX_STRING_CHARS = 420  # protocol.limits: the e-card token is the longest string
MAX_FIELDS_PER_OBJECT = 32
MAX_FIELD_NAME_CHARS = 32
MAX_SAFE_INTEGER = 2**53 - 1

_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
_HEX_DIGITS = "0123456789abcdefABCDEF"
_NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"


# ---------------------------------------------------------------- encoding
def _string(text, out):
    out.append('"')
    start = 0
    for i in range(len(text)):
        char = text[i]
        if char == '"' or char == "\\" or char < " ":
            out.append(text[start:i])
            escaped = _SHORT_ESCAPES.get(char)
            out.append(escaped if escaped else "\\u%04x" % ord(char))
            start = i + 1
    out.append(text[start:])
    out.append('"')


def _value(value, out):
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif type(value) is int:
        out.append(str(value))
    elif type(value) is str:
        _string(value, out)
    elif type(value) is dict:
        out.append("{")
        first = True
        for key in sorted(value):
            if type(key) is not str:
                raise TapError("LOCAL", "object keys must be strings")
            if not first:
                out.append(",")
            first = False
            _string(key, out)
            out.append(":")
            _value(value[key], out)
        out.append("}")
    elif type(value) in (list, tuple):
        out.append("[")
        for i in range(len(value)):
            if i:
                out.append(",")
            _value(value[i], out)
        out.append("]")
    else:
        raise TapError("LOCAL", "cannot encode a " + type(value).__name__)


class _Bytes(bytearray):
    """The encoder's output, growing as pieces are appended: a list of ~250 pieces joined at the
    end took two large blocks at once, which a fragmented 96 KiB heap often does not have."""

    def append(self, text):
        self.extend(text.encode("utf-8"))


def encode(obj):
    """Canonical UTF-8 JSON bytes of ``obj`` (dicts, lists, str, int, bool, None; no floats)."""
    out = _Bytes()
    _value(obj, out)
    return bytes(out)


# ---------------------------------------------------------------- decoding
def _fail(code, message):
    raise TapError(code, message)


def _malformed(message, pos):
    _fail(MALFORMED_BODY, "body is not JSON: " + message + " at " + str(pos))


def _check_utf8(body):
    """MALFORMED_BODY unless ``body`` is strict UTF-8 (no surrogates, no overlong forms, at most
    U+10FFFF: what CPython's decoder accepts). MicroPython's own decoder lets those through."""
    n = len(body)
    i = 0
    while i < n:
        byte = body[i]
        if byte < 0x80:
            i += 1
            continue
        low, high = 0x80, 0xBF
        if 0xC2 <= byte <= 0xDF:
            need = 1
        elif 0xE0 <= byte <= 0xEF:
            need = 2
            if byte == 0xE0:
                low = 0xA0
            elif byte == 0xED:
                high = 0x9F
        elif 0xF0 <= byte <= 0xF4:
            need = 3
            if byte == 0xF0:
                low = 0x90
            elif byte == 0xF4:
                high = 0x8F
        else:
            need = 0
        if need == 0 or i + need >= n or not low <= body[i + 1] <= high:
            _fail(MALFORMED_BODY, "body is not UTF-8")
        for j in range(i + 2, i + need + 1):
            if not 0x80 <= body[j] <= 0xBF:
                _fail(MALFORMED_BODY, "body is not UTF-8")
        i += need + 1


_QUOTE, _BACKSLASH = 0x22, 0x5C
_OPEN = (0x5B, 0x7B)    # [ {
_CLOSE = (0x5D, 0x7D)   # ] }
_SPACE = (0x20, 0x09, 0x0A, 0x0D)
_DIGIT_0, _DIGIT_1, _DIGIT_9 = 0x30, 0x31, 0x39
_UNESCAPE = {0x22: '"', 0x5C: "\\", 0x2F: "/", 0x62: "\b", 0x66: "\f", 0x6E: "\n", 0x72: "\r", 0x74: "\t"}


def _check_depth(body):
    """protocol.codec's depth rule: brackets outside strings, counted before the parse."""
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return
    depth = 0
    in_string = False
    escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPEN:
            depth += 1
            if depth > MAX_JSON_DEPTH:
                _fail(TOO_DEEP, "nested deeper than " + str(MAX_JSON_DEPTH))
        elif byte in _CLOSE:
            depth -= 1


def _check_strings(values):
    for value in values:
        if type(value) is str:
            if len(value) > MAX_STRING_CHARS:
                _fail(STRING_TOO_LONG, "a string of " + str(len(value)) + " characters")
        elif type(value) is list:
            _check_strings(value)


def _checked_object(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            _fail(DUPLICATE_FIELD, "field " + repr(key) + " appears twice")
        obj[key] = value
    if len(obj) > MAX_FIELDS_PER_OBJECT:
        _fail(TOO_MANY_FIELDS, "an object with " + str(len(obj)) + " fields")
    for key in obj:
        if not 1 <= len(key) <= MAX_FIELD_NAME_CHARS or any(char not in _NAME_CHARS for char in key):
            _fail(BAD_FIELD_NAME, "field names must be 1-32 of a-z 0-9 _")
    _check_strings(obj.values())
    return obj


def _is_digit(byte):
    return _DIGIT_0 <= byte <= _DIGIT_9


class _Parser:
    """A recursive-descent JSON parser (RFC 8259, as CPython's json reads it with strict=True).
    It walks the bytes, not a str: indexing a non-ASCII str on MicroPython costs a scan."""

    def __init__(self, body):
        self.body = body
        self.end = len(body)
        self.pos = 0

    def at(self, pos):
        return self.body[pos] if pos < self.end else -1

    def skip(self):
        body, pos = self.body, self.pos
        while pos < self.end and body[pos] in _SPACE:
            pos += 1
        self.pos = pos

    def starts(self, word):
        return self.body[self.pos:self.pos + len(word)] == word

    def value(self):
        self.skip()
        byte = self.at(self.pos)
        if byte == 0x7B:
            return self.object()
        if byte == 0x5B:
            return self.array()
        if byte == _QUOTE:
            return self.string()
        if byte == 0x2D or _is_digit(byte):
            if self.starts(b"-Infinity"):
                _fail(NAN_NOT_ALLOWED, "-Infinity is not a number")
            return self.number()
        for word, result in ((b"null", None), (b"true", True), (b"false", False)):
            if self.starts(word):
                self.pos += len(word)
                return result
        for word in (b"NaN", b"Infinity"):
            if self.starts(word):
                _fail(NAN_NOT_ALLOWED, word.decode() + " is not a number")
        _malformed("Expecting value", self.pos)

    def number(self):
        start = pos = self.pos
        if self.at(pos) == 0x2D:
            pos += 1
        if self.at(pos) == _DIGIT_0:
            pos += 1
        elif _DIGIT_1 <= self.at(pos) <= _DIGIT_9:
            while _is_digit(self.at(pos)):
                pos += 1
        else:
            _malformed("Expecting value", start)
        integer_end = pos
        is_float = False
        if self.at(pos) == 0x2E and _is_digit(self.at(pos + 1)):
            pos += 2
            while _is_digit(self.at(pos)):
                pos += 1
            is_float = True
        if self.at(pos) in (0x65, 0x45):
            exponent = pos + 1
            if self.at(exponent) in (0x2B, 0x2D):
                exponent += 1
            if _is_digit(self.at(exponent)):
                pos = exponent
                while _is_digit(self.at(pos)):
                    pos += 1
                is_float = True
        self.pos = pos
        if is_float:
            _fail(FLOAT_NOT_ALLOWED, "number " + self.body[start:pos][:20].decode() + " is not an integer")
        literal = self.body[start:integer_end].decode()
        digits = len(literal) - (1 if literal[0] == "-" else 0)
        if digits > MAX_NUMBER_DIGITS:
            _fail(NUMBER_TOO_LONG, "an integer literal of " + str(len(literal)) + " characters")
        value = int(literal)
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            _fail(VALUE_OUT_OF_RANGE, "integer " + literal + " is beyond 2**53")
        return value

    def string(self):
        body, end_of_body = self.body, self.end
        pos = self.pos + 1
        parts = []
        while True:
            end = pos
            while end < end_of_body:
                byte = body[end]
                if byte == _QUOTE or byte == _BACKSLASH or byte < 0x20:
                    break
                end += 1
            parts.append(body[pos:end].decode())
            if end >= end_of_body:
                _malformed("Unterminated string starting at", self.pos)
            byte = body[end]
            if byte == _QUOTE:
                self.pos = end + 1
                return "".join(parts)
            if byte < 0x20:
                _malformed("Invalid control character", end)
            escape = self.at(end + 1)
            if escape == 0x75:  # \\u
                code = self.hex4(end + 2)
                pos = end + 6
                if 0xD800 <= code <= 0xDBFF and body[pos:pos + 2] == b"\\u":
                    low = self.hex4(pos + 2)
                    if 0xDC00 <= low <= 0xDFFF:
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        pos += 6
                if 0xD800 <= code <= 0xDFFF:
                    _malformed("lone surrogate", end)
                parts.append(chr(code))
            elif escape in _UNESCAPE:
                parts.append(_UNESCAPE[escape])
                pos = end + 2
            else:
                _malformed("Invalid \\escape", end)

    def hex4(self, pos):
        digits = self.body[pos:pos + 4]
        if len(digits) != 4 or any(chr(byte) not in _HEX_DIGITS for byte in digits):
            _malformed("Invalid \\uXXXX escape", pos)
        return int(digits.decode(), 16)

    def object(self):
        pairs = []
        self.pos += 1
        self.skip()
        if self.at(self.pos) == 0x7D:
            self.pos += 1
            return _checked_object(pairs)
        while True:
            self.skip()
            if self.at(self.pos) != _QUOTE:
                _malformed("Expecting property name enclosed in double quotes", self.pos)
            key = self.string()
            self.skip()
            if self.at(self.pos) != 0x3A:
                _malformed("Expecting ':' delimiter", self.pos)
            self.pos += 1
            pairs.append((key, self.value()))
            self.skip()
            byte = self.at(self.pos)
            self.pos += 1
            if byte == 0x7D:
                return _checked_object(pairs)
            if byte != 0x2C:
                _malformed("Expecting ',' delimiter", self.pos - 1)

    def array(self):
        items = []
        self.pos += 1
        self.skip()
        if self.at(self.pos) == 0x5D:
            self.pos += 1
            return items
        while True:
            items.append(self.value())
            self.skip()
            byte = self.at(self.pos)
            self.pos += 1
            if byte == 0x5D:
                return items
            if byte != 0x2C:
                _malformed("Expecting ',' delimiter", self.pos - 1)


def decode(body):
    """The dict a body holds, or TapError with protocol.codec.decode's reason."""
    body = bytes(body)
    _check_utf8(body)
    _check_depth(body)
    parser = _Parser(body)
    obj = parser.value()
    parser.skip()
    if parser.pos != parser.end:
        _malformed("Extra data", parser.pos)
    if type(obj) is not dict:
        _fail(MALFORMED_BODY, "body is not a JSON object")
    return obj
