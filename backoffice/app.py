"""The console's web application (FastAPI, server-rendered Jinja2 pages, a JSON API beside them).

Every route names the page it belongs to and is checked on the server against the user's role
(``backoffice.roles``) before anything is read; the API answers 401/403 as JSON, pages redirect to
the login or show a 403 page. Every POST carries a CSRF token: the session's for a logged-in user,
a double-submit cookie for the login form itself. The books are read through a read-only
connection opened for the request; the console's own database holds users, sessions and the audit.
"""

from pathlib import Path
import secrets

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from ledger.park_home import ParkHome
from ledger.reports.catalog import REPORTS, make_scope, run_report
from ledger.reports.dashboard import dashboard as read_dashboard
from ledger.reports.export import render
from ledger.reports.query import ReportError, open_read_only
from ledger.reports.takings import DIMENSIONS, PERIODS
from protocol.money import format_fen

from .accounts import ConsoleStore, Session
from .admin import install_admin
from .day_close import install_day_close
from .errors import AccountLocked, LoginRefused, TooManyAttempts
from .labels import LANGUAGES, translator
from .money_out import install_money_out
from .roles import home_page, may_run_report, may_see, stations_for
from .views import dashboard_json, report_chart, report_json

HERE = Path(__file__).parent
SESSION_COOKIE = "fieldpos_session"
LOGIN_CSRF_COOKIE = "fieldpos_login_csrf"
LANG_COOKIE = "fieldpos_lang"
# Report query parameters a page or API passes on to the report (all strings, checked by the report).
REPORT_PARAMETERS = ("day", "from", "to", "by", "period", "receipt", "card", "phone", "contractor")
EXPORT_TYPES = {"csv": "text/csv; charset=utf-8",
                "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "pdf": "application/pdf"}
# Pages may load only this site's own scripts and styles: no inline script, no framing.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class NotLoggedIn(Exception):
    pass


class Forbidden(Exception):
    pass


def create_app(home: Path) -> FastAPI:
    home = Path(home)
    accounts = ConsoleStore.in_home(home)
    # Where the books are: ledger.db, or the postgresql:// URL of a PostgreSQL park (store.url). Reads
    # open it read-only (SQLite mode=ro; PostgreSQL default_transaction_read_only).
    ledger_db = ParkHome(home).store_location
    app = FastAPI(title="fieldpos console", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["yuan"] = lambda fen: "" if fen is None else format_fen(fen, grouped=True)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    def is_api(request: Request) -> bool:
        return request.url.path.startswith("/api/")

    @app.exception_handler(NotLoggedIn)
    async def not_logged_in(request: Request, _):
        if is_api(request):
            return JSONResponse({"error": "NOT_LOGGED_IN"}, status_code=401)
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, error):
        if is_api(request):
            return JSONResponse({"error": "FORBIDDEN", "detail": str(error)}, status_code=403)
        return page(request, "error.html", {"status": 403, "message": str(error)}, status_code=403)

    def address(request: Request) -> str:
        return request.client.host if request.client else ""

    def session_of(request: Request) -> Session:
        session = accounts.session(request.cookies.get(SESSION_COOKIE))
        if session is None:
            raise NotLoggedIn()
        request.state.session = session
        return session

    def require(request: Request, page_name: str) -> Session:
        session = session_of(request)
        if not may_see(session.user, page_name):
            raise Forbidden(f"{session.user.role} may not see {page_name}")
        return session

    def page(request: Request, template: str, context: dict, status_code: int = 200):
        lang = request.cookies.get(LANG_COOKIE, "zh")
        session = getattr(request.state, "session", None)
        base = {"t": translator(lang), "lang": lang, "session": session, "user": session.user if session else None,
                "may_see": (lambda name: session is not None and may_see(session.user, name)), "path": request.url.path}
        return templates.TemplateResponse(request, template, {**base, **context}, status_code=status_code)

    def set_cookie(response: Response, request: Request, name: str, value: str, *, max_age: int | None = None) -> None:
        response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="strict", path="/",
                            secure=request.url.scheme == "https")

    # ------------------------------------------------------------------ logging in and out
    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, error: str = ""):
        token = secrets.token_urlsafe(32)
        response = page(request, "login.html", {"csrf": token, "error": error if error in ("bad_login", "locked", "rate_limited") else ""})
        set_cookie(response, request, LOGIN_CSRF_COOKIE, token)
        return response

    @app.post("/login")
    async def log_in(request: Request):
        form = await request.form()
        cookie_token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not cookie_token or not secrets.compare_digest(cookie_token, str(form.get("csrf", ""))):
            return page(request, "error.html", {"status": 403, "message": "CSRF check failed"}, status_code=403)
        try:
            token, session = accounts.log_in(str(form.get("username", ""))[:64], str(form.get("password", ""))[:256],
                                             address=address(request))
        except TooManyAttempts:
            return RedirectResponse("/login?error=rate_limited", status_code=303)
        except AccountLocked:
            return RedirectResponse("/login?error=locked", status_code=303)
        except LoginRefused:
            return RedirectResponse("/login?error=bad_login", status_code=303)
        response = RedirectResponse(home_page(session.user), status_code=303)
        set_cookie(response, request, SESSION_COOKIE, token)
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
        return response

    async def checked_form(request: Request, session: Session):
        form = await request.form()
        if not secrets.compare_digest(session.csrf_token, str(form.get("csrf", ""))):
            raise Forbidden("CSRF check failed")
        return form

    @app.post("/logout")
    async def log_out(request: Request):
        session = session_of(request)
        await checked_form(request, session)
        accounts.log_out(request.cookies.get(SESSION_COOKIE, ""), address=address(request))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @app.get("/lang")
    def choose_language(request: Request, to: str = "zh", next: str = "/"):
        target = next if next.startswith("/") and not next.startswith("//") else "/"
        response = RedirectResponse(target, status_code=303)
        set_cookie(response, request, LANG_COOKIE, to if to in LANGUAGES else "zh", max_age=365 * 86400)
        return response

    # ------------------------------------------------------------------ pages
    @app.get("/")
    def root(request: Request):
        return RedirectResponse(home_page(session_of(request).user), status_code=303)

    @app.get("/home", response_class=HTMLResponse)
    def home_view(request: Request):
        session_of(request)
        return page(request, "home.html", {})

    def read_board(session: Session, *, with_money: bool):
        db = open_read_only(ledger_db)
        try:
            return read_dashboard(db, stations=session.user.station_scope, with_money=with_money)
        finally:
            db.close()

    @app.get("/dashboard", response_class=HTMLResponse)
    def dashboard_view(request: Request):
        session = require(request, "dashboard")
        board = read_board(session, with_money=True)
        return page(request, "dashboard.html", {"board": board, "data": dashboard_json(board)})

    @app.get("/api/dashboard")
    def dashboard_api(request: Request):
        return dashboard_json(read_board(require(request, "dashboard"), with_money=True))

    @app.get("/terminals", response_class=HTMLResponse)
    def terminals_view(request: Request):
        board = read_board(require(request, "terminals"), with_money=False)
        return page(request, "terminals.html", {"board": board})

    @app.get("/api/terminals")
    def terminals_api(request: Request):
        return dashboard_json(read_board(require(request, "terminals"), with_money=False))

    @app.get("/reports", response_class=HTMLResponse)
    def reports_index(request: Request):
        session = require(request, "reports")
        kinds = [kind for kind in REPORTS.values() if may_run_report(session.user, kind.name)]
        return page(request, "reports.html", {"kinds": kinds})

    def run(request: Request, name: str):
        session = require(request, "reports")
        if name not in REPORTS:
            raise Forbidden(f"no report {name}")
        if not may_run_report(session.user, name):
            raise Forbidden(f"{session.user.role} may not see the {name} report")
        query = request.query_params
        try:
            stations = stations_for(session.user, [s for s in query.getlist("station") if s] or None)
        except PermissionError as error:
            raise Forbidden(str(error)) from None
        db = open_read_only(ledger_db)
        try:
            scope = make_scope(db, day=query.get("day") or None, from_day=query.get("from") or None,
                               to_day=query.get("to") or None, stations=stations)
            return session, run_report(db, name, scope, **{key: query.get(key) or None for key in REPORT_PARAMETERS[3:]})
        finally:
            db.close()

    @app.get("/reports/{name}", response_class=HTMLResponse)
    def report_view(request: Request, name: str):
        try:
            session, report = run(request, name)
        except ReportError as error:
            return page(request, "report.html", {"kind": REPORTS[name], "report": None, "error": str(error),
                                                 "query": request.query_params, "dimensions": DIMENSIONS,
                                                 "periods": PERIODS}, status_code=400)
        # A statement paid already offers no "Mark paid": paying it again is refused anyway (ALREADY_PAID).
        is_paid = name == "contractor" and dict(report.tables[0].rows).get("paid 已付款", 0) > 0
        return page(request, "report.html", {"kind": REPORTS[name], "report": report, "error": "",
                                             "statement_paid": is_paid,
                                             "chart": report_chart(report), "query": request.query_params,
                                             "export_query": str(request.query_params), "dimensions": DIMENSIONS,
                                             "periods": PERIODS})

    @app.get("/reports/{name}/export")
    def report_export(request: Request, name: str, format: str = "csv"):
        require(request, "reports")  # who asks is checked before what they ask for
        if format not in EXPORT_TYPES:
            return JSONResponse({"error": "BAD_FORMAT", "detail": "format is csv, xlsx or pdf"}, status_code=400)
        try:
            session, report = run(request, name)
        except ReportError as error:
            return JSONResponse({"error": error.code, "detail": str(error)}, status_code=400)
        accounts.record(session.user.username, "report.export", f"{name}.{format}", None,
                        {"query": str(request.query_params)}, address=address(request))
        return Response(render(report, format), media_type=EXPORT_TYPES[format],
                        headers={"Content-Disposition": f'attachment; filename="{name}.{format}"'})

    @app.get("/api/reports/{name}")
    def report_api(request: Request, name: str):
        try:
            _, report = run(request, name)
        except ReportError as error:
            return JSONResponse({"error": error.code, "detail": str(error)}, status_code=400)
        return report_json(report)

    @app.get("/audit", response_class=HTMLResponse)
    def audit_view(request: Request):
        require(request, "audit")
        return page(request, "audit.html", {"entries": accounts.audit_entries()})

    @app.get("/api/audit")
    def audit_api(request: Request):
        require(request, "audit")
        keys = ("audit_id", "time_ms", "actor", "action", "target", "before", "after", "address")
        return [dict(zip(keys, row)) for row in accounts.audit_entries()]

    @app.get("/users", response_class=HTMLResponse)
    def users_view(request: Request):
        require(request, "users")
        return page(request, "users.html", {"users": accounts.users()})

    # The day-end close (日结): its own module, the same helpers.
    install_day_close(app, ledger_db=ledger_db, accounts=accounts, page=page, require=require,
                      checked_form=checked_form, address=address)
    # The administration: its own module, the same role, CSRF and audit helpers as every page here.
    install_admin(app, home=home, ledger_db=ledger_db, accounts=accounts, page=page, require=require,
                  checked_form=checked_form, address=address)
    # Paying contractors' statements and sending members notices: their own module, the same helpers.
    install_money_out(app, ledger_db=ledger_db, accounts=accounts, page=page, require=require,
                      checked_form=checked_form, address=address)
    return app
