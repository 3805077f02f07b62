"""The console in a real browser (Debian's chromium driven by Playwright, launched by path): each
role logs in on a park after a simulated day and clicks through; the numbers on the pages equal
``fieldpos report`` on the same park, whose books ``ledger verify`` finds balanced. A station
supervisor uses a phone. The screenshots in docs/img are taken here."""

from contextlib import contextmanager
import os
import tempfile
import csv
import io
from pathlib import Path
import socket
import threading
import time

import pytest

from backoffice.app import create_app
from tools.cli import main

from .helpers.park_day import PASSWORD, park_day  # noqa: F401 - the session's park

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"]
# The README's pictures are taken here, but a test run must leave the checkout as it found it: they
# are written to docs/img only when FIELDPOS_DOCS_PICTURES=1 (tools/dev.sh pictures), else to a scratch folder.
SCREENSHOTS = (Path(__file__).resolve().parents[1] / "docs" / "img" if os.environ.get("FIELDPOS_DOCS_PICTURES") == "1"
          else Path(tempfile.mkdtemp(prefix="fieldpos-pictures-")))
PHONE = dict(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True)

playwright_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed (tools/dev.sh installs it): no browser to drive",
                allow_module_level=True)


@contextmanager
def serving(home):
    """The console of the park at ``home`` on a free loopback port, for as long as the block runs."""
    import uvicorn

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(home), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    for _ in range(400):  # bounded: a server that never starts fails below, not by hanging
        if server.started:
            break
        time.sleep(0.05)
    assert server.started, "the console did not start"
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join()


@pytest.fixture(scope="module")
def console_url(park_day):  # noqa: F811
    with serving(park_day.home) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def log_in(browser, console_url, username, **context_options):
    page = browser.new_context(locale="zh-CN", **context_options).new_page()
    page.goto(f"{console_url}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_load_state()
    return page


def fen(text: str) -> int:
    """CSV yuan ("1234.50", "-3.00") back to integer fen, without a float."""
    sign = -1 if text.startswith("-") else 1
    yuan, _, cents = text.lstrip("-").partition(".")
    return sign * (int(yuan) * 100 + int(cents or 0))


def cli_report(capsys, home, *words) -> list[list[str]]:
    capsys.readouterr()
    assert main(["--home", str(home), "report", *words, "--format", "csv"]) == 0
    return list(csv.reader(io.StringIO(capsys.readouterr().out)))


def first_table_rows(rows: list[list[str]]) -> list[list[str]]:
    """The rows of the CSV's first table, under its header line (keys), up to the blank line."""
    start = next(index for index, row in enumerate(rows) if row and row[0] in ("group", "item", "hour")) + 1
    end = next((index for index in range(start, len(rows)) if not rows[index]), len(rows))
    return rows[start:end]


def page_table(page, index: int = 0, key: str | None = None) -> dict[str, dict[str, str]]:
    """first cell (or the ``key`` column's) -> {column key: data-fen or text} of a report table on the page."""
    return page.eval_on_selector(f"table.report[data-table='{index}']", """(table, key) => {
        const out = {};
        for (const tr of table.querySelectorAll('tr')) {
            const cells = [...tr.querySelectorAll('td')];
            if (!cells.length) continue;
            const row = {};
            for (const td of cells) row[td.dataset.key] = td.dataset.fen !== undefined ? td.dataset.fen : td.textContent.trim();
            out[key && row[key] ? row[key] : cells[0].textContent.trim()] = row;
        }
        return out; }""", key)


def park_terminals(park_day) -> int:  # noqa: F811
    """How many terminals the park day's ledger knows: the console lists each one, whatever the demo provisions."""
    from ledger.reports.query import open_read_only

    db = open_read_only(park_day.db_path)
    try:
        return db.execute("SELECT COUNT(*) FROM terminal").fetchone()[0]
    finally:
        db.close()


def test_the_books_of_the_park_day_balance(park_day, capsys):  # noqa: F811
    assert main(["--home", str(park_day.home), "ledger", "verify"]) == 0
    assert "books balance" in capsys.readouterr().out


def test_an_admins_dashboard_shows_what_fieldpos_report_says(browser, console_url, park_day, capsys):  # noqa: F811
    page = log_in(browser, console_url, "admin")
    assert page.url.endswith("/dashboard")
    day = page.text_content("#business-day").strip()
    takings = first_table_rows(cli_report(capsys, park_day.home, "takings", "--day", day))
    total = next(row for row in takings if row[0] == "total")
    assert int(page.get_attribute("#net-sales", "data-fen")) == fen(total[5])
    for station, *values in takings:
        if station != "total":
            cell = page.locator(f"#by-station tr[data-station='{station}'] td[data-fen]")
            assert int(cell.get_attribute("data-fen")) == fen(values[4]), station
    channels = first_table_rows(cli_report(capsys, park_day.home, "takings", "--day", day, "--by", "channel"))
    assert int(page.get_attribute("#deposits-held", "data-fen")) >= 0
    assert channels and page.locator("#terminals tr[data-terminal]").count() == park_terminals(park_day) > 0
    # Each terminal's printer and software version as its last status said, as fieldpos report dashboard has them.
    rows = cli_report(capsys, park_day.home, "dashboard")
    header = next(index for index, row in enumerate(rows) if row and row[0] == "terminal")
    reported = {row[0]: dict(zip(rows[header], row)) for row in rows[header + 1:] if row and row[0].startswith("T-")}
    assert len(reported) == park_terminals(park_day)
    for terminal, line in reported.items():
        row = page.locator(f"#terminals tr[data-terminal='{terminal}']")
        printer, version = row.locator("td[data-printer]"), row.locator("td[data-version]")
        assert (printer.get_attribute("data-printer") or "not reported") == line["printer"], terminal
        assert (version.get_attribute("data-version") or "not reported") == line["software_version"], terminal
    assert any(line["printer"] == "ready" for line in reported.values())  # the stations' tills said so
    page.wait_for_selector("#hour-chart[data-drawn='yes']")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)
    page.click("#nav-audit")
    assert page.locator("#audit tr").count() > 1
    page.click("text=English")
    assert page.text_content("#nav-dashboard").strip() == "Dashboard"
    page.click("text=中文")
    assert page.text_content("#nav-dashboard").strip() == "概览"


def test_finance_clicks_to_the_takings_report_and_its_download_equals_the_command_line(browser, console_url,
                                                                                        park_day, capsys):  # noqa: F811
    page = log_in(browser, console_url, "finance")
    day = page.text_content("#business-day").strip()
    page.click("#nav-reports")
    page.click("#report-takings")
    page.fill("input[name=day]", day)
    page.click("#show")
    page.wait_for_selector("#report-chart[data-drawn='yes']")
    cli = first_table_rows(cli_report(capsys, park_day.home, "takings", "--day", day))
    on_page = page_table(page)
    assert {row[0]: fen(row[5]) for row in cli} == {group: int(row["net_fen"]) for group, row in on_page.items()}
    page.screenshot(path=str(SCREENSHOTS / "report-takings.png"), full_page=True)
    with page.expect_download() as download:
        page.click("#export-csv")
    downloaded = Path(download.value.path()).read_bytes().decode("utf-8-sig")
    capsys.readouterr()
    assert main(["--home", str(park_day.home), "report", "takings", "--day", day, "--format", "csv"]) == 0
    assert downloaded == capsys.readouterr().out


def test_finance_reads_the_contractor_statement_receipt_by_receipt(browser, console_url, park_day, capsys):  # noqa: F811
    page = log_in(browser, console_url, "finance")
    day = page.text_content("#business-day").strip()
    page.goto(f"{console_url}/reports")
    page.click("#report-contractor")
    page.fill("input[name=contractor]", "C-HORSE")
    page.fill("input[name=day]", day)
    page.click("#show")
    summary = {row[0]: fen(row[1]) for row in first_table_rows(
        cli_report(capsys, park_day.home, "contractor", "--contractor", "C-HORSE", "--day", day))}
    on_page = page_table(page, 0)
    assert {item: int(row["amount_fen"]) for item, row in on_page.items()} == summary
    receipts = page_table(page, 2, key="receipt")
    listed = {receipt: row for receipt, row in receipts.items() if receipt != "total"}
    assert len(listed) == page.locator("table.report[data-table='2'] tr").count() - 2  # less header and total
    assert sum(int(row["payable_fen"]) for row in listed.values()) == summary["net payable 应付净额"]
    assert all(receipt.startswith("T-RIDING-1-") for receipt in listed)
    page.screenshot(path=str(SCREENSHOTS / "contractor-statement.png"), full_page=True)


def test_a_station_supervisor_on_a_phone_sees_only_the_bbq(browser, console_url, park_day, capsys):  # noqa: F811
    page = log_in(browser, console_url, "bbq-sup", **PHONE)
    day = page.text_content("#business-day").strip()
    assert [row.get_attribute("data-station") for row in page.locator("#by-station tr[data-station]").all()] in (["bbq"], [])
    assert [row.get_attribute("data-terminal") for row in page.locator("#terminals tr[data-terminal]").all()] == ["T-BBQ-1"]
    assert page.locator("#deposits-held").count() == 0
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "the page scrolls sideways"
    cli = first_table_rows(cli_report(capsys, park_day.home, "takings", "--day", day, "--station", "bbq"))
    bbq_net = next(fen(row[5]) for row in cli if row[0] == "bbq")
    assert int(page.get_attribute("#net-sales", "data-fen")) == bbq_net
    page.screenshot(path=str(SCREENSHOTS / "dashboard-phone.png"), full_page=True)
    page.click("#nav-reports")
    assert page.locator("#report-liabilities").count() == 0
    page.click("#report-takings")
    page.fill("input[name=day]", day)
    page.click("#show")
    assert set(page_table(page)) == {"bbq", "total"}
    response = page.goto(f"{console_url}/reports/takings?station=fishing")
    assert response.status == 403


def test_the_front_desk_sees_no_report_and_the_technician_no_money(browser, console_url, park_day):  # noqa: F811
    desk = log_in(browser, console_url, "desk")
    assert desk.url.endswith("/home") and desk.locator("#nav-reports").count() == 0
    for url in ("/reports", "/reports/takings", "/api/reports/takings", "/dashboard"):
        assert desk.goto(f"{console_url}{url}").status == 403, url
    technician = log_in(browser, console_url, "tech")
    assert technician.url.endswith("/terminals")
    assert technician.locator("[data-fen]").count() == 0
    assert technician.locator("#terminals tr[data-terminal]").count() == park_terminals(park_day) > 0
    assert technician.goto(f"{console_url}/dashboard").status == 403


def test_an_admin_asks_for_a_balance_adjustment_finance_approves_it_and_the_audit_log_shows_both(browser, tmp_path):
    """On a park of its own (the park day's books stay as the report tests read them): the admin
    finds a member's card, asks for 12.50 back on it; finance, a second user, approves; the card's
    page shows the new balance, the books balance, and the audit log names both."""
    from backoffice.accounts import ConsoleStore
    from host_sim.rig import ParkRig
    from ledger.verify import verify_books

    from .conftest import TERMINALS
    from .helpers.intake_driver import Ledger
    from .test_members import MEMBER, Desk

    rig = ParkRig(tmp_path).create(TERMINALS)
    ledger = Ledger(rig)
    try:
        desk = Desk(ledger)
        assert desk.open().is_approved and desk.top_up(30000).is_approved
        accounts = ConsoleStore.in_home(rig.home.home)
        for username, role in (("admin", "admin"), ("finance", "finance")):
            accounts.add_user(username, f"{username} 测试", role, PASSWORD, actor="test")
        with serving(rig.home.home) as url:
            admin = log_in(browser, url, "admin")
            admin.click("#nav-cards")
            admin.fill("#card-search input[name=q]", "13800138000")  # the member's phone
            admin.click("#card-search button")
            admin.click(f"#found a:has-text('{MEMBER.no}')")
            assert admin.locator("#card-fen").get_attribute("data-fen") == "30000"
            admin.select_option("#adjust select[name=asset]", "fen")
            admin.fill("#adjust input[name=amount]", "12.50")
            admin.fill("#adjust input[name=reason]", "设备故障少计 ride stopped early")
            admin.click("#adjust button")
            admin.wait_for_load_state()
            assert admin.locator("#card-fen").get_attribute("data-fen") == "30000"  # asked, not booked
            admin.goto(f"{url}/adjustments")
            assert admin.locator("#pending .approve").count() == 0  # not the one who asked

            finance = log_in(browser, url, "finance")
            finance.goto(f"{url}/adjustments")
            finance.click("#pending .approve")
            finance.wait_for_load_state()
            assert finance.locator("#done").count() == 1
            finance.goto(f"{url}/cards/{MEMBER.no}")
            assert finance.locator("#card-fen").get_attribute("data-fen") == "31250"
            finance.screenshot(path=str(SCREENSHOTS / "console-adjustment.png"), full_page=True)

            admin.click("#nav-audit")
            rows = admin.locator("#audit tr").all_inner_texts()
            asked = [row for row in rows if "adjustment.request" in row]
            approved = [row for row in rows if "adjustment.approve" in row]
            assert len(asked) == 1 and "admin" in asked[0] and "1250" in asked[0]
            assert len(approved) == 1 and "finance" in approved[0] and "booked" in approved[0]
        assert ledger.store.card("P1", MEMBER.no).fen == 31250 and verify_books(ledger.store).is_ok
    finally:
        rig.close()
        ledger.store.close()


def test_finance_downloads_the_statement_as_pdf_and_marks_it_paid_once_and_an_admin_sends_members_a_notice(
        browser, park_day, tmp_path, monkeypatch, capsys):  # noqa: F811
    """On a copy of the park day (its books stay as the report tests read them), the morning after:
    the statement's PDF carries its net payable; marking it paid shows it paid with nothing
    outstanding and no "Mark paid" form, a second payment sent from another tab is refused with the
    first payment's time, and the books verify. The admin's notice reaches as many members as the
    outbox has rows for it."""
    import shutil

    import backoffice.money_out
    import pypdf

    from ledger.reports.query import open_read_only
    from protocol.money import format_fen

    home = tmp_path / "home"
    shutil.copytree(park_day.home, home)
    monkeypatch.setattr(backoffice.money_out, "now_ms", lambda: int(time.time() * 1000) + 86_400_000)
    with serving(home) as url:
        page = log_in(browser, url, "finance")
        day = page.text_content("#business-day").strip()
        page.goto(f"{url}/reports/contractor?contractor=C-HORSE&day={day}")
        owed = int(page_table(page, 0)["net payable 应付净额"]["amount_fen"])
        with page.expect_download() as download:
            page.click("#export-pdf")
        text = "".join(p.extract_text() for p in pypdf.PdfReader(download.value.path()).pages)
        assert "net payable 应付净额" in text and format_fen(owed, grouped=True) in text
        stale = page.context.new_page()  # the same statement open in another tab since before the payment
        stale.goto(page.url)
        page.fill("#settlement-reference", "TR-0001")
        page.click("#settlement-pay-button")
        page.wait_for_load_state()
        summary = page_table(page, 0)
        assert (int(summary["paid 已付款"]["amount_fen"]), int(summary["outstanding 未付款"]["amount_fen"])) == (owed, 0)
        payment = page_table(page, 3)
        (paid_at,) = [row["paid_at"] for row in payment.values()]
        # Paid: the page offers no "Mark paid" any more, and says so.
        assert page.locator("#settlement-pay").count() == 0 and page.locator("#settlement-paid").count() == 1
        page.screenshot(path=str(SCREENSHOTS / "contractor-statement-paid.png"), full_page=True)
        stale.click("#settlement-pay-button")  # the other tab's form, sent after the payment
        stale.wait_for_load_state()
        assert "ALREADY_PAID" in stale.text_content(".error") and paid_at in stale.text_content(".error")

        admin = log_in(browser, url, "admin")
        admin.click("#nav-notices")
        admin.fill("#notice-text", "明日闭园检修 Closed tomorrow for maintenance")
        admin.click("#notice-send")
        admin.wait_for_load_state()
        sent = int(admin.get_attribute("#notice-sent", "data-recipients"))
        db = open_read_only(home / "ledger.db")
        try:
            queued = db.execute("SELECT COUNT(*) FROM notification WHERE notice_id IS NOT NULL").fetchone()[0]
        finally:
            db.close()
        assert sent == queued >= 1
        admin.click("#nav-audit")
        rows = admin.locator("#audit tr").all_inner_texts()
        assert any("settlement.pay" in row and "finance" in row for row in rows)
        assert any("notice.send" in row and "admin" in row for row in rows)
    capsys.readouterr()
    assert main(["--home", str(home), "ledger", "verify"]) == 0
    assert "books balance" in capsys.readouterr().out
