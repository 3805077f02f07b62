"""Sales at a station: charge, offline charge, void."""

from dataclasses import replace

from protocol.messages import CardKind, CardState, Charge, OfflineCharge, Void
from protocol.money import FEN_PER_YUAN
from protocol.reasons import Outcome, Reason

from .campaigns import multiplied, multiplier_pct
from .common import (OFFLINE_LOSS_ACCOUNT, POINTS_ACCOUNT, PROMO_ACCOUNT, PROMO_EXPENSE_ACCOUNT, check_member_pin,
                     check_supervisor, nonzero, station_credit)
from .decision import Alert, BlocklistChange, CardView, Decision, OriginalSale, Posting, StationView, View, decline
from .reads import card_reads, supervisor


# ---------------------------------------------------------------- pure posting rules
def decide_charge(request: Charge, card: CardView, station: StationView, *, bonus_first: bool = False,
                  points_per_yuan: int = 0, points_multiplier_pct: int = 100) -> Decision:
    """Real money and bonus credit pay together, in the park's chosen order; the station is always
    paid in real money (the park pays for the bonus part). Members earn points per whole yuan, times
    a running campaign's multiplier."""
    amount = request.amount_fen
    if card.fen + card.bonus < amount:
        return decline(Reason.INSUFFICIENT_FUNDS)
    bonus = min(card.bonus, amount) if bonus_first else amount - min(card.fen, amount)
    real = amount - bonus
    points = multiplied(amount // FEN_PER_YUAN * points_per_yuan, points_multiplier_pct) if card.kind == CardKind.MEMBER else 0
    return Decision(
        reason=Reason.OK,
        amount_fen=amount,
        postings=nonzero(
            Posting(request.card.account, "fen", -real),
            Posting(PROMO_EXPENSE_ACCOUNT, "fen", -bonus),
            Posting(request.card.account, "bonus", -bonus),
            Posting(PROMO_ACCOUNT, "bonus", bonus),
            Posting(request.card.account, "points", points),
            Posting(POINTS_ACCOUNT, "points", -points),
        )
        + station_credit(amount, station),
    )


def decide_offline_charge(request: OfflineCharge, card: CardView | None, station: StationView) -> Decision:
    """An offline sale already happened: it is applied whatever the balance. It lands on the card
    issuance it was made on (never on a later visitor's), or on OFFLINE_LOSS when that issuance was
    refunded already or cannot be found. Overdrawing blocks the card."""
    amount = request.amount_fen
    alerts = []
    if card is None or card.uid != request.card.uid:
        debit = OFFLINE_LOSS_ACCOUNT
        alerts.append(f"offline sale {request.terminal}/{request.seq} on unknown card {request.card.account} "
                      f"(UID {request.card.uid}): booked to {OFFLINE_LOSS_ACCOUNT}")
    elif card.state == CardState.RETURNED:
        debit = OFFLINE_LOSS_ACCOUNT
        alerts.append(f"offline sale {request.terminal}/{request.seq} on {request.card.account}, refunded already: "
                      f"booked to {OFFLINE_LOSS_ACCOUNT}")
    else:
        debit = request.card.account
    return Decision(
        reason=Reason.OK,
        amount_fen=amount,
        allow_negative=True,
        postings=(Posting(debit, "fen", -amount),) + station_credit(amount, station),
        alerts=tuple(Alert(Reason.OK.value, text) for text in alerts),
    )


def decide_void(request, original: OriginalSale | None, *, kind: str = Charge.TYPE) -> Decision:
    """Undo ``original`` (a Charge for Void, a TopUp for Reversal) with its postings negated, once."""
    if original is None or original.kind != kind or original.card_account != request.card.account:
        return decline(Reason.ORIGINAL_NOT_FOUND)
    if original.is_voided:
        return decline(Reason.ALREADY_VOIDED)
    if original.amount_fen != request.amount_fen:
        return decline(Reason.AMOUNT_MISMATCH)
    return Decision(
        reason=Reason.OK,
        amount_fen=original.amount_fen,
        voids_txn=original.txn_id,
        postings=tuple(Posting(p.account, p.asset, -p.amount) for p in original.postings),
    )


# ---------------------------------------------------------------- the kinds' rules
def gather_charge(request: Charge, store, terminal, now_ms: int, pins) -> View:
    card = store.card(request.park, request.card.no)
    found = card_reads(request, store, now_ms, card)
    if card is not None and card.kind == CardKind.MEMBER:
        found |= {"park_rules": store.park_rules(request.park)}
        found["bonus_first"], found["points_per_yuan"], _ = store.member_settings(request.park)
        day = store.business_day(request.park, now_ms)
        found |= {"campaigns": tuple(store.campaigns(request.park, day)), "business_day": day}
    elif card is not None:
        found["is_superseded"] = store.superseded_by(request.terminal, request.seq) is not None
    station = store.station(request.park, terminal.station_id) if card is not None else None
    return View(terminal=terminal, station=station, pins=pins, **found)


def charge(request: Charge, view: View) -> Decision:
    card = view.card
    if card.kind == CardKind.MEMBER:
        pin = check_member_pin(request, view)
        if not pin.is_approved:
            return pin
        return decide_charge(request, card, view.station, bonus_first=view.bonus_first,
                             points_per_yuan=view.points_per_yuan,
                             points_multiplier_pct=multiplier_pct(view.campaigns, "points", view.business_day)).after(pin)
    if view.is_superseded:
        # The terminal gave up waiting for this attempt and sold offline instead: that sale counts.
        return decline(Reason.SUPERSEDED)
    return decide_charge(request, card, view.station)


def gather_offline_charge(request: OfflineCharge, store, terminal, now_ms: int, pins) -> View:
    earlier = None
    if request.supersedes_seq is not None:
        stored = store.stored_outcome(request.terminal, request.supersedes_seq)
        earlier = None if stored is None else stored[0]
    return View(terminal=terminal, card=store.card(request.park, request.card.no, request.card.issuance),
                earlier_outcome=earlier, station=store.station(request.park, terminal.station_id), pins=pins)


def offline_charge(request: OfflineCharge, view: View) -> Decision:
    supersedes = None
    if request.supersedes_seq is not None:
        if view.earlier_outcome == Outcome.APPROVED:
            # The online attempt was approved and its answer lost: this is the same sale.
            return Decision(reason=Reason.SAME_SALE)
        supersedes = (request.terminal, request.supersedes_seq, request.seq)
    decision = replace(decide_offline_charge(request, view.card, view.station), supersedes=supersedes)
    card = view.card
    if decision.postings[0].account == request.card.account and card.fen - request.amount_fen < 0:
        # Overdrawn by a sale that already happened: the card is blocked until a top-up settles it.
        detail = (f"{request.card.account} overdrawn to {card.fen - request.amount_fen} fen by offline sale "
                  f"{request.terminal}/{request.seq}")
        decision = replace(decision, alerts=decision.alerts + (Alert("OFFLINE_OVERDRAFT", detail),), blocklist=(
            BlocklistChange("block", request.card.no, request.card.issuance, "OFFLINE_OVERDRAFT"),))
    return decision


def gather_void(request: Void, store, terminal, now_ms: int, pins) -> View:
    card = store.card(request.park, request.card.no)
    return View(terminal=terminal, original=store.original_sale(request.terminal, request.original_seq),
                supervisor=supervisor(store, request), pins=pins, **card_reads(request, store, now_ms, card))


def void(request: Void, view: View) -> Decision:
    decision = decide_void(request, view.original)
    if not decision.is_approved:
        return decision
    second = check_supervisor(view)
    return decision.after(second) if second.is_approved else second


RULES = {Charge.TYPE: (gather_charge, charge), OfflineCharge.TYPE: (gather_offline_charge, offline_charge),
         Void.TYPE: (gather_void, void)}
