"""The sales rules as tables: (request, view) -> reason and every effect. No store, no broker."""

import pytest

from ledger.rules import Alert, BlocklistChange, Notification, Posting, decide
from protocol.reasons import Reason

from .helpers.rule_tables import (FISHING, SEALED, TEMP, WANG, FakePins, card_view, member, original, request, staff,
                                  view)

WANG_CARD = card_view(WANG, fen=50_000)


def charge(amount_fen=1500, card=TEMP, **extra):
    return request("charge", card, amount_fen=amount_fen, **extra)


# ---------------------------------------------------------------- charge
@pytest.mark.parametrize("what, sale, seen, reason", [
    ("a temporary card with enough on it", charge(), view(card=card_view(), station=FISHING), Reason.OK),
    ("one fen more than the card holds", charge(7001), view(card=card_view(), station=FISHING), Reason.INSUFFICIENT_FUNDS),
    ("a card the park never issued", charge(), view(station=FISHING), Reason.UNKNOWN_CARD),
    ("a card reported lost", charge(), view(card=card_view(state="blocked"), station=FISHING), Reason.CARD_BLOCKED),
    ("over today's spend", charge(1500), view(card=card_view(), station=FISHING, spent_today_fen=28_501),
     Reason.OVER_DAILY_LIMIT),
    ("an attempt the till replaced by an offline sale", charge(),
     view(card=card_view(), station=FISHING, is_superseded=True), Reason.SUPERSEDED),
    ("a member under the no-PIN limit, no PIN", charge(20_000, WANG),
     view(card=WANG_CARD, member=member(), station=FISHING), Reason.OK),
    ("a member over the no-PIN limit, no PIN", charge(20_001, WANG),
     view(card=WANG_CARD, member=member(), station=FISHING), Reason.PIN_REQUIRED),
    ("a member whose PIN is locked", charge(100, WANG),
     view(card=WANG_CARD, member=member(wrong_pins=3), station=FISHING), Reason.PIN_LOCKED),
])
def test_a_charge_is_decided_by_the_card_the_limits_and_the_members_pin(what, sale, seen, reason):
    assert decide(sale, seen).reason is reason, what


def test_a_temporary_card_charge_pays_the_station_and_tells_nobody():
    decision = decide(charge(1500), view(card=card_view(), station=FISHING))
    assert decision.postings == (Posting("card:C00042/2", "fen", -1500), Posting("revenue:fishing", "fen", 1500))
    assert (decision.notification, decision.member_wrong_pins, decision.alerts) == (None, None, ())


def test_a_wrong_member_pin_is_counted_and_alerted_and_the_third_locks():
    sale = charge(25_000, WANG, pin_sha256=SEALED)
    first = decide(sale, view(card=WANG_CARD, member=member(), station=FISHING, pins=FakePins(pin="000000")))
    assert (first.reason, first.member_wrong_pins, first.postings) == (Reason.WRONG_PIN, (WANG.no, 1), ())
    assert first.alerts == (Alert("WRONG_PIN", "member card M00008: wrong PIN 1"),)
    third = decide(sale, view(card=WANG_CARD, member=member(wrong_pins=2), station=FISHING, pins=FakePins(pin="0")))
    assert (third.reason, third.member_wrong_pins) == (Reason.PIN_LOCKED, (WANG.no, 3))


def test_the_right_member_pin_resets_the_count_books_points_and_tells_the_member():
    told = member(wrong_pins=2)
    decision = decide(charge(25_000, WANG, pin_sha256=SEALED),
                      view(card=WANG_CARD, member=told, member_to_tell=told, station=FISHING, points_per_yuan=1,
                           pins=FakePins(pin="246810")))
    assert decision.is_approved and decision.member_wrong_pins == (WANG.no, 0)
    assert Posting("card:M00008/1", "points", 250) in decision.postings
    assert decision.notification == Notification(WANG.no, "13800138000", "charge", 25_000, "card:M00008/1")


# ---------------------------------------------------------------- offline charge
def offline(amount_fen=1500, **extra):
    return request("offline_charge", TEMP, amount_fen=amount_fen, **extra)


def test_an_offline_sale_that_overdraws_its_card_blocks_it_and_says_so():
    decision = decide(offline(7500), view(card=card_view(fen=7000), station=FISHING))
    assert decision.is_approved and decision.allow_negative
    assert decision.blocklist == (BlocklistChange("block", TEMP.no, TEMP.issuance, "OFFLINE_OVERDRAFT"),)
    assert decision.alerts == (Alert("OFFLINE_OVERDRAFT", "card:C00042/2 overdrawn to -500 fen by offline sale T-FISH-1/7"),)
    assert decide(offline(7000), view(card=card_view(fen=7000), station=FISHING)).blocklist == ()


@pytest.mark.parametrize("earlier, reason, supersedes", [
    ("approved", Reason.SAME_SALE, None),      # the online answer was lost: the same sale, booked once
    ("declined", Reason.OK, ("T-FISH-1", 6, 7)),
    (None, Reason.OK, ("T-FISH-1", 6, 7)),     # never reached the ledger
])
def test_an_offline_sale_replacing_an_online_attempt(earlier, reason, supersedes):
    decision = decide(offline(supersedes_seq=6), view(card=card_view(), station=FISHING, earlier_outcome=earlier))
    assert (decision.reason, decision.supersedes) == (reason, supersedes)
    assert (decision.postings == ()) is (reason is Reason.SAME_SALE)


def test_an_offline_sale_on_a_lost_card_is_booked_all_the_same():
    assert decide(offline(), view(card=card_view(state="blocked"), station=FISHING)).is_approved


# ---------------------------------------------------------------- void
def void(**extra):
    return request("void", TEMP, **extra)


def with_supervisor(supervisor=staff(), *, typed="9", **fields):
    """A void's view: the charge it names, and the supervisor's card and the PIN typed for them."""
    return view(**({"card": card_view(), "original": original(), "supervisor": supervisor,
                     "pins": FakePins(supervisor_pin=typed)} | fields))


@pytest.mark.parametrize("what, seen, reason, staff_pins", [
    ("no such sale", with_supervisor(original=None), Reason.ORIGINAL_NOT_FOUND, ()),
    ("voided already", with_supervisor(original=original(is_voided=True)), Reason.ALREADY_VOIDED, ()),
    ("another amount", with_supervisor(original=original(amount_fen=1400)), Reason.AMOUNT_MISMATCH, ()),
    ("a top-up, not a charge", with_supervisor(original=original(kind="top_up")), Reason.ORIGINAL_NOT_FOUND, ()),
    ("a cashier's card as the supervisor's", with_supervisor(staff(role="cashier")), Reason.SUPERVISOR_REQUIRED, ()),
    ("no supervisor card", with_supervisor(None), Reason.SUPERVISOR_REQUIRED, ()),
    ("a locked supervisor", with_supervisor(staff(wrong_pins=3), typed="1357"), Reason.PIN_LOCKED, ()),
    ("a wrong supervisor PIN", with_supervisor(staff(wrong_pins=1)), Reason.WRONG_PIN, (("S-1", 2),)),
    ("a third wrong supervisor PIN", with_supervisor(staff(wrong_pins=2)), Reason.PIN_LOCKED, (("S-1", 3),)),
    ("the right supervisor PIN", with_supervisor(staff(wrong_pins=1), typed="1357"), Reason.OK, (("S-1", 0),)),
])
def test_a_void_needs_its_sale_once_at_its_amount_and_a_supervisors_pin(what, seen, reason, staff_pins):
    decision = decide(void(), seen)
    assert (decision.reason, decision.staff_wrong_pins) == (reason, staff_pins), what
    assert (decision.alerts != ()) is (staff_pins not in ((), (("S-1", 0),))), what
    if reason is Reason.OK:
        assert decision.voids_txn == 41
        assert decision.postings == (Posting("card:C00042/2", "fen", 1500), Posting("revenue:fishing", "fen", -1500))
