"""Online deposits into the real books: the provider sim over HTTP, the endpoint and refund thread
as ``ledger serve`` starts them from the park home's payment settings, and ledger.rentals_online."""

import time
import urllib.error
import urllib.request

import pytest

from host_sim.payment_provider import provider_for_park
from host_sim.rig import card
from ledger.payments.service import start_online_payments
from ledger.payments.settings import load_payment_settings
from ledger.verify import verify_books
from protocol.messages import RentalOut, RentalReturn
from protocol.voucher import verify_voucher

from .helpers.rental_park import MINUTE, ROD, rental_park

STAFF_CARD = card("S0001")
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture
def park(tmp_path):
    with rental_park(tmp_path) as ledger:
        # The provider signs with the wall clock and the ledger checks it within 5 minutes, so the
        # books' clock is the wall clock here too.
        ledger.now_ms = time.time_ns() // 1_000_000
        yield ledger


@pytest.fixture
def online(park):
    """The provider sim and the ledger's online payments, wired through the park home's settings."""
    home = park.rig.home
    sim = provider_for_park(home.home)
    payments = start_online_payments(home.home, home.store_location, home.ledger_keys(), home.park_id())
    try:
        yield sim, payments
    finally:
        payments.stop()
        sim.stop()


def pay_online(sim, payments, out_trade_no, amount_fen, item_type="rod"):
    client = payments.refunds.providers["wechat"]
    client.create_order(out_trade_no=out_trade_no, item_type=item_type, amount_fen=amount_fen, description="deposit",
                        notify_url=payments.endpoint.notify_url("wechat"),
                        return_url=payments.endpoint.voucher_url("wechat", out_trade_no))
    sim.pay(out_trade_no)


def deposit_orders(park):
    return park.store.db.execute("SELECT COUNT(*) FROM deposit_order").fetchone()[0]


def test_a_park_without_payment_settings_starts_no_endpoint(park):
    home = park.rig.home
    assert load_payment_settings(home.home) is None
    assert start_online_payments(home.home, home.store_location, home.ledger_keys(), home.park_id()) is None


def test_a_rod_paid_online_twice_notified_then_returned_is_refunded_once_to_the_payment_after_a_timeout(park, online):
    sim, payments = online
    sim.faults.duplicate_notifications = True

    pay_online(sim, payments, "DP0001", ROD.deposit_fen)
    assert [d.http_status for d in sim.wait_for_deliveries(2)] == [204, 204]

    assert deposit_orders(park) == 1 and park.pool_fen() == ROD.deposit_fen
    deposit = payments.endpoint.book.deposit_of("wechat", "DP0001")
    voucher = verify_voucher(deposit.voucher, park.voucher_key, now_ms=park.now_ms)
    assert (voucher.order, voucher.item_type) == (deposit.order, "rod")
    with NO_PROXY.open(f"{sim.base_url}/return/DP0001", timeout=10) as response:
        assert deposit.voucher in response.read().decode()  # the payer's page shows the ledger's voucher

    assert park.request("T-RENT-1", RentalOut, card_ref=STAFF_CARD, voucher=deposit.voucher, item_label="ROD-001").is_approved
    park.now_ms += 30 * MINUTE
    back = park.request("T-RENT-1", RentalReturn, card_ref=STAFF_CARD, item_label="ROD-001", condition="intact", damage="")
    assert (back.refunded_fen, back.route) == (ROD.deposit_fen - ROD.price_fen, "online_wechat")

    sim.faults.refund_timeouts = 1
    payments.refunds.notify_url_of = lambda provider: ""  # no refund notification: the retry alone must finish it
    first = payments.refunds.run_once()
    sim.release_held_answers()
    second = payments.refunds.run_once()

    refund_no = "RF" + deposit.order
    assert first.waiting == [(refund_no, "PROVIDER_TIMEOUT")] and second.refunded == [refund_no]
    made = sim.refunds_of("DP0001")
    assert [(r.out_refund_no, r.amount_fen) for r in made] == [(refund_no, ROD.deposit_fen - ROD.price_fen)]
    assert payments.endpoint.book.pending_refunds() == []
    assert park.pool_fen() == 0
    report = verify_books(park.store)
    assert report.problems == ()


def test_a_payment_of_the_wrong_amount_is_recorded_alerted_and_refunded_in_full_once(park, online):
    sim, payments = online
    sim.faults.duplicate_notifications = True  # the same wrong payment told twice: one record, one refund

    pay_online(sim, payments, "DP0002", ROD.deposit_fen - 1)

    # Answered 2xx: the money has left the payer, so it is taken in and sent back, not bounced.
    assert [d.http_status for d in sim.wait_for_deliveries(2)] == [204, 204]
    assert deposit_orders(park) == 0 and park.pool_fen() == 0
    db = park.store.db
    assert db.execute("SELECT provider_order, amount_fen, reason, refund_no FROM stray_payment").fetchall() == [
        ("DP0002", ROD.deposit_fen - 1, "DEPOSIT_MISMATCH", "RX1")]
    (alert,) = db.execute("SELECT detail FROM alert WHERE kind = 'STRAY_PAYMENT'").fetchall()
    assert "DP0002 of 2999 fen for 'rod' is no deposit (DEPOSIT_MISMATCH: the deposit is 3000 fen)" in alert[0]
    with pytest.raises(urllib.error.HTTPError) as not_paid:
        NO_PROXY.open(payments.endpoint.voucher_url("wechat", "DP0002"), timeout=10)
    assert not_paid.value.code == 404  # no voucher for it

    payments.refunds.notify_url_of = lambda provider: ""
    assert payments.refunds.run_once().refunded == ["RX1"]
    assert payments.refunds.run_once().refunded == []
    assert [(r.out_refund_no, r.amount_fen) for r in sim.refunds_of("DP0002")] == [("RX1", ROD.deposit_fen - 1)]
    assert client_state(payments, "DP0002") == "REFUND"
    assert verify_books(park.store).problems == ()


def client_state(payments, out_trade_no):
    return payments.refunds.providers["wechat"].query_order(out_trade_no).trade_state


def test_an_online_renter_is_told_of_the_return_and_of_the_refund_through_their_payment(park, online):
    from ledger.notify import Notifier, format_text

    sim, payments = online
    pay_online(sim, payments, "DP0003", ROD.deposit_fen)
    sim.wait_for_deliveries(1)
    deposit = payments.endpoint.book.deposit_of("wechat", "DP0003")
    assert park.request("T-RENT-1", RentalOut, card_ref=STAFF_CARD, voucher=deposit.voucher, item_label="ROD-001").is_approved
    park.now_ms += 150 * MINUTE  # 2 h allowed + 15 min grace: one started hour late
    park.request("T-RENT-1", RentalReturn, card_ref=STAFF_CARD, item_label="ROD-001", condition="intact", damage="")
    payments.refunds.notify_url_of = lambda provider: ""
    assert payments.refunds.run_once().refunded == ["RF" + deposit.order]

    class Relay:
        def __init__(self):
            self.sent = []

        def send(self, address, body):
            self.sent.append((address, format_text(body)))

    relay, members = Relay(), Relay()
    notifier = Notifier(park.rig.home.store_location, members, renter_sender=relay, clock_ms=lambda: park.now_ms)
    assert notifier.send_due(park.store) == 2
    assert members.sent == []
    assert relay.sent == [
        ("wechat:DP0003", f"租赁归还 Rental {deposit.order} returned (intact): 押金 deposit 30.00, 租金 rental 10.00, "
                          "超时 late 5.00; 退回 refunding 15.00 原路 to your wechat payment"),
        ("wechat:DP0003", f"押金已退 Deposit {deposit.order}: 15.00 refunded 原路 to your wechat payment")]
    # A refund confirmed again (its notification after the answer) tells nobody twice.
    payments.endpoint.book.refund_done("RF" + deposit.order, "5000X", now_ms=park.now_ms)
    assert notifier.send_due(park.store) == 0 and len(relay.sent) == 2
