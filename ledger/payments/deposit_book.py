"""The one boundary between online payments and the books.

Everything the payment code asks of the books goes through a DepositBook; LedgerDepositBook is the
real one, booking through ``ledger.rentals_online`` (the rental rules own deposits, vouchers and
the refund list; this package only carries money in and out). The shapes passed back are that
module's ``OnlineDeposit`` (order, voucher, expires_ms, is_new) and ``RefundRequest`` (refund_no,
provider, provider_order, transaction_id, amount_fen, total_fen, order).
"""

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from .. import rentals_online, topups_online
from ..keys import LedgerKeys
from ..store_location import open_store
from .provider import OrderStatus


class DepositBook(Protocol):
    def record_payment(self, provider: str, order: OrderStatus, *, now_ms: int) -> Any:
        """Book a paid online order as a deposit, once: the same (provider, out_trade_no) again
        returns the same deposit with is_new False."""

    def deposit_of(self, provider: str, out_trade_no: str) -> Any | None:
        """The deposit (and voucher) booked for a paid order, None before its payment is booked."""

    def pending_refunds(self) -> list:
        """Refunds the books owe online payers and the provider has not yet confirmed."""

    def refund_done(self, refund_no: str, provider_refund_id: str, *, now_ms: int) -> None:
        """The provider confirmed a refund; a second confirmation changes nothing."""

    def refund_failed(self, refund_no: str, code: str, detail: str, *, now_ms: int) -> None:
        """The provider refused a refund for good: out of the rounds, an alert for an operator."""

    def owed_refund(self, refund_no: str) -> Any | None:
        """A refund not yet paid (refused for good or not), None when paid or unknown."""


class LedgerDepositBook:
    """The books of one park in a SQLite file. A Store is opened per call: the endpoint answers on
    several threads and the ledger's own loop holds its own connection; SQLite's write lock
    (BEGIN IMMEDIATE in Store.batch) puts the bookings in a line."""

    def __init__(self, db_path: Path, keys: LedgerKeys, park_id: str):
        self.db_path = db_path  # a path or a store URL (ledger.store_location.open_store)
        self.keys = keys
        self.park_id = park_id

    @contextmanager
    def _store(self):
        store = open_store(self.db_path)
        try:
            yield store
        finally:
            store.close()

    def record_payment(self, provider: str, order: OrderStatus, *, now_ms: int):
        if topups_online.card_of_attach(order.item_type) is not None:  # a member's online top-up (issue 17)
            with self._store() as store:
                return topups_online.record_online_top_up(
                    store, park_id=self.park_id, provider=provider, provider_order=order.out_trade_no,
                    attach=order.item_type, transaction_id=order.transaction_id, amount_fen=order.amount_fen,
                    paid_ms=order.paid_ms, now_ms=now_ms)
        with self._store() as store:  # record_online_deposit opens its own write transaction
            return rentals_online.record_online_deposit(
                store, self.keys, park_id=self.park_id, provider=provider, provider_order=order.out_trade_no,
                transaction_id=order.transaction_id, item_type=order.item_type, amount_fen=order.amount_fen,
                paid_ms=order.paid_ms, now_ms=now_ms)

    def deposit_of(self, provider: str, out_trade_no: str):
        with self._store() as store:
            return rentals_online.online_deposit(store, self.keys, park_id=self.park_id, provider=provider,
                                                 provider_order=out_trade_no)

    def pending_refunds(self) -> list:
        with self._store() as store:
            return rentals_online.pending_refunds(store, self.park_id)

    def refund_done(self, refund_no: str, provider_refund_id: str, *, now_ms: int) -> None:
        with self._store() as store:
            rentals_online.refund_done(store, self.park_id, refund_no, provider_refund_id, now_ms)

    def refund_failed(self, refund_no: str, code: str, detail: str, *, now_ms: int) -> None:
        with self._store() as store:
            rentals_online.refund_failed(store, self.park_id, refund_no, code, detail, now_ms)

    def owed_refund(self, refund_no: str):
        with self._store() as store:
            return rentals_online.owed_refund(store, self.park_id, refund_no)
