"""Online rental deposits: how a payment the provider notified enters the ledger, and how its
refund goes back to the provider's original payment (原路退回).

The provider's client (its signed notification verified first) calls ``record_online_deposit``;
it books through the same decision path as a desk deposit (a pure rule, Store.apply) and is
idempotent on the provider's order number, so a notification delivered twice makes one deposit.
Closing such a deposit books the release at once and leaves a refund request, paid by the
provider's client and marked with ``refund_done``; a failed refund is retried under the same
refund number, which the provider treats as one refund.
"""

from dataclasses import dataclass

from protocol.envelope import Purpose
from protocol.messages import Channel
from protocol.voucher import Voucher, make_voucher

from .errors import LedgerError
from .keys import LedgerKeys
from .rules import rentals
from .store import NewTxn, Store

PROVIDERS = (Channel.WECHAT.value, Channel.ALIPAY.value)


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
    """Hold a deposit the provider says was paid, in its own transaction. Raises LedgerError
    (UNKNOWN_PROVIDER, UNKNOWN_ITEM_TYPE, DEPOSIT_MISMATCH) for one it cannot hold."""
    if provider not in PROVIDERS:
        raise LedgerError(f"no payment provider {provider!r} (one of {', '.join(PROVIDERS)})", code="UNKNOWN_PROVIDER")
    key = keys.for_purpose(Purpose.VOUCHER)
    with store.batch():
        if (held := online_deposit(store, keys, park_id=park_id, provider=provider,
                                   provider_order=provider_order)) is not None:
            return held
        store.voucher_key = key
        view = rentals.gather_online_deposit(store, park_id, item_type, now_ms)
        decision = rentals.decide_online_deposit(view, park=park_id, provider=provider, provider_order=provider_order,
                                                 transaction_id=transaction_id, amount_fen=amount_fen)
        if not decision.is_approved:
            raise LedgerError(f"online deposit {provider_order}: {decision.reason.value}", code=decision.reason.value)
        hold = decision.rental
        txn = NewTxn(park_id=park_id, kind=rentals.ONLINE_DEPOSIT_KIND, terminal_id=f"{park_id}:online",
                     seq=hold.order_no, operator=provider, station_id="", card_account=None, amount_fen=amount_fen,
                     ledger_time_ms=now_ms, terminal_time_ms=paid_ms, clock_uncertain=False)
        store.apply(decision, park_id=park_id, now_ms=now_ms, txn=txn)
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
