"""The console's administration over HTTP (no browser): each role's pages checked on the server,
CSRF on every change, every change through the ledger's own path and in the audit log with its
before and after, a balance adjustment that a second user must approve, and a change that reaches a
running till in its signed config."""

import json
import re

from fastapi.testclient import TestClient
import pytest

from backoffice.accounts import ConsoleStore
from backoffice.app import create_app
from host_sim.rig import ParkRig
from ledger.verify import verify_books

from .conftest import TERMINALS
from .helpers.intake_driver import Ledger
from .helpers.park_day import PASSWORD
from .helpers.waiting import wait_until
from .test_console_security import csrf_of, log_in
from .test_members import MEMBER, PIN, Desk

USERS = {"admin": ("admin", ()), "admin2": ("admin", ()), "finance": ("finance", ()), "desk": ("front_desk", ()),
         "tech": ("technician", ()), "bbq-sup": ("station_supervisor", ("bbq",))}

# Every administration page, and every change with a form that would be accepted from the admin.
ADMIN_PAGES = ["/admin", "/admin/stations", "/admin/cards-setup", "/admin/staff", "/admin/terminals", "/adjustments"]
CHANGES = [
    ("/admin/stations/riding", {"name": "骑马场 Riding", "contractor": "C-HORSE", "commission_bp": "2000",
                                "cash_float": "200.00"}),
    ("/admin/stations/fishing/menu/add", {"item": "rod", "name": "钓竿 Rod", "price": "30.00"}),
    ("/admin/stations/fishing/menu/set", {"item": "rod", "name": "钓竿 Rod", "price": "35.00"}),
    ("/admin/stations/fishing/mode", {"mode": "menu"}),
    ("/admin/stations/fishing/hours", {"opens": "08:00", "closes": "18:00"}),
    ("/admin/stations", {"station": "kids", "name": "儿童乐园 Kids", "contractor": "", "commission_bp": "0"}),
    ("/admin/card-types/member", {"max_balance": "6000", "min_topup": "10", "max_topup": "5000", "daily_spend": "3000"}),
    ("/admin/bonus-tiers", {"min_topup": "500", "bonus": "50"}),
    ("/admin/bonus-tiers", {"min_topup": "200", "bonus": "15"}),
    ("/admin/bonus-tiers/remove", {"min_topup_fen": "20000"}),
    ("/admin/campaigns", {"campaign": "spring", "name": "春季积分翻倍", "kind": "points", "multiplier_pct": "200",
                          "first_day": "2020-03-01", "last_day": "2020-03-31"}),
    ("/admin/campaigns/spring/end", {}),
    ("/admin/offline-policy", {"max_transaction": "150", "max_card": "250", "max_terminal": "15000", "max_count": "400",
                               "max_offline_hours": "12", "max_reboots": "2", "blocklist_max_age_hours": "12"}),
    ("/admin/staff", {"staff": "qian", "name": "钱多 Qian Duo", "role": "cashier", "card_no": "S0009", "pin": "4321"}),
    ("/admin/staff/qian/role", {"role": "supervisor"}),
    ("/admin/staff/qian/pin-reset", {"pin": "9876"}),
    ("/admin/staff/qian/pin-unlock", {}),
    ("/admin/staff/qian/retire", {}),
    ("/admin/terminals", {"terminal": "T-KIDS-1", "station": "kids", "kinds": "station", "broker_host": "10.0.0.2",
                          "broker_port": "1883"}),
    ("/admin/terminals/T-KIDS-1/retire", {}),
    (f"/cards/{MEMBER.no}/block", {}),
    (f"/cards/{MEMBER.no}/unblock", {}),
]


@pytest.fixture(scope="module")
def park(tmp_path_factory):
    """A small park (no broker) with a member card topped up to 500.00 and one console user per role."""
    rig = ParkRig(tmp_path_factory.mktemp("admin-park")).create(TERMINALS)
    ledger = Ledger(rig)
    desk = Desk(ledger)
    assert desk.open().is_approved and desk.top_up(50000).is_approved
    accounts = ConsoleStore.in_home(rig.home.home)
    for username, (role, stations) in USERS.items():
        accounts.add_user(username, username, role, PASSWORD, stations=stations, actor="test")
    yield rig, desk, accounts
    rig.close()
    ledger.store.close()


@pytest.fixture(scope="module")
def app(park):
    return create_app(park[0].home.home)


def audit(accounts) -> list[tuple]:
    """(actor, action, target, before, after) of the administration's entries, oldest first."""
    return [(actor, action, target, json.loads(before) if before else None, json.loads(after) if after else None)
            for _, _, actor, action, target, before, after, _ in reversed(accounts.audit_entries(limit=10_000))
            if action.split(".")[0] in ("station", "card_type", "bonus_tier", "campaign", "offline_policy", "staff", "terminal", "card",
                                        "adjustment")]


def test_the_front_desk_gets_403_on_every_administration_page_and_change_but_finds_cards(app, park):
    desk = log_in(app, "desk")
    csrf = csrf_of(desk)
    for url in ADMIN_PAGES:
        assert desk.get(url).status_code == 403, url
    count = len(audit(park[2]))
    for url, form in CHANGES[:-2] + [(f"/cards/{MEMBER.no}/adjust", {"asset": "fen", "amount": "1", "reason": "x"}),
                                     ("/adjustments/1/approve", {})]:
        assert desk.post(url, data=form | {"csrf": csrf}).status_code == 403, url
    assert len(audit(park[2])) == count  # nothing changed, nothing recorded
    found = desk.get(f"/cards?q={MEMBER.no[:3]}")
    assert found.status_code == 200 and f"{MEMBER.no}/1" in found.text
    assert desk.get(f"/cards/{MEMBER.no}").status_code == 200
    assert desk.get("/cards/NO-SUCH-CARD").status_code == 404


def test_the_technician_manages_terminals_only_and_the_supervisor_and_finance_no_settings(app):
    tech = log_in(app, "tech")
    assert tech.get("/admin/terminals").status_code == 200
    for url in ADMIN_PAGES[1:4] + ["/adjustments", "/cards"]:
        assert tech.get(url).status_code == 403, url
    supervisor = log_in(app, "bbq-sup")
    for url in ADMIN_PAGES + ["/cards"]:
        assert supervisor.get(url).status_code == 403, url
    finance = log_in(app, "finance")
    for url in ADMIN_PAGES[:5]:
        assert finance.get(url).status_code == 403, url
    assert finance.get("/adjustments").status_code == 200 and finance.get("/cards").status_code == 200


def test_a_change_without_the_sessions_csrf_token_is_refused_and_changes_nothing(app, park):
    admin = log_in(app, "admin")
    count = len(audit(park[2]))
    for url, form in CHANGES:
        assert admin.post(url, data=form | {"csrf": "forged"}).status_code == 403, url
        assert admin.post(url, data=form).status_code == 403, url
    assert len(audit(park[2])) == count
    assert "rod" not in admin.get("/admin/stations").text


def test_every_admin_change_goes_through_the_ledger_and_appears_in_the_audit_log_with_before_and_after(app, park):
    rig, desk, accounts = park
    admin = log_in(app, "admin")
    csrf = csrf_of(admin)
    store = rig.home.open_store()
    try:
        config_changes = store.config_change_version("P1")
        before = len(audit(accounts))
        for url, form in CHANGES:
            response = admin.post(url, data=form | {"csrf": csrf})
            assert response.status_code == 303, (url, response.text[-300:])
        entries = audit(accounts)[before:]
        assert len(entries) == len(CHANGES)
        assert all(actor == "admin" for actor, *_ in entries)
        assert [action for _, action, *_ in entries] == [
            "station.set", "station.menu_add", "station.menu_set", "station.mode", "station.hours", "station.add",
            "card_type.limits", "bonus_tier.set", "bonus_tier.set", "bonus_tier.remove", "campaign.add", "campaign.end",
            "offline_policy.set",
            "staff.add", "staff.set", "staff.pin_reset", "staff.pin_unlock", "staff.retire", "terminal.provision",
            "terminal.retire", "card.block", "card.unblock"]
        by_action = {action: (target, old, new) for _, action, target, old, new in entries}
        assert by_action["station.set"][1:] == ({"name": "骑马 Horse riding", "contractor": "C-HORSE", "commission_bp": 1500,
                                                 "cash_float_fen": 0},
                                                {"name": "骑马场 Riding", "contractor": "C-HORSE", "commission_bp": 2000,
                                                 "cash_float_fen": 20000})
        assert by_action["station.menu_set"][1]["menu"] == [["rod", "钓竿 Rod", 3000]]
        assert by_action["station.menu_set"][2]["menu"] == [["rod", "钓竿 Rod", 3500]]
        assert by_action["card_type.limits"][2]["max_balance_fen"] == 600000
        assert by_action["staff.retire"][2]["is_active"] is False
        assert "9876" not in json.dumps(entries)  # a PIN never reaches the log
        # The books hold what the pages say, through the ledger's own reads.
        settings = store.station_settings("P1", "fishing")
        assert (settings.mode, settings.opens, settings.closes) == ("menu", "08:00", "18:00")
        assert [(item.item, item.price_fen) for item in settings.menu] == [("rod", 3500)]
        assert store.station("P1", "riding").commission_bp == 2000
        assert store.bonus_rules("P1") == [(50000, 5000)]
        assert store.card_limits("P1", "member").max_balance_fen == 600000
        assert store.offline_policy("P1")["max_offline_ms"] == 12 * 3_600_000
        assert by_action["offline_policy.set"][1]["max_card_fen"] == 30_000
        assert store.terminal("T-KIDS-1").revoked_from_seq is not None
        assert store.card("P1", MEMBER.no).state == "active"
        assert store.config_change_version("P1") > config_changes  # the serving ledger re-publishes
        # Each page shows the park as the ledger now holds it.
        for url, shown in [("/admin", "/admin/cards-setup"), ("/admin/stations", "35.00"),
                           ("/admin/stations", 'name="cash_float" inputmode="decimal" size="9" value="200.00"'),
                           ("/admin/stations", "儿童乐园 Kids"), ("/admin/cards-setup", "春季积分翻倍"),
                           ("/admin/cards-setup", 'value="6000.00"'), ("/admin/cards-setup", 'value="250.00"'),
                           ("/admin/staff", "钱多 Qian Duo"), ("/admin/terminals", "T-KIDS-1"),
                           (f"/cards/{MEMBER.no}", 'id="block"'), ("/adjustments", 'id="pending"')]:
            page = admin.get(url)
            assert page.status_code == 200 and shown in page.text, (url, shown)
    finally:
        store.close()


def test_a_change_the_ledger_refuses_is_answered_400_with_its_reason_and_not_recorded(app, park):
    admin = log_in(app, "admin")
    csrf = csrf_of(admin)
    count = len(audit(park[2]))
    for url, form, words in [
        ("/admin/stations/fishing", {"name": "钓鱼", "contractor": "", "commission_bp": "500"}, "contractor"),
        ("/admin/stations/nowhere/mode", {"mode": "free"}, "no station"),
        ("/admin/campaigns", {"campaign": "x", "name": "x", "kind": "bonus", "multiplier_pct": "200",
                              "first_day": "2020-05-09", "last_day": "2020-05-01"}, "ends on or after"),
        ("/admin/bonus-tiers", {"min_topup": "abc", "bonus": "5"}, "amount in yuan"),
        ("/admin/card-types/member", {"max_balance": "10", "min_topup": "20", "max_topup": "30", "daily_spend": "5"},
         "smallest top-up"),
        ("/admin/staff", {"staff": "wang", "name": "x", "role": "cashier", "card_no": "S0001", "pin": "1234"}, "clashes"),
    ]:
        response = admin.post(url, data=form | {"csrf": csrf})
        assert response.status_code == 400 and words in response.text, (url, response.text[-400:])
    assert len(audit(park[2])) == count


def test_a_balance_adjustment_needs_a_second_user_books_through_the_ledger_and_the_audit_shows_both(app, park):
    rig, desk, accounts = park
    admin, finance = log_in(app, "admin"), log_in(app, "finance")
    store = rig.home.open_store()
    try:
        start = store.card("P1", MEMBER.no).fen
        asked = admin.post(f"/cards/{MEMBER.no}/adjust", data={"asset": "fen", "amount": "-12.50", "reason": "重复扣款退回",
                                                               "csrf": csrf_of(admin)})
        assert asked.status_code == 303
        number = int(re.search(r'id="adjustment-(\d+)"', admin.get("/adjustments").text).group(1))
        assert store.card("P1", MEMBER.no).fen == start  # asked for, not booked
        own = admin.post(f"/adjustments/{number}/approve", data={"csrf": csrf_of(admin)})
        assert own.status_code == 400 and "SECOND_PERSON_REQUIRED" in own.text
        assert finance.post(f"/adjustments/{number}/approve", data={"csrf": csrf_of(finance)}).status_code == 303
        assert store.card("P1", MEMBER.no).fen == start - 1250
        assert verify_books(store).is_ok
        entries = [(actor, action, after) for actor, action, target, _, after in audit(accounts) if target.startswith(f"A{number} ")]
        assert [(actor, action) for actor, action, _ in entries] == [("admin", "adjustment.request"),
                                                                    ("finance", "adjustment.approve")]
        assert entries[0][2]["amount"] == -1250 and entries[1][2]["txn_id"] is not None
        page = admin.get(f"/cards/{MEMBER.no}").text
        assert f'data-fen="{start - 1250}"' in page and "balance_adjustment" in page
        corrections = finance.get("/api/reports/corrections").json()["tables"][1]  # today's, as finance reads it
        assert [(row["adjustment"], row["amount"], row["asked_by"], row["approver"]) for row in corrections["rows"]] \
            == [(f"A{number}", -1250, "admin", "finance")]
    finally:
        store.close()


def test_a_bonus_campaign_added_in_the_console_doubles_the_bonus_of_todays_top_up(app, park):
    rig, desk, _ = park
    admin = log_in(app, "admin")
    today = desk.ledger.store.business_day("P1", 1_780_000_000_000)
    form = {"campaign": "today", "name": "今日双倍", "kind": "bonus", "multiplier_pct": "200", "first_day": today,
            "last_day": today, "csrf": csrf_of(admin)}
    assert admin.post("/admin/campaigns", data=form).status_code == 303
    bonus = desk.ledger.store.card("P1", MEMBER.no).bonus
    tiers = dict(desk.ledger.store.bonus_rules("P1"))
    assert desk.top_up(50000).balances.bonus == bonus + 2 * tiers[50000]
    assert desk.charge(100, pin=PIN).is_approved


def test_a_menu_price_changed_in_the_console_reaches_a_running_till_in_its_signed_config(rig):
    accounts = ConsoleStore.in_home(rig.home.home)
    accounts.add_user("admin", "admin", "admin", PASSWORD, actor="test")
    admin = log_in(create_app(rig.home.home), "admin")
    link = rig.link("T-FISH-1")
    wait_until(lambda: link.state.station is not None, what="the till's first config")
    csrf = csrf_of(admin)
    assert admin.post("/admin/stations/fishing/menu/add", data={"item": "bait", "name": "鱼饵 Bait", "price": "5.00",
                                                                "csrf": csrf}).status_code == 303
    wait_until(lambda: [(i.item, i.price_fen) for i in link.state.station.menu] == [("bait", 500)],
               what="the new menu at the till")
    assert admin.post("/admin/stations/fishing/menu/set", data={"item": "bait", "name": "鱼饵 Bait", "price": "6.50",
                                                                "csrf": csrf}).status_code == 303
    wait_until(lambda: link.state.station.menu[0].price_fen == 650, what="the new price at the till")

    # A terminal provisioned in the console logs in to the running broker at once (its logins were
    # reloaded), is answered by the ledger and gets its signed config.
    assert admin.post("/admin/terminals", data={"terminal": "T-FISH-9", "station": "fishing", "kinds": "station",
                                                 "broker_host": "127.0.0.1", "broker_port": str(rig.port),
                                                 "csrf": csrf}).status_code == 303
    new_till = rig.link("T-FISH-9")
    assert new_till.sync_seq() == 0  # a Hello answered: the broker let it in and the ledger knows its key
    wait_until(lambda: new_till.state.station is not None and new_till.state.station.menu[0].price_fen == 650,
               what="the new terminal's first config")
