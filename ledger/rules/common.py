"""What several rules share: the common card checks, the card-type limits, the PIN checks, and the
posting helpers and accounts. Pure: everything comes in through the request and the View."""

from protocol.messages import CardIssue, CardKind, CardState, Charge, MemberOpen, OfflineCharge, Request, TopUp
from protocol.reasons import Reason

from ..pins import MAX_WRONG_PINS
from ..shifts import after_wrong_pin
from .decision import APPROVED, Alert, CardView, Decision, Posting, StationView, View, decline

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


def channel_account(channel: str) -> str:
    return f"channel:{channel}"


def nonzero(*postings: Posting) -> tuple:
    return tuple(p for p in postings if p.amount != 0)


def check_balanced(postings) -> None:
    """Raise if the postings do not sum to zero per asset (a bug, never a customer's problem)."""
    totals = dict.fromkeys(ASSETS, 0)
    for posting in postings:
        if posting.asset not in totals or type(posting.amount) is not int:
            raise AssertionError(f"bad posting {posting!r}")
        totals[posting.asset] += posting.amount
    if any(totals.values()):
        raise AssertionError(f"postings do not balance: {totals}")


# ---------------------------------------------------------------- the common checks
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
    if "not_blocked" not in skips and card.state == CardState.BLOCKED:
        return decline(Reason.CARD_BLOCKED)
    if "not_blocked" not in skips and card.state == CardState.RETURNED:
        return decline(Reason.CARD_RETURNED)
    return None


def check_limits(request, card: CardView | None, limits, *, kind: str, spent_today_fen: int = 0) -> Decision | None:
    """Card-type limits: the balance cap after money comes in, the top-up range, the daily spend (for
    a charge the card can pay: the balance is checked first)."""
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
        # The first reason that applies to the visitor: a card that cannot pay is told so ("insufficient
        # balance"), not that it is over today's limit, which a top-up would not cure.
        if card is not None and card.fen + card.bonus < request.amount_fen:
            return decline(Reason.INSUFFICIENT_FUNDS)
        if spent_today_fen + request.amount_fen > limits.daily_spend_fen:
            return decline(Reason.OVER_DAILY_LIMIT)
    return None


def limits_kind(request) -> str | None:
    """The card type whose limits apply: for a new card, the kind it is opened as; else None (the card's)."""
    if isinstance(request, MemberOpen):
        return CardKind.MEMBER.value
    if isinstance(request, CardIssue):
        return request.card_kind
    return None


# ---------------------------------------------------------------- PINs
def check_member_pin(request, view: View, *, always: bool = False, amount_fen: int | None = None) -> Decision:
    """A member charge above the park's no-PIN limit needs the member's PIN (``always``: any
    amount; ``amount_fen``: what the card pays when the request names it otherwise, as a rental
    deposit does); three wrong PINs lock the card's PIN until a supervisor unlocks it. Approving or
    declining, the decision carries the member's new wrong-PIN count when it changes."""
    member = view.member
    if member is None:
        return APPROVED
    if member.wrong_pins >= MAX_WRONG_PINS:
        return decline(Reason.PIN_LOCKED)
    # The park's limit, the one each till has in its signed config: a member's own copy (taken when
    # the card was opened) would differ once the park changes it, and the till would not ask.
    amount = request.amount_fen if amount_fen is None else amount_fen
    if not always and amount <= view.park_rules.no_pin_limit_fen and request.pin_sha256 is None:
        return APPROVED
    if request.pin_sha256 is None:
        return decline(Reason.PIN_REQUIRED)
    if view.pins.matches(member.pin_hash):
        return Decision(reason=Reason.OK, member_wrong_pins=(request.card.no, 0)) if member.wrong_pins else APPROVED
    count = member.wrong_pins + 1
    return Decision(reason=Reason.PIN_LOCKED if count >= MAX_WRONG_PINS else Reason.WRONG_PIN,
                    member_wrong_pins=(request.card.no, count),
                    alerts=(Alert("WRONG_PIN", f"member card {request.card.no}: wrong PIN {count}"),))


def check_supervisor(view: View) -> Decision:
    """The second credential: a supervisor's staff card and PIN (sealed with the request)."""
    staff = view.supervisor
    if staff is None or not staff.is_active or staff.role != "supervisor":
        return decline(Reason.SUPERVISOR_REQUIRED)
    if staff.wrong_pins >= MAX_WRONG_PINS:
        return decline(Reason.PIN_LOCKED)
    if view.pins.matches(staff.pin_hash, "supervisor_pin"):
        return Decision(reason=Reason.OK, staff_wrong_pins=((staff.staff_id, 0),))
    count, reason = after_wrong_pin(staff)
    return Decision(reason=reason, staff_wrong_pins=((staff.staff_id, count),),
                    alerts=(Alert("WRONG_PIN", f"supervisor {staff.staff_id} wrong PIN {count}"),))


# ---------------------------------------------------------------- stations
def commission_fen(amount_fen: int, commission_bp: int) -> int:
    """The park's commission on a contractor's sale, rounded down (the contractor keeps the odd fen)."""
    return amount_fen * commission_bp // 10_000


def station_credit(amount: int, station: StationView) -> tuple:
    if station.contractor_id is None:
        return (Posting(f"revenue:{station.station_id}", "fen", amount),)
    commission = commission_fen(amount, station.commission_bp)
    return nonzero(
        Posting(f"contractor:{station.contractor_id}", "fen", amount - commission),
        Posting(f"revenue:{station.station_id}", "fen", commission),
    )
