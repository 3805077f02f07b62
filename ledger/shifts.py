"""Pure rules for staff acting on a terminal: who may send what with their shift open, and who may
log in where (no I/O; the PIN is checked by the caller). Staff and terminals are the store's
``StaffView`` and ``TerminalView``."""

from protocol.kinds import KINDS, STAFF_ROLES, kinds_for_role, terminal_kind_of
from protocol.messages import Hello, ShiftOpen
from protocol.reasons import Reason

from .pins import MAX_WRONG_PINS

# Which roles may open a shift on which kind of terminal. Supervisors may stand in anywhere.
ROLES_BY_TERMINAL_KIND = {
    "station": frozenset({"cashier", "rental", "supervisor"}),
    "front_desk": frozenset({"front_desk", "supervisor"}),
    "rental": frozenset({"rental", "supervisor"}),
    "tap": frozenset(),  # unattended: no one logs in (protocol.kinds.terminal_kind_of)
}


# What each role may do, enforced on every request from a terminal where that staff member's shift
# is open (the terminal's own allowed kinds apply on top). Derived from the request kinds'
# declarations (protocol.kinds): finance and admins read reports, everyone may end their shift.
ROLE_KINDS = {role: kinds_for_role(role) for role in STAFF_ROLES}
# Requests that never need a shift: logging in itself, and sales that already happened offline
# (the shift may have ended by the time they upload); and hello, which is no request kind.
SHIFTLESS_KINDS = frozenset(kind.type for kind in KINDS.values() if not kind.needs_shift) | {Hello.TYPE}


def check_operator(kind: str, operator: str, shift: tuple[str, str] | None, *, requires_shift: bool,
                   terminal=None) -> Reason | None:
    """Roles enforced by the ledger, not only hidden in a UI: the operator on a request must be the
    staff member whose shift is open on that terminal, and their role must allow the request. A tap
    (unattended: no shift can open on it) names itself as ``operator``; its allowed kinds are its
    whole role."""
    if kind in SHIFTLESS_KINDS:
        return None
    if terminal is not None and terminal_kind(terminal) == "tap":
        return None if operator == terminal.terminal_id else Reason.OPERATOR_NOT_ON_SHIFT
    if shift is None:
        return Reason.NO_SHIFT if requires_shift else None
    staff_id, role = shift
    if operator != staff_id:
        return Reason.OPERATOR_NOT_ON_SHIFT
    if kind not in ROLE_KINDS.get(role, frozenset()):
        return Reason.ROLE_NOT_ALLOWED
    return None


def terminal_kind(terminal) -> str:
    return terminal_kind_of(terminal.allowed_kinds)


def check_staff(request: ShiftOpen, staff, terminal) -> Reason | None:
    """Everything but the PIN itself; None when the PIN is the only thing left to check."""
    if staff is None or not staff.is_active or staff.staff_id != request.operator:
        return Reason.UNKNOWN_STAFF
    if staff.wrong_pins >= MAX_WRONG_PINS:
        return Reason.PIN_LOCKED
    if staff.role not in ROLES_BY_TERMINAL_KIND[terminal_kind(terminal)]:
        return Reason.ROLE_NOT_ALLOWED
    return None


def after_wrong_pin(staff) -> tuple[int, Reason]:
    """(new wrong-PIN count, reason to answer): the try that reaches the limit already says locked."""
    count = staff.wrong_pins + 1
    return count, Reason.PIN_LOCKED if count >= MAX_WRONG_PINS else Reason.WRONG_PIN
