"""The reports agree with the books on a simulated park day: every figure is checked against an
independent reading of the postings, the terminals' own records or the card balances, and every
format says the same thing."""

from decimal import Decimal
import io
import sqlite3

from openpyxl import load_workbook
import pytest

from ledger.reports.catalog import make_scope, run_report
from ledger.reports.export import render
from ledger.reports.lookup import NothingFound
from ledger.reports.query import NoLedger, ReportError, open_read_only
from protocol import codec, envelope
from tools.cli import main

from .helpers.park_day import park_day  # noqa: F401 - the session's park


@pytest.fixture(scope="module")
def books(park_day):  # noqa: F811
    db = open_read_only(park_day.db_path)
    day = db.execute("SELECT MAX(business_day) FROM txn").fetchone()[0]
    yield db, make_scope(db, day=day), day
    db.close()


def _rows(report, table=0) -> dict:
    return {row[0]: row for row in report.tables[table].rows}


def test_each_stations_net_takings_are_what_its_revenue_and_contractor_accounts_were_credited(books):
    db, scope, day = books
    report = run_report(db, "takings", scope, by="station")
    credited = dict(db.execute(
        """SELECT t.station_id, SUM(p.amount) FROM txn t JOIN posting p ON p.txn_id = t.txn_id
           WHERE t.business_day = ? AND t.kind IN ('charge', 'offline_charge', 'void') AND p.asset = 'fen'
             AND (p.account_id LIKE 'revenue:%' OR p.account_id LIKE 'contractor:%') GROUP BY 1""", (day,)))
    by_station = {station: row[5] for station, row in _rows(report).items()}
    assert by_station == credited
    assert set(by_station) == {"fishing", "riding", "bbq"}
    assert report.tables[0].totals[5] == sum(credited.values())


def test_channel_takings_are_what_the_drawers_and_providers_hold(books):
    db, scope, _ = books
    report = run_report(db, "takings", scope, by="channel")
    held = {account.split(":")[1]: -amount for account, amount in db.execute(
        "SELECT account_id, SUM(amount) FROM posting WHERE account_id LIKE 'channel:%' GROUP BY 1")}
    assert {channel: row[4] for channel, row in _rows(report).items()} == held


def test_cashier_and_card_type_takings_add_up_to_the_same_day(books):
    db, scope, _ = books
    totals = {by: run_report(db, "takings", scope, by=by).tables[0].totals[5] for by in ("station", "cashier", "card-type")}
    assert len(set(totals.values())) == 1 and totals["station"] > 0
    week = run_report(db, "takings", scope, by="station", period="week")
    assert week.tables[1].totals[6] == totals["station"]


def test_the_hours_of_the_day_add_up_to_the_days_net_sales(books):
    db, scope, _ = books
    hours = run_report(db, "time-of-day", scope)
    assert hours.tables[0].totals[2] == run_report(db, "takings", scope).tables[0].totals[5]


def test_every_void_names_the_supervisor_who_approved_it_and_the_receipt_it_undid(books):
    db, scope, _ = books
    report = run_report(db, "corrections", scope)
    voids = [row for row in report.tables[0].rows if row[2].startswith("void")]
    assert voids, "the demo's supervisor voids a sale"
    for row in voids:
        assert "zhao" in row[6] and "S0003" in row[6]
        original = run_report(db, "lookup", scope, receipt=row[7]).tables[0].rows[0]
        assert original[3] == "charge" and original[7] == row[5]
    refunds = [row for row in report.tables[0].rows if row[2].startswith("refund")]
    returned = db.execute("SELECT COUNT(*), SUM(amount_fen) FROM txn WHERE kind = 'card_return'").fetchone()
    assert (len(refunds), sum(row[5] for row in refunds)) == returned


def _merchant_copies(terminal_db) -> dict[str, int]:
    """receipt number -> signed amount of every sale or void the terminal had approved and printed."""
    copies = {}
    db = sqlite3.connect(terminal_db)
    for seq, payload, result in db.execute("SELECT seq, payload, result FROM outbox WHERE printed_ms IS NOT NULL"):
        body, answer = codec.decode(envelope.split(payload).body), codec.decode(envelope.split(result).body)
        if body["type"] in ("charge", "offline_charge", "void") and answer.get("outcome", "approved") == "approved":
            copies[f"{body['terminal']}-{seq}"] = -body["amount_fen"] if body["type"] == "void" else body["amount_fen"]
    db.close()
    return copies


def test_a_contractor_statement_is_the_sum_of_its_receipts_and_of_the_stations_merchant_copies(books, park_day):  # noqa: F811
    db, scope, _ = books
    statement = run_report(db, "contractor", scope, contractor="C-HORSE")
    summary = dict(statement.tables[0].rows)
    receipts = statement.tables[2]
    listed = dict(zip(receipts.column("receipt"), receipts.column("amount_fen")))
    assert listed == _merchant_copies(park_day.out / "terminal-T-RIDING-1.db")
    assert summary["net sales 净销售额"] == sum(listed.values()) > 0
    assert summary["net payable 应付净额"] == sum(receipts.column("payable_fen"))
    assert summary["net payable 应付净额"] == summary["net sales 净销售额"] + summary["commission 佣金"]
    owed = db.execute("SELECT SUM(amount) FROM posting WHERE account_id = 'contractor:C-HORSE'").fetchone()[0]
    assert summary["net payable 应付净额"] == owed
    assert -summary["commission 佣金"] == sum(row * 1500 // 10_000 for row in listed.values())


def test_liabilities_are_the_card_balances_and_the_deposit_account(books):
    db, scope, _ = books
    report = run_report(db, "liabilities", scope)
    owed = {row[0].split(" ")[0] + " " + row[0].split(" ")[1]: row[1] for row in report.tables[0].rows}
    balances, bonus = db.execute("SELECT SUM(MAX(fen, 0)), SUM(bonus) FROM card_balance").fetchone()
    assert owed["card balances"] == balances and owed["bonus outstanding"] == bonus
    deposits = db.execute("SELECT COALESCE(SUM(amount), 0) FROM posting WHERE account_id = 'card_fee'").fetchone()[0]
    assert owed["card deposits"] == deposits
    pool = db.execute("SELECT COALESCE(SUM(amount), 0) FROM posting WHERE account_id LIKE 'deposit:%'").fetchone()[0]
    assert [row for row in report.tables[0].rows if row[0].startswith("rental deposits")][0][1] == pool


def test_member_statistics_count_the_familys_top_up_bonus_and_points(books):
    db, scope, _ = books
    report = run_report(db, "members", scope)
    totals = report.tables[1].totals
    assert totals[3] == 50000 and totals[6] == 5000   # "top up 500, get 50"
    points = -db.execute("SELECT SUM(amount) FROM posting WHERE account_id = 'points_issued'").fetchone()[0]
    assert totals[7] == points > 0


def test_a_member_is_found_by_phone_with_both_cards(books):
    db, scope, _ = books
    found = run_report(db, "lookup", scope, phone="13800138000").tables[0]
    assert {card.split("/")[0] for card in found.column("card")} == {"card:M0A11CE01", "card:M0A11CE02"}
    with pytest.raises(NothingFound):
        run_report(db, "lookup", scope, phone="13900000000")


def test_csv_and_excel_say_what_the_text_says(books):
    db, scope, _ = books
    report = run_report(db, "takings", scope, by="station")
    sheet = load_workbook(io.BytesIO(render(report, "xlsx"))).worksheets[0]
    excel = {row[0]: row[5] for row in sheet.iter_rows(min_row=4, values_only=True)}
    csv_lines = render(report, "csv").decode("utf-8-sig").splitlines()
    for station, row in _rows(report).items():
        assert Decimal(str(excel[station])) == Decimal(row[5]).scaleb(-2)
        assert any(line.startswith(f"{station},") and line.endswith(f",{row[5] // 100}.{row[5] % 100:02d}")
                   for line in csv_lines)


def _read_only_refusal(location: str) -> type[Exception]:
    """What the store's driver raises for a write on a report's read-only connection."""
    if location.startswith("postgresql://"):
        from psycopg.errors import ReadOnlySqlTransaction

        return ReadOnlySqlTransaction
    return sqlite3.OperationalError


def test_a_report_reads_without_writing_or_creating_anything(park_day, tmp_path, capsys):  # noqa: F811
    before = {path.name: path.read_bytes() for path in park_day.home.iterdir() if path.is_file()}
    assert main(["--home", str(park_day.home), "report", "takings", "--format", "csv"]) == 0
    assert {path.name: path.read_bytes() for path in park_day.home.iterdir() if path.is_file()} == before
    with pytest.raises(NoLedger):
        open_read_only(tmp_path / "ledger.db")
    assert list(tmp_path.iterdir()) == []
    db = open_read_only(park_day.db_path)
    with pytest.raises(_read_only_refusal(park_day.db_path)):
        db.execute("DELETE FROM alert")
    db.close()


def test_a_period_is_checked_before_anything_is_read(books):
    db, _, _ = books
    for bad in (dict(day="2026-02-30"), dict(from_day="2026-05-02", to_day="2026-05-01"),
                dict(from_day="2024-01-01", to_day="2026-01-01"), dict(stations=["carousel"])):
        with pytest.raises(ReportError):
            make_scope(db, **bad)


def test_the_command_line_writes_a_contractor_statement_as_an_excel_file(park_day, books, tmp_path, capsys):  # noqa: F811
    _, _, day = books
    out = tmp_path / "statement.xlsx"
    assert main(["--home", str(park_day.home), "report", "contractor", "--contractor", "C-HORSE", "--day", day,
                 "--format", "xlsx", "--out", str(out)]) == 0
    sheets = load_workbook(out).worksheets
    summary = {row[0]: row[1] for row in sheets[0].iter_rows(min_row=4, values_only=True)}
    receipts = [row for row in sheets[2].iter_rows(min_row=4, values_only=True) if row[1]]
    assert summary["net payable 应付净额"] == sum(row[6] for row in receipts) > 0
