"""Members top up online (issue 17): through the payment provider, with the park's bonus rules and
campaigns, idempotent on the provider's order number.

The member portal makes the order: ``create_top_up_order`` records it here (card, amount) and the
portal asks the provider for it, naming the card in the order's ``attach`` (TOPUP.<card>.<issuance>).
The provider's signed notification reaches the ledger's payment endpoint, whose DepositBook hands a
top-up's order to ``record_online_top_up``: it books through the desk's own top-up rule (the card
checks, the card type's limits, the bonus tiers, a running campaign) with the provider's channel,
once — the same order notified again finds it booked. A notification for an order the park never
made, or for another amount or card than it made, books nothing: it is refunded in full to the payer
(a stray payment, as ledger.rentals_online keeps them) and raised as an alert.

The provider's signed word stands in for the card at a till, so the e-card QR is not asked for
(``rules.decide_paid_online``). A paid order the top-up rule declines (the card was reported lost,
the balance would pass the card type's cap) is recorded as refused, raised, and refunded in full
through the provider the same way. ``refund_online_top_up`` pays money of a booked top-up back to
the payer's original payment (原路退回), with the share of its bonus.
"""

from dataclasses import dataclass
import re

from protocol.messages import CardRef, TopUp
from protocol.reasons import Reason

from . import rules
from .errors import LedgerError
from .rentals_online import StrayPayment
from .rules.common import PROMO_ACCOUNT, channel_account, nonzero
from .rules.decision import Decision, Posting
from .store import NewTxn, Store

TOPUP_KIND = "top_up_online"  # the transaction's kind: booked by the ledger on the provider's word
ATTACH_PREFIX = "TOPUP."
_ATTACH = re.compile(r"TOPUP\.([0-9A-Z]{4,20})\.([0-9]{1,7})")
PROVIDERS = ("wechat", "alipay")
# The provider's order numbers the portal makes: "TU", the park's top-up number, a random tail (so a
# number cannot be guessed from the last one). Protocol ids: at most 32 characters.
ORDER_PREFIX = "TU"


@dataclass(frozen=True, slots=True)
class OnlineTopUp:
    provider_order: str
    card_no: str
    issuance: int
    amount_fen: int
    state: str          # created, booked, refused
    txn_id: int | None
    reason: str | None  # why a paid order was refused (the top-up rule's reason)
    is_new: bool = False


def attach_for(card_no: str, issuance: int) -> str:
    """What the order's ``attach`` carries: the card the money is for."""
    return f"{ATTACH_PREFIX}{card_no}.{issuance}"


def card_of_attach(attach: str) -> tuple[str, int] | None:
    """(card number, issuance) of a top-up's ``attach``; None for any other order (a rental deposit)."""
    match = _ATTACH.fullmatch(attach)
    return None if match is None else (match.group(1), int(match.group(2)))


def _row(store: Store, park_id: str, provider: str, provider_order: str):
    return store.db.execute(
        """SELECT provider_order, card_no, issuance, amount_fen, state, txn_id, reason, topup_no FROM online_topup
           WHERE park_id=? AND provider=? AND provider_order=?""", (park_id, provider, provider_order)).fetchone()


def top_up_order(store: Store, park_id: str, provider: str, provider_order: str) -> OnlineTopUp | None:
    row = _row(store, park_id, provider, provider_order)
    return None if row is None else OnlineTopUp(*row[:7])


def create_top_up_order(store: Store, *, park_id: str, provider: str, provider_order: str, card_no: str,
                        issuance: int, amount_fen: int, now_ms: int) -> OnlineTopUp:
    """Record the order the portal is about to ask the provider for (before it asks, so a payment
    can never arrive for an order the ledger does not know). Raises LedgerError: UNKNOWN_PROVIDER,
    UNKNOWN_CARD (not an active member card), TOP_UP_OUT_OF_RANGE (outside the card type's range)."""
    if provider not in PROVIDERS:
        raise LedgerError(f"no payment provider {provider!r} (one of {', '.join(PROVIDERS)})", code="UNKNOWN_PROVIDER")
    with store.batch():
        card = store.card(park_id, card_no, issuance)
        if card is None or card.kind != "member" or card.state != "active":
            raise LedgerError(f"{card_no}/{issuance} is not an active member card", code="UNKNOWN_CARD")
        limits = store.card_limits(park_id, card.kind)
        if not limits.min_topup_fen <= amount_fen <= limits.max_topup_fen:
            raise LedgerError(f"a top-up is {limits.min_topup_fen}..{limits.max_topup_fen} fen",
                              code="TOP_UP_OUT_OF_RANGE")
        number = store.db.execute("SELECT COALESCE(MAX(topup_no), 0) + 1 FROM online_topup WHERE park_id=?",
                                  (park_id,)).fetchone()[0]
        store.db.execute(
            """INSERT INTO online_topup (park_id, topup_no, provider, provider_order, card_no, issuance, amount_fen,
                                         state, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, 'created', ?)""",
            (park_id, number, provider, provider_order, card_no, issuance, amount_fen, now_ms))
    return OnlineTopUp(provider_order, card_no, issuance, amount_fen, "created", None, None, is_new=True)


def record_online_top_up(store: Store, *, park_id: str, provider: str, provider_order: str, attach: str,
                         transaction_id: str, amount_fen: int, paid_ms: int, now_ms: int) -> OnlineTopUp | None:
    """Book the top-up the provider says was paid, once (is_new False when it was booked, or refused,
    before). A paid order the park did not make as notified (unknown, another card or amount) books
    nothing: the money has left the payer, so it is recorded as a stray payment, raised as an alert
    and refunded in full (StrayPayment the first time, None when notified again). A paid order the
    top-up rule declines is refused and refunded in full the same way."""
    stray = None
    with store.batch():
        row = _row(store, park_id, provider, provider_order)
        card = card_of_attach(attach)
        if row is None or card is None or (row[1], row[2], row[3]) != (*card, amount_fen):
            stray = (f"{provider} order {provider_order} ({attach}, {amount_fen} fen) is not a top-up the park made"
                     if row is None else
                     f"{provider} order {provider_order} notified as {attach}, {amount_fen} fen; made for "
                     f"{row[1]}/{row[2]}, {row[3]} fen")
            refund_no = store.add_stray_payment(park_id, provider, provider_order, transaction_id, attach, amount_fen,
                                                "TOPUP_ORDER_MISMATCH", paid_ms, now_ms)
            if refund_no is None:
                return None  # recorded, alerted and owed back when it was first notified
            store.record_alert(now_ms, "ONLINE_TOPUP_MISMATCH", f"{stray}: refunded in full as {refund_no}")
        elif row[4] != "created":
            return OnlineTopUp(*row[:7], is_new=False)
        else:
            return _book(store, row, park_id=park_id, provider=provider, provider_order=provider_order,
                         transaction_id=transaction_id, attach=attach, amount_fen=amount_fen, paid_ms=paid_ms,
                         now_ms=now_ms)
    raise StrayPayment(stray)  # once the batch has kept the record and its refund


def _book(store: Store, row, *, park_id, provider, provider_order, transaction_id, attach, amount_fen, paid_ms,
          now_ms) -> OnlineTopUp:
    topup_no, card_no, issuance = row[7], row[1], row[2]
    held = store.card(park_id, card_no, issuance)  # None: the rule declines UNKNOWN_CARD (a UID is still needed)
    request = TopUp(park=park_id, terminal="online", seq=topup_no, terminal_time_ms=paid_ms, clock_uncertain=False,
                    operator=provider, config_version=0,
                    card=CardRef(no=card_no, issuance=issuance, uid=held.uid if held else "00000000"),
                    amount_fen=amount_fen, channel=provider, payment_ref=transaction_id[:64])
    decision = rules.decide_paid_online(request, rules.gather(request, store, None, now_ms, None))
    if not decision.is_approved:
        refund_no = store.add_stray_payment(park_id, provider, provider_order, transaction_id, attach, amount_fen,
                                            decision.reason.value, paid_ms, now_ms)
        store.db.execute("UPDATE online_topup SET state='refused', reason=?, transaction_id=?, booked_ms=? "
                         "WHERE park_id=? AND provider=? AND provider_order=?",
                         (decision.reason.value, transaction_id, now_ms, park_id, provider, provider_order))
        store.record_alert(now_ms, "ONLINE_TOPUP_REFUSED",
                           f"{provider} order {provider_order}: {amount_fen} fen paid for {card_no}/{issuance}, "
                           f"refused {decision.reason.value}: refunded in full as {refund_no}")
        return OnlineTopUp(provider_order, card_no, issuance, amount_fen, "refused", None, decision.reason.value,
                           is_new=True)
    txn = NewTxn(park_id=park_id, kind=TOPUP_KIND, terminal_id=f"{park_id}:online", seq=topup_no,
                 operator=provider, station_id="", card_account=request.card.account, amount_fen=amount_fen,
                 ledger_time_ms=now_ms, terminal_time_ms=paid_ms, clock_uncertain=False)
    txn_id = store.apply(decision, park_id=park_id, now_ms=now_ms, txn=txn, card=request.card)
    store.db.execute("UPDATE online_topup SET state='booked', txn_id=?, transaction_id=?, booked_ms=? "
                     "WHERE park_id=? AND provider=? AND provider_order=?",
                     (txn_id, transaction_id, now_ms, park_id, provider, provider_order))
    return OnlineTopUp(provider_order, card_no, issuance, amount_fen, "booked", txn_id, None, is_new=True)


REFUND_KIND = "top_up_online_refund"  # money of an online top-up paid back to the provider's payment
REFUND_PREFIX = "RT"


def refund_online_top_up(store: Store, *, park_id: str, provider: str, provider_order: str, amount_fen: int,
                         now_ms: int) -> str:
    """Pay back (part of) an online top-up the way it came: the card gives the money back to the
    provider's channel at once, with the share of the top-up's bonus it brought (promotional credit
    is never paid out), and a refund request goes to the provider's original payment — sent, and
    re-sent under the same refund number until the provider says refunded, by the payment code's
    RefundSender. Returns the refund number. LedgerError: NOT_FOUND (no booked top-up of that
    order), REFUND_TOO_LARGE (more than the top-up less its earlier refunds, or than the card holds)."""
    with store.batch():
        row = _row(store, park_id, provider, provider_order)
        if row is None or row[4] != "booked":
            raise LedgerError(f"no online top-up booked for {provider} order {provider_order}", code="NOT_FOUND")
        card_no, issuance, paid_fen, txn_id = row[1], row[2], row[3], row[5]
        account = f"card:{card_no}/{issuance}"
        refunded = store.db.execute(
            "SELECT COALESCE(SUM(amount_fen), 0) FROM refund_request WHERE park_id=? AND provider=? AND provider_order=?"
            " AND refund_no LIKE ?", (park_id, provider, provider_order, REFUND_PREFIX + "%")).fetchone()[0]
        fen, bonus, _ = store.card_balances(park_id, account)
        if not 0 < amount_fen <= min(paid_fen - refunded, fen):
            raise LedgerError(f"{amount_fen} fen is more than the {paid_fen - refunded} fen of the top-up left "
                              f"to refund or the {fen} fen the card holds", code="REFUND_TOO_LARGE")
        granted = store.db.execute("SELECT COALESCE(SUM(amount), 0) FROM posting WHERE txn_id=? AND account_id=? "
                                   "AND asset='bonus'", (txn_id, account)).fetchone()[0]
        bonus_back = min(bonus, -(-granted * amount_fen // paid_fen))  # the bonus this money brought, rounded up
        seq = store.db.execute("SELECT COUNT(*) + 1 FROM txn WHERE terminal_id=?",
                               (f"{park_id}:online-refund",)).fetchone()[0]
        refund_no = f"{REFUND_PREFIX}{seq}"
        decision = Decision(reason=Reason.OK, amount_fen=amount_fen, postings=nonzero(
            Posting(account, "fen", -amount_fen), Posting(channel_account(provider), "fen", amount_fen),
            Posting(account, "bonus", -bonus_back), Posting(PROMO_ACCOUNT, "bonus", bonus_back)))
        store.apply(decision, park_id=park_id, now_ms=now_ms, txn=NewTxn(
            park_id=park_id, kind=REFUND_KIND, terminal_id=f"{park_id}:online-refund", seq=seq, operator=provider,
            station_id="", card_account=account, amount_fen=amount_fen, ledger_time_ms=now_ms,
            terminal_time_ms=now_ms, clock_uncertain=False))
        transaction_id = store.db.execute("SELECT transaction_id FROM online_topup WHERE park_id=? AND provider=? AND "
                                          "provider_order=?", (park_id, provider, provider_order)).fetchone()[0]
        store.db.execute("INSERT INTO refund_request (park_id, refund_no, order_no, provider, provider_order, "
                         "transaction_id, amount_fen, total_fen, state, created_ms) VALUES (?, ?, 0, ?, ?, ?, ?, ?, "
                         "'pending', ?)", (park_id, refund_no, provider, provider_order, transaction_id, amount_fen,
                                           paid_fen, now_ms))
    return refund_no
