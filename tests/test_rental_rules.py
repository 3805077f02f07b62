"""Rental rules as plain functions (issue 13): no database, no broker. Fees, returns with claims,
hand-out decisions, the forfeit rule, the pool guard and the voucher token."""

import base64

from nacl.signing import SigningKey
import pytest

from ledger.keys import LedgerKey
from ledger.rules import View
from ledger.rules.common import check_balanced
from ledger.rules.rentals import (ItemView, OrderView, PoolIsolationError, RentalView, charges_for, check_pool_postings,
                                  decide_forfeit, decide_offline_rental_out, decide_rental_out, decide_rental_return)
from ledger.rules.decision import Posting, StationView
from protocol.messages import CardRef, OfflineRentalOut, RentalOut, RentalReturn
from protocol.reasons import Reason
from protocol.voucher import Voucher, VoucherError, make_voucher, parse_voucher, verify_voucher

from .helpers.rental_park import BIKE, MINUTE, ROD, T0

HOUR = 60 * MINUTE
KEY = LedgerKey("P1-voucher-1", SigningKey(bytes(range(32))))
STAFF = CardRef(no="S0001", issuance=1, uid="0a0b0c0d")
COMMON = dict(park="P1", terminal="T-RENT-1", seq=5, terminal_time_ms=T0, clock_uncertain=False, operator="wang",
              config_version=1, card=STAFF)


@pytest.mark.parametrize("item_type, out_for, condition, damage, expected", [
    (ROD, 60 * MINUTE, "intact", (), (1000, 0, 0)),                     # a session, well within its 2 hours
    (ROD, 135 * MINUTE, "intact", (), (1000, 0, 0)),                    # to the minute of the grace's end
    (ROD, 135 * MINUTE + 1, "intact", (), (1000, 500, 0)),              # a started hour late
    (ROD, 135 * MINUTE + HOUR + 1, "intact", (), (1000, 1000, 0)),      # two
    (ROD, 30 * MINUTE, "damaged", ("reel", "line"), (1000, 0, 2500)),   # the damage picked, summed
    (ROD, 30 * MINUTE, "lost", (), (1000, 0, 8000)),                    # lost: the lost-item fee instead
    (BIKE, 0, "intact", (), (1500, 0, 0)),                              # by the hour: at least one
    (BIKE, HOUR, "intact", (), (1500, 0, 0)),
    (BIKE, HOUR + 1, "intact", (), (3000, 0, 0)),                       # per started hour; never late
    (BIKE, 30 * HOUR, "intact", (), (45000, 0, 0)),
])
def test_what_a_rental_costs(item_type, out_for, condition, damage, expected):
    charges = charges_for(item_type, T0, T0 + out_for, condition, damage)
    assert (charges.rental_fen, charges.late_fen, charges.damage_fen) == expected


def test_a_damage_code_not_in_the_types_list_is_a_key_error():
    with pytest.raises(KeyError):
        charges_for(ROD, T0, T0 + MINUTE, "damaged", ("oar",))


def order(**change) -> OrderView:
    fields = dict(order_no=7, item_type="rod", deposit_fen=3000, route="card", payer_account="card:M00008/1",
                  payment_ref="", transaction_id="", is_member=True, state="out", held_ms=T0, expires_ms=T0 + 3 * 86_400_000,
                  item_label="ROD-001", station_id="fishing", out_ms=T0)
    return OrderView(**(fields | change))


ROD_001 = ItemView("ROD-001", "fishing", "rod", "out")
FISHING = StationView("fishing", None, 0)


def returned(condition="intact", damage="", *, back_after=60 * MINUTE, **order_change):
    view = View(rental=RentalView(now_ms=T0 + back_after, order=order(**order_change), item=ROD_001, item_type=ROD,
                                  payer_phone="13800138000", station=FISHING))
    return decide_rental_return(RentalReturn(**COMMON, item_label="ROD-001", condition=condition, damage=damage), view)


def test_a_lost_item_on_a_member_card_becomes_a_debt_on_that_card_and_the_member_is_told():
    decision = returned("lost")
    assert decision.is_approved and decision.allow_negative
    postings = {p.account: p.amount for p in decision.postings}
    assert postings == {"deposit:D7": -3000, "revenue:fishing": 1000, "income:rental_damage": 8000,
                        "card:M00008/1": -6000}
    check_balanced(decision.postings)
    assert decision.rental.claim_fen == 6000 and decision.rental.claim_card_account == "card:M00008/1"
    assert decision.rental.item_state == "retired"
    assert decision.notification.phone == "13800138000" and decision.notification.amount_fen == 0
    assert decision.answer.fields["claim_fen"] == 6000


def test_damage_beyond_a_cash_deposit_is_an_open_claim_never_written_off():
    decision = returned("damaged", "reel", back_after=200 * MINUTE, route="cash", payer_account="channel:cash",
                        is_member=False)
    postings = {p.account: p.amount for p in decision.postings}
    assert postings == {"deposit:D7": -3000, "revenue:fishing": 1000, "income:rental_late": 1000,
                        "income:rental_damage": 2000, "claim:D7": -1000}
    assert not decision.allow_negative and decision.rental.claim_card_account is None
    assert decision.rental.item_state == "in_repair" and decision.notification is None


def test_an_online_deposit_returned_on_time_asks_the_provider_to_refund_the_rest():
    decision = returned(route="online_wechat", payer_account="channel:wechat", is_member=False)
    assert {p.account: p.amount for p in decision.postings} == {"deposit:D7": -3000, "revenue:fishing": 1000,
                                                                "channel:wechat": 2000}
    assert decision.rental.refund_to_provider == "wechat" and decision.rental.refunded_fen == 2000


def test_an_unknown_damage_code_is_declined_and_books_nothing():
    decision = returned("damaged", "oar")
    assert decision.reason is Reason.DAMAGE_CODE_UNKNOWN and decision.postings == ()


def hand_out_view(token, *, first=None, state="held", item_state="available"):
    return View(rental=RentalView(now_ms=T0, order=order(state=state, out_ms=None, item_label=None),
                                  item=ItemView("ROD-002", "fishing", "rod", item_state), voucher_key=KEY,
                                  first_redemption=first))


def token(expires_ms=T0 + 86_400_000, order_id="D7", key=KEY.signing_key):
    return make_voucher(Voucher("P1", order_id, "rod", expires_ms, "P1-voucher-1"), key)


@pytest.mark.parametrize("view_change, reason", [
    ({}, Reason.OK),
    ({"first": "first redeemed 2026-05-29 12:26:40 at T-RENT-1"}, Reason.VOUCHER_USED),
    ({"state": "closed"}, Reason.DEPOSIT_NOT_HELD),
    ({"item_state": "in_repair"}, Reason.ITEM_NOT_AVAILABLE),
])
def test_a_hand_out_online(view_change, reason):
    decision = decide_rental_out(RentalOut(**COMMON, voucher=token(), item_label="ROD-002"),
                                 hand_out_view(token(), **view_change))
    assert decision.reason is reason
    if reason is Reason.VOUCHER_USED:
        assert decision.detail == "voucher D7 first redeemed 2026-05-29 12:26:40 at T-RENT-1"
    assert (decision.rental is not None) == (reason is Reason.OK)


def test_a_second_offline_hand_out_is_approved_and_flagged_with_both_places():
    first = "first redeemed 2026-05-29 12:26:40 at T-RENT-1"
    request = OfflineRentalOut(**COMMON, voucher=token(), item_label="ROD-002", approved_ms=T0 + MINUTE)
    decision = decide_offline_rental_out(request, hand_out_view(token(), first=first, state="out"))
    assert decision.is_approved and decision.rental.is_flagged
    (alert,) = decision.alerts
    assert alert.kind == "VOUCHER_REDEEMED_TWICE" and first in alert.detail and "T-RENT-1 seq 5" in alert.detail


def test_an_offline_hand_out_is_judged_at_its_own_time_not_at_upload():
    expires = T0 + 10 * MINUTE
    request = OfflineRentalOut(**COMMON, voucher=token(expires), item_label="ROD-002", approved_ms=T0 + MINUTE)
    view = View(rental=RentalView(now_ms=T0 + 86_400_000, order=order(state="held", out_ms=None), voucher_key=KEY,
                                  item=ItemView("ROD-002", "fishing", "rod", "available")))
    assert decide_offline_rental_out(request, view).is_approved


@pytest.mark.parametrize("held_for, state, approved", [
    (3 * 86_400_000, "out", True), (3 * 86_400_000, "held", True), (86_400_000, "out", False),
    (3 * 86_400_000, "closed", False), (3 * 86_400_000, "forfeited", False)])
def test_the_forfeit_rule(held_for, state, approved):
    decision = decide_forfeit(order(state=state), T0 + held_for, 2 * 86_400_000)
    assert decision.is_approved == approved
    if approved:
        assert {p.account: p.amount for p in decision.postings} == {"deposit:D7": -3000,
                                                                    "income:rental_forfeit": 3000}
        assert decision.rental.item_label == ("ROD-001" if state == "out" else None)


def test_only_rental_kinds_may_post_to_the_pool():
    pool = (Posting("deposit:D1", "fen", -1), Posting("revenue:fishing", "fen", 1))
    for kind in ("deposit_card", "deposit_desk", "deposit_online", "rental_return", "rental_forfeit"):
        check_pool_postings(kind, pool)
    for kind in ("charge", "top_up", "card_return", "rental_out", "void"):
        with pytest.raises(PoolIsolationError):
            check_pool_postings(kind, pool)


# ---------------------------------------------------------------- the voucher token
def test_a_voucher_fits_a_qr_codes_alphanumeric_mode_and_round_trips():
    text = token()
    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567:FPV1") and len(text) < 200
    assert verify_voucher(text, KEY.signing_key.verify_key, T0) == Voucher("P1", "D7", "rod", T0 + 86_400_000,
                                                                           "P1-voucher-1")


def test_every_single_character_changed_makes_a_voucher_invalid():
    text = token()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    for at in range(5, len(text)):
        other = alphabet[(alphabet.index(text[at]) + 1) % 32]
        with pytest.raises(VoucherError) as error:
            verify_voucher(text[:at] + other + text[at + 1:], KEY.signing_key.verify_key, T0)
        assert error.value.code == "VOUCHER_INVALID", at


@pytest.mark.parametrize("bad", ["", "FPV1:", "FPV2:AAAA", "FPV1:" + "A" * 120, "FPV1:abc", "fpv1:AAAA",
                                 "FPV1:" + base64.b32encode(b"\x05P1").decode().rstrip("="), None])
def test_what_is_not_a_voucher_is_invalid_never_an_exception_of_another_kind(bad):
    with pytest.raises(VoucherError) as error:
        parse_voucher(bad)
    assert error.value.code == "VOUCHER_INVALID"


def test_a_forged_and_an_expired_voucher():
    forged = token(key=SigningKey(bytes(32)))
    with pytest.raises(VoucherError) as error:
        verify_voucher(forged, KEY.signing_key.verify_key, T0)
    assert error.value.code == "VOUCHER_INVALID"
    with pytest.raises(VoucherError) as error:
        verify_voucher(token(T0), KEY.signing_key.verify_key, T0)
    assert error.value.code == "VOUCHER_EXPIRED"


def test_the_renter_is_told_what_came_back_not_that_they_were_charged():
    from ledger.notify import format_text

    text = format_text({"kind": "rental_return", "amount_fen": 2000, "balance_fen": 9000, "bonus_fen": 0, "points": 0,
                        "terminal": "T-RENT-1", "time_ms": T0})
    assert text == "租赁归还 Rental returned @ T-RENT-1: 押金退回 deposit refunded 20.00. 余额 Balance 90.00"
