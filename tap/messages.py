"""The messages a tap sends (hello, charge; offline_charge in tap.offline) and reads (result,
welcome; config in tap.configs, blocklist and blocklist_delta in tap.blocklists), checked field by
field as protocol.messages checks them, in the same order and with the same reason codes: unknown
fields, missing ones, nested objects, then each field in declaration order, then checks across
fields.

A message here is a plain dict (what the JSON held). Each spec is one string, read when a message
is checked: a tap's heap is small (96 KiB is the aim), and a table of tuples and lambdas costs kilobytes there.
A field is ``name:check``; ``?`` after it: may be null; ``@PART``: a nested object; ``@PART*m-n``:
a list of m to n of them.
"""

from tap import canonical
from tap.errors import (
    TapError, AMOUNT_OUT_OF_RANGE, LINES_DO_NOT_ADD_UP, MISSING_FIELD, UNKNOWN_FIELD, UNKNOWN_TYPE,
    VALUE_OUT_OF_RANGE, WRONG_TYPE,
)

MAX_SEQ = 2**53 - 1
MAX_AMOUNT_FEN = 10000000

# protocol.reasons.Reason and Outcome, and the config's words (protocol.messages), space-delimited.
REASONS = (" OK SAME_SALE TRUNCATED OVERSIZE BAD_MAGIC UNSUPPORTED_VERSION UNSUPPORTED_ALGORITHM BAD_KEY_ID"
           " UNKNOWN_KEY KEY_NOT_FOR_TOPIC BAD_SIGNATURE BAD_TOPIC MALFORMED_BODY DUPLICATE_FIELD"
           " FLOAT_NOT_ALLOWED NAN_NOT_ALLOWED UNKNOWN_TYPE UNKNOWN_FIELD MISSING_FIELD WRONG_TYPE"
           " VALUE_OUT_OF_RANGE AMOUNT_OUT_OF_RANGE LINES_DO_NOT_ADD_UP TOPIC_MISMATCH TOO_DEEP NUMBER_TOO_LONG"
           " STRING_TOO_LONG TOO_MANY_FIELDS BAD_FIELD_NAME UNKNOWN_TERMINAL TERMINAL_REVOKED KIND_NOT_ALLOWED"
           " SEQ_REUSED SEQ_TOO_FAR PIN_BLOCK_INVALID INTERNAL_ERROR SET_ASIDE INSUFFICIENT_FUNDS UNKNOWN_CARD"
           " CARD_BLOCKED CARD_RETURNED OLD_ISSUANCE CARD_IN_USE CARD_UID_MISMATCH ORIGINAL_NOT_FOUND"
           " ALREADY_VOIDED AMOUNT_MISMATCH WRONG_PIN PIN_LOCKED UNKNOWN_STAFF ROLE_NOT_ALLOWED SUPERSEDED"
           " PIN_REQUIRED OVER_BALANCE_LIMIT TOP_UP_OUT_OF_RANGE OVER_DAILY_LIMIT SUPERVISOR_REQUIRED"
           " NOT_SAME_SHIFT NO_SHIFT OPERATOR_NOT_ON_SHIFT SAME_CARD DEPOSITS_OPEN DEPOSIT_MISMATCH"
           " UNKNOWN_ITEM_TYPE VOUCHER_INVALID VOUCHER_EXPIRED VOUCHER_USED DEPOSIT_NOT_HELD ITEM_UNKNOWN"
           " ITEM_WRONG_TYPE ITEM_NOT_AVAILABLE ITEM_NOT_OUT DAMAGE_CODE_UNKNOWN ECARD_INVALID ECARD_EXPIRED"
           " ECARD_STALE ECARD_REPLAYED ECARD_WRONG_DEVICE ECARD_QR_REQUIRED ")
OUTCOMES = " approved declined refused "
CHARGE_MODES = " fixed count menu free "
STAFF_ROLES = " cashier rental front_desk supervisor finance admin technician "
# Not final: the request stays pending and is sent again (PROTOCOL.md §6).
NOT_FINAL_REASONS = ("SET_ASIDE", "INTERNAL_ERROR")

# Characters str.isprintable() refuses, as (first, last) code point ranges: controls, format
# characters, separators other than U+0020, surrogates and private use. Unassigned code points
# (Cn) are not listed: a tap reads text only from bodies the ledger signed, which hold none.
_NOT_PRINTABLE = (
    0x00, 0x1F, 0x7F, 0xA0, 0xAD, 0xAD, 0x600, 0x605, 0x61C, 0x61C, 0x6DD, 0x6DD, 0x70F, 0x70F, 0x890, 0x891,
    0x8E2, 0x8E2, 0x1680, 0x1680, 0x180E, 0x180E, 0x2000, 0x200F, 0x2028, 0x202F, 0x205F, 0x2064, 0x2066, 0x206F,
    0x3000, 0x3000, 0xD800, 0xF8FF, 0xFEFF, 0xFEFF, 0xFFF9, 0xFFFB, 0xFFFE, 0xFFFF, 0x110BD, 0x110BD, 0x110CD,
    0x110CD, 0x13430, 0x13438, 0x1BCA0, 0x1BCA3, 0x1D173, 0x1D17A, 0xE0001, 0xE0001, 0xE0020, 0xE007F,
    0xF0000, 0x10FFFF,
)
_HEX = "0123456789abcdef"
_CARD_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def is_printable(text):
    for char in text:
        code = ord(char)
        if 0x20 <= code < 0x7F:
            continue
        for i in range(0, len(_NOT_PRINTABLE), 2):
            if _NOT_PRINTABLE[i] <= code <= _NOT_PRINTABLE[i + 1]:
                return False
    return True


def _fail(name, message, code):
    raise TapError(code, name + ": " + message)


def _chars_in(value, allowed):
    for char in value:
        if char not in allowed:
            return False
    return True


def _check(kind, name, value):
    """protocol.messages.CHECKS[kind](name, value), each check in the same order."""
    if kind == "not_for_a_tap":
        _fail(name, "a tap is not a rental station", VALUE_OUT_OF_RANGE)
    if kind == "bool":
        if type(value) is not bool:
            _fail(name, "must be true or false", WRONG_TYPE)
        return
    low = None
    if kind in ("seq", "count", "time_ms", "balance", "quantity", "issuance", "amount", "amount_or_zero"):
        code = VALUE_OUT_OF_RANGE
        if kind == "seq" or kind == "quantity" or kind == "issuance":
            low = 1
        elif kind == "balance":
            low = -MAX_SEQ
        elif kind == "amount" or kind == "amount_or_zero":
            low, code = (1 if kind == "amount" else 0), AMOUNT_OUT_OF_RANGE
        else:
            low = 0
        high = 999 if kind == "quantity" else 1000000 if kind == "issuance" else MAX_AMOUNT_FEN if code[0] == "A" else MAX_SEQ
        if type(value) is not int:
            _fail(name, "must be an integer", WRONG_TYPE)
        if not low <= value <= high:
            _fail(name, str(value) + " is out of range", code)
        return
    if type(value) is not str:
        _fail(name, "must be a string", WRONG_TYPE)
    if kind in ("outcome", "reason", "charge_mode", "staff_role"):
        words = OUTCOMES if kind == "outcome" else REASONS if kind == "reason" else (
            CHARGE_MODES if kind == "charge_mode" else STAFF_ROLES)
        if " " in value or " " + value + " " not in words:
            _fail(name, "is not " + kind, VALUE_OUT_OF_RANGE)
        return
    size = len(value)
    allowed = None
    most = 64
    if kind in ("sha256", "nonce", "card_record", "uid"):
        want = 64 if kind == "sha256" else 32 if kind == "nonce" else 192 if kind == "card_record" else None
        if (want is not None and size != want) or (want is None and (size % 2 or size // 2 not in (4, 7, 10))):
            _fail(name, "is not " + kind, VALUE_OUT_OF_RANGE)
        allowed, most = _HEX, size
    elif kind == "card_number":
        allowed, most = _CARD_CHARS, 20
    elif kind == "clock":
        allowed, most = "0123456789:", 5
    elif kind == "id":
        allowed = _ALNUM + "_.-"
    if size > most or (not value and kind != "optional_text") or not is_printable(value):
        _fail(name, "must be 1-" + str(most) + " printable characters", VALUE_OUT_OF_RANGE)
    if allowed is not None and (not _chars_in(value, allowed) or (kind == "card_number" and size < 4) or (
            kind == "id" and (size > 32 or value[0] not in _ALNUM)) or (kind == "clock" and not _is_clock(value))):
        _fail(name, "is not in the allowed form", VALUE_OUT_OF_RANGE)


def _is_clock(value):
    return (len(value) == 5 and value[2] == ":" and ":" not in value[:2] + value[3:] and "00" <= value[:2] <= "23"
            and value[3] <= "5")


# ---------------------------------------------------------------- specs: (name, type, fields, whole)
CARD_REF = ("CardRef", None, "no:card_number issuance:issuance uid:uid", None)
LINE_ITEM = ("LineItem", None, "item:text qty:quantity unit_fen:amount_or_zero", None)
BALANCES = ("Balances", None, "fen:balance bonus:balance points:balance", None)


def _lines_add_up(obj):
    total = 0
    for line in obj["lines"]:
        total += line["qty"] * line["unit_fen"]
    if total != obj["amount_fen"]:
        _fail("lines", "do not add up to " + str(obj["amount_fen"]), LINES_DO_NOT_ADD_UP)


# The parts a request or a reply nests. The config's and blocklists' live in tap.configs and
# tap.blocklists, which the tap loads only while it reads one (their check passes them in).
PARTS = {"CARD_REF": CARD_REF, "LINE_ITEM": LINE_ITEM, "BALANCES": BALANCES}

_REQUEST = ("park:id terminal:id seq:seq terminal_time_ms:time_ms clock_uncertain:bool operator:id"
            " config_version:count card:@CARD_REF")
_CHARGE = _REQUEST + " amount_fen:amount lines:@LINE_ITEM*1-32 pin_sha256:sha256?"

# ---------------------------------------------------------------- what the tap sends
HELLO = ("Hello", "hello", "park:id terminal:id nonce:nonce terminal_time_ms:time_ms", None)
CHARGE = ("Charge", "charge", _CHARGE, _lines_add_up)
# offline_charge: tap.offline (loaded only when the ledger does not answer).

# ---------------------------------------------------------------- what the tap reads
RESULT = ("Result", "result", "park:id terminal:id seq:seq? request_sha256:sha256 outcome:outcome reason:reason"
          " balances:@BALANCES? txn:seq? ledger_time_ms:time_ms detail:optional_text card_record:card_record?"
          " amount_fen:amount_or_zero?", None)
WELCOME = ("Welcome", "welcome", "park:id terminal:id nonce:nonce request_sha256:sha256 highest_seq:count"
           " ledger_time_ms:time_ms", None)
REPLIES = {"result": RESULT, "welcome": WELCOME}


def _fields(spec, parts):
    """(name, check, optional, nested spec or None, (fewest, most) or None) of each field."""
    for text in spec[2].split():
        name, check = text.split(":")
        optional = check.endswith("?")
        if optional:
            check = check[:-1]
        nested = many = None
        if check[0] == "@":
            part = check[1:]
            if "*" in part:
                part, bounds = part.split("*")
                fewest, most = bounds.split("-")
                many = (int(fewest), int(most))
            nested = parts[part]
        yield name, check, optional, nested, many


def read(obj, spec, where="", parts=PARTS):
    """Check ``obj`` (parsed JSON) against ``spec``, its nested parts named in ``parts``; return
    it, or raise TapError."""
    label, kind = spec[0], spec[1]
    if type(obj) is not dict:
        _fail(where or label, "must be an object", WRONG_TYPE)
    expected = [field[0] for field in _fields(spec, parts)]
    unknown = sorted(name for name in obj if name not in expected and not (kind and name == "type"))
    if unknown:
        _fail(where + ",".join(unknown), "unknown field in " + (kind or label), UNKNOWN_FIELD)
    missing = sorted(name for name in expected if name not in obj)
    if missing:
        _fail(where + ",".join(missing), "missing from " + (kind or label), MISSING_FIELD)
    for name, _, _, nested, many in _fields(spec, parts):  # nested parts are read before the fields are checked
        value = obj[name]
        if nested is not None and value is not None:
            if many:
                if type(value) is not list:
                    _fail(name, "must be a list", WRONG_TYPE)
                for item in value:
                    read(item, nested, name + ".", parts)
            else:
                read(value, nested, name + ".", parts)
    for name, check, optional, nested, many in _fields(spec, parts):
        value = obj[name]
        if value is None and optional:
            continue
        if many:
            if type(value) is not list:
                _fail(name, "must be a list", WRONG_TYPE)
            if not many[0] <= len(value) <= many[1]:
                _fail(name, "has too few or too many items", VALUE_OUT_OF_RANGE)
        elif nested is not None:
            if type(value) is not dict:
                _fail(name, "must be " + nested[0], WRONG_TYPE)
        else:
            _check(check, name, value)
    if spec[3] is not None:
        spec[3](obj)
    return obj


def parse(body, specs, parts=PARTS):
    """Decode a verified body into one of ``specs`` (a dict type -> spec); as protocol.messages.parse."""
    return check(canonical.decode(body), specs, parts)


def check(obj, specs, parts=PARTS):
    """A decoded body checked as one of ``specs``: parse's second half."""
    kind = obj.get("type")
    if kind is not None and type(kind) is not str:
        raise TapError(WRONG_TYPE, "message type is not a string")
    spec = specs.get(kind)
    if spec is None:
        raise TapError(UNKNOWN_TYPE, "unknown message type")
    return read(obj, spec, "", parts)


def build(spec, fields):
    """The canonical body bytes of a message the tap sends, checked first (a bug here is LOCAL)."""
    obj = dict(fields)
    obj["type"] = spec[1]
    try:
        read(obj, spec)
    except TapError as error:
        raise TapError("LOCAL", "would send an invalid " + spec[1] + ": " + str(error))
    return canonical.encode(obj)


def charge_fields(park, terminal, seq, time_ms, clock_uncertain, operator, config_version, card, amount_fen, item):
    """A one-line sale of the tap's fixed amount. ``card``: {"no", "issuance", "uid"}."""
    return {
        "park": park, "terminal": terminal, "seq": seq, "terminal_time_ms": time_ms,
        "clock_uncertain": clock_uncertain, "operator": operator, "config_version": config_version,
        "card": card, "amount_fen": amount_fen,
        "lines": [{"item": item, "qty": 1, "unit_fen": amount_fen}], "pin_sha256": None,
    }
