"""One set of limits (issue 11, defect 7 in part): the till's receipt, keypad and card reader use
the protocol's numbers, so nothing the ledger accepts is refused at the till and nothing the till
takes is refused by the ledger."""

import pytest

from protocol import limits
from protocol.money import format_fen
from terminal import events, receipt
from terminal.hal import card_reader


def test_the_receipt_prints_exactly_the_amounts_and_quantities_the_protocol_allows():
    assert receipt.MAX_AMOUNT_FEN == limits.MAX_AMOUNT_FEN
    assert receipt.MAX_QUANTITY == limits.MAX_QUANTITY


def test_the_receipt_takes_a_line_at_the_protocols_largest_quantity_and_price_and_refuses_one_more():
    top = receipt.LineItem(name="门票 Ticket", quantity=limits.MAX_QUANTITY, unit_price_fen=limits.MAX_AMOUNT_FEN)
    assert top.quantity == limits.MAX_QUANTITY
    with pytest.raises(ValueError):
        receipt.LineItem(name="门票 Ticket", quantity=limits.MAX_QUANTITY + 1, unit_price_fen=1)
    with pytest.raises(ValueError):
        receipt.LineItem(name="门票 Ticket", quantity=1, unit_price_fen=limits.MAX_AMOUNT_FEN + 1)


def test_every_uid_size_the_card_reader_accepts_is_one_the_protocol_accepts():
    assert set(card_reader.UID_SIZES_BYTES) <= set(limits.CARD_UID_BYTES)
    assert set(card_reader.UID_SIZES_BYTES) == {4, 7}  # MIFARE Classic: single and double size


def test_the_keypad_takes_as_many_characters_as_the_largest_amount_has_and_no_more():
    assert events.MAX_AMOUNT_CHARS == len(format_fen(limits.MAX_AMOUNT_FEN))
    assert events.MAX_COUNT <= limits.MAX_QUANTITY
