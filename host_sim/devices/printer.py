"""An ESC/POS thermal printer on a pty: the real driver opens ``port_name`` with pyserial and talks to it.

Bytes go through ``host_sim.devices.escpos_parser``; the events move paper. What lands on paper is kept as
receipts (split at each cut; a fault ends one early, marked incomplete), each with its decoded text
lines, raster images and QR payloads, and can be rendered to PNG. Status queries (DLE EOT n) are
answered with the bytes the Epson reference defines. Status constants are written out here again,
not imported from the driver, so a wrong bit in the driver cannot agree with itself in a test.

Faults: paper out (status says so; print bytes are dropped, status queries still answered like a
real printer's real-time commands), paper near end, cover open, unresponsive (cable pulled: no
answers at all), paper that runs out after N more lines, and power loss after N more bytes (the rest
is dropped; modes and the unprinted line are lost).

Use ``feed(bytes)`` directly, or ``start()`` it on a pty::

    with EmulatedPrinter(width_dots=384) as emulator:
        printer = emulator.open_driver(PROFILE_58MM_RASTER)  # EscPosPrinter(open_serial(port_name), ...)
"""

from __future__ import annotations

import os
import select
import threading
import tty
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Union

from . import escpos_parser as events

if TYPE_CHECKING:
    from PIL.Image import Image

# DLE EOT replies (Epson reference): fixed bits 1 and 4 set in every reply.
STATUS_BASE = 0x12
STATUS_OFFLINE = 0x08  # DLE EOT 1 bit 3
STATUS_COVER_OPEN = 0x04  # DLE EOT 2 bit 2
STATUS_STOPPED_BY_PAPER_END = 0x20  # DLE EOT 2 bit 5
STATUS_PAPER_NEAR_END = 0x0C  # DLE EOT 4 bits 2, 3
STATUS_PAPER_END = 0x60  # DLE EOT 4 bits 5, 6

LINE_ADVANCE_DOTS = 30  # Font A (24 dots) plus the default 6-dot gap: TM-T20 line spacing 3.75 mm
QR_DEFAULT_MODULE_DOTS = 3  # GS ( k fn 167 default
QR_TYPICAL_SIDE_MODULES = 33  # version 2 (25 modules) + quiet zone: for paper accounting only
READ_CHUNK_BYTES = 4096
DEFAULT_WAIT_S = 5.0

# PNG rendering: an ASCII character fills a 12-dot Font A cell, a Chinese one a 24-dot cell.
ASCII_CELL_DOTS = 12
CHINESE_CELL_DOTS = 24
ASCII_FONT_PX = 20  # WenQuanYi Micro Hei Mono's Latin advance is 0.6 em: 12 dots at 20 px
CHINESE_FONT_PX = 24


@dataclass(frozen=True, slots=True)
class PrintedLine:
    text: str
    align: int = 0
    is_bold: bool = False
    width_multiplier: int = 1
    height_multiplier: int = 1


@dataclass(frozen=True, slots=True)
class PrintedImage:
    width_bytes: int
    height_dots: int
    data: bytes  # packed rows, 1 = black
    align: int = 0

    @property
    def width_dots(self) -> int:
        return self.width_bytes * 8

    def to_image(self) -> Image:
        """As a Pillow mode "1" image (the mode the driver was given)."""
        from PIL import Image as PillowImage

        return PillowImage.frombytes("1", (self.width_dots, self.height_dots), self.data, "raw", "1;I")


@dataclass(frozen=True, slots=True)
class PrintedQr:
    payload: str
    module_dots: int
    error_correction: int  # 48 L, 49 M, 50 Q, 51 H
    align: int = 0


@dataclass(frozen=True, slots=True)
class PrintedFeed:
    dots: int


Element = Union[PrintedLine, PrintedImage, PrintedQr, PrintedFeed]


@dataclass(slots=True)
class EmulatedReceipt:
    """One piece of paper: ended by a cut, or torn off after a fault (``is_incomplete``)."""

    elements: list[Element] = field(default_factory=list)
    is_cut: bool = False
    is_incomplete: bool = False

    @property
    def text_lines(self) -> list[str]:
        return [element.text for element in self.elements if isinstance(element, PrintedLine)]

    @property
    def text(self) -> str:
        return "\n".join(self.text_lines)

    @property
    def images(self) -> list[PrintedImage]:
        return [element for element in self.elements if isinstance(element, PrintedImage)]

    @property
    def qr_payloads(self) -> list[str]:
        return [element.payload for element in self.elements if isinstance(element, PrintedQr)]


@dataclass(slots=True)
class _PrintModes:
    """What ESC @ resets."""

    align: int = 0
    is_bold: bool = False
    width_multiplier: int = 1
    height_multiplier: int = 1
    qr_module_dots: int = QR_DEFAULT_MODULE_DOTS
    qr_error_correction: int = 48
    qr_data: bytes | None = None


class EmulatedPrinter:
    def __init__(self, *, width_dots: int = 384, has_cutter: bool = True, is_chinese_mode_default: bool = True):
        self.width_dots = width_dots
        self.has_cutter = has_cutter
        self.is_chinese_mode_default = is_chinese_mode_default
        self.receipts: list[EmulatedReceipt] = []
        self.unknown_commands: list[bytes] = []
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
        """The roll ends after ``lines`` more text lines' worth of paper (a raster counts its rows)."""
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
            replies += self._apply(event)
        return bytes(replies)

    def _apply(self, event: events.Event) -> bytes:
        if isinstance(event, events.StatusQuery):
            return self._status_reply(event.kind)
        if isinstance(event, events.Unknown):
            self.unknown_commands.append(event.data)
            return b""
        if self.is_paper_out or self.is_cover_open:
            return b""  # a stopped printer drops what it cannot print
        handler = _HANDLERS.get(type(event))
        if handler:
            handler(self, event)
        return b""

    def _status_reply(self, kind: int) -> bytes:
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

    # --- event handlers ---

    def _initialize(self, _event: events.Initialize) -> None:
        self._modes = _PrintModes()
        self._line_text = ""  # ESC @ clears the print buffer

    def _text(self, event: events.Text) -> None:
        if not self._line_text:
            self._line_modes = (self._modes.align, self._modes.is_bold, self._modes.width_multiplier, self._modes.height_multiplier)
        self._line_text += event.text

    def _line_feed(self, _event: object) -> None:
        if not self._line_text:
            self._line_modes = (self._modes.align, self._modes.is_bold, self._modes.width_multiplier, self._modes.height_multiplier)
        align, is_bold, width, height = self._line_modes
        if self._use_paper(LINE_ADVANCE_DOTS * height):
            self._receipt.elements.append(PrintedLine(self._line_text, align, is_bold, width, height))
        self._line_text = ""
        self._check_paper_end()

    def _feed_lines(self, event: events.FeedLines) -> None:
        if self._line_text:
            self._line_feed(event)
        if self._use_paper(LINE_ADVANCE_DOTS * event.count):
            self._receipt.elements.append(PrintedFeed(LINE_ADVANCE_DOTS * event.count))
        self._check_paper_end()

    def _raster(self, event: events.RasterImage) -> None:
        rows = event.height_dots
        if self._paper_left_dots is not None:
            rows = min(rows, self._paper_left_dots)
            self._paper_left_dots -= rows
        data = event.data[: rows * event.width_bytes]
        previous = self._receipt.elements[-1] if self._receipt.elements else None
        # Drivers send one image in bands; consecutive bands of one width are one picture on paper.
        if isinstance(previous, PrintedImage) and previous.width_bytes == event.width_bytes:
            self._receipt.elements[-1] = PrintedImage(
                event.width_bytes, previous.height_dots + rows, previous.data + data, previous.align
            )
        elif rows:
            self._receipt.elements.append(PrintedImage(event.width_bytes, rows, data, self._modes.align))
        self._check_paper_end()

    def _qr_setting(self, event: events.QrSetting) -> None:
        if event.function == 67:
            self._modes.qr_module_dots = event.value
        elif event.function == 69:
            self._modes.qr_error_correction = event.value

    def _qr_store(self, event: events.QrStore) -> None:
        self._modes.qr_data = event.data

    def _qr_print(self, _event: events.QrPrint) -> None:
        if self._modes.qr_data is None:
            return  # fn 181 with nothing stored prints nothing
        if self._use_paper(self._modes.qr_module_dots * QR_TYPICAL_SIDE_MODULES):
            payload = self._modes.qr_data.decode("utf-8", errors="replace")
            self._receipt.elements.append(
                PrintedQr(payload, self._modes.qr_module_dots, self._modes.qr_error_correction, self._modes.align)
            )
        self._check_paper_end()

    def _cut(self, _event: events.Cut) -> None:
        if not self.has_cutter:
            return
        if self._line_text:
            self._line_feed(_event)
        self._receipt.is_cut = True
        self.receipts.append(self._receipt)
        self._receipt = EmulatedReceipt()

    def _set_alignment(self, event: events.SetAlignment) -> None:
        self._modes.align = event.align

    def _set_bold(self, event: events.SetBold) -> None:
        self._modes.is_bold = event.is_bold

    def _set_size(self, event: events.SetCharacterSize) -> None:
        self._modes.width_multiplier = event.width_multiplier
        self._modes.height_multiplier = event.height_multiplier

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
        if self._receipt.elements:
            self._receipt.is_incomplete = True
            self.receipts.append(self._receipt)
        self._receipt = EmulatedReceipt()

    def _lose_power(self) -> None:
        self._tear_off_incomplete()
        self.is_powered = False
        self._bytes_until_power_loss = None
        self._reset_state()

    def _reset_state(self) -> None:
        self._parser = events.EscPosParser(is_chinese_mode_default=self.is_chinese_mode_default)
        self._modes = _PrintModes()
        self._line_text = ""
        self._line_modes = (0, False, 1, 1)
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


_HANDLERS: dict[type, Callable[[EmulatedPrinter, events.Event], None]] = {
    events.Initialize: EmulatedPrinter._initialize,
    events.Text: EmulatedPrinter._text,
    events.LineFeed: EmulatedPrinter._line_feed,
    events.FeedLines: EmulatedPrinter._feed_lines,
    events.RasterImage: EmulatedPrinter._raster,
    events.QrSetting: EmulatedPrinter._qr_setting,
    events.QrStore: EmulatedPrinter._qr_store,
    events.QrPrint: EmulatedPrinter._qr_print,
    events.Cut: EmulatedPrinter._cut,
    events.SetAlignment: EmulatedPrinter._set_alignment,
    events.SetBold: EmulatedPrinter._set_bold,
    events.SetCharacterSize: EmulatedPrinter._set_size,
}


# --- rendering a receipt as it would look on paper -------------------------------------------------


def render_receipt_png(receipt: EmulatedReceipt, width_dots: int) -> Image:
    """Paper ``width_dots`` wide: text in the printer's cells, rasters pasted, QR codes drawn."""
    from PIL import Image as PillowImage
    from PIL import ImageDraw

    from terminal.receipt import render_qr_image

    pictures: dict[int, Image] = {}
    for index, element in enumerate(receipt.elements):
        if isinstance(element, PrintedImage):
            pictures[index] = element.to_image()
        elif isinstance(element, PrintedQr):
            pictures[index] = render_qr_image(element.payload, module_dots=element.module_dots)
    heights = [_element_height(element, pictures.get(index)) for index, element in enumerate(receipt.elements)]
    paper = PillowImage.new("1", (width_dots, max(1, sum(heights))), 1)
    draw = ImageDraw.Draw(paper)
    draw.fontmode = "1"
    top = 0
    for index, element in enumerate(receipt.elements):
        if isinstance(element, PrintedLine):
            _draw_printed_line(draw, element, top, width_dots)
        elif index in pictures:
            picture = pictures[index]
            paper.paste(picture, (_aligned_x(element.align, picture.width, width_dots), top))
        top += heights[index]
    return paper


def _element_height(element: Element, picture: Image | None) -> int:
    if isinstance(element, PrintedLine):
        return LINE_ADVANCE_DOTS * element.height_multiplier
    if isinstance(element, PrintedFeed):
        return element.dots
    return picture.height


def _aligned_x(align: int, content_width: int, width_dots: int) -> int:
    if align == 1:
        return max(0, (width_dots - content_width) // 2)
    if align == 2:
        return max(0, width_dots - content_width)
    return 0


def _draw_printed_line(draw, line: PrintedLine, top: int, width_dots: int) -> None:
    from terminal.fonts import load_font

    ascii_font = load_font(ASCII_FONT_PX * line.height_multiplier)
    chinese_font = load_font(CHINESE_FONT_PX * line.height_multiplier)
    cells = [
        (character, (ASCII_CELL_DOTS if ord(character) < 0x80 else CHINESE_CELL_DOTS) * line.width_multiplier)
        for character in line.text
    ]
    x = _aligned_x(line.align, sum(width for _, width in cells), width_dots)
    for character, width in cells:
        font = ascii_font if ord(character) < 0x80 else chinese_font
        for offset in (0, 1) if line.is_bold else (0,):
            draw.text((x + offset, top), character, font=font, fill=0)
        x += width
