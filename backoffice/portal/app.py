"""The member portal's web application: the back office's stack (FastAPI, server-rendered Jinja2,
its stylesheet and security headers), served beside it for members on their phones.

A member logs in with phone and one-time code (sent through the ledger's pluggable notification
sender: ``send(phone, body)``, ledger.notify); every POST carries the session's CSRF token (the login
form a double-submit cookie, as the console's). Changes to the park go through the ledger: an e-card
is opened and a card reported lost by the portal's own provisioned terminal (ledger.online_members),
so the same decision path and evidence as at the desk. A member sees and acts on only the cards on
their own phone number. Visit-record links are public, unguessable and revocable (revoked: 404).
"""

import io
import json
from pathlib import Path
import re
import secrets
import threading
import time

import segno
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from backoffice.app import LANG_COOKIE, SECURITY_HEADERS
from backoffice.labels import LANGUAGES
from ledger.errors import LedgerError
from ledger.intake import Intake
from ledger.member_notices import NoSuchMember, set_wants_notices, wants_notices
from ledger.notify import LogSender
from ledger.online_members import MemberDesk, bind_card, change_member_pin, move_ecard, unbind_card
from ledger.payments.settings import load_payment_settings
from ledger.topups_online import attach_for, create_top_up_order
from ledger.park_home import ParkHome
from protocol import ecard
from protocol.money import format_fen

from .errors import PortalError
from .labels import kind_namer, translator
from .member_logins import MemberLogins
from .member_reads import day_activities, history, member_cards, park_name
from .visit_image import VisitRecord, render_png

HERE = Path(__file__).parent
SESSION_COOKIE = "fieldpos_member"
LOGIN_CSRF_COOKIE = "fieldpos_member_csrf"
_QR_TEXT = re.compile(r"[A-Z0-9:]+")  # an e-card token: QR alphanumeric characters only


class NotLoggedIn(Exception):
    pass


class NotFound(Exception):
    pass


def create_portal_app(home: Path, *, terminal_id: str | None = None, sender=None, clock_ms=None) -> FastAPI:
    """The portal for the park in ``home``; ``terminal_id`` is the portal's provisioned terminal
    (default ``<park>-portal``), ``sender`` sends the login codes (default: the log)."""
    park_home = ParkHome(Path(home))
    keys = park_home.ledger_keys()
    park_id = keys.park_id
    clock_ms = clock_ms or (lambda: int(time.time() * 1000))
    sender = sender or LogSender()
    logins = MemberLogins.in_home(home)
    bundle = json.loads(park_home.bundle_path(terminal_id or f"{park_id}-portal").read_text())
    store = park_home.open_store()
    desk = MemberDesk(Intake(store, keys, clock_ms=clock_ms), bundle, clock_ms)
    ledger_lock = threading.Lock()  # one Store connection, used by one request at a time
    # Online top-up goes through the park's payment providers (payment-providers.json), when it has any.
    payments = load_payment_settings(Path(home))
    providers = {} if payments is None else {name: p.client() for name, p in payments.providers.items()}

    app = FastAPI(title="fieldpos members", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=HERE.parent / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["yuan"] = lambda fen: format_fen(fen, grouped=True)
    app.state.store = store

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.exception_handler(NotLoggedIn)
    async def not_logged_in(request: Request, _):
        return RedirectResponse("/m/login", status_code=303)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, _):
        return page(request, "portal_message.html", {"message": "404"}, status_code=404)

    def page(request: Request, template: str, context: dict, status_code: int = 200):
        lang = request.cookies.get(LANG_COOKIE, "zh")
        base = {"t": translator(lang), "kind_name": kind_namer(lang), "lang": lang, "path": request.url.path,
                "session": getattr(request.state, "member", None)}
        return templates.TemplateResponse(request, template, {**base, **context}, status_code=status_code)

    def set_cookie(response: Response, request: Request, name: str, value: str, *, max_age: int | None = None):
        response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="strict", path="/",
                            secure=request.url.scheme == "https")

    def member_of(request: Request):
        session = logins.session(request.cookies.get(SESSION_COOKIE), clock_ms())
        if session is None:
            raise NotLoggedIn()
        request.state.member = session
        return session

    async def checked_form(request: Request, session):
        form = await request.form()
        if not secrets.compare_digest(session.csrf_token, str(form.get("csrf", ""))):
            raise NotFound()  # a forged POST learns nothing
        return form

    def changed(change, done: str) -> RedirectResponse:
        """Make ``change`` in the books (one request at a time), then back to the card page saying it
        was done, or with the ledger's refusal code."""
        try:
            with ledger_lock:
                change()
        except LedgerError as error:
            return RedirectResponse(f"/m?error={error.code}", status_code=303)
        return RedirectResponse(f"/m?done={done}", status_code=303)

    def own_card(session, card_no: str):
        with ledger_lock:
            cards = member_cards(store, park_id, session.phone)
        for card in cards:
            if card.card_no == card_no:
                return card
        raise NotFound()

    # ------------------------------------------------------------------ logging in
    @app.get("/m/login", response_class=HTMLResponse)
    def login_form(request: Request, phone: str = "", sent: str = "", error: str = ""):
        token = secrets.token_urlsafe(32)
        response = page(request, "portal_login.html", {"csrf": token, "phone": phone[:15], "sent": sent == "1",
                                                        "error": error if error.isupper() else ""})
        set_cookie(response, request, LOGIN_CSRF_COOKIE, token)
        return response

    async def login_form_data(request: Request):
        form = await request.form()
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not cookie or not secrets.compare_digest(cookie, str(form.get("csrf", ""))):
            raise NotFound()
        return form

    @app.post("/m/code")
    async def send_code(request: Request):
        form = await login_form_data(request)
        phone = str(form.get("phone", ""))[:20].strip()
        try:
            code = logins.new_code(phone, clock_ms())
        except PortalError as error:
            return RedirectResponse(f"/m/login?phone={phone if phone.isdigit() else ''}&error={error.code}", status_code=303)
        sender.send(phone, {"kind": "login_code", "code": code})
        return RedirectResponse(f"/m/login?phone={phone}&sent=1", status_code=303)

    @app.post("/m/login")
    async def log_in(request: Request):
        form = await login_form_data(request)
        phone = str(form.get("phone", ""))[:20].strip()
        try:
            token, _ = logins.log_in(phone, str(form.get("code", ""))[:12], clock_ms())
        except PortalError as error:
            return RedirectResponse(f"/m/login?phone={phone if phone.isdigit() else ''}&error={error.code}", status_code=303)
        response = RedirectResponse("/m", status_code=303)
        set_cookie(response, request, SESSION_COOKIE, token, max_age=30 * 86400)
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
        return response

    @app.post("/m/logout")
    async def log_out(request: Request):
        await checked_form(request, member_of(request))
        logins.log_out(request.cookies.get(SESSION_COOKIE, ""))
        response = RedirectResponse("/m/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @app.get("/m/lang")
    def choose_language(request: Request, to: str = "zh"):
        response = RedirectResponse("/m", status_code=303)
        set_cookie(response, request, LANG_COOKIE, to if to in LANGUAGES else "zh", max_age=365 * 86400)
        return response

    # ------------------------------------------------------------------ the member's cards
    @app.get("/m", response_class=HTMLResponse)
    def home_view(request: Request, done: str = "", error: str = ""):
        session = member_of(request)
        with ledger_lock:
            cards = member_cards(store, park_id, session.phone)
            takes_notices = wants_notices(store.db, park_id, session.phone)
        return page(request, "portal_home.html", {"cards": cards, "top_up_providers": sorted(providers),
                                                  "wants_notices": takes_notices,
                                                  "done": done if done.replace("_", "").isalnum() else "",
                                                  "error": error if error.replace("_", "").isalnum() else "",
                                                  "links": logins.visit_links(session.phone)})

    @app.post("/m/notices")
    async def choose_notices(request: Request):
        """The member's opt-out of the park's notices (ledger.member_notices), kept by their phone."""
        session = member_of(request)
        form = await checked_form(request, session)
        wants = form.get("wants") == "yes"
        try:
            with ledger_lock:
                set_wants_notices(store, phone=session.phone, wants=wants, now_ms=clock_ms())
        except NoSuchMember:
            return RedirectResponse("/m?error=UNKNOWN_CARD", status_code=303)
        return RedirectResponse(f"/m?done={'notices_on' if wants else 'notices_off'}", status_code=303)

    @app.post("/m/ecard", response_class=HTMLResponse)
    async def open_ecard(request: Request):
        session = member_of(request)
        form = await checked_form(request, session)
        try:
            device_key = bytes.fromhex(str(form.get("device_key", ""))[:64])
        except ValueError:
            device_key = b""
        try:
            with ledger_lock:
                opened = desk.open_ecard(member_name=str(form.get("name", "")).strip()[:32] or session.phone[-4:],
                                         phone=session.phone, pin=str(form.get("pin", ""))[:6], device_key=device_key)
        except (LedgerError, PortalError) as error:
            return RedirectResponse(f"/m?error={error.code}", status_code=303)
        except ValueError:  # a PIN that is not 4-6 digits, refused while sealing it
            return RedirectResponse("/m?error=BAD_PIN", status_code=303)
        return page(request, "portal_ecard.html", {"opened": opened, "credential": opened.credential.hex()})

    @app.get("/m/cards/{card_no}", response_class=HTMLResponse)
    def card_view(request: Request, card_no: str):
        session = member_of(request)
        card = own_card(session, card_no[:20])
        with ledger_lock:
            lines = history(store.db, park_id, card)
        return page(request, "portal_card.html", {"card": card, "lines": lines})

    @app.post("/m/cards/{card_no}/pin")
    async def change_pin(request: Request, card_no: str):
        session = member_of(request)
        form = await checked_form(request, session)
        card = own_card(session, card_no[:20])
        return changed(lambda: change_member_pin(store, keys, park_id, card.card_no, str(form.get("old_pin", ""))[:6],
                                                 str(form.get("new_pin", ""))[:6]), "pin_changed")

    @app.post("/m/cards/{card_no}/lost")
    async def report_lost(request: Request, card_no: str):
        session = member_of(request)
        await checked_form(request, session)
        card = own_card(session, card_no[:20])
        return changed(lambda: desk.report_lost(card.card_no, card.issuance, card.uid), "reported_lost")

    @app.post("/m/cards/{card_no}/topup", response_class=HTMLResponse)
    async def top_up(request: Request, card_no: str):
        """Top up online: the order is recorded in the books, made at the provider, and the member
        sent to pay there; the provider's notification to the ledger books it (ledger.topups_online)."""
        session = member_of(request)
        form = await checked_form(request, session)
        card = own_card(session, card_no[:20])
        provider = str(form.get("provider", "wechat"))[:16]
        amount = str(form.get("amount_yuan", ""))[:7]
        if provider not in providers or not amount.isdigit():
            return RedirectResponse("/m?error=TOPUP_UNAVAILABLE", status_code=303)
        out_trade_no = "TU" + secrets.token_hex(8).upper()
        try:
            with ledger_lock:
                create_top_up_order(store, park_id=park_id, provider=provider, provider_order=out_trade_no,
                                    card_no=card.card_no, issuance=card.issuance, amount_fen=int(amount) * 100,
                                    now_ms=clock_ms())
            created = providers[provider].create_order(
                out_trade_no=out_trade_no, item_type=attach_for(card.card_no, card.issuance),
                amount_fen=int(amount) * 100, description=f"充值 Top-up {card.card_no}",
                notify_url=f"{payments.public_base_url}/payments/{provider}/notify", return_url=str(request.base_url) + "m")
        except LedgerError as error:  # PaymentError is one too: the provider unreachable or refusing
            return RedirectResponse(f"/m?error={error.code}", status_code=303)
        # A page with the provider's link, not a redirect: the portal's CSP lets forms post only to
        # itself (form-action 'self'), which a redirect to the provider's origin would break.
        return page(request, "portal_pay.html", {"card": card, "amount_fen": int(amount) * 100, "pay_url": created.pay_url,
                                                 "provider": provider, "order": out_trade_no})

    @app.post("/m/cards/{card_no}/bind")
    async def bind(request: Request, card_no: str):
        """Bind a physical member card to this e-card with that card's PIN."""
        session = member_of(request)
        form = await checked_form(request, session)
        card = own_card(session, card_no[:20])
        return changed(lambda: bind_card(store, keys, park_id, card.card_no, str(form.get("card_no", "")).strip().upper()[:20],
                                         str(form.get("pin", ""))[:6], clock_ms()), "card_bound")

    @app.post("/m/cards/{card_no}/unbind")
    async def unbind(request: Request, card_no: str):
        session = member_of(request)
        await checked_form(request, session)
        card = own_card(session, card_no[:20])
        with ledger_lock:
            unbind_card(store, park_id, card.bound_to, card.card_no)
        return RedirectResponse("/m?done=card_unbound", status_code=303)

    @app.post("/m/cards/{card_no}/device", response_class=HTMLResponse)
    async def move_to_this_phone(request: Request, card_no: str):
        """The e-card moves to the phone the member logged in on (its new device key), with the PIN."""
        session = member_of(request)
        form = await checked_form(request, session)
        card = own_card(session, card_no[:20])
        try:
            device_key = bytes.fromhex(str(form.get("device_key", ""))[:64])
        except ValueError:
            device_key = b""
        try:
            with ledger_lock:
                moved = move_ecard(desk, card.card_no, device_key, str(form.get("pin", ""))[:6])
        except LedgerError as error:
            return RedirectResponse(f"/m?error={error.code}", status_code=303)
        return page(request, "portal_ecard.html", {"opened": moved, "credential": moved.credential.hex()})

    @app.get("/m/cards/{card_no}/qr", response_class=HTMLResponse)
    def ecard_qr_view(request: Request, card_no: str):
        """The rotating e-card QR: the page carries the card's credential (not secret: every QR shows
        it); the phone signs each time window with its own key (static/portal.js)."""
        session = member_of(request)
        card = own_card(session, card_no[:20])
        with ledger_lock:
            registered = store.ecard(park_id, card.card_no, card.issuance)
        if registered is None or card.state != "active":
            raise NotFound()
        device_key, expires_ms, _ = registered
        credential = desk.credential(card.card_no, card.issuance, device_key, expires_ms)
        return page(request, "portal_qr.html", {"card": card, "credential": credential.hex(),
                                                "window_seconds": ecard.WINDOW_SECONDS})

    @app.get("/m/qr.svg")
    def qr_svg(request: Request, text: str = ""):
        """A QR code of an e-card token the phone made (only a logged-in member's, only token text)."""
        member_of(request)
        if not text.startswith(ecard.PREFIX) or len(text) > ecard.MAX_TOKEN_CHARS or not _QR_TEXT.fullmatch(text):
            raise NotFound()
        buffer = io.BytesIO()
        segno.make(text, error="m", micro=False).save(buffer, kind="svg", scale=4, border=4, xmldecl=False)
        return Response(buffer.getvalue(), media_type="image/svg+xml")

    # ------------------------------------------------------------------ visit records
    @app.post("/m/visits", response_class=HTMLResponse)
    async def share_visit(request: Request):
        session = member_of(request)
        form = await checked_form(request, session)
        card = own_card(session, str(form.get("card_no", ""))[:20])
        with ledger_lock:
            day = store.business_day(park_id, clock_ms())
        token = logins.add_visit_link(session.phone, card.card_no, day, show_times=form.get("show_times") == "on",
                                      show_amounts=form.get("show_amounts") == "on", now_ms=clock_ms())
        return page(request, "portal_shared.html", {"link": f"/v/{token}", "day": day})

    @app.post("/m/visits/{link_id}/revoke")
    async def revoke_visit(request: Request, link_id: int):
        session = member_of(request)
        await checked_form(request, session)
        if not logins.revoke_visit_link(session.phone, link_id, clock_ms()):
            raise NotFound()
        return RedirectResponse("/m?done=revoked", status_code=303)

    def visit_record(token: str) -> VisitRecord:
        link = logins.visit_link(token)
        if link is None:
            raise NotFound()
        with ledger_lock:
            activities = day_activities(store.db, park_id, link.card_no, link.business_day)
            name = park_name(store.db, park_id)
        return VisitRecord(name, link.business_day, "", tuple(activities), link.show_times, link.show_amounts)

    @app.get("/v/{token}", response_class=HTMLResponse)
    def visit_page(request: Request, token: str):
        record = visit_record(token)
        return page(request, "portal_visit.html", {"record": record, "token": token})

    @app.get("/v/{token}/image.png")
    def visit_image(token: str):
        return Response(render_png(visit_record(token)), media_type="image/png")

    return app
