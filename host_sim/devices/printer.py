"""An ESC/POS thermal printer on a pty: the real driver opens ``port_name`` with pyserial and talks to it.

Bytes go through ``escpos_parser`` (commands by their documented length) and ``escpos_engine`` (print
modes, lines, pictures); this module owns the device: paper, faults, status replies and the record of
what happened. What lands on paper is kept as receipts (split at each cut; a fault ends one early,
marked incomplete), each with its bands of dots (``render_receipt_png``) and a log of what they say:
lines of styled text runs, images, barcodes, QR codes. Drawer pulses, beeps, cuts and status queries
are ``events``; every command the parser or engine could not handle is in ``command_errors`` and
logged. Status constants are written out here again, not imported from the driver, so a wrong bit
in the driver cannot agree with itself in a test.

Faults: paper out (status says so; print bytes are dropped, status queries still answered like a
real printer's real-time commands), paper near end, cover open, unresponsive (cable pulled: no
answers at all), paper that runs out after N more lines, and power loss after N more bytes (the rest
is dropped; modes and the unprinted line are lost).

Use ``feed(bytes)`` directly, or ``start()`` it on a pty::

    with EmulatedPrinter(width_dots=384) as emulator:
        printer = emulator.open_driver(PROFILE_58MM_RASTER)  # EscPosPrinter(open_serial(port_name), ...)
"""

from __future__ import annotations

import logging
import os
import select
import threading
import tty
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from . import escpos_engine as engine
from .escpos_engine import (  # noqa: F401  (re-exported: tests and the sim read receipts through these)
    Element,
    PrintedBarcode,
    PrintedFeed,
    PrintedImage,
    PrintedLine,
    PrintedQr,
    TextRun,
    TextStyle,
)
from .escpos_parser import EPSON_CODE_PAGES, Command, CommandError, EscPosParser

if TYPE_CHECKING:
    from PIL.Image import Image

    from terminal.printer_profiles import PrinterProfile

log = logging.getLogger(__name__)

# DLE EOT replies (Epson reference): fixed bits 1 and 4 set in every reply.
STATUS_BASE = 0x12
STATUS_OFFLINE = 0x08  # DLE EOT 1 bit 3
STATUS_COVER_OPEN = 0x04  # DLE EOT 2 bit 2
STATUS_STOPPED_BY_PAPER_END = 0x20  # DLE EOT 2 bit 5
STATUS_PAPER_NEAR_END = 0x0C  # DLE EOT 4 bits 2, 3
STATUS_PAPER_END = 0x60  # DLE EOT 4 bits 5, 6
# GS r 1 (paper sensor status, not real-time): bits 0-1 near end, bits 2-3 paper end.
PAPER_SENSOR_NEAR_END = 0x03
PAPER_SENSOR_END = 0x0C

LINE_ADVANCE_DOTS = engine.DEFAULT_LINE_SPACING_DOTS  # one text line of paper, for run_out_of_paper_after_lines
READ_CHUNK_BYTES = 4096
DEFAULT_WAIT_S = 5.0
MAX_EVENTS = 10_000  # events and errors kept (oldest dropped): a long sim run must not grow without bound


@dataclass(frozen=True, slots=True)
class PrinterEvent:
    kind: str  # "cut", "drawer pulse", "beep", "status query"
    detail: str
    offset: int  # in the byte stream since power-on


@dataclass(slots=True)
class EmulatedReceipt:
    """One piece of paper: ended by a cut, or torn off after a fault (``is_incomplete``)."""

    elements: list[Element] = field(default_factory=list)
    bands: list[Image] = field(default_factory=list)  # the dots, top to bottom, paper width each
    is_cut: bool = False
    is_incomplete: bool = False

    @property
    def lines(self) -> list[PrintedLine]:
        return [element for element in self.elements if isinstance(element, PrintedLine)]

    @property
    def text_lines(self) -> list[str]:
        return [line.text for line in self.lines]

    @property
    def text(self) -> str:
        return "\n".join(self.text_lines)

    @property
    def images(self) -> list[PrintedImage]:
        return [element for element in self.elements if isinstance(element, PrintedImage)]

    @property
    def barcodes(self) -> list[PrintedBarcode]:
        return [element for element in self.elements if isinstance(element, PrintedBarcode)]

    @property
    def qr_payloads(self) -> list[str]:
        return [element.payload for element in self.elements if isinstance(element, PrintedQr)]

    @property
    def height_dots(self) -> int:
        return sum(band.height for band in self.bands)


class EmulatedPrinter:
    @classmethod
    def for_profile(cls, profile: PrinterProfile) -> EmulatedPrinter:
        """The printer a profile describes: its paper width, cutter, code pages, fonts, Chinese mode."""
        return cls(
            width_dots=profile.width_dots,
            has_cutter=profile.has_cutter,
            is_chinese_mode_default=profile.has_chinese_font,
            code_pages=dict(profile.code_pages),
            fonts=profile.fonts,
        )

    def __init__(
        self,
        *,
        width_dots: int = 384,
        has_cutter: bool = True,
        is_chinese_mode_default: bool = True,
        code_pages: dict[int, str] | None = None,
        fonts: tuple[str, ...] = ("A", "B"),
    ):
        self.width_dots = width_dots
        self.has_cutter = has_cutter
        self.is_chinese_mode_default = is_chinese_mode_default
        self.code_pages = EPSON_CODE_PAGES if code_pages is None else code_pages
        self.fonts = fonts
        self.receipts: list[EmulatedReceipt] = []
        self.command_errors: list[CommandError] = []
        self.events: list[PrinterEvent] = []
        self.bytes_received = 0
        self.is_paper_out = False
        self.is_paper_near_end = False
        self.is_cover_open = False
        self.is_unresponsive = False
        self.is_powered = True
        self._paper_left_dots: int | None = None
        self._bytes_until_power_loss: int | None = None
        self._condition = threading.Condition(threading.RLock())
        self._reset_state()
        self.port_name: str | None = None
        self._thread: threading.Thread | None = None

    # --- faults (call from the test) ---

    def set_paper_out(self, is_out: bool = True) -> None:
        with self._condition:
            if is_out:
                self._tear_off_incomplete()
            self.is_paper_out = is_out
            self._paper_left_dots = None

    def load_paper(self) -> None:
        self.set_paper_out(False)
        self.is_paper_near_end = False

    def set_paper_near_end(self, is_near_end: bool = True) -> None:
        self.is_paper_near_end = is_near_end

    def set_cover_open(self, is_open: bool = True) -> None:
        self.is_cover_open = is_open

    def set_unresponsive(self, is_unresponsive: bool = True) -> None:
        """Cable pulled: bytes are lost both ways, the printer keeps its state."""
        self.is_unresponsive = is_unresponsive

    def run_out_of_paper_after_lines(self, lines: int) -> None:
        """The roll ends after ``lines`` more default text lines' worth of paper (a picture counts its rows)."""
        with self._condition:
            self._paper_left_dots = lines * LINE_ADVANCE_DOTS

    def lose_power_after_bytes(self, byte_count: int) -> None:
        with self._condition:
            self._bytes_until_power_loss = byte_count

    def power_on(self) -> None:
        with self._condition:
            self.is_powered = True
            self._reset_state()

    # --- bytes in, replies out ---

    def feed(self, data: bytes) -> bytes:
        """Process bytes as the printer receives them; return what it answers."""
        with self._condition:
            replies = bytearray()
            self.bytes_received += len(data)
            if self._bytes_until_power_loss is not None and self.is_powered:
                before_loss = data[: self._bytes_until_power_loss]
                self._bytes_until_power_loss -= len(before_loss)
                replies += self._process(before_loss)
                if self._bytes_until_power_loss == 0:
                    self._lose_power()
            else:
                replies += self._process(data)
            self._condition.notify_all()
            return bytes(replies)

    @property
    def is_inside_command(self) -> bool:
        """Waiting for the rest of a command: the next bytes are its data, not text (like a real printer)."""
        with self._condition:
            return self._parser.is_inside_command

    @property
    def current_receipt(self) -> EmulatedReceipt:
        """What has been printed since the last cut (all of it, on a printer without a cutter)."""
        with self._condition:
            return self._receipt

    def wait_until(self, predicate: Callable[[EmulatedPrinter], bool], timeout_s: float = DEFAULT_WAIT_S) -> bool:
        with self._condition:
            return self._condition.wait_for(lambda: predicate(self), timeout_s)

    def _process(self, data: bytes) -> bytes:
        if not self.is_powered or self.is_unresponsive:
            return b""
        replies = bytearray()
        for event in self._parser.receive_data(data):
            if isinstance(event, CommandError):
                self._report(event)
                continue
            is_real_time = isinstance(event, Command) and event.name in ("DLE EOT", "DLE ENQ", "DLE DC4")
            if (self.is_paper_out or self.is_cover_open) and not is_real_time:
                continue  # a stopped printer drops what it cannot print; real-time commands still act
            for output in self._engine.apply(event):
                replies += self._take(output)
        return bytes(replies)

    def _take(self, output: engine.Output) -> bytes:
        if isinstance(output, engine.Band):
            self._print_band(output)
        elif isinstance(output, engine.CutPaper):
            self._record("cut", "partial" if output.is_partial else "full", output.offset)
            self._cut()
        elif isinstance(output, engine.Signal):
            self._record(output.kind, output.detail, output.offset)
        elif isinstance(output, engine.StatusRequest):
            self._record("status query", f"{output.command} {output.kind}", output.offset)
            return self._status_reply(output.command, output.kind)
        elif isinstance(output, CommandError):
            self._report(output)
        return b""

    def _report(self, error: CommandError) -> None:
        log.warning("printer: %s", error)
        self.command_errors.append(error)
        del self.command_errors[:-MAX_EVENTS]

    def _record(self, kind: str, detail: str, offset: int) -> None:
        self.events.append(PrinterEvent(kind, detail, offset))
        del self.events[:-MAX_EVENTS]

    def _print_band(self, band: engine.Band) -> None:
        height = band.image.height
        if self._paper_left_dots is not None:
            if self._paper_left_dots <= 0:
                return
            if height > self._paper_left_dots:  # the roll ends inside this band: the rest is lost
                height = self._paper_left_dots
            self._paper_left_dots -= height
        receipt = self._receipt
        element = band.element
        if height < band.image.height:
            receipt.bands.append(band.image.crop((0, 0, self.width_dots, height)))
            if isinstance(element, PrintedImage):  # the rows that made it onto the paper
                element = replace(element, height_dots=height, data=element.data[: height * element.width_bytes])
        else:
            receipt.bands.append(band.image)
        if element is not None:
            merged = engine.merge_element(receipt.elements[-1] if receipt.elements else None, element)
            if merged is not None:
                receipt.elements[-1] = merged
            else:
                receipt.elements.append(element)
        self._check_paper_end()

    def _status_reply(self, command: str, kind: int) -> bytes:
        if command == "GS r":
            if kind % 48 != 1:
                return b"\x00"  # GS r 2: drawer kick-out connector low (no drawer open)
            return bytes([(PAPER_SENSOR_NEAR_END if self.is_paper_near_end or self.is_paper_out else 0)
                          | (PAPER_SENSOR_END if self.is_paper_out else 0)])  # fmt: skip
        is_offline = self.is_paper_out or self.is_cover_open
        replies = {
            1: STATUS_BASE | (STATUS_OFFLINE if is_offline else 0),
            2: STATUS_BASE
            | (STATUS_COVER_OPEN if self.is_cover_open else 0)
            | (STATUS_STOPPED_BY_PAPER_END if self.is_paper_out else 0),
            3: STATUS_BASE,
            4: STATUS_BASE
            | (STATUS_PAPER_NEAR_END if self.is_paper_near_end or self.is_paper_out else 0)
            | (STATUS_PAPER_END if self.is_paper_out else 0),
        }
        return bytes([replies[kind]]) if kind in replies else b""

    def _cut(self) -> None:
        if not self.has_cutter:
            return
        self._receipt.is_cut = True
        self.receipts.append(self._receipt)
        self._receipt = EmulatedReceipt()

    # --- paper and power ---

    def _use_paper(self, dots: int) -> bool:
        """Take ``dots`` of paper; False if there was none left to print on."""
        if self._paper_left_dots is None:
            return True
        if self._paper_left_dots <= 0:
            return False
        self._paper_left_dots -= dots
        return True

    def _check_paper_end(self) -> None:
        if self._paper_left_dots is not None and self._paper_left_dots <= 0:
            self.set_paper_out(True)

    def _tear_off_incomplete(self) -> None:
        """What is on paper so far becomes a receipt of its own, marked incomplete."""
        if self._receipt.elements or self._receipt.bands:
            self._receipt.is_incomplete = True
            self.receipts.append(self._receipt)
        self._receipt = EmulatedReceipt()

    def _lose_power(self) -> None:
        self._tear_off_incomplete()
        self.is_powered = False
        self._bytes_until_power_loss = None
        self._reset_state()

    def _reset_state(self) -> None:
        self._parser = EscPosParser(is_chinese_mode_default=self.is_chinese_mode_default, code_pages=self.code_pages)
        self._engine = engine.PrintEngine(self.width_dots, fonts=self.fonts)
        self._receipt = EmulatedReceipt()

    # --- pty ---

    def start(self) -> EmulatedPrinter:
        """Open a pty and answer on it from a reader thread; the driver opens ``port_name``."""
        self._master_fd, self._slave_fd = os.openpty()
        # Raw: no echo, no CR/LF translation, no XON/XOFF or signal characters eaten from the stream.
        tty.setraw(self._slave_fd)
        self.port_name = os.ttyname(self._slave_fd)  # we keep the slave open, so reads never get EIO
        self._wake_read_fd, self._wake_write_fd = os.pipe()
        self._thread = threading.Thread(target=self._serve, name="emulated-printer", daemon=True)
        self._thread.start()
        return self

    def open_driver(self, profile, **driver_options):
        """The real driver (``EscPosPrinter``) on this emulator's pty: what ``FIELDPOS_HW=sim`` uses."""
        from terminal.drivers.escpos import EscPosPrinter, open_serial

        if self.port_name is None:
            self.start()
        return EscPosPrinter(open_serial(self.port_name), profile, **driver_options)

    def close(self) -> None:
        if self._thread is None:
            return
        os.write(self._wake_write_fd, b"x")
        self._thread.join()
        self._thread = None
        for fd in (self._master_fd, self._slave_fd, self._wake_read_fd, self._wake_write_fd):
            os.close(fd)

    def __enter__(self) -> EmulatedPrinter:
        return self.start()

    def __exit__(self, *exception_info: object) -> None:
        self.close()

    def _serve(self) -> None:
        while True:
            readable, _, _ = select.select([self._master_fd, self._wake_read_fd], [], [])
            if self._wake_read_fd in readable:
                return
            try:
                data = os.read(self._master_fd, READ_CHUNK_BYTES)
            except OSError:
                return
            reply = self.feed(data)
            if reply:
                os.write(self._master_fd, reply)

    # --- PNG ---

    def save_pngs(self, directory: Path) -> list[Path]:
        """Each receipt as ``receipt-NNN.png`` in ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = []
        for number, receipt in enumerate(list(self.receipts), start=1):
            path = directory / f"receipt-{number:03d}.png"
            render_receipt_png(receipt, self.width_dots).save(path)
            paths.append(path)
        return paths


# --- rendering a receipt as it came out of the printer ---------------------------------------------


def render_receipt_png(receipt: EmulatedReceipt, width_dots: int) -> Image:
    """The receipt's bands of dots, top to bottom, on paper ``width_dots`` wide."""
    from PIL import Image as PillowImage

    paper = PillowImage.new("1", (width_dots, max(1, receipt.height_dots)), 1)
    top = 0
    for band in receipt.bands:
        paper.paste(band, (0, top))
        top += band.height
    return paper
