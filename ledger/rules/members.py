"""Member cards: open one, move money between two, replace a lost one, unlock a PIN, find a member's
cards by phone number."""

from dataclasses import replace

from protocol.kinds import KINDS
from protocol.messages import (MAX_LOOKUP_CARDS, CardKind, CardReplace, CardState, MemberCard, MemberLookup,
                               MemberLookupReply, MemberOpen, MemberTransfer, PinUnlock)
from protocol.money import card_account
from protocol.reasons import Reason

from .cards import decide_card_issue
from .decision import APPROVED, Answer, CardView, Decision, NewCard, NewMember, Posting, View, decline
from .common import check_member_pin, check_supervisor
from .reads import block_reason, card_reads, supervisor

# Who may find a member's cards by phone number.
LOOKUP_ROLES = KINDS[MemberLookup.TYPE].staff_roles


# ---------------------------------------------------------------- pure posting rules
def decide_transfer(old: CardView, new_account: str) -> Decision:
    """补卡: everything on the lost card moves to the new one (the old account keeps its history)."""
    old_account = card_account(old.card_no, old.issuance)
    moves = []
    for asset, amount in (("fen", old.fen), ("bonus", old.bonus), ("points", old.points)):
        moves += [Posting(old_account, asset, -amount), Posting(new_account, asset, amount)]
    return Decision(reason=Reason.OK, amount_fen=old.fen, postings=tuple(p for p in moves if p.amount != 0))


def check_asking_staff(request, staff, roles: frozenset) -> Reason | None:
    """For requests that read rather than book: ``card`` is the asking staff member's own card,
    and their role is checked here, whatever the terminal shows and whether or not a shift is open."""
    if staff is None or staff.staff_id != request.operator or not staff.is_active:
        return Reason.UNKNOWN_STAFF
    return None if staff.role in roles else Reason.ROLE_NOT_ALLOWED


# ---------------------------------------------------------------- the kinds' rules
def gather_member_open(request: MemberOpen, store, terminal, now_ms: int, pins) -> View:
    card = store.card(request.park, request.card.no)
    _, _, no_pin_limit_fen = store.member_settings(request.park)
    return View(terminal=terminal, pins=pins, no_pin_limit_fen=no_pin_limit_fen, **card_reads(request, store, now_ms, card))


def member_open(request: MemberOpen, view: View) -> Decision:
    decision = decide_card_issue(request, view.card)
    if not decision.is_approved:
        return decision
    return replace(decision, new_member=NewMember(request.card.no, request.member_name, request.phone,
                                                  view.pins.new_hash(), view.no_pin_limit_fen))


def gather_member_transfer(request: MemberTransfer, store, terminal, now_ms: int, pins) -> View:
    card = store.card(request.park, request.card.no)
    found = card_reads(request, store, now_ms, card)
    if card is not None and card.kind == CardKind.MEMBER:
        found |= {"other_card": store.card(request.park, request.to_card_no, request.to_issuance),
                  "park_rules": store.park_rules(request.park), "member_limits": store.card_limits(request.park, CardKind.MEMBER.value)}
    return View(terminal=terminal, pins=pins, allows_transfer=store.allows_member_transfer(request.park), **found)


def member_transfer(request: MemberTransfer, view: View) -> Decision:
    if not view.allows_transfer or view.card.kind != CardKind.MEMBER:
        return decline(Reason.KIND_NOT_ALLOWED)
    if request.to_card_no == request.card.no:
        return decline(Reason.SAME_CARD)  # −x and +x on one account: nothing to move
    target = view.other_card
    if target is None or target.kind != CardKind.MEMBER or target.state != CardState.ACTIVE:
        return decline(Reason.UNKNOWN_CARD)
    pin = check_member_pin(request, view, always=True)
    if not pin.is_approved:
        return pin
    if view.card.fen < request.amount_fen:
        return decline(Reason.INSUFFICIENT_FUNDS).after(pin)
    if target.fen + request.amount_fen > view.member_limits.max_balance_fen:
        return decline(Reason.OVER_BALANCE_LIMIT).after(pin)
    return Decision(reason=Reason.OK, amount_fen=request.amount_fen, postings=(
        Posting(request.card.account, "fen", -request.amount_fen),
        Posting(card_account(target.card_no, target.issuance), "fen", request.amount_fen))).after(pin)


def gather_card_replace(request: CardReplace, store, terminal, now_ms: int, pins) -> View:
    old = store.card(request.park, request.from_card_no, request.from_issuance)
    found = card_reads(request, store, now_ms, store.card(request.park, request.card.no))
    # The new card's member is the lost card's, copied when the replacement is booked.
    member = store.member(request.park, request.from_card_no)
    found |= {"member": member, "member_to_tell": member}
    return View(terminal=terminal, pins=pins, other_card=old, other_block_reason=block_reason(store, request.park, old),
                supervisor=supervisor(store, request), **found)


def card_replace(request: CardReplace, view: View) -> Decision:
    new_card, old = view.card, view.other_card
    if new_card is not None and new_card.state != CardState.RETURNED:
        return decline(Reason.CARD_IN_USE)
    if old is None or old.kind != CardKind.MEMBER or old.issuance != request.from_issuance:
        return decline(Reason.UNKNOWN_CARD)
    if old.state != CardState.BLOCKED or view.other_block_reason != "LOST":
        return decline(Reason.KIND_NOT_ALLOWED)  # only a card reported lost is replaced
    if request.card.issuance != (1 if new_card is None else new_card.issuance + 1):
        return decline(Reason.OLD_ISSUANCE)
    second = check_supervisor(view)
    if not second.is_approved:
        return second
    return replace(decide_transfer(old, request.card.account),
                   new_card=NewCard(request.card.no, request.card.issuance, request.card.uid, CardKind.MEMBER.value, 0),
                   copy_member=(request.from_card_no, request.card.no)).after(second)


def gather_pin_unlock(request: PinUnlock, store, terminal, now_ms: int, pins) -> View:
    found = card_reads(request, store, now_ms, store.card(request.park, request.card.no))
    if "member" not in found:
        found["member"] = store.member(request.park, request.card.no)
    return View(terminal=terminal, pins=pins, staff=store.staff_by_card(request.park, request.card.no),
                supervisor=supervisor(store, request), **found)


def pin_unlock(request: PinUnlock, view: View) -> Decision:
    member, staff = view.member, view.staff
    if member is None and staff is None:
        return decline(Reason.UNKNOWN_CARD)
    second = check_supervisor(view)
    if not second.is_approved:
        return second
    return Decision(reason=Reason.OK, member_wrong_pins=None if member is None else (request.card.no, 0),
                    staff_wrong_pins=() if staff is None else ((staff.staff_id, 0),)).after(second)


def gather_member_lookup(request: MemberLookup, store, terminal, now_ms: int, pins) -> View:
    cards = tuple(MemberCard(no=no, issuance=issuance, uid=uid, name=name, state=state, fen=fen, bonus=bonus, points=points)
                  for no, issuance, uid, name, state, fen, bonus, points in
                  store.member_cards_by_phone(request.park, request.phone, MAX_LOOKUP_CARDS))
    return View(terminal=terminal, pins=pins, staff=store.staff_by_card(request.park, request.card.no), member_cards=cards)


def member_lookup(request: MemberLookup, view: View) -> Decision:
    """A member's cards by phone number, for the desk's loss report and replacement."""
    if (refusal := check_asking_staff(request, view.staff, LOOKUP_ROLES)) is not None:
        return decline(refusal)
    return replace(APPROVED, answer=Answer(MemberLookupReply, {"cards": view.member_cards}))


RULES = {
    MemberOpen.TYPE: (gather_member_open, member_open),
    MemberTransfer.TYPE: (gather_member_transfer, member_transfer),
    CardReplace.TYPE: (gather_card_replace, card_replace),
    PinUnlock.TYPE: (gather_pin_unlock, pin_unlock),
    MemberLookup.TYPE: (gather_member_lookup, member_lookup),
}
