"""A till that explains itself on a 128x64 panel: every decline reason fits, whole Chinese and the
English wrapped (not cut at the panel's edge); an amount that cannot be charged says why; a void's
result says it was voided."""

import pytest

from protocol.messages import Balances, Result
from protocol.reasons import NOT_FINAL_REASONS, Reason, reason_text
from terminal.events import Answer, CardTapped, PrintFinished, Show, State
from terminal.screens import BASE_SIZE, MARGIN_PX, TEXT_FONT_PX, Screen, load_display_font, panel_lines, render_screen

from .test_terminal_core import VISITOR, keys, logged_in, result, submits, supervise

PANEL_TEXT_PX = BASE_SIZE[0] - 2 * MARGIN_PX


def declined(reason: Reason, *, balance_fen: int | None = 5_500) -> Show:
    terminal = logged_in()
    terminal.handle(CardTapped("04a1b2c3", VISITOR))
    keys(terminal, "30E")
    refusal = Result(park="P1", terminal="T-FISH-1", seq=7, request_sha256="a" * 64, outcome="declined",
                     reason=reason.value, balances=None if balance_fen is None else Balances(fen=balance_fen, bonus=0, points=0),
                     txn=None, ledger_time_ms=1_780_000_000_000, detail="")
    (show,) = terminal.handle(Answer(refusal))
    return show


@pytest.mark.parametrize("reason", [reason for reason in Reason if reason not in NOT_FINAL_REASONS and reason != Reason.OK])
def test_every_reasons_decline_screen_fits_the_panel_with_its_chinese_whole(reason):
    show = declined(reason)
    font = load_display_font(TEXT_FONT_PX)
    assert all(font.getlength(line) <= PANEL_TEXT_PX for line in show.lines), show.lines
    render_screen(Screen(title=show.title, lines=show.lines, footer=show.footer, tone=show.tone), BASE_SIZE)  # raises if not
    chinese = reason_text(reason).split(" ")[0]
    assert show.lines[0] == chinese, show.lines  # whole, on its own line
    assert show.lines[-1] == "余额 Balance 55.00"


def test_a_short_reason_is_shown_whole_and_a_long_one_wraps_before_it_is_shortened():
    assert declined(Reason.INSUFFICIENT_FUNDS).lines == ("余额不足", "Insufficient balance", "余额 Balance 55.00")
    assert panel_lines(reason_text(Reason.PIN_LOCKED), 3) == ("密码已锁定", "PIN locked —", "a supervisor must …")
    whole = " ".join(panel_lines(reason_text(Reason.CARD_BLOCKED), 4))
    assert whole.split() == reason_text(Reason.CARD_BLOCKED).split()  # four rows hold it all: nothing lost


@pytest.mark.parametrize("typed, why", [
    ("0", "不能为零 Not 0"),
    ("0.00", "不能为零 Not 0"),
    ("1.234", "两位小数 2 decimals"),
    ("100000.01", "上限 Max 100000.00"),
])
def test_an_amount_that_cannot_be_charged_says_why_instead_of_ignoring_enter(typed, why):
    terminal = logged_in()
    terminal.handle(CardTapped("04a1b2c3", VISITOR))
    effects = keys(terminal, typed + "E")
    assert not submits(effects) and terminal.state == State.AMOUNT
    assert why in effects[-1].lines
    font = load_display_font(TEXT_FONT_PX)
    assert font.getlength(why) <= PANEL_TEXT_PX
    (submit,) = submits(keys(terminal, "30E"))  # typed again: charged
    assert submit.fields["amount_fen"] == 3000


def test_a_voids_result_screen_says_voided():
    terminal = logged_in()
    terminal.handle(CardTapped("04a1b2c3", VISITOR))
    keys(terminal, "30E")
    terminal.submitted(7)
    terminal.handle(Answer(result(7)))
    terminal.handle(PrintFinished())
    assert terminal.redraw().title == "成功 Approved"
    keys(terminal, "C")
    keys(terminal, ["F3"])
    keys(terminal, "E")
    supervise(terminal)
    terminal.submitted(8)
    terminal.handle(Answer(result(8, fen=10000)))
    (done,) = terminal.handle(PrintFinished())[1:]
    assert done.title == "已撤销 Voided"


def test_paper_out_shows_on_the_idle_screen_and_a_sale_starts_only_when_the_cashier_agrees():
    terminal = logged_in()
    terminal.printer_problem = "缺纸 Paper out"
    idle = terminal.redraw()
    assert idle.tone == "warning" and idle.lines[0] == "缺纸 Paper out"
    terminal.handle(CardTapped("04a1b2c3", VISITOR))
    assert terminal.state == State.CONFIRM_NO_RECEIPT and "Sell anyway?" in terminal.redraw().lines[1]
    keys(terminal, "C")
    assert terminal.state == State.IDLE and terminal.sale is None  # the visitor chose not to pay
    terminal.handle(CardTapped("04a1b2c3", VISITOR))
    keys(terminal, "E")
    assert terminal.state == State.AMOUNT and terminal.sale.card == VISITOR
    (submit,) = submits(keys(terminal, "30E"))
    assert submit.fields["amount_fen"] == 3000
    render_screen(Screen(title="无小票 No receipt", lines=("缺纸 Paper out", "仍要收费? Sell anyway?"),
                         footer="确认 ENTER  取消 CANCEL", tone="warning"), BASE_SIZE)
