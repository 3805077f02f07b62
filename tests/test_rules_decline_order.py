"""A decline gives the first reason that applies to the visitor: a card that cannot pay hears
"insufficient balance" before "over today's limit" (which a top-up would not cure)."""

import pytest

from ledger.rules import decide
from protocol.reasons import Reason

from .helpers.rule_tables import FISHING, TEMP, card_view, request, view


def charge(amount_fen):
    return request("charge", TEMP, amount_fen=amount_fen)


@pytest.mark.parametrize("what, amount_fen, balance_fen, spent_today_fen, reason", [
    ("55.00 on the card, 1,000.00 asked, nothing spent today", 100_000, 5_500, 0, Reason.INSUFFICIENT_FUNDS),
    ("55.00 on the card, 60.00 asked, over today's limit too", 6_000, 5_500, 28_000, Reason.INSUFFICIENT_FUNDS),
    ("enough on the card, over today's limit", 6_000, 50_000, 28_000, Reason.OVER_DAILY_LIMIT),
    ("enough on the card, within today's limit", 6_000, 50_000, 0, Reason.OK),
])
def test_the_balance_is_checked_before_the_daily_limit(what, amount_fen, balance_fen, spent_today_fen, reason):
    seen = view(card=card_view(fen=balance_fen), station=FISHING, spent_today_fen=spent_today_fen)
    assert decide(charge(amount_fen), seen).reason is reason, what
