"""The messages a tap sends (hello, charge, offline_charge) and reads (result, welcome, config,
blocklist, blocklist_delta), checked field by field as protocol.messages checks them, in the same
order and with the same reason codes: unknown fields, missing ones, nested objects, then each field
in declaration order, then checks across fields.

A message here is a plain dict (what the JSON held). Builders return the dict to encode; readers
return the checked dict.
"""

from tap import canonical
from tap.errors import TapError

MAX_SEQ = 2**53 - 1
MAX_AMOUNT_FEN = 10000000
MAX_TEXT_CHARS = 64
MAX_LINE_ITEMS = 32
MAX_QUANTITY = 999
MAX_LIST_ENTRIES = 1000

OUTCOMES = ("approved", "declined", "refused")
CHARGE_MODES = ("fixed", "count", "menu", "free")
STAFF_ROLES = ("cashier", "rental", "front_desk", "supervisor", "finance", "admin", "technician")
MAX_MENU_ITEMS = 9
MAX_STAFF_ENTRIES = 120
REASONS = (
    "OK", "SAME_SALE", "TRUNCATED", "OVERSIZE", "BAD_MAGIC", "UNSUPPORTED_VERSION", "UNSUPPORTED_ALGORITHM",
    "BAD_KEY_ID", "UNKNOWN_KEY", "KEY_NOT_FOR_TOPIC", "BAD_SIGNATURE", "BAD_TOPIC", "MALFORMED_BODY",
    "DUPLICATE_FIELD", "FLOAT_NOT_ALLOWED", "NAN_NOT_ALLOWED", "UNKNOWN_TYPE", "UNKNOWN_FIELD", "MISSING_FIELD",
    "WRONG_TYPE", "VALUE_OUT_OF_RANGE", "AMOUNT_OUT_OF_RANGE", "LINES_DO_NOT_ADD_UP", "TOPIC_MISMATCH", "TOO_DEEP",
    "NUMBER_TOO_LONG", "STRING_TOO_LONG", "TOO_MANY_FIELDS", "BAD_FIELD_NAME", "UNKNOWN_TERMINAL",
    "TERMINAL_REVOKED", "KIND_NOT_ALLOWED", "SEQ_REUSED", "SEQ_TOO_FAR", "PIN_BLOCK_INVALID", "INTERNAL_ERROR",
    "SET_ASIDE", "INSUFFICIENT_FUNDS", "UNKNOWN_CARD", "CARD_BLOCKED", "CARD_RETURNED", "OLD_ISSUANCE",
    "CARD_IN_USE", "CARD_UID_MISMATCH", "ORIGINAL_NOT_FOUND", "ALREADY_VOIDED", "AMOUNT_MISMATCH", "WRONG_PIN",
    "PIN_LOCKED", "UNKNOWN_STAFF", "ROLE_NOT_ALLOWED", "SUPERSEDED", "PIN_REQUIRED", "OVER_BALANCE_LIMIT",
    "TOP_UP_OUT_OF_RANGE", "OVER_DAILY_LIMIT", "SUPERVISOR_REQUIRED", "NOT_SAME_SHIFT", "NO_SHIFT",
    "OPERATOR_NOT_ON_SHIFT", "SAME_CARD",
)
# Not final: the request stays pending and is sent again (PROTOCOL.md §6).
NOT_FINAL_REASONS = ("SET_ASIDE", "INTERNAL_ERROR")

# Characters str.isprintable() refuses, as (first, last) code point ranges: controls, format
# characters, separators other than U+0020, surrogates and private use. Unassigned code points
# (Cn) are not listed: a tap reads text only from bodies the ledger signed, which hold none.
_NOT_PRINTABLE = (
    (0x00, 0x1F), (0x7F, 0xA0), (0xAD, 0xAD), (0x600, 0x605), (0x61C, 0x61C), (0x6DD, 0x6DD), (0x70F, 0x70F),
    (0x890, 0x891), (0x8E2, 0x8E2), (0x1680, 0x1680), (0x180E, 0x180E), (0x2000, 0x200F), (0x2028, 0x202F),
    (0x205F, 0x2064), (0x2066, 0x206F), (0x3000, 0x3000), (0xD800, 0xF8FF), (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB), (0xFFFE, 0xFFFF), (0x110BD, 0x110BD), (0x110CD, 0x110CD), (0x13430, 0x13438),
    (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001), (0xE0020, 0xE007F), (0xF0000, 0x10FFFF),
)


def is_printable(text):
    for char in text:
        code = ord(char)
        if code < 0x7F and code >= 0x20:
            continue
        for first, last in _NOT_PRINTABLE:
            if first <= code <= last:
                return False
    return True


def _fail(name, message, code):
    raise TapError(code, name + ": " + message)


def _type_name(value):
    return type(value).__name__


def _integer(name, value, low, high, code="VALUE_OUT_OF_RANGE"):
    if type(value) is not int:
        _fail(name, "must be an integer, not " + _type_name(value), "WRONG_TYPE")
    if not low <= value <= high:
        _fail(name, str(value) + " is outside " + str(low) + ".." + str(high), code)


def _chars_in(value, allowed):
    return all(char in allowed for char in value)


def _string(name, value, allowed=None, max_chars=MAX_TEXT_CHARS, allow_empty=False, min_chars=0):
    if type(value) is not str:
        _fail(name, "must be a string, not " + _type_name(value), "WRONG_TYPE")
    if len(value) > max_chars or (not value and not allow_empty) or not is_printable(value):
        _fail(name, "must be 1-" + str(max_chars) + " printable characters", "VALUE_OUT_OF_RANGE")
    if allowed is not None and (len(value) < min_chars or not _chars_in(value, allowed)):
        _fail(name, "is not in the allowed form", "VALUE_OUT_OF_RANGE")


_HEX = "0123456789abcdef"
_CARD_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"


def _id(name, value):
    _string(name, value)
    if len(value) > 32 or value[0] not in _ID_CHARS[:62] or not _chars_in(value, _ID_CHARS):
        _fail(name, "is not in the allowed form", "VALUE_OUT_OF_RANGE")


def _hex(name, value, chars, what):
    if type(value) is not str:
        _fail(name, "must be a string, not " + _type_name(value), "WRONG_TYPE")
    if len(value) != chars:
        _fail(name, "must be " + what, "VALUE_OUT_OF_RANGE")
    _string(name, value, _HEX, chars)


def _uid(name, value):
    if type(value) is not str:
        _fail(name, "must be a string, not " + _type_name(value), "WRONG_TYPE")
    if len(value) % 2 or len(value) // 2 not in (4, 7, 10):
        _fail(name, "must be a 4, 7 or 10 byte UID in hex", "VALUE_OUT_OF_RANGE")
    _string(name, value, _HEX, 20)


def _member(name, value, words, what):
    if type(value) is not str:
        _fail(name, "must be a string, not " + _type_name(value), "WRONG_TYPE")
    if value not in words:
        _fail(name, repr(value[:32]) + " is not " + what, "VALUE_OUT_OF_RANGE")


def _clock(name, value):
    _string(name, value, "0123456789:", 5)
    if (len(value) != 5 or value[2] != ":" or ":" in value[:2] + value[3:] or not "00" <= value[:2] <= "23"
            or not "0" <= value[3] <= "5"):
        _fail(name, "is not in the allowed form", "VALUE_OUT_OF_RANGE")


def _bool(name, value):
    if type(value) is not bool:
        _fail(name, "must be true or false", "WRONG_TYPE")


CHECKS = {
    "id": _id,
    "text": lambda n, v: _string(n, v),
    "optional_text": lambda n, v: _string(n, v, allow_empty=True),
    "seq": lambda n, v: _integer(n, v, 1, MAX_SEQ),
    "count": lambda n, v: _integer(n, v, 0, MAX_SEQ),
    "time_ms": lambda n, v: _integer(n, v, 0, MAX_SEQ),
    "amount": lambda n, v: _integer(n, v, 1, MAX_AMOUNT_FEN, "AMOUNT_OUT_OF_RANGE"),
    "amount_or_zero": lambda n, v: _integer(n, v, 0, MAX_AMOUNT_FEN, "AMOUNT_OUT_OF_RANGE"),
    "balance": lambda n, v: _integer(n, v, -MAX_SEQ, MAX_SEQ),
    "quantity": lambda n, v: _integer(n, v, 1, MAX_QUANTITY),
    "issuance": lambda n, v: _integer(n, v, 1, 1000000),
    "card_number": lambda n, v: _string(n, v, _CARD_CHARS, 20, min_chars=4),
    "card_record": lambda n, v: _hex(n, v, 192, "96 bytes in hex"),
    "bool": _bool,
    "sha256": lambda n, v: _hex(n, v, 64, "64 hex digits"),
    "nonce": lambda n, v: _hex(n, v, 32, "32 hex digits"),
    "uid": _uid,
    "outcome": lambda n, v: _member(n, v, OUTCOMES, "an outcome"),
    "reason": lambda n, v: _member(n, v, REASONS, "a reason code"),
    "charge_mode": lambda n, v: _member(n, v, CHARGE_MODES, "a charge mode"),
    "staff_role": lambda n, v: _member(n, v, STAFF_ROLES, "a staff role"),
    "clock": _clock,
}


class Spec:
    """A message's fields in declaration order: (name, check, optional, nested Spec, (fewest, most)
    for a list of nested or None). ``type`` is the JSON "type", or None for a part."""

    def __init__(self, name, type_, fields, whole=None):
        self.name = name
        self.type = type_
        self.fields = fields
        self.whole = whole


def _field(name, check, optional=False, nested=None, many=None):
    return (name, check, optional, nested, many)


def read(obj, spec, where=""):
    """Check ``obj`` (parsed JSON) against ``spec``; return it, or raise TapError."""
    if type(obj) is not dict:
        _fail(where or spec.name, "must be an object", "WRONG_TYPE")
    names = [name for name in obj if not (spec.type and name == "type")]
    expected = [field[0] for field in spec.fields]
    unknown = sorted(name for name in names if name not in expected)
    if unknown:
        _fail(where + ",".join(unknown), "unknown field in " + (spec.type or spec.name), "UNKNOWN_FIELD")
    missing = sorted(name for name in expected if name not in obj)
    if missing:
        _fail(where + ",".join(missing), "missing from " + (spec.type or spec.name), "MISSING_FIELD")
    for name, _, _, nested, many in spec.fields:  # nested parts are read before the fields are checked
        value = obj[name]
        if nested is not None and value is not None:
            if many:
                if type(value) is not list:
                    _fail(name, "must be a list", "WRONG_TYPE")
                for item in value:
                    read(item, nested, name + ".")
            else:
                read(value, nested, name + ".")
    for name, check, optional, nested, many in spec.fields:
        value = obj[name]
        if value is None and optional:
            continue
        if many:
            if type(value) is not list:
                _fail(name, "must be a list", "WRONG_TYPE")
            if not many[0] <= len(value) <= many[1]:
                _fail(name, "must hold " + str(many[0]) + "-" + str(many[1]) + " items", "VALUE_OUT_OF_RANGE")
        elif nested is not None:
            if type(value) is not dict:
                _fail(name, "must be " + nested.name, "WRONG_TYPE")
        else:
            CHECKS[check](name, value)
    if spec.whole is not None:
        spec.whole(obj)
    return obj


# ---------------------------------------------------------------- parts
CARD_REF = Spec("CardRef", None, (_field("no", "card_number"), _field("issuance", "issuance"), _field("uid", "uid")))
LINE_ITEM = Spec("LineItem", None, (_field("item", "text"), _field("qty", "quantity"), _field("unit_fen", "amount_or_zero")))
BALANCES = Spec("Balances", None, (_field("fen", "balance"), _field("bonus", "balance"), _field("points", "balance")))
CARD_ENTRY = Spec("CardEntry", None, (_field("no", "card_number"), _field("issuance", "issuance"), _field("fen", "balance")))
OFFLINE_POLICY = Spec("OfflinePolicy", None, (
    _field("max_transaction_fen", "amount"), _field("max_card_fen", "amount"), _field("max_terminal_fen", "amount"),
    _field("max_count", "count"), _field("max_offline_ms", "time_ms"), _field("max_reboots", "count"),
    _field("blocklist_max_age_ms", "time_ms"), _field("allowed_modes", "text")))
PARK_RULES = Spec("ParkRules", None, (
    _field("no_pin_limit_fen", "amount_or_zero"), _field("card_fee_fen", "amount_or_zero"),
    _field("damage_fee_fen", "amount_or_zero")))
MENU_ITEM = Spec("MenuItem", None, (_field("item", "id"), _field("name", "text"), _field("price_fen", "amount")))
STAFF_ENTRY = Spec("StaffEntry", None, (_field("staff", "id"), _field("name", "text"), _field("role", "staff_role"),
                                        _field("card_no", "card_number")))


def _station_whole(obj):
    if obj["mode"] != "free" and not obj["menu"]:
        _fail("menu", "a " + obj["mode"] + " station needs at least one item (its price)", "VALUE_OUT_OF_RANGE")
    if (obj["opens"] is None) != (obj["closes"] is None) or (obj["opens"] is not None and obj["opens"] == obj["closes"]):
        _fail("opens,closes", "must be two different times, or both null (always open)", "VALUE_OUT_OF_RANGE")
    if len(set(item["item"] for item in obj["menu"])) != len(obj["menu"]):
        _fail("menu", "item ids must differ", "VALUE_OUT_OF_RANGE")


STATION_SETTINGS = Spec("StationSettings", None, (
    _field("name", "text"), _field("mode", "charge_mode"), _field("menu", None, nested=MENU_ITEM, many=(0, MAX_MENU_ITEMS)),
    _field("opens", "clock", optional=True), _field("closes", "clock", optional=True)), _station_whole)


def _config_whole(obj):
    cards = [entry["card_no"] for entry in obj["staff"]]
    if len(set(cards)) != len(cards) or len(set(entry["staff"] for entry in obj["staff"])) != len(cards):
        _fail("staff", "staff ids and card numbers must differ", "VALUE_OUT_OF_RANGE")


_REQUEST_FIELDS = (
    _field("park", "id"), _field("terminal", "id"), _field("seq", "seq"), _field("terminal_time_ms", "time_ms"),
    _field("clock_uncertain", "bool"), _field("operator", "id"), _field("config_version", "count"),
    _field("card", None, nested=CARD_REF))
_CARDS = (0, MAX_LIST_ENTRIES)


def _lines_add_up(obj):
    total = 0
    for line in obj["lines"]:
        total += line["qty"] * line["unit_fen"]
    if total != obj["amount_fen"]:
        _fail("lines", "do not add up to " + str(obj["amount_fen"]), "LINES_DO_NOT_ADD_UP")


def _offline_whole(obj):
    _lines_add_up(obj)
    if obj["pin_sha256"] is not None:
        _fail("pin_sha256", "an offline sale never carries a PIN", "VALUE_OUT_OF_RANGE")
    if obj["supersedes_seq"] is not None and obj["supersedes_seq"] >= obj["seq"]:
        _fail("supersedes_seq", "must be below seq", "VALUE_OUT_OF_RANGE")


_CHARGE_FIELDS = _REQUEST_FIELDS + (
    _field("amount_fen", "amount"), _field("lines", None, nested=LINE_ITEM, many=(1, MAX_LINE_ITEMS)),
    _field("pin_sha256", "sha256", optional=True))

# ---------------------------------------------------------------- what the tap sends
HELLO = Spec("Hello", "hello", (_field("park", "id"), _field("terminal", "id"), _field("nonce", "nonce"),
                                _field("terminal_time_ms", "time_ms")))
CHARGE = Spec("Charge", "charge", _CHARGE_FIELDS, _lines_add_up)
OFFLINE_CHARGE = Spec("OfflineCharge", "offline_charge", _CHARGE_FIELDS + (
    _field("supersedes_seq", "seq", optional=True), _field("approved_ms", "time_ms")), _offline_whole)
STATUS = Spec("TerminalStatus", "status", (
    _field("park", "id"), _field("terminal", "id"), _field("is_online", "bool"), _field("highest_seq", "count"),
    _field("queue_depth", "count"), _field("oldest_queued_ms", "time_ms", optional=True), _field("time_ms", "time_ms")))

# ---------------------------------------------------------------- what the tap reads
RESULT = Spec("Result", "result", (
    _field("park", "id"), _field("terminal", "id"), _field("seq", "seq", optional=True),
    _field("request_sha256", "sha256"), _field("outcome", "outcome"), _field("reason", "reason"),
    _field("balances", None, optional=True, nested=BALANCES), _field("txn", "seq", optional=True),
    _field("ledger_time_ms", "time_ms"), _field("detail", "optional_text"),
    _field("card_record", "card_record", optional=True), _field("amount_fen", "amount_or_zero", optional=True)))
WELCOME = Spec("Welcome", "welcome", (
    _field("park", "id"), _field("terminal", "id"), _field("nonce", "nonce"), _field("request_sha256", "sha256"),
    _field("highest_seq", "count"), _field("ledger_time_ms", "time_ms")))
CONFIG = Spec("TerminalConfig", "config", (
    _field("park", "id"), _field("terminal", "id"), _field("version", "count"), _field("issued_ms", "time_ms"),
    _field("offline", None, nested=OFFLINE_POLICY), _field("rules", None, nested=PARK_RULES),
    _field("station", None, optional=True, nested=STATION_SETTINGS),
    _field("staff", None, nested=STAFF_ENTRY, many=(0, MAX_STAFF_ENTRIES))), _config_whole)
BLOCKLIST = Spec("Blocklist", "blocklist", (
    _field("park", "id"), _field("version", "count"), _field("issued_ms", "time_ms"),
    _field("blocked", None, nested=CARD_ENTRY, many=_CARDS), _field("low", None, nested=CARD_ENTRY, many=_CARDS)))
BLOCKLIST_DELTA = Spec("BlocklistDelta", "blocklist_delta", (
    _field("park", "id"), _field("from_version", "count"), _field("version", "count"), _field("issued_ms", "time_ms"),
    _field("blocked", None, nested=CARD_ENTRY, many=_CARDS), _field("unblocked", None, nested=CARD_ENTRY, many=_CARDS),
    _field("low", None, nested=CARD_ENTRY, many=_CARDS)))

REPLIES = {"result": RESULT, "welcome": WELCOME}
BROADCASTS = {"config": CONFIG, "blocklist": BLOCKLIST, "blocklist_delta": BLOCKLIST_DELTA}


def parse(body, specs):
    """Decode a verified body into one of ``specs`` (a dict type -> Spec); as protocol.messages.parse."""
    obj = canonical.decode(body)
    kind = obj.get("type")
    if kind is not None and type(kind) is not str:
        raise TapError("WRONG_TYPE", "message type is " + _type_name(kind) + ", not a string")
    spec = specs.get(kind)
    if spec is None:
        raise TapError("UNKNOWN_TYPE", "unknown message type " + repr(str(kind)[:32]))
    return read(obj, spec)


def build(spec, fields):
    """The canonical body bytes of a message the tap sends, checked first (a bug here is LOCAL)."""
    obj = dict(fields)
    obj["type"] = spec.type
    try:
        read(obj, spec)
    except TapError as error:
        raise TapError("LOCAL", "would send an invalid " + spec.type + ": " + str(error))
    return canonical.encode(obj)


def charge_fields(park, terminal, seq, time_ms, clock_uncertain, operator, config_version, card, amount_fen, item):
    """A one-line sale of the tap's fixed amount. ``card``: {"no", "issuance", "uid"}."""
    return {
        "park": park, "terminal": terminal, "seq": seq, "terminal_time_ms": time_ms,
        "clock_uncertain": clock_uncertain, "operator": operator, "config_version": config_version,
        "card": card, "amount_fen": amount_fen,
        "lines": [{"item": item, "qty": 1, "unit_fen": amount_fen}], "pin_sha256": None,
    }
