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


def test_a_pdf_needs_a_file_to_go_to(park_day, capsys):  # noqa: F811
    assert main(["--home", str(park_day.home), "report", "contractor", "--contractor", CONTRACTOR,
                 "--format", "pdf"]) == 2
    assert "--format pdf needs --out" in capsys.readouterr().err
