"""``fieldpos terminal run --sim``: one station terminal in a terminal window, with a park behind it.

:class:`StationSimulator` builds a small park in ``<out>/park`` (broker, ledger, a front desk that
issues a few visitor cards), writes the station terminal's files into ``<out>/terminal`` as a
technician would put them on the board (bundle, station config, outbox), opens the emulated hardware
and runs the till with the same code as a Pi (:mod:`terminal.runner`) in a background thread.

:class:`StationUI` is the window. It talks only to the emulated hardware, the way a person would:
keys go into the emulated USB keypad, cards into the reader's RF field, and ``p`` takes the paper
roll out of the emulated printer. It shows the display (as text and as the OLED's pixels), the last
receipt and a status line, and saves every receipt as PNG into ``<out>/receipts`` and the display
into ``<out>/display.png`` whenever it changes.

Keys (also in the window's help line): digits, ``.``, Enter; Esc = CANCEL; Backspace = BACK;
F1..F4 (or the USB keypad's ``/ * - +``): F1 reprint, F2 a lost member card (desk), F3 void the last
sale / reverse the last top-up (a supervisor's card and PIN), F4 close the shift; ``s`` Wang's staff
card, ``l`` Li's (front desk), ``z`` Zhao's (supervisor), ``a`` ``b`` ``c`` visitor cards (or click
them), ``n`` ``m`` blank cards at the desk, ``x`` takes the card away; ``p`` paper out/in; ``q``
quits. While the desk asks for a member's name, letters type into it (the desk's keyboard).

The rental desk (``--terminal-station rental``): ``u`` Sun's staff card (rental), ``v`` scans the
next deposit voucher (two paid earlier in the day, then any the desk has printed since), ``i`` scans the next item's label (rods, then bikes); F2 takes a deposit at the desk.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
import logging
import os
from pathlib import Path
import shutil
import sqlite3
import threading
import time

from rich.console import Group
from rich.panel import Panel
from rich.text import Text
from textual.app import App, ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.events import Key as KeyEvent
from textual.message import Message
from textual.widgets import Static

from protocol.messages import CardIssue
from terminal import events
from terminal.config import COUNT, DESK, MENU, OWN_MODES, RENTAL, MenuItem
from terminal.hal.factory import make_hardware
from terminal.hal.keypad import Key
from terminal.runner import OUTBOX_FILE_NAME, Watchdog, close_terminal, open_terminal
from terminal.app import render_for_display

from .output_dir import SIM_MARKER, claim_output_dir, refuse_if_serving
from .rig import STAFF, ParkRig, card, common
from .station import RENTAL_LABELS, rental_types

log = logging.getLogger("fieldpos.host_sim.station_ui")

DEFAULT_OUT = "var/sim"
# The park's standard printer. A raster printer prints pictures, so the receipt panel then shows
# the receipt's layout text; "80mm-gb18030" shows the text the emulated printer itself decoded.
DEFAULT_PRINTER_PROFILE = "58mm-raster"
DESK_TERMINAL = "T-DESK-1"
# station -> (terminal id, what its config changes from the park's default "any amount" mode)
STATION_TERMINALS = {
    "fishing": ("T-FISH-1", {}),
    "riding": ("T-RIDE-1", {"mode": COUNT, "unit_name": "20分钟", "unit_price_fen": 8000}),
    "bbq": ("T-BBQ-1", {"mode": MENU, "menu": (MenuItem("烤串 Skewers", 500), MenuItem("烤鱼 Grilled fish", 3000),
                                             MenuItem("啤酒 Beer", 1500))}),
    # The front desk: blank cards issued and written here, visitor cards topped up and taken back.
    "desk": ("T-DESK-2", {"mode": DESK, "card_fee_fen": 2000, "damage_fee_fen": 1000}),
    # Rods and bikes (host_sim.station's sample rental station): deposits, vouchers, hand-out and return.
    "rental": ("T-RENT-1", {"mode": RENTAL}),
}
# Blank cards on the desk's counter (key, UID): as they come from the card supplier.
BLANK_CARDS = (("n", "1a2b3c4d"), ("m", "5e6f7a8b"))
# (key, card number, opening balance in fen): the last one is too poor for a 30.00 sale on purpose.
VISITORS = (("a", "C00101", 10000), ("b", "C00102", 50000), ("c", "C00103", 2000))
STAFF_KEYS = {"s": "wang", "z": "zhao", "l": "li"}
CARD_FEE_FEN = 2000
STOP_TIMEOUT_S = 10.0  # a sale waiting for the ledger re-sends for up to 4 s before it sees the stop
REFRESH_S = 0.1

KEYPAD_KEYS = {
    **{str(digit): Key.for_character(str(digit)) for digit in range(10)},
    "full_stop": Key.DOT, "enter": Key.ENTER, "escape": Key.CANCEL, "backspace": Key.BACK,
    "f1": Key.F1, "f2": Key.F2, "f3": Key.F3, "f4": Key.F4,
    # The 17-key USB keypad the stations use has no F keys: its / * - + are F1..F4.
    "slash": Key.F1, "asterisk": Key.F2, "minus": Key.F3, "plus": Key.F4,
}  # fmt: skip
HELP = ("keypad: 0-9 . Enter · Esc CANCEL · Backspace BACK · F1 reprint · F2 lost card (desk) · F3 void/reverse · "
        "F4 close shift (or / * - +)\n"
        "cards (keys or click): s z l staff · a b c visitors · n m blank cards (desk) · x take the card away · "
        "p paper out/in · q quit · a name is typed on the keyboard")
RENTAL_HELP = ("\nrental desk: u Sun's staff card · v scan the next voucher · i scan the next item label · "
               "F2 deposit paid at the desk")
# Deposits taken before the window opens, so the rental desk has vouchers to scan: (item type, channel).
RENTAL_DEPOSITS = (("rod", "cash"), ("bike", "wechat"))
TONE_STYLES = {"normal": "bright_blue", "ok": "green", "error": "red", "warning": "yellow"}


@dataclass(frozen=True)
class CardChoice:
    """A virtual card on the counter, and the key that taps it."""

    key: str
    label: str
    card: object  # host_sim.devices.mifare.MifareClassic1K


# ---------------------------------------------------------------- the park and the till
class StationSimulator:
    """A park on this machine and one station terminal on emulated hardware, its till in a thread."""

    def __init__(self, out, *, station: str = "fishing", printer_profile: str = DEFAULT_PRINTER_PROFILE):
        if station not in STATION_TERMINALS:
            raise ValueError(f"station must be one of {', '.join(STATION_TERMINALS)}, not {station!r}")
        self.out = Path(out)
        self.station = station
        self.terminal_id = STATION_TERMINALS[station][0]
        self.printer_profile = printer_profile
        self.receipts_dir = self.out / "receipts"
        self.display_path = self.out / "display.png"
        self.cards: list[CardChoice] = []
        self.rig: ParkRig | None = None
        self.hardware = None
        self.app = None
        self.exit_code: int | None = None  # set when the till's loop ends
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._outbox_reader: sqlite3.Connection | None = None
        self._ledger_lock = None  # ledger.park_home.LedgerLock while the park runs
        self._saved_receipts = 0
        self._last_display: bytes | None = None
        self.vouchers: list[str] = []  # a rental desk's: scanned in turn by ``v``
        self._scans = {"voucher": 0, "label": 0}

    # ------------------------------------------------------------ start and stop
    def start(self) -> StationSimulator:
        try:
            self._clear_previous_run()
            self._start_park()
            self._issue_cards()
            bundle_path, config_path = self._write_terminal_files()
            scanner = "evdev" if self.station == "rental" else "none"
            self.hardware = make_hardware("sim", config={"printer_profile": self.printer_profile, "scanner": scanner})
            self.app = open_terminal(bundle_path, config_path, self.hardware, mqtt_version=self.rig.mqtt_version)
            self._thread = threading.Thread(target=self._run_till, name="till", daemon=True)
            self._thread.start()
        except BaseException:
            self.close()
            raise
        return self

    @property
    def _ledger_home(self) -> Path:
        return self.out / "park" / "ledger-home"

    def _clear_previous_run(self) -> None:
        # A folder the simulator did not make is refused whole (a park's real files could be in a
        # "park" folder there); in its own folder it clears only what it writes, as before.
        if not (self.out / SIM_MARKER).is_file():
            claim_output_dir(self.out, marker=SIM_MARKER)
        refuse_if_serving(self._ledger_home)
        for name in ("park", "terminal", "receipts"):
            shutil.rmtree(self.out / name, ignore_errors=True)
        self.display_path.unlink(missing_ok=True)
        self.receipts_dir.mkdir(parents=True)

    def _start_park(self) -> None:
        from .embedded_broker import EMBEDDED_MQTT_VERSION, is_embedded

        self.rig = ParkRig(self.out / "park")
        # Held while the window is open: a second simulator on this folder refuses instead of
        # replacing the park this one's ledger is writing.
        self.rig.home.home.mkdir(parents=True)
        self._ledger_lock = self.rig.home.lock_ledger()
        if self.station == "rental":
            from .station import add_rental_desk

            self.rig.create({DESK_TERMINAL: "desk"})
            add_rental_desk(self.rig, int(time.time() * 1000), self.terminal_id)
        else:
            self.rig.create({DESK_TERMINAL: "desk", self.terminal_id: self.station})
        self.rig.start_broker(prefer="auto")
        if is_embedded(self.rig.broker):  # no Mosquitto on this machine; amqtt speaks 3.1.1 only
            self.rig.mqtt_version = EMBEDDED_MQTT_VERSION
        self.rig.start_ledger()

    def _issue_cards(self) -> None:
        desk = self.rig.link(DESK_TERMINAL)
        desk.sync_seq()
        for staff_id, name, _, card_no, pin in STAFF:
            key = next((k for k, known in STAFF_KEYS.items() if known == staff_id), None)
            if key is not None:
                # The sample staff's PIN is on the label: this park exists only in this window.
                label = f"{name.split()[-2]} staff, PIN {pin}"  # "王芳 Wang Fang" -> "Wang"
                self.cards.append(CardChoice(key, label, self.rig.virtual_card(card_no, kind="staff")))
        for key, card_no, opening_fen in VISITORS:
            result = desk.submit(lambda seq: CardIssue(
                **common(desk, seq, card(card_no), "li"), card_kind="temporary", card_fee_fen=CARD_FEE_FEN,
                opening_fen=opening_fen, channel="cash", payment_ref=""))  # fmt: skip
            if not result.is_approved:
                raise RuntimeError(f"the desk could not issue card {card_no}: {result.reason}")
            label = f"{card_no} ￥{events.format_fen(opening_fen)}"  # the balance it was opened with
            self.cards.append(CardChoice(key, label, self.rig.virtual_card(card_no)))
        if self.station == "rental":
            self._take_rental_deposits()
        if self.station == "desk":
            from .devices.mifare import MifareClassic1K

            for key, uid in BLANK_CARDS:
                self.cards.append(CardChoice(key, f"blank card {uid}", MifareClassic1K(bytes.fromhex(uid))))

    def _take_rental_deposits(self) -> None:
        """Sun's staff card, and deposits Sun took at the rental desk earlier in the day (paid in cash
        and by WeChat): their vouchers are what ``v`` scans. The till syncs its seq past them at boot."""
        from protocol.messages import DepositDesk

        from .station import RENTAL_STAFF

        staff_id, name, _, card_no, pin = RENTAL_STAFF
        self.cards.append(CardChoice("u", f"{name.split()[-2]} rental staff, PIN {pin}",
                                     self.rig.virtual_card(card_no, kind="staff")))
        earlier = self.rig.link(self.terminal_id)
        earlier.sync_seq()
        for item_type, channel in RENTAL_DEPOSITS:
            deposit_fen = next(t.deposit_fen for t in rental_types() if t.item_type == item_type)
            reply = earlier.submit(lambda seq: DepositDesk(
                **common(earlier, seq, card(card_no), staff_id), item_type=item_type, deposit_fen=deposit_fen,
                channel=channel, payment_ref=""))  # fmt: skip
            if not reply.is_approved:
                raise RuntimeError(f"the desk could not take a {item_type} deposit: {reply.reason}")
            self.vouchers.append(reply.voucher)
        earlier.close()  # one connection per terminal: the till's own link takes over

    def _write_terminal_files(self) -> tuple[Path, Path]:
        """What a technician puts on the board: the bundle (kept secret) and the station config."""
        board = self.out / "terminal"
        board.mkdir(parents=True)
        bundle_path = board / "bundle.json"
        shutil.copyfile(self.rig.home.bundle_path(self.terminal_id), bundle_path)
        bundle_path.chmod(0o600)
        overrides = STATION_TERMINALS[self.station][1] | {"printer_profile": self.printer_profile}
        # How the station sells goes on the ledger (as ``fieldpos station`` sets it) and reaches the
        # till signed; station.json keeps the hardware settings (and a desk's own mode and fees).
        from .station import SALE_SETTINGS, put_sales_on_ledger

        put_sales_on_ledger(self.rig, self.terminal_id, self.rig.station_config(self.terminal_id, **overrides))
        if overrides.get("mode") not in OWN_MODES:
            overrides = {name: value for name, value in overrides.items() if name not in SALE_SETTINGS}
        config = self.rig.station_config(self.terminal_id, **overrides)
        config_path = board / "station.json"
        config_path.write_text(json.dumps(config.to_dict(), ensure_ascii=False, indent=2))
        return bundle_path, config_path

    def is_asking_for_text(self) -> bool:
        return self.app is not None and self.app.machine.state == events.State.DESK_NAME

    def _run_till(self) -> None:
        try:
            self.exit_code = Watchdog(self.app, render=render_for_display).run(self._stop)
        except Exception:  # noqa: BLE001 - boot failed: the window says so instead of dying
            log.exception("the till could not start")
            self.exit_code = 1

    def close(self) -> None:
        """Stop the till, then close its link, the hardware and the park; safe to call twice."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT_S)
            self._thread = None
        if self._outbox_reader is not None:
            self._outbox_reader.close()
            self._outbox_reader = None
        if self.app is not None:
            close_terminal(self.app)
            self.app = None
        if self.hardware is not None:
            self.hardware.close()
            self.hardware = None
        if self.rig is not None:
            self.rig.close()
            self.rig = None
        if self._ledger_lock is not None:
            self._ledger_lock.release()
            self._ledger_lock = None

    def __enter__(self) -> StationSimulator:
        return self

    def __exit__(self, *exception_info: object) -> None:
        self.close()

    # ------------------------------------------------------------ a person's hands
    @property
    def sim(self):
        return self.hardware.sim

    def press(self, key: Key) -> None:
        self.sim.keypad.press(key)

    def tap(self, choice: CardChoice) -> None:
        # A card lifted and put down again: the reader sees a new arrival even for the same card.
        self.sim.field.remove()
        self.sim.field.present(choice.card)

    def take_card_away(self) -> None:
        self.sim.field.remove()

    def scan_next(self, what: str) -> str:
        """Scan the next voucher (``what`` "voucher") or item label ("label") with the desk's scanner;
        returns what was scanned. Vouchers the desk printed since are added to the round."""
        printed = [payload for receipt in self.sim.printer.receipts for payload in receipt.qr_payloads
                   if payload.startswith("FPV1:") and payload not in self.vouchers]
        self.vouchers += list(dict.fromkeys(printed))
        codes = self.vouchers if what == "voucher" else [label for labels in RENTAL_LABELS.values() for label in labels]
        if not codes:
            return ""
        code = codes[self._scans[what] % len(codes)]
        self._scans[what] += 1
        self.sim.scanner.scan(code)
        return code

    def toggle_paper(self) -> bool:
        """Take the roll out or put it back; True when the printer is now out of paper."""
        printer = self.sim.printer
        if printer.is_paper_out:
            printer.load_paper()
        else:
            printer.set_paper_out()
        return printer.is_paper_out

    # ------------------------------------------------------------ what a person sees
    @property
    def is_running(self) -> bool:
        return self.exit_code is None

    def pending_count(self) -> int:
        """Requests in the terminal's outbox still waiting for the ledger's Result."""
        if self._outbox_reader is None:
            # Its own read-only connection: the window never joins the till's transactions.
            path = self.out / "terminal" / OUTBOX_FILE_NAME
            self._outbox_reader = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        return self._outbox_reader.execute("SELECT COUNT(*) FROM outbox WHERE result IS NULL").fetchone()[0]

    def receipt_view(self) -> tuple[str, str]:
        """(caption, text) of the paper being printed, or else the last one torn off."""
        printer = self.sim.printer
        current = printer.current_receipt
        receipts = list(printer.receipts)
        if current.text_lines or current.images:
            receipt, caption = current, "printing"
        elif receipts:
            receipt, caption = receipts[-1], f"receipt {len(receipts)}" + (" (cut short)" if receipts[-1].is_incomplete else "")
        else:
            return "no receipt yet", ""
        if receipt.text_lines:
            return caption, receipt.text
        # A raster profile prints a picture; its text is what the app laid out for the last copy.
        from terminal.receipt import render_receipt_text

        last = self.app.machine.last_receipt if self.app is not None else None
        if last is None:
            return caption, "(a picture)"
        return f"{caption}, printed as a picture", "\n".join(render_receipt_text(last.copies()[-1], printer.width_dots))

    def save_new_pictures(self) -> list[Path]:
        """Every receipt not saved yet as ``receipts/receipt-NNN.png`` (and ``.txt`` when the printer
        decoded text), and ``display.png`` if the panel changed. Returns the files written."""
        from .devices.printer import render_receipt_png

        written = []
        printer = self.sim.printer
        for number, receipt in enumerate(list(printer.receipts)[self._saved_receipts:], start=self._saved_receipts + 1):
            path = self.receipts_dir / f"receipt-{number:03d}.png"
            render_receipt_png(receipt, printer.width_dots).save(path)
            if receipt.text_lines:
                path.with_suffix(".txt").write_text(receipt.text + "\n")
            written.append(path)
            self._saved_receipts = number
        panel = self.sim.oled.to_image()
        if panel.tobytes() != self._last_display:
            self._last_display = panel.tobytes()
            partial = self.display_path.with_suffix(".png.partial")
            self.sim.oled.to_png_image().save(partial, format="PNG")
            os.replace(partial, self.display_path)  # a viewer never opens a half-written file
            written.append(self.display_path)
        return written


# ---------------------------------------------------------------- drawing
BRAILLE_BLANK = 0x2800
# Unicode braille: dot bits by (row, column) in a 2x4 cell.
BRAILLE_DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))


def braille_lines(image) -> list[str]:
    """A 1-bit image as braille characters, 2x4 pixels each: the 128x64 OLED fits 64x16 cells
    without losing a pixel, so thin strokes of Chinese characters stay."""
    width, height = image.size
    pixels = image.load()
    lines = []
    for top in range(0, height, 4):
        cells = []
        for left in range(0, width, 2):
            bits = 0
            for row, row_bits in enumerate(BRAILLE_DOTS):
                for column, bit in enumerate(row_bits):
                    x, y = left + column, top + row
                    if x < width and y < height and pixels[x, y]:
                        bits |= bit
            cells.append(chr(BRAILLE_BLANK + bits))
        lines.append("".join(cells))
    return lines


def screen_panel(show: events.Show | None) -> Panel:
    """The app's current screen as text: title, big amount, lines, footer, framed in its tone."""
    if show is None:
        return Panel(Text("starting…", style="dim"), title="display", border_style="dim")
    style = TONE_STYLES.get(show.tone, TONE_STYLES["normal"])
    parts = []
    if show.big:
        parts.append(Text(show.big, style=f"bold {style}", justify="center"))
    parts.extend(Text(line) for line in show.lines)
    title = Text(f" {show.title} ", style=f"bold reverse {style}" if show.tone == "error" else f"bold {style}")
    return Panel(Group(*parts), title=title, subtitle=Text(show.footer, style="dim"), border_style=style)


def plain_text(show: events.Show | None) -> str:
    """What :func:`screen_panel` says, without the frame (for logs and tests)."""
    if show is None:
        return ""
    return "\n".join(part for part in (show.title, show.big, *show.lines, show.footer) if part)


# ---------------------------------------------------------------- the window
class CardButton(Static):
    """A virtual card on the counter: click it to tap it on the reader."""

    class Tapped(Message):
        def __init__(self, choice: CardChoice) -> None:
            super().__init__()
            self.choice = choice

    def __init__(self, choice: CardChoice) -> None:
        # Text, not a markup string: "[s]" would be read as Rich's strike-through tag.
        super().__init__(Text(f"[{choice.key}] {choice.label}"), id=f"card-{choice.key}", classes="card")
        self.choice = choice

    def on_click(self) -> None:
        self.post_message(self.Tapped(self.choice))


class StationUI(App):
    """The window around a :class:`StationSimulator`."""

    TITLE = "fieldpos station simulator"
    ENABLE_COMMAND_PALETTE = False
    CSS = """
    #main { height: 1fr; }
    #left { width: 68; }
    #display { height: auto; min-height: 8; }
    #oled { height: auto; }
    #receipt-box { width: 1fr; border: round $secondary; border-title-color: $text; }
    #cards { height: auto; padding: 0 1; }
    .card { width: auto; margin-right: 2; color: $accent; }
    .card:hover { text-style: reverse; }
    #status { height: 1; padding: 0 1; background: $boost; }
    #help { height: auto; padding: 0 1; color: $text-muted; }
    """

    def __init__(self, station: StationSimulator):
        super().__init__()
        self.station = station
        self.cards_by_key = {choice.key: choice for choice in station.cards}
        self.display_text = ""  # what the display panel shows, as plain text
        self.status_text = ""
        self._shown: tuple | None = None

    def compose(self) -> ComposeResult:
        station = self.station
        yield Static(f" {station.terminal_id} · {station.station} · park files in {station.out}", id="title")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield Static(id="display")
                yield Static(id="oled")
            with VerticalScroll(id="receipt-box"):
                yield Static(id="receipt")
        with Horizontal(id="cards"):
            for choice in station.cards:
                yield CardButton(choice)
        yield Static(id="status")
        yield Static(HELP + (RENTAL_HELP if station.station == "rental" else ""), id="help")

    def on_mount(self) -> None:
        self.refresh_from_station()
        self.set_interval(REFRESH_S, self.refresh_from_station)

    # ------------------------------------------------------------ input
    def on_key(self, event: KeyEvent) -> None:
        key = event.key
        if self.station.is_asking_for_text() and (len(key) == 1 and key.isalpha() or key == "space"):
            # The desk's keyboard: while the till asks for a name, letters type instead of tapping cards.
            self.station.press(Key.for_character(" " if key == "space" else key.lower()))
        elif key in KEYPAD_KEYS:
            self.station.press(KEYPAD_KEYS[key])
        elif key in self.cards_by_key:
            self.station.tap(self.cards_by_key[key])
        elif key in ("v", "i") and self.station.station == "rental":
            scanned = self.station.scan_next("voucher" if key == "v" else "label")
            self.notify(f"scanned {scanned[:24]}…" if len(scanned) > 24 else f"scanned {scanned or 'nothing'}", timeout=2)
        elif key == "x":
            self.station.take_card_away()
        elif key == "p":
            is_out = self.station.toggle_paper()
            self.notify("paper roll taken out" if is_out else "paper roll loaded", timeout=2)
        elif key == "q":
            self.exit()
        else:
            return
        event.stop()

    def on_card_button_tapped(self, message: CardButton.Tapped) -> None:
        self.station.tap(message.choice)

    # ------------------------------------------------------------ output
    def refresh_from_station(self) -> None:
        station = self.station
        if station.hardware is None:
            return
        station.save_new_pictures()
        app = station.app
        show = app.screen if app is not None else None
        caption, receipt_text = station.receipt_view()
        panel = station.sim.oled.to_image()
        shown = (show, caption, receipt_text, panel.tobytes())
        if shown != self._shown:
            self._shown = shown
            self.display_text = plain_text(show)
            self.query_one("#display", Static).update(screen_panel(show))
            oled = Text("\n".join(braille_lines(panel)), style="bright_cyan")
            self.query_one("#oled", Static).update(Panel(oled, title="OLED 128x64", border_style="dim", expand=False))
            self.query_one("#receipt-box").border_title = caption
            self.query_one("#receipt", Static).update(Text(receipt_text))
        self._update_status()

    def _update_status(self) -> None:
        station, app = self.station, self.station.app
        if not station.is_running:
            status = f"till stopped (exit {station.exit_code}): see the log"
        elif app is None or app.screen is None:
            status = "starting…"
        else:
            online = "ONLINE" if app.link.is_connected else "OFFLINE"
            paper = "OUT" if station.sim.printer.is_paper_out else "ok"
            if station.sim.printer.command_errors:  # bytes the printer could not print: shown, never dropped
                paper += f", {len(station.sim.printer.command_errors)} ESC/POS errors (see the log)"
            status = (f"{app.machine.state.value} · {online} · outbox pending {station.pending_count()} · "
                      f"paper {paper} · {len(station.sim.printer.receipts)} receipts → {station.receipts_dir}")
        if status != self.status_text:
            self.status_text = status
            self.query_one("#status", Static).update(status)


def run_station_ui(out=DEFAULT_OUT, *, station: str = "fishing", printer_profile: str = DEFAULT_PRINTER_PROFILE) -> int:
    """``fieldpos terminal run --sim``: build the park, open the window, tidy up when it closes."""
    out = Path(out)
    # Before the log file goes in: only a folder the simulator made (or a new, empty one) is used.
    if not (out / SIM_MARKER).is_file():
        claim_output_dir(out, marker=SIM_MARKER)
    # Log lines written to the terminal would tear the window: they go to a file instead.
    log_path = out / "station.log"
    logging.basicConfig(filename=log_path, level=logging.INFO, force=True,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    print(f"building a park in {out} (broker, ledger, front desk, visitor cards)…")
    with StationSimulator(out, station=station, printer_profile=printer_profile).start() as simulated:
        StationUI(simulated).run()
        code = simulated.exit_code or 0
    print(f"receipts: {simulated.receipts_dir}  display: {simulated.display_path}  log: {log_path}")
    return code
