"""Business days and the day-end close (日结): what closing a day may refuse, and the instants a
business day spans in the park's time zone. ``Store.close_business_day`` does the closing and
``Store.booking_day`` sends every later booking to the next open day."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from .errors import LedgerError


class DayCloseRefused(LedgerError):
    """A business day cannot be closed as asked."""

    code = "DAY_CLOSE_REFUSED"


class DayAlreadyClosed(DayCloseRefused):
    """The business day was closed before; a closed day stays closed."""

    code = "DAY_ALREADY_CLOSED"


class DayNotBegun(DayCloseRefused):
    """The business day lies in the future: there is nothing in it to close."""

    code = "DAY_NOT_BEGUN"


class ShiftsStillOpen(DayCloseRefused):
    """Shifts that began on or before the day are still open: their cashiers have not counted their
    drawers, and their takings would straddle the close. ``shifts``: (terminal, staff id, opening
    seq, opened ms) of each."""

    code = "SHIFTS_STILL_OPEN"

    def __init__(self, shifts):
        self.shifts = list(shifts)
        names = ", ".join(f"{terminal} ({staff})" for terminal, staff, _, _ in self.shifts)
        super().__init__(f"{shifts_still_open(len(self.shifts))}: {names}. Have them handed over (交班), "
                         f"or close the day with --force to end them uncounted")


def shifts_still_open(count: int) -> str:
    return f"{count} shift is still open" if count == 1 else f"{count} shifts are still open"


def day_end_ms(business_day: str, time_zone: str, cutoff_minutes: int) -> int:
    """The instant ``business_day`` ends: the next calendar day's cut-off (04:00 by default), in the
    park's time zone (the inverse of ``Store.business_day``)."""
    next_day = date.fromisoformat(business_day) + timedelta(days=1)
    local = datetime.combine(next_day, time(), ZoneInfo(time_zone)) + timedelta(minutes=cutoff_minutes)
    return int(local.timestamp() * 1000)


def next_day(business_day: str) -> str:
    return (date.fromisoformat(business_day) + timedelta(days=1)).isoformat()


def first_open_day(db, park_id: str, business_day: str) -> str:
    """``business_day``, or when it has been closed, the next day still open: the day a booking made
    now goes to (``Store.booking_day``'s rule, read through any connection — the reports' read-only one)."""
    while db.execute("SELECT 1 FROM business_day_close WHERE park_id = ? AND business_day = ?",
                     (park_id, business_day)).fetchone() is not None:
        business_day = next_day(business_day)
    return business_day


def local_time_text(time_ms: int, time_zone: str) -> str:
    return datetime.fromtimestamp(time_ms / 1000, ZoneInfo(time_zone)).strftime("%Y-%m-%d %H:%M")
