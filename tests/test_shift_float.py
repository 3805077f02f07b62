"""A cash till's opening float (备用金): the park sets it per station, the drawer starts every shift
with it, and the handover expects it beside the shift's net cash, so a blind count of the whole
drawer is over or short only by what really went missing."""

from ledger.park_admin import ParkAdmin
from ledger.rules.staff import CASH_OVER_SHORT_ACCOUNT
from ledger.shift_totals import cash_float_of
from ledger.station_settings import SettingRefused
from ledger.verify import verify_books
from tools.cli import main

import pytest

from .test_shift_handover import LI, balance, desk_day, hand_over, log_in


def set_float(ledger, fen):
    admin = ParkAdmin(ledger.rig.home)
    (desk,) = [s for s in admin.stations() if s["station"] == "desk"]
    return admin.set_station("desk", name=desk["name"], contractor_id=None, commission_bp=0, cash_float_fen=fen)


def test_the_desk_expects_its_float_beside_the_shifts_cash_and_books_only_the_real_shortfall(ledger):
    change = set_float(ledger, 20000)
    assert (change.before["cash_float_fen"], change.after["cash_float_fen"]) == (0, 20000)
    desk_day(ledger)  # the shift's net cash is 100.00
    slip = hand_over(ledger, "T-DESK-1", LI, 29500)  # the whole drawer, float and all, 5.00 short
    assert (slip.cash_expected_fen, slip.cash_counted_fen, slip.cash_over_short_fen) == (30000, 29500, -500)
    assert balance(ledger, CASH_OVER_SHORT_ACCOUNT) == -500
    assert verify_books(ledger.store).is_ok
    # A float changed afterwards leaves the shift handed over as it was; the next shift expects the new one.
    set_float(ledger, 10000)
    log_in(ledger, "T-DESK-1", LI)
    slip = hand_over(ledger, "T-DESK-1", LI, 10000)
    assert (slip.cash_expected_fen, slip.cash_over_short_fen) == (10000, 0)
    expected = [row[0] for row in ledger.store.db.execute(
        "SELECT cash_expected_fen FROM shift WHERE terminal_id = 'T-DESK-1' ORDER BY shift_id")]
    assert expected == [30000, 10000]
    assert verify_books(ledger.store).is_ok


def test_a_float_below_zero_is_refused_and_the_float_set_before_stays(ledger):
    set_float(ledger, 5000)
    with pytest.raises(SettingRefused, match="opening float"):
        set_float(ledger, -1)
    assert cash_float_of(ledger.store.db, "P1", "desk") == 5000


def test_the_command_line_sets_the_float_and_says_it(ledger, capsys):
    assert main(["--home", str(ledger.rig.home.home), "station", "set", "--station", "desk",
                 "--cash-float-fen", "20000"]) == 0
    assert "opening float 200.00" in capsys.readouterr().out
    desk_day(ledger)
    assert hand_over(ledger, "T-DESK-1", LI, 30000).cash_over_short_fen == 0
