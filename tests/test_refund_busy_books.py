"""A refund the provider made while the books were too busy to record it stays owed under its own
number: the round says STORE_BUSY, the next round asks again with the same number and records it once
(the provider, idempotent on out_refund_no, pays once)."""

from types import SimpleNamespace

from ledger.errors import TransientStoreError
from ledger.payments.provider import RefundStatus
from ledger.payments.refunds import RefundSender


class Provider:
    """Idempotent on out_refund_no, as WeChat Pay and Alipay are."""

    def __init__(self):
        self.made = {}

    def refund(self, *, out_trade_no, out_refund_no, amount_fen, total_fen, notify_url):
        self.made.setdefault(out_refund_no, amount_fen)
        return RefundStatus(out_refund_no=out_refund_no, refund_id=f"R-{out_refund_no}", out_trade_no=out_trade_no,
                            status="SUCCESS", amount_fen=amount_fen, total_fen=total_fen)


class BusyOnceBook:
    def __init__(self):
        self.owed = [SimpleNamespace(refund_no="RF7", order=7, provider="wechat", provider_order="W7",
                                     amount_fen=3000, total_fen=5000)]
        self.busy = 1
        self.done = []

    def pending_refunds(self):
        return list(self.owed)

    def refund_done(self, refund_no, provider_refund_id, *, now_ms):
        if self.busy:
            self.busy -= 1
            raise TransientStoreError("store busy: database is locked")
        self.done.append((refund_no, provider_refund_id))
        self.owed = [owed for owed in self.owed if owed.refund_no != refund_no]

    def refund_failed(self, *args, **kwargs):
        raise AssertionError("a busy store is no refusal")


def test_a_refund_made_while_the_books_were_busy_is_recorded_once_by_the_next_round():
    provider, book = Provider(), BusyOnceBook()
    sender = RefundSender(providers={"wechat": provider}, book=book, notify_url_of=lambda name: "http://127.0.0.1/n",
                          clock_ms=lambda: 1)
    first = sender.run_once()
    assert first.refunded == [] and first.waiting == [("RF7", "STORE_BUSY")] and first.failed == []
    assert book.done == []
    second = sender.run_once()
    assert second.refunded == ["RF7"] and book.done == [("RF7", "R-RF7")]
    assert provider.made == {"RF7": 3000}
    assert sender.run_once().refunded == []
