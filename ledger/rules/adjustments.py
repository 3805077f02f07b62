"""A balance adjustment (调账): money, bonus or points put on or taken off a card by the park, with a
reason, asked for by one person and booked when a second approves it (ledger.park_admin keeps the
request). Pure: the card as the books hold it in, a Decision out, booked like any other by
Store.apply, so ``ledger verify`` replays it with everything else.

The other side of each posting is the park's own account for that asset: real money comes from (or
goes back to) ``balance_adjustment``, bonus from ``promo`` and points from ``points_issued``, the
accounts a top-up's bonus and a sale's points come from.
"""

from protocol.limits import MAX_AMOUNT_FEN
from protocol.messages import CardState
from protocol.reasons import Reason

from .common import POINTS_ACCOUNT, PROMO_ACCOUNT
from .decision import CardView, Decision, Posting, decline

ADJUSTMENT_KIND = "balance_adjustment"
ADJUSTMENT_ACCOUNT = "balance_adjustment"
COUNTER_ACCOUNTS = {"fen": ADJUSTMENT_ACCOUNT, "bonus": PROMO_ACCOUNT, "points": POINTS_ACCOUNT}
_ASSET_INDEX = {"fen": 0, "bonus": 1, "points": 2}


def decide_adjustment(card: CardView | None, account: str, asset: str, amount: int, *,
                      max_balance_fen: int) -> Decision:
    """Put ``amount`` (negative: take it off) of ``asset`` on the card issuance ``account``. Refused
    for an unknown or returned card, for more than the card holds, and for real money above the
    card type's balance cap (the cap a top-up keeps to)."""
    if asset not in COUNTER_ACCOUNTS or type(amount) is not int or amount == 0 or abs(amount) > MAX_AMOUNT_FEN:
        return decline(Reason.AMOUNT_MISMATCH)
    if card is None:
        return decline(Reason.UNKNOWN_CARD)
    if card.state == CardState.RETURNED:
        return decline(Reason.CARD_RETURNED)  # its money went back at the exit; a new issuance is a new account
    held = (card.fen, card.bonus, card.points)[_ASSET_INDEX[asset]]
    if held + amount < 0:
        return decline(Reason.INSUFFICIENT_FUNDS)
    if asset == "fen" and amount > 0 and held + amount > max_balance_fen:
        return decline(Reason.OVER_BALANCE_LIMIT)
    return Decision(reason=Reason.OK, amount_fen=abs(amount) if asset == "fen" else 0,
                    postings=(Posting(account, asset, amount), Posting(COUNTER_ACCOUNTS[asset], asset, -amount)))
