"""The console's pages that reach out of the park: paying a contractor's statement (finance and
admin) and sending members a notice (admin). Both change the park only through the ledger's own
functions (``ledger.settlement``, ``ledger.member_notices``) — the same the command line calls —
after the app's role and CSRF checks, and each change goes to the audit log.
"""

import secrets
import time
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse

from ledger.member_notices import (AUDIENCES, CARD_TYPES, MAX_NOTICE_CHARS, Audience, NoticeRefused, send_notice,
                                   sent_notices)
from ledger.reports.catalog import today
from ledger.reports.query import Period, ReportError, open_read_only, park_of
from ledger.rules.settlement import CHANNELS, SettlementRefused
from ledger.settlement import pay_statement
from ledger.store import Store
from ledger.store_location import open_store as open_store_at
from protocol.errors import FieldposError

# Longest form field the console passes on (a contractor id, a day, a reference).
MAX_FIELD_CHARS = 64


def now_ms() -> int:
    """The console's clock for payments and notices (a test sets it to the morning after a park day)."""
    return int(time.time() * 1000)


def _field(form, name: str) -> str | None:
    value = str(form.get(name, "")).strip()[:MAX_FIELD_CHARS * 8]
    return value or None


def _statement_period(ledger_db, form) -> Period:
    """The business days a form names: its day, or its from/to (default today; a statement of a day
    not over is then refused by the payment)."""
    db = open_read_only(ledger_db)
    try:
        return Period.of(day=_field(form, "day"), from_day=_field(form, "from"), to_day=_field(form, "to"),
                         today=today(db, now_ms()))
    finally:
        db.close()


def install_money_out(app: FastAPI, *, ledger_db, accounts, page, require, checked_form, address) -> None:
    """Add the settlement and notice routes to the console ``app`` (its own helpers: ``page``
    renders, ``require`` checks the role, ``checked_form`` the CSRF token)."""

    def open_store() -> Store:
        return open_store_at(ledger_db)  # a path or the park's postgresql:// URL

    # ------------------------------------------------------------ contractor settlement
    @app.post("/settlement/pay")
    async def settlement_pay(request: Request):
        session = require(request, "settlement")
        form = await checked_form(request, session)
        contractor = _field(form, "contractor") or ""
        back = "/reports/contractor?" + urlencode({key: value for key in ("contractor", "day", "from", "to")
                                                   if (value := _field(form, key))})

        def pay():
            period = _statement_period(ledger_db, form)
            store = open_store()
            try:
                return pay_statement(store, contractor_id=contractor, period=period,
                                     channel=_field(form, "channel") or "bank", reference=_field(form, "reference") or "",
                                     paid_by=f"console:{session.user.username}", now_ms=now_ms())
            finally:
                store.close()

        try:
            done = await run_in_threadpool(pay)
        except (SettlementRefused, ReportError) as error:
            return page(request, "error.html", {"status": 409, "message": str(error), "back": back}, status_code=409)
        paid = done.paid
        accounts.record(session.user.username, "settlement.pay", f"{paid.contractor_id} {paid.period}",
                        {"outstanding_fen": done.statement_total_fen},
                        {"paid_fen": paid.amount_fen, "channel": paid.channel, "reference": paid.reference,
                         "payout_no": paid.payout_no, "txn_id": paid.txn_id, "receipts": paid.receipts},
                        address=address(request))
        return RedirectResponse(back, status_code=303)

    # ------------------------------------------------------------ member notices
    def notices_page(request: Request, *, error: str = "", sent=None, status_code: int = 200):
        db = open_read_only(ledger_db)
        try:
            park_id = park_of(db)[0]
            history = sent_notices(db, park_id)
            stations = [row[0] for row in db.execute("SELECT station_id FROM station WHERE park_id = ? ORDER BY 1",
                                                     (park_id,))]
        finally:
            db.close()
        return page(request, "notices.html", {
            "history": history, "stations": stations, "audiences": AUDIENCES, "card_types": CARD_TYPES,
            "max_chars": MAX_NOTICE_CHARS, "request_key": secrets.token_urlsafe(16), "error": error, "sent": sent},
            status_code=status_code)

    @app.get("/notices", response_class=HTMLResponse)
    def notices_view(request: Request):
        require(request, "notices")
        return notices_page(request)

    @app.post("/notices", response_class=HTMLResponse)
    async def notices_send(request: Request):
        session = require(request, "notices")
        form = await checked_form(request, session)

        def send():
            kind = _field(form, "audience") or "all"
            period = None
            if kind == "visited" and (_field(form, "from") or _field(form, "to")):
                period = _statement_period(ledger_db, {"from": form.get("from", ""), "to": form.get("to", "")})
            audience = Audience(kind, card_type=_field(form, "card_type") if kind == "card-type" else None,
                                station=_field(form, "station") if kind == "visited" else None, period=period)
            store = open_store()
            try:
                return audience, send_notice(store, text=str(form.get("text", ""))[:MAX_NOTICE_CHARS * 2],
                                             audience=audience, sent_by=f"console:{session.user.username}",
                                             now_ms=now_ms(), request_key=_field(form, "request_key"))
            finally:
                store.close()

        try:
            audience, sent = await run_in_threadpool(send)
        except (NoticeRefused, ReportError) as error:
            return notices_page(request, error=str(error), status_code=400)
        except FieldposError as error:  # the store busy or unavailable: nothing was queued
            return notices_page(request, error=str(error), status_code=503)
        if sent.is_new:
            accounts.record(session.user.username, "notice.send", f"notice {sent.notice_id}", None,
                            {"audience": str(audience), "recipients": sent.recipients, "opted_out": sent.opted_out,
                             "text": " ".join(str(form.get("text", "")).split())[:MAX_NOTICE_CHARS]},
                            address=address(request))
        return notices_page(request, sent=sent)

    # The report page's pay form offers these (templates reach them through request.app.state).
    app.state.settlement_channels = CHANNELS
