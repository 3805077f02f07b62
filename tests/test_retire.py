"""Technicians retire terminals: broken, replaced or stolen. The ledger refuses what a retired
terminal signs from then on, its broker login goes, and its private key leaves the park's files."""

from host_sim.rig import ParkRig
from protocol.messages import Charge
from tools.cli import main

from .conftest import TERMINALS
from .helpers.intake_driver import VISITOR, Ledger, single_line


def test_a_retired_terminal_is_refused_loses_its_broker_login_and_its_bundle(tmp_path, capsys):
    rig = ParkRig(tmp_path).create(TERMINALS)
    ledger = Ledger(rig)
    try:
        assert ledger.issue(opening_fen=5000).is_approved
        sale = Charge(**ledger.fields("T-FISH-1", VISITOR), amount_fen=1000, lines=single_line("鱼饵", 1000))
        assert ledger.send(*ledger.sign("T-FISH-1", sale.to_bytes())).is_approved  # seq 1
        # What the thief will send, signed with the key on the stolen board (seq 2).
        later = Charge(**ledger.fields("T-FISH-1", VISITOR), amount_fen=1000, lines=single_line("鱼饵", 1000))
        stolen_sale = ledger.sign("T-FISH-1", later.to_bytes())
        home = str(rig.home.home)
        assert main(["--home", home, "terminal", "retire", "--terminal", "T-FISH-1"]) == 0
        assert "from seq 2" in capsys.readouterr().out
        assert not rig.home.bundle_path("T-FISH-1").exists()
        refused = ledger.send(*stolen_sale)
        assert refused.outcome == "refused" and refused.reason == "TERMINAL_REVOKED"
        rig.home.write_broker_config(port=1883)
        logins = [line.split(":")[0] for line in (rig.home.broker_dir / "passwd").read_text().splitlines()]
        assert "T-FISH-1" not in logins and "T-FISH-2" in logins
        assert main(["--home", home, "terminal", "retire", "--terminal", "T-NOPE-9"]) == 2
        assert "no terminal T-NOPE-9" in capsys.readouterr().err
    finally:
        ledger.store.close()
        rig.close()


def test_a_terminal_still_holding_sales_is_retired_only_when_stolen(tmp_path, capsys):
    rig = ParkRig(tmp_path).create(TERMINALS)
    try:
        store = rig.home.open_store()
        with store.batch():  # its last heartbeat: 3 sales queued that the ledger has not seen
            store.record_status("T-FISH-2", False, 3, 3, 1_780_000_000_000, 1_780_000_000_000, 1_780_000_000_000)
        store.close()
        home = str(rig.home.home)
        assert main(["--home", home, "terminal", "retire", "--terminal", "T-FISH-2"]) == 2
        assert "QUEUE_NOT_EMPTY" in capsys.readouterr().err
        assert rig.home.bundle_path("T-FISH-2").exists()  # nothing changed
        assert main(["--home", home, "terminal", "retire", "--terminal", "T-FISH-2", "--stolen"]) == 0
        assert "from seq 1" in capsys.readouterr().out  # its queued seqs 1..3 will be refused
    finally:
        rig.close()
