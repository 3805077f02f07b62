"""A member tops up an e-card online: the portal's order, the payment provider (the simulator, over
real HTTP), its signed notification at the ledger's endpoint, and the books — with the park's bonus
tiers, once per provider order however often it is notified, never for a forged or unknown order."""

import json
import time
import urllib.error
import urllib.request

import pytest
from nacl.signing import SigningKey

from host_sim.payment_provider import provider_for_park
from ledger.intake import Intake
from ledger.online_members import MemberDesk
from ledger.payments.service import start_online_payments
from ledger.topups_online import attach_for, create_top_up_order, top_up_order
from ledger.verify import verify_books

from .helpers.intake_driver import Ledger
from host_sim.rig import ParkRig

PHONE = SigningKey(bytes(range(200, 232)))
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Park:
    def __init__(self, tmp_path):
        self.rig = ParkRig(tmp_path).create({"T-DESK-1": "desk", "T-FISH-1": "fishing", "P1-portal": "desk"},
                                            kinds_by_terminal={"P1-portal": ("member_open", "loss_report")})
        # The provider signs with the wall clock and the ledger checks it within 5 minutes.
        self.now_ms = time.time_ns() // 1_000_000
        self.ledger = Ledger(self.rig)
        self.ledger.intake.clock_ms = lambda: self.now_ms
        self.store = self.ledger.store
        self.store.add_bonus_rule("P1", 50_000, 5_000)  # top up 500, get 50
        bundle = json.loads(self.rig.home.bundle_path("P1-portal").read_text())
        self.portal = MemberDesk(Intake(self.store, self.rig.home.ledger_keys(), clock_ms=lambda: self.now_ms), bundle,
                                 lambda: self.now_ms)
        self.ecard = self.portal.open_ecard(member_name="张伟", phone="13800138000", pin="246810",
                                            device_key=PHONE.verify_key.encode())
        home = self.rig.home
        self.sim = provider_for_park(home.home)
        self.payments = start_online_payments(home.home, home.store_location, home.ledger_keys(), home.park_id())

    def order(self, out_trade_no, amount_fen, card_no=None):
        """What the portal does when the member asks to top up: record the order, then make it."""
        card_no = card_no or self.ecard.card_no
        create_top_up_order(self.store, park_id="P1", provider="wechat", provider_order=out_trade_no, card_no=card_no,
                            issuance=1, amount_fen=amount_fen, now_ms=self.now_ms)
        self.make_at_provider(out_trade_no, amount_fen, attach_for(card_no, 1))

    def make_at_provider(self, out_trade_no, amount_fen, attach):
        self.payments.refunds.providers["wechat"].create_order(
            out_trade_no=out_trade_no, item_type=attach, amount_fen=amount_fen, description="充值 Top-up",
            notify_url=self.payments.endpoint.notify_url("wechat"), return_url="http://127.0.0.1:9/return")

    def balances(self):
        return self.store.card_balances("P1", f"card:{self.ecard.card_no}/1")

    def close(self):
        self.payments.stop()
        self.sim.stop()
        self.rig.close()
        self.store.close()


@pytest.fixture
def park(tmp_path):
    park = Park(tmp_path)
    yield park
    park.close()


def test_a_top_up_paid_online_and_notified_twice_adds_once_with_the_parks_bonus(park):
    park.sim.faults.duplicate_notifications = True
    park.order("TU1A2B3C", 50_000)
    park.sim.pay("TU1A2B3C")
    assert [d.http_status for d in park.sim.wait_for_deliveries(2)] == [204, 204]
    assert park.balances() == (50_000, 5_000, 0)
    booked = top_up_order(park.store, "P1", "wechat", "TU1A2B3C")
    assert booked.state == "booked" and booked.txn_id is not None
    assert park.store.db.execute("SELECT COUNT(*) FROM txn WHERE kind='top_up_online'").fetchone()[0] == 1
    notices = park.store.db.execute("SELECT COUNT(*) FROM notification WHERE card_no=?", (park.ecard.card_no,)).fetchone()
    assert notices[0] == 1  # the member hears of it once, as of a top-up at the desk
    assert verify_books(park.store).is_ok


def test_a_forged_notification_is_refused_and_books_nothing(park):
    park.order("TU2A2B3C", 20_000)
    order = {"out_trade_no": "TU2A2B3C", "trade_state": "SUCCESS", "transaction_id": "4200000000",
             "attach": attach_for(park.ecard.card_no, 1), "amount": {"total": 20_000, "currency": "CNY"},
             "success_time_ms": park.now_ms}
    body = json.dumps({"id": "forged-1", "event_type": "TRANSACTION.SUCCESS", "resource": order}).encode()
    forged = urllib.request.Request(park.payments.endpoint.notify_url("wechat"), data=body, method="POST",
                                    headers={"Content-Type": "application/json", "Wechatpay-Serial": "wechat-platform-1",
                                             "Wechatpay-Timestamp": str(park.now_ms // 1000),
                                             "Wechatpay-Nonce": "n" * 32, "Wechatpay-Signature": "AAAA"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        NO_PROXY.open(forged, timeout=10)
    assert refused.value.code == 401
    assert park.balances() == (0, 0, 0) and top_up_order(park.store, "P1", "wechat", "TU2A2B3C").state == "created"


def test_a_paid_order_the_park_never_made_or_for_another_card_books_nothing_and_is_raised(park):
    park.make_at_provider("TU3A2B3C", 20_000, attach_for(park.ecard.card_no, 1))  # never recorded by the portal
    park.sim.pay("TU3A2B3C")
    park.order("TU4A2B3C", 20_000)
    park.make_at_provider("TU5A2B3C", 20_000, attach_for("E000009", 1))
    park.sim.pay("TU5A2B3C")
    assert [d.http_status for d in park.sim.wait_for_deliveries(2)] == [204, 204]  # taken: not delivered forever
    assert park.balances() == (0, 0, 0)
    alerts = [kind for (kind,) in park.store.db.execute("SELECT kind FROM alert")]
    assert alerts.count("ONLINE_TOPUP_MISMATCH") == 2
    owed = park.store.db.execute("SELECT provider_order, amount_fen FROM refund_request ORDER BY provider_order")
    assert owed.fetchall() == [("TU3A2B3C", 20_000), ("TU5A2B3C", 20_000)]  # both paid back in full
    assert top_up_order(park.store, "P1", "wechat", "TU4A2B3C").state == "created"
    assert verify_books(park.store).is_ok


def test_a_paid_top_up_for_a_card_reported_lost_meanwhile_is_refused_and_paid_back(park):
    park.order("TU8A2B3C", 20_000)
    uid = park.store.card("P1", park.ecard.card_no).uid
    park.portal.report_lost(park.ecard.card_no, 1, uid)
    park.sim.pay("TU8A2B3C")
    assert [d.http_status for d in park.sim.wait_for_deliveries(1)] == [204]
    refused = top_up_order(park.store, "P1", "wechat", "TU8A2B3C")
    assert (refused.state, refused.reason) == ("refused", "CARD_BLOCKED")
    assert park.balances() == (0, 0, 0)
    assert park.store.db.execute("SELECT amount_fen FROM refund_request WHERE provider_order='TU8A2B3C'").fetchone() == (20_000,)
    assert verify_books(park.store).is_ok


def test_a_top_up_is_refused_at_the_portal_outside_the_card_types_range_and_for_a_card_that_is_no_member_card(park):
    from ledger.errors import LedgerError

    with pytest.raises(LedgerError) as too_small:
        create_top_up_order(park.store, park_id="P1", provider="wechat", provider_order="TU6", card_no=park.ecard.card_no,
                            issuance=1, amount_fen=1, now_ms=park.now_ms)
    assert too_small.value.code == "TOP_UP_OUT_OF_RANGE"
    with pytest.raises(LedgerError) as unknown:
        create_top_up_order(park.store, park_id="P1", provider="wechat", provider_order="TU7", card_no="E000404",
                            issuance=1, amount_fen=10_000, now_ms=park.now_ms)
    assert unknown.value.code == "UNKNOWN_CARD"


def test_an_online_top_up_is_paid_back_the_way_it_came_with_its_share_of_the_bonus_and_never_more(park):
    from ledger.errors import LedgerError
    from ledger.topups_online import refund_online_top_up

    park.order("TU9A2B3C", 50_000)
    park.sim.pay("TU9A2B3C")
    assert [d.http_status for d in park.sim.wait_for_deliveries(1)] == [204]
    assert park.balances() == (50_000, 5_000, 0)
    refund_no = refund_online_top_up(park.store, park_id="P1", provider="wechat", provider_order="TU9A2B3C",
                                     amount_fen=20_000, now_ms=park.now_ms)
    assert park.balances() == (30_000, 3_000, 0)  # 200.00 back, and the 20.00 of bonus those 200.00 brought
    park.payments.refunds.run_once()  # a round of the refund thread (it also runs on its own)
    assert [(r.out_refund_no, r.amount_fen) for r in park.sim.refunds_of("TU9A2B3C")] == [(refund_no, 20_000)]
    with pytest.raises(LedgerError) as too_much:
        refund_online_top_up(park.store, park_id="P1", provider="wechat", provider_order="TU9A2B3C",
                             amount_fen=30_001, now_ms=park.now_ms)
    assert too_much.value.code == "REFUND_TOO_LARGE"
    assert verify_books(park.store).is_ok
