"""The till never hangs: a full SD card, a ledger that holds a request, a ledger that does not
answer. Each ends on a screen the cashier can act on and leave, and never in a second charge.

A full disk is either real (SQLite's own page limit: the outbox file cannot grow, and SQLite
fails exactly as on a full SD card) or injected into the outbox's connection (``FullDisk``: every
write, or only some, fails with "database or disk is full", reads still work — as on a full card).
"""

import hashlib
import sqlite3
import time

import pytest

from host_sim.rig import STAFF, card, common
from host_sim.station import ScriptedStation
from ledger import broadcasts
from protocol import envelope
from protocol.envelope import Purpose
from protocol.messages import CardIssue, Result
from terminal.app import OWED_RECEIPTS_CHECK_MS
from terminal.events import (UNCERTAIN_LEAVE_AFTER_MS, Answer, CardTapped, OfflineRefused, Show, State, StorageFailed,
                             TryOffline)
from terminal.net import NoResultError
from terminal.outbox import Outbox

from .helpers.waiting import wait_until
from .test_terminal_core import VISITOR, keys, logged_in, result

DISK_FULL = "database or disk is full"
# Offline a station may sell at most 10.00 a sale here, so a 30.00 sale the ledger does not answer
# stays UNCERTAIN (nothing may replace it offline).
POLICY = broadcasts.DEFAULT_OFFLINE_POLICY | dict(max_transaction_fen=1000)


class FullDisk:
    """The outbox's SQLite connection on a full SD card: reads work; a write that ``refuses``
    fails with SQLite's own error, and an open transaction is rolled back as SQLite does on
    SQLITE_FULL. ``free()`` is space coming back."""

    def __init__(self, connection, refuses):
        self.connection = connection
        self.refuses = refuses
        self.is_full = True
        self.refused = 0

    def execute(self, sql, *arguments):
        if self.is_full and self.refuses(sql):
            self.refused += 1
            if self.connection.in_transaction:
                self.connection.execute("ROLLBACK")
            raise sqlite3.OperationalError(DISK_FULL)
        return self.connection.execute(sql, *arguments)

    def __getattr__(self, name):
        return getattr(self.connection, name)

    def free(self) -> None:
        self.is_full = False

    @classmethod
    def under(cls, link, refuses=lambda sql: sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE", "COMMIT"))):
        """Put the terminal's whole store (outbox, results, offline state) on the full disk."""
        disk = cls(link.outbox.db, refuses)
        results = cls(link.outbox._results_db, refuses)
        link.outbox.db = link.state.db = disk
        link.outbox._results_db = results
        disk.free = lambda: (setattr(disk, "is_full", False), setattr(results, "is_full", False))
        return disk


def marking_printed(sql: str) -> bool:
    return sql.lstrip().upper().startswith("UPDATE") and "printed_ms" in sql


def screen_text(station) -> str:
    screen = station.app.screen
    return " ".join((screen.title, *screen.lines, screen.footer))


def charges(park) -> int:
    return park.reader.db.execute("SELECT COUNT(*) FROM txn WHERE kind='charge'").fetchone()[0]


def receipts_of(station, seq: int) -> list:
    return [receipt for receipt in station.sim.printer.receipts if f"{station.terminal_id}-{seq}" in receipt.text]


@pytest.fixture
def park(stopped_rig):
    store = stopped_rig.home.open_store()
    store.set_offline_policy("P1", POLICY)
    store.close()
    stopped_rig.start_ledger()
    desk = stopped_rig.link("T-DESK-1")
    assert desk.submit(lambda seq: CardIssue(**common(desk, seq, card("C00042")), card_kind="temporary", card_fee_fen=2000,
                                             opening_fen=10000, channel="cash", payment_ref="")).is_approved
    return stopped_rig


@pytest.fixture
def station(park):
    station = ScriptedStation(park, "T-FISH-1", sim_clock="manual")
    wait_until(lambda: station.link.state.policy is not None, what="the signed config")
    station.log_in()
    yield station
    station.close()


def later(station, duration_ms: int) -> None:
    """Time passes on the board, and the till takes a turn."""
    station.sim.clock.advance_ms(duration_ms)
    station.app.turn()


# ---------------------------------------------------------------- the outbox itself
def test_a_request_that_does_not_fit_on_a_full_disk_fails_with_the_disk_full_error_and_takes_no_seq(tmp_path):
    outbox = Outbox(tmp_path / "outbox.db")
    try:
        pages = outbox.db.execute("PRAGMA page_count").fetchone()[0]
        outbox.db.execute(f"PRAGMA max_page_count = {pages + 2}")  # the card fills after a few requests

        def build(seq):
            payload = f"request {seq} ".encode() + bytes(2000)
            return payload, hashlib.sha256(payload).hexdigest()

        with pytest.raises(sqlite3.OperationalError) as raised:
            for _ in range(100):
                outbox.append(build, 0)
        assert str(raised.value) == DISK_FULL  # not "cannot rollback - no transaction is active"
        stored = outbox.last_seq
        assert [pending.seq for pending in outbox.pending()] == list(range(1, stored + 1))
        outbox.db.execute("PRAGMA max_page_count = 1000000")  # space comes back
        assert outbox.append(build, 0).seq == stored + 1  # the failed attempt used no seq
    finally:
        outbox.close()


# ---------------------------------------------------------------- the machine
def test_a_set_aside_reply_in_the_machine_is_no_answer_and_never_a_decline():
    terminal = logged_in()
    terminal.handle(CardTapped("04a1b2c3", VISITOR))
    keys(terminal, "30E")
    terminal.submitted(5)
    effects = terminal.handle(Answer(result(5, "refused", "SET_ASIDE")))
    assert [type(effect) for effect in effects] == [TryOffline] and effects[0].supersedes_seq == 5
    assert terminal.state == State.AUTHORIZING and terminal.ledger_holds == "SET_ASIDE"
    shown = terminal.handle(StorageFailed("STORAGE_FAULT", is_sale_made=False))  # the offline attempt could not be stored
    assert terminal.state == State.UNCERTAIN  # the online attempt is on disk: not "NOT made"
    assert all("Declined" not in effect.title for effect in shown if isinstance(effect, Show))
    assert "总账已收 Held" in " ".join(shown[0].lines)


def test_a_storage_fault_before_anything_was_queued_says_not_made_and_any_key_leaves():
    terminal = logged_in()
    terminal.handle(CardTapped("04a1b2c3", VISITOR))
    keys(terminal, "30E")
    (shown,) = terminal.handle(StorageFailed("STORAGE_FAULT", is_sale_made=False))
    assert terminal.state == State.MESSAGE and "Disk fault" in shown.title and "NOT made" in shown.lines[0]
    keys(terminal, "5")
    assert terminal.state == State.IDLE and terminal.sale is None


def test_every_fault_screen_fits_the_128x64_panel_with_no_line_cut_short():
    from protocol.reasons import reason_text
    from terminal.events import ParkedAnswered, Tick
    from terminal.screens import TEXT_FONT_PX, MARGIN_PX, _fit_width, _Layout, load_display_font

    shown = []
    for made, detail in ((False, ""), (True, "已打印 Printed")):
        terminal = logged_in()
        terminal.handle(CardTapped("04a1b2c3", VISITOR))
        keys(terminal, "30E")
        shown += terminal.handle(StorageFailed("STORAGE_FAULT", is_sale_made=made, detail=detail))
    terminal = logged_in()
    terminal.handle(CardTapped("04a1b2c3", VISITOR))
    keys(terminal, "30E")
    terminal.submitted(5)
    shown += terminal.handle(Answer(result(5, "refused", "SET_ASIDE")))
    offline_text = "离线限额 Over the offline limit"  # reason texts are the reasons' own (issue 12 shortens them)
    shown += terminal.handle(OfflineRefused("OVER_TRANSACTION_CAP", offline_text))
    shown += terminal.handle(Tick(terminal.now_ms + terminal.uncertain_timeout_ms + 1, None))
    keys(terminal, "5")  # the cashier leaves the pending sale; the ledger later refuses it
    shown += terminal.handle(ParkedAnswered(5, "INSUFFICIENT_FUNDS"))
    screens = [effect for effect in shown if isinstance(effect, Show)]
    titles = " | ".join(screen.title for screen in screens)
    assert "Disk fault" in titles and "Sale pending" in titles and "NOT made" in titles, titles
    layout = _Layout(128, 64, 1.0)
    font = load_display_font(layout.px(TEXT_FONT_PX))
    available_px = 128 - 2 * layout.px(MARGIN_PX)
    for screen in screens:
        for text in (screen.title, *screen.lines, screen.footer):
            if text in (offline_text, reason_text("INSUFFICIENT_FUNDS"), "T-FISH-1-5"):
                continue
            assert _fit_width(text, font, available_px) == text, f"{text!r} is cut short on the panel"


# ---------------------------------------------------------------- the till on emulated hardware
def test_a_sale_on_a_full_disk_says_it_was_not_made_cancel_leaves_and_selling_resumes_when_space_returns(park, station):
    printed = len(station.sim.printer.receipts)
    disk = FullDisk.under(station.link)
    assert station.sell(park.virtual_card("C00042"), "30") == State.MESSAGE
    assert "Disk fault" in station.app.screen.title and "NOT made" in screen_text(station)
    station.keys("C")
    assert station.state == State.IDLE  # the cashier is out of it
    assert station.sell(park.virtual_card("C00042"), "30") == State.MESSAGE  # tried again: same clear answer
    station.keys("C")
    assert charges(park) == 0 and len(station.sim.printer.receipts) == printed
    assert disk.refused >= 2
    disk.free()
    assert station.sell(park.virtual_card("C00042"), "30") == State.DONE  # no restart needed
    assert charges(park) == 1 and "70.00" in station.sim.printer.receipts[-1].text


def test_a_receipt_whose_printing_cannot_be_recorded_prints_once_not_every_two_seconds(park, station):
    disk = FullDisk.under(station.link, refuses=marking_printed)
    assert station.sell(park.virtual_card("C00042"), "30") == State.MESSAGE
    assert "WAS made" in screen_text(station) and "Printed" in screen_text(station)
    seq = station.link.outbox.last_seq
    assert len(receipts_of(station, seq)) == 2  # the customer's and the merchant's copy
    station.keys("C")
    for _ in range(6):  # twelve seconds of owed-receipt checks
        later(station, OWED_RECEIPTS_CHECK_MS + 1)
    assert len(receipts_of(station, seq)) == 2
    disk.free()
    later(station, OWED_RECEIPTS_CHECK_MS + 1)
    assert station.link.outbox.unprinted() == []  # the mark is written once the disk takes it
    assert len(receipts_of(station, seq)) == 2 and charges(park) == 1


def test_a_receipt_owed_from_before_a_restart_prints_once_while_its_record_cannot_be_written(park, station):
    class PowerCut(BaseException):
        pass

    def die(receipt):
        raise PowerCut()

    station.hardware.printer.print_receipt = die
    station.tap(park.virtual_card("C00042"))
    with pytest.raises(PowerCut):
        station.keys("30E")
    seq = station.link.outbox.last_seq
    station.link.close()
    link = park.link("T-FISH-1", connect=False)
    disk = FullDisk(link.outbox.db, marking_printed)
    link.outbox.db = link.state.db = disk
    reborn = ScriptedStation(park, "T-FISH-1", link=link, sim_clock="manual")
    try:
        assert len(receipts_of(reborn, seq)) == 2  # owed, printed at boot, marked REPRINT
        assert all("补打" in receipt.text or "REPRINT" in receipt.text for receipt in receipts_of(reborn, seq))
        for _ in range(6):
            later(reborn, OWED_RECEIPTS_CHECK_MS + 1)
        assert len(receipts_of(reborn, seq)) == 2  # the issue saw 12 copies in 12 s here
        assert disk.refused >= 2  # the mark was tried again, not the print
        disk.free()
        later(reborn, OWED_RECEIPTS_CHECK_MS + 1)
        assert reborn.link.outbox.unprinted() == [] and len(receipts_of(reborn, seq)) == 2
        assert charges(park) == 1
    finally:
        reborn.close()


def test_the_waiting_screen_times_out_to_a_pending_screen_the_cashier_can_leave_and_the_receipt_prints_later(park, station):
    park.stop_ledger()
    station.tap(park.virtual_card("C00042"))
    station.keys("30E")  # the first answer is waited for a few seconds; then offline cannot replace it
    assert station.state == State.UNCERTAIN and "Do NOT charge again" in screen_text(station)
    seq = station.link.outbox.last_seq
    station.keys("C")
    assert station.state == State.UNCERTAIN  # not yet: no way to charge the same sale twice
    later(station, UNCERTAIN_LEAVE_AFTER_MS)
    assert "Sale pending" in station.app.screen.title and "Any key" in station.app.screen.footer
    station.keys("C")
    assert station.state == State.IDLE
    # The sale, and the balance query the tap sent (a request like any: kept until answered).
    assert station.link.outbox.pending_count() == 2 and charges(park) == 0
    park.start_ledger()
    wait_until(lambda: station.link.outbox.pending_count() == 0, 30, "the queued sale to reach the ledger")
    later(station, OWED_RECEIPTS_CHECK_MS + 1)
    assert len(receipts_of(station, seq)) == 2 and "30.00" in receipts_of(station, seq)[-1].text
    for _ in range(3):
        later(station, OWED_RECEIPTS_CHECK_MS + 1)
    assert len(receipts_of(station, seq)) == 2 and charges(park) == 1


def test_a_sale_left_pending_that_the_ledger_then_declines_is_told_on_the_idle_screen(park, station):
    park.stop_ledger()
    station.tap(park.virtual_card("C00042"))
    station.keys("150E")  # more than the card holds: the ledger will decline it
    assert station.state == State.UNCERTAIN
    later(station, UNCERTAIN_LEAVE_AFTER_MS)
    station.keys("C")
    assert station.state == State.IDLE
    printed = len(station.sim.printer.receipts)
    park.start_ledger()
    wait_until(lambda: station.link.outbox.pending_count() == 0, 30, "the queued sale to reach the ledger")
    later(station, OWED_RECEIPTS_CHECK_MS + 1)
    assert "NOT made" in station.app.screen.title and "余额不足" in screen_text(station)
    station.keys("C")
    assert station.state == State.IDLE
    later(station, OWED_RECEIPTS_CHECK_MS + 1)
    assert station.state == State.IDLE  # told once
    assert len(station.sim.printer.receipts) == printed and charges(park) == 0


def set_aside_reply(park, station, seq: int) -> None:
    """What a ledger that set a request aside sends back: a signed Result, reason SET_ASIDE."""
    from paho.mqtt.client import MQTTMessage

    link = station.link
    (pending,) = [p for p in link.outbox.pending() if p.seq == seq]
    topic = link.result_topic
    body = Result(park="P1", terminal=station.terminal_id, seq=seq, request_sha256=pending.request_sha256,
                  outcome="refused", reason="SET_ASIDE", balances=None, txn=None,
                  ledger_time_ms=int(time.time() * 1000), detail="set aside").to_bytes()
    key = park.home.ledger_keys().for_purpose(Purpose.RESULT)
    message = MQTTMessage(topic=topic.encode())
    message.payload = envelope.seal(body, signing_key=key.signing_key, key_id=key.key_id, purpose=Purpose.RESULT,
                                    topic=topic)
    link._on_message(link.client, None, message)


def test_a_ledger_answering_set_aside_never_makes_the_till_show_declined_and_a_later_approval_prints_once(park, station):
    park.stop_ledger()
    station.tap(park.virtual_card("C00042"))
    station.keys("30E")
    assert station.state == State.UNCERTAIN
    seq = station.link.outbox.last_seq
    set_aside_reply(park, station, seq)
    station.app.turn()
    assert station.state == State.UNCERTAIN and "Declined" not in screen_text(station)
    assert "总账已收 Held" in screen_text(station) and "Do NOT charge again" in screen_text(station)
    # Still pending, beside the tap's balance query: re-sent until a final answer.
    assert station.link.outbox.pending_count() == 2
    (pending,) = [p for p in station.link.outbox.pending() if p.seq == seq]
    with pytest.raises(NoResultError):  # and never handed to the app as an answer
        station.link.send(pending, 0.2)
    park.start_ledger()
    station.turns(lambda: station.state == State.DONE, limit=100_000)
    assert len(receipts_of(station, seq)) == 2 and "70.00" in receipts_of(station, seq)[-1].text
    for _ in range(3):
        later(station, OWED_RECEIPTS_CHECK_MS + 1)
    assert len(receipts_of(station, seq)) == 2 and charges(park) == 1


def test_a_staff_login_on_a_full_disk_says_so_and_leaves_the_till_locked(park):
    station = ScriptedStation(park, "T-FISH-2", sim_clock="manual")
    try:
        disk = FullDisk.under(station.link)
        station.tap(park.virtual_card(STAFF[0][3], kind="staff"))
        station.keys(STAFF[0][4] + "E")
        assert station.state == State.MESSAGE and "Disk fault" in station.app.screen.title
        station.keys("C")
        assert station.state == State.LOCKED
        disk.free()
        station.log_in()
        assert station.state == State.IDLE
    finally:
        station.close()


def test_a_result_arriving_on_a_full_disk_still_reaches_the_waiting_till(park, station):
    """The Result cannot be stored, but the till gets it and prints; the request stays pending on
    disk, and the ledger replays the same Result when it is re-sent (still one charge)."""
    FullDisk.under(station.link, refuses=lambda sql: "SET result" in sql)
    assert station.sell(park.virtual_card("C00042"), "30") == State.DONE
    assert "70.00" in station.sim.printer.receipts[-1].text
    assert charges(park) == 1 and station.link.outbox.pending_count() == 2  # and the tap's balance query
