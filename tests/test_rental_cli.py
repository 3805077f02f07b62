"""``fieldpos rental ...`` on the command line: item types and items set on the ledger reach the
rental terminals' signed config; the forfeit rule runs from here."""

from ledger.broadcasts import config_payload
from ledger.park_home import ParkHome
from tools.cli import main


def test_item_types_and_items_set_on_the_command_line_reach_a_rental_terminals_config(tmp_path, capsys):
    home = tmp_path / "park"
    cli = lambda *rest: main(["--home", str(home), *rest])  # noqa: E731
    assert cli("ledger", "init", "--park", "P1", "--name", "Park") == 0
    assert cli("station", "add", "--station", "rods", "--name", "Rod desk") == 0
    assert cli("provision", "--terminal", "T-RENT-1", "--station", "rods", "--kinds", "rental") == 0
    assert cli("rental", "type", "add", "--type", "rod", "--name", "鱼竿 Rod", "--deposit-fen", "3000",
               "--price-fen", "1000", "--per", "session", "--allowed-minutes", "120", "--grace-minutes", "15",
               "--late-fee-fen", "500", "--lost-fee-fen", "8000", "--damage", "reel:渔轮 Reel:2000") == 0
    for label in ("ROD-001", "ROD-002", "ROD-003"):
        assert cli("rental", "item", "add", "--label", label, "--station", "rods", "--type", "rod") == 0
    assert cli("rental", "item", "repair", "--label", "ROD-002") == 0
    assert cli("rental", "item", "retire", "--label", "ROD-003") == 0
    capsys.readouterr()
    assert cli("rental", "type", "list") == 0
    assert cli("rental", "item", "list") == 0
    out = capsys.readouterr().out
    assert "rod  鱼竿 Rod  deposit 30.00  10.00/session  120 min + 15 grace  late 5.00/h  lost 80.00  reel 20.00" in out
    assert "ROD-002  rod  rods  in_repair" in out and "ROD-003  rod  rods  retired" in out
    assert cli("rental", "item", "retire", "--label", "ROD-003") != 0  # retired already: nothing changes
    assert capsys.readouterr().err.strip() == "fieldpos: [ALREADY_EXISTS] rental item ROD-003 is retired; nothing changed"

    park = ParkHome(home)
    store = park.open_store()
    try:
        _, payload = config_payload(store, park.ledger_keys(), "P1", "T-RENT-1", 1_780_000_000_000)
    finally:
        store.close()
    assert b'"items":[{"item_type":"rod","label":"ROD-001","state":"available"},' \
           b'{"item_type":"rod","label":"ROD-002","state":"in_repair"}]' in payload

    assert cli("rental", "forfeit", "--older-than-days", "30") == 0
    assert "0 deposit(s) held over 30 days forfeited" in capsys.readouterr().out
