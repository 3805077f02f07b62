"""The online payment path over real HTTP on loopback: the ledger's provider client and
notification endpoint against the simulated provider, with its faults.

The books here are a stand-in with the three functions of ledger.rentals_online that the payment
code calls (tests/test_payment_ledger.py runs the same path into the real books): it books a
deposit once per (provider, order) as the real one does and counts every call, so a test can tell
"delivered twice" from "booked twice".
"""

import dataclasses
import json
import threading
import urllib.error
import urllib.request

from nacl.signing import SigningKey
import pytest

from host_sim.payment_provider import SimulatedProvider
from ledger.payments import signing
from ledger.payments.errors import BadSignature, ProviderRefused, ProviderTimeout, ProviderUnavailable, UnknownOrder
from ledger.payments.http_provider import HttpPaymentProvider
from ledger.payments.notifications import PaymentEndpoint, confirm_payment
from ledger.payments.refunds import RefundRound, RefundSender
from ledger.rentals_online import OnlineDeposit, RefundRequest

ROD_DEPOSIT_FEN = 20_000
MERCHANT_KEY_ID = "park-merchant-1"
# Short enough that a held answer is a timeout within a test; the faults hold far longer.
CLIENT_TIMEOUT_S = 0.5
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class BooksStandIn:
    def __init__(self):
        self.lock = threading.Lock()
        self.deposits: dict[tuple[str, str], OnlineDeposit] = {}
        self.record_calls = 0
        self.owed: dict[str, RefundRequest] = {}
        self.refunded: dict[str, str] = {}  # refund_no -> provider's refund id
        self.failed: dict[str, str] = {}    # refund_no -> the provider's code, refused for good

    def record_payment(self, provider, order, *, now_ms):
        with self.lock:
            self.record_calls += 1
            key = (provider, order.out_trade_no)
            if key in self.deposits:
                return dataclasses.replace(self.deposits[key], is_new=False)
            deposit = OnlineDeposit(f"D{len(self.deposits) + 1:05d}", f"FPV1:VOUCHER{len(self.deposits) + 1}",
                                    now_ms + 86_400_000, True)
            self.deposits[key] = deposit
            return deposit

    def deposit_of(self, provider, out_trade_no):
        with self.lock:
            return self.deposits.get((provider, out_trade_no))

    def pending_refunds(self):
        with self.lock:
            return [request for number, request in self.owed.items()
                    if number not in self.refunded and number not in self.failed]

    def owed_refund(self, refund_no):
        with self.lock:
            return None if refund_no in self.refunded else self.owed.get(refund_no)

    def refund_done(self, refund_no, provider_refund_id, *, now_ms):
        with self.lock:
            self.refunded.setdefault(refund_no, provider_refund_id)

    def refund_failed(self, refund_no, code, detail, *, now_ms):
        with self.lock:
            self.failed.setdefault(refund_no, code)

    def owe_refund(self, provider, order, deposit, amount_fen):
        """What closing the deposit on return does in the real books: a refund request "RF" + order."""
        refund_no = "RF" + deposit.order
        self.owed[refund_no] = RefundRequest(refund_no, provider, order.out_trade_no, order.transaction_id,
                                             amount_fen, order.amount_fen, deposit.order)
        return refund_no


@pytest.fixture
def merchant_key():
    return SigningKey.generate()


@pytest.fixture
def provider_sim(merchant_key):
    with SimulatedProvider(name="wechat", merchant_keys={MERCHANT_KEY_ID: merchant_key.verify_key}) as sim:
        yield sim


@pytest.fixture
def client(provider_sim, merchant_key):
    return HttpPaymentProvider(name="wechat", base_url=provider_sim.base_url, merchant_id=provider_sim.merchant_id,
                               merchant_key_id=MERCHANT_KEY_ID, merchant_key=merchant_key,
                               provider_keys=provider_sim.public_keys, timeout_s=CLIENT_TIMEOUT_S)


@pytest.fixture
def books():
    return BooksStandIn()


@pytest.fixture
def endpoint(client, books):
    with PaymentEndpoint(providers={"wechat": client}, book=books) as endpoint:
        yield endpoint


def order_rod_deposit(client, endpoint, out_trade_no="DP0001"):
    return client.create_order(out_trade_no=out_trade_no, item_type="rod", amount_fen=ROD_DEPOSIT_FEN,
                               description="Fishing rod deposit", notify_url=endpoint.notify_url("wechat"),
                               return_url=endpoint.voucher_url("wechat", out_trade_no))


def visitor_pays(provider_sim, out_trade_no) -> str:
    """The visitor presses "Pay" on the provider's page (a form POST), and lands on the return page."""
    with NO_PROXY.open(urllib.request.Request(f"{provider_sim.base_url}/sim/pay/{out_trade_no}", data=b"",
                                              method="POST"), timeout=10) as response:
        return response.read().decode()


def paid_order(client, provider_sim, endpoint, books, out_trade_no="DP0001"):
    """A rod deposit paid online and booked (its notification answered)."""
    order_rod_deposit(client, endpoint, out_trade_no)
    visitor_pays(provider_sim, out_trade_no)
    provider_sim.wait_for_deliveries(1)
    order = client.query_order(out_trade_no)
    return order, books.deposit_of("wechat", out_trade_no)


# ------------------------------------------------------------------ payments in
def test_a_payment_notification_delivered_twice_books_one_deposit(client, provider_sim, endpoint, books):
    provider_sim.faults.duplicate_notifications = True
    order_rod_deposit(client, endpoint)
    visitor_pays(provider_sim, "DP0001")

    deliveries = provider_sim.wait_for_deliveries(2)

    assert [(d.event_type, d.subject, d.http_status) for d in deliveries] == [("TRANSACTION.SUCCESS", "DP0001", 204)] * 2
    assert books.record_calls == 2  # both deliveries reached the books...
    assert list(books.deposits) == [("wechat", "DP0001")]  # ...which hold one deposit
    assert books.deposits[("wechat", "DP0001")].is_new


def test_a_notification_with_a_bad_signature_is_refused_and_books_nothing(client, provider_sim, endpoint, books):
    order_rod_deposit(client, endpoint)
    paid = {"id": "EV-forged", "create_time_ms": 1, "event_type": "TRANSACTION.SUCCESS",
            "resource": {"out_trade_no": "DP0001", "trade_state": "SUCCESS", "transaction_id": "4200forged",
                         "attach": "rod", "amount": {"total": ROD_DEPOSIT_FEN, "currency": "CNY"},
                         "success_time_ms": 1_700_000_000_000}}
    body = json.dumps(paid).encode()
    path = "/payments/wechat/notify"
    now_s = int(__import__("time").time())
    forger = SigningKey.generate()
    honest_headers = signing.sign(provider_sim.signing_key, provider_sim.key_id, "POST", path, body,
                                  timestamp_s=now_s, nonce="a" * 32)
    cases = {
        "signed by another key under the provider's key id": signing.sign(
            forger, provider_sim.key_id, "POST", path, body, timestamp_s=now_s, nonce="b" * 32),
        "the provider's signature over a body then altered (amount)": honest_headers,
        "no signature at all": {},
        "the provider's signature from an hour ago": signing.sign(
            provider_sim.signing_key, provider_sim.key_id, "POST", path, body, timestamp_s=now_s - 3600, nonce="c" * 32),
    }
    altered = body.replace(b'"total": 20000', b'"total": 1')
    for case, headers in cases.items():
        sent = altered if "altered" in case else body
        request = urllib.request.Request(endpoint.base_url + path, data=sent, method="POST",
                                         headers={**headers, "Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            NO_PROXY.open(request, timeout=10)
        assert refused.value.code == 401, case
        assert json.loads(refused.value.read())["code"] == "SIGN_ERROR", case

    assert books.record_calls == 0 and books.deposits == {}


def test_a_notification_before_the_query_shows_paid_is_booked_and_the_query_later_finds_it_booked(
        client, provider_sim, endpoint, books):
    provider_sim.faults.query_lags_payment = True
    order_rod_deposit(client, endpoint)
    visitor_pays(provider_sim, "DP0001")
    assert provider_sim.wait_for_deliveries(1)[0].http_status == 204

    # The signed notification was enough: the deposit is held though the provider's query lags.
    assert client.query_order("DP0001").trade_state == "NOTPAY"
    held = books.deposit_of("wechat", "DP0001")
    assert held is not None and held.is_new
    assert confirm_payment(client, books, "DP0001", now_ms=2) is None  # NOTPAY: nothing to book from the query

    provider_sim.settle_queries()
    confirmed = confirm_payment(client, books, "DP0001", now_ms=3)
    assert (confirmed.order, confirmed.is_new) == (held.order, False)
    assert len(books.deposits) == 1


def test_without_a_notification_the_query_books_the_payment(client, provider_sim, books, endpoint):
    # The ledger gave the provider a notify URL nobody answers at: every delivery fails.
    client.create_order(out_trade_no="DP0002", item_type="bike", amount_fen=30_000, description="Bike deposit",
                        notify_url=endpoint.notify_url("wechat").replace("/wechat/", "/nobody/"),
                        return_url=endpoint.voucher_url("wechat", "DP0002"))
    provider_sim.notify_retry_delays_s = ()
    visitor_pays(provider_sim, "DP0002")
    assert [d.http_status for d in provider_sim.wait_for_deliveries(1)] == [404]
    assert books.deposit_of("wechat", "DP0002") is None

    booked = confirm_payment(client, books, "DP0002", now_ms=1)

    assert booked.is_new and books.deposit_of("wechat", "DP0002") == booked


def test_the_return_page_shows_the_voucher_the_ledger_issued_as_a_qr_code(client, provider_sim, endpoint, books):
    order_rod_deposit(client, endpoint)
    visitor_pays(provider_sim, "DP0001")
    provider_sim.wait_for_deliveries(1)

    with NO_PROXY.open(f"{provider_sim.base_url}/return/DP0001", timeout=10) as response:
        page = response.read().decode()

    voucher = books.deposit_of("wechat", "DP0001").voucher
    assert "<svg" in page and voucher in page and "¥200.00" in page


def test_the_return_page_before_the_payment_is_booked_says_the_voucher_is_on_its_way(client, provider_sim, endpoint):
    order_rod_deposit(client, endpoint)  # not paid: the ledger has no voucher yet

    with NO_PROXY.open(f"{provider_sim.base_url}/return/DP0001", timeout=10) as response:
        page = response.read().decode()

    assert "on its way" in page and "<svg" not in page and "http-equiv='refresh'" in page


# ------------------------------------------------------------------ refunds out
def test_a_refund_that_times_out_is_sent_again_with_its_number_and_made_once(client, provider_sim, endpoint, books):
    order, deposit = paid_order(client, provider_sim, endpoint, books)
    refund_no = books.owe_refund("wechat", order, deposit, ROD_DEPOSIT_FEN)
    # No refund notification here, so only the retried call can tell the books it was made.
    sender = RefundSender(providers={"wechat": client}, book=books, notify_url_of=lambda provider: "")
    provider_sim.faults.refund_timeouts = 1

    first = sender.run_once()
    provider_sim.release_held_answers()
    second = sender.run_once()

    assert first.waiting == [(refund_no, "PROVIDER_TIMEOUT")] and first.refunded == []
    assert second.refunded == [refund_no]
    made = provider_sim.refunds_of("DP0001")
    assert [(r.out_refund_no, r.amount_fen) for r in made] == [(refund_no, ROD_DEPOSIT_FEN)]  # one refund
    assert provider_sim.refund_calls == 2
    assert books.refunded == {refund_no: made[0].refund_id}
    assert sender.run_once().refunded == []  # nothing owed any more
    assert client.query_order("DP0001").trade_state == "REFUND"


def test_a_refund_that_fails_is_retried_and_then_made_once(client, provider_sim, endpoint, books):
    order, deposit = paid_order(client, provider_sim, endpoint, books)
    refund_no = books.owe_refund("wechat", order, deposit, 15_000)  # late fee kept: a partial refund
    sender = RefundSender(providers={"wechat": client}, book=books, notify_url_of=lambda provider: "")
    provider_sim.faults.refund_failures = 1

    assert sender.run_once().waiting == [(refund_no, "PROVIDER_UNAVAILABLE")]
    assert sender.run_once().refunded == [refund_no]
    assert [r.amount_fen for r in provider_sim.refunds_of("DP0001")] == [15_000]


def test_a_refund_refused_for_good_leaves_the_rounds_until_retried_by_hand(client, provider_sim, endpoint, books):
    order, deposit = paid_order(client, provider_sim, endpoint, books)
    # Someone refunded most of the payment from the provider's own console: too little is left.
    client.refund(out_trade_no="DP0001", out_refund_no="MANUAL1", amount_fen=ROD_DEPOSIT_FEN - 1000,
                  total_fen=ROD_DEPOSIT_FEN, notify_url="")
    refund_no = books.owe_refund("wechat", order, deposit, 15_000)
    sender = RefundSender(providers={"wechat": client}, book=books, notify_url_of=lambda provider: "")

    first = sender.run_once()
    calls = provider_sim.refund_calls
    later = [sender.run_once() for _ in range(3)]

    assert first.failed == [(refund_no, "NOT_ENOUGH")] and first.waiting == [] and first.refunded == []
    assert books.failed == {refund_no: "NOT_ENOUGH"}
    assert all(round_ == RefundRound() for round_ in later) and provider_sim.refund_calls == calls  # not sent again
    # The operator's retry (the books clear the mark) sends it once more, under the same number.
    del books.failed[refund_no]
    assert sender.run_once().failed == [(refund_no, "NOT_ENOUGH")] and provider_sim.refund_calls == calls + 1
    assert [r.out_refund_no for r in provider_sim.refunds_of("DP0001")] == ["MANUAL1"]  # nothing paid twice


def test_the_refund_notification_alone_marks_the_refund_done(client, provider_sim, endpoint, books):
    order, deposit = paid_order(client, provider_sim, endpoint, books)
    refund_no = books.owe_refund("wechat", order, deposit, ROD_DEPOSIT_FEN)
    sender = RefundSender(providers={"wechat": client}, book=books, notify_url_of=endpoint.notify_url)
    provider_sim.faults.refund_timeouts = 1

    assert sender.run_once().waiting == [(refund_no, "PROVIDER_TIMEOUT")]
    deliveries = provider_sim.wait_for_deliveries(2)  # the payment's, then the refund's

    assert (deliveries[-1].event_type, deliveries[-1].subject, deliveries[-1].http_status) == ("REFUND.SUCCESS", refund_no, 204)
    assert refund_no in books.refunded
    assert sender.run_once().refunded == []  # the next round owes nothing: no second call, no second refund
    assert provider_sim.refund_calls == 1


def test_partial_refunds_are_idempotent_on_their_numbers_and_never_exceed_the_payment(client, provider_sim, endpoint, books):
    paid_order(client, provider_sim, endpoint, books)

    first = client.refund(out_trade_no="DP0001", out_refund_no="RF1", amount_fen=5_000, total_fen=ROD_DEPOSIT_FEN, notify_url="")
    again = client.refund(out_trade_no="DP0001", out_refund_no="RF1", amount_fen=5_000, total_fen=ROD_DEPOSIT_FEN, notify_url="")
    client.refund(out_trade_no="DP0001", out_refund_no="RF2", amount_fen=15_000, total_fen=ROD_DEPOSIT_FEN, notify_url="")
    with pytest.raises(ProviderRefused, match="NOT_ENOUGH"):
        client.refund(out_trade_no="DP0001", out_refund_no="RF3", amount_fen=1, total_fen=ROD_DEPOSIT_FEN, notify_url="")

    with pytest.raises(ProviderRefused, match="PARAM_ERROR"):
        client.refund(out_trade_no="DP0001", out_refund_no="RF4", amount_fen=1, total_fen=1, notify_url="")

    assert again == first and first.is_refunded
    assert client.query_refund("RF1") == first
    assert sum(r.amount_fen for r in provider_sim.refunds_of("DP0001")) == ROD_DEPOSIT_FEN


# ------------------------------------------------------------------ the client's named errors
def test_the_client_names_each_way_a_call_can_fail(client, provider_sim, merchant_key):
    with pytest.raises(UnknownOrder):
        client.query_order("DP9999")

    provider_sim.faults.unavailable = True
    with pytest.raises(ProviderUnavailable, match="503 SYSTEM_ERROR"):
        client.query_order("DP9999")
    provider_sim.faults.unavailable = False

    provider_sim.faults.slow_s = CLIENT_TIMEOUT_S / 5  # slow but in time: answered
    with pytest.raises(UnknownOrder):
        client.query_order("DP9999")
    provider_sim.faults.slow_s = CLIENT_TIMEOUT_S * 4
    with pytest.raises(ProviderTimeout):
        client.query_order("DP9999")
    provider_sim.faults.slow_s = 0

    stranger = HttpPaymentProvider(name="wechat", base_url=provider_sim.base_url, merchant_id=provider_sim.merchant_id,
                                   merchant_key_id=MERCHANT_KEY_ID, merchant_key=SigningKey.generate(),
                                   provider_keys=provider_sim.public_keys)
    with pytest.raises(ProviderRefused, match="401 SIGN_ERROR"):
        stranger.query_order("DP9999")

    # An answer not signed by the provider's key (here: the ledger trusts another key) is refused.
    deceived = HttpPaymentProvider(name="wechat", base_url=provider_sim.base_url, merchant_id=provider_sim.merchant_id,
                                   merchant_key_id=MERCHANT_KEY_ID, merchant_key=merchant_key,
                                   provider_keys={provider_sim.key_id: SigningKey.generate().verify_key})
    with pytest.raises(BadSignature):
        deceived.create_order(out_trade_no="DP0003", item_type="rod", amount_fen=1, description="x",
                              notify_url="http://127.0.0.1:9/n", return_url="http://127.0.0.1:9/r")
