"""One set of limits (issue 11, defect 7 in part): the till's receipt, keypad and card reader use
the protocol's numbers, so nothing the ledger accepts is refused at the till and nothing the till
takes is refused by the ledger."""

import pytest

from protocol import limits
from protocol.errors import LocalProtocolError
from protocol.messages import LineItem
from protocol.money import format_fen
from terminal import events, receipt
from terminal.hal import card_reader

from .helpers.receipts import fishing_charge


def test_the_receipt_prints_exactly_the_amounts_the_protocol_allows():
    assert receipt.MAX_AMOUNT_FEN == limits.MAX_AMOUNT_FEN
    assert receipt.LineItem is LineItem  # one line type: its quantity and price limits are the protocol's


def test_the_receipt_prints_a_line_at_the_protocols_largest_quantity_and_price_and_no_line_has_one_more():
    for qty, unit_fen in ((limits.MAX_QUANTITY, 1), (1, limits.MAX_AMOUNT_FEN)):
        printed = fishing_charge(line_items=(LineItem(item="门票 Ticket", qty=qty, unit_fen=unit_fen),), amount_fen=qty * unit_fen)
        assert f"{qty} x {format_fen(unit_fen)}" in "\n".join(receipt.render_receipt_text(printed, 384))
    with pytest.raises(LocalProtocolError):
        LineItem(item="门票 Ticket", qty=limits.MAX_QUANTITY + 1, unit_fen=1)
    with pytest.raises(LocalProtocolError):
        LineItem(item="门票 Ticket", qty=1, unit_fen=limits.MAX_AMOUNT_FEN + 1)


def test_every_uid_size_the_card_reader_accepts_is_one_the_protocol_accepts():
    assert set(card_reader.UID_SIZES_BYTES) <= set(limits.CARD_UID_BYTES)
    assert set(card_reader.UID_SIZES_BYTES) == {4, 7}  # MIFARE Classic: single and double size


def test_the_keypad_takes_as_many_characters_as_the_largest_amount_has_and_no_more():
    assert events.MAX_AMOUNT_CHARS == len(format_fen(limits.MAX_AMOUNT_FEN))
    assert events.MAX_COUNT <= limits.MAX_QUANTITY
