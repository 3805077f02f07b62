"""Staff at a terminal: log in (open a shift), log out, and read a station's takings."""

from dataclasses import replace

from protocol.kinds import KINDS
from protocol.messages import ShiftClose, ShiftOpen, StationReport, StationReportReply
from protocol.reasons import Reason

from ..shifts import after_wrong_pin, check_staff
from .decision import APPROVED, Alert, Answer, Decision, ShiftChange, View, decline
from .members import check_asking_staff

# Who may read a station's takings.
REPORT_ROLES = KINDS[StationReport.TYPE].staff_roles


def gather_shift_open(request: ShiftOpen, store, terminal, now_ms: int, pins) -> View:
    return View(terminal=terminal, pins=pins, staff=store.staff_by_card(request.park, request.card.no))


def shift_open(request: ShiftOpen, view: View) -> Decision:
    view.pins.open()  # a PIN block that does not open is refused, whoever the card belongs to
    if (reason := check_staff(request, view.staff, view.terminal)) is not None:
        return decline(reason)
    staff = view.staff
    if view.pins.matches(staff.pin_hash):
        return Decision(reason=Reason.OK, staff_wrong_pins=((staff.staff_id, 0),),
                        shift=ShiftChange(request.terminal, request.seq, opens_for=staff.staff_id))
    count, reason = after_wrong_pin(staff)
    return Decision(reason=reason, staff_wrong_pins=((staff.staff_id, count),),
                    alerts=(Alert("WRONG_PIN", f"staff {staff.staff_id} wrong PIN {count} on {request.terminal}"),))


def gather_shift_close(request: ShiftClose, store, terminal, now_ms: int, pins) -> View:
    return View(terminal=terminal, pins=pins, shift_staff=store.open_shift_staff(request.terminal))


def shift_close(request: ShiftClose, view: View) -> Decision:
    """The shift open on the terminal closes whoever asks; only its own staff member hears OK."""
    reason = Reason.OK if view.shift_staff == request.operator else Reason.UNKNOWN_STAFF
    return Decision(reason=reason, shift=ShiftChange(request.terminal, request.seq))


def gather_station_report(request: StationReport, store, terminal, now_ms: int, pins) -> View:
    return View(terminal=terminal, pins=pins, staff=store.staff_by_card(request.park, request.card.no),
                takings=tuple(store.station_takings(request.park, request.station, request.business_day)))


def station_report(request: StationReport, view: View) -> Decision:
    """Reports go to supervisors, finance and admins only: the asking staff member's role is
    checked here, whatever the terminal shows (a front desk terminal cannot even ask)."""
    if (refusal := check_asking_staff(request, view.staff, REPORT_ROLES)) is not None:
        return decline(refusal)
    count, fen, offline, voids = view.takings
    return replace(APPROVED, answer=Answer(StationReportReply, {
        "station": request.station, "business_day": request.business_day, "sales_count": count, "sales_fen": fen,
        "offline_count": offline, "voids_count": voids}))


RULES = {
    ShiftOpen.TYPE: (gather_shift_open, shift_open),
    ShiftClose.TYPE: (gather_shift_close, shift_close),
    StationReport.TYPE: (gather_station_report, station_report),
}
