"""Pure rules for staff logging in on a terminal (no I/O; the PIN is checked by the caller)."""

from protocol.messages import ShiftOpen
from protocol.reasons import Reason

from .pins import MAX_WRONG_PINS
from .store import StaffView, TerminalView

# Which roles may open a shift on which kind of terminal. Supervisors may stand in anywhere.
ROLES_BY_TERMINAL_KIND = {
    "station": frozenset({"cashier", "rental", "supervisor"}),
    "front_desk": frozenset({"front_desk", "supervisor"}),
}


def terminal_kind(terminal: TerminalView) -> str:
    return "front_desk" if "card_issue" in terminal.allowed_kinds else "station"


def check_staff(request: ShiftOpen, staff: StaffView | None, terminal: TerminalView) -> Reason | None:
    """Everything but the PIN itself; None when the PIN is the only thing left to check."""
    if staff is None or not staff.is_active or staff.staff_id != request.operator:
        return Reason.UNKNOWN_STAFF
    if staff.wrong_pins >= MAX_WRONG_PINS:
        return Reason.PIN_LOCKED
    if staff.role not in ROLES_BY_TERMINAL_KIND[terminal_kind(terminal)]:
        return Reason.ROLE_NOT_ALLOWED
    return None


def after_wrong_pin(staff: StaffView) -> tuple[int, Reason]:
    """(new wrong-PIN count, reason to answer): the try that reaches the limit already says locked."""
    count = staff.wrong_pins + 1
    return count, Reason.PIN_LOCKED if count >= MAX_WRONG_PINS else Reason.WRONG_PIN
