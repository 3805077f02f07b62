"""The terminal as a cashier uses it, in the simulator: real drivers on emulated hardware (SPI card
reader, ESC/POS printer on a pty, evdev keypad, SSD1306 display) talking to the real ledger."""

from pathlib import Path

import pytest

from host_sim.rig import STAFF
from host_sim.station import ScriptedStation
from terminal.events import State
from terminal.hal.keypad import Key

from .helpers.waiting import wait_until


def Station(rig, terminal_id="T-FISH-1", profile="80mm-gb18030", link=None):
    return ScriptedStation(rig, terminal_id, profile=profile, link=link)


@pytest.fixture
def station(rig):
    with_card = rig.link("T-DESK-1")
    from host_sim.rig import card, common
    from protocol.messages import CardIssue

    with_card.submit(lambda seq: CardIssue(**common(with_card, seq, card("C00042")), card_kind="temporary",
                                           card_fee_fen=2000, opening_fen=10000, channel="cash", payment_ref=""))
    station = Station(rig)
    yield station
    station.close()


def charges(rig):
    return rig.reader.db.execute("SELECT COUNT(*) FROM txn WHERE kind='charge'").fetchone()[0]


def test_a_charge_of_30_prints_two_copies_that_say_30_and_70_left(station, rig, tmp_path):
    station.log_in()
    station.tap(rig.virtual_card("C00042"))
    assert station.app.machine.state == State.AMOUNT
    station.keys("30E")
    station.turns(lambda: station.app.machine.state == State.DONE)
    customer, merchant = station.sim.printer.receipts[-2:]
    for copy, label in ((customer, "顾客联"), (merchant, "商户联")):
        text = copy.text
        assert "金额" in text and "30.00" in text and "余额" in text and "70.00" in text, text
        assert label in text and "T-FISH-1-3" in text and "钓鱼" in text and "王芳" in text
    pictures = station.sim.printer.save_pngs(tmp_path)
    assert len(pictures) >= 2 and all(p.stat().st_size > 1000 for p in pictures)
    assert "余额 Balance 70.00" in station.app.screen.lines[0]
    screen = station.sim.oled.to_image()
    assert screen.getbbox() is not None  # something is lit on the panel
    assert charges(rig) == 1


def test_paper_out_before_the_receipt_keeps_one_charge_and_reprint_prints_it(station, rig):
    station.log_in()
    station.sim.printer.set_paper_out()
    station.tap(rig.virtual_card("C00042"))
    station.keys("30E")
    station.turns(lambda: station.app.machine.state == State.PRINTER_PROBLEM)
    assert "缺纸" in " ".join(station.app.screen.lines) or "Paper" in " ".join(station.app.screen.lines)
    assert station.app.screen.footer.startswith("处理后按确认补打")
    station.keys("E")  # still no paper: same screen, still one charge
    assert station.app.machine.state == State.PRINTER_PROBLEM and charges(rig) == 1
    station.sim.printer.load_paper()
    station.keys("E")
    station.turns(lambda: station.app.machine.state == State.DONE)
    reprinted = station.sim.printer.receipts[-1].text
    assert "补打" not in reprinted and "REPRINT" not in reprinted  # nothing had printed: this is the first
    assert "30.00" in reprinted and "70.00" in reprinted
    assert charges(rig) == 1


def test_paper_running_out_during_the_receipt_offers_a_reprint(station, rig):
    station.log_in()
    station.sim.printer.run_out_of_paper_after_lines(5)
    station.tap(rig.virtual_card("C00042"))
    station.keys("30E")
    station.turns(lambda: station.app.machine.state == State.PRINTER_PROBLEM)
    station.sim.printer.load_paper()
    station.keys("E")
    station.turns(lambda: station.app.machine.state == State.DONE)
    assert "70.00" in station.sim.printer.receipts[-1].text and charges(rig) == 1


class PowerCut(BaseException):
    """The terminal loses power: nothing after this point runs."""


def test_a_terminal_that_died_after_the_approval_prints_the_receipt_marked_when_it_restarts(station, rig):
    station.log_in()
    printer = station.hardware.printer
    real_print = printer.print_receipt

    def die(receipt):
        raise PowerCut()

    printer.print_receipt = die
    station.tap(rig.virtual_card("C00042"))
    with pytest.raises(PowerCut):
        station.keys("30E")
    printer.print_receipt = real_print
    before = len(station.sim.printer.receipts)
    # The board comes back: same outbox file, new process state.
    station.link.close()
    reborn = Station(rig, link=rig.link("T-FISH-1", connect=False))
    try:
        printed = reborn.sim.printer.receipts
        assert printed, "the restarted terminal printed nothing"
        text = printed[-1].text
        assert ("补打" in text or "REPRINT" in text) and "30.00" in text and "70.00" in text
        assert reborn.link.outbox.unprinted() == []
        assert charges(rig) == 1
        assert before == len(station.sim.printer.receipts)  # the dead terminal's printer got nothing
    finally:
        reborn.close()


def test_a_void_whose_receipt_a_power_cut_stopped_is_printed_when_the_terminal_restarts(station, rig):
    from terminal.hal.keypad import Key

    station.log_in()
    visitor = rig.virtual_card("C00042")
    assert station.sell(visitor, "30") == State.DONE
    station.keys([Key.CANCEL, Key.F3, Key.ENTER])
    station.tap(rig.virtual_card(STAFF[2][3], kind="staff"))  # Zhao, the supervisor

    def die(receipt):
        raise PowerCut()

    station.hardware.printer.print_receipt = die
    with pytest.raises(PowerCut):
        station.keys(STAFF[2][4] + "E")
    station.link.close()
    reborn = Station(rig, link=rig.link("T-FISH-1", connect=False))
    try:
        text = reborn.sim.printer.receipts[-1].text
        assert "撤销凭证" in text and ("补打" in text or "REPRINT" in text)
        assert "30.00" in text and "100.00" in text  # the voided amount, and the balance back where it was
        assert "-30.00" in text and "原单号" in text and "主管" in text  # negative, what it undoes, who approved
        assert reborn.link.outbox.unprinted() == []
    finally:
        reborn.close()


def test_a_card_copied_onto_another_uid_is_refused_on_screen(station, rig):
    station.log_in()
    genuine = rig.virtual_card("C00042")
    clone = rig.virtual_card("C00042", uid=bytes.fromhex("0badcafe"))
    for block in (4, 5, 6, 8, 9, 10):
        clone.set_block(block, genuine.block(block))  # the record copied bit for bit
    station.tap(clone)
    assert station.app.machine.state == State.MESSAGE
    assert "Card not accepted" in station.app.screen.title and "does not match" in station.app.screen.lines[0]
    assert charges(rig) == 0


def test_a_card_without_this_parks_sector_keys_is_not_accepted(station, rig):
    from host_sim.devices.mifare import MifareClassic1K

    station.log_in()
    station.tap(MifareClassic1K(bytes.fromhex("0a1b2c3d")))  # a blank card, transport keys: not ours
    assert station.app.machine.state == State.MESSAGE
    assert "Card not accepted" in station.app.screen.title
    assert charges(rig) == 0


def test_the_front_desk_issues_a_blank_card_writes_its_record_and_a_station_then_accepts_it(rig):
    from host_sim.devices.mifare import MifareClassic1K

    desk = ScriptedStation(rig, "T-DESK-1", mode="desk", card_fee_fen=2000)
    fishing = ScriptedStation(rig, "T-FISH-2")
    try:
        desk.log_in(STAFF[1])  # Li, front desk
        blank = MifareClassic1K(bytes.fromhex("1a2b3c4d"))
        desk.tap(blank)
        assert desk.state == State.DESK_NEW_CARD
        desk.keys("1")  # a temporary card
        assert desk.state == State.DESK_AMOUNT
        desk.keys("100E")
        assert desk.state == State.DESK_CHANNEL
        desk.keys("2")  # paid by WeChat
        desk.turns(lambda: desk.state == State.DONE)
        receipt = desk.sim.printer.receipts[-1].text
        assert "卡押金 Card deposit" in receipt and "120.00" in receipt and "100.00" in receipt
        assert blank.block(4)[:2] == b"FC"  # the record is on the card
        fishing.log_in()
        assert fishing.sell(blank, "30") == State.DONE  # and a station reads it with the card's own key
        assert "70.00" in fishing.sim.printer.receipts[-1].text
        desk.keys("C")
        desk.tap(blank)  # back at the exit
        assert desk.state == State.DESK_MENU
        # The park's damage fee (10.00) came in the desk's signed config: the desk asks about damage.
        wait_until(lambda: desk.link.state.rules is not None, what="the desk's signed config")
        desk.keys("2")  # return
        assert desk.state == State.DESK_DAMAGED
        desk.keys("1")  # the card is intact
        desk.keys("1")  # refund in cash
        desk.keys("E")  # the refund shown, confirmed
        desk.turns(lambda: desk.state == State.DONE)
        refund = rig.reader.db.execute("SELECT amount FROM posting WHERE account_id='channel:cash' AND amount > 0").fetchall()
        assert refund == [(9000,)]  # 70.00 + 20.00 card fee
        assert "退卡退款" in desk.sim.printer.receipts[-1].text and "90.00" in desk.sim.printer.receipts[-1].text
    finally:
        desk.close()
        fishing.close()


def test_a_desk_that_died_before_writing_an_issued_card_writes_it_when_the_card_is_tapped_again(rig):
    from host_sim.devices.mifare import MifareClassic1K

    desk = ScriptedStation(rig, "T-DESK-1", mode="desk", card_fee_fen=2000)
    blank = MifareClassic1K(bytes.fromhex("2c3d4e5f"))
    try:
        desk.log_in(STAFF[1])
        desk.tap(blank)

        def die(effect):
            raise PowerCut()

        desk.app._write_card = die
        with pytest.raises(PowerCut):
            desk.keys("1" "100E" "1")  # issued and paid for at the ledger; the board dies before the write
    finally:
        desk.close()
    desk.link.close()
    reborn = ScriptedStation(rig, "T-DESK-1", mode="desk", card_fee_fen=2000, link=rig.link("T-DESK-1", connect=False))
    fishing = ScriptedStation(rig, "T-FISH-2")
    try:
        reborn.log_in(STAFF[1])
        reborn.tap(blank)  # blank still: the till finds the record the ledger signed for it and writes it
        reborn.turns(lambda: reborn.state == State.MESSAGE)
        assert "Card finished" in reborn.app.screen.title
        issues = rig.reader.db.execute("SELECT COUNT(*) FROM txn WHERE kind='card_issue'").fetchone()[0]
        assert issues == 1  # nothing was charged twice
        fishing.log_in()
        assert fishing.sell(blank, "30") == State.DONE and "70.00" in fishing.sim.printer.receipts[-1].text
    finally:
        reborn.close()
        fishing.close()


def test_member_cards_opened_lost_replaced_and_transferred_at_the_desk_with_a_void_and_a_reversal_on_the_way(rig):
    """The member flows through the real desk and station apps: every step is keys and card taps."""
    from host_sim.devices.mifare import MifareClassic1K
    from ledger.verify import verify_books
    from terminal.hal.keypad import Key

    desk = ScriptedStation(rig, "T-DESK-1", mode="desk", card_fee_fen=2000)
    fishing = ScriptedStation(rig, "T-FISH-2")
    supervisor = rig.virtual_card(STAFF[2][3], kind="staff")  # Zhao, PIN 3456
    db = rig.reader.db
    try:
        desk.log_in(STAFF[1])  # Li, front desk
        first, second = MifareClassic1K(bytes.fromhex("1a2b3c4d")), MifareClassic1K(bytes.fromhex("5e6f7a8b"))
        desk.tap(first)
        desk.keys("2")  # a member card
        desk.keys([*"zhang wei", Key.ENTER])  # on the desk's keyboard
        desk.keys("13800138000E" "246810E" "246810E" "500E" "2")  # phone, PIN twice (the member), 500.00, WeChat
        desk.turns(lambda: desk.state == State.DONE)
        assert "会员开卡" in desk.sim.printer.receipts[-1].text and "500.00" in desk.sim.printer.receipts[-1].text
        assert db.execute("SELECT name, phone FROM member WHERE card_no='M1A2B3C4D'").fetchone() == ("Zhang Wei", "13800138000")
        assert "246810" not in str(db.execute("SELECT * FROM member").fetchall())
        outbox_file = desk.link.outbox.db.execute("PRAGMA database_list").fetchone()[2]
        for path in (Path(outbox_file), Path(outbox_file + "-wal")):  # the desk's own disk: no PIN on it
            assert not path.exists() or b"246810" not in path.read_bytes()

        fishing.log_in()
        assert fishing.sell(first, "30") == State.DONE
        fishing.keys("C")
        fishing.keys([Key.F3, Key.ENTER])  # the cashier rang up the wrong amount: void it
        fishing.tap(supervisor)
        fishing.keys("3456E")
        fishing.turns(lambda: fishing.state == State.DONE)
        assert "撤销凭证" in fishing.sim.printer.receipts[-1].text
        assert fishing.sell(first, "30") == State.DONE
        fishing.keys("C")

        desk.keys("C")
        desk.keys([Key.F2, *"13800138000", Key.ENTER])  # the card is lost: found by the member's phone
        desk.turns(lambda: desk.state == State.DESK_CONFIRM)
        desk.keys("E")
        desk.turns(lambda: desk.state == State.DONE)  # and a slip printed: the member's proof
        assert "Reported lost" in desk.app.screen.title and "挂失凭证" in desk.sim.printer.receipts[-1].text
        desk.keys("C")
        fishing.turns(lambda: ("M1A2B3C4D", 1) in fishing.link.state.blocklist.blocked)  # a delta, over MQTT
        fishing.tap(first)
        assert "Card blocked" in fishing.app.screen.title
        fishing.keys("C")

        desk.keys("C")
        desk.tap(second)
        desk.keys("3" "13800138000E")  # a replacement, found by phone
        desk.turns(lambda: desk.state == State.DESK_CONFIRM)
        desk.keys("E")
        desk.tap(supervisor)
        desk.keys("3456E")
        desk.turns(lambda: "Card not written" in desk.app.screen.title)  # the supervisor's card is on the reader
        desk.tap(second)  # the new card back on the reader: written now
        desk.turns(lambda: desk.state == State.DONE)
        assert "补卡凭证" in desk.sim.printer.receipts[-1].text and "470.00" in desk.sim.printer.receipts[-1].text
        assert fishing.sell(second, "20") == State.DONE and "450.00" in fishing.sim.printer.receipts[-1].text

        desk.keys("C")
        desk.tap(second)
        desk.keys("1" "1000E" "1")  # meant 100.00, typed 1,000.00: a supervisor reverses it
        desk.turns(lambda: desk.state == State.DONE)
        desk.keys("C")
        desk.keys([Key.F3, Key.ENTER])
        desk.tap(supervisor)
        desk.keys("3456E")
        desk.turns(lambda: desk.state == State.DONE)
        assert "冲正凭证" in desk.sim.printer.receipts[-1].text and "450.00" in desk.sim.printer.receipts[-1].text

        settings = rig.home.open_store()  # this park lets members move money to each other
        settings.set_member_settings(rig.park_id, no_pin_limit_fen=20000, allow_transfer=True)
        settings.close()
        friend = MifareClassic1K(bytes.fromhex("9c8d7e6f"))
        desk.keys("C")
        desk.tap(friend)
        desk.keys([Key.DIGIT_2, *"li si", Key.ENTER, *"13600136000", Key.ENTER, *"112233", Key.ENTER, *"112233",
                   Key.ENTER, Key.ENTER])  # opened with nothing on it
        desk.turns(lambda: desk.state == State.DONE)
        desk.keys("C")
        desk.tap(second)
        desk.keys("3")  # transfer
        desk.tap(friend)
        desk.keys("50E" "246810E")  # Zhang's own PIN
        desk.turns(lambda: desk.state == State.DONE)
        assert "转账凭证" in desk.sim.printer.receipts[-1].text and "400.00" in desk.sim.printer.receipts[-1].text
        assert rig.reader.card(rig.park_id, "M9C8D7E6F").fen == 5000
        kinds = [kind for (kind,) in db.execute("SELECT kind FROM txn ORDER BY txn_id")]
        assert kinds[-11:] == ["member_open", "charge", "void", "charge", "loss_report", "card_replace", "charge", "top_up",
                               "reversal", "member_open", "member_transfer"]
        assert verify_books(rig.reader).is_ok
    finally:
        desk.close()
        fishing.close()


def test_a_park_whose_no_pin_limit_is_50_asks_the_member_for_the_pin_on_60_though_the_station_json_says_200(stopped_rig):
    """The ledger owns the no-PIN limit and sends it in the till's signed config: a till that went by
    its own station.json would not ask, and the ledger would refuse the sale for want of a PIN."""
    from host_sim.devices.mifare import MifareClassic1K

    rig = stopped_rig
    store = rig.home.open_store()
    store.set_member_settings("P1", no_pin_limit_fen=5000)
    store.close()
    rig.start_ledger()
    desk = ScriptedStation(rig, "T-DESK-1", mode="desk")
    fishing = ScriptedStation(rig, "T-FISH-2", no_pin_limit_fen=20000)  # the station.json's old limit
    try:
        desk.log_in(STAFF[1])
        member = MifareClassic1K(bytes.fromhex("1a2b3c4d"))
        desk.tap(member)
        desk.keys("2")  # a member card
        desk.keys([*"zhang wei", Key.ENTER])
        desk.keys("13800138000E" "246810E" "246810E" "500E" "2")  # phone, PIN twice, 500.00, WeChat
        desk.turns(lambda: desk.state == State.DONE)
        wait_until(lambda: fishing.link.state.rules is not None, what="the station's signed config")
        fishing.log_in()
        assert fishing.sell(member, "60") == State.CHARGE_PIN
        fishing.keys("246810E")
        fishing.turns(lambda: fishing.state in (State.DONE, State.MESSAGE))
        assert fishing.state == State.DONE and "440.00" in fishing.sim.printer.receipts[-1].text
    finally:
        desk.close()
        fishing.close()
