"""Refunds back to the online payment a deposit came from (原路退回).

The books list the refunds they owe (a deposit released to an online payer adds one, numbered
"RF" + order). Each round sends every one of them to its provider with its OWN refund number —
never a new one — because the provider is idempotent on out_refund_no: after a timeout the refund
may already have been made, and asking again with the same number returns that refund instead of
paying twice. The books mark a refund done only when the provider says SUCCESS (in the refund's
answer, a later round's answer, or the REFUND.SUCCESS notification, whichever comes first).
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
import logging
import threading
import time

from .deposit_book import DepositBook
from .errors import PaymentError
from .provider import PaymentProvider

log = logging.getLogger("fieldpos.ledger.payments")

# Between rounds. WeChat Pay's own notification retries start at 15 s; a refund is not urgent to
# the second, and a round with nothing owed costs one indexed read.
ROUND_INTERVAL_S = 15.0


@dataclass
class RefundRound:
    """What one round did: refund numbers confirmed, and those still owed with the reason."""

    refunded: list[str] = field(default_factory=list)
    waiting: list[tuple[str, str]] = field(default_factory=list)  # (refund_no, error code or status)


class RefundSender:
    def __init__(self, *, providers: Mapping[str, PaymentProvider], book: DepositBook,
                 notify_url_of: Callable[[str], str], clock_ms: Callable[[], int] | None = None):
        self.providers = dict(providers)
        self.book = book
        self.notify_url_of = notify_url_of
        self.clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)

    def run_once(self) -> RefundRound:
        done = RefundRound()
        for request in self.book.pending_refunds():
            provider = self.providers.get(request.provider)
            if provider is None:
                done.waiting.append((request.refund_no, "NO_PROVIDER"))
                continue
            try:
                status = provider.refund(out_trade_no=request.provider_order, out_refund_no=request.refund_no,
                                         amount_fen=request.amount_fen, total_fen=request.total_fen,
                                         notify_url=self.notify_url_of(request.provider))
            except PaymentError as error:
                # Timeout, unavailable, refused: the same number goes again next round. A refusal
                # (e.g. NOT_ENOUGH) will not heal by itself, so it is logged as an error to look at.
                log.log(logging.WARNING if error.code in ("PROVIDER_TIMEOUT", "PROVIDER_UNAVAILABLE") else logging.ERROR,
                        "refund %s for %s: %s %s", request.refund_no, request.order, error.code, error)
                done.waiting.append((request.refund_no, error.code))
                continue
            if status.is_refunded:
                self.book.refund_done(request.refund_no, status.refund_id, now_ms=self.clock_ms())
                done.refunded.append(request.refund_no)
            else:
                done.waiting.append((request.refund_no, status.status))
        return done

    def run_until(self, stop: threading.Event, interval_s: float = ROUND_INTERVAL_S) -> None:
        """Rounds until ``stop`` is set (the ledger's refund thread)."""
        while not stop.is_set():
            try:
                self.run_once()
            except Exception:  # the books busy, a bug: log it and keep the thread alive for the next round
                log.exception("refund round failed")
            stop.wait(interval_s)
