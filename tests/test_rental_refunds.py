"""Refunds to online payers the provider refuses for good (issue 13): marked failed and out of the
rounds with an alert an operator sees, then retried by hand or paid in cash at the desk (booked,
checked by ``ledger verify``, the renter told) — in the books and on the command line."""

import pytest

from host_sim.rig import card
from ledger.errors import LedgerError
from ledger.rentals_online import (StrayPayment, pending_refunds, record_online_deposit, refund_failed, refund_in_cash,
                                   retry_refund)
from ledger.verify import verify_books
from protocol.messages import RentalOut, RentalReturn
from tools.cli import main

from .helpers.rental_park import MINUTE, T0, rental_park

STAFF_CARD = card("S0001")


@pytest.fixture
def park(tmp_path):
    with rental_park(tmp_path) as ledger:
        yield ledger


def returned_online(park, provider_order="WX-0001"):
    """A rod paid online, handed out and back on time: 2000 fen owed back to the payment."""
    keys = park.rig.home.ledger_keys()
    deposit = record_online_deposit(park.store, keys, park_id="P1", provider="wechat", provider_order=provider_order,
                                    transaction_id="4200001", item_type="rod", amount_fen=3000, paid_ms=T0, now_ms=T0)
    assert park.request("T-RENT-1", RentalOut, card_ref=STAFF_CARD, voucher=deposit.voucher,
                        item_label="ROD-001").is_approved
    park.now_ms = T0 + 30 * MINUTE
    assert park.request("T-RENT-1", RentalReturn, card_ref=STAFF_CARD, item_label="ROD-001", condition="intact",
                        damage="").refunded_fen == 2000
    return deposit


def alerts(park, kind):
    return [row[0] for row in park.store.db.execute("SELECT detail FROM alert WHERE kind = ? ORDER BY alert_id", (kind,))]


def test_a_refund_refused_for_good_leaves_the_rounds_with_an_alert_that_says_what_to_do(park):
    deposit = returned_online(park)
    refund_no = "RF" + deposit.order
    assert [r.refund_no for r in pending_refunds(park.store, "P1")] == [refund_no]

    assert refund_failed(park.store, "P1", refund_no, "NOT_ENOUGH", "1000 fen left to refund on WX-0001", T0)
    assert not refund_failed(park.store, "P1", refund_no, "NOT_ENOUGH", "again", T0)  # one alert, not one a round

    assert pending_refunds(park.store, "P1") == []
    (alert,) = alerts(park, "REFUND_FAILED")
    assert alert == (f"refund {refund_no} of 2000 fen for {deposit.order} (wechat WX-0001) refused: NOT_ENOUGH 1000 fen "
                     f"left to refund on WX-0001; 'fieldpos rental refund retry {refund_no}' sends it again, "
                     f"'fieldpos rental refund cash {refund_no}' records it paid in cash at the desk")
    # The deposits report keeps it in sight after the alert scrolls away: failed ones first.
    from ledger.reports.catalog import make_scope, run_report

    returned_online(park, "WX-0002")  # a second refund, still in the rounds
    owed = run_report(park.store.db, "deposits", make_scope(park.store.db, now_ms=park.now_ms)).tables[3]
    assert [row[:5] for row in owed.rows] == [
        (refund_no, deposit.order, "wechat WX-0001", 2000, "FAILED 失败 NOT_ENOUGH: retry or pay in cash 重试或现金退"),
        (owed.rows[1][0], owed.rows[1][1], "wechat WX-0002", 2000, "owed 退款中")]
    retry_refund(park.store, "P1", refund_no)
    assert refund_no in [r.refund_no for r in pending_refunds(park.store, "P1")]  # the same number again
    with pytest.raises(LedgerError, match="no failed refund"):
        retry_refund(park.store, "P1", refund_no)  # not failed (any more)


def test_a_failed_refund_paid_in_cash_at_the_desk_is_booked_once_and_the_books_verify(park):
    deposit = returned_online(park)
    refund_no = "RF" + deposit.order
    cash_before, wechat_before = park.balance("channel:cash"), park.balance("channel:wechat")
    with pytest.raises(LedgerError, match="only a refund the provider refused"):
        refund_in_cash(park.store, "P1", refund_no, operator="S0001", now_ms=T0)  # still in the rounds: it may yet pay
    refund_failed(park.store, "P1", refund_no, "ABNORMAL", "the payer's card is closed", T0)

    txn_id = refund_in_cash(park.store, "P1", refund_no, operator="S0001", now_ms=T0 + 60 * MINUTE)

    assert park.balance("channel:cash") - cash_before == 2000        # out of the drawer
    assert park.balance("channel:wechat") - wechat_before == -2000   # still with the provider
    assert park.store.db.execute("SELECT kind, operator, amount_fen FROM txn WHERE txn_id = ?", (txn_id,)).fetchone() == (
        "refund_cash", "S0001", 2000)
    assert pending_refunds(park.store, "P1") == []
    with pytest.raises(LedgerError):
        refund_in_cash(park.store, "P1", refund_no, operator="S0001", now_ms=T0)  # paid: never twice
    (told,) = park.store.db.execute("SELECT address, body FROM renter_notification WHERE event = 'refunded'").fetchall()
    assert told[0] == "wechat:WX-0001" and '"method": "cash"' in told[1]
    assert verify_books(park.store).problems == ()
    # The books check sees a cash refund that no refund request names.
    park.store.db.execute("UPDATE refund_request SET cash_txn = NULL")
    assert any("pays a refund in cash" in problem for problem in verify_books(park.store).problems)


def test_a_payment_of_an_unknown_item_type_is_refunded_in_full_and_alerted_once(park):
    keys = park.rig.home.ledger_keys()
    paid = dict(park_id="P1", provider="alipay", provider_order="AP-9", transaction_id="2026", item_type="kayak",
                amount_fen=5000, paid_ms=T0, now_ms=T0)
    for _ in range(2):  # notified twice
        with pytest.raises(StrayPayment, match="UNKNOWN_ITEM_TYPE"):
            record_online_deposit(park.store, keys, **paid)
    (refund,) = pending_refunds(park.store, "P1")
    assert (refund.refund_no, refund.provider, refund.provider_order, refund.amount_fen, refund.total_fen,
            refund.order) == ("RX1", "alipay", "AP-9", 5000, 5000, "")
    assert len(alerts(park, "STRAY_PAYMENT")) == 1
    assert park.pool_fen() == 0 and verify_books(park.store).problems == ()


def test_the_refund_commands_list_retry_and_pay_a_failed_refund(park, capsys):
    deposit = returned_online(park)
    refund_no = "RF" + deposit.order
    refund_failed(park.store, "P1", refund_no, "NOT_ENOUGH", "", T0)
    cli = lambda *rest: main(["--home", str(park.rig.home.home), *rest])  # noqa: E731

    assert cli("rental", "refund", "list") == 0
    assert capsys.readouterr().out == (f"{refund_no}  {deposit.order}  wechat WX-0001  20.00  FAILED NOT_ENOUGH: retry, "
                                       "or pay it in cash at the desk\n")
    assert cli("rental", "refund", "retry", refund_no) == 0
    assert "goes to the provider again" in capsys.readouterr().out
    assert cli("rental", "refund", "cash", refund_no, "--operator", "S0001") != 0  # back in the rounds
    assert capsys.readouterr().err.startswith(f"fieldpos: [NOT_FOUND] no failed refund {refund_no}")
    refund_failed(park.store, "P1", refund_no, "NOT_ENOUGH", "", T0)
    assert cli("rental", "refund", "cash", refund_no, "--operator", "S0001") == 0
    assert f"refund {refund_no}: 20.00 paid in cash at the desk by S0001" in capsys.readouterr().out
    assert cli("rental", "refund", "list", "--all") == 0
    assert capsys.readouterr().out == f"{refund_no}  {deposit.order}  wechat WX-0001  20.00  paid in cash at the desk\n"
    with pytest.raises(SystemExit) as bad:
        cli("rental", "refund", "retry", "D12")  # not a refund number: said in one line
    assert bad.value.code == 2
    assert "a refund number is RF<order>, RX<number> or RT<number>, e.g. RFD12, not 'D12'" in capsys.readouterr().err
    # A refund of no deposit order says what it is for: a card top-up paid back (ledger.topups_online).
    park.store.db.execute("INSERT INTO refund_request (park_id, refund_no, order_no, provider, provider_order, "
                          "transaction_id, amount_fen, total_fen, state, created_ms) VALUES "
                          "('P1', 'RT7', 0, 'wechat', 'TU-7', '4207', 5000, 5000, 'pending', ?)", (T0,))
    assert cli("rental", "refund", "list") == 0
    assert capsys.readouterr().out == "RT7  card top-up  wechat TU-7  50.00  owed, sent to wechat every round\n"


def test_the_renter_relay_gets_the_payment_address_and_the_text():
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from ledger.notify import PaymentRelaySender

    got = []

    class Relay(BaseHTTPRequestHandler):
        def do_POST(self):
            got.append((self.headers["X-Api-Key"], json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Relay)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        body = {"kind": "renter_refund", "order": "D7", "refunded_fen": 2000, "method": "cash", "time_ms": T0}
        PaymentRelaySender(f"http://127.0.0.1:{server.server_address[1]}/send", "k1").send("wechat:WX-0001", body)
    finally:
        server.shutdown()
        server.server_close()
    assert got == [("k1", {"payment": "wechat:WX-0001", "text": "押金已退 Deposit D7: 20.00 refunded 现金 in cash at the desk",
                           "data": body})]


def test_refunds_owed_before_the_upgrade_stay_owed_and_can_fail_after_it(tmp_path):
    import sqlite3

    from ledger.schema import MIGRATIONS
    from ledger.store import Store

    path = tmp_path / "old.db"
    before = next(number for number, script in enumerate(MIGRATIONS) if "CREATE TABLE stray_payment" in script)
    old = sqlite3.connect(path, isolation_level=None)
    for number, script in enumerate(MIGRATIONS[:before], start=1):
        old.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
    old.execute("INSERT INTO park (park_id, name) VALUES ('P1', 'old park')")
    old.execute("INSERT INTO refund_request VALUES ('P1', 'RFD3', 3, 'wechat', 'WX-3', '4203', 2000, 3000, 'pending', "
                "NULL, ?, NULL)", (T0,))
    old.close()
    store = Store(path)
    try:
        assert [r.refund_no for r in pending_refunds(store, "P1")] == ["RFD3"]
        assert refund_failed(store, "P1", "RFD3", "NOT_ENOUGH", "", T0 + 1)
        assert pending_refunds(store, "P1") == []
        assert store.refund_requests("P1", open_only=True)[0][6] == "NOT_ENOUGH"
    finally:
        store.close()
