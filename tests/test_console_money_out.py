"""The console's settlement and notices, on the server without a browser: finance marks a contractor's
statement paid from its page (once; CSRF checked; audited) and downloads it as PDF; an admin sends
members a notice; the other roles get 403."""

import io
import json
import re
import shutil
import time

from fastapi.testclient import TestClient
import pypdf
import pytest

from backoffice.app import create_app
from ledger.reports.query import open_read_only
from protocol.money import format_fen
from tools.cli import main

from .helpers.park_day import park_day  # noqa: F401 - the session's park
from .test_console_security import csrf_of, log_in


@pytest.fixture
def home(park_day, tmp_path, monkeypatch):  # noqa: F811
    """A copy of the session's park (paying changes its books), the console's clock the next morning."""
    import backoffice.money_out

    copy = tmp_path / "home"
    shutil.copytree(park_day.home, copy)
    monkeypatch.setattr(backoffice.money_out, "now_ms", lambda: int(time.time() * 1000) + 86_400_000)
    return copy


@pytest.fixture
def app(home):
    return create_app(home)


def _day(home) -> str:
    db = open_read_only(home / "ledger.db")
    try:
        return db.execute("SELECT MAX(business_day) FROM txn WHERE kind = 'charge'").fetchone()[0]
    finally:
        db.close()


def _audit(client, action) -> list[dict]:
    return [entry for entry in client.get("/api/audit").json() if entry["action"] == action]


def test_finance_marks_a_statement_paid_from_its_page_once_and_the_admin_reads_it_in_the_audit(app, home, capsys):
    day = _day(home)
    finance = log_in(app, "finance")
    url = f"/reports/contractor?contractor=C-HORSE&day={day}"
    page = finance.get(url).text
    assert 'id="settlement-pay"' in page and 'id="export-pdf"' in page
    statement = finance.get(f"/api/reports/contractor?contractor=C-HORSE&day={day}").json()
    summary = {row["item"]: row["amount_fen"] for row in statement["tables"][0]["rows"]}
    owed = summary["net payable 应付净额"]
    form = {"csrf": csrf_of(finance, url), "contractor": "C-HORSE", "day": day, "channel": "bank", "reference": "TR-9"}

    assert finance.post("/settlement/pay", data={**form, "csrf": "forged"}).status_code == 403
    paid = finance.post("/settlement/pay", data=form)
    assert paid.status_code == 303 and paid.headers["location"] == f"/reports/contractor?contractor=C-HORSE&day={day}"
    after = finance.get(f"/api/reports/contractor?contractor=C-HORSE&day={day}").json()
    summary = {row["item"]: row["amount_fen"] for row in after["tables"][0]["rows"]}
    assert (summary["paid 已付款"], summary["outstanding 未付款"]) == (owed, 0)
    (payment,) = after["tables"][3]["rows"]
    assert (payment["paid_by"], payment["reference"], payment["amount_fen"]) == ("console:finance", "TR-9", owed)

    again = finance.post("/settlement/pay", data=form)
    assert again.status_code == 409 and "ALREADY_PAID" in again.text and payment["paid_at"] in again.text

    (entry,) = _audit(log_in(app, "admin"), "settlement.pay")
    assert entry["actor"] == "finance" and entry["target"] == f"C-HORSE {day}"
    assert json.loads(entry["before"]) == {"outstanding_fen": owed} and json.loads(entry["after"])["paid_fen"] == owed
    assert main(["--home", str(home), "ledger", "verify"]) == 0
    assert "books balance" in capsys.readouterr().out


def test_the_statement_downloads_as_a_pdf_with_its_totals(app, home):
    day = _day(home)
    finance = log_in(app, "finance")
    response = finance.get(f"/reports/contractor/export?contractor=C-HORSE&day={day}&format=pdf")
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(response.content)).pages)
    statement = finance.get(f"/api/reports/contractor?contractor=C-HORSE&day={day}").json()
    net = next(row["amount_fen"] for row in statement["tables"][0]["rows"] if row["item"] == "net payable 应付净额")
    assert re.search(r"net payable 应付净额\s+" + re.escape(format_fen(net, grouped=True)), text)
    assert all(row["receipt"] in text for row in statement["tables"][2]["rows"])


def test_an_admin_sends_members_a_notice_once_per_form_and_it_is_audited(app, home):
    admin = log_in(app, "admin")
    page = admin.get("/notices").text
    key = re.search(r'name="request_key" value="([^"]+)"', page).group(1)
    form = {"csrf": csrf_of(admin, "/notices"), "request_key": key, "text": "周末烧烤节 BBQ weekend", "audience": "all"}
    first = admin.post("/notices", data=form)
    assert first.status_code == 200 and 'id="notice-sent"' in first.text
    assert admin.post("/notices", data=form).status_code == 200  # the form sent twice
    db = open_read_only(home / "ledger.db")
    try:
        notices = db.execute("SELECT notice_id, recipients, sent_by FROM member_notice").fetchall()
        phones = db.execute("SELECT phone FROM notification WHERE notice_id IS NOT NULL").fetchall()
        members = db.execute("SELECT COUNT(DISTINCT phone) FROM member").fetchone()[0]
    finally:
        db.close()
    assert len(notices) == 1 and notices[0][1] == len(phones) == members and notices[0][2] == "console:admin"
    (entry,) = _audit(admin, "notice.send")
    assert json.loads(entry["after"])["recipients"] == len(phones)
    bad = admin.post("/notices", data={**form, "request_key": "another", "audience": "visited", "station": "nowhere"})
    assert bad.status_code == 400 and "no station" in bad.text


@pytest.mark.parametrize("username", ["desk", "bbq-sup", "tech"])
def test_only_finance_and_admins_pay_and_only_admins_send_notices(app, username):
    client = log_in(app, username)
    csrf = csrf_of(client)
    assert client.post("/settlement/pay", data={"csrf": csrf, "contractor": "C-HORSE"}).status_code == 403
    assert client.get("/notices").status_code == 403
    assert client.post("/notices", data={"csrf": csrf, "text": "x"}).status_code == 403


def test_finance_sends_no_notices(app):
    finance = log_in(app, "finance")
    assert finance.get("/notices").status_code == 403
    assert finance.post("/notices", data={"csrf": csrf_of(finance), "text": "x"}).status_code == 403
