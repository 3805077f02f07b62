"""Builders for the rules' table tests: requests, views of cards, members and staff, and fake PINs.
No store, no broker: a rule is a plain function of (request, View)."""

from protocol.errors import RemoteProtocolError
from protocol.messages import REQUEST_TYPES, CardRef, LineItem, ParkRules
from protocol.reasons import Reason

from ledger.rules import CardView, OriginalSale, Posting, StationView, View
from ledger.store import CardLimits, MemberView, StaffView, TerminalView

UID = "04a1b2c3"
TEMP = CardRef(no="C00042", issuance=2, uid=UID)
WANG = CardRef(no="M00008", issuance=1, uid="a1b2c3d4")
LI = CardRef(no="M00010", issuance=1, uid="b1b2c3d4")
NEW = CardRef(no="M00099", issuance=1, uid="c1b2c3d4")
STAFF_CARD = CardRef(no="S00002", issuance=1, uid="d1b2c3d4")
SEALED = "ab" * 32  # the pin_sha256 of a request that carries a sealed PIN block
FISHING = StationView("fishing", None, 0)
DESK = TerminalView("T-DESK-1", "P1", "desk", frozenset({"card_issue", "top_up", "shift_open"}), None)
TILL = TerminalView("T-FISH-1", "P1", "fishing", frozenset({"charge", "shift_open"}), None)
LIMITS = CardLimits(max_balance_fen=100_000, min_topup_fen=1_000, max_topup_fen=50_000, daily_spend_fen=30_000)
MEMBER_LIMITS = CardLimits(max_balance_fen=500_000, min_topup_fen=1_000, max_topup_fen=500_000, daily_spend_fen=300_000)
RULES = ParkRules(no_pin_limit_fen=20_000, card_fee_fen=2000, damage_fee_fen=1000)
PAID = {"channel": "cash", "payment_ref": ""}

# A valid request of each type beyond the fields every request carries.
FIELDS = {
    "card_issue": PAID | {"card_kind": "temporary", "card_fee_fen": 2000, "opening_fen": 0},
    "member_open": PAID | {"member_name": "王芳", "phone": "13800138000", "card_fee_fen": 0, "opening_fen": 0,
                           "pin_sha256": SEALED},
    "top_up": PAID | {"amount_fen": 10_000},
    "charge": {"amount_fen": 1500, "lines": (LineItem(item="鱼饵", qty=1, unit_fen=1500),), "pin_sha256": None},
    "offline_charge": {"amount_fen": 1500, "lines": (LineItem(item="鱼饵", qty=1, unit_fen=1500),), "pin_sha256": None,
                       "supersedes_seq": None, "approved_ms": 0},
    "void": {"original_seq": 1, "amount_fen": 1500, "supervisor_card_no": "S00001", "pin_sha256": SEALED},
    "card_return": PAID | {"damage_fee_fen": 0},
    "loss_report": {},
    "card_unblock": {},
    "card_replace": {"from_card_no": WANG.no, "from_issuance": 1, "supervisor_card_no": "S00001", "pin_sha256": SEALED},
    "reversal": {"original_seq": 1, "amount_fen": 10_000, "supervisor_card_no": "S00001", "pin_sha256": SEALED},
    "pin_unlock": {"supervisor_card_no": "S00001", "pin_sha256": SEALED},
    "member_transfer": {"to_card_no": LI.no, "to_issuance": 1, "amount_fen": 1000, "pin_sha256": SEALED},
    "member_lookup": {"phone": "13800138000"},
    "card_balance": {},
    "station_report": {"station": "fishing", "business_day": "2026-06-01"},
    "shift_open": {"pin_sha256": SEALED},
    "shift_close": {},
    "shift_handover": {"counted_fen": 1000},
    "deposit_card": {"item_type": "rod", "deposit_fen": 3000},
    "deposit_desk": PAID | {"item_type": "rod", "deposit_fen": 3000},
    "rental_out": {"voucher": "FPV1:" + "A" * 120, "item_label": "ROD-001"},
    "offline_rental_out": {"voucher": "FPV1:" + "A" * 120, "item_label": "ROD-001", "approved_ms": 0},
    "rental_return": {"item_label": "ROD-001", "condition": "intact", "damage": ""},
    "rental_orders": {"payer": None, "voucher": "FPV1:" + "A" * 120},
}


def request(type_name: str, card: CardRef = TEMP, *, seq: int = 7, terminal: str = "T-FISH-1", operator: str = "op-1",
            **extra):
    fields = FIELDS[type_name] | extra
    if "lines" in fields:  # a sale's lines add up to its amount
        fields["lines"] = (LineItem(item="鱼饵", qty=1, unit_fen=fields["amount_fen"]),)
    return REQUEST_TYPES[type_name](park="P1", terminal=terminal, seq=seq, terminal_time_ms=0, clock_uncertain=False,
                                    operator=operator, config_version=0, card=card, **fields)


def card_view(ref: CardRef = TEMP, **change) -> CardView:
    kind = "member" if ref.no.startswith("M") else "temporary"
    fields = dict(card_no=ref.no, issuance=ref.issuance, uid=ref.uid, kind=kind, state="active", card_fee_fen=2000,
                  fen=7000, bonus=0, points=0)
    return CardView(**(fields | change))


def member(ref: CardRef = WANG, *, pin="246810", wrong_pins=0) -> MemberView:
    return MemberView(ref.no, "王芳", "13800138000", f"hash:{pin}", wrong_pins, 20_000)


def staff(staff_id="S-1", *, role="supervisor", card_no="S00001", pin="1357", wrong_pins=0, is_active=True) -> StaffView:
    return StaffView(staff_id, "张伟", role, card_no, f"hash:{pin}", wrong_pins, is_active)


def original(kind="charge", account="card:C00042/2", amount_fen=1500, is_voided=False) -> OriginalSale:
    return OriginalSale(41, kind, amount_fen, account, is_voided,
                        (Posting(account, "fen", -amount_fen), Posting("revenue:fishing", "fen", amount_fen)))


class FakePins:
    """The PINs a request carried, in the clear; a stored hash is ``hash:<pin>``. A field that was
    not sealed fails to open, as a bad PIN block does."""

    def __init__(self, **pins):
        self.pins = pins
        self.opened: list[str] = []

    def open(self, field="pin"):
        if field not in self.pins:
            raise RemoteProtocolError("PIN block cannot be opened", code=Reason.PIN_BLOCK_INVALID)
        self.opened.append(field)

    def matches(self, stored_hash, field="pin"):
        self.open(field)
        return stored_hash == f"hash:{self.pins[field]}"

    def new_hash(self, field="pin"):
        self.open(field)
        return f"hash:{self.pins[field]}"


def view(**fields) -> View:
    return View(**({"terminal": TILL, "pins": FakePins(), "limits": LIMITS, "park_rules": RULES} | fields))
