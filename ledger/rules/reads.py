"""The reads several rules' ``gather`` functions share. Reads only: nothing here writes.

A gather reads what its rule may look at, before the rule runs, and no more than the rule's path
needs: a charge on a temporary card reads the card, its spend today, its limits, whether it was
superseded and the station (kept for the batch), as it did before rules were pure.
"""

from protocol.kinds import KINDS
from protocol.messages import CardKind, CardState

from .common import limits_kind
from .decision import CardView


def card_reads(request, store, now_ms: int, card: CardView | None) -> dict:
    """The View fields the common checks and the notification need for ``card``: its limits (and a
    sale's spend today) when its kind runs the limits check, and a member card's member when its
    kind tells members."""
    kind = KINDS[request.TYPE]
    found: dict = {"card": card}
    card_kind = limits_kind(request) or (card.kind if card is not None else None)
    if kind.runs("limits") and card_kind is not None:
        if kind.is_sale:
            found["spent_today_fen"] = store.spent_today(request.park, request.card.account,
                                                         store.booking_day(request.park, now_ms))
        found["limits"] = store.card_limits(request.park, card_kind)
    if kind.notifies_member and card is not None and card.kind == CardKind.MEMBER:
        found["member"] = found["member_to_tell"] = store.member(request.park, request.card.no)
    return found


def block_reason(store, park_id: str, card: CardView | None) -> str | None:
    """Why ``card`` is blocked (LOST, OFFLINE_OVERDRAFT), or None when it is not."""
    if card is None or card.state != CardState.BLOCKED:
        return None
    return store.block_reason(park_id, card.card_no, card.issuance)


def supervisor(store, request):
    return store.staff_by_card(request.park, request.supervisor_card_no)
