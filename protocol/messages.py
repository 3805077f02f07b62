"""Message types. Frozen, slotted, keyword-only dataclasses that validate on construction.

Each message's JSON form is its fields plus ``"type"``. Every field is required (but the few added
within version 1, which may be left out when null: see ``_f``) and no other field is allowed
(within a protocol version, unknown fields are refused). Amounts are integer fen.
"""

from dataclasses import dataclass, field, fields
from enum import Enum
import re
from typing import ClassVar

from . import codec, ecard
from .errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from .limits import (
    CARD_UID_BYTES,
    MAX_AMOUNT_FEN,
    MAX_LINE_ITEMS,
    MAX_MENU_ITEMS,
    MAX_QUANTITY,
    MAX_STAFF_ENTRIES,
    MAX_SEQ,
    MAX_TEXT_CHARS,
    MAX_TIME_MS,
    NONCE_HEX_CHARS,
)
from .money import card_account
from .reasons import Outcome, Reason
from .topics import _ID


class Channel(str, Enum):
    """How money enters or leaves the park: each is a channel account in the ledger."""

    CASH = "cash"
    WECHAT = "wechat"
    ALIPAY = "alipay"
    BANK = "bank"


class CardKind(str, Enum):
    TEMPORARY = "temporary"
    MEMBER = "member"


class CardState(str, Enum):
    """A card issuance as the front desk sees it (a lost card is blocked for the reason LOST)."""

    ACTIVE = "active"
    LOST = "lost"
    BLOCKED = "blocked"
    RETURNED = "returned"


class ChargeMode(str, Enum):
    """How a station sells, as Chinese card terminals offer it (a front desk sells nothing: its mode
    is its terminal's, never the ledger's)."""

    FIXED = "fixed"  # 定额: every tap pays the price of the station's first item
    COUNT = "count"  # 计次: number of uses x the first item's price (its name is the unit)
    MENU = "menu"    # 菜单: the cashier picks items by their key, 1 to 9
    FREE = "free"    # 自由: the cashier types the amount


class StaffRole(str, Enum):
    """A staff member's role (protocol.kinds.STAFF_ROLES says which kinds each may send)."""

    CASHIER = "cashier"
    RENTAL = "rental"
    FRONT_DESK = "front_desk"
    SUPERVISOR = "supervisor"
    FINANCE = "finance"
    ADMIN = "admin"
    TECHNICIAN = "technician"


class RentalPricePer(str, Enum):
    """How a rental item type is priced: once per rental, or per started hour out."""

    SESSION = "session"
    HOUR = "hour"


class PrinterState(str, Enum):
    """What a terminal's receipt printer answered when the terminal last asked it (its status, §6.2)."""

    READY = "ready"
    PAPER_NEAR_END = "paper_near_end"  # still prints: the roll is to be changed soon
    PAPER_OUT = "paper_out"
    COVER_OPEN = "cover_open"
    OFFLINE = "offline"                # did not answer


class RentalItemState(str, Enum):
    AVAILABLE = "available"
    OUT = "out"
    IN_REPAIR = "in_repair"
    RETIRED = "retired"


class DepositState(str, Enum):
    """An open deposit order as a rental desk sees it: paid and waiting for its item, or the item out."""

    HELD = "held"
    OUT = "out"


class RentalCondition(str, Enum):
    """What the rental desk found when an item came back."""

    INTACT = "intact"
    DAMAGED = "damaged"
    LOST = "lost"


class RefundRoute(str, Enum):
    """The way a released deposit goes back: the way it came (原路退回)."""

    CARD = "card"
    CASH = "cash"
    WECHAT = "wechat"
    ALIPAY = "alipay"
    BANK = "bank"
    ONLINE_WECHAT = "online_wechat"
    ONLINE_ALIPAY = "online_alipay"


# ---------------------------------------------------------------- field checks
def _fail(name: str, message: str, reason: Reason) -> None:
    raise LocalProtocolError(f"{name}: {message}", code=reason)


def _integer(name, value, low, high, reason=Reason.VALUE_OUT_OF_RANGE):
    if type(value) is not int:  # bool is an int subclass; refuse it too
        _fail(name, f"must be an integer, not {type(value).__name__}", Reason.WRONG_TYPE)
    if not low <= value <= high:
        _fail(name, f"{value} is outside {low}..{high}", reason)


def _string(name, value, pattern=None, max_chars=MAX_TEXT_CHARS, allow_empty=False):
    if type(value) is not str:
        _fail(name, f"must be a string, not {type(value).__name__}", Reason.WRONG_TYPE)
    if len(value) > max_chars or (not value and not allow_empty) or not value.isprintable():
        _fail(name, f"must be 1-{max_chars} printable characters", Reason.VALUE_OUT_OF_RANGE)
    if pattern is not None and not pattern.fullmatch(value):
        _fail(name, f"{value!r} is not in the allowed form", Reason.VALUE_OUT_OF_RANGE)


def _hex(name, value, chars: int, what: str):
    # The type is checked before len() or a pattern sees the value (a list has a length too).
    if type(value) is not str:
        _fail(name, f"must be a string, not {type(value).__name__}", Reason.WRONG_TYPE)
    if len(value) != chars:
        _fail(name, f"must be {what}", Reason.VALUE_OUT_OF_RANGE)
    _string(name, value, _HEX, chars)


def _uid(name, value):
    if type(value) is not str:
        _fail(name, f"must be a string, not {type(value).__name__}", Reason.WRONG_TYPE)
    if len(value) % 2 or len(value) // 2 not in CARD_UID_BYTES:
        _fail(name, "must be a 4, 7 or 10 byte UID in hex", Reason.VALUE_OUT_OF_RANGE)
    _string(name, value, _HEX, 20)


def _member(name, value, enum, what: str):
    # Only a string may be looked up: a list or an object is unhashable and must be refused, not raise.
    if type(value) is not str:
        _fail(name, f"must be a string, not {type(value).__name__}", Reason.WRONG_TYPE)
    if value not in enum._value2member_map_:
        _fail(name, f"{value[:32]!r} is not {what}", Reason.VALUE_OUT_OF_RANGE)


_HEX = re.compile(r"^[0-9a-f]+$")
_CARD_NUMBER = re.compile(r"^[0-9A-Z]{4,20}$")
_PHONE = re.compile(r"\+?[0-9]{6,14}")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CLOCK = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
# protocol.voucher's token: only characters a QR code's alphanumeric mode holds.
_VOUCHER = re.compile(r"FPV1:[A-Z2-7]{100,400}")
# protocol.ecard's token (at most MAX_TOKEN_CHARS, 420): the same alphabet, as the 2D scanner read it.
_ECARD = re.compile(r"FPE1:[A-Z2-7]{100,415}")
# A terminal's software version as its package names it (PEP 440 and a local part: 0.1.0, 1.2.0rc1+g3f2a).
_SOFTWARE_VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+_-]{0,31}")
_CODES = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}(,[A-Za-z0-9][A-Za-z0-9_.-]{0,31}){0,7}")

CHECKS = {
    "id": lambda n, v: _string(n, v, _ID),
    "text": lambda n, v: _string(n, v),
    "optional_text": lambda n, v: _string(n, v, allow_empty=True),
    "seq": lambda n, v: _integer(n, v, 1, MAX_SEQ),
    "count": lambda n, v: _integer(n, v, 0, MAX_SEQ),
    "time_ms": lambda n, v: _integer(n, v, 0, MAX_TIME_MS),
    "amount": lambda n, v: _integer(n, v, 1, MAX_AMOUNT_FEN, Reason.AMOUNT_OUT_OF_RANGE),
    "amount_or_zero": lambda n, v: _integer(n, v, 0, MAX_AMOUNT_FEN, Reason.AMOUNT_OUT_OF_RANGE),
    "balance": lambda n, v: _integer(n, v, -MAX_SEQ, MAX_SEQ),
    "quantity": lambda n, v: _integer(n, v, 1, MAX_QUANTITY),
    "issuance": lambda n, v: _integer(n, v, 1, 1_000_000),
    "card_number": lambda n, v: _string(n, v, _CARD_NUMBER, 20),
    "phone": lambda n, v: _string(n, v, _PHONE, 15),
    "day": lambda n, v: _string(n, v, _DAY, 10),
    "clock": lambda n, v: _string(n, v, _CLOCK, 5),
    "card_record": lambda n, v: _hex(n, v, 192, "96 bytes in hex"),
    "bool": lambda n, v: type(v) is bool or _fail(n, "must be true or false", Reason.WRONG_TYPE),
    "sha256": lambda n, v: _hex(n, v, 64, "64 hex digits"),
    "nonce": lambda n, v: _hex(n, v, NONCE_HEX_CHARS, f"{NONCE_HEX_CHARS} hex digits"),
    "uid": _uid,
    "channel": lambda n, v: _member(n, v, Channel, "a channel"),
    "card_kind": lambda n, v: _member(n, v, CardKind, "a card kind"),
    "card_state": lambda n, v: _member(n, v, CardState, "a card state"),
    "outcome": lambda n, v: _member(n, v, Outcome, "an outcome"),
    "reason": lambda n, v: _member(n, v, Reason, "a reason code"),
    "charge_mode": lambda n, v: _member(n, v, ChargeMode, "a charge mode"),
    "staff_role": lambda n, v: _member(n, v, StaffRole, "a staff role"),
    "voucher": lambda n, v: _string(n, v, _VOUCHER, 410),
    "ecard": lambda n, v: _string(n, v, _ECARD, 420),
    "codes": lambda n, v: v == "" or _string(n, v, _CODES, 8 * 33),
    "rental_price_per": lambda n, v: _member(n, v, RentalPricePer, "a rental price unit"),
    "rental_item_state": lambda n, v: _member(n, v, RentalItemState, "a rental item state"),
    "rental_condition": lambda n, v: _member(n, v, RentalCondition, "a return condition"),
    "deposit_state": lambda n, v: _member(n, v, DepositState, "an open deposit's state"),
    "refund_route": lambda n, v: _member(n, v, RefundRoute, "a refund route"),
    "printer_state": lambda n, v: _member(n, v, PrinterState, "a printer state"),
    "software_version": lambda n, v: _string(n, v, _SOFTWARE_VERSION, 32),
}


def _f(check: str, *, optional: bool = False, nested=None, many: bool | tuple[int, int] = False, empty_default=False,
       added: bool = False):
    """A field with a named check (optional: may be null, and defaults to None when built in Python —
    on the wire it must still be present; nested: a sub-message type; many: a list of ``nested``,
    True for 1..MAX_LINE_ITEMS items or (fewest, most); empty_default: a list that defaults to none
    when built in Python, and is still required on the wire; added: a nullable field added within
    version 1, left out of the body when null and read as null when missing, so every body written
    before it existed — a tap's, a queued request's, the worked example — stays byte-identical)."""
    if many is True:
        many = (1, MAX_LINE_ITEMS)
    metadata = {"check": check, "optional": optional or added, "nested": nested, "many": many, "added": added}
    if added:
        return field(default=None, metadata=metadata)
    if empty_default:
        return field(default=(), metadata=metadata)
    return field(default=None, metadata=metadata) if optional else field(metadata=metadata)


_SPECS: dict[type, tuple] = {}
_ADDED: dict[type, frozenset] = {}


def _added(cls) -> frozenset:
    """The names of ``cls``'s fields added within version 1 (see ``_f``)."""
    names = _ADDED.get(cls)
    if names is None:
        names = _ADDED[cls] = frozenset(f.name for f in fields(cls) if f.metadata.get("added"))
    return names


def _specs(cls) -> tuple:
    """(name, check, optional, nested, many) per field, worked out once per class: validation runs
    on every message the ledger reads or writes, so it must not re-inspect the dataclass each time."""
    specs = _SPECS.get(cls)
    if specs is None:
        specs = _SPECS[cls] = tuple(
            (f.name, CHECKS.get(f.metadata["check"]), f.metadata["optional"], f.metadata["nested"], f.metadata["many"])
            for f in fields(cls)
        )
    return specs


class Message:
    """Behaviour shared by every message type."""

    TYPE: ClassVar[str] = ""

    def __post_init__(self):
        for name, check, optional, nested, many in _specs(type(self)):
            value = getattr(self, name)
            if value is None and optional:
                continue
            if many:
                if type(value) is not tuple:
                    _fail(name, "must be a list", Reason.WRONG_TYPE)
                if not many[0] <= len(value) <= many[1]:
                    _fail(name, f"must hold {many[0]}-{many[1]} items", Reason.VALUE_OUT_OF_RANGE)
                if not all(type(item) is nested for item in value):
                    _fail(name, f"items must be {nested.__name__}", Reason.WRONG_TYPE)
            elif nested is not None:
                if type(value) is not nested:
                    _fail(name, f"must be {nested.__name__}", Reason.WRONG_TYPE)
            else:
                check(name, value)
        self._check_whole()

    def _check_whole(self) -> None:
        """Checks across fields; subclasses override."""

    def to_obj(self) -> dict:
        obj = {} if not self.TYPE else {"type": self.TYPE}
        added = _added(type(self))
        for name, _, _, nested, many in _specs(type(self)):
            value = getattr(self, name)
            if value is None and name in added:
                continue
            if value is not None and nested is not None:
                value = [item.to_obj() for item in value] if many else value.to_obj()
            obj[name] = value
        return obj

    def to_bytes(self) -> bytes:
        return codec.encode(self.to_obj())

    @classmethod
    def from_obj(cls, obj: dict, *, where: str = ""):
        """Build from parsed JSON, refusing unknown and missing fields (raises LocalProtocolError)."""
        if not isinstance(obj, dict):
            _fail(where or cls.__name__, "must be an object", Reason.WRONG_TYPE)
        specs = _specs(cls)
        names = set(obj) - ({"type"} if cls.TYPE else set())
        expected = {spec[0] for spec in specs}
        if unknown := names - expected:
            _fail(where + ",".join(sorted(unknown)), f"unknown field in {cls.TYPE or cls.__name__}", Reason.UNKNOWN_FIELD)
        if missing := expected - names - _added(cls):
            _fail(where + ",".join(sorted(missing)), f"missing from {cls.TYPE or cls.__name__}", Reason.MISSING_FIELD)
        values = {}
        for name, _, _, nested, many in specs:
            value = obj.get(name)
            if nested is not None and value is not None:
                if many:
                    if not isinstance(value, list):
                        _fail(name, "must be a list", Reason.WRONG_TYPE)
                    value = tuple(nested.from_obj(item, where=f"{name}.") for item in value)
                else:
                    value = nested.from_obj(value, where=f"{name}.")
            values[name] = value
        return cls(**values)


def printable_detail(text: object) -> str:
    """A text as a reply's ``detail`` may carry it: printable and at most MAX_TEXT_CHARS long, so
    that no refusal (whose text may quote what a peer sent) can fail to build its own answer."""
    text = str(text)[:MAX_TEXT_CHARS]
    return text if text.isprintable() else "".join(char if char.isprintable() else "?" for char in text)


# ---------------------------------------------------------------- parts
@dataclass(frozen=True, slots=True, kw_only=True)
class CardRef(Message):
    """The card a request is about: number and issuance from its signed record, UID from the reader."""

    no: str = _f("card_number")
    issuance: int = _f("issuance")
    uid: str = _f("uid")
    # The e-card QR as the 2D scanner read it (protocol.ecard, PROTOCOL.md §5.8) when the card is a
    # member's phone: number, issuance and uid are then the token's, and the ledger checks the token.
    ecard: str | None = _f("ecard", added=True)

    def _check_whole(self):
        if self.ecard is None:
            return
        try:
            credential = ecard.parse_token(self.ecard)[0]
        except ProtocolError as error:
            _fail("card.ecard", error.args[0], Reason.VALUE_OUT_OF_RANGE)
        if (credential.card_no, credential.issuance, credential.device_tag) != (self.no, self.issuance, self.uid):
            _fail("card.ecard", "names another card, issuance or device than no, issuance and uid",
                  Reason.VALUE_OUT_OF_RANGE)

    @property
    def account(self) -> str:
        return card_account(self.no, self.issuance)


@dataclass(frozen=True, slots=True, kw_only=True)
class LineItem(Message):
    item: str = _f("text")
    qty: int = _f("quantity")
    unit_fen: int = _f("amount_or_zero")


@dataclass(frozen=True, slots=True, kw_only=True)
class Balances(Message):
    """A card's balances after a transaction, per asset."""

    fen: int = _f("balance")
    bonus: int = _f("balance")
    points: int = _f("balance")


# ---------------------------------------------------------------- requests (terminal -> ledger)
@dataclass(frozen=True, slots=True, kw_only=True)
class Request(Message):
    """Fields every request carries. ``(terminal, seq)`` is its idempotency key, forever."""

    park: str = _f("id")
    terminal: str = _f("id")
    seq: int = _f("seq")
    terminal_time_ms: int = _f("time_ms")
    clock_uncertain: bool = _f("bool")
    operator: str = _f("id")
    config_version: int = _f("count")
    card: CardRef = _f("card", nested=CardRef)


@dataclass(frozen=True, slots=True, kw_only=True)
class CardIssue(Request):
    """A card handed to a visitor: refundable card fee plus an opening balance, paid through a channel."""

    TYPE: ClassVar[str] = "card_issue"
    card_kind: str = _f("card_kind")
    card_fee_fen: int = _f("amount_or_zero")
    opening_fen: int = _f("amount_or_zero")
    channel: str = _f("channel")
    payment_ref: str = _f("optional_text")

    def _check_whole(self):
        if self.card_fee_fen + self.opening_fen > MAX_AMOUNT_FEN:
            _fail("card_fee_fen+opening_fen", "over the amount bound", Reason.AMOUNT_OUT_OF_RANGE)


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberOpen(Request):
    """A real-name member card: as CardIssue, plus the member's name and phone, and the PIN they
    chose, sealed in the attachment named by ``pin_sha256``."""

    TYPE: ClassVar[str] = "member_open"
    member_name: str = _f("text")
    phone: str = _f("phone")
    card_fee_fen: int = _f("amount_or_zero")
    opening_fen: int = _f("amount_or_zero")
    channel: str = _f("channel")
    payment_ref: str = _f("optional_text")
    pin_sha256: str = _f("sha256")


@dataclass(frozen=True, slots=True, kw_only=True)
class TopUp(Request):
    TYPE: ClassVar[str] = "top_up"
    amount_fen: int = _f("amount")
    channel: str = _f("channel")
    payment_ref: str = _f("optional_text")


@dataclass(frozen=True, slots=True, kw_only=True)
class Charge(Request):
    """A sale at a station; the lines must add up to the amount. ``pin_sha256`` names the sealed
    PIN block attached to the envelope when the card needs a PIN for this amount, else null."""

    TYPE: ClassVar[str] = "charge"
    amount_fen: int = _f("amount")
    lines: tuple = _f("lines", nested=LineItem, many=True)
    pin_sha256: str | None = _f("sha256", optional=True)

    def _check_whole(self):
        if sum(line.qty * line.unit_fen for line in self.lines) != self.amount_fen:
            _fail("lines", f"do not add up to {self.amount_fen}", Reason.LINES_DO_NOT_ADD_UP)


@dataclass(frozen=True, slots=True, kw_only=True)
class OfflineCharge(Charge):
    """A sale the terminal approved on its own, within the signed offline policy, while the ledger
    was out of reach. It happened: the ledger applies it even if it overdraws the card. When it
    follows an online attempt that got no answer, ``supersedes_seq`` names that attempt, and the
    ledger applies at most one of the two. Never carries a PIN (a PIN is never queued)."""

    TYPE: ClassVar[str] = "offline_charge"
    supersedes_seq: int | None = _f("seq", optional=True)
    approved_ms: int = _f("time_ms")  # the terminal's best time for the sale (see clock_uncertain)

    def _check_whole(self):
        Charge._check_whole(self)
        if self.pin_sha256 is not None:
            _fail("pin_sha256", "an offline sale never carries a PIN", Reason.VALUE_OUT_OF_RANGE)
        if self.supersedes_seq is not None and self.supersedes_seq >= self.seq:
            _fail("supersedes_seq", "must name an earlier seq", Reason.VALUE_OUT_OF_RANGE)


@dataclass(frozen=True, slots=True, kw_only=True)
class Void(Request):
    """Undo this terminal's own earlier Charge, named by its seq; the amount must match it. Needs a
    supervisor (card number here, PIN in the sealed block)."""

    TYPE: ClassVar[str] = "void"
    original_seq: int = _f("seq")
    amount_fen: int = _f("amount")
    supervisor_card_no: str = _f("card_number")
    pin_sha256: str = _f("sha256")


@dataclass(frozen=True, slots=True, kw_only=True)
class CardReturn(Request):
    """A temporary card handed back: balance plus card fee refunded through ``channel``, less
    ``damage_fee_fen`` when the card comes back damaged (at most the card fee)."""

    TYPE: ClassVar[str] = "card_return"
    channel: str = _f("channel")
    payment_ref: str = _f("optional_text")
    damage_fee_fen: int = _f("amount_or_zero")


@dataclass(frozen=True, slots=True, kw_only=True)
class LossReport(Request):
    """挂失: a member reports ``card`` lost; the ledger blocks it at once (a blocklist delta)."""

    TYPE: ClassVar[str] = "loss_report"


@dataclass(frozen=True, slots=True, kw_only=True)
class CardUnblock(Request):
    """解挂: a card reported lost has been found; it works again."""

    TYPE: ClassVar[str] = "card_unblock"


@dataclass(frozen=True, slots=True, kw_only=True)
class CardReplace(Request):
    """补卡: ``card`` is the new card; balance, bonus and points move from the blocked ``from_card_no``
    (issuance ``from_issuance``), history kept. Needs a supervisor: their staff card number here and
    their PIN in the sealed block (``pin_sha256``)."""

    TYPE: ClassVar[str] = "card_replace"
    from_card_no: str = _f("card_number")
    from_issuance: int = _f("issuance")
    supervisor_card_no: str = _f("card_number")
    pin_sha256: str = _f("sha256")


@dataclass(frozen=True, slots=True, kw_only=True)
class Reversal(Request):
    """冲正: undo this terminal's own top-up named by ``original_seq`` within the same shift; the
    amount must match. Needs a supervisor (card number here, PIN in the sealed block)."""

    TYPE: ClassVar[str] = "reversal"
    original_seq: int = _f("seq")
    amount_fen: int = _f("amount")
    supervisor_card_no: str = _f("card_number")
    pin_sha256: str = _f("sha256")


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberTransfer(Request):
    """Move real money from the member card ``card`` to another member's card, where the park allows
    it; the source member's PIN travels sealed (``pin_sha256``). Bonus and points stay put."""

    TYPE: ClassVar[str] = "member_transfer"
    to_card_no: str = _f("card_number")
    to_issuance: int = _f("issuance")
    amount_fen: int = _f("amount")
    pin_sha256: str = _f("sha256")


@dataclass(frozen=True, slots=True, kw_only=True)
class PinUnlock(Request):
    """Unlock the PIN of ``card`` (a member's or a staff card) after too many wrong tries. Needs a
    supervisor (card number here, PIN in the sealed block)."""

    TYPE: ClassVar[str] = "pin_unlock"
    supervisor_card_no: str = _f("card_number")
    pin_sha256: str = _f("sha256")


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberLookup(Request):
    """The front desk finds a member's cards by phone number (a lost card cannot be tapped): ``card``
    is the asking staff member's card. Only front desk staff and supervisors get an answer."""

    TYPE: ClassVar[str] = "member_lookup"
    phone: str = _f("phone")


@dataclass(frozen=True, slots=True, kw_only=True)
class CardBalance(Request):
    """Asks for the balances of the visitor's card ``card`` as the books hold them now, so a till can
    show them when the card is tapped (the card itself holds none). Read only: nothing is booked;
    the common card checks run, so a lost card is refused CARD_BLOCKED and a copy CARD_UID_MISMATCH."""

    TYPE: ClassVar[str] = "card_balance"


@dataclass(frozen=True, slots=True, kw_only=True)
class StationReport(Request):
    """Asks for one station's takings on one business day (``card`` is the asking staff member's
    card). Only supervisors, finance and admins get it, and only on terminals allowed to ask."""

    TYPE: ClassVar[str] = "station_report"
    station: str = _f("id")
    business_day: str = _f("day")


@dataclass(frozen=True, slots=True, kw_only=True)
class ShiftOpen(Request):
    """A staff member logs in on the terminal: ``card`` is the staff card, ``operator`` the staff id
    it carries, and the PIN travels sealed in the attachment named by ``pin_sha256``."""

    TYPE: ClassVar[str] = "shift_open"
    pin_sha256: str = _f("sha256")


@dataclass(frozen=True, slots=True, kw_only=True)
class ShiftClose(Request):
    """The logged-in staff member ends the shift; ``card`` is the staff card."""

    TYPE: ClassVar[str] = "shift_close"


@dataclass(frozen=True, slots=True, kw_only=True)
class ShiftHandover(Request):
    """交班: the logged-in staff member ends the shift, and the ledger answers with the shift's slip
    (``ShiftSlip``). ``counted_fen`` is the blind count: the cash the cashier counted in the drawer,
    typed before the till shows any expected figure; null at a till that takes no cash. ``card`` is
    the staff card. (``shift_close`` still ends a shift without a count or a slip.)"""

    TYPE: ClassVar[str] = "shift_handover"
    counted_fen: int | None = _f("amount_or_zero", optional=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class Hello(Message):
    """Sent on connect to learn the highest seq the ledger holds for this terminal. Not idempotent
    and never stored: the nonce binds the Welcome to this Hello."""

    TYPE: ClassVar[str] = "hello"
    park: str = _f("id")
    terminal: str = _f("id")
    nonce: str = _f("nonce")
    terminal_time_ms: int = _f("time_ms")


# ---------------------------------------------------------------- replies (ledger -> terminal)
@dataclass(frozen=True, slots=True, kw_only=True)
class Result(Message):
    """The ledger's final answer to one request. ``request_sha256`` is the SHA-256 of the request's
    whole payload, so a Result can never be matched to the wrong request. ``seq`` is null only when
    the request could not be authenticated or parsed."""

    TYPE: ClassVar[str] = "result"
    park: str = _f("id")
    terminal: str = _f("id")
    seq: int | None = _f("seq", optional=True)
    request_sha256: str = _f("sha256")
    outcome: str = _f("outcome")
    reason: str = _f("reason")
    balances: Balances | None = _f("balances", optional=True, nested=Balances)
    txn: int | None = _f("seq", optional=True)
    ledger_time_ms: int = _f("time_ms")
    detail: str = _f("optional_text")
    # For an approved card_issue, member_open or card_replace: the 96-byte record to write on the
    # card (protocol.card_record), signed by the ledger's card-record key for the card's UID, in hex.
    card_record: str | None = _f("card_record", optional=True)
    # For an approved request that moved money: the amount the ledger booked (a charge's amount, a
    # return's refund: balance + card fee - damage fee). Null otherwise.
    amount_fen: int | None = _f("amount_or_zero", optional=True)

    @property
    def is_approved(self) -> bool:
        return self.outcome == Outcome.APPROVED


@dataclass(frozen=True, slots=True, kw_only=True)
class Welcome(Message):
    TYPE: ClassVar[str] = "welcome"
    park: str = _f("id")
    terminal: str = _f("id")
    nonce: str = _f("nonce")
    request_sha256: str = _f("sha256")
    highest_seq: int = _f("count")
    ledger_time_ms: int = _f("time_ms")


# ---------------------------------------------------------------- ledger broadcasts (retained)
@dataclass(frozen=True, slots=True, kw_only=True)
class OfflinePolicy(Message):
    """What a terminal may approve on its own while the ledger is out of reach. A per-card cap
    applies per terminal: the exposure per card is the cap times the terminals offline at once."""

    max_transaction_fen: int = _f("amount")
    max_card_fen: int = _f("amount")          # per card, per offline window, on this terminal
    max_terminal_fen: int = _f("amount")      # all cards together, per offline window
    max_count: int = _f("count")              # sales per offline window
    max_offline_ms: int = _f("time_ms")       # since the last contact with the ledger
    max_reboots: int = _f("count")            # reboots while offline before selling stops
    blocklist_max_age_ms: int = _f("time_ms")  # an older blocklist has expired: selling stops
    allowed_modes: str = _f("text")           # comma-separated charge modes (terminal.config)


@dataclass(frozen=True, slots=True, kw_only=True)
class ParkRules(Message):
    """The park rules a till must agree on with the ledger, which owns them: a till that used its
    own copy would not ask for a PIN the ledger requires, or would book another card fee."""

    no_pin_limit_fen: int = _f("amount_or_zero")  # a member sale above this needs the member's PIN
    card_fee_fen: int = _f("amount_or_zero")      # the refundable deposit on a temporary card
    # What a desk keeps of the deposit for a damaged card; never more than the card's own deposit
    # (the ledger caps it per card: a card issued before a fee change keeps its deposit).
    damage_fee_fen: int = _f("amount_or_zero")


@dataclass(frozen=True, slots=True, kw_only=True)
class MenuItem(Message):
    """One thing a station sells at a set price; ``item`` is the ledger's id for it."""

    item: str = _f("id")
    name: str = _f("text")
    price_fen: int = _f("amount")


@dataclass(frozen=True, slots=True, kw_only=True)
class StationSettings(Message):
    """How the terminal's station sells and when, as set on the ledger (``fieldpos station ...``).
    ``opens``/``closes``: HH:MM in the park's time zone, both empty for always open; a ``closes``
    before ``opens`` runs past midnight. Outside them the till refuses visitors' sales."""

    name: str = _f("text")
    mode: str = _f("charge_mode")
    menu: tuple = _f("menu", nested=MenuItem, many=(0, MAX_MENU_ITEMS))
    opens: str = _f("clock", optional=True)
    closes: str = _f("clock", optional=True)

    def _check_whole(self):
        if self.mode != ChargeMode.FREE and not self.menu:
            _fail("menu", f"a {self.mode} station needs at least one item (its price)", Reason.VALUE_OUT_OF_RANGE)
        if (self.opens is None) != (self.closes is None) or (self.opens is not None and self.opens == self.closes):
            _fail("opens,closes", "must be two different times, or both null (always open)", Reason.VALUE_OUT_OF_RANGE)
        if len({item.item for item in self.menu}) != len(self.menu):
            _fail("menu", "item ids must differ", Reason.VALUE_OUT_OF_RANGE)


@dataclass(frozen=True, slots=True, kw_only=True)
class StaffEntry(Message):
    """A staff member the till may log in (by their staff card's number) and name on screens and
    receipts. Never a PIN or its hash: the ledger checks PINs."""

    staff: str = _f("id")
    name: str = _f("text")
    role: str = _f("staff_role")
    card_no: str = _f("card_number")


@dataclass(frozen=True, slots=True, kw_only=True)
class DamageFee(Message):
    """One kind of damage a rental desk may pick on return, and what it costs the renter."""

    code: str = _f("id")
    name: str = _f("text")
    fee_fen: int = _f("amount")


# A rental station's stock, as its config carries it: enough for one desk of rods, bikes or boats.
MAX_RENTAL_TYPES = 16
MAX_RENTAL_ITEMS = 300
MAX_DAMAGE_FEES = 8


@dataclass(frozen=True, slots=True, kw_only=True)
class RentalType(Message):
    """An item type a rental station hands out, and what renting it costs (``fieldpos rental type``).
    ``allowed_minutes`` 0: no time limit, never late."""

    item_type: str = _f("id")
    name: str = _f("text")
    deposit_fen: int = _f("amount")
    price_fen: int = _f("amount_or_zero")
    price_per: str = _f("rental_price_per")
    allowed_minutes: int = _f("count")
    grace_minutes: int = _f("count")
    late_fee_per_hour_fen: int = _f("amount_or_zero")
    lost_fee_fen: int = _f("amount_or_zero")
    damage: tuple = _f("damage", nested=DamageFee, many=(0, MAX_DAMAGE_FEES))

    def _check_whole(self):
        if len({fee.code for fee in self.damage}) != len(self.damage):
            _fail("damage", "damage codes must differ", Reason.VALUE_OUT_OF_RANGE)


@dataclass(frozen=True, slots=True, kw_only=True)
class RentalItem(Message):
    """One item by the label stuck on it (a QR or barcode sticker)."""

    label: str = _f("id")
    item_type: str = _f("id")
    state: str = _f("rental_item_state")


@dataclass(frozen=True, slots=True, kw_only=True)
class RentalStock(Message):
    """A rental station's item types and items, in its terminals' config. An item's state is the
    one at publishing: the ledger, not the config, decides whether an item is out."""

    item_types: tuple = _f("item_types", nested=RentalType, many=(0, MAX_RENTAL_TYPES))
    items: tuple = _f("items", nested=RentalItem, many=(0, MAX_RENTAL_ITEMS))

    def _check_whole(self):
        types = {t.item_type for t in self.item_types}
        if len(types) != len(self.item_types):
            _fail("item_types", "item type ids must differ", Reason.VALUE_OUT_OF_RANGE)
        if len({item.label for item in self.items}) != len(self.items):
            _fail("items", "labels must differ", Reason.VALUE_OUT_OF_RANGE)
        if any(item.item_type not in types for item in self.items):
            _fail("items", "an item's type is not among item_types", Reason.VALUE_OUT_OF_RANGE)


@dataclass(frozen=True, slots=True, kw_only=True)
class TerminalConfig(Message):
    """The terminal's signed config snapshot, retained on its ``cfg`` topic. Versions only go up.
    Everything a till sells by comes from here; only hardware settings stay on the terminal."""

    TYPE: ClassVar[str] = "config"
    park: str = _f("id")
    terminal: str = _f("id")
    version: int = _f("count")
    issued_ms: int = _f("time_ms")
    offline: OfflinePolicy = _f("policy", nested=OfflinePolicy)
    rules: ParkRules = _f("rules", nested=ParkRules)
    # Null only when the ledger knows no such station (the till keeps its local settings).
    station: StationSettings | None = _f("station", optional=True, nested=StationSettings)
    staff: tuple = _f("staff", nested=StaffEntry, many=(0, MAX_STAFF_ENTRIES), empty_default=True)  # active staff
    # A rental station's stock; null for every other station.
    rental: RentalStock | None = _f("rental", optional=True, nested=RentalStock)

    def _check_whole(self):
        cards = [entry.card_no for entry in self.staff]
        if len(set(cards)) != len(cards) or len({entry.staff for entry in self.staff}) != len(cards):
            _fail("staff", "staff ids and card numbers must differ", Reason.VALUE_OUT_OF_RANGE)


@dataclass(frozen=True, slots=True, kw_only=True)
class CardEntry(Message):
    """A card issuance on the blocklist or the low-balance list (``fen``: its balance, or 0)."""

    no: str = _f("card_number")
    issuance: int = _f("issuance")
    fen: int = _f("balance")


# Blocked cards are few (lost member cards, offline overdrafts); the low-balance list is trimmed to
# the emptiest cards so that a snapshot stays under MAX_BROADCAST_BYTES (~45 bytes an entry).
MAX_LIST_ENTRIES = 1_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Blocklist(Message):
    """The park's blocklist snapshot, retained on the park's blocklist topic, plus the cards whose
    balance is too low to sell them anything offline. Versions only go up."""

    TYPE: ClassVar[str] = "blocklist"
    park: str = _f("id")
    version: int = _f("count")
    issued_ms: int = _f("time_ms")
    blocked: tuple = _f("cards", nested=CardEntry, many=(0, MAX_LIST_ENTRIES))
    low: tuple = _f("cards", nested=CardEntry, many=(0, MAX_LIST_ENTRIES))


@dataclass(frozen=True, slots=True, kw_only=True)
class BlocklistDelta(Message):
    """What changed from ``from_version`` to ``version``; a terminal that holds another version
    than ``from_version`` has missed something and asks for the snapshot (by sending Hello)."""

    TYPE: ClassVar[str] = "blocklist_delta"
    park: str = _f("id")
    from_version: int = _f("count")
    version: int = _f("count")
    issued_ms: int = _f("time_ms")
    blocked: tuple = _f("cards", nested=CardEntry, many=(0, MAX_LIST_ENTRIES))
    unblocked: tuple = _f("cards", nested=CardEntry, many=(0, MAX_LIST_ENTRIES))
    low: tuple = _f("cards", nested=CardEntry, many=(0, MAX_LIST_ENTRIES))  # fen 0..: new low balance, or cleared with fen = -1


@dataclass(frozen=True, slots=True, kw_only=True)
class TerminalStatus(Message):
    """The terminal's retained heartbeat (and, with ``is_online`` false, its last will).

    ``printer`` and ``software_version`` were added within version 1 (left out when null): a status
    from a terminal built before them, or from one with no printer (a tap point), is still valid."""

    TYPE: ClassVar[str] = "status"
    park: str = _f("id")
    terminal: str = _f("id")
    is_online: bool = _f("bool")
    highest_seq: int = _f("count")
    queue_depth: int = _f("count")
    oldest_queued_ms: int | None = _f("time_ms", optional=True)
    time_ms: int = _f("time_ms")
    printer: str | None = _f("printer_state", added=True)  # a PrinterState value
    software_version: str | None = _f("software_version", added=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class StationReportReply(Message):
    """The answer to a StationReport: the station's sales on that business day, as the books say."""

    TYPE: ClassVar[str] = "station_report_reply"
    park: str = _f("id")
    terminal: str = _f("id")
    seq: int = _f("seq")
    request_sha256: str = _f("sha256")
    station: str = _f("id")
    business_day: str = _f("day")
    sales_count: int = _f("count")
    sales_fen: int = _f("balance")          # charges and offline sales, less voids
    offline_count: int = _f("count")
    voids_count: int = _f("count")
    ledger_time_ms: int = _f("time_ms")

    @property
    def is_approved(self) -> bool:
        return True


# A slip lists one line per kind of transaction and per tender seen in the shift: there are fewer
# request kinds than this (24), and fewer tenders (channels, card balance, bonus).
MAX_SLIP_LINES = 32


@dataclass(frozen=True, slots=True, kw_only=True)
class SlipLine(Message):
    """One line of a shift slip: a kind of transaction or a tender, how many, and how much."""

    name: str = _f("id")
    count: int = _f("count")
    fen: int = _f("balance")


@dataclass(frozen=True, slots=True, kw_only=True)
class ShiftSlip(Message):
    """The answer to a ShiftHandover: the shift's totals as the books hold them at the handover.
    ``kinds``: each kind of transaction but voids and reversals, with its count and amount;
    ``tenders``: money in (positive) or out through each channel, and what sales took from cards
    (``card`` real money, ``bonus`` promotional credit); voids and reversals; refunds (money paid
    out through a channel). The cash drawer: ``cash_expected_fen`` is what the books say it holds
    from this shift, ``cash_counted_fen`` the blind count (null: not counted) and
    ``cash_over_short_fen`` = counted - expected (positive over, negative short), booked to the
    cash-over/short account."""

    TYPE: ClassVar[str] = "shift_slip"
    park: str = _f("id")
    terminal: str = _f("id")
    seq: int = _f("seq")
    request_sha256: str = _f("sha256")
    staff: str = _f("id")
    opened_ms: int = _f("time_ms")
    business_day: str = _f("day")
    kinds: tuple = _f("slip_lines", nested=SlipLine, many=(0, MAX_SLIP_LINES))
    tenders: tuple = _f("slip_lines", nested=SlipLine, many=(0, MAX_SLIP_LINES))
    voids_count: int = _f("count")
    voids_fen: int = _f("balance")
    refunds_count: int = _f("count")
    refunds_fen: int = _f("balance")
    cash_expected_fen: int = _f("balance")
    cash_counted_fen: int | None = _f("amount_or_zero", optional=True)
    cash_over_short_fen: int | None = _f("balance", optional=True)
    ledger_time_ms: int = _f("time_ms")

    @property
    def is_approved(self) -> bool:
        return True

    def _check_whole(self):
        if (self.cash_counted_fen is None) != (self.cash_over_short_fen is None):
            _fail("cash_over_short_fen", "is given when, and only when, the cash was counted", Reason.VALUE_OUT_OF_RANGE)
        if self.cash_counted_fen is not None and \
                self.cash_counted_fen - self.cash_expected_fen != self.cash_over_short_fen:
            _fail("cash_over_short_fen", "must be counted - expected", Reason.VALUE_OUT_OF_RANGE)


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberCard(Message):
    """One member card issuance found by a MemberLookup, with its balances."""

    no: str = _f("card_number")
    issuance: int = _f("issuance")
    uid: str = _f("uid")
    name: str = _f("text")
    state: str = _f("card_state")
    fen: int = _f("balance")
    bonus: int = _f("balance")
    points: int = _f("balance")


# A phone number shared by a family holds a few cards; more than this is not a desk's lookup.
MAX_LOOKUP_CARDS = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberLookupReply(Message):
    """The answer to a MemberLookup: the newest issuance of every member card on that phone number
    (none: no member has it). A staff member who may not look gets a declined Result instead."""

    TYPE: ClassVar[str] = "member_lookup_reply"
    park: str = _f("id")
    terminal: str = _f("id")
    seq: int = _f("seq")
    request_sha256: str = _f("sha256")
    cards: tuple = _f("cards", nested=MemberCard, many=(0, MAX_LOOKUP_CARDS))
    ledger_time_ms: int = _f("time_ms")

    @property
    def is_approved(self) -> bool:
        return True


# ---------------------------------------------------------------- rentals (issue 13)
@dataclass(frozen=True, slots=True, kw_only=True)
class DepositCard(Request):
    """A rental deposit paid from the park card ``card`` (the payer's). ``deposit_fen`` is what the
    screen showed: it must be the item type's deposit, so a stale config cannot take another sum.
    A member card asks its PIN as a charge does (above the park's no-PIN limit): ``pin_sha256``
    names the sealed PIN block then, else it is left out."""

    TYPE: ClassVar[str] = "deposit_card"
    item_type: str = _f("id")
    deposit_fen: int = _f("amount")
    pin_sha256: str | None = _f("sha256", added=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class DepositDesk(Request):
    """A rental deposit paid at the desk in cash, WeChat, Alipay or by bank card; ``card`` is the
    staff member's card. Refunded the same way (cash back at the desk for cash)."""

    TYPE: ClassVar[str] = "deposit_desk"
    item_type: str = _f("id")
    deposit_fen: int = _f("amount")
    channel: str = _f("channel")
    payment_ref: str = _f("optional_text")


@dataclass(frozen=True, slots=True, kw_only=True)
class RentalOut(Request):
    """Hand out the item labelled ``item_label`` against a deposit voucher (protocol.voucher), as
    scanned; ``card`` is the staff member's card. The ledger's time is the hand-out time."""

    TYPE: ClassVar[str] = "rental_out"
    voucher: str = _f("voucher")
    item_label: str = _f("id")


@dataclass(frozen=True, slots=True, kw_only=True)
class OfflineRentalOut(RentalOut):
    """A hand-out the terminal approved on its own (the voucher's signature and expiry checked
    locally) while the ledger was out of reach, at ``approved_ms``. It happened: the ledger records
    it even when the voucher was redeemed elsewhere, and flags that. When it follows an online
    ``rental_out`` that got no answer, ``supersedes_seq`` names that attempt, and the ledger applies
    at most one of the two (as ``OfflineCharge.supersedes_seq``)."""

    TYPE: ClassVar[str] = "offline_rental_out"
    approved_ms: int = _f("time_ms")
    supersedes_seq: int | None = _f("seq", added=True)

    def _check_whole(self):
        if self.supersedes_seq is not None and self.supersedes_seq >= self.seq:
            _fail("supersedes_seq", "must name an earlier seq", Reason.VALUE_OUT_OF_RANGE)


@dataclass(frozen=True, slots=True, kw_only=True)
class RentalReturn(Request):
    """An item back at the desk, as inspected: ``damage`` names the damage codes picked (comma-
    separated, from the item type's list) when ``condition`` is damaged, else is empty."""

    TYPE: ClassVar[str] = "rental_return"
    item_label: str = _f("id")
    condition: str = _f("rental_condition")
    damage: str = _f("codes")

    def _check_whole(self):
        if (self.condition == RentalCondition.DAMAGED) != bool(self.damage):
            _fail("damage", "names the damage when, and only when, the item is damaged", Reason.VALUE_OUT_OF_RANGE)

    @property
    def damage_codes(self) -> tuple:
        return tuple(self.damage.split(",")) if self.damage else ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RentalOrders(Request):
    """Which deposit orders are open (held, or their item out) for the park card that paid them
    (``payer``, as tapped) or for one voucher (``voucher``, as scanned): exactly one of the two.
    ``card`` is the staff member's card. Read only: nothing is booked. So any rental desk hands an
    item out to the card that paid, and takes one back by its voucher, not only the desk that
    took the deposit or handed it out."""

    TYPE: ClassVar[str] = "rental_orders"
    payer: CardRef | None = _f("card", nested=CardRef, optional=True)
    voucher: str | None = _f("voucher", optional=True)

    def _check_whole(self):
        if (self.payer is None) == (self.voucher is None):
            _fail("payer", "exactly one of payer and voucher is given", Reason.VALUE_OUT_OF_RANGE)


# A rental desk picks one of a card's open orders with one digit key.
MAX_RENTAL_ORDERS = 9


@dataclass(frozen=True, slots=True, kw_only=True)
class RentalOrder(Message):
    """One open deposit order, with its voucher (the ledger's token, as printed) so the desk hands
    the item out against it as if it had been scanned; ``item_label`` and ``out_ms`` once it is out."""

    order: str = _f("id")
    item_type: str = _f("id")
    deposit_fen: int = _f("amount")
    state: str = _f("deposit_state")
    voucher: str = _f("voucher")
    item_label: str | None = _f("id", optional=True)
    out_ms: int | None = _f("time_ms", optional=True)
    # Once out: "first redeemed <YYYY-MM-DD HH:MM:SS> at <terminal>", as VOUCHER_USED's detail says it.
    redeemed: str | None = _f("text", optional=True)

    def _check_whole(self):
        if (self.state == DepositState.OUT) != (self.item_label is not None and self.out_ms is not None):
            _fail("item_label", "names the item and its time out when, and only when, it is out",
                  Reason.VALUE_OUT_OF_RANGE)


@dataclass(frozen=True, slots=True, kw_only=True)
class RentalOrdersReply(Message):
    """The answer to RentalOrders: the open orders, oldest first (none: nothing is open)."""

    TYPE: ClassVar[str] = "rental_orders_reply"
    park: str = _f("id")
    terminal: str = _f("id")
    seq: int = _f("seq")
    request_sha256: str = _f("sha256")
    orders: tuple = _f("orders", nested=RentalOrder, many=(0, MAX_RENTAL_ORDERS))
    ledger_time_ms: int = _f("time_ms")

    @property
    def is_approved(self) -> bool:
        return True


@dataclass(frozen=True, slots=True, kw_only=True)
class DepositReply(Message):
    """The answer to an approved deposit: the order and its voucher (to print as a QR code)."""

    TYPE: ClassVar[str] = "deposit_reply"
    park: str = _f("id")
    terminal: str = _f("id")
    seq: int = _f("seq")
    request_sha256: str = _f("sha256")
    order: str = _f("id")
    item_type: str = _f("id")
    deposit_fen: int = _f("amount")
    voucher: str = _f("voucher")
    expires_ms: int = _f("time_ms")
    ledger_time_ms: int = _f("time_ms")

    @property
    def is_approved(self) -> bool:
        return True


@dataclass(frozen=True, slots=True, kw_only=True)
class RentalReturnReply(Message):
    """The answer to an approved return, itemised for the receipt: what the deposit paid for, what
    went back and how, and what the deposit did not cover (``claim_fen``, owed by the renter)."""

    TYPE: ClassVar[str] = "rental_return_reply"
    park: str = _f("id")
    terminal: str = _f("id")
    seq: int = _f("seq")
    request_sha256: str = _f("sha256")
    order: str = _f("id")
    item_type: str = _f("id")
    item_label: str = _f("id")
    out_ms: int = _f("time_ms")
    returned_ms: int = _f("time_ms")
    deposit_fen: int = _f("amount")
    rental_fen: int = _f("amount_or_zero")
    late_fen: int = _f("amount_or_zero")
    damage_fen: int = _f("amount_or_zero")
    refunded_fen: int = _f("amount_or_zero")
    claim_fen: int = _f("amount_or_zero")
    route: str = _f("refund_route")
    ledger_time_ms: int = _f("time_ms")

    @property
    def is_approved(self) -> bool:
        return True

    def _check_whole(self):
        captured = self.rental_fen + self.late_fen + self.damage_fen
        if captured + self.refunded_fen != self.deposit_fen + self.claim_fen:
            _fail("refunded_fen", "deposit + claim must equal what was captured + refunded", Reason.VALUE_OUT_OF_RANGE)


REQUEST_TYPES = {cls.TYPE: cls for cls in (CardIssue, MemberOpen, TopUp, Charge, OfflineCharge, Void, CardReturn,
                                           LossReport, CardUnblock, CardReplace, Reversal, PinUnlock, MemberTransfer,
                                           MemberLookup, CardBalance, StationReport, ShiftOpen, ShiftClose, ShiftHandover,
                                           DepositCard, DepositDesk, RentalOut, OfflineRentalOut, RentalReturn, RentalOrders,
                                           Hello)}
REPLY_TYPES = {cls.TYPE: cls for cls in (Result, Welcome, StationReportReply, MemberLookupReply, DepositReply,
                                         RentalReturnReply, RentalOrdersReply, ShiftSlip)}
BROADCAST_TYPES = {cls.TYPE: cls for cls in (TerminalConfig, Blocklist, BlocklistDelta)}


def parse(body: bytes, types: dict) -> Message:
    """Decode a verified body into one of ``types``; raises RemoteProtocolError with a reason code."""
    obj = codec.decode(body)
    kind = obj.get("type")
    if kind is not None and type(kind) is not str:  # checked before the lookup: a list cannot be hashed
        raise RemoteProtocolError(f"message type is {type(kind).__name__}, not a string", code=Reason.WRONG_TYPE)
    cls = types.get(kind)
    if cls is None:
        raise RemoteProtocolError(f"unknown message type {str(kind)[:32]!r}", code=Reason.UNKNOWN_TYPE)
    try:
        return cls.from_obj(obj)
    except LocalProtocolError as error:
        raise RemoteProtocolError(error.args[0], code=error.code) from None
    except ProtocolError:
        raise
