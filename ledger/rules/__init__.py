"""Each request kind's rule: ``gather`` reads what it needs from the store into a View (reads
only), ``decide`` turns the request and that View into a Decision (pure), ``Store.apply`` writes it.

One module per area (sales, cards, members, staff, rentals) registers its kinds in RULES. ``decide`` runs
the common card checks every kind keeps unless it opts out by name (protocol.kinds), then the kind's
own rule, then adds the member's notification for kinds that tell members.
"""

from dataclasses import dataclass, replace
from typing import Callable

from protocol.kinds import KINDS
from protocol.messages import OfflineCharge

from . import cards, ecards, members, rentals, sales, staff
from .common import (ASSETS, CARD_FEE_ACCOUNT, OFFLINE_LOSS_ACCOUNT, POINTS_ACCOUNT, PROMO_ACCOUNT,
                     PROMO_EXPENSE_ACCOUNT, channel_account, check_balanced, check_card, check_limits, commission_fen)
from .decision import (Alert, Answer, BlocklistChange, CardView, Decision, NewCard, NewMember, Notification,
                       OriginalSale, Posting, ShiftChange, StationView, View, decline)
from .cards import bonus_for, decide_card_issue, decide_card_return, decide_top_up
from .members import decide_transfer
from .sales import decide_charge, decide_offline_charge, decide_void


@dataclass(frozen=True, slots=True)
class Rule:
    type: str
    gather: Callable  # (request, store, terminal, now_ms, pins) -> View; reads only
    decide: Callable  # (request, View) -> Decision; pure


def _register(*modules) -> dict[str, Rule]:
    rules: dict[str, Rule] = {}
    for module in modules:
        for type_name, (gather, decide_kind) in module.RULES.items():
            if type_name in rules:
                raise ImportError(f"two rules for {type_name}")
            rules[type_name] = Rule(type_name, gather, decide_kind)
    return rules


RULES: dict[str, Rule] = _register(sales, cards, members, staff, rentals)


def gather(request, store, terminal, now_ms: int, pins, *, card_record_key=None) -> View:
    """The View the request's rule decides on, read from ``store`` (no writes). ``card_record_key``
    (the ledger's card-record VerifyKey) checks an e-card's QR; without it every QR is ECARD_INVALID."""
    view = RULES[request.TYPE].gather(request, store, terminal, now_ms, pins)
    found = ecards.gather_ecard(request, store, card_record_key, now_ms)
    return view if found is None else replace(view, ecard=found)


def decide(request, view: View) -> Decision:
    """The e-card's QR when the card is one, the common card checks (but those the kind opts out
    of), then the kind's own rule. The checks run before any rule: a lost, copied or unknown card,
    or an e-card without a fresh QR from its own phone, never reaches one (issues 11, 17)."""
    kind = KINDS[request.TYPE]
    alerts = ()
    if (refusal := ecards.check_ecard(request, view.ecard)) is not None:
        if not isinstance(request, OfflineCharge):
            return refusal
        alerts = (ecards.offline_alert(request, refusal),)  # it happened: booked, and flagged
    decision = _decide_card(request, view, kind)
    if decision.is_approved and (window := ecards.used_window(request, view.ecard)) is not None:
        decision = replace(decision, ecard_window=window)
    return replace(decision, alerts=alerts + decision.alerts) if alerts else decision


def decide_paid_online(request, view: View) -> Decision:
    """A top-up the payment provider says was paid for the card (ledger.topups_online): the provider's
    signed notification of the order the member's portal made stands in for the card shown at a
    till, so no e-card QR is asked for; every common card check and the kind's rule run."""
    return _decide_card(request, view, KINDS[request.TYPE])


def _decide_card(request, view: View, kind) -> Decision:
    if (refusal := check_card(request, view.card, skips=kind.skips_card_checks)) is not None:
        return refusal
    if kind.runs("limits") and (refusal := check_limits(request, view.card, view.limits, kind=None,
                                                        spent_today_fen=view.spent_today_fen)) is not None:
        return refusal
    decision = RULES[request.TYPE].decide(request, view)
    if decision.is_approved and kind.notifies_member and view.member_to_tell is not None:
        # Members hear about every top-up and charge: queued in the same transaction as the booking.
        decision = replace(decision, notification=Notification(
            request.card.no, view.member_to_tell.phone, request.TYPE, getattr(request, "amount_fen", 0),
            request.card.account))
    return decision


__all__ = [
    "ASSETS", "CARD_FEE_ACCOUNT", "OFFLINE_LOSS_ACCOUNT", "POINTS_ACCOUNT", "PROMO_ACCOUNT", "PROMO_EXPENSE_ACCOUNT",
    "RULES", "Alert", "Answer", "BlocklistChange", "CardView", "Decision", "NewCard", "NewMember", "Notification",
    "OriginalSale", "Posting", "Rule", "ShiftChange", "StationView", "View", "bonus_for", "channel_account",
    "check_balanced", "check_card", "check_limits", "commission_fen", "decide", "decide_card_issue",
    "decide_card_return", "decide_charge", "decide_offline_charge", "decide_top_up", "decide_transfer", "decide_void",
    "decline", "gather",
]
