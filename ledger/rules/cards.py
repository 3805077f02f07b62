"""A card's life at the front desk: issue, top up, return, report lost, unblock, reverse a top-up."""

from dataclasses import replace

from protocol.messages import CardBalance, CardIssue, CardKind, CardReturn, CardState, CardUnblock, LossReport, MemberOpen, Reversal, TopUp
from protocol.reasons import Reason

from .campaigns import multiplied, multiplier_pct
from .common import CARD_FEE_ACCOUNT, PROMO_ACCOUNT, channel_account, check_supervisor, nonzero
from .decision import APPROVED, BlocklistChange, CardView, Decision, NewCard, Posting, View, decline
from .reads import block_reason, card_reads, supervisor
from .sales import decide_void


# ---------------------------------------------------------------- pure posting rules
def decide_card_issue(request: CardIssue | MemberOpen, card: CardView | None) -> Decision:
    if isinstance(request, CardIssue) and request.card_kind != CardKind.TEMPORARY:
        # Member cards carry a name, phone and PIN: they are opened by their own message type.
        return decline(Reason.KIND_NOT_ALLOWED)
    if card is not None and card.state != CardState.RETURNED:
        return decline(Reason.CARD_BLOCKED if card.state == CardState.BLOCKED else Reason.CARD_IN_USE)
    expected_issuance = 1 if card is None else card.issuance + 1
    if request.card.issuance != expected_issuance:
        return decline(Reason.OLD_ISSUANCE)
    paid = request.card_fee_fen + request.opening_fen
    kind = CardKind.MEMBER.value if isinstance(request, MemberOpen) else request.card_kind
    return Decision(
        reason=Reason.OK,
        amount_fen=paid,
        new_card=NewCard(request.card.no, request.card.issuance, request.card.uid, kind, request.card_fee_fen),
        postings=nonzero(
            Posting(channel_account(request.channel), "fen", -paid),
            Posting(CARD_FEE_ACCOUNT, "fen", request.card_fee_fen),
            Posting(request.card.account, "fen", request.opening_fen),
        ),
    )


def bonus_for(amount_fen: int, rules) -> int:
    """The bonus of the highest tier the top-up reaches ("top up 500, get 50"); tiers do not stack."""
    reached = [bonus for minimum, bonus in rules if amount_fen >= minimum]
    return max(reached, default=0)


def decide_top_up(request: TopUp, card: CardView, bonus_rules=(), *, bonus_multiplier_pct: int = 100) -> Decision:
    """Members get the bonus of the tier the top-up reaches, times a running campaign's multiplier."""
    bonus = bonus_for(request.amount_fen, bonus_rules) if card.kind == CardKind.MEMBER else 0
    bonus = multiplied(bonus, bonus_multiplier_pct)
    return Decision(
        reason=Reason.OK,
        amount_fen=request.amount_fen,
        postings=(
            Posting(channel_account(request.channel), "fen", -request.amount_fen),
            Posting(request.card.account, "fen", request.amount_fen),
        )
        + nonzero(Posting(PROMO_ACCOUNT, "bonus", -bonus), Posting(request.card.account, "bonus", bonus)),
    )


def decide_card_return(request: CardReturn, card: CardView) -> Decision:
    if card.kind != CardKind.TEMPORARY:
        return decline(Reason.KIND_NOT_ALLOWED)
    if request.damage_fee_fen > card.card_fee_fen:
        return decline(Reason.AMOUNT_MISMATCH)  # a damaged card costs at most its deposit
    # Bonus credit is promotional and never paid out as cash; it simply lapses with the card.
    refund = card.fen + card.card_fee_fen - request.damage_fee_fen
    return Decision(
        reason=Reason.OK,
        amount_fen=refund,
        card_state=CardState.RETURNED.value,
        postings=nonzero(
            Posting(request.card.account, "fen", -card.fen),
            Posting(CARD_FEE_ACCOUNT, "fen", -card.card_fee_fen),
            Posting("revenue:card_damage", "fen", request.damage_fee_fen),
            Posting(channel_account(request.channel), "fen", refund),
        )
        + nonzero(
            Posting(request.card.account, "bonus", -card.bonus),
            Posting(PROMO_ACCOUNT, "bonus", card.bonus),
        ),
    )


# ---------------------------------------------------------------- the kinds' rules
def _gather(request, store, terminal, now_ms: int, pins, **more) -> View:
    card = store.card(request.park, request.card.no)
    return View(terminal=terminal, pins=pins, **card_reads(request, store, now_ms, card), **more)


def gather_card_issue(request: CardIssue, store, terminal, now_ms: int, pins) -> View:
    return _gather(request, store, terminal, now_ms, pins, park_rules=store.park_rules(request.park))


def card_issue(request: CardIssue, view: View) -> Decision:
    if request.card_fee_fen != view.park_rules.card_fee_fen:
        # The park's card fee, not a desk's: a desk with an old or edited config would book another.
        return decline(Reason.AMOUNT_MISMATCH)
    return decide_card_issue(request, view.card)


def gather_top_up(request: TopUp, store, terminal, now_ms: int, pins) -> View:
    card = store.card(request.park, request.card.no)
    owes = block_reason(store, request.park, card) == "OFFLINE_OVERDRAFT"
    if owes:
        card = replace(card, state=CardState.ACTIVE.value)  # paying the debt is how an overdrawn card is settled
    found = card_reads(request, store, now_ms, card)
    day = store.business_day(request.park, now_ms)
    return View(terminal=terminal, pins=pins, owes_offline_debt=owes, bonus_rules=tuple(store.bonus_rules(request.park)),
                campaigns=tuple(store.campaigns(request.park, day)), business_day=day, **found)


def top_up(request: TopUp, view: View) -> Decision:
    decision = decide_top_up(request, view.card, view.bonus_rules,
                             bonus_multiplier_pct=multiplier_pct(view.campaigns, "bonus", view.business_day))
    if view.owes_offline_debt and view.card.fen + request.amount_fen >= 0:
        # A top-up that pays an offline debt off unblocks the card (a blocklist delta to every till).
        return replace(decision, blocklist=(BlocklistChange("unblock", request.card.no, request.card.issuance, "SETTLED"),))
    return decision


def gather_card_return(request: CardReturn, store, terminal, now_ms: int, pins) -> View:
    return _gather(request, store, terminal, now_ms, pins, park_rules=store.park_rules(request.park),
                   open_deposits=store.open_deposit_count(request.park, request.card.account))


def card_return(request: CardReturn, view: View) -> Decision:
    if view.open_deposits:
        return decline(Reason.DEPOSITS_OPEN)  # the refund would leave a rental deposit with no card to go back to
    if request.damage_fee_fen > view.park_rules.damage_fee_fen:
        return decline(Reason.AMOUNT_MISMATCH)  # the park's damage fee caps what a desk keeps
    return decide_card_return(request, view.card)


def gather_loss_report(request: LossReport, store, terminal, now_ms: int, pins) -> View:
    return _gather(request, store, terminal, now_ms, pins)


def loss_report(request: LossReport, view: View) -> Decision:
    if view.card.kind != CardKind.MEMBER:
        return decline(Reason.KIND_NOT_ALLOWED)  # temporary cards have no loss protection
    return replace(APPROVED, blocklist=(BlocklistChange("block", request.card.no, request.card.issuance, "LOST"),))


def gather_card_unblock(request: CardUnblock, store, terminal, now_ms: int, pins) -> View:
    card = store.card(request.park, request.card.no)
    return View(terminal=terminal, pins=pins, block_reason=block_reason(store, request.park, card),
                **card_reads(request, store, now_ms, card))


def card_unblock(request: CardUnblock, view: View) -> Decision:
    if view.card.state != CardState.BLOCKED or view.block_reason != "LOST":
        return decline(Reason.KIND_NOT_ALLOWED)  # an overdrawn card is settled, not unblocked
    return replace(APPROVED, blocklist=(BlocklistChange("unblock", request.card.no, request.card.issuance, "FOUND"),))


def gather_reversal(request: Reversal, store, terminal, now_ms: int, pins) -> View:
    return _gather(request, store, terminal, now_ms, pins, shift_opened_at=store.shift_opened_at(request.terminal),
                   original=store.original_sale(request.terminal, request.original_seq),
                   supervisor=supervisor(store, request))


def reversal(request: Reversal, view: View) -> Decision:
    card = view.card
    if view.shift_opened_at is None or request.original_seq < view.shift_opened_at:
        return decline(Reason.NOT_SAME_SHIFT)
    decision = decide_void(request, view.original, kind=TopUp.TYPE)
    if not decision.is_approved:
        return decision
    if card.fen < request.amount_fen or any(p.account == request.card.account and p.asset == "bonus" and
                                             card.bonus + p.amount < 0 for p in decision.postings):
        return decline(Reason.INSUFFICIENT_FUNDS)  # already spent: the desk settles it otherwise
    second = check_supervisor(view)
    return decision.after(second) if second.is_approved else second


def gather_card_balance(request: CardBalance, store, terminal, now_ms: int, pins) -> View:
    return _gather(request, store, terminal, now_ms, pins)


def card_balance(request: CardBalance, view: View) -> Decision:
    """The common card checks already passed: the intake answers with the card's balances."""
    return APPROVED


RULES = {
    CardIssue.TYPE: (gather_card_issue, card_issue),
    CardBalance.TYPE: (gather_card_balance, card_balance),
    TopUp.TYPE: (gather_top_up, top_up),
    CardReturn.TYPE: (gather_card_return, card_return),
    LossReport.TYPE: (gather_loss_report, loss_report),
    CardUnblock.TYPE: (gather_card_unblock, card_unblock),
    Reversal.TYPE: (gather_reversal, reversal),
}
