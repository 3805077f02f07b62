"""The e-card QR on the decision path (issue 17, PROTOCOL.md §5.8): a request whose ``card`` is an
e-card names it by its token (``card.ecard``), which the ledger checks as a terminal does
(protocol.ecard.verify_token: both signatures, park, expiry, freshness) and then against what only
it knows: the device registered for the card and the last time window used. An e-card named
without its token is declined: its device tag is printed in every QR shown, so it proves nothing.

``gather_ecard`` reads (and verifies the signatures, which needs the card-record key and a time);
``check_ecard`` is pure. An offline sale already happened: its token is checked at the time the
terminal approved it, and what would decline an online sale only raises an alert.
"""

from dataclasses import dataclass
import re

from protocol.ecard import ECardError, ECardFault, Presentation, verify_token
from protocol.kinds import KINDS
from protocol.messages import OfflineCharge
from protocol.reasons import Reason

from .decision import Alert, Decision, decline


def check_presentation(presentation: Presentation, registered: tuple[bytes, int, int] | None) -> None:
    """The ledger's own checks of a token whose signatures and freshness held: the device key must
    be the one registered for the card (a credential re-issued to another phone voids the old one),
    and the window must be later than the last one accepted. ``registered`` is Store.ecard's row.
    Raises ECardError (ECARD_WRONG_DEVICE, ECARD_REPLAYED)."""
    if registered is None or registered[0] != presentation.credential.device_key:
        raise ECardError("e-card shown from a device not registered for it", code=ECardFault.WRONG_DEVICE)
    if presentation.window <= registered[2]:
        raise ECardError(f"e-card window {presentation.window} was used already", code=ECardFault.REPLAYED)


# An e-card's number: the portal gives "E" and six digits (ledger.online_members). Only a number of
# that form is looked up as an e-card, so a plastic card's request reads nothing more than before.
ECARD_PREFIX = "E"
_ECARD_NUMBER = re.compile(ECARD_PREFIX + "[0-9]{6}")


def may_be_ecard(card_no: str) -> bool:
    return _ECARD_NUMBER.fullmatch(card_no) is not None


@dataclass(frozen=True, slots=True)
class ECardView:
    """The e-card a request names: its registration (Store.ecard's row, None when the card is no
    e-card) and what checking the request's token found (``presented`` or ``fault``)."""

    registered: tuple | None
    presented: Presentation | None = None
    fault: ECardError | None = None


def gather_ecard(request, store, verify_key, now_ms: int) -> ECardView | None:
    """What the e-card checks need, or None when the request names no e-card and carries no token."""
    card = getattr(request, "card", None)
    if card is None:
        return None
    token = card.ecard
    if token is None and not KINDS[request.TYPE].takes_ecard:
        return None  # a loss report or a lookup may name an e-card by number: no QR to show there
    if token is None and not may_be_ecard(card.no):
        return None
    registered = store.ecard(request.park, card.no, card.issuance)
    if token is None:
        return None if registered is None else ECardView(registered)
    # The offline sale is checked at the time it was approved: it reaches the ledger later.
    at_ms = request.approved_ms if isinstance(request, OfflineCharge) else now_ms
    try:
        if verify_key is None:
            raise ECardError("the ledger has no card-record key to check e-cards with")
        return ECardView(registered, presented=verify_token(token, verify_key, request.park, at_ms))
    except ECardError as error:
        return ECardView(registered, fault=error)


def check_ecard(request, view: ECardView | None) -> Decision | None:
    """None when the request may go on (it names no e-card, or its token holds); else the decline,
    or for an offline sale an approval-to-be that carries the alert (see ``alerts_for_offline``)."""
    token = request.card.ecard
    if token is not None and not KINDS[request.TYPE].takes_ecard:
        return decline(Reason.ECARD_INVALID, f"a {request.TYPE} takes no e-card QR")
    if view is None:
        return None
    if token is None:
        return decline(Reason.ECARD_QR_REQUIRED)
    if view.registered is None:
        return decline(Reason.ECARD_INVALID, f"{request.card.no}/{request.card.issuance} is not an e-card")
    try:
        if view.fault is not None:
            raise view.fault
        check_presentation(view.presented, view.registered)
    except ECardError as error:
        reason = Reason(error.code)
        # A code shown again or from another phone is someone trying a copy: raised, not only declined.
        alerts = ((Alert(reason.value, f"{request.terminal}/{request.seq}: e-card {request.card.account}: "
                         f"{error.args[0]}"),) if reason in _RAISED else ())
        return Decision(reason=reason, detail=str(error.args[0])[:64], alerts=alerts)
    return None


_RAISED = frozenset({Reason.ECARD_REPLAYED, Reason.ECARD_WRONG_DEVICE})


def used_window(request, view: ECardView | None) -> tuple | None:
    """(card no, issuance, window) the booking uses up, so the same QR is refused next time."""
    if view is None or view.presented is None:
        return None
    return (request.card.no, request.card.issuance, view.presented.window)


def offline_alert(request, refusal: Decision) -> Alert:
    """An offline e-card sale the ledger would have declined: booked (it happened), and flagged."""
    return Alert("ECARD_OFFLINE_" + refusal.reason.value.removeprefix("ECARD_"),
                 f"offline sale {request.terminal}/{request.seq} on e-card {request.card.account}: "
                 f"{refusal.reason.value} {refusal.detail}".strip())
