"""Contractor settlement (第三方承包对账) on a park after a simulated day: the statement as a PDF the
contractor can tick, read back as text; marking it paid books the payout out of the contractor's
payable through the ledger's own path, once, and the books still verify."""

import io
import re

import pypdf
import pytest

from ledger.reports.catalog import make_scope, run_report
from ledger.reports.query import open_read_only
from protocol.money import format_fen
from tools.cli import main

from .helpers.park_day import park_day  # noqa: F401 - the session's park

CONTRACTOR = "C-HORSE"


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages)


@pytest.fixture(scope="module")
def statement(park_day):  # noqa: F811
    db = open_read_only(park_day.db_path)
    day = db.execute("SELECT MAX(business_day) FROM txn").fetchone()[0]
    report = run_report(db, "contractor", make_scope(db, day=day), contractor=CONTRACTOR)
    db.close()
    return day, report


def test_the_statement_as_pdf_carries_its_totals_and_every_receipt_number(park_day, statement, tmp_path):  # noqa: F811
    day, report = statement
    out = tmp_path / "statement.pdf"
    assert main(["--home", str(park_day.home), "report", "contractor", "--contractor", CONTRACTOR, "--day", day,
                 "--format", "pdf", "--out", str(out)]) == 0
    data = out.read_bytes()
    assert data.startswith(b"%PDF-")
    text = pdf_text(data)
    assert "承包商对账单" in text and CONTRACTOR in text
    summary = dict(report.tables[0].rows)
    for item in ("gross sales 销售总额", "commission 佣金", "net payable 应付净额"):
        assert re.search(re.escape(item) + r"\s+" + re.escape(format_fen(summary[item], grouped=True)), text), item
    receipts = report.tables[2].column("receipt")
    assert receipts and all(re.search(re.escape(receipt) + r"\s", text) for receipt in receipts)
    # Each receipt's line in the PDF carries its own amount (the contractor ticks them one by one).
    amounts = dict(zip(receipts, report.tables[2].column("amount_fen")))
    for receipt, amount in amounts.items():
        line = next(line for line in text.splitlines() if re.search(re.escape(receipt) + r"\s", line))
        assert format_fen(amount, grouped=True) in line


@pytest.mark.parametrize("name", ["takings", "time-of-day", "corrections", "liabilities", "members", "deposits",
                                  "rentals"])
def test_every_report_sets_as_a_pdf_that_fits_the_page(park_day, name):  # noqa: F811
    from ledger.reports.export import render

    db = open_read_only(park_day.db_path)
    try:
        day = db.execute("SELECT MAX(business_day) FROM txn").fetchone()[0]
        report = run_report(db, name, make_scope(db, day=day))
    finally:
        db.close()
    text = pdf_text(render(report, "pdf"))
    assert report.title_zh in text
    for table in report.tables:
        if table.totals:  # the last column's total, as the CSV writes it, is on the page
            column = table.columns[-1]
            value = table.totals[-1]
            assert (format_fen(value, grouped=True) if column.kind == "fen" else str(value)) in text, table.title_en


def test_a_pdf_needs_a_file_to_go_to(park_day, capsys):  # noqa: F811
    assert main(["--home", str(park_day.home), "report", "contractor", "--contractor", CONTRACTOR,
                 "--format", "pdf"]) == 2
    assert "--format pdf needs --out" in capsys.readouterr().err


# ---------------------------------------------------------------- marking a statement paid
from .test_report_books import _merchant_copies  # noqa: E402 - the terminals' own record of each receipt


@pytest.fixture
def park_copy(park_day, tmp_path, monkeypatch):  # noqa: F811
    """The session's park, copied (paying changes the books other tests read), with the settlement
    commands' clock set to the next morning: the simulated day is over."""
    import shutil
    import time

    import tools.settlement_cli

    home = tmp_path / "home"
    shutil.copytree(park_day.home, home)
    monkeypatch.setattr(tools.settlement_cli, "now_ms", lambda: int(time.time() * 1000) + 86_400_000)
    return home


def _books(home):
    db = open_read_only(home / "ledger.db")
    try:
        day = db.execute("SELECT MAX(business_day) FROM txn WHERE kind = 'charge'").fetchone()[0]
        report = run_report(db, "contractor", make_scope(db, day=day), contractor=CONTRACTOR)
        counts = db.execute("SELECT COUNT(*), (SELECT COUNT(*) FROM posting) FROM txn").fetchone()
        owed = db.execute("SELECT COALESCE(SUM(amount), 0) FROM posting WHERE account_id = ?",
                          (f"contractor:{CONTRACTOR}",)).fetchone()[0]
        payouts = db.execute("""SELECT t.txn_id, t.kind, t.amount_fen, p.account_id, p.amount FROM txn t
                                JOIN posting p USING (txn_id) WHERE t.kind = 'contractor_payout'
                                ORDER BY t.txn_id, p.account_id""").fetchall()
    finally:
        db.close()
    return day, report, counts, owed, payouts


def test_a_statement_adds_up_to_its_receipts_and_marking_it_paid_books_the_payout_and_verify_passes(
        park_day, park_copy, capsys):  # noqa: F811
    day, before, counts_before, owed_before, _ = _books(park_copy)
    summary = dict(before.tables[0].rows)
    receipts = before.tables[2]
    listed = dict(zip(receipts.column("receipt"), receipts.column("amount_fen")))
    assert listed == _merchant_copies(park_day.out / "terminal-T-RIDING-1.db")
    assert summary["net sales 净销售额"] == sum(listed.values()) > 0
    net_payable = summary["net payable 应付净额"]
    assert net_payable == sum(receipts.column("payable_fen")) == owed_before
    assert (summary["paid 已付款"], summary["outstanding 未付款"]) == (0, net_payable)

    assert main(["--home", str(park_copy), "settlement", "pay", "--station", "riding", "--period", day,
                 "--reference", "TR-20260502-1", "--by", "finance-li"]) == 0
    assert f"paid: {format_fen(net_payable, grouped=True)} by bank ({len(listed)} receipts)" in capsys.readouterr().out

    _, after, counts_after, owed_after, payouts = _books(park_copy)
    assert counts_after == (counts_before[0] + 1, counts_before[1] + 2)
    txn_id = payouts[0][0]
    assert payouts == [(txn_id, "contractor_payout", net_payable, "channel:bank", net_payable),
                       (txn_id, "contractor_payout", net_payable, f"contractor:{CONTRACTOR}", -net_payable)]
    assert owed_after == 0
    paid_summary = dict(after.tables[0].rows)
    assert (paid_summary["paid 已付款"], paid_summary["outstanding 未付款"]) == (net_payable, 0)
    assert after.tables[2].rows == before.tables[2].rows  # the receipts are what they were
    (payment,) = after.tables[3].rows
    assert payment[1] == day and payment[3:] == ("finance-li", "bank", "TR-20260502-1", net_payable)
    assert any(note.startswith("paid 已付款") for note in after.notes)

    assert main(["--home", str(park_copy), "ledger", "verify"]) == 0
    assert "books balance" in capsys.readouterr().out


def test_paying_a_statement_twice_is_refused_with_the_first_payments_time_and_books_nothing(park_copy, capsys):
    day, _, _, _, _ = _books(park_copy)
    assert main(["--home", str(park_copy), "settlement", "pay", "--contractor", CONTRACTOR, "--period", day]) == 0
    first = capsys.readouterr().out
    paid_at = re.search(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) by", first).group(1)
    _, _, counts, _, payouts = _books(park_copy)

    assert main(["--home", str(park_copy), "settlement", "pay", "--station", "riding", "--period", day]) == 2
    error = capsys.readouterr().err
    assert "[ALREADY_PAID]" in error and paid_at in error and len(error.strip().splitlines()) == 1
    # A period that takes in the paid day would pay its receipts again.
    month = day[:7]
    assert main(["--home", str(park_copy), "settlement", "pay", "--contractor", CONTRACTOR, "--period", month]) == 2
    assert "[PERIOD_OVERLAPS_PAID]" in capsys.readouterr().err
    assert _books(park_copy)[2] == counts and _books(park_copy)[4] == payouts

    assert main(["--home", str(park_copy), "settlement", "list"]) == 0
    (line,) = capsys.readouterr().out.strip().splitlines()
    assert CONTRACTOR in line and day in line and paid_at in line


def test_a_day_not_over_or_a_station_the_park_runs_itself_is_refused(park_copy, monkeypatch, capsys):
    import tools.settlement_cli

    day, _, counts, _, _ = _books(park_copy)
    monkeypatch.setattr(tools.settlement_cli, "now_ms", lambda: int(__import__("time").time() * 1000))
    assert main(["--home", str(park_copy), "settlement", "pay", "--contractor", CONTRACTOR, "--period", day]) == 2
    assert "[PERIOD_NOT_OVER]" in capsys.readouterr().err
    assert main(["--home", str(park_copy), "settlement", "pay", "--station", "bbq", "--period", "2026-01-01"]) == 2
    assert "[UNKNOWN_CONTRACTOR]" in capsys.readouterr().err
    assert _books(park_copy)[2] == counts


def test_a_day_closed_is_over_and_its_statement_may_be_paid_the_same_day(park_copy, monkeypatch, capsys):
    import tools.settlement_cli

    day, _, _, _, _ = _books(park_copy)
    monkeypatch.setattr(tools.settlement_cli, "now_ms", lambda: int(__import__("time").time() * 1000))
    assert main(["--home", str(park_copy), "settlement", "pay", "--contractor", CONTRACTOR, "--period", day]) == 2
    assert "[PERIOD_NOT_OVER]" in capsys.readouterr().err
    assert main(["--home", str(park_copy), "ledger", "close-day", day, "--force"]) == 0
    assert main(["--home", str(park_copy), "settlement", "pay", "--contractor", CONTRACTOR, "--period", day]) == 0
    assert "paid" in capsys.readouterr().out
    assert main(["--home", str(park_copy), "ledger", "verify"]) == 0


def test_verify_finds_a_payout_that_pays_no_statement(park_copy):
    from ledger.rules.decision import Posting
    from ledger.store import NewTxn, Store
    from ledger.verify import verify_books

    store = Store(park_copy / "ledger.db")
    try:
        with store.batch():  # what a payout booked around ledger.settlement would leave
            store.book(NewTxn(park_id="P1", kind="contractor_payout", terminal_id="P1:settlement", seq=99,
                              operator="nobody", station_id="", card_account=None, amount_fen=500,
                              ledger_time_ms=0, terminal_time_ms=0, clock_uncertain=False),
                       (Posting(f"contractor:{CONTRACTOR}", "fen", -500), Posting("channel:cash", "fen", 500)))
        problems = verify_books(store).problems
    finally:
        store.close()
    assert any("pays a contractor but no paid statement" in problem for problem in problems), problems


@pytest.mark.parametrize("text, first, last", [
    ("2026-05-01", "2026-05-01", "2026-05-01"),
    ("2026-02", "2026-02-01", "2026-02-28"),
    ("2028-02", "2028-02-01", "2028-02-29"),
    ("2026-12", "2026-12-01", "2026-12-31"),
    ("2026-05-01..2026-05-07", "2026-05-01", "2026-05-07"),
])
def test_a_period_is_a_day_a_month_or_a_run_of_days(text, first, last):
    from ledger.settlement import parse_period

    assert (parse_period(text).first, parse_period(text).last) == (first, last)


@pytest.mark.parametrize("text", ["2026-13", "May", "2026-05-07..2026-05-01", "2026-05-01..", "2025-01-01..2026-05-01"])
def test_a_period_that_is_no_period_is_refused(text):
    from ledger.reports.query import ReportError
    from ledger.settlement import parse_period

    with pytest.raises(ReportError):
        parse_period(text)
