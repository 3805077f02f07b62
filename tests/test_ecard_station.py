"""A member pays at a station by showing the e-card QR to the till's 2D scanner: the real station
app on emulated hardware (a USB keyboard-wedge scanner typing the code), the real broker and
ledger. The QR is a member card's tap; the same QR shown again, an old one, or one from a phone the
e-card was not opened on buys nothing."""

import json
import time

import pytest
from nacl.signing import SigningKey

from host_sim.rig import STAFF, ParkRig, common
from host_sim.station import ScriptedStation
from ledger.intake import Intake
from ledger.online_members import MemberDesk
from protocol import ecard
from protocol.messages import CardRef, TopUp
from terminal.events import State

from .conftest import TERMINALS
from .helpers.waiting import wait_until

PHONE = SigningKey(bytes(range(200, 232)))
THIEF_PHONE = SigningKey(bytes(range(1, 33)))
WINDOW_MS = ecard.WINDOW_SECONDS * 1000


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture
def park(tmp_path, mqtt_version):
    terminals = TERMINALS | {"P1-portal": "desk"}
    with ParkRig(tmp_path, mqtt_version=mqtt_version).create(
            terminals, kinds_by_terminal={"P1-portal": ("member_open", "loss_report")}) as rig:
        rig.start_broker()
        rig.start_ledger()
        store = rig.home.open_store()
        bundle = json.loads(rig.home.bundle_path("P1-portal").read_text())
        portal = MemberDesk(Intake(store, rig.home.ledger_keys()), bundle, wall_ms)
        opened = portal.open_ecard(member_name="张伟", phone="13800138000", pin="246810",
                                   device_key=PHONE.verify_key.encode())
        desk = rig.link("T-DESK-1")
        shown = ecard.present(opened.credential, PHONE, wall_ms() - WINDOW_MS)  # a window back: the sale's is later
        credential = ecard.parse_token(shown)[0]
        top_up = desk.submit(lambda seq: TopUp(**common(desk, seq, CardRef(
            no=credential.card_no, issuance=1, uid=credential.device_tag, ecard=shown)), amount_fen=10_000,
            channel="cash", payment_ref=""))
        assert top_up.is_approved
        till = ScriptedStation(rig, "T-FISH-1")
        ready(till)
        till.log_in()
        yield rig, till, portal, opened
        till.close()
        store.close()


def ready(till) -> None:
    """Wait, as a cashier does, until the till is online with its signed config: a login sent
    before then may wait for its answer longer than the till does, on a busy machine."""
    wait_until(lambda: till.link.is_connected and till.link.state.policy is not None, what="the till online")


def screen_text(till) -> str:
    return " ".join((till.app.screen.title,) + tuple(till.app.screen.lines))


def test_a_scanned_ecard_qr_pays_at_the_station_and_the_same_qr_again_is_refused(park):
    rig, till, _, opened = park
    qr = ecard.present(opened.credential, PHONE, wall_ms())
    till.scan(qr)
    assert till.state == State.AMOUNT  # a member card shown: the cashier types the amount
    till.keys("30E")
    till.turns(lambda: till.state in (State.DONE, State.MESSAGE))
    assert till.state == State.DONE, screen_text(till)
    assert "70.00" in till.sim.printer.receipts[-2].text  # the member's copy: the balance after the sale
    assert rig.reader.db.execute("SELECT fen FROM card_balance WHERE account_id='card:E000001/1'").fetchone() == (7000,)

    till.keys("E")  # the next visitor
    till.scan(qr)  # the same code again: a screenshot, or the phone shown twice within its window
    till.keys("30E")
    till.turns(lambda: till.state == State.MESSAGE)
    assert "QR used already" in screen_text(till)
    assert rig.reader.db.execute("SELECT COUNT(*) FROM txn WHERE kind='charge'").fetchone() == (1,)


def test_an_old_qr_is_refused_by_the_till_itself_and_a_qr_from_another_phone_by_the_ledger(park):
    rig, till, portal, opened = park
    till.scan(ecard.present(opened.credential, PHONE, wall_ms() - 3 * WINDOW_MS))  # a screenshot a minute old
    till.turns(lambda: till.state == State.MESSAGE)
    assert "QR too old" in screen_text(till)

    till.keys("E")
    stolen = portal.credential(opened.card_no, 1, THIEF_PHONE.verify_key.encode(), opened.expires_ms)
    till.scan(ecard.present(stolen, THIEF_PHONE, wall_ms()))  # a genuine signature, but not the registered phone
    if till.state == State.AMOUNT:
        till.keys("30E")
    till.turns(lambda: till.state == State.MESSAGE)
    assert "Not the phone this e-card is bound to" in screen_text(till)
    assert rig.reader.db.execute("SELECT COUNT(*) FROM txn WHERE kind='charge'").fetchone() == (0,)


def test_the_front_desk_tops_up_an_ecard_shown_to_its_scanner(park):
    rig, _, _, opened = park
    desk = ScriptedStation(rig, "T-DESK-1", mode="desk", card_fee_fen=2000)
    try:
        ready(desk)
        desk.log_in(STAFF[1])  # Li, front desk
        desk.scan(ecard.present(opened.credential, PHONE, wall_ms()))
        assert desk.state == State.DESK_MENU, screen_text(desk)
        desk.keys("1")  # 充值 Top-up
        desk.keys("50E")
        desk.keys("1")  # cash
        desk.turns(lambda: desk.state in (State.DONE, State.MESSAGE))
        assert desk.state == State.DONE, screen_text(desk)
        balance = rig.reader.db.execute("SELECT fen FROM card_balance WHERE account_id='card:E000001/1'").fetchone()
        assert balance == (15_000,)
    finally:
        desk.close()


def test_with_the_broker_gone_the_station_sells_to_an_ecard_within_the_policy_and_the_ledger_books_it_once(park):
    rig, till, _, opened = park
    rig.broker.kill()
    wait_until(lambda: not till.link.is_connected, what="the station to notice")
    # A phone a window ahead (accepted): the code lives 40-60 s, long enough to show it again below.
    qr = ecard.present(opened.credential, PHONE, wall_ms() + WINDOW_MS)
    till.scan(qr)  # checked by the till alone: the card-record key's signature and the window
    till.keys("20E")
    till.turns(lambda: till.state in (State.DONE, State.MESSAGE))
    assert till.state == State.DONE, screen_text(till)
    assert "OFFLINE" in till.sim.printer.receipts[-1].text
    rig.broker.start()
    wait_until(lambda: till.link.outbox.pending_count() == 0, 30, "the queue to drain")
    assert rig.reader.db.execute("SELECT fen FROM card_balance WHERE account_id='card:E000001/1'").fetchone() == (8000,)
    assert rig.reader.ecard("P1", "E000001", 1)[2] == ecard.parse_token(qr)[1]  # its window is used up
    till.keys("E")
    till.scan(qr)  # the same code again, online now
    till.keys("20E")
    till.turns(lambda: till.state == State.MESSAGE)
    assert "QR used already" in screen_text(till)


def test_a_rental_desk_takes_a_rods_deposit_from_an_ecard_shown_to_its_scanner(tmp_path):
    from host_sim.station import RENTAL_STAFF, add_rental_desk
    from terminal.rental import RentalState

    with ParkRig(tmp_path).create({"T-DESK-1": "desk", "P1-portal": "desk"},
                                  kinds_by_terminal={"P1-portal": ("member_open", "loss_report")}) as rig:
        add_rental_desk(rig, wall_ms(), "T-RENT-1")
        rig.start_broker()
        rig.start_ledger()
        store = rig.home.open_store()
        portal = MemberDesk(Intake(store, rig.home.ledger_keys()),
                            json.loads(rig.home.bundle_path("P1-portal").read_text()), wall_ms)
        opened = portal.open_ecard(member_name="张伟", phone="13800138000", pin="246810",
                                   device_key=PHONE.verify_key.encode())
        desk_link = rig.link("T-DESK-1")
        shown = ecard.present(opened.credential, PHONE, wall_ms() - WINDOW_MS)
        credential = ecard.parse_token(shown)[0]
        assert desk_link.submit(lambda seq: TopUp(**common(desk_link, seq, CardRef(
            no=credential.card_no, issuance=1, uid=credential.device_tag, ecard=shown)), amount_fen=10_000,
            channel="cash", payment_ref="")).is_approved
        desk = ScriptedStation(rig, "T-RENT-1", mode="rental")
        try:
            wait_until(lambda: desk.link.state.rental is not None, what="the signed config with the rental stock")
            desk.log_in(RENTAL_STAFF)
            desk.scan(ecard.present(opened.credential, PHONE, wall_ms()))
            assert desk.state == RentalState.PICK_TYPE, screen_text(desk)
            desk.keys("2")  # the rod: 50.00 deposit
            desk.turns(lambda: desk.state == RentalState.VOUCHER)
            (voucher,) = desk.sim.printer.receipts[-1].qr_payloads
            assert voucher.startswith("FPV1:")
            balance = rig.reader.db.execute("SELECT fen FROM card_balance WHERE account_id='card:E000001/1'")
            assert balance.fetchone() == (5_000,)
        finally:
            desk.close()
            store.close()
