"""The rental desk through the real terminal app: the evdev scanner driver on its emulation, the real
Mosquitto and ledger, the emulated printer decoding the receipts (and their QR codes).

A visitor pays a rod's deposit from a park card, the desk prints the voucher and hands the rod out
against the voucher's QR as the printer printed it; later the rod comes back. Offline, the desk checks
a voucher itself and queues the hand-out; it lands once the Wi-Fi is back.
"""

import time

import pytest

from host_sim.network import CuttableLink
from host_sim.rig import ParkRig, card, common
from host_sim.station import RENTAL_STAFF, ScriptedStation, add_rental_desk
from protocol.messages import CardIssue, MemberOpen
from terminal.events import State
from terminal.hal.keypad import Key
from terminal.rental import RentalState

from .helpers.waiting import wait_until

RENTAL_TERMINAL = "T-RENT-1"
SECOND_DESK = "T-RENT-2"  # the same station's other window
LABELS = ("ROD-0042", "ROD-0043")  # host_sim.station's sample rods: 50.00 deposit, 10.00 a session
ROD_KEY = "2"  # the config lists item types by id: bike, rod
BIKE_KEY = "1"


@pytest.fixture
def rental_park(tmp_path, mqtt_version):
    with ParkRig(tmp_path, mqtt_version=mqtt_version).create({"T-DESK-1": "desk"}) as park:
        add_rental_desk(park, int(time.time() * 1000), RENTAL_TERMINAL, SECOND_DESK)
        park.start_broker()
        park.start_ledger()
        desk = park.link("T-DESK-1")
        result = desk.submit(lambda seq: CardIssue(**common(desk, seq, card("C00101")), card_kind="temporary",
                                                   card_fee_fen=2000, opening_fen=20000, channel="cash", payment_ref=""))
        assert result.is_approved
        yield park


def rental_desk(park, terminal_id=RENTAL_TERMINAL, **options) -> ScriptedStation:
    desk = ScriptedStation(park, terminal_id, mode="rental", **options)
    wait_until(lambda: desk.link.state.rental is not None, what="the signed config with the rental stock")
    desk.log_in(RENTAL_STAFF)
    return desk


def screen_text(station) -> str:
    screen = station.app.screen
    return " ".join((screen.title, *screen.lines, screen.footer))


def item_state(park, label) -> str:
    return park.reader.db.execute("SELECT state FROM rental_item WHERE label=?", (label,)).fetchone()[0]


def test_a_card_deposit_prints_the_voucher_qr_the_rod_goes_out_against_it_and_comes_back_itemised(rental_park):
    desk = rental_desk(rental_park)
    try:
        desk.tap(rental_park.virtual_card("C00101"))
        assert desk.state == RentalState.PICK_TYPE
        desk.keys(ROD_KEY)
        desk.turns(lambda: desk.state == RentalState.VOUCHER)
        voucher_receipt = desk.sim.printer.receipts[-1]
        (voucher,) = voucher_receipt.qr_payloads  # what a phone or the desk's scanner reads off the paper
        assert voucher.startswith("FPV1:") and "押金凭证" in voucher_receipt.text and "50.00" in voucher_receipt.text

        desk.scan(LABELS[0])  # the rod handed over: its label
        desk.turns(lambda: desk.state == State.DONE)
        assert "租赁出借" in desk.sim.printer.receipts[-1].text and LABELS[0] in desk.sim.printer.receipts[-1].text
        assert item_state(rental_park, LABELS[0]) == "out"

        desk.scan(LABELS[0])  # back from the pond
        assert desk.state == RentalState.INSPECT
        desk.keys("1")  # intact
        desk.turns(lambda: desk.state == State.DONE)
        returned = desk.sim.printer.receipts[-1].text
        for expected in ("租赁归还", "押金 Deposit", "50.00", "租金 Rental", "10.00", "退款 Refunded", "40.00", "原卡"):
            assert expected in returned, (expected, returned)
        assert item_state(rental_park, LABELS[0]) == "available"
    finally:
        desk.close()


def test_the_voucher_scanned_at_the_other_desk_says_when_and_where_the_rod_went_out_and_takes_it_back_there(rental_park):
    desk = rental_desk(rental_park)
    other = rental_desk(rental_park, SECOND_DESK)
    try:
        desk.tap(rental_park.virtual_card("C00101"))
        desk.keys(ROD_KEY)
        desk.turns(lambda: desk.state == RentalState.VOUCHER)
        (voucher,) = desk.sim.printer.receipts[-1].qr_payloads
        desk.scan(LABELS[0])
        desk.turns(lambda: desk.state == State.DONE)

        other.scan(voucher)  # the same paper shown at the other window: never a second rod
        assert other.state == RentalState.INSPECT
        assert RENTAL_TERMINAL in screen_text(other) and LABELS[0] in screen_text(other)
        other.keys("1")  # the rod is back, intact
        other.turns(lambda: other.state == State.DONE)
        returned = other.sim.printer.receipts[-1].text
        assert "租赁归还" in returned and LABELS[0] in returned and "40.00" in returned
        assert item_state(rental_park, LABELS[0]) == "available"
        assert item_state(rental_park, LABELS[1]) == "available"
    finally:
        desk.close()
        other.close()


def test_the_card_that_paid_at_one_desk_collects_the_rod_at_the_other(rental_park):
    desk = rental_desk(rental_park)
    other = rental_desk(rental_park, SECOND_DESK)
    try:
        visitor = rental_park.virtual_card("C00101")
        desk.tap(visitor)
        desk.keys(ROD_KEY)
        desk.turns(lambda: desk.state == RentalState.VOUCHER)
        desk.keys("C")  # the visitor walks to the other window

        other.tap(visitor)
        assert other.state == RentalState.VOUCHER and "Paid" in screen_text(other)
        other.scan(LABELS[1])
        other.turns(lambda: other.state == State.DONE)
        assert "租赁出借" in other.sim.printer.receipts[-1].text
        assert item_state(rental_park, LABELS[1]) == "out"
        assert rental_park.reader.db.execute("SELECT COUNT(*) FROM deposit_order").fetchone()[0] == 1  # no second deposit

        desk.tap(visitor)  # the deposit is redeemed: the next tap is a new deposit
        assert desk.state == RentalState.PICK_TYPE
    finally:
        desk.close()
        other.close()


def test_offline_the_desk_checks_the_voucher_itself_and_the_hand_out_lands_once_back_online(rental_park):
    wifi = CuttableLink(rental_park.port)
    desk = rental_desk(rental_park, link=rental_park.link(RENTAL_TERMINAL, connect=False, port=wifi.port))
    try:
        desk.keys([Key.F2])  # a deposit paid in cash at the desk
        desk.keys(ROD_KEY + "1")  # the rod, paid in cash
        desk.turns(lambda: desk.state == RentalState.VOUCHER)
        (voucher,) = desk.sim.printer.receipts[-1].qr_payloads
        desk.keys("C")  # the visitor collects the rod later

        wifi.cut()
        wait_until(lambda: not desk.link.is_connected, what="the desk to see the Wi-Fi gone")
        desk.turns(lambda: "OFFLINE" in screen_text(desk))
        desk.scan(voucher)
        assert desk.state == RentalState.VOUCHER
        desk.scan(LABELS[1])
        desk.turns(lambda: desk.state == State.DONE)
        assert "OFFLINE" in desk.sim.printer.receipts[-1].text
        assert desk.link.outbox.pending_count() == 1

        wifi.restore()
        wait_until(lambda: desk.link.outbox.pending_count() == 0, 30, "the offline hand-out to land")
        assert item_state(rental_park, LABELS[1]) == "out"
    finally:
        desk.close()
        wifi.close()


def test_one_voucher_redeemed_offline_at_two_desks_is_recorded_at_both_and_flagged_at_sync(rental_park):
    wifi = {terminal_id: CuttableLink(rental_park.port) for terminal_id in (RENTAL_TERMINAL, SECOND_DESK)}
    desks = [rental_desk(rental_park, terminal_id, link=rental_park.link(terminal_id, connect=False, port=link.port))
             for terminal_id, link in wifi.items()]
    try:
        first, second = desks
        first.keys([Key.F2])
        first.keys(ROD_KEY + "1")
        first.turns(lambda: first.state == RentalState.VOUCHER)
        (voucher,) = first.sim.printer.receipts[-1].qr_payloads
        first.keys("C")
        for link in wifi.values():
            link.cut()
        for desk, label in zip(desks, LABELS):  # the visitor shows the voucher at both windows
            wait_until(lambda desk=desk: not desk.link.is_connected, what="the desk to see the Wi-Fi gone")
            desk.turns(lambda desk=desk: "OFFLINE" in screen_text(desk))
            desk.scan(voucher)
            desk.scan(label)
            desk.turns(lambda desk=desk: desk.state == State.DONE)
            assert "OFFLINE" in desk.sim.printer.receipts[-1].text

        for link in wifi.values():
            link.restore()
        for desk in desks:
            wait_until(lambda desk=desk: desk.link.outbox.pending_count() == 0, 30, "the offline hand-outs to land")
        assert [item_state(rental_park, label) for label in LABELS] == ["out", "out"]  # both visitors have a rod
        (flag,) = rental_park.reader.db.execute("SELECT detail FROM alert WHERE kind='VOUCHER_REDEEMED_TWICE'").fetchall()
        assert RENTAL_TERMINAL in flag[0] and SECOND_DESK in flag[0], flag
    finally:
        for desk in desks:
            desk.close()
        for link in wifi.values():
            link.close()


class PowerCut(BaseException):
    """The desk loses power: nothing after this point runs."""


def test_a_voucher_receipt_a_power_cut_stopped_is_printed_with_its_qr_when_the_desk_restarts(rental_park):
    desk = rental_desk(rental_park)
    reborn = None
    try:
        def die(receipt):
            raise PowerCut()

        desk.hardware.printer.print_receipt = die
        desk.tap(rental_park.virtual_card("C00101"))
        with pytest.raises(PowerCut):
            desk.keys(ROD_KEY)
            desk.turns(lambda: False)  # the answer arrives and the voucher goes to the printer
        desk.link.close()
        # The board comes back: same outbox file, new process.
        reborn = ScriptedStation(rental_park, RENTAL_TERMINAL, mode="rental", link=rental_park.link(RENTAL_TERMINAL, connect=False))
        customer, merchant = reborn.sim.printer.receipts  # the two copies, once
        (voucher,) = customer.qr_payloads
        assert voucher.startswith("FPV1:") and ("补打" in customer.text or "REPRINT" in customer.text)
        assert "押金凭证" in customer.text and "鱼竿 Rod" in customer.text and "50.00" in customer.text
        assert "顾客联" in customer.text and "商户联" in merchant.text
        assert reborn.link.outbox.unprinted() == []
    finally:
        desk.close()
        if reborn is not None:
            reborn.close()


def test_a_hand_out_the_ledger_does_not_answer_goes_out_offline_and_is_booked_once_when_it_answers(rental_park):
    desk = rental_desk(rental_park)
    try:
        desk.keys([Key.F2])
        desk.keys(ROD_KEY + "1")  # the rod, paid in cash
        desk.turns(lambda: desk.state == RentalState.VOUCHER)
        (voucher,) = desk.sim.printer.receipts[-1].qr_payloads

        rental_park.stop_ledger()  # the Wi-Fi is fine; the ledger is slow to come back
        desk.scan(LABELS[0])
        desk.turns(lambda: desk.state == State.DONE)  # no answer in time: handed out offline instead
        assert "OFFLINE" in desk.sim.printer.receipts[-1].text
        online_seq, offline_seq = [pending.seq for pending in desk.link.outbox.pending()]

        rental_park.start_ledger()
        wait_until(lambda: desk.link.outbox.pending_count() == 0, 30, "both requests to be decided")
        outcomes = dict(rental_park.reader.db.execute(
            "SELECT seq, reason FROM request WHERE terminal_id=? AND seq IN (?, ?)",
            (RENTAL_TERMINAL, online_seq, offline_seq)).fetchall())
        # The online attempt reached the ledger first and was approved; the offline one is the same hand-out.
        assert outcomes == {online_seq: "OK", offline_seq: "SAME_SALE"}
        assert rental_park.reader.db.execute("SELECT COUNT(*) FROM voucher_redemption").fetchone()[0] == 1
        assert rental_park.reader.db.execute(
            "SELECT COUNT(*) FROM alert WHERE kind='VOUCHER_REDEEMED_TWICE'").fetchone()[0] == 0
        assert item_state(rental_park, LABELS[0]) == "out"
    finally:
        desk.close()


def test_a_member_card_pays_a_bike_deposit_with_its_pin_as_at_a_till_and_a_wrong_pin_takes_nothing(rental_park):
    front_desk = rental_park.link("T-DESK-1")
    opened = front_desk.submit(lambda seq: MemberOpen(
        **common(front_desk, seq, card("M00008")), member_name="张伟", phone="13800138000", card_fee_fen=0,
        opening_fen=50000, channel="cash", payment_ref="", pin_sha256="0" * 64), pin="246810")
    assert opened.is_approved
    desk = rental_desk(rental_park)
    try:
        member = rental_park.virtual_card("M00008", kind="member")
        desk.tap(member)
        desk.keys(BIKE_KEY)  # 300.00: above the park's no-PIN limit of 200.00
        assert desk.state == State.CHARGE_PIN and "Member PIN" in screen_text(desk)
        desk.keys("111111E")
        desk.turns(lambda: desk.state == State.MESSAGE)
        assert "PIN" in screen_text(desk)
        desk.keys("E")

        desk.tap(member)
        desk.keys(BIKE_KEY + "246810E")
        desk.turns(lambda: desk.state == RentalState.VOUCHER)
        assert "押金凭证" in desk.sim.printer.receipts[-1].text and "300.00" in desk.sim.printer.receipts[-1].text
        balance = rental_park.reader.db.execute(
            "SELECT COALESCE(SUM(amount), 0) FROM posting WHERE account_id LIKE 'card:M00008%'").fetchone()[0]
        assert balance == 50000 - 30000  # one deposit; the wrong PIN took nothing
        (wrong_pins,) = rental_park.reader.db.execute("SELECT wrong_pins FROM member WHERE card_no='M00008'").fetchone()
        assert wrong_pins == 0  # the right PIN clears the count, as a charge's does
    finally:
        desk.close()
