"""The console's security, checked on the server without a browser: logins, lockout and rate limit,
CSRF on every POST, each role's pages and APIs, and an audit log nobody can change."""

import re
import sqlite3

from fastapi.testclient import TestClient
import pytest

from backoffice.accounts import ATTEMPT_WINDOW_MS, MAX_ATTEMPTS_PER_ADDRESS, MAX_FAILED_LOGINS, ConsoleStore
from backoffice.app import create_app
from backoffice.errors import AccountLocked, LoginRefused, TooManyAttempts
from ledger.reports.catalog import REPORTS

from .helpers.park_day import PASSWORD, park_day  # noqa: F401 - the session's park


@pytest.fixture(scope="module")
def app(park_day):  # noqa: F811
    return create_app(park_day.home)


def log_in(app, username: str, password: str = PASSWORD) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    form = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    response = client.post("/login", data={"username": username, "password": password, "csrf": csrf})
    assert response.status_code == 303
    return client


def csrf_of(client: TestClient, page: str = "/home") -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get(page).text).group(1)


REPORT_URLS = [url for name in REPORTS for url in (f"/reports/{name}", f"/reports/{name}/export?format=csv",
                                                   f"/api/reports/{name}")]


def test_nobody_logged_in_is_sent_to_the_login_page_and_the_api_answers_401(app):
    client = TestClient(app, follow_redirects=False)
    for url in ("/dashboard", "/reports/takings", "/audit", "/terminals"):
        response = client.get(url)
        assert response.status_code == 303 and response.headers["location"] == "/login"
    for url in ("/api/dashboard", "/api/reports/takings", "/api/audit", "/api/terminals"):
        assert client.get(url).status_code == 401
    assert client.get("/reports/takings/export?format=pdf").status_code == 303  # not a 400 to a stranger


def test_a_wrong_password_is_refused_and_five_lock_the_account_even_against_the_right_one(park_day):  # noqa: F811
    store = ConsoleStore.in_home(park_day.home)
    store.add_user("locky", "Locky", "finance", PASSWORD, actor="test")
    for attempt in range(MAX_FAILED_LOGINS - 1):
        with pytest.raises(LoginRefused) as refused:
            store.log_in("locky", "wrong-password-1", address=f"10.0.0.{attempt}")
        assert type(refused.value) is LoginRefused
    with pytest.raises(AccountLocked):
        store.log_in("locky", "wrong-password-1", address="10.0.0.9")
    with pytest.raises(AccountLocked):
        store.log_in("locky", PASSWORD, address="10.0.0.10")
    actions = [row[3] for row in store.audit_entries() if row[4] == "locky"]
    assert actions.count("login.failed") == MAX_FAILED_LOGINS - 1 and "login.locked" in actions


def test_an_address_that_tries_too_often_is_refused_even_with_the_right_password(park_day):  # noqa: F811
    store = ConsoleStore.in_home(park_day.home)
    now_ms = 1_900_000_000_000
    for attempt in range(MAX_ATTEMPTS_PER_ADDRESS):
        with pytest.raises(LoginRefused):
            store.log_in(f"guess{attempt}", "nothing-at-all", address="192.0.2.7", now_ms=now_ms + attempt)
    with pytest.raises(TooManyAttempts):
        store.log_in("finance", PASSWORD, address="192.0.2.7", now_ms=now_ms + MAX_ATTEMPTS_PER_ADDRESS)
    token, session = store.log_in("finance", PASSWORD, address="192.0.2.7", now_ms=now_ms + ATTEMPT_WINDOW_MS + 100)
    assert session.user.username == "finance" and token


def test_every_post_needs_its_csrf_token(app):
    client = TestClient(app, follow_redirects=False)
    client.get("/login")
    assert client.post("/login", data={"username": "admin", "password": PASSWORD, "csrf": "forged"}).status_code == 403
    admin = log_in(app, "admin")
    assert admin.post("/logout", data={"csrf": "forged"}).status_code == 403
    assert admin.get("/api/dashboard").status_code == 200  # still logged in
    assert admin.post("/logout", data={"csrf": csrf_of(admin)}).status_code == 303
    assert admin.get("/api/dashboard").status_code == 401


def test_the_front_desk_gets_403_on_every_report_page_and_api(app):
    desk = log_in(app, "desk")
    for url in REPORT_URLS + ["/reports", "/dashboard", "/api/dashboard", "/terminals", "/api/terminals", "/audit",
                              "/api/audit", "/users"]:
        assert desk.get(url).status_code == 403, url
    assert desk.get("/home").status_code == 200


def test_a_station_supervisor_sees_only_their_stations(app):
    supervisor = log_in(app, "bbq-sup")
    board = supervisor.get("/api/dashboard").json()
    assert {line["station"] for line in board["by_station"]} <= {"bbq"}
    assert {line["station"] for line in board["terminals"]} == {"bbq"}
    assert "deposits_held_fen" not in board["money"]
    takings = supervisor.get("/api/reports/takings?by=station&from=2020-01-01&to=2020-12-31").json()
    assert takings["scope"].endswith("stations bbq")
    assert supervisor.get("/api/reports/takings?station=fishing").status_code == 403
    assert supervisor.get("/reports/takings?station=bbq&station=riding").status_code == 403
    for name, kind in REPORTS.items():
        assert (supervisor.get(f"/api/reports/{name}").status_code == 403) == kind.is_park_wide, name


def test_a_technician_sees_terminals_and_alerts_but_no_money(app):
    technician = log_in(app, "tech")
    terminals = technician.get("/api/terminals").json()
    assert terminals["terminals"] and "money" not in terminals and "by_station" not in terminals
    assert "data-fen" not in technician.get("/terminals").text
    for url in REPORT_URLS + ["/dashboard", "/api/dashboard", "/audit"]:
        assert technician.get(url).status_code == 403, url


def test_finance_reads_every_report_but_not_the_audit_log(app):
    finance = log_in(app, "finance")
    for name in REPORTS:
        options = {"lookup": "?phone=13800138000", "contractor": "?contractor=C-HORSE"}.get(name, "")
        assert finance.get(f"/api/reports/{name}{options}").status_code == 200, name
    assert finance.get("/api/audit").status_code == 403


def test_the_audit_log_is_read_by_admins_and_refuses_every_change(app, park_day):  # noqa: F811
    admin = log_in(app, "admin")
    entries = admin.get("/api/audit").json()
    assert {"user.add", "login"} <= {entry["action"] for entry in entries}
    db = sqlite3.connect(park_day.home / "console.db")
    for change in ("UPDATE audit SET actor = 'nobody'", "DELETE FROM audit"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute(change)
    db.close()


def test_a_disabled_user_is_out_at_once(app, park_day):  # noqa: F811
    store = ConsoleStore.in_home(park_day.home)
    store.add_user("leaver", "Leaver", "finance", PASSWORD, actor="test")
    leaver = log_in(app, "leaver")
    assert leaver.get("/api/dashboard").status_code == 200
    store.set_active("leaver", False, actor="test")
    assert leaver.get("/api/dashboard").status_code == 401
    before, after = [(row[5], row[6]) for row in store.audit_entries() if row[3] == "user.disable" and row[4] == "leaver"][0]
    assert '"is_active": true' in before and '"is_active": false' in after


def test_pages_forbid_framing_and_foreign_scripts(app):
    response = log_in(app, "admin").get("/dashboard")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "<script>" not in response.text  # no inline script: the chart's data rides in an attribute


def test_the_first_admin_is_made_on_the_command_line_and_the_audit_log_says_so(park_day, capsys):  # noqa: F811
    from tools.cli import main

    home = str(park_day.home)
    assert main(["--home", home, "console", "user", "add", "--username", "boss", "--name", "Boss", "--role", "admin",
                 "--password", PASSWORD]) == 0
    assert main(["--home", home, "console", "user", "disable", "--username", "boss"]) == 0
    assert main(["--home", home, "console", "user", "list"]) == 0
    assert "boss             admin              disabled" in capsys.readouterr().out
    entries = [row for row in ConsoleStore.in_home(park_day.home).audit_entries() if row[4] == "boss"]
    assert [row[3] for row in entries] == ["user.disable", "user.add"]
    assert all(row[2].startswith("cli:") for row in entries)
