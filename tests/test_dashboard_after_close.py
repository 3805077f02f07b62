"""After the day-end close (日结) the dashboard's "today" is the day bookings now go to: a sale made
after closing the day counts on the next day, and that is the day the dashboard and a report of
"today" show, not the closed one."""

from ledger.days import next_day
from ledger.reports.catalog import today
from ledger.reports.dashboard import dashboard
from ledger.reports.query import open_read_only
from protocol import codec

from .test_ledger_intake_edges import NOW_MS, ledger  # noqa: F401 - the intake on a real SQLite file, its clock at NOW_MS


def read(ledger, what):  # noqa: F811
    db = open_read_only(ledger.rig.home.store_location)
    try:
        return what(db)
    finally:
        db.close()


def test_after_the_close_the_dashboard_shows_the_next_open_day_with_the_sale_made_after_it(ledger):  # noqa: F811
    closed = ledger.store.business_day("P1", NOW_MS)
    before = read(ledger, lambda db: dashboard(db, now_ms=NOW_MS))
    assert before.business_day == closed and before.money["top_ups"] == 0 and before.money["cards_issued"] == 1

    ledger.store.close_business_day("P1", closed, NOW_MS, "test", force=True)
    sale = ledger.send(*ledger.sign("T-FISH-1", codec.encode(ledger.charge_body(amount_fen=1234))))
    assert sale.is_approved
    (booked_on,) = ledger.store.db.execute("SELECT business_day FROM txn WHERE txn_id = ?", (sale.txn,)).fetchone()
    assert booked_on == next_day(closed)

    after = read(ledger, lambda db: dashboard(db, now_ms=NOW_MS))  # the same instant: only the close moved "today"
    assert after.business_day == next_day(closed) == read(ledger, lambda db: today(db, NOW_MS))
    assert (after.money["sales"], after.money["net_sales_fen"]) == (1, 1234)  # only what was booked after the close
    assert after.money["cards_issued"] == 0  # the card issued before the close stays on the closed day
