"""Each request kind is declared once (protocol/kinds.py), and the lists both ends used to keep by
hand are derived from the declarations (issue 11, build item 1).

The walk: for every declared kind that does not opt out of a common card check by name, a request
of that kind about a card reported lost, a copied card record, a card the park never issued or an
older issuance of a card issued again is declined by that check — through the ledger's intake,
signed as a terminal would sign it — and books nothing.
"""

from dataclasses import MISSING, fields
from pathlib import Path
import re

import pytest

from host_sim.rig import ParkRig, card, single_line
from ledger import park_home, shifts, store, verify
from ledger.rules import members as rules_members, staff as rules_staff
from protocol import envelope, topics
from protocol.kinds import CARD_CHECKS, KINDS, RequestKind, _DECLARED
from protocol.messages import REQUEST_TYPES, CardIssue, CardReturn, Hello, LossReport, MemberOpen
from protocol.pin import seal_pin
from terminal import core, desk

from .conftest import TERMINALS
from .helpers.intake_driver import Ledger

ROOT = Path(__file__).resolve().parent.parent
WANG, LI, VISITOR = card("M00008"), card("M00010"), card("C00042")
PIN = "246810"
ANY_SHA256 = "0" * 64  # never opened: the common checks decline before any PIN is read
PAID = {"channel": "cash", "payment_ref": ""}

# The fields of a valid request of each type beyond those every request carries. A new kind needs
# a row here, so the walk below covers it the day it is declared.
FIELDS = {
    "card_issue": PAID | {"card_kind": "temporary", "card_fee_fen": 2000, "opening_fen": 0},
    "member_open": PAID | {"member_name": "赵六", "phone": "13900139000", "card_fee_fen": 0, "opening_fen": 0,
                           "pin_sha256": ANY_SHA256},
    "top_up": PAID | {"amount_fen": 10000},
    "charge": {"amount_fen": 1500, "lines": single_line("鱼饵", 1500), "pin_sha256": None},
    "offline_charge": {"amount_fen": 1500, "lines": single_line("鱼饵", 1500), "pin_sha256": None,
                       "supersedes_seq": None, "approved_ms": 1_780_000_000_000},
    "void": {"original_seq": 1, "amount_fen": 1500, "supervisor_card_no": "S00001", "pin_sha256": ANY_SHA256},
    "card_return": PAID | {"damage_fee_fen": 0},
    "loss_report": {},
    "card_unblock": {},
    "card_replace": {"from_card_no": "M00099", "from_issuance": 1, "supervisor_card_no": "S00001",
                     "pin_sha256": ANY_SHA256},
    "reversal": {"original_seq": 1, "amount_fen": 10000, "supervisor_card_no": "S00001", "pin_sha256": ANY_SHA256},
    "pin_unlock": {"supervisor_card_no": "S00001", "pin_sha256": ANY_SHA256},
    "member_transfer": {"to_card_no": LI.no, "to_issuance": 1, "amount_fen": 1000, "pin_sha256": ANY_SHA256},
    "member_lookup": {"phone": "13800138000"},
    "card_balance": {},
    "station_report": {"station": "fishing", "business_day": "2026-06-01"},
    "shift_open": {"pin_sha256": ANY_SHA256},
    "shift_close": {},
    "shift_handover": {"counted_fen": 0},
    "deposit_card": {"item_type": "rod", "deposit_fen": 3000},
    "deposit_desk": PAID | {"item_type": "rod", "deposit_fen": 3000},
    "rental_out": {"voucher": "FPV1:" + "A" * 120, "item_label": "ROD-001"},
    "offline_rental_out": {"voucher": "FPV1:" + "A" * 120, "item_label": "ROD-001", "approved_ms": 1_780_000_000_000},
    "rental_return": {"item_label": "ROD-001", "condition": "intact", "damage": ""},
    "rental_orders": {"payer": None, "voucher": "FPV1:" + "A" * 120},
}

# Each common check, the card that trips it, and the reason it declines with ("limits" is not a
# card's state: its own tests cover it).
TRIPS = {
    "not_blocked": ("a card reported lost", WANG, "CARD_BLOCKED"),
    "uid_matches": ("a copied card record", card(LI.no, uid="deadbeef"), "CARD_UID_MISMATCH"),
    "card_known": ("a card the park never issued", card("M00077"), "UNKNOWN_CARD"),
    "issuance_current": ("an older issuance of a card issued again", VISITOR, "OLD_ISSUANCE"),
}


def sender(kind: RequestKind) -> str:
    if "station" in kind.terminal_kinds:
        return "T-FISH-1"
    return "T-RENT-1" if "rental" in kind.terminal_kinds else "T-DESK-1"


def send(ledger: Ledger, type_name: str, card_ref, *, pin=None, **extra):
    """A request of ``type_name`` about ``card_ref``, signed by a terminal allowed to send it (the
    member's PIN sealed when given)."""
    terminal_id = sender(KINDS[type_name])
    identity = ledger.rig.identity(terminal_id)
    topic = topics.request(identity.park_id, terminal_id)
    fields_ = ledger.fields(terminal_id, card_ref)
    attachment = b""
    if pin is not None:
        attachment, extra["pin_sha256"] = seal_pin(pin, terminal=terminal_id, seq=fields_["seq"],
                                                   ledger_pin_key=identity.pin_key)
    body = REQUEST_TYPES[type_name](**fields_, **(FIELDS[type_name] | extra)).to_bytes()
    return ledger.send(topic, envelope.seal(body, signing_key=identity.signing_key, key_id=identity.key_id,
                                            purpose=envelope.Purpose.REQUEST, topic=topic, attachment=attachment))


@pytest.fixture(scope="module")
def park(tmp_path_factory):
    """Wang's member card reported lost, Li's active, and the visitor's temporary card handed back
    and issued again (issuance 2). Declines change nothing, so the walk shares one park."""
    rig = ParkRig(tmp_path_factory.mktemp("park")).create(
        TERMINALS | {"T-RENT-1": "fishing"}, kinds_by_terminal={"T-RENT-1": park_home.STATION_KINDS["rental"]})
    ledger = Ledger(rig)
    for member, phone in ((WANG, "13800138000"), (LI, "13600136000")):
        assert send(ledger, MemberOpen.TYPE, member, pin=PIN, phone=phone).is_approved
    assert send(ledger, LossReport.TYPE, WANG).is_approved
    assert send(ledger, CardIssue.TYPE, VISITOR, opening_fen=5000).is_approved
    assert send(ledger, CardReturn.TYPE, VISITOR).is_approved
    assert send(ledger, CardIssue.TYPE, card(VISITOR.no, issuance=2)).is_approved
    yield ledger
    rig.close()
    ledger.store.close()


WALK = [(name, check) for name, kind in KINDS.items() for check in TRIPS if kind.runs(check)]


@pytest.mark.parametrize("type_name, check", WALK, ids=[f"{name}-{check}" for name, check in WALK])
def test_every_kind_that_keeps_a_common_card_check_is_declined_by_it_and_books_nothing(park, type_name, check):
    what, card_ref, reason = TRIPS[check]
    postings_before = park.postings()
    result = send(park, type_name, card_ref)
    assert (result.outcome, result.reason) == ("declined", reason), f"{type_name} about {what}"
    assert park.postings() == postings_before
    assert park.store.set_asides() == []


def test_the_walk_covers_every_kind_that_moves_money_on_a_card_and_every_check_it_keeps():
    walked = {name for name, _ in WALK}
    # The kinds that act on a visitor's existing card keep all four card-state checks.
    for name in ("top_up", "charge", "void", "card_return", "loss_report", "reversal", "member_transfer", "card_balance"):
        assert {check for kind, check in WALK if kind == name} == set(TRIPS), name
    assert walked == {"top_up", "charge", "void", "card_return", "loss_report", "card_unblock", "reversal",
                      "member_transfer", "deposit_card", "card_balance"}


def test_every_declared_kind_has_a_field_table_row_that_builds_a_valid_request():
    assert set(FIELDS) == set(KINDS)
    for name in KINDS:
        common = dict(park="P1", terminal="T-DESK-1", seq=1, terminal_time_ms=0, clock_uncertain=False,
                      operator="op-1", config_version=0, card=VISITOR)
        assert REQUEST_TYPES[name](**common, **FIELDS[name]).TYPE == name


# ---------------------------------------------------------------- the declarations themselves
def test_every_request_type_but_hello_is_declared_exactly_once():
    declared = [kind.type for kind in _DECLARED]
    assert sorted(declared) == sorted(set(declared))
    assert set(KINDS) == set(REQUEST_TYPES) - {Hello.TYPE}
    assert all(KINDS[name].type == name for name in KINDS)


def test_a_request_kind_has_no_field_with_a_default_so_a_forgotten_one_fails():
    for field_ in fields(RequestKind):
        assert field_.default is MISSING and field_.default_factory is MISSING, field_.name
    whole = {field_.name: getattr(KINDS["top_up"], field_.name) for field_ in fields(RequestKind)}
    for forgotten in whole:
        with pytest.raises(TypeError):
            RequestKind(**{name: value for name, value in whole.items() if name != forgotten})


def test_an_opt_out_must_name_a_common_check_that_exists():
    whole = {field_.name: getattr(KINDS["top_up"], field_.name) for field_ in fields(RequestKind)}
    with pytest.raises(ValueError, match="no common card check"):
        RequestKind(**whole | {"skips_card_checks": frozenset({"not_blocked", "not_lost"})})
    assert all(kind.skips_card_checks <= set(CARD_CHECKS) for kind in KINDS.values())


def test_every_kind_that_moves_money_owes_its_receipt_after_a_crash():
    for kind in KINDS.values():
        assert kind.moves_money == kind.receipt_owed_after_crash, kind.type
        assert not kind.is_sale or kind.moves_money, kind.type


# ---------------------------------------------------------------- derived lists = what was hand-kept
_SHIFTS = ("shift_open", "shift_close", "shift_handover", "hello")
_CASHIER = frozenset({"charge", "offline_charge", "void", "shift_close", "shift_handover"})
_FRONT_DESK = frozenset({"card_issue", "member_open", "top_up", "card_return", "loss_report", "card_unblock",
                         "card_replace", "reversal", "pin_unlock", "member_transfer", "member_lookup", "shift_close",
                         "shift_handover"})
# Rental kinds came after the hand-kept lists (issue 13): the rental desk's.
_BALANCE = frozenset({"card_balance"})  # came with the balance at the tap (issue 12 items 14-15)
_RENTAL = frozenset({"deposit_card", "deposit_desk", "rental_out", "offline_rental_out", "rental_return", "rental_orders"})
HAND_KEPT = {
    "park_home.STATION_KINDS": (lambda: park_home.STATION_KINDS, {
        "station": ("charge", "offline_charge", "void", "card_balance") + _SHIFTS,
        "front_desk": ("card_issue", "member_open", "top_up", "card_return", "loss_report", "card_unblock",
                       "card_replace", "reversal", "pin_unlock", "member_transfer", "member_lookup", "card_balance") + _SHIFTS,
        "supervisor": ("charge", "offline_charge", "void", "card_balance", "station_report") + _SHIFTS,
        "tap": ("charge", "offline_charge", "hello"),
        "rental": ("card_balance", "shift_open", "shift_close", "shift_handover", "deposit_card", "deposit_desk", "rental_out", "offline_rental_out",
                   "rental_return", "rental_orders", "hello"),
        "all": tuple(REQUEST_TYPES),
    }),
    "shifts.ROLE_KINDS": (lambda: shifts.ROLE_KINDS, {
        "cashier": _CASHIER | _BALANCE, "rental": _CASHIER | _RENTAL | _BALANCE, "front_desk": _FRONT_DESK | _BALANCE,
        "supervisor": _CASHIER | _FRONT_DESK | _RENTAL | _BALANCE | {"station_report"},
        "finance": frozenset({"station_report", "shift_close", "shift_handover"}),
        "admin": frozenset({"station_report", "shift_close", "shift_handover"}),
        "technician": frozenset({"shift_close", "shift_handover"}),
    }),
    "shifts.SHIFTLESS_KINDS": (lambda: shifts.SHIFTLESS_KINDS,
                               frozenset({"shift_open", "offline_charge", "offline_rental_out", "hello"})),
    "rules.staff.REPORT_ROLES": (lambda: rules_staff.REPORT_ROLES, frozenset({"supervisor", "finance", "admin"})),
    "rules.members.LOOKUP_ROLES": (lambda: rules_members.LOOKUP_ROLES, frozenset({"front_desk", "supervisor"})),
    "verify (approved without a transaction)": (lambda: verify._UNBOOKED_KINDS,
                                                "'member_lookup', 'card_balance', 'station_report', 'shift_open', 'shift_close', "
                                                "'rental_orders'"),
    "store (sales)": (lambda: store._SALE_KINDS, "'charge', 'offline_charge'"),
    "intake._notify": (lambda: frozenset(kind.type for kind in KINDS.values() if kind.notifies_member),
                       frozenset({"top_up", "charge", "void", "reversal", "card_replace", "pin_unlock", "member_transfer"})),
    "core.RECEIPT_TITLES": (lambda: core.RECEIPT_TITLES, {
        "card_issue": "开卡凭证", "member_open": "会员开卡", "top_up": "充值凭证", "card_return": "退卡凭证",
        "card_replace": "补卡凭证", "void": "撤销凭证", "reversal": "冲正凭证", "member_transfer": "转账凭证",
        "deposit_card": "押金凭证", "deposit_desk": "押金凭证", "rental_out": "租赁出借", "offline_rental_out": "租赁出借",
        "rental_return": "租赁归还", "shift_handover": "交班单"}),
    "app.owed_receipt_lines (line, title)": (lambda: {kind.type: (kind.owed_line, kind.receipt_title)
                                                      for kind in KINDS.values() if kind.owed_line}, {
        "top_up": ("充值 Top-up", "充值凭证"), "card_issue": ("开卡 Card and opening", "开卡凭证"),
        "member_open": ("会员开卡 Member card", "会员开卡"), "card_return": ("退卡退款 Refund", "退卡凭证"),
        "card_replace": ("补卡 Replacement", "补卡凭证"), "void": ("撤销 Void", "撤销凭证"),
        "reversal": ("冲正 Reversal", "冲正凭证"), "member_transfer": ("转账 Transfer", "转账凭证")}),
    "desk.DONE_TEXT": (lambda: desk.DONE_TEXT, {
        "loss_report": "已挂失 Reported lost — the card is blocked at every station",
        "card_unblock": "已解挂 Unblocked — the card works again", "pin_unlock": "密码已解锁 PIN unlocked"}),
}


@pytest.mark.parametrize("name", HAND_KEPT)
def test_a_list_derived_from_the_declarations_equals_the_one_kept_by_hand_before(name):
    derived, before = HAND_KEPT[name]
    assert derived() == before


@pytest.mark.parametrize("preset, expected", [("station", "station"), ("front_desk", "front_desk"),
                                              ("supervisor", "station"), ("all", "front_desk")])
def test_a_terminal_provisioned_from_a_preset_logs_staff_in_as_before(preset, expected):
    # Before: a front desk for logging in exactly when it may send card_issue.
    allowed = frozenset(park_home.STATION_KINDS[preset])
    assert shifts.terminal_kind_of(allowed) == expected == ("front_desk" if "card_issue" in allowed else "station")


def test_the_protocol_docs_table_of_what_each_terminal_may_send_is_the_declarations():
    text = (ROOT / "docs" / "PROTOCOL.md").read_text(encoding="utf-8")
    section = text[text.index("### 5.2 Which terminal may send what"):text.index("### 5.3")]
    rows = {match[1]: tuple(re.findall(r"`([a-z_]+)`", match[2]))
            for match in re.finditer(r"^\| `([a-z_]+)`[^|]*\| (.*) \|$", section, re.MULTILINE)}
    for preset in ("station", "front_desk", "supervisor"):
        assert rows[preset] == park_home.STATION_KINDS[preset], preset
