"""Staff at a terminal: log in (open a shift), log out, and read a station's takings."""

from dataclasses import replace

from protocol.kinds import KINDS
from protocol.messages import ShiftClose, ShiftHandover, ShiftOpen, ShiftSlip, SlipLine, StationReport, StationReportReply
from protocol.reasons import Reason

from ..shifts import after_wrong_pin, check_staff
from ..shift_totals import CASH_ACCOUNT, cash_float_of
from .decision import APPROVED, Alert, Answer, Decision, Posting, ShiftChange, View, decline
from .members import check_asking_staff

# Who may read a station's takings.
REPORT_ROLES = KINDS[StationReport.TYPE].staff_roles
# Where a blind count's difference goes: positive when the drawer held more than the books said
# (长款, over), negative when it held less (短款, short). Finance clears it; the ledger only books it.
CASH_OVER_SHORT_ACCOUNT = "cash_over_short"


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


def gather_shift_handover(request: ShiftHandover, store, terminal, now_ms: int, pins) -> View:
    shift = store.open_shift_of(request.terminal)
    if shift is None:
        return View(terminal=terminal, pins=pins)
    staff_id, open_seq, opened_ms = shift
    return View(terminal=terminal, pins=pins, shift_staff=staff_id, shift_opened_at=open_seq, shift_opened_ms=opened_ms,
                shift_totals=store.shift_totals(request.park, request.terminal, open_seq, request.seq),
                cash_float_fen=cash_float_of(store.db, request.park, terminal.station_id),
                business_day=store.booking_day(request.park, now_ms))


def shift_handover(request: ShiftHandover, view: View) -> Decision:
    """交班: close the shift and answer with its slip. With a blind count, the difference between the
    cash counted and the cash expected (the station's opening float and the shift's net cash) is
    booked between the cash drawer's account and cash_over_short, so the drawer's account then says
    what was really there."""
    if view.shift_staff is None or view.shift_staff != request.operator:
        return decline(Reason.UNKNOWN_STAFF)  # no shift open (a park that requires none): nothing to hand over
    totals, counted = view.shift_totals, request.counted_fen
    # The drawer opened with the station's float in it: it is counted with the takings, so it is expected too.
    expected = view.cash_float_fen + totals.cash_expected_fen
    over_short = None if counted is None else counted - expected
    postings = () if not over_short else (Posting(CASH_ACCOUNT, "fen", -over_short),
                                          Posting(CASH_OVER_SHORT_ACCOUNT, "fen", over_short))
    slip = {
        "staff": view.shift_staff, "opened_ms": view.shift_opened_ms, "business_day": view.business_day,
        "kinds": tuple(SlipLine(name=name, count=count, fen=fen) for name, count, fen in totals.kinds),
        "tenders": tuple(SlipLine(name=name, count=count, fen=fen) for name, count, fen in totals.tenders),
        "voids_count": totals.voids_count, "voids_fen": totals.voids_fen,
        "refunds_count": totals.refunds_count, "refunds_fen": totals.refunds_fen,
        "cash_expected_fen": expected, "cash_counted_fen": counted, "cash_over_short_fen": over_short,
    }
    return Decision(reason=Reason.OK, postings=postings, amount_fen=abs(over_short or 0), answer=Answer(ShiftSlip, slip),
                    shift=ShiftChange(request.terminal, request.seq, closed_how="handover",
                                      cash_expected_fen=expected, cash_counted_fen=counted))


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
    ShiftHandover.TYPE: (gather_shift_handover, shift_handover),
    StationReport.TYPE: (gather_station_report, station_report),
}
