"""Pure rules: a verified request plus the ledger's view of the card becomes a decision.

No I/O here. ``decide`` returns either a decline reason (final for that seq) or the postings to
book. Sign convention: an account's balance is the sum of its postings; positive means the park
owes it (a card's balance, a contractor's payable, revenue earned), negative means the park holds
it (money in a channel's drawer or provider account). Every transaction sums to zero per asset.
"""

from dataclasses import dataclass, field

from protocol.messages import CardIssue, CardKind, CardReturn, Charge, MemberOpen, OfflineCharge, Request, TopUp
from protocol.money import FEN_PER_YUAN, card_account
from protocol.reasons import Reason

ASSETS = ("fen", "bonus", "points")
CARD_FEE_ACCOUNT = "card_fee"
# Where an offline sale lands when its card can no longer pay: the issuance was refunded at the
# exit (the money is gone), or the card is unknown. The park carries that loss, and reports it.
OFFLINE_LOSS_ACCOUNT = "offline_loss"
# Promotional credit is issued from PROMO (bonus asset); when a member spends it, the park pays the
# station from PROMO_EXPENSE (real money). Points are issued from POINTS_ISSUED.
PROMO_ACCOUNT = "promo"
PROMO_EXPENSE_ACCOUNT = "promo_expense"
POINTS_ACCOUNT = "points_issued"


@dataclass(frozen=True, slots=True)
class Posting:
    account: str
    asset: str
    amount: int


@dataclass(frozen=True, slots=True)
class CardView:
    """The latest issuance of a card number, as the store holds it."""

    card_no: str
    issuance: int
    uid: str
    kind: str
    state: str
    card_fee_fen: int
    fen: int
    bonus: int
    points: int


@dataclass(frozen=True, slots=True)
class StationView:
    station_id: str
    contractor_id: str | None
    commission_bp: int


@dataclass(frozen=True, slots=True)
class OriginalSale:
    """A Charge the Void names: its txn, amount, card account and postings."""

    txn_id: int
    kind: str
    amount_fen: int
    card_account: str
    is_voided: bool
    postings: tuple


@dataclass(frozen=True)
class Decision:
    reason: Reason
    postings: tuple = ()
    amount_fen: int = 0
    card_state: str | None = None   # new state of the card issuance, if it changes
    allow_negative: bool = False    # an offline sale happened: it may overdraw the card
    new_card: bool = False          # CardIssue: insert a new issuance
    voids_txn: int | None = None
    alerts: tuple = field(default=())

    @property
    def is_approved(self) -> bool:
        """Approved and to be booked (SAME_SALE is approved too, but books nothing new)."""
        return self.reason is Reason.OK


def decline(reason: Reason, *alerts: str) -> Decision:
    return Decision(reason=reason, alerts=alerts)


def channel_account(channel: str) -> str:
    return f"channel:{channel}"


def _nonzero(*postings: Posting) -> tuple:
    return tuple(p for p in postings if p.amount != 0)


def check_card(request: Request, card: CardView | None, *, skips: frozenset = frozenset()) -> Decision | None:
    """The checks every request on an existing card makes, but those its kind opts out of by name
    in ``skips`` (protocol.kinds.CARD_CHECKS); None when the card may be used."""
    if "card_known" not in skips and (card is None or request.card.issuance > card.issuance):
        return decline(Reason.UNKNOWN_CARD)
    if card is None:
        return None  # nothing on record to compare with: the kind's own rule decides
    if "issuance_current" not in skips and request.card.issuance < card.issuance:
        return decline(Reason.OLD_ISSUANCE)
    if "uid_matches" not in skips and request.card.uid != card.uid:
        # One card number under two UIDs: a clone or a swapped chip. Refuse and tell someone.
        return decline(
            Reason.CARD_UID_MISMATCH,
            f"card {card.card_no}/{card.issuance} seen with UID {request.card.uid}, registered {card.uid}",
        )
    if "not_blocked" not in skips and card.state == "blocked":
        return decline(Reason.CARD_BLOCKED)
    if "not_blocked" not in skips and card.state == "returned":
        return decline(Reason.CARD_RETURNED)
    return None


def decide_card_issue(request: CardIssue | MemberOpen, card: CardView | None) -> Decision:
    if isinstance(request, CardIssue) and request.card_kind != CardKind.TEMPORARY:
        # Member cards carry a name, phone and PIN: they are opened by their own message type.
        return decline(Reason.KIND_NOT_ALLOWED)
    if card is not None and card.state != "returned":
        return decline(Reason.CARD_BLOCKED if card.state == "blocked" else Reason.CARD_IN_USE)
    expected_issuance = 1 if card is None else card.issuance + 1
    if request.card.issuance != expected_issuance:
        return decline(Reason.OLD_ISSUANCE)
    paid = request.card_fee_fen + request.opening_fen
    return Decision(
        reason=Reason.OK,
        amount_fen=paid,
        new_card=True,
        postings=_nonzero(
            Posting(channel_account(request.channel), "fen", -paid),
            Posting(CARD_FEE_ACCOUNT, "fen", request.card_fee_fen),
            Posting(request.card.account, "fen", request.opening_fen),
        ),
    )


def check_limits(request, card: CardView | None, limits, *, kind: str, spent_today_fen: int = 0) -> Decision | None:
    """Card-type limits: the balance cap after money comes in, the top-up range, the daily spend."""
    if isinstance(request, (CardIssue, MemberOpen)):
        return decline(Reason.OVER_BALANCE_LIMIT) if request.opening_fen > limits.max_balance_fen else None
    if isinstance(request, TopUp):
        # Paying toward an offline debt takes any amount: the visitor owes what they owe.
        minimum = 1 if card.fen < 0 else limits.min_topup_fen
        if not minimum <= request.amount_fen <= limits.max_topup_fen:
            return decline(Reason.TOP_UP_OUT_OF_RANGE)
        if card.fen + request.amount_fen > limits.max_balance_fen:
            return decline(Reason.OVER_BALANCE_LIMIT)
    if isinstance(request, Charge) and not isinstance(request, OfflineCharge):
        if spent_today_fen + request.amount_fen > limits.daily_spend_fen:
            return decline(Reason.OVER_DAILY_LIMIT)
    return None


def bonus_for(amount_fen: int, rules: list[tuple[int, int]]) -> int:
    """The bonus of the highest tier the top-up reaches ("top up 500, get 50"); tiers do not stack."""
    reached = [bonus for minimum, bonus in rules if amount_fen >= minimum]
    return max(reached, default=0)


def decide_top_up(request: TopUp, card: CardView, bonus_rules=()) -> Decision:
    bonus = bonus_for(request.amount_fen, bonus_rules) if card.kind == CardKind.MEMBER else 0
    return Decision(
        reason=Reason.OK,
        amount_fen=request.amount_fen,
        postings=(
            Posting(channel_account(request.channel), "fen", -request.amount_fen),
            Posting(request.card.account, "fen", request.amount_fen),
        )
        + _nonzero(Posting(PROMO_ACCOUNT, "bonus", -bonus), Posting(request.card.account, "bonus", bonus)),
    )


def commission_fen(amount_fen: int, commission_bp: int) -> int:
    """The park's commission on a contractor's sale, rounded down (the contractor keeps the odd fen)."""
    return amount_fen * commission_bp // 10_000


def decide_charge(request: Charge, card: CardView, station: StationView, *, bonus_first: bool = False,
                  points_per_yuan: int = 0) -> Decision:
    """Real money and bonus credit pay together, in the park's chosen order; the station is always
    paid in real money (the park pays for the bonus part). Members earn points per whole yuan."""
    amount = request.amount_fen
    if card.fen + card.bonus < amount:
        return decline(Reason.INSUFFICIENT_FUNDS)
    bonus = min(card.bonus, amount) if bonus_first else amount - min(card.fen, amount)
    real = amount - bonus
    points = amount // FEN_PER_YUAN * points_per_yuan if card.kind == CardKind.MEMBER else 0
    return Decision(
        reason=Reason.OK,
        amount_fen=amount,
        postings=_nonzero(
            Posting(request.card.account, "fen", -real),
            Posting(PROMO_EXPENSE_ACCOUNT, "fen", -bonus),
            Posting(request.card.account, "bonus", -bonus),
            Posting(PROMO_ACCOUNT, "bonus", bonus),
            Posting(request.card.account, "points", points),
            Posting(POINTS_ACCOUNT, "points", -points),
        )
        + _station_credit(amount, station),
    )


def _station_credit(amount: int, station: StationView) -> tuple:
    if station.contractor_id is None:
        return (Posting(f"revenue:{station.station_id}", "fen", amount),)
    commission = commission_fen(amount, station.commission_bp)
    return _nonzero(
        Posting(f"contractor:{station.contractor_id}", "fen", amount - commission),
        Posting(f"revenue:{station.station_id}", "fen", commission),
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
    elif card.state == "returned":
        debit = OFFLINE_LOSS_ACCOUNT
        alerts.append(f"offline sale {request.terminal}/{request.seq} on {request.card.account}, refunded already: "
                      f"booked to {OFFLINE_LOSS_ACCOUNT}")
    else:
        debit = request.card.account
    return Decision(
        reason=Reason.OK,
        amount_fen=amount,
        allow_negative=True,
        postings=(Posting(debit, "fen", -amount),) + _station_credit(amount, station),
        alerts=tuple(alerts),
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


def decide_transfer(old: CardView, new_account: str) -> Decision:
    """补卡: everything on the lost card moves to the new one (the old account keeps its history)."""
    old_account = card_account(old.card_no, old.issuance)
    moves = []
    for asset, amount in (("fen", old.fen), ("bonus", old.bonus), ("points", old.points)):
        moves += [Posting(old_account, asset, -amount), Posting(new_account, asset, amount)]
    return Decision(reason=Reason.OK, amount_fen=old.fen, new_card=True, postings=_nonzero(*moves))


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
        card_state="returned",
        postings=_nonzero(
            Posting(request.card.account, "fen", -card.fen),
            Posting(CARD_FEE_ACCOUNT, "fen", -card.card_fee_fen),
            Posting("revenue:card_damage", "fen", request.damage_fee_fen),
            Posting(channel_account(request.channel), "fen", refund),
        )
        + _nonzero(
            Posting(request.card.account, "bonus", -card.bonus),
            Posting(PROMO_ACCOUNT, "bonus", card.bonus),
        ),
    )


def check_balanced(postings) -> None:
    """Raise if the postings do not sum to zero per asset (a bug, never a customer's problem)."""
    totals = dict.fromkeys(ASSETS, 0)
    for posting in postings:
        if posting.asset not in totals or type(posting.amount) is not int:
            raise AssertionError(f"bad posting {posting!r}")
        totals[posting.asset] += posting.amount
    if any(totals.values()):
        raise AssertionError(f"postings do not balance: {totals}")
