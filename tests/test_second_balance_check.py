"""The books' second balance check (issue 11, defect 6): a booking that would take a card below
zero without the decision allowing it raises a named error — also under ``python -O``, which strips
asserts — and writes nothing."""

from pathlib import Path
import subprocess
import sys
import textwrap

import pytest

from host_sim.rig import ParkRig, card
from ledger.errors import CardBalanceBelowZero, LedgerError
from ledger.rules import Posting
from ledger.store import NewTxn
from ledger.verify import verify_books

from .conftest import TERMINALS
from .helpers.intake_driver import Ledger

VISITOR = card("C00042")


def overdrawing_sale(store, fen: int) -> int:
    """Book a 20.00 sale straight into the store, as a decision that forgot the balance would."""
    txn = NewTxn(park_id="P1", kind="charge", terminal_id="T-FISH-1", seq=99, operator="op-1", station_id="fishing",
                 card_account=VISITOR.account, amount_fen=fen, ledger_time_ms=1_780_000_000_000,
                 terminal_time_ms=1_780_000_000_000, clock_uncertain=False)
    with store.batch():
        return store.book(txn, (Posting(VISITOR.account, "fen", -fen), Posting("station:fishing", "fen", fen)))


@pytest.fixture
def ledger(tmp_path):
    rig = ParkRig(tmp_path).create(TERMINALS)
    ledger = Ledger(rig)
    assert ledger.issue(1000, VISITOR).is_approved  # 10.00 on the card
    yield ledger
    rig.close()
    ledger.store.close()


def test_a_sale_booked_past_a_cards_balance_is_a_named_ledger_error_and_nothing_is_written(ledger):
    store = ledger.store
    transactions = store.db.execute("SELECT COUNT(*) FROM txn").fetchone()[0]
    with pytest.raises(CardBalanceBelowZero) as raised:
        overdrawing_sale(store, 2000)
    assert isinstance(raised.value, LedgerError) and raised.value.code == "CARD_BALANCE_BELOW_ZERO"
    assert store.card_balances("P1", VISITOR.account)[0] == 1000
    assert store.db.execute("SELECT COUNT(*) FROM txn").fetchone()[0] == transactions
    assert verify_books(store).is_ok


def test_the_second_balance_check_holds_under_python_dash_o(ledger):
    script = textwrap.dedent(f"""
        from ledger.store_location import open_store
        from tests.test_second_balance_check import overdrawing_sale
        store = open_store({ledger.rig.home.store_location!r})
        try:
            overdrawing_sale(store, 2000)
        except Exception as error:
            print(type(error).__name__)
        else:
            print("booked")
    """)
    done = subprocess.run([sys.executable, "-O", "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.stdout.strip() == "CardBalanceBelowZero", done.stderr
    assert ledger.store.card_balances("P1", VISITOR.account)[0] == 1000
