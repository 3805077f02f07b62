"""Each request kind declared once: who may send it, which common card checks it opts out of, and
what the terminal prints or shows for it.

Both ends read these declarations (no I/O here): the ledger derives the kinds a terminal may send,
what each staff role may do, which kinds need a shift and which common card checks run; the
terminal derives its receipt titles, the lines of receipts owed after a crash and the desk's
"done" texts. Every field of ``RequestKind`` is required, so a new kind that forgets one fails at
import (and in tests/test_request_kinds.py), rather than silently inheriting a default.
"""

from dataclasses import dataclass

from .messages import REQUEST_TYPES, Hello

# The checks every request on an existing card makes, in the order they run (the ledger's
# ``postings.check_card`` and ``check_limits``). A kind opts out of one only by naming it.
CARD_CHECKS = (
    "card_known",        # the card number and issuance exist (else UNKNOWN_CARD)
    "issuance_current",  # not an older issuance of a card issued again (else OLD_ISSUANCE)
    "uid_matches",       # the UID read is the one the signed record was issued to (else CARD_UID_MISMATCH)
    "not_blocked",       # not blocked (lost, overdrawn) nor handed back (else CARD_BLOCKED / CARD_RETURNED)
    "limits",            # the card type's balance cap, top-up range and daily spend
)
ALL_CARD_CHECKS = frozenset(CARD_CHECKS)
# A ``tap`` is an unattended tap point (tap/, a MicroPython board): it sells one fixed amount per
# card tap and no staff member ever logs in on it (docs/PROTOCOL.md §5.3).
# A ``rental`` terminal is a rental station's desk (issue 13): deposits, hand-out against a voucher,
# returns; it sells nothing.
TERMINAL_KINDS = ("station", "front_desk", "supervisor", "tap", "rental")
STAFF_ROLES = ("cashier", "rental", "front_desk", "supervisor", "finance", "admin", "technician")

_STATION = frozenset({"station", "supervisor"})
_DESK = frozenset({"front_desk"})
_EVERY_TERMINAL = frozenset(TERMINAL_KINDS)
_SALE_POINTS = _STATION | {"tap"}
_STAFFED = _EVERY_TERMINAL - {"tap"}  # where staff log in: a tap has no keypad nor cashier
_SELLERS = frozenset({"cashier", "rental", "supervisor"})
_DESK_STAFF = frozenset({"front_desk", "supervisor"})
_READERS = frozenset({"supervisor", "finance", "admin"})
_NO_CARD_CHECKS = ALL_CARD_CHECKS
_RENTAL = frozenset({"rental"})
_RENTAL_STAFF = frozenset({"rental", "supervisor"})
_BALANCE_ASKERS = _SELLERS | _DESK_STAFF  # whoever takes a card at a till or desk


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestKind:
    """One request type as both ends treat it. No field has a default, on purpose."""

    type: str                          # the message type (protocol.messages.REQUEST_TYPES)
    terminal_kinds: frozenset          # kinds of terminal provisioned to send it (TERMINAL_KINDS)
    staff_roles: frozenset             # roles that may send it with their shift open (STAFF_ROLES)
    needs_shift: bool                  # False: accepted with no shift open (shifts.SHIFTLESS_KINDS)
    moves_money: bool                  # an approval may post money between accounts
    is_sale: bool                      # a station's sale: counts in its takings and the card's daily spend
    is_booked: bool                    # an approval is recorded as a transaction (ledger verify checks it)
    notifies_member: bool              # a member card's holder is told of it
    takes_ecard: bool                  # ``card`` is the holder's, shown at the till: an e-card comes as its QR
    skips_card_checks: frozenset       # names from CARD_CHECKS this kind opts out of
    receipt_title: str | None          # the receipt's title; None: a sale's own receipt, or no receipt
    receipt_owed_after_crash: bool     # reprinted after a restart when it was approved but not printed
    owed_line: str | None              # the one line of such a reprint; None: the request's own lines
    done_text: str | None              # the desk's screen line when it ends without a receipt

    def __post_init__(self):
        # Checked at import: a typo in an opt-out would otherwise silently run (or skip) a check.
        if self.type not in REQUEST_TYPES or self.type == Hello.TYPE:
            raise ValueError(f"{self.type!r} is not a request type")
        if unknown := self.skips_card_checks - ALL_CARD_CHECKS:
            raise ValueError(f"{self.type}: no common card check named {sorted(unknown)}")
        if unknown := self.terminal_kinds - _EVERY_TERMINAL:
            raise ValueError(f"{self.type}: no terminal kind named {sorted(unknown)}")
        if unknown := self.staff_roles - frozenset(STAFF_ROLES):
            raise ValueError(f"{self.type}: no staff role named {sorted(unknown)}")
        if self.owed_line is not None and not (self.receipt_owed_after_crash and self.receipt_title):
            raise ValueError(f"{self.type}: an owed line needs an owed receipt with a title")

    def runs(self, check: str) -> bool:
        """Whether the common card check named ``check`` runs for this kind."""
        return check not in self.skips_card_checks


_DECLARED = (
    RequestKind(
        type="card_issue", terminal_kinds=_DESK, staff_roles=_DESK_STAFF, needs_shift=True,
        moves_money=True, is_sale=False, is_booked=True, notifies_member=False, takes_ecard=False,
        # A new card, or a returned one issued again: its own rule checks the issuance before it exists.
        skips_card_checks=frozenset({"card_known", "issuance_current", "uid_matches", "not_blocked"}),
        receipt_title="开卡凭证", receipt_owed_after_crash=True, owed_line="开卡 Card and opening", done_text=None,
    ),
    RequestKind(
        type="member_open", terminal_kinds=_DESK, staff_roles=_DESK_STAFF, needs_shift=True,
        moves_money=True, is_sale=False, is_booked=True, notifies_member=False, takes_ecard=False,
        skips_card_checks=frozenset({"card_known", "issuance_current", "uid_matches", "not_blocked"}),
        receipt_title="会员开卡", receipt_owed_after_crash=True, owed_line="会员开卡 Member card", done_text=None,
    ),
    RequestKind(
        type="top_up", terminal_kinds=_DESK, staff_roles=_DESK_STAFF, needs_shift=True,
        moves_money=True, is_sale=False, is_booked=True, notifies_member=True, takes_ecard=True,
        skips_card_checks=frozenset(),
        receipt_title="充值凭证", receipt_owed_after_crash=True, owed_line="充值 Top-up", done_text=None,
    ),
    RequestKind(
        type="charge", terminal_kinds=_SALE_POINTS, staff_roles=_SELLERS, needs_shift=True,
        moves_money=True, is_sale=True, is_booked=True, notifies_member=True, takes_ecard=True,
        skips_card_checks=frozenset(),
        receipt_title=None, receipt_owed_after_crash=True, owed_line=None, done_text=None,
    ),
    RequestKind(
        type="offline_charge", terminal_kinds=_SALE_POINTS, staff_roles=_SELLERS,
        needs_shift=False,  # the shift may have ended by the time it uploads
        moves_money=True, is_sale=True, is_booked=True, notifies_member=False, takes_ecard=True,
        # It already happened: it is booked whatever the card (to the park's loss when it cannot pay).
        skips_card_checks=_NO_CARD_CHECKS,
        receipt_title=None, receipt_owed_after_crash=True, owed_line=None, done_text=None,
    ),
    RequestKind(
        type="void", terminal_kinds=_STATION, staff_roles=_SELLERS, needs_shift=True,
        moves_money=True, is_sale=False, is_booked=True, notifies_member=True, takes_ecard=True,
        skips_card_checks=frozenset({"limits"}),  # it only gives back what a charge took
        receipt_title="撤销凭证", receipt_owed_after_crash=True, owed_line="撤销 Void", done_text=None,
    ),
    RequestKind(
        type="card_return", terminal_kinds=_DESK, staff_roles=_DESK_STAFF, needs_shift=True,
        moves_money=True, is_sale=False, is_booked=True, notifies_member=False, takes_ecard=True,
        skips_card_checks=frozenset({"limits"}),
        receipt_title="退卡凭证", receipt_owed_after_crash=True, owed_line="退卡退款 Refund", done_text=None,
    ),
    RequestKind(
        type="loss_report", terminal_kinds=_DESK, staff_roles=_DESK_STAFF, needs_shift=True,
        moves_money=False, is_sale=False, is_booked=True, notifies_member=False, takes_ecard=False,
        skips_card_checks=frozenset({"limits"}),
        receipt_title=None, receipt_owed_after_crash=False, owed_line=None,
        done_text="已挂失 Reported lost — the card is blocked at every station",
    ),
    RequestKind(
        type="card_unblock", terminal_kinds=_DESK, staff_roles=_DESK_STAFF, needs_shift=True,
        moves_money=False, is_sale=False, is_booked=True, notifies_member=False, takes_ecard=False,
        skips_card_checks=frozenset({"not_blocked", "limits"}),  # it is for a card reported lost
        receipt_title=None, receipt_owed_after_crash=False, owed_line=None,
        done_text="已解挂 Unblocked — the card works again",
    ),
    RequestKind(
        type="card_replace", terminal_kinds=_DESK, staff_roles=_DESK_STAFF, needs_shift=True,
        moves_money=True, is_sale=False, is_booked=True, notifies_member=True, takes_ecard=False,
        # ``card`` is the new card; its own rule checks the lost card named by from_card_no.
        skips_card_checks=_NO_CARD_CHECKS,
        receipt_title="补卡凭证", receipt_owed_after_crash=True, owed_line="补卡 Replacement", done_text=None,
    ),
    RequestKind(
        type="reversal", terminal_kinds=_DESK, staff_roles=_DESK_STAFF, needs_shift=True,
        moves_money=True, is_sale=False, is_booked=True, notifies_member=True, takes_ecard=True,
        skips_card_checks=frozenset({"limits"}),  # it only takes back what a top-up put in
        receipt_title="冲正凭证", receipt_owed_after_crash=True, owed_line="冲正 Reversal", done_text=None,
    ),
    RequestKind(
        type="pin_unlock", terminal_kinds=_DESK, staff_roles=_DESK_STAFF, needs_shift=True,
        moves_money=False, is_sale=False, is_booked=True, notifies_member=True, takes_ecard=False,
        # ``card`` may be a staff card, which is no card in the books: found by number as member or staff.
        skips_card_checks=_NO_CARD_CHECKS,
        receipt_title=None, receipt_owed_after_crash=False, owed_line=None, done_text="密码已解锁 PIN unlocked",
    ),
    RequestKind(
        type="member_transfer", terminal_kinds=_DESK, staff_roles=_DESK_STAFF, needs_shift=True,
        moves_money=True, is_sale=False, is_booked=True, notifies_member=True, takes_ecard=True,
        skips_card_checks=frozenset({"limits"}),  # its own rule checks the receiving card's cap
        receipt_title="转账凭证", receipt_owed_after_crash=True, owed_line="转账 Transfer", done_text=None,
    ),
    RequestKind(
        type="member_lookup", terminal_kinds=_DESK, staff_roles=_DESK_STAFF, needs_shift=True,
        moves_money=False, is_sale=False, is_booked=False, notifies_member=False, takes_ecard=False,
        skips_card_checks=_NO_CARD_CHECKS,  # ``card`` is the asking staff member's card
        receipt_title=None, receipt_owed_after_crash=False, owed_line=None, done_text=None,
    ),
    RequestKind(
        # Read only: a till shows the tapped card's balances. Every common check but the limits runs
        # (nothing is spent), so a lost card or a copy is refused at the tap, before any sale.
        type="card_balance", terminal_kinds=_STAFFED, staff_roles=_BALANCE_ASKERS, needs_shift=True,
        moves_money=False, is_sale=False, is_booked=False, notifies_member=False, takes_ecard=True,
        skips_card_checks=frozenset({"limits"}),
        receipt_title=None, receipt_owed_after_crash=False, owed_line=None, done_text=None,
    ),
    RequestKind(
        type="station_report", terminal_kinds=frozenset({"supervisor"}), staff_roles=_READERS, needs_shift=True,
        moves_money=False, is_sale=False, is_booked=False, notifies_member=False, takes_ecard=False,
        skips_card_checks=_NO_CARD_CHECKS,  # ``card`` is the asking staff member's card
        receipt_title=None, receipt_owed_after_crash=False, owed_line=None, done_text=None,
    ),
    RequestKind(
        type="deposit_card", terminal_kinds=_RENTAL, staff_roles=_RENTAL_STAFF, needs_shift=True,
        moves_money=True, is_sale=False, is_booked=True, notifies_member=False, takes_ecard=True,
        skips_card_checks=frozenset({"limits"}),  # a deposit is held, not spent: no daily spend
        receipt_title="押金凭证", receipt_owed_after_crash=True, owed_line=None, done_text=None,
    ),
    RequestKind(
        type="deposit_desk", terminal_kinds=_RENTAL, staff_roles=_RENTAL_STAFF, needs_shift=True, moves_money=True, is_sale=False, is_booked=True, notifies_member=False, takes_ecard=False,
        skips_card_checks=_NO_CARD_CHECKS,  # ``card`` is the staff member's card; paid in cash or online
        receipt_title="押金凭证", receipt_owed_after_crash=True, owed_line=None, done_text=None,
    ),
    RequestKind(
        type="rental_out", terminal_kinds=_RENTAL, staff_roles=_RENTAL_STAFF, needs_shift=True,
        moves_money=False, is_sale=False, is_booked=True, notifies_member=False, takes_ecard=False,
        skips_card_checks=_NO_CARD_CHECKS,  # ``card`` is the staff member's card; the voucher is the proof
        receipt_title="租赁出借", receipt_owed_after_crash=False, owed_line=None, done_text=None,
    ),
    RequestKind(
        type="offline_rental_out", terminal_kinds=_RENTAL, staff_roles=_RENTAL_STAFF,
        needs_shift=False,  # the shift may have ended by the time it uploads
        moves_money=False, is_sale=False, is_booked=True, notifies_member=False, takes_ecard=False,
        skips_card_checks=_NO_CARD_CHECKS,
        receipt_title="租赁出借", receipt_owed_after_crash=False, owed_line=None, done_text=None,
    ),
    RequestKind(
        # Read only: a rental desk asks which deposits are open for the card that paid (to hand the
        # item out at any desk) or for a scanned voucher (to take the item back at any desk).
        # ``card`` is the staff member's; the rule runs the common checks on ``payer`` itself.
        type="rental_orders", terminal_kinds=_RENTAL, staff_roles=_RENTAL_STAFF, needs_shift=True,
        moves_money=False, is_sale=False, is_booked=False, notifies_member=False, takes_ecard=False,
        skips_card_checks=_NO_CARD_CHECKS,
        receipt_title=None, receipt_owed_after_crash=False, owed_line=None, done_text=None,
    ),
    RequestKind(
        type="rental_return", terminal_kinds=_RENTAL, staff_roles=_RENTAL_STAFF, needs_shift=True,
        moves_money=True, is_sale=False, is_booked=True,
        notifies_member=False, takes_ecard=False,  # its rule tells the renter itself: ``card`` is the staff member's
        skips_card_checks=_NO_CARD_CHECKS,
        receipt_title="租赁归还", receipt_owed_after_crash=True, owed_line=None, done_text=None,
    ),
    RequestKind(
        # Who may log in on which kind of terminal is ledger.shifts.ROLES_BY_TERMINAL_KIND: no
        # shift is open yet, so no role is checked against one.
        type="shift_open", terminal_kinds=_STAFFED, staff_roles=frozenset(), needs_shift=False,
        moves_money=False, is_sale=False, is_booked=False, notifies_member=False, takes_ecard=False,
        skips_card_checks=_NO_CARD_CHECKS,  # ``card`` is the staff card
        receipt_title=None, receipt_owed_after_crash=False, owed_line=None, done_text=None,
    ),
    RequestKind(
        type="shift_close", terminal_kinds=_STAFFED, staff_roles=frozenset(STAFF_ROLES), needs_shift=True,
        moves_money=False, is_sale=False, is_booked=False, notifies_member=False, takes_ecard=False,
        skips_card_checks=_NO_CARD_CHECKS,  # ``card`` is the staff card
        receipt_title=None, receipt_owed_after_crash=False, owed_line=None, done_text=None,
    ),
    RequestKind(
        # 交班: ends the shift with the blind cash count and answers with the shift's slip. It moves
        # money only when the count differs from the books: the difference goes to cash_over_short.
        type="shift_handover", terminal_kinds=_STAFFED, staff_roles=frozenset(STAFF_ROLES), needs_shift=True,
        moves_money=True, is_sale=False, is_booked=True, notifies_member=False, takes_ecard=False,
        skips_card_checks=_NO_CARD_CHECKS,  # ``card`` is the staff card
        receipt_title="交班单", receipt_owed_after_crash=True, owed_line=None, done_text=None,
    ),
)

# In REQUEST_TYPES order, so the lists derived from it keep the order they were written in.
KINDS: dict[str, RequestKind] = {kind.type: kind for kind in sorted(_DECLARED, key=lambda k: list(REQUEST_TYPES).index(k.type))}
if len(KINDS) != len(_DECLARED) or set(KINDS) != set(REQUEST_TYPES) - {Hello.TYPE}:
    raise ImportError("every request type but hello needs exactly one RequestKind")


# ---------------------------------------------------------------- views both ends derive
def kinds_for_terminal(terminal_kind: str) -> tuple[str, ...]:
    """What a terminal of ``terminal_kind`` may send, ``hello`` included (every terminal greets)."""
    return tuple(kind.type for kind in KINDS.values() if terminal_kind in kind.terminal_kinds) + (Hello.TYPE,)


def kinds_for_role(role: str) -> frozenset:
    return frozenset(kind.type for kind in KINDS.values() if role in kind.staff_roles)


def terminal_kind_of(allowed_kinds) -> str:
    """The kind of terminal a list of allowed kinds makes, for logging in: a front desk if it may
    send a kind only a front desk sends (it issues cards); a rental desk if it hands out rentals; a
    tap if no one can log in on it (it may not send shift_open, so it is unattended); else a station."""
    if "rental_out" in allowed_kinds and "card_issue" not in allowed_kinds:
        return "rental"
    if any(KINDS[name].terminal_kinds == _DESK for name in allowed_kinds if name in KINDS):
        return "front_desk"
    return "station" if "shift_open" in allowed_kinds else "tap"
