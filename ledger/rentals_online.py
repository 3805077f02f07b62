"""Online rental deposits: how a payment the provider notified enters the ledger, and how its
refund goes back to the provider's original payment (原路退回).

The provider's client (its signed notification verified first) calls ``record_online_deposit``;
it books through the same decision path as a desk deposit (a pure rule, Store.apply) and is
idempotent on the provider's order number, so a notification delivered twice makes one deposit.
Closing such a deposit books the release at once and leaves a refund request, paid by the
provider's client and marked with ``refund_done``; a failed refund is retried under the same
refund number, which the provider treats as one refund. One the provider refuses for good is marked
with ``refund_failed`` (an alert; no more rounds) until an operator retries it (``retry_refund``)
or pays it in cash at the desk (``refund_in_cash``, booked as a transaction of its own).

A paid order that cannot be a deposit (the wrong amount, an unknown item type) is not refused: the
money has left the payer. It is recorded as a stray payment, raised as an alert and refunded in full
to the payer (``StrayPayment`` tells the endpoint, which answers the provider 2xx).
"""

from dataclasses import dataclass

from protocol.envelope import Purpose
from protocol.messages import Channel
from protocol.reasons import Reason
from protocol.voucher import Voucher, make_voucher

from .errors import LedgerError, NotFound
from .keys import LedgerKeys
from .rules import rentals
from .rules.common import channel_account
from .rules.decision import Alert, Decision, Posting
from .store import NewTxn, Store

PROVIDERS = (Channel.WECHAT.value, Channel.ALIPAY.value)
# A payment the deposit rule declines for one of these is no deposit, and goes back to the payer.
STRAY_REASONS = (Reason.DEPOSIT_MISMATCH, Reason.UNKNOWN_ITEM_TYPE)


class StrayPayment(LedgerError):
    """A paid order that is no deposit: recorded, raised as an alert and refunded in full."""

    code = "PAYMENT_REFUNDED"


@dataclass(frozen=True, slots=True)
class OnlineDeposit:
    order: str
    voucher: str
    expires_ms: int
    is_new: bool  # False: a duplicate notification of a deposit already held


@dataclass(frozen=True, slots=True)
class RefundRequest:
    refund_no: str
    provider: str
    provider_order: str
    transaction_id: str
    amount_fen: int
    total_fen: int
    order: str


def record_online_deposit(store: Store, keys: LedgerKeys, *, park_id: str, provider: str, provider_order: str,
                          transaction_id: str, item_type: str, amount_fen: int, paid_ms: int,
                          now_ms: int) -> OnlineDeposit:
    """Hold a deposit the provider says was paid, in its own transaction. Raises StrayPayment for a
    payment of the wrong amount or item type (recorded and refunded in full, once however often it
    is notified), LedgerError UNKNOWN_PROVIDER for a provider the park does not have."""
    if provider not in PROVIDERS:
        raise LedgerError(f"no payment provider {provider!r} (one of {', '.join(PROVIDERS)})", code="UNKNOWN_PROVIDER")
    key = keys.for_purpose(Purpose.VOUCHER)
    stray = None
    with store.batch():
        if (held := online_deposit(store, keys, park_id=park_id, provider=provider,
                                   provider_order=provider_order)) is not None:
            return held
        store.voucher_key = key
        view = rentals.gather_online_deposit(store, park_id, item_type, now_ms)
        decision = rentals.decide_online_deposit(view, park=park_id, provider=provider, provider_order=provider_order,
                                                 transaction_id=transaction_id, amount_fen=amount_fen)
        if decision.reason in STRAY_REASONS:
            expected = view.rental.item_type.deposit_fen if view.rental.item_type is not None else None
            refund_no = store.add_stray_payment(park_id, provider, provider_order, transaction_id, item_type,
                                                amount_fen, decision.reason.value, paid_ms, now_ms)
            stray = (f"{provider} payment {provider_order} of {amount_fen} fen for {item_type!r} is no deposit "
                     f"({decision.reason.value}" + (f": the deposit is {expected} fen" if expected else "") +
                     f"); refunded in full as {refund_no or 'recorded before'}")
            if refund_no is not None:
                store.record_alert(now_ms, "STRAY_PAYMENT", stray)
        elif not decision.is_approved:
            raise LedgerError(f"online deposit {provider_order}: {decision.reason.value}", code=decision.reason.value)
        else:
            hold = decision.rental
            txn = NewTxn(park_id=park_id, kind=rentals.ONLINE_DEPOSIT_KIND, terminal_id=f"{park_id}:online",
                         seq=hold.order_no, operator=provider, station_id="", card_account=None, amount_fen=amount_fen,
                         ledger_time_ms=now_ms, terminal_time_ms=paid_ms, clock_uncertain=False)
            store.apply(decision, park_id=park_id, now_ms=now_ms, txn=txn)
    if stray is not None:  # raised once the batch has kept the record and its refund
        raise StrayPayment(stray)
    return OnlineDeposit(decision.answer.fields["order"], decision.answer.fields["voucher"], hold.expires_ms, True)


def online_deposit(store: Store, keys: LedgerKeys, *, park_id: str, provider: str,
                   provider_order: str) -> OnlineDeposit | None:
    """The deposit held for the provider's order ``provider_order`` (is_new False), with its voucher
    made again (same key and fields: the same token), or None when none is (reads only)."""
    held = store.online_deposit(park_id, f"online_{provider}", provider_order)
    if held is None:
        return None
    key = keys.for_purpose(Purpose.VOUCHER)
    token = make_voucher(Voucher(park_id, held.order, held.item_type, held.expires_ms, key.key_id), key.signing_key)
    return OnlineDeposit(held.order, token, held.expires_ms, is_new=False)


def pending_refunds(store: Store, park_id: str) -> list[RefundRequest]:
    """Refunds the provider still has to pay, oldest first."""
    return [RefundRequest(*row) for row in store.pending_refunds(park_id)]


def refund_done(store: Store, park_id: str, refund_no: str, provider_refund_id: str, now_ms: int) -> bool:
    """The provider paid ``refund_no`` back; False when it was marked before (a repeated notification)."""
    with store.batch():
        return store.refund_done(park_id, refund_no, provider_refund_id, now_ms)


# What a refund of no deposit order is for, by its number's prefix (ledger.topups_online makes RT).
REFUND_PURPOSES = {"RX": "stray payment", "RT": "card top-up"}


def refund_purpose(refund_no: str, order: str) -> str:
    """The deposit order a refund pays back, or what else it is for."""
    return order or REFUND_PURPOSES.get(refund_no[:2], "no deposit")


def owed_refund(store: Store, park_id: str, refund_no: str) -> RefundRequest | None:
    """A refund not paid yet (refused for good or not), None when paid or unknown."""
    row = store.owed_refund(park_id, refund_no)
    return None if row is None else RefundRequest(*row)


def refund_failed(store: Store, park_id: str, refund_no: str, code: str, detail: str, now_ms: int) -> bool:
    """The provider refused ``refund_no`` for good: it leaves the rounds and an operator is alerted
    with what they can do. False when it was paid or marked before."""
    with store.batch():
        request = store.owed_refund(park_id, refund_no)
        if request is None or not store.refund_failed(park_id, refund_no, code, now_ms):
            return False
        _, provider, provider_order, _, amount_fen, _, order = request
        store.record_alert(now_ms, "REFUND_FAILED", (
            f"refund {refund_no} of {amount_fen} fen for {refund_purpose(refund_no, order)} "
            f"({provider} {provider_order}) refused: {code} {detail[:200]}; "
            f"'fieldpos rental refund retry {refund_no}' sends it again, "
            f"'fieldpos rental refund cash {refund_no}' records it paid in cash at the desk"))
    return True


def retry_refund(store: Store, park_id: str, refund_no: str) -> None:
    """Send a failed refund to the provider again (same refund number) from the next round."""
    with store.batch():
        if not store.retry_refund(park_id, refund_no):
            raise NotFound(f"no failed refund {refund_no} (see 'fieldpos rental refund list')")


def _decide_cash_refund(provider: str, amount_fen: int, refund_no: str) -> Decision:
    """A refund the provider did not pay, paid in cash at the desk instead: the money the books sent
    back through the provider's channel is still there, and leaves the cash drawer."""
    return Decision(reason=Reason.OK, amount_fen=amount_fen,
                    postings=(Posting(channel_account(provider), "fen", -amount_fen),
                              Posting(channel_account(Channel.CASH.value), "fen", amount_fen)),
                    alerts=(Alert("REFUND_PAID_IN_CASH", f"refund {refund_no} of {amount_fen} fen paid in cash "
                                                         f"at the desk instead of through {provider}"),))


def refund_in_cash(store: Store, park_id: str, refund_no: str, *, operator: str, now_ms: int) -> int:
    """Pay a refund the provider refused in cash at the desk: booked (kind refund_cash) and marked
    paid; the online renter is told. Returns the transaction id. Only a failed refund: one still in
    the rounds may yet be paid by the provider, and then it would be paid twice."""
    with store.batch():
        row = next((r for r in store.refund_requests(park_id, open_only=True) if r[0] == refund_no), None)
        if row is None or row[6] is None:
            raise NotFound(f"no failed refund {refund_no} (only a refund the provider refused is paid at the desk; "
                           "see 'fieldpos rental refund list')")
        request = store.owed_refund(park_id, refund_no)
        terminal_id = f"{park_id}:refund"  # the ledger's own series: one seq per cash refund
        seq = store.db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM txn WHERE terminal_id=?", (terminal_id,)).fetchone()[0]
        decision = _decide_cash_refund(request[1], request[4], refund_no)
        txn = NewTxn(park_id=park_id, kind=rentals.REFUND_CASH_KIND, terminal_id=terminal_id, seq=seq,
                     operator=operator, station_id="", card_account=None, amount_fen=request[4],
                     ledger_time_ms=now_ms, terminal_time_ms=now_ms, clock_uncertain=False)
        txn_id = store.apply(decision, park_id=park_id, now_ms=now_ms, txn=txn)
        store.refund_done(park_id, refund_no, None, now_ms, cash_txn=txn_id)
    return txn_id


def forfeit_old_deposits(store: Store, park_id: str, *, older_than_days: int, now_ms: int) -> list[str]:
    """The park rule for holds never closed (an item never returned): every open deposit held for
    more than ``older_than_days`` is forfeited through the decision path; returns their orders."""
    if older_than_days < 1:
        raise LedgerError("a deposit is forfeited after one day at the earliest", code="BAD_FORFEIT_AGE")
    older_than_ms = older_than_days * 86_400_000
    done = []
    with store.batch():
        for order in store.open_deposits(park_id, older_than_ms=now_ms - older_than_ms):
            decision = rentals.decide_forfeit(order, now_ms, older_than_ms)
            txn = NewTxn(park_id=park_id, kind=rentals.FORFEIT_KIND, terminal_id=f"{park_id}:forfeit",
                         seq=order.order_no, operator="park-rule", station_id=order.station_id or "",
                         card_account=None, amount_fen=order.deposit_fen, ledger_time_ms=now_ms,
                         terminal_time_ms=now_ms, clock_uncertain=False)
            store.apply(decision, park_id=park_id, now_ms=now_ms, txn=txn)
            done.append(order.order)
    return done
