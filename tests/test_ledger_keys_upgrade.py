"""A park key file made before vouchers existed (issue 13): it has no voucher key, so every rental
request was set aside. The commands that write (``ledger serve``, provisioning) add the missing key,
say so in one line, and never replace a key that is there."""

import json
import stat

import pytest

from ledger.errors import LedgerError
from ledger.park_home import ParkHome
from ledger.rentals_online import record_online_deposit
from protocol.envelope import Purpose
from protocol.messages import RentalType
from protocol.voucher import verify_voucher
from nacl.signing import VerifyKey
from tools.cli import main

T0 = 1_780_000_000_000
ROD = RentalType(item_type="rod", name="rod", deposit_fen=3000, price_fen=1000, price_per="session",
                 allowed_minutes=120, grace_minutes=15, late_fee_per_hour_fen=500, lost_fee_fen=8000, damage=())


def _old_style_home(tmp_path) -> ParkHome:
    """A park home whose key file is as the ledger wrote it before rentals: no voucher key."""
    home = ParkHome(tmp_path / "park")
    home.init("P1", "Old park")
    data = json.loads(home.keys_path.read_text())
    del data["keys"][Purpose.VOUCHER.value]
    home.keys_path.write_text(json.dumps(data, indent=2))
    return home


def _seeds(home: ParkHome) -> dict:
    return {purpose: key["seed"] for purpose, key in json.loads(home.keys_path.read_text())["keys"].items()}


def test_an_old_key_file_gets_its_voucher_key_once_and_keeps_every_other_key(tmp_path):
    home = _old_style_home(tmp_path)
    before = _seeds(home)
    with pytest.raises(LedgerError) as refused:
        home.ledger_keys().for_purpose(Purpose.VOUCHER)
    assert refused.value.code == "NO_LEDGER_KEY"

    line = home.add_missing_ledger_keys()
    assert line == ("added the missing P1-voucher-1 to ledger-keys.json (rental terminals provisioned before it "
                    "need provisioning again to check vouchers)")
    after = _seeds(home)
    assert {purpose: seed for purpose, seed in after.items() if purpose != "voucher"} == before
    assert set(after) == set(before) | {"voucher"}
    assert stat.S_IMODE(home.keys_path.stat().st_mode) == 0o600
    assert not home.keys_path.with_name("ledger-keys.json.new").exists()

    assert home.add_missing_ledger_keys() is None  # nothing missing: nothing said, nothing replaced
    assert _seeds(home) == after


def test_a_key_file_with_every_key_is_never_rewritten(tmp_path):
    home = ParkHome(tmp_path / "park")
    home.init("P1", "New park")
    written = home.keys_path.read_bytes()
    inode = home.keys_path.stat().st_ino
    assert home.add_missing_ledger_keys() is None
    assert home.keys_path.read_bytes() == written and home.keys_path.stat().st_ino == inode


def test_provisioning_a_rental_desk_on_an_old_home_adds_the_key_and_its_vouchers_check(tmp_path, caplog):
    home = _old_style_home(tmp_path)
    cli = lambda *rest: main(["--home", str(home.home), *rest])  # noqa: E731
    assert cli("station", "add", "--station", "rods", "--name", "Rod desk") == 0
    with caplog.at_level("WARNING", logger="fieldpos.ledger"):
        assert cli("provision", "--terminal", "T-RENT-1", "--station", "rods", "--kinds", "rental") == 0
    assert [record.getMessage() for record in caplog.records if "missing" in record.getMessage()] == [
        "added the missing P1-voucher-1 to ledger-keys.json (rental terminals provisioned before it need "
        "provisioning again to check vouchers)"]
    bundle = json.loads(home.bundle_path("T-RENT-1").read_text())
    keys = home.ledger_keys()
    voucher_key = keys.for_purpose(Purpose.VOUCHER)
    assert bundle["ledger_keys"]["voucher"] == {"key_id": "P1-voucher-1", "public_key": voucher_key.public_hex}

    store = home.open_store()
    try:
        store.add_rental_type("P1", ROD)
        deposit = record_online_deposit(store, keys, park_id="P1", provider="wechat", provider_order="WX-1",
                                        transaction_id="42001", item_type="rod", amount_fen=3000, paid_ms=T0, now_ms=T0)
    finally:
        store.close()
    # The desk checks the voucher with the key its bundle carries.
    voucher = verify_voucher(deposit.voucher, VerifyKey(bytes.fromhex(bundle["ledger_keys"]["voucher"]["public_key"])), T0)
    assert voucher.order == deposit.order
