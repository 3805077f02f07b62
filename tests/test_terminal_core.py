"""The cashier's flow as a table of events and effects: no hardware, no network, no clock."""

import pytest

from protocol.card_record import CardRecord
from protocol.limits import MAX_QUANTITY
from protocol.messages import Balances, Charge, LineItem, Result, ShiftHandover, ShiftOpen
from terminal.config import MenuItem, StationConfig
from terminal.core import Terminal
from terminal.events import (
    Answer, CardTapped, KeyPressed, NoAnswer, OfflineApproved, OfflineRefused, Print, PrintFailed, PrintFinished,
    RememberReceipt, Show, State, Submit, Tick, TryOffline, parse_amount,
)

STAFF_CARD = CardRecord("S0001", 1, "staff", "P1")
VISITOR = CardRecord("C00042", 1, "temporary", "P1")
MEMBER = CardRecord("M00007", 1, "member", "P1")


def config(**overrides):
    settings = dict(park_name="青山湖乐园", station_name="钓鱼 Fishing", staff={"S0001": ("wang", "王芳")})
    return StationConfig(**(settings | overrides))


def result(seq, outcome="approved", reason="OK", fen=7000):
    return Result(park="P1", terminal="T-FISH-1", seq=seq, request_sha256="a" * 64, outcome=outcome, reason=reason,
                  balances=Balances(fen=fen, bonus=0, points=0), txn=99 if outcome == "approved" else None,
                  ledger_time_ms=1_780_000_000_000, detail="")


def keys(terminal, text):
    effects = []
    for key in text:
        effects += terminal.handle(KeyPressed({"E": "ENTER", "C": "CANCEL", "B": "BACK"}.get(key, key)))
    return effects


def submits(effects):
    return [e for e in effects if isinstance(e, Submit)]


def logged_in(**overrides) -> Terminal:
    terminal = Terminal(config(**overrides), "T-FISH-1")
    terminal.start(0)
    terminal.handle(CardTapped("01020304", STAFF_CARD))
    assert terminal.state == State.LOGIN_PIN
    (submit,) = submits(keys(terminal, "1234E"))
    assert submit.message_type is ShiftOpen and submit.pin == "1234" and submit.fields["operator"] == "wang"
    terminal.handle(Answer(result(1)))
    assert terminal.state == State.IDLE and terminal.operator == "wang"
    return terminal


def test_a_charge_of_30_50_typed_after_the_tap_is_submitted_printed_and_remembered():
    terminal = logged_in()
    terminal.handle(CardTapped("04a1b2c3", VISITOR))
    assert terminal.state == State.AMOUNT
    (submit,) = submits(keys(terminal, "30.5E"))
    assert submit.message_type is Charge and submit.fields["amount_fen"] == 3050 and submit.pin is None
    assert submit.fields["operator"] == "wang" and submit.fields["card"] == (VISITOR, "04a1b2c3")
    terminal.submitted(7)
    effects = terminal.handle(Answer(result(7, fen=6950)))
    (printed,) = [e for e in effects if isinstance(e, Print)]
    assert printed.receipt.amount_fen == 3050 and printed.receipt.balance_after_fen == 6950
    assert printed.receipt.receipt_number == "T-FISH-1-7" and printed.receipt.operator == "王芳"
    assert printed.receipt.masked_card_number == "**** 0042"
    effects = terminal.handle(PrintFinished())
    assert RememberReceipt(7) in effects and terminal.state == State.DONE
    terminal.handle(Tick(10_000))
    assert terminal.state == State.IDLE


def test_a_declined_charge_shows_the_reason_and_the_balance_then_returns_to_idle():
    terminal = logged_in()
    terminal.handle(CardTapped("04a1b2c3", VISITOR))
    keys(terminal, "99E")
    effects = terminal.handle(Answer(result(8, "declined", "INSUFFICIENT_FUNDS", fen=500)))
    (screen,) = [e for e in effects if isinstance(e, Show)]
    assert "余额不足" in screen.lines[0] and "5.00" in screen.lines[-1] and screen.tone == "error"
    assert not [e for e in effects if isinstance(e, Print)]
    terminal.handle(KeyPressed("ENTER"))
    assert terminal.state == State.IDLE


def test_no_answer_is_never_a_decline_and_never_allows_a_second_charge():
    terminal = logged_in()
    terminal.handle(CardTapped("04a1b2c3", VISITOR))
    keys(terminal, "30E")
    terminal.submitted(5)
    (try_offline,) = terminal.handle(NoAnswer())
    assert isinstance(try_offline, TryOffline) and try_offline.supersedes_seq == 5 and try_offline.amount_fen == 3000
    effects = terminal.handle(OfflineRefused("OFFLINE_OVER_SALE_CAP", "超出离线单笔限额 Over the offline limit per sale"))
    assert terminal.state == State.UNCERTAIN and "Do NOT charge again" in effects[0].lines[1]
    assert "Over the offline limit" in effects[0].lines[2]
    assert keys(terminal, "C5E") == [] and terminal.state == State.UNCERTAIN
    assert terminal.handle(CardTapped("04a1b2c3", VISITOR)) == []
    effects = terminal.handle(Answer(result(9)))
    assert terminal.state == State.PRINTING and any(isinstance(e, Print) for e in effects)


def test_no_answer_then_an_offline_approval_prints_an_offline_receipt_without_a_balance():
    terminal = logged_in()
    terminal.handle(CardTapped("04a1b2c3", VISITOR))
    keys(terminal, "30E")
    terminal.submitted(5)
    terminal.handle(NoAnswer())
    effects = terminal.handle(OfflineApproved(seq=6, time_ms=1_780_000_000_000, is_time_uncertain=True))
    (printed,) = [e for e in effects if isinstance(e, Print)]
    receipt = printed.receipt
    assert not receipt.is_online and receipt.balance_after_fen is None and receipt.is_time_uncertain
    assert receipt.receipt_number == "T-FISH-1-6" and receipt.ledger_transaction_id is None
    assert "OFFLINE" in effects[0].title


def test_without_network_a_sale_goes_straight_to_the_offline_policy_and_a_refusal_leaves_nothing_pending():
    terminal = logged_in()
    terminal.is_online = False
    terminal.handle(CardTapped("04a1b2c3", VISITOR))
    effects = keys(terminal, "30E")
    assert not submits(effects)
    (try_offline,) = [e for e in effects if isinstance(e, TryOffline)]
    assert try_offline.supersedes_seq is None
    effects = terminal.handle(OfflineRefused("CARD_BLOCKED", "卡已挂失/冻结 Card blocked"))
    assert terminal.state == State.MESSAGE and "Card blocked" in effects[0].lines[0]


def test_paper_out_keeps_the_sale_and_enter_reprints_it_marked():
    terminal = logged_in()
    terminal.handle(CardTapped("04a1b2c3", VISITOR))
    keys(terminal, "30E")
    terminal.handle(Answer(result(10)))
    effects = terminal.handle(PrintFailed("PAPER_OUT", "缺纸 Paper out — load a new roll"))
    assert terminal.state == State.PRINTER_PROBLEM and "缺纸" in effects[0].lines[0]
    effects = keys(terminal, "E")
    (printed,) = [e for e in effects if isinstance(e, Print)]
    assert printed.receipt.is_reprint and printed.receipt.seq == 10
    assert not submits(effects)


def test_a_member_card_above_the_no_pin_limit_asks_for_the_pin():
    terminal = logged_in(no_pin_limit_fen=10000)
    terminal.handle(CardTapped("0a0b0c0d", MEMBER))
    keys(terminal, "150E")
    assert terminal.state == State.CHARGE_PIN
    (submit,) = submits(keys(terminal, "864200E"))
    assert submit.pin == "864200" and submit.fields["amount_fen"] == 15000


@pytest.mark.parametrize("overrides, typed, amount_fen, lines", [
    (dict(mode="fixed", fixed_price_fen=2500), "", 2500, 1),
    (dict(mode="count", unit_price_fen=1000, unit_name="圈 lap"), "3E", 3000, 1),
    (dict(mode="count", unit_price_fen=1000), "E", 1000, 1),
    (dict(mode="menu", menu=(MenuItem("烤串 Skewer", 500), MenuItem("玉米 Corn", 800))), "112E", 1800, 2),
    (dict(mode="menu", menu=(MenuItem("烤串 Skewer", 500), MenuItem("玉米 Corn", 800))), "12BE", 500, 1),
])
def test_each_charge_mode_builds_its_lines(overrides, typed, amount_fen, lines):
    terminal = logged_in(**overrides)
    effects = terminal.handle(CardTapped("04a1b2c3", VISITOR)) + keys(terminal, typed)
    (submit,) = submits(effects)
    assert submit.fields["amount_fen"] == amount_fen and len(submit.fields["lines"]) == lines
    assert all(isinstance(line, LineItem) for line in submit.fields["lines"])


def test_a_free_menu_item_stops_at_the_most_a_line_can_carry():
    terminal = logged_in(mode="menu", menu=(MenuItem("茶水 Tea", 0),))
    terminal.handle(CardTapped("04a1b2c3", VISITOR))
    keys(terminal, "1" * (MAX_QUANTITY + 5))
    assert terminal.sale.lines == (LineItem(item="茶水 Tea", qty=MAX_QUANTITY, unit_fen=0),)


def test_half_finished_entries_time_out_and_cancel_returns_to_idle():
    terminal = logged_in()
    terminal.handle(CardTapped("04a1b2c3", VISITOR))
    keys(terminal, "12")
    terminal.handle(Tick(59_000))
    assert terminal.state == State.AMOUNT
    terminal.handle(Tick(61_000))
    assert terminal.state == State.IDLE and terminal.sale is None
    terminal.handle(CardTapped("04a1b2c3", VISITOR))
    keys(terminal, "C")
    assert terminal.state == State.IDLE


def test_the_wrong_cards_get_clear_screens():
    terminal = Terminal(config(), "T-FISH-1")
    terminal.start(0)
    effects = terminal.handle(CardTapped("04a1b2c3", VISITOR))
    assert terminal.state == State.MESSAGE and "员工卡" in effects[0].title
    keys(terminal, "E")
    assert terminal.state == State.LOCKED
    unknown_staff = CardRecord("S9999", 1, "staff", "P1")
    effects = terminal.handle(CardTapped("01020304", unknown_staff))
    assert "Staff card unknown" in effects[0].title
    terminal = logged_in()
    effects = terminal.handle(CardTapped("deadbeef", None, "card record signature does not match this card"))
    assert "Card not accepted" in effects[0].title and "does not match" in effects[0].lines[0]


def test_a_refused_login_goes_back_to_locked_and_close_shift_logs_out():
    terminal = Terminal(config(), "T-FISH-1")
    terminal.start(0)
    terminal.handle(CardTapped("01020304", STAFF_CARD))
    keys(terminal, "9999E")
    effects = terminal.handle(Answer(result(1, "declined", "WRONG_PIN")))
    assert "密码错误" in effects[0].lines[0]
    keys(terminal, "E")
    assert terminal.state == State.LOCKED and terminal.operator is None
    terminal = logged_in()
    keys(terminal, ["F4"])
    (submit,) = submits(keys(terminal, "E"))
    assert submit.message_type is ShiftHandover and submit.fields["card"] == (STAFF_CARD, "01020304")
    terminal.handle(NoAnswer())  # the handover stays queued; its slip prints when the ledger answers
    keys(terminal, "E")
    assert terminal.state == State.LOCKED and terminal.operator is None


def test_amount_parsing_is_integer_fen():
    assert [parse_amount(t) for t in ("30", "30.5", "30.05", "0.01", "", ".", "1.234", "0", "100000", "100001")] == \
        [3000, 3050, 3005, 1, None, None, None, None, 10_000_000, None]


def test_a_card_on_the_local_blocklist_is_refused_without_asking_anyone():
    terminal = logged_in()
    effects = terminal.handle(CardTapped("04a1b2c3", VISITOR, is_blocked=True))
    assert terminal.state == State.MESSAGE and not submits(effects)
    assert "Card blocked" in effects[0].title and "front desk" in effects[0].lines[0]


def test_outside_opening_hours_a_tap_gets_a_closed_screen_and_nothing_is_sent():
    terminal = logged_in(open_hours=("08:00", "18:00"))
    terminal.handle(Tick(1_000, minute_of_day=19 * 60))
    effects = terminal.handle(CardTapped("04a1b2c3", VISITOR))
    assert terminal.state == State.MESSAGE and "Closed" in effects[0].title and "08:00-18:00" in effects[0].lines[0]
    keys(terminal, "E")
    terminal.handle(Tick(2_000, minute_of_day=9 * 60))
    terminal.handle(CardTapped("04a1b2c3", VISITOR))
    assert terminal.state == State.AMOUNT


def test_the_idle_screen_warns_when_the_queue_is_nearly_full():
    terminal = logged_in()
    terminal.is_queue_nearly_full = True
    screen = terminal._screen()
    assert screen.tone == "warning" and "Queue nearly full" in screen.lines[0]


def test_at_the_front_desk_a_member_card_can_be_topped_up_but_never_charged_or_returned():
    desk = Terminal(config(mode="desk", staff={"S0002": ("li", "李娜")}), "T-DESK-1")
    desk.start(0)
    desk.handle(CardTapped("01020304", CardRecord("S0002", 1, "staff", "P1")))
    keys(desk, "2345E")
    desk.handle(Answer(result(1)))
    effects = desk.handle(CardTapped("0a0b0c0d", MEMBER))
    assert desk.state == State.DESK_MENU and effects[0].title == "会员卡 **** 0007"
    assert keys(desk, "4") == [] and keys(desk, "5") == [] and desk.state == State.DESK_MENU  # no return, no reissue
    keys(desk, "1")
    assert desk.state == State.DESK_AMOUNT
    (submit,) = submits(keys(desk, "500E") + keys(desk, "2"))
    assert submit.message_type.TYPE == "top_up" and submit.fields["amount_fen"] == 50000 and submit.fields["channel"] == "wechat"


# ---------------------------------------------------------------- second credential, member desk flows
SUPERVISOR_CARD = CardRecord("S0003", 1, "staff", "P1")


def desk_logged_in(**overrides) -> Terminal:
    desk = Terminal(config(**({"mode": "desk", "staff": {"S0002": ("li", "李娜")}} | overrides)), "T-DESK-1")
    desk.start(0)
    desk.handle(CardTapped("01020304", CardRecord("S0002", 1, "staff", "P1")))
    keys(desk, "2345E")
    desk.handle(Answer(result(1)))
    assert desk.state == State.IDLE
    return desk


def supervise(terminal, pin="3456"):
    """The supervisor taps their card and types their PIN; returns the Submit."""
    assert terminal.state == State.SUPERVISOR_CARD
    terminal.handle(CardTapped("0a0a0a0a", VISITOR))  # not a staff card: asked again
    assert terminal.state == State.SUPERVISOR_CARD and "supervisor" in terminal.redraw().lines[1]
    terminal.handle(CardTapped("03030303", SUPERVISOR_CARD))
    assert terminal.state == State.SUPERVISOR_PIN
    (submit,) = submits(keys(terminal, pin + "E"))
    assert submit.supervisor_pin == pin and submit.pin is None and submit.fields["supervisor_card_no"] == "S0003"
    return submit


def test_f3_voids_the_last_sale_of_the_shift_once_with_a_supervisors_card_and_pin():
    from protocol.messages import Void

    terminal = logged_in()
    assert keys(terminal, ["F3"])[0].title.startswith("撤销") and terminal.state == State.MESSAGE  # nothing to void yet
    keys(terminal, "C")
    terminal.handle(CardTapped("04a1b2c3", VISITOR))
    keys(terminal, "30E")
    terminal.submitted(7)
    terminal.handle(Answer(result(7, fen=7000)))
    terminal.handle(PrintFinished())
    keys(terminal, "C")
    keys(terminal, ["F3"])
    assert terminal.state == State.CONFIRM_UNDO and "T-FISH-1-7" in terminal.redraw().lines[0]
    keys(terminal, "E")
    submit = supervise(terminal)
    assert submit.message_type is Void and submit.fields["original_seq"] == 7 and submit.fields["amount_fen"] == 3000
    assert submit.fields["card"] == (VISITOR, "04a1b2c3") and submit.fields["operator"] == "wang"
    terminal.submitted(8)
    (printed,) = [e for e in terminal.handle(Answer(result(8, fen=10000))) if isinstance(e, Print)]
    assert printed.receipt.title == "撤销凭证" and printed.receipt.amount_fen == 3000
    terminal.handle(PrintFinished())
    keys(terminal, "C")
    keys(terminal, ["F3"])
    assert terminal.state == State.MESSAGE  # voided once: nothing left to void


def test_a_supervisor_step_can_be_cancelled_and_times_out_without_sending_anything():
    terminal = desk_logged_in()
    terminal.handle(CardTapped("0a0b0c0d", MEMBER))
    keys(terminal, "2")  # PIN unlock
    assert terminal.state == State.SUPERVISOR_CARD
    assert submits(keys(terminal, "C")) == [] and terminal.state == State.IDLE
    terminal.handle(CardTapped("0a0b0c0d", MEMBER))
    keys(terminal, "2")
    terminal.handle(CardTapped("03030303", SUPERVISOR_CARD))
    keys(terminal, "34")
    terminal.handle(Tick(10**6))
    assert terminal.state == State.IDLE and terminal.sale is None


def test_the_desk_opens_a_member_card_with_name_phone_and_the_pin_typed_twice():
    from protocol.messages import MemberOpen

    desk = desk_logged_in()
    desk.handle(CardTapped("1a2b3c4d", None, "blank card", is_blank=True))
    assert desk.state == State.DESK_NEW_CARD
    keys(desk, "2")
    assert desk.state == State.DESK_NAME
    keys(desk, [" ", *"zhang", " ", " ", *"wei", "1", "."])  # no leading or double spaces; digits are not a name
    assert desk.sale.typed == "zhang wei"
    keys(desk, "E")
    assert desk.state == State.DESK_PHONE
    keys(desk, "13800138000E")
    assert desk.state == State.DESK_NEW_PIN
    keys(desk, "246810E")
    keys(desk, "246811E")  # typed differently: asked for both again
    assert desk.state == State.DESK_NEW_PIN and "differ" in desk.redraw().lines[0]
    keys(desk, "246810E246810E")
    assert desk.state == State.DESK_AMOUNT
    keys(desk, "500E")
    (submit,) = submits(keys(desk, "2"))  # WeChat
    assert submit.message_type is MemberOpen and submit.pin == "246810"
    fields = submit.fields
    assert (fields["member_name"], fields["phone"], fields["opening_fen"], fields["channel"]) == ("Zhang Wei", "13800138000", 50000, "wechat")
    assert fields["card"][0].card_no == "M1A2B3C4D" and fields["card"][0].kind == "member" and desk.sale.new_pin == ""


def lookup_reply(seq, *cards):
    from protocol.messages import MemberCard, MemberLookupReply

    return MemberLookupReply(park="P1", terminal="T-DESK-1", seq=seq, request_sha256="a" * 64, ledger_time_ms=1,
                             cards=tuple(MemberCard(no=no, issuance=1, uid=uid, name="Zhang Wei", state=state, fen=40000,
                                                    bonus=5000, points=100) for no, uid, state in cards))


def test_f2_reports_a_lost_member_card_found_by_phone_number():
    from protocol.messages import LossReport, MemberLookup

    desk = desk_logged_in()
    keys(desk, ["F2"])
    assert desk.state == State.DESK_PHONE
    (lookup,) = submits(keys(desk, "13800138000E"))
    assert lookup.message_type is MemberLookup and lookup.fields["phone"] == "13800138000"
    assert lookup.fields["card"][0].card_no == "S0002"  # asked by the desk's staff member
    desk.handle(Answer(lookup_reply(2, ("M00008", "0a0b0c0d", "active"), ("M00011", "0a0b0c0e", "active"),
                                    ("M00001", "0a0b0c0f", "lost"))))
    assert desk.state == State.DESK_PICK and len(desk.redraw().lines) == 2  # the lost one is not offered
    keys(desk, "2")
    assert desk.state == State.DESK_CONFIRM and "0011" in desk.redraw().lines[0]
    (report,) = submits(keys(desk, "E"))
    assert report.message_type is LossReport and report.fields["card"][0].card_no == "M00011"
    assert report.fields["card"][1] == "0a0b0c0e"
    effects = desk.handle(Answer(result(3)))
    (slip,) = [e.receipt for e in effects if isinstance(e, Print)]  # the member's proof of the time it was reported
    assert desk.state == State.PRINTING and slip.title == "挂失凭证" and slip.masked_card_number == "**** 0011"
    assert ("状态 State", "已挂失 Reported lost") in slip.detail_lines and slip.amount_fen == 0
    desk.handle(PrintFinished())
    keys(desk, "C")  # any key leaves the result
    keys(desk, ["F2"])
    keys(desk, "13900000000E")
    (nothing,) = desk.handle(Answer(lookup_reply(4)))
    assert desk.state == State.MESSAGE and "no active member card" in nothing.lines[1]


def test_a_lost_card_is_replaced_on_a_blank_card_with_a_supervisor_and_the_record_written():
    from protocol.messages import CardReplace
    from terminal.events import WriteCard

    desk = desk_logged_in()
    desk.handle(CardTapped("5e6f7a8b", None, "blank card", is_blank=True))
    keys(desk, "3")
    (lookup,) = submits(keys(desk, "13800138000E"))
    desk.handle(Answer(lookup_reply(2, ("M00008", "0a0b0c0d", "lost"), ("M00011", "0a0b0c0e", "active"))))
    assert desk.state == State.DESK_CONFIRM and desk.sale.chosen.no == "M00008"  # the only lost one
    keys(desk, "E")
    submit = supervise(desk)
    assert submit.message_type is CardReplace and submit.fields["from_card_no"] == "M00008"
    assert submit.fields["card"][0].card_no == "M5E6F7A8B" and submit.fields["card"][1] == "5e6f7a8b"
    desk.submitted(3)
    approved = Result(park="P1", terminal="T-DESK-1", seq=3, request_sha256="a" * 64, outcome="approved", reason="OK",
                      balances=Balances(fen=40000, bonus=5000, points=100), txn=5, ledger_time_ms=1_780_000_000_000,
                      detail="", card_record="ab" * 96)
    effects = desk.handle(Answer(approved))
    (write,) = [e for e in effects if isinstance(e, WriteCard)]
    assert write.uid_hex == "5e6f7a8b" and write.is_blank and desk.state == State.WRITING_CARD
    assert desk.last_receipt.title == "补卡凭证" and desk.last_receipt.balance_after_fen == 40000


def test_a_found_member_card_is_unblocked_and_a_wrong_top_up_is_reversed_with_a_supervisor():
    from protocol.messages import CardUnblock, Reversal, TopUp

    desk = desk_logged_in()
    desk.handle(CardTapped("0a0b0c0d", MEMBER, is_blocked=True))
    assert desk.state == State.DESK_MENU and desk.redraw().lines[0] == "1 解挂 Found"
    (unblock,) = submits(keys(desk, "1"))
    assert unblock.message_type is CardUnblock
    desk.handle(Answer(result(2)))
    keys(desk, "C")
    desk.handle(CardTapped("0a0b0c0d", MEMBER))
    keys(desk, "1")
    (top_up,) = submits(keys(desk, "5000E1"))
    assert top_up.message_type is TopUp
    desk.submitted(3)
    desk.handle(Answer(result(3, fen=500000)))
    desk.handle(PrintFinished())
    keys(desk, "C")
    keys(desk, ["F3"])
    assert desk.state == State.CONFIRM_UNDO and desk.redraw().big == "￥5000.00"
    keys(desk, "E")
    submit = supervise(desk)
    assert submit.message_type is Reversal and submit.fields["original_seq"] == 3 and submit.fields["amount_fen"] == 500000


def test_a_temporary_card_blocked_for_an_offline_debt_is_paid_off_at_the_desk():
    from protocol.messages import TopUp

    desk = desk_logged_in()
    desk.handle(CardTapped("04a1b2c3", VISITOR, is_blocked=True))
    assert desk.state == State.DESK_MENU and desk.redraw().lines == ("2 补缴 Pay debt",)  # never reported lost
    assert keys(desk, "1") == [] and keys(desk, "3") == []
    keys(desk, "2")
    assert desk.state == State.DESK_AMOUNT
    (pay,) = submits(keys(desk, "12.5E1"))
    assert pay.message_type is TopUp and pay.fields["amount_fen"] == 1250 and pay.fields["channel"] == "cash"


def test_a_member_moves_money_to_another_members_card_with_their_own_pin():
    from protocol.messages import MemberTransfer

    friend = CardRecord("M00010", 1, "member", "P1")
    desk = desk_logged_in()
    desk.handle(CardTapped("0a0b0c0d", MEMBER))
    keys(desk, "3")
    assert desk.state == State.DESK_TRANSFER_TO
    desk.handle(CardTapped("0a0b0c0d", MEMBER))  # the same card: not a transfer
    desk.handle(CardTapped("04a1b2c3", VISITOR))  # a temporary card: members only
    assert desk.state == State.DESK_TRANSFER_TO and "Another member" in desk.redraw().lines[1]
    desk.handle(CardTapped("0e0e0e0e", friend))
    assert desk.state == State.DESK_AMOUNT
    keys(desk, "100E")
    assert desk.state == State.DESK_MEMBER_PIN and "0010" in desk.redraw().lines[0]
    (submit,) = submits(keys(desk, "246810E"))
    assert submit.message_type is MemberTransfer and submit.pin == "246810" and submit.supervisor_pin is None
    assert (submit.fields["to_card_no"], submit.fields["to_issuance"], submit.fields["amount_fen"]) == ("M00010", 1, 10000)
    assert submit.fields["card"] == (MEMBER, "0a0b0c0d")
    desk.submitted(2)
    (printed,) = [e for e in desk.handle(Answer(result(2, fen=40000))) if isinstance(e, Print)]
    assert printed.receipt.title == "转账凭证" and printed.receipt.amount_fen == 10000


def test_every_desk_and_supervisor_screen_fits_the_128x64_panel_without_dropping_a_line():
    from terminal.events import PrintFinished
    from terminal.screens import Screen, render_screen

    shown = []  # (state, screen) of the states this checks: the desk's and the supervisor's
    checked = {state for state in State if state.name.startswith(("DESK_", "SUPERVISOR_"))} | {State.CONFIRM_UNDO}

    def record(terminal):
        handle = terminal.handle

        def handle_and_record(event):
            effects = handle(event)
            shown.extend((terminal.state, e) for e in effects if isinstance(e, Show) and terminal.state in checked)
            return effects

        terminal.handle = handle_and_record
        return terminal

    desk = record(desk_logged_in())
    desk.handle(CardTapped("1a2b3c4d", None, "blank card", is_blank=True))
    keys(desk, "2")
    keys(desk, [*"zhang wei", "ENTER", *"13800138000", "ENTER", *"1234", "ENTER", *"1235", "ENTER"])  # PINs differ
    keys(desk, "1234E1234E5E")
    desk = record(desk_logged_in())
    keys(desk, ["F2"])
    keys(desk, "13800138000E")
    desk.handle(Answer(lookup_reply(2, *((f"M0001{i}", f"0a0b0c0{i}", "active") for i in range(3)))))
    keys(desk, "1")
    for tapped, blocked in ((MEMBER, False), (VISITOR, False), (MEMBER, True), (VISITOR, True)):
        desk = record(desk_logged_in())
        desk.handle(CardTapped("0a0b0c0d", tapped, is_blocked=blocked))
    desk = record(desk_logged_in())
    desk.handle(CardTapped("0a0b0c0d", MEMBER))
    keys(desk, "3")
    desk.handle(CardTapped("0a0b0c0d", MEMBER))
    desk.handle(CardTapped("0e0e0e0e", CardRecord("M00010", 1, "member", "P1")))
    keys(desk, "100E")
    desk = record(desk_logged_in(damage_fee_fen=1000))
    desk.handle(CardTapped("04a1b2c3", VISITOR))
    keys(desk, "2")  # return: intact or damaged?
    desk = record(desk_logged_in())
    desk.handle(CardTapped("0a0b0c0d", MEMBER))
    keys(desk, "2")
    desk.handle(CardTapped("0a0b0c0d", MEMBER))
    desk.handle(CardTapped("03030303", SUPERVISOR_CARD))
    station = record(logged_in())
    station.handle(CardTapped("04a1b2c3", VISITOR))
    keys(station, "30E")
    station.submitted(7)
    station.handle(Answer(result(7)))
    station.handle(PrintFinished())
    keys(station, ["CANCEL", "F3"])
    titles = {show.title for _, show in shown}
    assert {"新卡 Blank card", "选择会员卡 Pick the card", "挂失 Report lost?", "撤销交易? Void sale?",
            "已冻结 **** 0007", "转入卡 Transfer to", "主管密码 Supervisor PIN"} <= titles
    assert {state for state, _ in shown} == checked  # every one of them was seen
    for _, show in shown:
        # Raises ValueError when a line would have to be dropped to fit.
        render_screen(Screen(title=show.title, lines=show.lines, footer=show.footer, tone=show.tone,
                             amount_text=show.big or None), (128, 64))


def test_a_card_whose_write_fails_gets_its_receipt_on_cancel_and_is_finished_when_tapped_again():
    from terminal.events import CardWriteFailed, CardWritten, WriteCard

    desk = desk_logged_in()
    desk.handle(CardTapped("1a2b3c4d", None, "blank card", is_blank=True))
    keys(desk, "1100E1")
    desk.submitted(2)
    issued = Result(park="P1", terminal="T-DESK-1", seq=2, request_sha256="a" * 64, outcome="approved", reason="OK",
                    balances=Balances(fen=10000, bonus=0, points=0), txn=3, ledger_time_ms=1_780_000_000_000,
                    detail="", card_record="cd" * 96)
    (write,) = [e for e in desk.handle(Answer(issued)) if isinstance(e, WriteCard)]
    (screen,) = desk.handle(CardWriteFailed("the card was lifted"))
    assert "CANCEL" in screen.footer and desk.state == State.WRITING_CARD
    (printed,) = [e for e in keys(desk, "C") if isinstance(e, Print)]  # the visitor left: the receipt is the proof
    assert printed.receipt.title == "开卡凭证" and desk.state == State.PRINTING
    desk.handle(PrintFinished())
    keys(desk, "C")
    # Later the visitor (or the desk) taps the blank card again: the app found its unwritten record.
    effects = desk.handle(CardTapped("1a2b3c4d", None, "blank card", is_blank=True, unwritten_record="cd" * 96))
    assert [e for e in effects if isinstance(e, WriteCard)] == [write] and desk.state == State.WRITING_CARD
    effects = desk.handle(CardWritten())
    assert desk.state == State.MESSAGE and "Card finished" in effects[0].title and not submits(effects)


def test_a_card_handed_back_damaged_keeps_the_damage_fee_and_the_receipt_shows_the_refund():
    from protocol.messages import CardReturn

    desk = desk_logged_in(card_fee_fen=2000, damage_fee_fen=1000)
    desk.handle(CardTapped("04a1b2c3", VISITOR))
    keys(desk, "2")
    assert desk.state == State.DESK_DAMAGED and "10.00" in desk.redraw().lines[1]
    keys(desk, "2")  # damaged
    assert desk.redraw().title.startswith("退款方式")
    assert not submits(keys(desk, "3"))  # refunded by Alipay: the refund shows first
    assert desk.state == State.DESK_CONFIRM and "支付宝" in desk.redraw().lines[-1]
    (submit,) = submits(keys(desk, "E"))
    assert submit.message_type is CardReturn and submit.fields["damage_fee_fen"] == 1000
    assert submit.fields["channel"] == "alipay"
    desk.submitted(2)
    returned = Result(park="P1", terminal="T-DESK-1", seq=2, request_sha256="a" * 64, outcome="approved", reason="OK",
                      balances=Balances(fen=0, bonus=0, points=0), txn=4, ledger_time_ms=1_780_000_000_000, detail="",
                      amount_fen=8000)  # 70.00 left + 20.00 deposit - 10.00 damage
    (printed,) = [e for e in desk.handle(Answer(returned)) if isinstance(e, Print)]
    assert printed.receipt.title == "退卡凭证" and printed.receipt.amount_fen == 8000
    assert printed.receipt.line_items[0].item.startswith("退卡退款")
    with pytest.raises(Exception, match="damage_fee_fen"):
        config(mode="desk", card_fee_fen=2000, damage_fee_fen=3000)  # never more than the deposit


def test_a_desk_issues_a_card_with_the_parks_card_fee_not_the_one_in_its_station_config():
    from protocol.messages import CardIssue, ParkRules

    desk = desk_logged_in(card_fee_fen=1500)  # the station.json a technician wrote long ago
    desk.park_rules = ParkRules(no_pin_limit_fen=20000, card_fee_fen=3000, damage_fee_fen=1000)  # the ledger's
    desk.handle(CardTapped("1a2b3c4d", None, "blank card", is_blank=True))
    keys(desk, "1")  # a temporary card
    keys(desk, "100E")
    assert desk.sale.lines[0].unit_fen == 3000
    (submit,) = submits(keys(desk, "1"))  # cash
    assert submit.message_type is CardIssue and submit.fields["card_fee_fen"] == 3000


def test_a_member_sale_above_the_ledgers_no_pin_limit_asks_for_the_pin_though_the_station_config_allows_more():
    from protocol.messages import ParkRules

    station = logged_in(no_pin_limit_fen=20000)
    station.park_rules = ParkRules(no_pin_limit_fen=5000, card_fee_fen=2000, damage_fee_fen=1000)
    station.handle(CardTapped("0a0b0c0d", MEMBER))
    assert submits(keys(station, "60E")) == [] and station.state == State.CHARGE_PIN


def test_before_any_signed_config_the_till_goes_by_its_station_config():
    station = logged_in(no_pin_limit_fen=20000)
    assert station.park_rules is None and station.rules.no_pin_limit_fen == 20000
    station.handle(CardTapped("0a0b0c0d", MEMBER))
    (submit,) = submits(keys(station, "60E"))
    assert submit.message_type is Charge and submit.pin is None
