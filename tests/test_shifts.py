"""Staff log in on a terminal with their staff card and PIN, checked by the ledger."""

import hashlib
from pathlib import Path

import pytest

from host_sim.rig import STAFF, card, common
from protocol import envelope
from protocol.messages import CardIssue, ShiftClose, ShiftOpen
from terminal.outbox import PendingRequest

WANG = STAFF[0]   # cashier
LI = STAFF[1]     # front desk


def staff_card(member):
    return card(member[3])


def open_shift(link, member, pin):
    fields = common(link, 0, staff_card(member), operator=member[0])
    return link.submit(lambda seq: ShiftOpen(**{**fields, "seq": seq}, pin_sha256="0" * 64), pin=pin)


def test_a_cashier_opens_and_closes_a_shift_with_staff_card_and_pin(rig):
    fishing = rig.link("T-FISH-1")
    opened = open_shift(fishing, WANG, WANG[4])
    assert (opened.outcome, opened.reason) == ("approved", "OK")
    store = rig.reader
    assert store.open_shift_staff("T-FISH-1") == "wang"
    closed = fishing.submit(lambda seq: ShiftClose(**common(fishing, seq, staff_card(WANG), operator="wang")))
    assert closed.is_approved and store.open_shift_staff("T-FISH-1") is None


def test_three_wrong_pins_lock_the_staff_pin_until_a_supervisor_unlocks_it(rig):
    fishing = rig.link("T-FISH-1")
    reasons = [open_shift(fishing, WANG, "9999").reason for _ in range(3)]
    assert reasons == ["WRONG_PIN", "WRONG_PIN", "PIN_LOCKED"]
    assert open_shift(fishing, WANG, WANG[4]).reason == "PIN_LOCKED"  # even the right PIN now
    alerts = rig.reader.db.execute("SELECT COUNT(*) FROM alert WHERE kind='WRONG_PIN'").fetchone()[0]
    assert alerts == 3


def test_front_desk_staff_cannot_work_a_fishing_terminal_and_a_wrong_card_is_unknown(rig):
    fishing = rig.link("T-FISH-1")
    assert open_shift(fishing, LI, LI[4]).reason == "ROLE_NOT_ALLOWED"
    impostor = ("wang", "", "", LI[3], "")  # Li's card, claiming to be Wang
    assert open_shift(fishing, impostor, WANG[4]).reason == "UNKNOWN_STAFF"


def test_a_pin_block_lifted_into_another_request_is_refused(rig):
    fishing = rig.link("T-FISH-1")
    pending = fishing.enqueue(lambda seq: ShiftOpen(**common(fishing, seq, staff_card(WANG), operator="wang"),
                                                    pin_sha256="0" * 64), pin=WANG[4])
    lifted = envelope.split(pending.payload)
    # A new request (next seq) that names and carries the same PIN block: sealed for another seq.
    message = ShiftOpen(**common(fishing, pending.seq + 1, staff_card(WANG), operator="wang"),
                        pin_sha256=hashlib.sha256(lifted.attachment).hexdigest())
    replay = fishing.seal(message, lifted.attachment)
    result = fishing.send(PendingRequest(pending.seq + 1, replay, hashlib.sha256(replay).hexdigest()))
    assert (result.outcome, result.reason) == ("refused", "PIN_BLOCK_INVALID")


@pytest.mark.sqlite_only(reason="scans the bytes of ledger.db and its WAL for the PIN")
def test_the_pin_is_nowhere_in_clear_nor_its_block_at_rest(rig):
    fishing = rig.link("T-FISH-1")
    assert open_shift(fishing, WANG, WANG[4]).is_approved
    assert open_shift(fishing, WANG, "864213").reason == "WRONG_PIN"
    store = rig.reader
    for (payload,) in store.db.execute("SELECT payload FROM request WHERE kind='shift_open'"):
        assert envelope.split(bytes(payload)).attachment == b""  # evidence kept without the PIN block
    (pin_hash,) = store.db.execute("SELECT pin_hash FROM staff WHERE staff_id='wang'").fetchone()
    assert pin_hash.startswith("scrypt$") and WANG[4] not in pin_hash
    fishing.outbox.db.execute("PRAGMA wal_checkpoint(FULL)")
    store.db.execute("PRAGMA wal_checkpoint(FULL)")
    for path in list(Path(rig.root).rglob("*.db*")):
        data = path.read_bytes()
        assert b'"pin"' not in data and b"864213" not in data, path
    assert fishing.outbox.pending_count() == 0


def test_with_a_shift_open_the_ledger_enforces_the_operator_and_the_role(rig):
    from host_sim.rig import card as visitor_card, single_line
    from protocol.messages import CardIssue, Charge

    desk, fishing = rig.link("T-DESK-1"), rig.link("T-FISH-1")
    visitor = visitor_card("C00321")
    assert desk.submit(lambda seq: CardIssue(**common(desk, seq, visitor), card_kind="temporary", card_fee_fen=2000,
                                             opening_fen=5000, channel="cash", payment_ref="")).is_approved
    assert open_shift(fishing, WANG, WANG[4]).is_approved

    def sell(operator):
        fields = common(fishing, 0, visitor, operator=operator)
        return fishing.submit(lambda seq: Charge(**{**fields, "seq": seq}, amount_fen=100, lines=single_line("鱼饵", 100)))

    assert sell("li").reason == "OPERATOR_NOT_ON_SHIFT"   # someone else's name on Wang's till
    assert sell("wang").is_approved
    zhao = STAFF[2]
    assert open_shift(fishing, zhao, zhao[4]).is_approved  # the supervisor takes over the till
    assert sell("zhao").is_approved
    # A cashier's shift at the front desk is refused at login (ROLE_NOT_ALLOWED), so a front-desk
    # request from a cashier never gets that far.
    assert open_shift(desk, WANG, WANG[4]).reason == "ROLE_NOT_ALLOWED"


def test_a_park_that_requires_a_login_refuses_requests_without_a_shift(rig):
    from host_sim.rig import card as visitor_card

    store = rig.home.open_store()
    store.set_requires_shift("P1", True)
    store.close()
    desk = rig.link("T-DESK-1")
    issued = desk.submit(lambda seq: CardIssue(**common(desk, seq, visitor_card("C00322"), operator="li"),
                                               card_kind="temporary", card_fee_fen=2000, opening_fen=5000, channel="cash",
                                               payment_ref=""))
    assert issued.reason == "NO_SHIFT"
    assert open_shift(desk, LI, LI[4]).is_approved
    issued = desk.submit(lambda seq: CardIssue(**common(desk, seq, visitor_card("C00322"), operator="li"),
                                               card_kind="temporary", card_fee_fen=2000, opening_fen=5000, channel="cash",
                                               payment_ref=""))
    assert issued.is_approved


def test_a_park_made_by_ledger_init_requires_a_login_and_only_test_rigs_opt_out(tmp_path):
    from tools.cli import main

    assert main(["--home", str(tmp_path / "real"), "ledger", "init", "--park", "P9", "--name", "青山湖"]) == 0
    assert main(["--home", str(tmp_path / "scripted"), "ledger", "init", "--park", "P8", "--name", "试验",
                 "--no-login-required"]) == 0
    from ledger.park_home import ParkHome

    for home, park_id, expected in (("real", "P9", True), ("scripted", "P8", False)):
        store = ParkHome(tmp_path / home).open_store()
        try:
            assert store.requires_shift(park_id) is expected
        finally:
            store.close()
