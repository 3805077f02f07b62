"""The station terminal as a person uses it: the Textual window of ``fieldpos terminal run --sim``
driven key by key, and the real-hardware main (``terminal.runner``) on emulated hardware."""

import asyncio
import json
import shutil
import threading
import time

from host_sim.devices.mifare import CardState
from host_sim.rig import STAFF, card, common
from host_sim.station_ui import StationSimulator, StationUI
from protocol.messages import CardIssue
from terminal import core, events
from terminal.hal.factory import make_hardware
from terminal.hal.keypad import Key
from terminal.outbox import Outbox
from terminal.runner import EXIT_STOPPED, EXIT_TOO_MANY_FAILURES, OUTBOX_FILE_NAME, Watchdog, run_terminal

WAIT_S = 15.0  # a bound, not a speed claim: each wait ends as soon as its condition holds
WANG_CARD, WANG_PIN = STAFF[0][3], STAFF[0][4]


def charges(store, terminal_id):
    return store.db.execute("SELECT amount_fen FROM txn WHERE kind='charge' AND terminal_id=?", (terminal_id,)).fetchall()


# ---------------------------------------------------------------- the window
async def until(pilot, ui, condition, what):
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {WAIT_S} s; the display says {ui.display_text!r}, status {ui.status_text!r}")
        await pilot.pause(0.05)


async def log_in_as_wang(pilot, ui):
    await until(pilot, ui, lambda: "Tap staff card" in ui.display_text, "locked screen")
    await pilot.press("s")
    await until(pilot, ui, lambda: "Enter PIN" in ui.display_text, "PIN screen")
    await pilot.press(*WANG_PIN, "enter")
    await until(pilot, ui, lambda: "Tap card" in ui.display_text and "ONLINE" in ui.display_text, "idle screen")


def test_a_cashier_charges_30_in_the_window_and_the_receipt_png_says_30(tmp_path):
    # A text printer, so the emulator itself decodes what is on the paper.
    with StationSimulator(tmp_path / "sim", printer_profile="80mm-gb18030").start() as station:
        ui = StationUI(station)

        async def cashier():
            async with ui.run_test(size=(150, 40)) as pilot:
                await log_in_as_wang(pilot, ui)
                await pilot.press("a")  # the visitor card opened with 100.00
                await until(pilot, ui, lambda: "Amount" in ui.display_text, "amount screen")
                await pilot.press("3", "0")
                await until(pilot, ui, lambda: "￥30" in ui.display_text, "typed amount")
                await pilot.press("enter")
                texts = lambda: [path.read_text() for path in sorted(station.receipts_dir.glob("receipt-*.txt"))]
                await until(pilot, ui, lambda: "Approved" in ui.display_text and len(texts()) >= 2, "approval and two receipts")
                assert "余额 Balance 70.00" in ui.display_text
                assert all("30.00" in text and "70.00" in text for text in texts()), texts()
                assert "商户联" in texts()[-1] and "顾客联" in texts()[0]
                assert "outbox pending 0" in ui.status_text and "ONLINE" in ui.status_text
                assert "30.00" in str(ui.query_one("#receipt").content)

        asyncio.run(cashier())
        pictures = sorted(station.receipts_dir.glob("receipt-*.png"))
        assert len(pictures) == 2 and all(picture.stat().st_size > 1000 for picture in pictures)
        assert station.display_path.stat().st_size > 100
        assert charges(station.rig.reader, "T-FISH-1") == [(3000,)]


def test_paper_out_in_the_window_shows_the_printer_problem_and_enter_reprints_once_loaded(tmp_path):
    # The park's standard 58 mm raster printer: the receipt panel shows the layout's text.
    with StationSimulator(tmp_path / "sim").start() as station:
        ui = StationUI(station)

        async def cashier():
            async with ui.run_test(size=(150, 40)) as pilot:
                await log_in_as_wang(pilot, ui)
                await pilot.click("#card-b")  # the card on the counter, clicked instead of its key
                await until(pilot, ui, lambda: "Amount" in ui.display_text, "amount screen")
                # The paper runs out once the sale is under way: pulled while the till idled, its
                # check every 2 s could see it before the tap (on a slow machine), and the till
                # would rightly ask to sell without a receipt instead.
                await pilot.press("p")
                await until(pilot, ui, lambda: "paper OUT" in ui.status_text, "paper out in the status line")
                await pilot.press("3", "0", "enter")
                await until(pilot, ui, lambda: "Printer problem" in ui.display_text, "printer problem screen")
                assert "ENTER to reprint" in ui.display_text and "The sale went through" in ui.display_text
                assert not list(station.receipts_dir.glob("*.png"))
                await pilot.press("p", "enter")
                await until(pilot, ui, lambda: "Approved" in ui.display_text, "approval after the reprint")
                await until(pilot, ui, lambda: len(list(station.receipts_dir.glob("*.png"))) >= 2, "receipt pictures")
                receipt_text = str(ui.query_one("#receipt").content)
                assert "30.00" in receipt_text and "470.00" in receipt_text
                assert "补打" not in receipt_text and "REPRINT" not in receipt_text  # none had printed: the first
                assert "printed as a picture" in str(ui.query_one("#receipt-box").border_title)

        asyncio.run(cashier())
        assert charges(station.rig.reader, "T-FISH-1") == [(3000,)]


# ---------------------------------------------------------------- the real-hardware main
def wait_until(condition, what):
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {WAIT_S} s")
        time.sleep(0.02)


def test_run_terminal_survives_a_failing_turn_sells_and_stops_with_an_empty_outbox(rig, tmp_path, caplog):
    desk = rig.link("T-DESK-1")
    desk.submit(lambda seq: CardIssue(**common(desk, seq, card("C00042")), card_kind="temporary", card_fee_fen=2000,
                                      opening_fen=10000, channel="cash", payment_ref=""))
    board = tmp_path / "board"  # what flash.sh leaves on a Pi
    board.mkdir()
    shutil.copyfile(rig.home.bundle_path("T-FISH-1"), board / "bundle.json")
    (board / "station.json").write_text(json.dumps(rig.station_config("T-FISH-1", printer_profile="80mm-gb18030").to_dict()))
    hardware = make_hardware("sim", config={"printer_profile": "80mm-gb18030"})
    sim = hardware.sim
    # One bad turn: the first card poll blows up the way an unexpected driver bug would.
    real_poll, polls = hardware.card_reader.poll, []

    def poll_that_fails_once():
        polls.append(1)
        if len(polls) == 1:
            raise RuntimeError("reader returned nonsense")
        return real_poll()

    hardware.card_reader.poll = poll_that_fails_once
    stop, outcome = threading.Event(), {}
    till = threading.Thread(target=lambda: outcome.update(code=run_terminal(board / "bundle.json", board / "station.json",
                                                                            hardware=hardware, stop=stop)))
    try:
        till.start()
        wait_until(lambda: any("turn failed" in record.message for record in caplog.records), "logged failing turn")
        staff_card = rig.virtual_card(WANG_CARD, kind="staff")
        sim.field.present(staff_card)
        wait_until(lambda: staff_card.state == CardState.HALT, "staff card read")  # the reader halts what it read
        sim.keypad.type_text(WANG_PIN)
        sim.keypad.press(Key.ENTER)
        # As a cashier waits for the idle screen: a card put down during the PIN would be ignored.
        wait_until(lambda: rig.reader.open_shift_staff("T-FISH-1") == "wang", "shift open")
        visitor = rig.virtual_card("C00042")
        sim.field.remove()
        sim.field.present(visitor)
        wait_until(lambda: visitor.state == CardState.HALT, "visitor card read")
        sim.keypad.type_text("30")
        sim.keypad.press(Key.ENTER)
        wait_until(lambda: len(sim.printer.receipts) >= 2, "both receipt copies")
    finally:
        stop.set()
        till.join(WAIT_S)
        hardware.close()
    assert not till.is_alive() and outcome["code"] == EXIT_STOPPED
    assert "30.00" in sim.printer.receipts[-1].text and "70.00" in sim.printer.receipts[-1].text
    failure = next(record for record in caplog.records if "turn failed" in record.message)
    assert "in state locked" in failure.message and failure.exc_info  # logged with the screen state and the trace
    outbox = Outbox(board / OUTBOX_FILE_NAME)  # beside the bundle, where the runner keeps it
    try:
        assert outbox.pending_count() == 0 and outbox.last_seq == 3  # the shift opening, the balance query, the charge
        assert 3 not in [seq for seq, _, _ in outbox.unprinted()]  # the charge's receipt is recorded as out
    finally:
        outbox.close()
    assert charges(rig.reader, "T-FISH-1") == [(3000,)]


class FakeClock:
    def monotonic_ms(self):
        return 0


class FakeDisplay:
    size = (128, 64)

    def __init__(self):
        self.shown = []

    def show(self, picture):
        self.shown.append(picture)


class BrokenTill:
    """A till whose every turn raises: the keypad was pulled out and reads fail."""

    def __init__(self):
        self.machine = core.Terminal(config=None, terminal_id="T-FISH-1")
        self.screen = events.Show("钓鱼 Fishing")
        self.hardware = type("Hardware", (), {"clock": FakeClock(), "display": FakeDisplay()})()
        self.link = type("Link", (), {"is_connected": True})()
        self.is_running = True
        self.turns = 0

    def boot(self):
        pass

    def turn(self):
        self.turns += 1
        raise OSError("keypad gone")


def test_the_watchdog_shows_the_fault_and_exits_non_zero_after_five_failed_turns_in_a_row():
    till = BrokenTill()
    watchdog = Watchdog(till, render=lambda show, size: show)
    assert watchdog.run(threading.Event()) == EXIT_TOO_MANY_FAILURES
    assert till.turns == 5
    assert till.screen.tone == "error" and "OSError" in till.screen.lines[0]
    assert till.hardware.display.shown[-1] is till.screen  # drawn on the panel, not only remembered


async def desk_with_a_blank_card(pilot, ui, blank_key: str) -> None:
    """Li logs in at the desk's window and taps a blank card from the box."""
    await until(pilot, ui, lambda: "Tap staff card" in ui.display_text, "locked screen")
    await pilot.press("l")  # Li, front desk staff
    await until(pilot, ui, lambda: "Enter PIN" in ui.display_text, "PIN screen")
    await pilot.press(*STAFF[1][4], "enter")
    await until(pilot, ui, lambda: "Front desk" in ui.display_text, "the desk's idle screen")
    await pilot.press(blank_key)
    await until(pilot, ui, lambda: "Blank card" in ui.display_text, "blank card screen")


def test_the_front_desk_in_the_window_issues_a_blank_card_and_prints_the_receipt(tmp_path):
    with StationSimulator(tmp_path / "sim", station="desk", printer_profile="80mm-gb18030").start() as station:
        ui = StationUI(station)

        async def front_desk():
            async with ui.run_test(size=(150, 40)) as pilot:
                await desk_with_a_blank_card(pilot, ui, "n")
                await pilot.press("1")  # a temporary card
                await until(pilot, ui, lambda: "New card" in ui.display_text, "new card screen")
                await pilot.press("5", "0", "enter")
                await until(pilot, ui, lambda: "Collect" in ui.display_text, "payment screen")
                await pilot.press("1")  # cash
                texts = lambda: [path.read_text() for path in sorted(station.receipts_dir.glob("receipt-*.txt"))]
                await until(pilot, ui, lambda: "Approved" in ui.display_text and len(texts()) >= 2, "issue receipts")
                assert "70.00" in texts()[-1] and "卡押金" in texts()[-1]

        asyncio.run(front_desk())
        issued = station.rig.reader.db.execute("SELECT card_no, state FROM card WHERE card_no='T1A2B3C4D'").fetchall()
        assert issued == [("T1A2B3C4D", "active")]


def test_the_front_desk_in_the_window_opens_a_member_card_with_the_name_typed_on_the_keyboard(tmp_path):
    with StationSimulator(tmp_path / "sim", station="desk", printer_profile="80mm-gb18030").start() as station:
        ui = StationUI(station)

        async def member_desk():
            async with ui.run_test(size=(150, 40)) as pilot:
                await desk_with_a_blank_card(pilot, ui, "m")
                await pilot.press("2")  # a member card
                await until(pilot, ui, lambda: "Member's name" in ui.display_text, "name screen")
                # "z" and "l" tap staff cards elsewhere; here they type (the desk's keyboard).
                await pilot.press("z", "h", "a", "n", "g", "space", "l", "i", "enter")
                await until(pilot, ui, lambda: "Member's phone" in ui.display_text, "phone screen")
                await pilot.press(*"13800138000", "enter", *"2468", "enter", *"2468", "enter", "enter")
                texts = lambda: [path.read_text() for path in sorted(station.receipts_dir.glob("receipt-*.txt"))]
                await until(pilot, ui, lambda: "Approved" in ui.display_text and len(texts()) >= 2, "member receipts")
                assert "会员开卡" in texts()[-1]

        asyncio.run(member_desk())
        member = station.rig.reader.db.execute("SELECT card_no, name, phone FROM member").fetchall()
        assert member == [("M5E6F7A8B", "Zhang Li", "13800138000")]
