"""The member rules as tables: (request, view) -> reason and every effect. No store, no broker."""

import pytest

from ledger.rules import Alert, NewCard, NewMember, Notification, Posting, decide
from protocol.errors import RemoteProtocolError
from protocol.messages import MemberCard, MemberLookupReply
from protocol.reasons import Reason

from .helpers.rule_tables import (DESK, LI, MEMBER_LIMITS, NEW, STAFF_CARD, WANG, FakePins, card_view, member, request,
                                  staff, view)

WANG_CARD = card_view(WANG, fen=5000)
LI_CARD = card_view(LI, fen=1000)


def desk(**fields):
    return view(**({"terminal": DESK, "limits": MEMBER_LIMITS} | fields))


# ---------------------------------------------------------------- opening
def test_a_member_card_opens_with_the_pin_hashed_and_the_parks_no_pin_limit():
    decision = decide(request("member_open", WANG), desk(no_pin_limit_fen=15_000, pins=FakePins(pin="246810")))
    assert decision.new_card == NewCard(WANG.no, 1, WANG.uid, "member", 0)
    assert decision.new_member == NewMember(WANG.no, "王芳", "13800138000", "hash:246810", 15_000)


def test_a_member_card_in_use_is_declined_before_its_pin_block_is_opened():
    pins = FakePins()  # a block that would not open
    assert decide(request("member_open", WANG), desk(card=WANG_CARD, pins=pins)).reason is Reason.CARD_IN_USE
    assert pins.opened == []
    with pytest.raises(RemoteProtocolError):
        decide(request("member_open", WANG), desk(pins=pins))


# ---------------------------------------------------------------- transfer
def transfer_view(**fields):
    return desk(**({"card": WANG_CARD, "member": member(), "allows_transfer": True, "other_card": LI_CARD,
                    "member_limits": MEMBER_LIMITS, "pins": FakePins(pin="246810")} | fields))


@pytest.mark.parametrize("what, transfer, seen, reason", [
    ("between two active member cards", request("member_transfer", WANG), transfer_view(), Reason.OK),
    ("in a park that does not allow it", request("member_transfer", WANG), transfer_view(allows_transfer=False),
     Reason.KIND_NOT_ALLOWED),
    ("to the same card", request("member_transfer", WANG, to_card_no=WANG.no), transfer_view(), Reason.SAME_CARD),
    ("to a card never issued", request("member_transfer", WANG), transfer_view(other_card=None), Reason.UNKNOWN_CARD),
    ("to a lost card", request("member_transfer", WANG), transfer_view(other_card=card_view(LI, state="blocked")),
     Reason.UNKNOWN_CARD),
    ("from a lost card", request("member_transfer", WANG), transfer_view(card=card_view(WANG, state="blocked")),
     Reason.CARD_BLOCKED),
    ("from a copied record", request("member_transfer", WANG), transfer_view(card=card_view(WANG, uid="deadbeef")),
     Reason.CARD_UID_MISMATCH),
    ("from an unknown card", request("member_transfer", WANG), transfer_view(card=None), Reason.UNKNOWN_CARD),
    ("with a wrong PIN", request("member_transfer", WANG), transfer_view(pins=FakePins(pin="0")), Reason.WRONG_PIN),
    ("more than the card holds", request("member_transfer", WANG, amount_fen=5001), transfer_view(),
     Reason.INSUFFICIENT_FUNDS),
    ("over the receiving card's cap", request("member_transfer", WANG, amount_fen=2000),
     transfer_view(other_card=card_view(LI, fen=499_000)), Reason.OVER_BALANCE_LIMIT),
])
def test_a_member_transfer(what, transfer, seen, reason):
    assert decide(transfer, seen).reason is reason, what


def test_a_transfer_moves_real_money_only_and_a_right_pin_after_a_wrong_one_resets_the_count():
    decision = decide(request("member_transfer", WANG), transfer_view(member=member(wrong_pins=1)))
    assert decision.postings == (Posting("card:M00008/1", "fen", -1000), Posting("card:M00010/1", "fen", 1000))
    assert decision.member_wrong_pins == (WANG.no, 0)
    short = decide(request("member_transfer", WANG, amount_fen=5001), transfer_view(member=member(wrong_pins=1)))
    assert (short.reason, short.member_wrong_pins) == (Reason.INSUFFICIENT_FUNDS, (WANG.no, 0))


# ---------------------------------------------------------------- replacement
def replace_view(**fields):
    lost = card_view(WANG, state="blocked", fen=4000, points=12)
    return desk(**({"other_card": lost, "other_block_reason": "LOST", "member": member(), "member_to_tell": member(),
                    "supervisor": staff(), "pins": FakePins(supervisor_pin="1357")} | fields))


@pytest.mark.parametrize("what, seen, reason", [
    ("a lost card onto a new number", replace_view(), Reason.OK),
    ("onto a card in use", replace_view(card=card_view(NEW)), Reason.CARD_IN_USE),
    ("a card never issued", replace_view(other_card=None), Reason.UNKNOWN_CARD),
    ("a temporary card", replace_view(other_card=card_view(WANG, kind="temporary", state="blocked")), Reason.UNKNOWN_CARD),
    ("a card not reported lost", replace_view(other_card=card_view(WANG)), Reason.KIND_NOT_ALLOWED),
    ("a card blocked for a debt", replace_view(other_block_reason="OFFLINE_OVERDRAFT"), Reason.KIND_NOT_ALLOWED),
    ("without the supervisor's PIN", replace_view(pins=FakePins(supervisor_pin="0")), Reason.WRONG_PIN),
])
def test_only_a_lost_member_card_is_replaced_and_only_with_a_supervisor(what, seen, reason):
    assert decide(request("card_replace", NEW), seen).reason is reason, what


def test_a_replacement_moves_everything_copies_the_member_and_tells_them():
    decision = decide(request("card_replace", NEW), replace_view())
    assert decision.new_card == NewCard(NEW.no, 1, NEW.uid, "member", 0)
    assert decision.copy_member == (WANG.no, NEW.no)
    assert decision.notification == Notification(NEW.no, "13800138000", "card_replace", 0, "card:M00099/1")
    assert decision.amount_fen == 4000 and Posting("card:M00099/1", "points", 12) in decision.postings


# ---------------------------------------------------------------- PIN unlock
@pytest.mark.parametrize("what, seen, reason, member_pins, staff_pins", [
    ("a member's card", desk(card=WANG_CARD, member=member(wrong_pins=3), supervisor=staff(),
                             pins=FakePins(supervisor_pin="1357")), Reason.OK, (WANG.no, 0), (("S-1", 0),)),
    ("a staff card", desk(staff=staff("S-2", role="cashier", card_no=STAFF_CARD.no, wrong_pins=3), supervisor=staff(),
                          pins=FakePins(supervisor_pin="1357")), Reason.OK, None, (("S-1", 0), ("S-2", 0))),
    ("a card of nobody", desk(supervisor=staff(), pins=FakePins(supervisor_pin="1357")), Reason.UNKNOWN_CARD, None, ()),
    ("a wrong supervisor PIN", desk(member=member(wrong_pins=3), supervisor=staff(), pins=FakePins(supervisor_pin="0")),
     Reason.WRONG_PIN, None, (("S-1", 1),)),
])
def test_a_supervisor_unlocks_a_member_or_staff_pin(what, seen, reason, member_pins, staff_pins):
    decision = decide(request("pin_unlock", WANG), seen)
    assert (decision.reason, decision.member_wrong_pins, decision.staff_wrong_pins) == (reason, member_pins, staff_pins)
    assert decision.alerts == ((Alert("WRONG_PIN", "supervisor S-1 wrong PIN 1"),) if reason is Reason.WRONG_PIN else ())


# ---------------------------------------------------------------- lookup
CARDS = (MemberCard(no=WANG.no, issuance=1, uid=WANG.uid, name="王芳", state="lost", fen=0, bonus=0, points=0),)


@pytest.mark.parametrize("asking, reason", [
    (staff("S-2", role="front_desk", card_no=STAFF_CARD.no), Reason.OK),
    (staff("S-2", role="cashier", card_no=STAFF_CARD.no), Reason.ROLE_NOT_ALLOWED),
    (staff("S-3", role="front_desk", card_no=STAFF_CARD.no), Reason.UNKNOWN_STAFF),   # not the operator
    (staff("S-2", role="front_desk", card_no=STAFF_CARD.no, is_active=False), Reason.UNKNOWN_STAFF),
    (None, Reason.UNKNOWN_STAFF),
])
def test_a_members_cards_are_found_by_phone_for_desk_staff_only(asking, reason):
    decision = decide(request("member_lookup", STAFF_CARD, operator="S-2"), desk(staff=asking, member_cards=CARDS))
    assert decision.reason is reason
    if reason is Reason.OK:
        assert (decision.answer.reply_type, decision.answer.fields) == (MemberLookupReply, {"cards": CARDS})
    else:
        assert decision.answer is None
