"""One way to write money (issue 11, defect 4): the member's text, the till's screen and receipt,
the offline report and the simulator all print the same fen the same way, debts included."""

import pytest

from ledger.notify import format_text
from ledger.reports.offline import _yuan
from protocol.messages import CardRef
from protocol.money import card_account, format_fen, parse_amount
from terminal import events, receipt


def test_a_member_whose_card_is_29_50_in_debt_is_told_balance_minus_29_50():
    text = format_text({"kind": "charge", "amount_fen": 3000, "balance_fen": -2950, "bonus_fen": 0, "points": 30,
                        "terminal": "T-FISH-1"})
    assert "Balance -29.50" in text and "-30.50" not in text


@pytest.mark.parametrize(("amount_fen", "text"), [
    (0, "0.00"), (1, "0.01"), (-1, "-0.01"), (-2950, "-29.50"), (-100, "-1.00"), (-99, "-0.99"), (123456, "1234.56"),
])
def test_every_copy_of_the_money_format_agrees_to_the_fen_including_debts(amount_fen, text):
    assert format_fen(amount_fen) == receipt.format_fen(amount_fen) == events.format_fen(amount_fen) == text
    assert _yuan(amount_fen).replace(",", "") == text


def test_reports_group_thousands_and_a_debt_keeps_its_sign():
    assert format_fen(-123_456_78, grouped=True) == "-123,456.78"
    assert _yuan(None) == "0.00"  # an empty SUM


@pytest.mark.parametrize(("typed", "fen"), [("30", 3000), ("30.5", 3050), ("0.01", 1), ("100000", 10_000_000),
                                            ("100000.01", None), ("0", None), ("1.234", None), ("３０", None), ("", None)])
def test_typed_yuan_become_fen_and_anything_else_is_no_amount(typed, fen):
    assert parse_amount(typed) == events.parse_amount(typed) == fen


def test_a_cards_account_name_is_written_once():
    assert card_account("M00008", 2) == "card:M00008/2" == CardRef(no="M00008", issuance=2, uid="04a1b2c3").account
