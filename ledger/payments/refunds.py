"""Refunds back to the online payment a deposit came from (原路退回).

The books list the refunds they owe (a deposit released to an online payer adds one, numbered
"RF" + order; a stray payment "RX" + number). Each round sends every one of them to its provider
with its OWN refund number — never a new one — because the provider is idempotent on
out_refund_no: after a timeout the refund may already have been made, and asking again with the
same number returns that refund instead of paying twice. The books mark a refund done only when the
provider says SUCCESS (in the refund's answer, a later round's answer, or the REFUND.SUCCESS
notification, whichever comes first).

A refusal that no retry changes — a 4xx such as NOT_ENOUGH (the order has less left to refund) or
an unknown order, or a refund the provider reports ABNORMAL or CLOSED — marks the refund failed
(an alert with what to do) and takes it out of the rounds, so it is not sent every 15 s for ever;
an operator retries it by hand or pays it in cash at the desk (``fieldpos rental refund``).
Timeouts, 5xx and answers that do not verify stay in the rounds: the outcome is unknown, and the
same number is safe to send again, and so is a refund the provider made while the books were too busy
to record it (STORE_BUSY: the next round's SUCCESS records it). (An error answer is not signed, so a forged 4xx can at worst
mark a refund failed and alert an operator; it can never make the books believe one was paid.)
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
import logging
import threading
import time

from ..errors import TransientStoreError
from .deposit_book import DepositBook
from .errors import PaymentError, ProviderRefused, UnknownOrder
from .provider import PaymentProvider

log = logging.getLogger("fieldpos.ledger.payments")

# A refund the provider reports in one of these states will not be paid without an operator.
FINAL_REFUND_STATES = ("ABNORMAL", "CLOSED")
# Between rounds. WeChat Pay's own notification retries start at 15 s; a refund is not urgent to
# the second, and a round with nothing owed costs one indexed read.
ROUND_INTERVAL_S = 15.0


@dataclass
class RefundRound:
    """What one round did: refund numbers confirmed, and those still owed with the reason."""

    refunded: list[str] = field(default_factory=list)
    waiting: list[tuple[str, str]] = field(default_factory=list)  # (refund_no, error code or status)
    failed: list[tuple[str, str]] = field(default_factory=list)   # (refund_no, the provider's code): left out now


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
            except (ProviderRefused, UnknownOrder) as error:
                code = getattr(error, "provider_code", "") or error.code
                self._fail(done, request, code, str(error))
                continue
            except PaymentError as error:
                # Timeout, unavailable, an answer that does not verify: the same number goes again next round.
                log.warning("refund %s for %s: %s %s", request.refund_no, request.order, error.code, error)
                done.waiting.append((request.refund_no, error.code))
                continue
            try:
                if status.is_refunded:
                    self.book.refund_done(request.refund_no, status.refund_id, now_ms=self.clock_ms())
                    done.refunded.append(request.refund_no)
                elif status.status in FINAL_REFUND_STATES:
                    self._fail(done, request, status.status, f"the provider reports refund {status.refund_id} {status.status}")
                else:
                    done.waiting.append((request.refund_no, status.status))
            except TransientStoreError as error:
                # The books were busy: nothing recorded, the refund stays owed under its number.
                log.warning("refund %s for %s: %s %s", request.refund_no, request.order, error.code, error)
                done.waiting.append((request.refund_no, error.code))
        return done

    def _fail(self, done: RefundRound, request, code: str, detail: str) -> None:
        log.error("refund %s for %s refused for good: %s %s", request.refund_no, request.order or "a stray payment",
                  code, detail)
        self.book.refund_failed(request.refund_no, code, detail, now_ms=self.clock_ms())
        done.failed.append((request.refund_no, code))

    def run_until(self, stop: threading.Event, interval_s: float = ROUND_INTERVAL_S) -> None:
        """Rounds until ``stop`` is set (the ledger's refund thread)."""
        while not stop.is_set():
            try:
                self.run_once()
            except Exception:  # the books busy, a bug: log it and keep the thread alive for the next round
                log.exception("refund round failed")
            stop.wait(interval_s)
