"""The console reads the books where the park keeps them: ledger.db, or PostgreSQL (the home's
store.url). Each test runs on both backends (``store_backend``), over HTTP as a browser would.

On PostgreSQL the console must never look for (or create) a ledger.db, its reads go through a
read-only connection, and its writes (the day close) go through the park's own store."""

from protocol.messages import Charge

from backoffice.accounts import ConsoleStore
from backoffice.app import create_app
from host_sim.rig import single_line
from ledger.reports.query import open_read_only

from .helpers.intake_driver import open_ledger
from .helpers.park_day import PASSWORD
from .test_console_security import csrf_of, log_in

TERMINALS = {"T-FISH-1": "fishing", "T-DESK-1": "desk"}


def test_the_console_reads_and_closes_a_day_on_the_parks_own_store(tmp_path, store_backend):
    with open_ledger(tmp_path, TERMINALS) as ledger:
        assert ledger.issue(opening_fen=10_000).outcome == "approved"
        sold = ledger.request("T-FISH-1", Charge, amount_fen=3000, lines=single_line("鱼饵", 3000))
        assert sold.outcome == "approved"
        home = ledger.rig.home
        day = ledger.store.business_day("P1", 1_780_000_000_000)
        ConsoleStore.in_home(home.home).add_user("finance", "finance", "finance", PASSWORD, stations=(), actor="test")
        finance = log_in(create_app(home.home), "finance")

        takings = finance.get(f"/api/reports/takings?day={day}")
        assert takings.status_code == 200, takings.text
        totals = [table["totals"] for table in takings.json()["tables"] if table["totals"]]
        assert totals and 3000 in totals[0].values(), totals
        page = finance.get(f"/reports/takings?day={day}")
        assert page.status_code == 200 and "30.00" in page.text
        assert finance.get("/api/dashboard").status_code == 200
        assert finance.get("/day-close").status_code == 200

        done = finance.post("/day-close", data={"csrf": csrf_of(finance), "day": day, "force": "yes"})
        assert done.status_code == 303, done.text
        assert ledger.store.day_close("P1", day)[1:] == ("console:finance", 0)
        # A PostgreSQL park has no ledger.db, and serving the console made none.
        assert home.db_path.exists() == (store_backend == "sqlite")


def test_the_consoles_read_connection_refuses_to_write(tmp_path, store_backend):
    with open_ledger(tmp_path, TERMINALS) as ledger:
        assert ledger.issue(opening_fen=10_000).outcome == "approved"
        db = open_read_only(ledger.rig.home.store_location)
        try:
            try:
                db.execute("UPDATE park SET name = 'changed'")
            except Exception as error:
                refused = type(error).__name__
            else:
                refused = None
            assert refused in ("OperationalError", "ReadOnlySqlTransaction"), refused
        finally:
            db.close()
        (name,) = ledger.store.db.execute("SELECT name FROM park").fetchone()
        assert name != "changed"
