"""The console's administration pages: stations and their menus, card types, bonus tiers and
campaigns, staff, terminals, and cards (search, history, block, balance adjustments that a second
person approves).

Every change goes through ``ledger.park_admin.ParkAdmin``, the path ``fieldpos`` commands take, and
is written to the console's audit log with the user, the change and the facts before and after.
Each route checks the user's role on the server (``backoffice.roles``) before it reads the form;
each POST carries the session's CSRF token. A change the ledger refuses is answered 400 with its
one-line reason, and nothing is recorded as done.
"""

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from ledger.errors import NotFound
from ledger.park_admin import ParkAdmin
from ledger.park_home import STATION_KINDS, ParkHome
from ledger.reports.lookup import NothingFound, lookup
from ledger.reports.query import open_read_only
from ledger.rules.adjustments import COUNTER_ACCOUNTS
from ledger.rules.campaigns import CAMPAIGN_KINDS
from ledger.station_settings import add_item, remove_item, set_hours, set_item, set_mode
from ledger.store import CardLimits
from protocol.errors import FieldposError
from protocol.money import parse_amount

from .errors import ConsoleError

STATION_MODES = ("fixed", "count", "menu", "free")
STAFF_ROLES = ("cashier", "rental", "front_desk", "supervisor", "technician", "finance", "admin")
MAX_FORM_TEXT = 200
HOUR_MS = 3_600_000
# A week: longer offline than that and a till's blocklist is too old to trust anyway.
MAX_OFFLINE_HOURS = 7 * 24
# Card search lists at most this many cards (a search is a finding aid, not a report).
MAX_FOUND_CARDS = 50


class BadForm(ConsoleError, ValueError):
    """A form field the administration cannot use (not an amount, a missing choice)."""

    code = "BAD_FORM"


# ---------------------------------------------------------------- reading forms
def _text(form, name: str, *, required: bool = True) -> str:
    value = str(form.get(name, "")).strip()[:MAX_FORM_TEXT]
    if required and not value:
        raise BadForm(f"{name} is missing")
    return value


def _yuan(form, name: str, *, signed: bool = False) -> int:
    """A typed amount in yuan ("30", "30.50"; with ``signed`` also "-12.00") as integer fen."""
    text = _text(form, name)
    sign = -1 if signed and text.startswith("-") else 1
    text = text.removeprefix("-") if signed else text
    fen = parse_amount(text)
    if fen is None:
        raise BadForm(f"{name} must be an amount in yuan with at most two decimals, like 30.00, not {text!r}")
    return sign * fen


def _cash_float(form) -> int | None:
    """A station's opening float in yuan; 0 (or blank) for none; None when the form has no such field."""
    if "cash_float" not in form:
        return None
    text = _text(form, "cash_float", required=False)
    digits = text.replace(".", "", 1)
    if text == "" or (digits.isdigit() and digits.strip("0") == ""):  # 0, 0.00: the drawer starts empty
        return 0
    return _yuan(form, "cash_float")


def _whole(form, name: str, low: int, high: int) -> int:
    text = _text(form, name)
    if not text.lstrip("-").isdigit() or not low <= int(text) <= high:
        raise BadForm(f"{name} must be a whole number from {low} to {high}, not {text!r}")
    return int(text)


def _choice(form, name: str, choices) -> str:
    value = _text(form, name)
    if value not in choices:
        raise BadForm(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


# ---------------------------------------------------------------- the routes
def install_admin(app: FastAPI, *, home, ledger_db, accounts, page, require, checked_form, address) -> None:
    """Add the administration routes to the console ``app`` (helpers are the app's own: ``page``
    renders, ``require`` checks the role, ``checked_form`` checks the CSRF token)."""
    admins: list[ParkAdmin] = []

    def park() -> ParkAdmin:
        if not admins:  # made on first use: the park's keys name its id
            admins.append(ParkAdmin(ParkHome(home)))
        return admins[0]

    async def change(request: Request, page_name: str, act, back: str):
        """Check the role and the CSRF token, make the change (in a worker thread: SQLite and PIN
        hashing block), write it to the audit log, and go back to ``back``."""
        session = require(request, page_name)
        form = await checked_form(request, session)
        try:
            done = await run_in_threadpool(act, form, session.user.username)
        except FieldposError as error:
            return page(request, "error.html", {"status": 400, "message": str(error)}, status_code=400)
        # Recorded once the ledger has the change (the audit log is the console's own database).
        accounts.record(session.user.username, done.action, done.target, done.before, done.after,
                        address=address(request))
        return RedirectResponse(f"{back}?done={quote(done.action)}", status_code=303)

    def admin_page(request: Request, template: str, context: dict):
        return page(request, template, {"done": request.query_params.get("done", ""), **context})

    # ------------------------------------------------------------ index
    @app.get("/admin", response_class=HTMLResponse)
    def admin_index(request: Request):
        require(request, "admin")
        return admin_page(request, "admin_index.html", {})

    # ------------------------------------------------------------ stations
    @app.get("/admin/stations", response_class=HTMLResponse)
    def stations_view(request: Request):
        require(request, "admin_park")
        return admin_page(request, "admin_stations.html", {"stations": park().stations(), "modes": STATION_MODES})

    @app.post("/admin/stations")
    async def station_add(request: Request):
        return await change(request, "admin_park", lambda form, _: park().add_station(
            _text(form, "station"), _text(form, "name"), contractor_id=_text(form, "contractor", required=False),
            commission_bp=_whole(form, "commission_bp", 0, 10_000)), "/admin/stations")

    @app.post("/admin/stations/{station_id}")
    async def station_set(request: Request, station_id: str):
        return await change(request, "admin_park", lambda form, _: park().set_station(
            station_id, name=_text(form, "name"), contractor_id=_text(form, "contractor", required=False),
            commission_bp=_whole(form, "commission_bp", 0, 10_000), cash_float_fen=_cash_float(form)),
            "/admin/stations")

    def sales(station_id: str, make, action: str):
        return lambda form, _: park().change_station_sales(station_id, lambda now: make(now, form), action)

    @app.post("/admin/stations/{station_id}/menu/add")
    async def menu_add(request: Request, station_id: str):
        return await change(request, "admin_park", sales(station_id, lambda now, form: add_item(
            now, station_id, _text(form, "item"), _text(form, "name"), _yuan(form, "price")), "station.menu_add"),
            "/admin/stations")

    @app.post("/admin/stations/{station_id}/menu/set")
    async def menu_set(request: Request, station_id: str):
        return await change(request, "admin_park", sales(station_id, lambda now, form: set_item(
            now, station_id, _text(form, "item"), name=_text(form, "name"), price_fen=_yuan(form, "price")),
            "station.menu_set"), "/admin/stations")

    @app.post("/admin/stations/{station_id}/menu/remove")
    async def menu_remove(request: Request, station_id: str):
        return await change(request, "admin_park", sales(station_id, lambda now, form: remove_item(
            now, station_id, _text(form, "item")), "station.menu_remove"), "/admin/stations")

    @app.post("/admin/stations/{station_id}/mode")
    async def station_mode(request: Request, station_id: str):
        return await change(request, "admin_park", sales(station_id, lambda now, form: set_mode(
            now, station_id, _choice(form, "mode", STATION_MODES)), "station.mode"), "/admin/stations")

    @app.post("/admin/stations/{station_id}/hours")
    async def station_hours(request: Request, station_id: str):
        def hours(now, form):
            opens, closes = _text(form, "opens", required=False) or None, _text(form, "closes", required=False) or None
            return set_hours(now, station_id, opens, closes)

        return await change(request, "admin_park", sales(station_id, hours, "station.hours"), "/admin/stations")

    # ------------------------------------------------------------ card types, bonus tiers, campaigns
    @app.get("/admin/cards-setup", response_class=HTMLResponse)
    def cards_setup_view(request: Request):
        require(request, "admin_park")
        admin = park()
        return admin_page(request, "admin_cards_setup.html", {
            "limits": admin.card_limits(), "tiers": admin.bonus_tiers(), "campaigns": admin.campaigns(),
            "campaign_kinds": CAMPAIGN_KINDS, "offline": admin.offline_policy()})

    @app.post("/admin/offline-policy")
    async def offline_policy_set(request: Request):
        return await change(request, "admin_park", lambda form, _: park().set_offline_policy(
            max_transaction_fen=_yuan(form, "max_transaction"), max_card_fen=_yuan(form, "max_card"),
            max_terminal_fen=_yuan(form, "max_terminal"), max_count=_whole(form, "max_count", 1, 100_000),
            max_offline_ms=_whole(form, "max_offline_hours", 1, MAX_OFFLINE_HOURS) * HOUR_MS,
            max_reboots=_whole(form, "max_reboots", 0, 100),
            blocklist_max_age_ms=_whole(form, "blocklist_max_age_hours", 1, MAX_OFFLINE_HOURS) * HOUR_MS),
            "/admin/cards-setup")

    @app.post("/admin/card-types/{kind}")
    async def card_type_set(request: Request, kind: str):
        return await change(request, "admin_park", lambda form, _: park().set_card_limits(
            kind, CardLimits(max_balance_fen=_yuan(form, "max_balance"), min_topup_fen=_yuan(form, "min_topup"),
                             max_topup_fen=_yuan(form, "max_topup"), daily_spend_fen=_yuan(form, "daily_spend"))),
            "/admin/cards-setup")

    @app.post("/admin/bonus-tiers")
    async def bonus_tier_set(request: Request):
        return await change(request, "admin_park", lambda form, _: park().set_bonus_tier(
            _yuan(form, "min_topup"), _yuan(form, "bonus")), "/admin/cards-setup")

    @app.post("/admin/bonus-tiers/remove")
    async def bonus_tier_remove(request: Request):
        return await change(request, "admin_park", lambda form, _: park().remove_bonus_tier(
            _whole(form, "min_topup_fen", 1, 10**9)), "/admin/cards-setup")

    @app.post("/admin/campaigns")
    async def campaign_add(request: Request):
        return await change(request, "admin_park", lambda form, _: park().add_campaign(
            _text(form, "campaign"), _text(form, "name"), _choice(form, "kind", CAMPAIGN_KINDS),
            _whole(form, "multiplier_pct", 101, 1000), _text(form, "first_day"), _text(form, "last_day")),
            "/admin/cards-setup")

    @app.post("/admin/campaigns/{campaign_id}/end")
    async def campaign_end(request: Request, campaign_id: str):
        return await change(request, "admin_park", lambda form, _: park().end_campaign(campaign_id), "/admin/cards-setup")

    # ------------------------------------------------------------ staff
    @app.get("/admin/staff", response_class=HTMLResponse)
    def staff_view(request: Request):
        require(request, "admin_staff")
        return admin_page(request, "admin_staff.html", {"staff": park().staff(), "roles": STAFF_ROLES})

    @app.post("/admin/staff")
    async def staff_add(request: Request):
        return await change(request, "admin_staff", lambda form, _: park().add_staff(
            _text(form, "staff"), _text(form, "name"), _choice(form, "role", STAFF_ROLES), _text(form, "card_no"),
            _text(form, "pin")), "/admin/staff")

    @app.post("/admin/staff/{staff_id}/role")
    async def staff_role(request: Request, staff_id: str):
        return await change(request, "admin_staff", lambda form, _: park().change_staff(
            staff_id, role=_choice(form, "role", STAFF_ROLES)), "/admin/staff")

    @app.post("/admin/staff/{staff_id}/retire")
    async def staff_retire(request: Request, staff_id: str):
        return await change(request, "admin_staff", lambda form, _: park().change_staff(staff_id, retire=True),
                            "/admin/staff")

    @app.post("/admin/staff/{staff_id}/pin-reset")
    async def staff_pin_reset(request: Request, staff_id: str):
        return await change(request, "admin_staff", lambda form, _: park().reset_staff_pin(staff_id, _text(form, "pin")),
                            "/admin/staff")

    @app.post("/admin/staff/{staff_id}/pin-unlock")
    async def staff_pin_unlock(request: Request, staff_id: str):
        return await change(request, "admin_staff", lambda form, _: park().unlock_staff_pin(staff_id), "/admin/staff")

    # ------------------------------------------------------------ terminals
    @app.get("/admin/terminals", response_class=HTMLResponse)
    def terminals_admin_view(request: Request):
        require(request, "admin_terminals")
        return admin_page(request, "admin_terminals.html", {
            "terminals": park().terminals(), "stations": [s["station"] for s in park().stations()],
            "kinds": [kind for kind in STATION_KINDS if kind != "all"],
            "bundle": request.query_params.get("bundle", "")})

    @app.post("/admin/terminals")
    async def terminal_provision(request: Request):
        paths = []

        def provision(form, _):
            done, path = park().provision_terminal(
                _text(form, "terminal"), _text(form, "station"), _choice(form, "kinds", STATION_KINDS),
                broker_host=_text(form, "broker_host"), broker_port=_whole(form, "broker_port", 1, 65535))
            paths.append(path)
            return done

        response = await change(request, "admin_terminals", provision, "/admin/terminals")
        if paths:  # the bundle holds the terminal's private key: it stays in the park home, only its name is shown
            response.headers["location"] += f"&bundle={quote(paths[0].rsplit('/', 1)[-1])}"
        return response

    @app.post("/admin/terminals/{terminal_id}/retire")
    async def terminal_retire(request: Request, terminal_id: str):
        return await change(request, "admin_terminals", lambda form, _: park().retire_terminal(
            terminal_id, is_stolen=form.get("stolen") == "yes"), "/admin/terminals")

    # ------------------------------------------------------------ cards and members
    @app.get("/cards", response_class=HTMLResponse)
    def cards_view(request: Request, q: str = ""):
        session = require(request, "cards")
        found = park().find_cards(q.strip()[:64], limit=MAX_FOUND_CARDS) if q.strip() else []
        return admin_page(request, "admin_cards.html", {"q": q, "found": found,
                                                                 "may_adjust": _may(session, "adjustments")})

    @app.get("/cards/{card_no}", response_class=HTMLResponse)
    def card_view(request: Request, card_no: str):
        session = require(request, "cards")
        admin = park()
        try:
            detail = admin.card_detail(card_no)
        except NotFound as error:  # a mistyped link: say so, as a page, not a server error
            return page(request, "error.html", {"status": 404, "message": str(error)}, status_code=404)
        history, history_error = None, ""
        db = open_read_only(ledger_db)
        try:
            history = lookup(db, admin.park_id, card=card_no)
        except NothingFound as error:
            history_error = str(error)
        finally:
            db.close()
        return admin_page(request, "admin_card.html", {
            "card": detail, "history": history, "history_error": history_error, "assets": tuple(COUNTER_ACCOUNTS),
            "may_block": _may(session, "cards_block"), "may_adjust": _may(session, "adjustments"),
            "adjustments": [a for a in admin.adjustments() if a.card_account.startswith(f"card:{card_no}/")]})

    @app.post("/cards/{card_no}/block")
    async def card_block(request: Request, card_no: str):
        return await change(request, "cards_block", lambda form, _: park().block_card(card_no), f"/cards/{quote(card_no)}")

    @app.post("/cards/{card_no}/unblock")
    async def card_unblock(request: Request, card_no: str):
        return await change(request, "cards_block", lambda form, _: park().unblock_card(card_no), f"/cards/{quote(card_no)}")

    @app.post("/cards/{card_no}/adjust")
    async def card_adjust(request: Request, card_no: str):
        def ask(form, who):
            asset = _choice(form, "asset", tuple(COUNTER_ACCOUNTS))
            amount = _yuan(form, "amount", signed=True) if asset != "points" else _whole(form, "amount", -10**7, 10**7)
            done, _ = park().request_adjustment(card_no, asset, amount, _text(form, "reason"), requested_by=who)
            return done

        return await change(request, "adjustments", ask, f"/cards/{quote(card_no)}")

    @app.get("/adjustments", response_class=HTMLResponse)
    def adjustments_view(request: Request):
        session = require(request, "adjustments")
        return admin_page(request, "admin_adjustments.html", {
            "pending": park().adjustments(state="pending"), "recent": park().adjustments(limit=50),
            "me": session.user.username})

    @app.post("/adjustments/{adjustment_id}/approve")
    async def adjustment_approve(request: Request, adjustment_id: int):
        return await change(request, "adjustments", lambda form, who: park().approve_adjustment(
            adjustment_id, approved_by=who), "/adjustments")

    @app.post("/adjustments/{adjustment_id}/reject")
    async def adjustment_reject(request: Request, adjustment_id: int):
        return await change(request, "adjustments", lambda form, who: park().reject_adjustment(
            adjustment_id, rejected_by=who), "/adjustments")


def _may(session, page_name: str) -> bool:
    from .roles import may_see

    return may_see(session.user, page_name)
