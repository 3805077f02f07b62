"""The front desk's card rules as tables: (request, view) -> reason and every effect. No store, no broker."""

import pytest

from ledger.rules import BlocklistChange, NewCard, Notification, Posting, decide
from protocol.messages import CardRef
from protocol.reasons import Reason

from .helpers.rule_tables import (DESK, MEMBER_LIMITS, TEMP, WANG, FakePins, card_view, member, original, request,
                                  staff, view)

FIRST = CardRef(no="C00050", issuance=1, uid="0a0b0c0d")


# ---------------------------------------------------------------- card issue
@pytest.mark.parametrize("what, issue, card, reason", [
    ("a new card at the park's fee", request("card_issue", FIRST, opening_fen=5000), None, Reason.OK),
    ("a desk with an old fee", request("card_issue", FIRST, card_fee_fen=1500), None, Reason.AMOUNT_MISMATCH),
    ("an opening over the balance cap", request("card_issue", FIRST, opening_fen=100_001), None,
     Reason.OVER_BALANCE_LIMIT),
    ("a member card by the temporary kind's message", request("card_issue", FIRST, card_kind="member"), None,
     Reason.KIND_NOT_ALLOWED),
    ("a card still in use", request("card_issue", CardRef(no=TEMP.no, issuance=3, uid=TEMP.uid)), card_view(),
     Reason.CARD_IN_USE),
    ("a returned card issued again", request("card_issue", CardRef(no=TEMP.no, issuance=3, uid=TEMP.uid)),
     card_view(state="returned"), Reason.OK),
    ("a returned card under a stale issuance", request("card_issue", TEMP), card_view(state="returned"),
     Reason.OLD_ISSUANCE),
])
def test_a_card_is_issued_at_the_parks_fee_once_per_issuance(what, issue, card, reason):
    decision = decide(issue, view(terminal=DESK, card=card))
    assert decision.reason is reason, what
    assert (decision.new_card is not None) is (reason is Reason.OK), what


def test_a_new_card_is_inserted_with_its_fee_after_booking_fee_and_opening():
    decision = decide(request("card_issue", FIRST, opening_fen=5000), view(terminal=DESK))
    assert decision.new_card == NewCard(FIRST.no, 1, FIRST.uid, "temporary", 2000)
    assert decision.postings == (Posting("channel:cash", "fen", -7000), Posting("card_fee", "fen", 2000),
                                 Posting("card:C00050/1", "fen", 5000))


# ---------------------------------------------------------------- top-up
def test_a_top_up_that_pays_an_offline_debt_off_unblocks_the_card_and_one_that_does_not_leaves_it():
    debtor = card_view(fen=-3000)  # as gathered: blocked for OFFLINE_OVERDRAFT, seen as active
    settled = decide(request("top_up", TEMP, amount_fen=3000), view(card=debtor, owes_offline_debt=True))
    assert settled.blocklist == (BlocklistChange("unblock", TEMP.no, TEMP.issuance, "SETTLED"),)
    partly = decide(request("top_up", TEMP, amount_fen=2999), view(card=debtor, owes_offline_debt=True))
    assert partly.is_approved and partly.blocklist == ()


@pytest.mark.parametrize("amount_fen, card, reason", [
    (999, card_view(), Reason.TOP_UP_OUT_OF_RANGE),
    (1, card_view(fen=-5), Reason.OK),  # toward a debt: any amount
    (50_001, card_view(), Reason.TOP_UP_OUT_OF_RANGE),
    (50_000, card_view(fen=50_001), Reason.OVER_BALANCE_LIMIT),
    (10_000, card_view(state="blocked"), Reason.CARD_BLOCKED),  # blocked for another reason than a debt
])
def test_a_top_up_stays_within_the_card_types_limits(amount_fen, card, reason):
    assert decide(request("top_up", TEMP, amount_fen=amount_fen), view(card=card)).reason is reason


def test_a_members_top_up_earns_the_tier_bonus_and_is_told():
    told = member()
    decision = decide(request("top_up", WANG, amount_fen=50_000),
                      view(card=card_view(WANG), limits=MEMBER_LIMITS, bonus_rules=((10_000, 500), (50_000, 3000)),
                           member_to_tell=told))
    assert Posting("card:M00008/1", "bonus", 3000) in decision.postings
    assert decision.notification == Notification(WANG.no, told.phone, "top_up", 50_000, "card:M00008/1")


# ---------------------------------------------------------------- return, loss, unblock
@pytest.mark.parametrize("damage_fen, card, reason", [
    (1000, card_view(), Reason.OK),
    (1001, card_view(), Reason.AMOUNT_MISMATCH),                     # over the park's damage fee
    (1000, card_view(card_fee_fen=500), Reason.AMOUNT_MISMATCH),     # over the card's own deposit
    (0, card_view(WANG), Reason.KIND_NOT_ALLOWED),
])
def test_a_returned_card_refunds_balance_and_deposit_less_damage(damage_fen, card, reason):
    ref = TEMP if card.kind == "temporary" else WANG
    decision = decide(request("card_return", ref, damage_fee_fen=damage_fen), view(terminal=DESK, card=card))
    assert decision.reason is reason
    assert decision.card_state == ("returned" if reason is Reason.OK else None)


@pytest.mark.parametrize("ref, card, reason, blocklist", [
    (WANG, card_view(WANG), Reason.OK, (BlocklistChange("block", WANG.no, 1, "LOST"),)),
    (TEMP, card_view(), Reason.KIND_NOT_ALLOWED, ()),  # temporary cards have no loss protection
    (WANG, card_view(WANG, state="blocked"), Reason.CARD_BLOCKED, ()),
])
def test_a_member_card_reported_lost_is_blocked_at_every_till(ref, card, reason, blocklist):
    decision = decide(request("loss_report", ref), view(terminal=DESK, card=card))
    assert (decision.reason, decision.blocklist, decision.postings) == (reason, blocklist, ())


@pytest.mark.parametrize("card, block_reason, reason", [
    (card_view(WANG, state="blocked"), "LOST", Reason.OK),
    (card_view(WANG, state="blocked"), "OFFLINE_OVERDRAFT", Reason.KIND_NOT_ALLOWED),  # settled by a top-up
    (card_view(WANG), None, Reason.KIND_NOT_ALLOWED),
    (None, None, Reason.UNKNOWN_CARD),
])
def test_only_a_card_reported_lost_is_unblocked(card, block_reason, reason):
    decision = decide(request("card_unblock", WANG), view(terminal=DESK, card=card, block_reason=block_reason))
    assert decision.reason is reason
    assert decision.blocklist == ((BlocklistChange("unblock", WANG.no, 1, "FOUND"),) if reason is Reason.OK else ())


# ---------------------------------------------------------------- reversal
def reversal_view(**fields):
    return view(**({"terminal": DESK, "card": card_view(fen=10_000), "shift_opened_at": 1,
                    "original": original("top_up", amount_fen=10_000), "supervisor": staff(),
                    "pins": FakePins(supervisor_pin="1357")} | fields))


@pytest.mark.parametrize("what, seen, reason", [
    ("within the shift, nothing spent", reversal_view(), Reason.OK),
    ("no shift open", reversal_view(shift_opened_at=None), Reason.NOT_SAME_SHIFT),
    ("a top-up of an earlier shift", reversal_view(shift_opened_at=2), Reason.NOT_SAME_SHIFT),
    ("a charge, not a top-up", reversal_view(original=original("charge", amount_fen=10_000)), Reason.ORIGINAL_NOT_FOUND),
    ("part of it spent already", reversal_view(card=card_view(fen=9_999)), Reason.INSUFFICIENT_FUNDS),
    ("a wrong supervisor PIN", reversal_view(pins=FakePins(supervisor_pin="0000")), Reason.WRONG_PIN),
])
def test_a_reversal_takes_back_a_top_up_of_the_same_shift_with_a_supervisor(what, seen, reason):
    decision = decide(request("reversal", TEMP, terminal="T-DESK-1"), seen)
    assert decision.reason is reason, what
    if reason is Reason.OK:
        assert (decision.voids_txn, decision.amount_fen, decision.staff_wrong_pins) == (41, 10_000, (("S-1", 0),))


# ---------------------------------------------------------------- balance at the tap
@pytest.mark.parametrize("what, card, ref, reason", [
    ("a card in use", card_view(), TEMP, Reason.OK),
    ("a card reported lost", card_view(state="blocked"), TEMP, Reason.CARD_BLOCKED),
    ("a copy of the card (another UID)", card_view(), CardRef(no=TEMP.no, issuance=TEMP.issuance, uid="deadbeef"),
     Reason.CARD_UID_MISMATCH),
    ("a card handed back", card_view(state="returned"), TEMP, Reason.CARD_RETURNED),
    ("a card the books do not hold", None, TEMP, Reason.UNKNOWN_CARD),
])
def test_a_balance_query_runs_the_common_card_checks_and_books_nothing(what, card, ref, reason):
    decision = decide(request("card_balance", ref), view(card=card))
    assert decision.reason is reason, what
    assert decision.postings == () and decision.new_card is None and decision.notification is None, what
