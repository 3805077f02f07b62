"""What each console role may see: one table, checked on the server for every page and API.

- admin: everything, the users and the audit log.
- finance: every report and the dashboard, park-wide.
- station_supervisor: the dashboard and the station reports, only for their own stations; never
  the park-wide ones (liabilities, members, card lookups, contractor statements).
- technician: terminals and alerts, never an amount of money.
- front_desk: no reports (the desk does not see the stations' takings) and no administration but
  the cards: find a card or a member's cards, its history, block and unblock.
"""

from ledger.reports.catalog import REPORTS

from .accounts import ConsoleUser

PAGES = {
    "dashboard": frozenset({"admin", "finance", "station_supervisor"}),
    "terminals": frozenset({"admin", "finance", "station_supervisor", "technician"}),
    "reports": frozenset({"admin", "finance", "station_supervisor"}),
    # The day-end close locks a business day for good (backoffice.day_close).
    "day_close": frozenset({"admin", "finance"}),
    "audit": frozenset({"admin"}),
    "users": frozenset({"admin"}),
    # Marking a contractor's statement paid books money out (backoffice.money_out); notices go to members.
    "settlement": frozenset({"admin", "finance"}),
    "notices": frozenset({"admin"}),
    # The administration (backoffice.admin). The park's settings and its staff are the admin's; a
    # technician provisions and retires terminals; the desk finds cards and blocks or unblocks them
    # (a member on the phone), but sees no settings; a balance adjustment is asked for and approved
    # (by another user) in admin or finance.
    "admin": frozenset({"admin", "technician"}),
    "admin_park": frozenset({"admin"}),
    "admin_staff": frozenset({"admin"}),
    "admin_terminals": frozenset({"admin", "technician"}),
    "cards": frozenset({"admin", "finance", "front_desk"}),
    "cards_block": frozenset({"admin", "front_desk"}),
    "adjustments": frozenset({"admin", "finance"}),
}


def may_see(user: ConsoleUser, page: str) -> bool:
    return user.role in PAGES[page]


def may_run_report(user: ConsoleUser, name: str) -> bool:
    if name not in REPORTS or not may_see(user, "reports"):
        return False
    return not (REPORTS[name].is_park_wide and user.station_scope is not None)


def home_page(user: ConsoleUser) -> str:
    for page in ("dashboard", "terminals"):
        if may_see(user, page):
            return f"/{page}"
    return "/home"


def stations_for(user: ConsoleUser, asked: list[str] | None) -> tuple[str, ...] | None:
    """The stations a report covers: what was asked, within the user's scope. None: all of them.
    Asking for a station outside the scope is a PermissionError (a 403), never a silent empty report."""
    scope = user.station_scope
    if scope is None:
        return tuple(asked) if asked else None
    if not asked:
        return scope
    outside = [station for station in asked if station not in scope]
    if outside:
        raise PermissionError(f"station {', '.join(outside)} is not one of yours")
    return tuple(asked)
