"""交班 at the till (issue 14 item 5): F4 hands the shift over; a till that takes cash asks for a blind
count first (no expected figure on the screen, bad input said plainly); the ledger's slip prints
through the receipt layout and the ESC/POS driver, and says what the books say."""

import pytest

from protocol.card_record import CardRecord
from protocol.messages import Result, ShiftHandover, ShiftSlip, SlipLine
from terminal.config import StationConfig
from terminal.hal.keypad import Key
from terminal.core import Terminal
from terminal.events import (Answer, CardTapped, KeyPressed, NoAnswer, Print, PrintFinished, RememberReceipt, Show, State,
                             Submit, Tick)
from terminal.receipt import ShiftSlipReceipt, render_receipt_text
from terminal.shift_slip import parse_count, slip_receipt

from .test_receipt import collapsed, print_copies
from .test_shift_handover import LI, desk_day, hand_over
from .test_terminal_core import STAFF_CARD, result

DESK_STAFF_CARD = CardRecord("S0002", 1, "staff", "P1")


def till(mode: str) -> Terminal:
    staff = {"S0001": ("wang", "王芳"), "S0002": ("li", "李娜")}
    terminal = Terminal(StationConfig(park_name="青山湖乐园", station_name="总台 Desk" if mode == "desk" else "钓鱼 Fishing",
                                      staff=staff, mode=mode), "T-DESK-1" if mode == "desk" else "T-FISH-1")
    terminal.start(0)
    card = DESK_STAFF_CARD if mode == "desk" else STAFF_CARD
    terminal.handle(CardTapped("01020304", card))
    press(terminal, "2345E" if mode == "desk" else "1234E")
    terminal.handle(Answer(result(1)))
    assert terminal.state == State.IDLE
    return terminal


def press(terminal, keys) -> list:
    effects = []
    for key in keys:
        effects += terminal.handle(KeyPressed({"E": "ENTER", "C": "CANCEL", "B": "BACK"}.get(key, key)))
    return effects


def screen(effects) -> Show:
    return [effect for effect in effects if isinstance(effect, Show)][-1]


def slip(seq=9, *, counted=None, expected=0, kinds=(("charge", 2, 4500),), tenders=(("card", 3, 3000),)) -> ShiftSlip:
    return ShiftSlip(park="P1", terminal="T-FISH-1", seq=seq, request_sha256="a" * 64, staff="wang",
                     opened_ms=1_780_000_000_000, business_day="2026-05-29",
                     kinds=tuple(SlipLine(name=n, count=c, fen=f) for n, c, f in kinds),
                     tenders=tuple(SlipLine(name=n, count=c, fen=f) for n, c, f in tenders),
                     voids_count=1, voids_fen=1500, refunds_count=0, refunds_fen=0, cash_expected_fen=expected,
                     cash_counted_fen=counted, cash_over_short_fen=None if counted is None else counted - expected,
                     ledger_time_ms=1_780_030_000_000)


def test_a_station_hands_over_without_a_count_prints_its_slip_and_locks():
    terminal = till("free")
    press(terminal, ["F4"])
    (submit,) = [effect for effect in press(terminal, "E") if isinstance(effect, Submit)]
    assert submit.message_type is ShiftHandover and submit.fields["counted_fen"] is None
    assert submit.fields["operator"] == "wang" and terminal.state == State.CLOSING_SHIFT
    effects = terminal.handle(Answer(slip()))
    (printed,) = [effect for effect in effects if isinstance(effect, Print)]
    assert isinstance(printed.receipt, ShiftSlipReceipt) and terminal.operator is None
    lines = collapsed(render_receipt_text(printed.receipt, 384))
    assert "消费 Sales x2 45.00" in lines and "储值卡 Card x3 30.00" in lines and "撤销冲正 Voids x1 -15.00" in lines
    assert not any("Cash count" in line for line in lines)  # no drawer, no cash taken: no cash block
    assert RememberReceipt(9) in terminal.handle(PrintFinished())
    assert terminal.state == State.DONE
    terminal.handle(Tick(60_000))
    assert terminal.state == State.LOCKED


def test_the_desk_asks_for_a_blind_count_and_says_plainly_what_is_wrong_with_bad_input():
    terminal = till("desk")
    press(terminal, ["F4"])
    shown = screen(press(terminal, "E"))
    assert terminal.state == State.CASH_COUNT and shown.big == "￥0"
    assert not any(word in " ".join((shown.title, *shown.lines, shown.footer)) for word in ("应有", "Expected", "100"))
    for typed, problem in (("", "Type the cash (0 if none)"), ("12.345", "2 decimals"), ("1000000", "Max 100000.00")):
        shown = screen(press(terminal, typed + "E"))
        assert terminal.state == State.CASH_COUNT and problem in shown.lines[0] and shown.tone == "warning", typed
        assert shown.big == "￥0"  # the bad input is gone: type it again
    shown = screen(press(terminal, "95E"))
    assert terminal.state == State.CASH_CONFIRM and shown.big == "￥95.00"
    assert screen(press(terminal, "B")).big == "￥0" and terminal.state == State.CASH_COUNT  # count again
    press(terminal, "95.5E")
    (submit,) = [effect for effect in press(terminal, "E") if isinstance(effect, Submit)]
    assert submit.message_type is ShiftHandover and submit.fields["counted_fen"] == 9550


def test_cancel_during_the_count_keeps_the_shift_open_and_sends_nothing():
    terminal = till("desk")
    press(terminal, ["F4"])
    effects = press(terminal, "E12C")
    assert not [effect for effect in effects if isinstance(effect, Submit)]
    assert terminal.state == State.IDLE and terminal.operator == "li"


@pytest.mark.parametrize("typed, fen", [("0", 0), ("0.5", 50), ("1234.56", 123456), ("100000", 10_000_000),
                                        ("", None), (".", None), ("1.234", None), ("100000.01", None)])
def test_a_count_is_integer_fen_and_an_empty_drawer_is_a_count(typed, fen):
    assert parse_count(typed) == fen


def test_a_handover_the_ledger_has_not_answered_logs_out_and_its_slip_prints_later():
    terminal = till("desk")
    press(terminal, ["F4"])
    press(terminal, "E100E")
    press(terminal, "E")
    shown = screen(terminal.handle(NoAnswer()))
    assert "Handover sent" in shown.title and terminal.operator is None
    press(terminal, "E")
    assert terminal.state == State.LOCKED


def test_a_declined_handover_logs_the_till_out_and_says_why():
    terminal = till("free")
    press(terminal, ["F4"])
    press(terminal, "E")
    shown = screen(terminal.handle(Answer(result(9, "declined", "UNKNOWN_STAFF"))))
    assert terminal.operator is None and "Logged out" in shown.title
    press(terminal, "E")
    assert terminal.state == State.LOCKED


def test_the_desk_slip_printed_through_the_escpos_driver_is_the_ledgers_answer_and_the_books(ledger):
    """Li's shift in the books (three cards issued, a top-up, a return: 100.00 expected in cash), a
    blind count of 95.00; the slip the ledger answered, printed by the real driver into the emulated
    printer, says each kind and tender as the books have them, and the shortfall."""
    desk_day(ledger)
    answer = hand_over(ledger, "T-DESK-1", LI, 9500)
    config = StationConfig(park_name="青山湖乐园", station_name="总台 Desk", mode="desk")
    receipts, _ = print_copies(slip_receipt(config, "T-DESK-1", "李娜", "S0002", answer))
    assert len(receipts) == 2
    for printed, copy in zip(receipts, ("收银员联", "财务联")):
        lines = collapsed(printed.text_lines)
        assert any(copy in line for line in lines)
        assert "开卡 Cards issued x3 290.00" in lines and "充值 Top-ups x1 30.00" in lines
        assert "退卡 Returns x1 120.00" in lines
        assert "现金 Cash x4 100.00" in lines and "微信 WeChat x1 100.00" in lines
        assert "退款 Refunds x1 -120.00" in lines
        assert "应有 Expected 100.00" in lines and "实点 Counted 95.00" in lines and "短款 Short -5.00" in lines
        assert f"单号 Slip no. T-DESK-1-{answer.seq}" in lines
        assert printed.is_cut and not printed.is_incomplete


def test_a_rental_desk_counts_its_cash_too_and_a_scan_after_its_slip_does_not_start_a_hand_out():
    from terminal.rental import RentalTerminal, Scanned

    terminal = RentalTerminal(StationConfig(park_name="青山湖乐园", station_name="租赁 Rentals", mode="rental",
                                            staff={"S0001": ("wang", "王芳")}), "T-RENT-1", voucher_key=None)
    terminal.start(0)
    terminal.handle(CardTapped("01020304", STAFF_CARD))
    press(terminal, "1234E")
    terminal.handle(Answer(result(1)))
    press(terminal, ["F4"])
    press(terminal, "E")
    assert terminal.state == State.CASH_COUNT  # deposits are paid in cash at a rental desk
    press(terminal, "30E")
    (submit,) = [effect for effect in press(terminal, "E") if isinstance(effect, Submit)]
    assert submit.fields["counted_fen"] == 3000
    terminal.handle(Answer(slip(counted=3000, expected=3000)))
    terminal.handle(PrintFinished())
    assert terminal.state == State.DONE and terminal.operator is None
    terminal.handle(Scanned("ROD-001", 0))
    assert terminal.state == State.DONE and terminal.sale is None  # waits for a login, starts nothing


def test_the_desk_app_hands_over_through_mosquitto_and_the_ledger_and_prints_the_slip_with_the_count(rig):
    """The real desk app on emulated hardware: Li issues a card paid in cash (120.00), hands over with
    F4 and counts 110.00; the ledger books 10.00 short, the emulated printer prints both slip copies
    saying so, the till locks, and the books verify."""
    from host_sim.devices.mifare import MifareClassic1K
    from host_sim.rig import STAFF
    from host_sim.station import ScriptedStation
    from ledger.verify import verify_books

    desk = ScriptedStation(rig, "T-DESK-1", mode="desk", card_fee_fen=2000)
    try:
        desk.log_in(STAFF[1])  # Li, front desk
        desk.tap(MifareClassic1K(bytes.fromhex("5a6b7c8d")))
        desk.keys("1")  # a temporary card
        desk.keys("100E")
        desk.keys("1")  # paid in cash
        desk.turns(lambda: desk.state == State.DONE)
        desk.keys("C")
        desk.keys([Key.F4])
        desk.keys("E")
        assert desk.state == State.CASH_COUNT and "120" not in " ".join(desk.app.screen.lines)  # blind
        desk.keys("110E")
        desk.keys("E")
        desk.turns(lambda: desk.state == State.DONE)
        copies = [" ".join(receipt.text.split()) for receipt in desk.sim.printer.receipts[-2:]]
        for text, copy in zip(copies, ("收银员联", "财务联")):
            assert copy in text and "应有 Expected 120.00" in text and "实点 Counted 110.00" in text
            assert "短款 Short -10.00" in text and "开卡 Cards issued x1 120.00" in text
        desk.keys("C")  # any key leaves the slip's screen: nobody is logged in now
        assert desk.state == State.LOCKED and desk.app.machine.operator is None
        over_short = rig.reader.db.execute(
            "SELECT SUM(amount) FROM posting WHERE account_id = 'cash_over_short'").fetchone()[0]
        assert over_short == -1000 and verify_books(rig.reader).is_ok
    finally:
        desk.close()
