"""A rental desk run by a contractor: the rental fee a return earns is credited to the contractor
(less the park's commission), so it is on their statement with the return slip's receipt number and
is paid out with the rest; a statement that leaves a credit out is never paid."""

import pytest

from ledger.reports.catalog import run_report
from ledger.reports.query import Period, Scope
from ledger.rules.settlement import StatementIncomplete
from ledger.settlement import pay_statement
from ledger.verify import verify_books
from protocol import codec
from protocol.messages import DepositDesk, RentalOut, RentalReturn

from .helpers.rental_park import MINUTE, T0, rental_park
from .test_rental_ledger import STAFF_CARD

DAY_MS = 24 * 60 * MINUTE
COMMISSION_BP = 1500  # the park keeps 15 %


@pytest.fixture
def lake(tmp_path):
    """The fishing pond and its rental desk, run by contractor C-LAKE: one sale of 30.00 at the pond,
    a rod rented for 10.00 and brought back on time."""
    with rental_park(tmp_path) as park:
        park.store.db.execute("UPDATE station SET contractor_id = 'C-LAKE', commission_bp = ? WHERE station_id = 'fishing'",
                              (COMMISSION_BP,))
        assert park.issue(opening_fen=10000).is_approved
        assert park.send(*park.sign("T-FISH-1", codec.encode(park.charge_body(amount_fen=3000)))).is_approved
        deposit = park.request("T-RENT-1", DepositDesk, card_ref=STAFF_CARD, item_type="rod", deposit_fen=3000,
                               channel="cash", payment_ref="")
        assert park.request("T-RENT-1", RentalOut, card_ref=STAFF_CARD, voucher=deposit.voucher,
                            item_label="ROD-001").is_approved
        park.now_ms = T0 + 90 * MINUTE
        back = park.request("T-RENT-1", RentalReturn, card_ref=STAFF_CARD, item_label="ROD-001", condition="intact",
                            damage="")
        assert (back.rental_fen, back.refunded_fen) == (1000, 2000)
        yield park


def statement_of(park):
    (day,) = {day for (day,) in park.store.db.execute("SELECT business_day FROM txn WHERE station_id = 'fishing'")}
    return day, run_report(park.store.db, "contractor", Scope("P1", Period(day, day)), contractor="C-LAKE")


def receipt_of(park, kind) -> str:
    terminal, seq = park.store.db.execute("SELECT terminal_id, seq FROM txn WHERE kind = ?", (kind,)).fetchone()
    return f"{terminal}-{seq}"


def test_the_rental_fee_is_on_the_statement_with_the_return_slips_number_and_the_total_is_its_lines(lake):
    _, statement = statement_of(lake)
    summary = dict(statement.tables[0].rows)
    lines = {row[1]: row for row in statement.tables[2].rows}
    fee = lines[receipt_of(lake, "rental_return")]
    # The fee, not the 20.00 of deposit paid back; the park keeps its commission on it, as on a sale.
    assert fee[3:] == ("rental fee 租金", 1000, 150, 850)
    assert lines[receipt_of(lake, "charge")][3:] == ("sale 销售", 3000, 450, 2550)
    assert len(lines) == 2
    assert summary["rental fees 租金"] == 1000 and summary["gross sales 销售总额"] == 3000
    assert summary["net sales 净销售额"] == sum(row[4] for row in lines.values()) == 4000
    assert summary["net payable 应付净额"] == sum(row[6] for row in lines.values()) == 3400
    assert summary["net payable 应付净额"] == lake.balance("contractor:C-LAKE")
    assert dict(statement.tables[1].rows)["rental fees 租金"] == 1


def test_paying_the_statement_pays_the_rental_fee_out_too_and_the_books_verify(lake):
    day, _ = statement_of(lake)
    paid = pay_statement(lake.store, contractor_id="C-LAKE", period=Period(day, day), reference="BANK-1",
                         paid_by="finance", now_ms=T0 + 2 * DAY_MS)
    assert paid.paid.amount_fen == paid.statement_total_fen == 3400 and paid.paid.receipts == 2
    assert lake.balance("contractor:C-LAKE") == 0  # nothing owed left behind
    assert verify_books(lake.store).problems == ()


def test_a_statement_that_leaves_a_credit_out_is_refused_and_nothing_is_booked(lake, monkeypatch):
    import ledger.settlement as settlement

    listed_everything = settlement.contractor_statement

    def without_rental_fees(db, scope, contractor):  # the statement as it was before rental fees were listed
        report = listed_everything(db, scope, contractor)
        summary = [(item, amount - 850 if item.startswith("net payable") else amount)
                   for item, amount in report.tables[0].rows]
        return type(report)(**{**report.__dict__, "tables": [type(report.tables[0])(
            **{**report.tables[0].__dict__, "rows": summary}), *report.tables[1:]]})

    monkeypatch.setattr(settlement, "contractor_statement", without_rental_fees)
    day, _ = statement_of(lake)
    postings = lake.postings()
    with pytest.raises(StatementIncomplete, match="lists 25.50 but the books credited 34.00"):
        pay_statement(lake.store, contractor_id="C-LAKE", period=Period(day, day), paid_by="finance",
                      now_ms=T0 + 2 * DAY_MS)
    assert lake.postings() == postings and lake.balance("contractor:C-LAKE") == 3400

