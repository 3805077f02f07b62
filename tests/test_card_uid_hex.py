"""The UID the reader reports is the UID the protocol takes (issue 11, defect 5): lower-case hex,
so a card's UID goes from the reader into a signed request without anyone changing its case."""

import pytest

from protocol.messages import REQUEST_TYPES, CardRef, Charge, LineItem, parse
from terminal.hal.card_reader import CardUid


@pytest.mark.parametrize("uid_bytes", [bytes.fromhex("a1b2c3d4"), bytes.fromhex("04a1b2c3d4e5f6")])
def test_a_uid_read_from_a_card_is_the_lower_case_hex_a_charge_carries_and_the_ledger_parses(uid_bytes):
    uid = CardUid(uid_bytes)
    assert uid.hex == uid_bytes.hex() == str(uid)
    charge = Charge(park="P1", terminal="T-FISH-1", seq=1, terminal_time_ms=1_780_000_000_000, clock_uncertain=False,
                    operator="op-1", config_version=0, card=CardRef(no="C00042", issuance=1, uid=uid.hex),
                    amount_fen=500, lines=(LineItem(item="鱼饵 Bait", qty=1, unit_fen=500),))
    assert parse(charge.to_bytes(), REQUEST_TYPES).card.uid == uid.hex


def test_a_uid_typed_in_capitals_reads_back_as_the_same_card():
    assert CardUid.from_hex("04:A1:B2:C3:D4:E5:F6") == CardUid.from_hex("04a1b2c3d4e5f6")
    assert CardUid.from_hex("04 A1 B2 C3").hex == "04a1b2c3"
