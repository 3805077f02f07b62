"""Rentals across the wire: a rental terminal's signed requests over a real Mosquitto into the
running ledger service, and its signed replies back (issue 13 acceptance, ledger side)."""

import time

import pytest

from host_sim.rig import ParkRig, card, common
from ledger.rentals_online import pending_refunds, record_online_deposit
from ledger.verify import verify_books
from protocol.messages import DamageFee, DepositDesk, RentalOut, RentalReturn, RentalType

from .helpers.rental_park import RENTAL_KINDS, ROD, TERMINALS

STAFF_CARD = card("S0001")
# A boat is rented by the session at no price of its own (the ticket is sold apart): on time, the
# whole deposit goes back.
BOAT = RentalType(item_type="boat", name="小船 Boat", deposit_fen=10000, price_fen=0, price_per="session",
                  allowed_minutes=60, grace_minutes=10, late_fee_per_hour_fen=2000, lost_fee_fen=0,
                  damage=(DamageFee(code="oar", name="桨 Oar", fee_fen=3000),))


@pytest.fixture
def rental_rig(tmp_path):
    with ParkRig(tmp_path).create(TERMINALS, kinds_by_terminal=RENTAL_KINDS) as park:
        store = park.home.open_store()
        try:
            for item_type in (ROD, BOAT):
                store.add_rental_type(park.park_id, item_type)
            for label, item_type in (("ROD-001", "rod"), ("BOAT-1", "boat"), ("BOAT-2", "boat")):
                store.add_rental_item(park.park_id, label, "fishing", item_type, 0)
        finally:
            store.close()
        park.start_broker()
        park.start_ledger()
        yield park


def pool_fen(rig) -> int:
    return rig.reader.db.execute("SELECT COALESCE(SUM(amount), 0) FROM posting WHERE account_id LIKE 'deposit:%'").fetchone()[0]


def test_paid_online_handed_out_and_returned_on_time_refunds_the_whole_deposit_to_the_provider(rental_rig):
    rig = rental_rig
    store = rig.home.open_store()
    try:
        paid = record_online_deposit(store, rig.home.ledger_keys(), park_id=rig.park_id, provider="alipay",
                                     provider_order="ALI-7", transaction_id="2026060122001", item_type="boat",
                                     amount_fen=10000, paid_ms=int(time.time() * 1000),
                                     now_ms=int(time.time() * 1000))
    finally:
        store.close()
    desk = rig.link("T-RENT-1")
    out = desk.submit(lambda seq: RentalOut(**common(desk, seq, STAFF_CARD), voucher=paid.voucher, item_label="BOAT-1"))
    assert out.outcome == "approved", out
    assert pool_fen(rig) == 10000

    back = desk.submit(lambda seq: RentalReturn(**common(desk, seq, STAFF_CARD), item_label="BOAT-1",
                                                condition="intact", damage=""))
    assert back.TYPE == "rental_return_reply", back
    assert (back.deposit_fen, back.refunded_fen, back.route) == (10000, 10000, "online_alipay")
    assert pool_fen(rig) == 0
    store = rig.home.open_store()
    try:
        (refund,) = pending_refunds(store, rig.park_id)  # one refund of the original payment
        told = store.db.execute("SELECT event, address, body FROM renter_notification").fetchall()
    finally:
        store.close()
    assert (refund.provider, refund.provider_order, refund.amount_fen) == ("alipay", "ALI-7", 10000)
    # The renter is told, through their payment, that the boat came back and what goes back to them.
    (event, address, body), = told
    assert (event, address) == ("returned", "alipay:ALI-7")
    assert '"refunded_fen": 10000' in body and '"method": "alipay"' in body and '"condition": "intact"' in body
    report = verify_books(rig.reader)
    assert report.is_ok, report.problems


def test_a_voucher_scanned_twice_online_is_refused_the_second_time_with_when_and_where(rental_rig):
    rig = rental_rig
    first, second = rig.link("T-RENT-1"), rig.link("T-RENT-2")
    deposit = first.submit(lambda seq: DepositDesk(**common(first, seq, STAFF_CARD), item_type="boat",
                                                   deposit_fen=10000, channel="wechat", payment_ref="WX-1"))
    assert deposit.TYPE == "deposit_reply", deposit
    assert first.submit(lambda seq: RentalOut(**common(first, seq, STAFF_CARD), voucher=deposit.voucher,
                                              item_label="BOAT-1")).outcome == "approved"
    again = second.submit(lambda seq: RentalOut(**common(second, seq, STAFF_CARD), voucher=deposit.voucher,
                                                item_label="BOAT-2"))
    assert (again.outcome, again.reason) == ("declined", "VOUCHER_USED")
    assert again.detail.startswith(f"voucher {deposit.order} first redeemed ") and again.detail.endswith(" at T-RENT-1")
    assert pool_fen(rig) == 10000
    assert verify_books(rig.reader).is_ok
