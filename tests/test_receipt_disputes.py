"""Receipts a visitor and a contractor can settle a dispute with: how the money moved, a return
itemised, a void printed negative with what it undoes and who approved it, a member opening and a
replacement in full, one receipt number to quote, and REPRINT only on a true second print."""

from types import SimpleNamespace

from host_sim.devices.printer import EmulatedPrinter
from protocol.messages import Balances, Result
from terminal.app import TerminalApp
from terminal.events import Answer, CardTapped, Print, PrintFailed, PrintFinished, State
from terminal.hal.printer import PROFILE_58MM_TEXT
from terminal.receipt import ReceiptCopy, layout_receipt, render_receipt_text

from .helpers.receipts import fishing_charge
from .test_terminal_core import (SUPERVISOR_CARD, VISITOR, desk_logged_in, keys, logged_in, lookup_reply, result,
                                 submits, supervise)

SUPERVISOR = {"S0003": ("zhao", "赵敏")}
WIDTH = PROFILE_58MM_TEXT.width_dots


def approved(seq, *, fen=0, bonus=0, points=0, amount_fen=None, card_record=None):
    return Result(park="P1", terminal="T-DESK-1", seq=seq, request_sha256="a" * 64, outcome="approved", reason="OK",
                  balances=Balances(fen=fen, bonus=bonus, points=points), txn=41, ledger_time_ms=1_780_000_000_000,
                  detail="", amount_fen=amount_fen, card_record=card_record)


def text(receipt) -> list[str]:
    """The customer copy's lines, padding squeezed: "金额      30.00" -> "金额 30.00"."""
    return [" ".join(line.split()) for line in render_receipt_text(receipt, WIDTH)]


def printed(effects):
    (effect,) = [e for e in effects if isinstance(e, Print)]
    return effect.receipt


def test_a_top_up_receipt_says_how_it_was_paid():
    desk = desk_logged_in()
    desk.handle(CardTapped("04a1b2c3", VISITOR))
    keys(desk, "1")
    keys(desk, "50E")
    submits(keys(desk, "1"))  # cash
    desk.submitted(2)
    lines = text(printed(desk.handle(Answer(approved(2, fen=12000, amount_fen=5000)))))
    assert "付款方式 Paid by 现金 Cash" in lines


def test_a_card_issued_says_card_deposit_and_how_it_was_paid():
    desk = desk_logged_in(card_fee_fen=2000)
    desk.handle(CardTapped("1a2b3c4d", None, "blank card", is_blank=True))
    keys(desk, "1")
    keys(desk, "100E")
    assert desk.redraw().title == "收款 Collect ￥120.00"  # what to collect shows before the tender is chosen
    submits(keys(desk, "2"))  # WeChat
    desk.submitted(2)
    desk.handle(Answer(approved(2, fen=10000, card_record="ab" * 96)))
    receipt = desk.last_receipt
    assert [item.item for item in receipt.line_items] == ["卡押金 Card deposit", "预存 Opening"]
    assert "付款方式 Paid by 微信 WeChat" in text(receipt)
    assert not any("fee" in line.lower() for line in text(receipt))


def test_a_return_itemises_balance_deposit_damage_kept_total_and_the_refund_method():
    desk = desk_logged_in(card_fee_fen=2000, damage_fee_fen=1000)
    desk.handle(CardTapped("04a1b2c3", VISITOR))
    keys(desk, "2")
    keys(desk, "2")  # damaged
    keys(desk, "3")  # refunded by Alipay
    submits(keys(desk, "E"))  # the refund shown, confirmed
    desk.submitted(2)
    lines = text(printed(desk.handle(Answer(approved(2, amount_fen=8000)))))  # 70.00 + 20.00 - 10.00
    itemised = ["退余额 Balance 70.00", "退押金 Card deposit 20.00", "扣损坏费 Damage kept -10.00",
                "退款合计 Total refund 80.00", "退款方式 Refund by 支付宝 Alipay"]
    assert [line for line in lines if line in itemised] == itemised


def test_a_void_prints_negative_with_the_original_receipt_number_and_the_supervisor():
    terminal = logged_in(staff={"S0001": ("wang", "王芳")} | SUPERVISOR)
    terminal.handle(CardTapped("04a1b2c3", VISITOR))
    keys(terminal, "30E")
    terminal.submitted(7)
    terminal.handle(Answer(result(7)))
    terminal.handle(PrintFinished())
    keys(terminal, "C")
    keys(terminal, ["F3"])
    keys(terminal, "E")
    supervise(terminal)
    terminal.submitted(8)
    receipt = printed(terminal.handle(Answer(result(8, fen=10000))))
    lines = text(receipt)
    assert "金额 -30.00" in lines
    assert "原单号 Original T-FISH-1-7" in lines
    assert "主管 Approved by 赵敏 (zhao)" in lines
    assert "单号 Receipt no. T-FISH-1-8" in lines
    assert not any(line.endswith(" 30.00") for line in lines)  # no line adds the amount back as positive


def test_a_void_approved_by_a_supervisor_the_till_does_not_know_names_the_card():
    terminal = logged_in()
    assert terminal.supervisor_text(SUPERVISOR_CARD.card_no) == "**** 0003"


def test_a_member_opening_prints_the_members_name_and_only_the_phones_last_four_digits():
    desk = desk_logged_in()
    desk.handle(CardTapped("1a2b3c4d", None, "blank card", is_blank=True))
    keys(desk, "2")
    keys(desk, [*"zhang", " ", *"wei"])
    keys(desk, "E")
    keys(desk, "13800138000E")
    keys(desk, "246810E246810E")
    keys(desk, "500E")
    submits(keys(desk, "1"))
    desk.submitted(2)
    desk.handle(Answer(approved(2, fen=50000, card_record="ab" * 96)))
    lines = text(desk.last_receipt)
    assert "会员 Member Zhang Wei" in lines and "手机尾号 Phone 8000" in lines
    assert not any("13800138000" in line or "0013" in line for line in lines)


def test_a_replacement_shows_balance_bonus_and_points_moved_in_chinese_lines():
    desk = desk_logged_in(staff={"S0002": ("li", "李娜")} | SUPERVISOR)
    desk.handle(CardTapped("5e6f7a8b", None, "blank card", is_blank=True))
    keys(desk, "3")
    keys(desk, "13800138000E")
    desk.handle(Answer(lookup_reply(2, ("M00008", "0a0b0c0d", "lost"))))  # 400.00, bonus 50.00, 100 points
    keys(desk, "E")
    supervise(desk)
    desk.submitted(3)
    desk.handle(Answer(approved(3, fen=40000, bonus=5000, points=100, card_record="ab" * 96)))
    lines = text(desk.last_receipt)
    assert {"转入余额 400.00", "转入赠送 50.00", "转入积分 100"} <= set(lines)
    assert any(line.startswith("补卡 原卡 **** 0008") for line in lines)
    for line in lines:  # a line that speaks Chinese about the replacement has no English word in it
        if line.startswith(("补卡", "转入")):
            assert not any(character.isascii() and character.isalpha() for character in line), line


def test_the_customer_copy_has_one_number_to_quote_and_the_merchant_copy_labels_the_ledgers_as_internal():
    customer, merchant = (render_receipt_text(copy, WIDTH) for copy in fishing_charge().copies())
    assert sum("T07-1234" in line for line in customer if not line.startswith("[QR")) == 2  # the number, under its QR
    assert not any("L-88213" in line for line in customer)
    assert not any("流水号" in line for line in customer + merchant)
    (internal,) = [line for line in merchant if "L-88213" in line]
    assert internal.startswith("内部号 Internal")
    assert layout_receipt(fishing_charge(copy=ReceiptCopy.MERCHANT), WIDTH).columns == 32


def test_paper_out_before_the_sale_then_reloaded_prints_the_original_not_a_reprint():
    terminal = logged_in()
    terminal.handle(CardTapped("04a1b2c3", VISITOR))
    keys(terminal, "30E")
    terminal.handle(Answer(result(10)))
    terminal.handle(PrintFailed("PAPER_OUT", "缺纸 Paper out", is_nothing_printed=True))
    first = printed(keys(terminal, "E"))
    assert not first.is_reprint and terminal.state == State.PRINTING
    terminal.handle(PrintFinished())
    assert printed(keys(terminal, ["F1"])).is_reprint  # a true second print


def test_the_printer_refusing_before_the_first_line_is_reported_as_nothing_printed():
    with EmulatedPrinter(width_dots=WIDTH) as emulator:
        printer = emulator.open_driver(PROFILE_58MM_TEXT)
        app = SimpleNamespace(hardware=SimpleNamespace(printer=printer))
        emulator.set_paper_out()
        refused = TerminalApp._print(app, fishing_charge())
        assert isinstance(refused, PrintFailed) and refused.is_nothing_printed
        emulator.load_paper()
        emulator.run_out_of_paper_after_lines(5)
        cut_short = TerminalApp._print(app, fishing_charge())
        assert isinstance(cut_short, PrintFailed) and not cut_short.is_nothing_printed
        printer.close()
