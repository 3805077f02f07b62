"""The staff rules as tables: logging in and out, and a station's takings. No store, no broker."""

import pytest

from ledger.rules import Alert, ShiftChange, decide
from protocol.errors import RemoteProtocolError
from protocol.messages import StationReportReply
from protocol.reasons import Reason

from .helpers.rule_tables import DESK, STAFF_CARD, TILL, FakePins, request, staff, view

CASHIER = staff("S-2", role="cashier", card_no=STAFF_CARD.no, pin="2468")


def login(seen_staff, *, typed="2468", terminal=TILL):
    return decide(request("shift_open", STAFF_CARD, operator="S-2", seq=9),
                  view(terminal=terminal, staff=seen_staff, pins=FakePins(pin=typed)))


@pytest.mark.parametrize("what, seen_staff, terminal, reason", [
    ("a cashier at a station", CASHIER, TILL, Reason.OK),
    ("a cashier at the front desk", CASHIER, DESK, Reason.ROLE_NOT_ALLOWED),
    ("a card of nobody", None, TILL, Reason.UNKNOWN_STAFF),
    ("someone else's card", staff("S-3", role="cashier", card_no=STAFF_CARD.no), TILL, Reason.UNKNOWN_STAFF),
    ("a staff member who left", staff("S-2", role="cashier", is_active=False), TILL, Reason.UNKNOWN_STAFF),
    ("a locked PIN", staff("S-2", role="cashier", pin="2468", wrong_pins=3), TILL, Reason.PIN_LOCKED),
])
def test_who_may_log_in_where(what, seen_staff, terminal, reason):
    decision = login(seen_staff, terminal=terminal)
    assert decision.reason is reason, what
    assert (decision.shift is not None) is (reason is Reason.OK), what


def test_logging_in_opens_a_shift_and_resets_the_count_and_a_wrong_pin_counts_and_alerts():
    assert login(CASHIER).shift == ShiftChange("T-FISH-1", 9, opens_for="S-2")
    assert login(CASHIER).staff_wrong_pins == (("S-2", 0),)
    wrong = login(staff("S-2", role="cashier", card_no=STAFF_CARD.no, wrong_pins=2), typed="0000")
    assert (wrong.reason, wrong.staff_wrong_pins, wrong.shift) == (Reason.PIN_LOCKED, (("S-2", 3),), None)
    assert wrong.alerts == (Alert("WRONG_PIN", "staff S-2 wrong PIN 3 on T-FISH-1"),)


def test_a_pin_block_that_does_not_open_is_refused_before_the_card_is_looked_at():
    with pytest.raises(RemoteProtocolError):
        decide(request("shift_open", STAFF_CARD, operator="S-2"), view(staff=None, pins=FakePins()))


@pytest.mark.parametrize("open_for, reason", [("S-2", Reason.OK), ("S-1", Reason.UNKNOWN_STAFF), (None, Reason.UNKNOWN_STAFF)])
def test_logging_out_closes_the_terminals_shift_and_only_its_owner_hears_ok(open_for, reason):
    decision = decide(request("shift_close", STAFF_CARD, operator="S-2", seq=11), view(shift_staff=open_for))
    assert (decision.reason, decision.shift) == (reason, ShiftChange("T-FISH-1", 11))


@pytest.mark.parametrize("role, reason", [("finance", Reason.OK), ("supervisor", Reason.OK), ("cashier", Reason.ROLE_NOT_ALLOWED)])
def test_a_stations_takings_go_to_supervisors_finance_and_admins(role, reason):
    decision = decide(request("station_report", STAFF_CARD, operator="S-2"),
                      view(staff=staff("S-2", role=role, card_no=STAFF_CARD.no), takings=(3, 4500, 1, 1)))
    assert decision.reason is reason
    if reason is Reason.OK:
        assert decision.answer.reply_type is StationReportReply
        assert decision.answer.fields == {"station": "fishing", "business_day": "2026-06-01", "sales_count": 3,
                                          "sales_fen": 4500, "offline_count": 1, "voids_count": 1}
