"""The console's day-end close (日结), for finance and admins: the shifts still open, the business
days closed lately, and the button that closes a day. It closes through ``Store.close_business_day``,
the function ``fieldpos ledger close-day`` calls, after the app's role and CSRF checks; the close goes
to the audit log. A closed day stays closed: there is no reopening, here or anywhere."""

import time
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse

from ledger.days import DayCloseRefused, ShiftsStillOpen, local_time_text
from ledger.reports.catalog import today
from ledger.reports.query import ReportError, open_read_only, park_of, parse_day
from ledger.store_location import open_store

# How many closed days the page lists (the shifts report has them all).
RECENT_CLOSES = 14


def now_ms() -> int:
    """The console's clock for a close (a test moves it)."""
    return int(time.time() * 1000)


def install_day_close(app: FastAPI, *, ledger_db, accounts, page, require, checked_form, address) -> None:
    """Add the day-close page and its button to the console ``app`` (its own helpers: ``page``
    renders, ``require`` checks the role, ``checked_form`` the CSRF token)."""

    def day_close_page(request: Request, *, error: str = "", status_code: int = 200):
        db = open_read_only(ledger_db)
        try:
            park_id, zone, _ = park_of(db)
            open_shifts = [(terminal, staff, local_time_text(opened_ms, zone)) for terminal, staff, opened_ms in db.execute(
                "SELECT terminal_id, staff_id, opened_ms FROM shift WHERE park_id = ? AND close_seq IS NULL "
                "ORDER BY opened_ms", (park_id,))]
            closes = [(day, local_time_text(closed_ms, zone), closed_by, forced) for day, closed_ms, closed_by, forced
                      in db.execute("SELECT business_day, closed_ms, closed_by, forced_shifts FROM business_day_close "
                                    "WHERE park_id = ? ORDER BY business_day DESC LIMIT ?", (park_id, RECENT_CLOSES))]
            current = today(db, now_ms())
        finally:
            db.close()
        return page(request, "day_close.html", {"open_shifts": open_shifts, "closes": closes, "today": current,
                                                "error": error, "done": request.query_params.get("done", "")},
                    status_code=status_code)

    @app.get("/day-close", response_class=HTMLResponse)
    def day_close_view(request: Request):
        require(request, "day_close")
        return day_close_page(request)

    @app.post("/day-close", response_class=HTMLResponse)
    async def day_close(request: Request):
        session = require(request, "day_close")
        form = await checked_form(request, session)
        force = str(form.get("force", "")) == "yes"
        try:
            day = parse_day(str(form.get("day", "")).strip()[:10], "the business day")
        except ReportError as error:
            return day_close_page(request, error=str(error), status_code=400)

        def close():
            store = open_store(ledger_db)  # a path or the park's postgresql:// URL
            try:
                park_id = store.db.execute("SELECT park_id FROM park ORDER BY park_id LIMIT 1").fetchone()[0]
                return store.close_business_day(park_id, day, now_ms(), f"console:{session.user.username}", force=force)
            finally:
                store.close()

        try:
            ended = await run_in_threadpool(close)
        except ShiftsStillOpen as refused:
            return day_close_page(request, error=str(refused), status_code=409)
        except DayCloseRefused as refused:
            return day_close_page(request, error=str(refused), status_code=409)
        accounts.record(session.user.username, "day.close", day, {"closed": False},
                        {"closed": True, "forced": force, "shifts_ended": [f"{terminal} {staff}" for terminal, staff, _, _
                                                                           in ended]},
                        address=address(request))
        return RedirectResponse(f"/day-close?done={quote(day)}", status_code=303)
