"""Terminal kind ``tap``: what an unattended tap point may send, how the ledger treats its operator
and shifts, and provisioning one like any other terminal."""

import json
import subprocess
import sys

from host_sim.rig import single_line
from ledger import park_home, shifts
from ledger.store import TerminalView
from protocol.kinds import TERMINAL_KINDS, kinds_for_terminal, terminal_kind_of
from protocol.messages import Charge, ShiftOpen, TopUp, Void

TERMINALS = {"TAP-1": "riding", "T-DESK-1": "desk", "T-FISH-1": "fishing"}


def _tap_ledger(tmp_path):
    from host_sim.rig import ParkRig
    from .helpers.intake_driver import Ledger

    rig = ParkRig(tmp_path).create(TERMINALS, kinds_by_terminal={"TAP-1": park_home.STATION_KINDS["tap"]})
    return rig, Ledger(rig)


def test_a_tap_may_send_charges_and_offline_charges_only():
    assert "tap" in TERMINAL_KINDS
    assert kinds_for_terminal("tap") == ("charge", "offline_charge", "hello")
    assert park_home.STATION_KINDS["tap"] == ("charge", "offline_charge", "hello")
    # No one logs in on a tap: the staffed kinds keep their shift requests, the tap has none.
    assert "shift_open" in kinds_for_terminal("station") and "shift_open" not in kinds_for_terminal("tap")


def test_a_terminal_no_one_can_log_in_on_is_a_tap():
    assert terminal_kind_of(kinds_for_terminal("tap")) == "tap"
    assert terminal_kind_of(kinds_for_terminal("station")) == "station"
    assert terminal_kind_of(kinds_for_terminal("front_desk")) == "front_desk"
    assert shifts.ROLES_BY_TERMINAL_KIND["tap"] == frozenset()


def test_a_tap_names_itself_as_operator_and_needs_no_shift():
    tap = TerminalView("TAP-1", "P1", "riding", frozenset(kinds_for_terminal("tap")), None)
    assert shifts.check_operator("charge", "TAP-1", None, requires_shift=True, terminal=tap) is None
    assert shifts.check_operator("charge", "op-7", None, requires_shift=True, terminal=tap) == "OPERATOR_NOT_ON_SHIFT"
    station = TerminalView("T-FISH-1", "P1", "fishing", frozenset(kinds_for_terminal("station")), None)
    assert shifts.check_operator("charge", "T-FISH-1", None, requires_shift=True, terminal=station) == "NO_SHIFT"


def test_the_ledger_refuses_a_tap_request_of_a_kind_a_tap_may_not_send(tmp_path):
    rig, ledger = _tap_ledger(tmp_path)
    try:
        assert ledger.issue().outcome == "approved"
        for message_type, extra in ((TopUp, {"amount_fen": 1000, "channel": "cash", "payment_ref": ""}),
                                    (Void, {"original_seq": 1, "amount_fen": 1500, "supervisor_card_no": "S0001",
                                            "pin_sha256": "0" * 64}),
                                    (ShiftOpen, {"pin_sha256": "0" * 64})):
            result = ledger.request("TAP-1", message_type, operator="TAP-1", **extra)
            assert (result.outcome, result.reason) == ("refused", "KIND_NOT_ALLOWED"), message_type
        sale = ledger.request("TAP-1", Charge, operator="TAP-1", amount_fen=1500, lines=single_line("木马 1次", 1500),
                              pin_sha256=None)
        assert (sale.outcome, sale.reason, sale.balances.fen) == ("approved", "OK", 8500)
    finally:
        rig.close()
        ledger.store.close()


def test_a_tap_sells_in_a_park_that_requires_a_login_where_a_station_without_a_shift_may_not(tmp_path):
    rig, ledger = _tap_ledger(tmp_path)
    try:
        assert ledger.issue().outcome == "approved"
        ledger.store.set_requires_shift("P1", True)
        sale = ledger.request("TAP-1", Charge, operator="TAP-1", amount_fen=1500, lines=single_line("木马 1次", 1500),
                              pin_sha256=None)
        assert (sale.outcome, sale.reason) == ("approved", "OK")
        stranger = ledger.request("TAP-1", Charge, operator="op-7", amount_fen=1500,
                                  lines=single_line("木马 1次", 1500), pin_sha256=None)
        assert (stranger.outcome, stranger.reason) == ("declined", "OPERATOR_NOT_ON_SHIFT")
        station = ledger.request("T-FISH-1", Charge, operator="T-FISH-1", amount_fen=1500,
                                 lines=single_line("鱼饵", 1500), pin_sha256=None)
        assert (station.outcome, station.reason) == ("declined", "NO_SHIFT")
    finally:
        rig.close()
        ledger.store.close()


def test_fieldpos_provision_kinds_tap_makes_a_tap_terminal_with_its_bundle(tmp_path):
    home = tmp_path / "home"
    run = lambda *args: subprocess.run([sys.executable, "-m", "tools.cli", "--home", str(home), *args],  # noqa: E731
                                       capture_output=True, text=True, timeout=60)
    first = run("ledger", "init", "--park", "P1", "--name", "Park")
    assert first.returncode == 0, first.stderr
    added = run("station", "add", "--station", "riding", "--name", "Riding")
    provisioned = run("provision", "--terminal", "TAP-1", "--station", "riding", "--kinds", "tap")
    assert provisioned.returncode == 0, provisioned.stdout + provisioned.stderr + added.stderr
    store = park_home.ParkHome(home).open_store()
    try:
        assert store.terminal("TAP-1").allowed_kinds == frozenset({"charge", "offline_charge", "hello"})
    finally:
        store.close()
    bundle = json.loads((home / "terminals" / "TAP-1.json").read_text())
    assert bundle["terminal_id"] == "TAP-1" and bundle["key_id"] == "TAP-1-k1" and len(bundle["signing_seed"]) == 64
