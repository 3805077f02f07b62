"""An emulated SSD1306 128x64 OLED controller on I2C: one ``write(bytes)`` is one I2C transaction.

It parses what a driver sends the way the controller does (SSD1306 datasheet rev. 1.1): control
bytes (8.1.5.2: Co and D/C#), commands with their arguments (section 9; an argument may arrive in a
later transaction), and GDDRAM data placed by the addressing mode in force (10.1.3: page,
horizontal or vertical) with the column/page window and auto-increment. It models the state that
decides what the panel shows: display on/off, charge pump, segment remap, COM scan direction and
pin configuration, multiplex ratio, start line, offset, inverse and entire-display-on. Constants are
written out here again, not imported from the driver, so a wrong byte in the driver cannot agree
with itself in a test.

What it does not model as the chip does, on purpose: with ``is_strict`` (the default) GDDRAM data
sent while the display is off (before the set-up sequence, or after a power cycle) is refused with
the error i2c-dev raises for a missing acknowledge (``OSError`` EREMOTEIO), and counted. A real
SSD1306 stores such data silently; refusing it makes "drew a screen nobody can see" visible to the
driver and the test. ``is_strict=False`` behaves like the chip. Power-on RAM is random, as on the
chip, so a driver that assumes a blank panel fails the pixel checks.

Driver mistakes a real chip would punish silently (a window set in page addressing mode, RAM writes
during a scroll) are appended to ``mistakes``; bytes that break the I2C framing itself (a control
byte with its low six bits set) raise ``ValueError``.

Wiring the real driver to it::

    oled = EmulatedSsd1306()
    display = oled.open_driver()            # Ssd1306Display(oled)
    display.show(frame)
    oled.save_png("screen.png")
"""

from __future__ import annotations

import errno
import random
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.Image import Image

WIDTH = 128
HEIGHT = 64
PAGE_COUNT = 8
RAM_ROWS = 64

# Control byte (8.1.5.2): bit 7 Co (1: one byte follows, then another control byte), bit 6 D/C#.
CONTINUATION_BIT = 0x80
DATA_BIT = 0x40
CONTROL_RESERVED_BITS = 0x3F

# Commands taking arguments, and how many (section 9 command table).
ARGUMENT_COUNTS = {
    0x20: 1, 0x21: 2, 0x22: 2, 0x26: 6, 0x27: 6, 0x29: 5, 0x2A: 5, 0x81: 1, 0x8D: 1, 0xA3: 2,
    0xA8: 1, 0xD3: 1, 0xD5: 1, 0xD9: 1, 0xDA: 1, 0xDB: 1,
}  # fmt: skip
SINGLE_BYTE_COMMANDS = {0x2E, 0x2F, 0xA0, 0xA1, 0xA4, 0xA5, 0xA6, 0xA7, 0xAE, 0xAF, 0xC0, 0xC8, 0xE3}
HORIZONTAL, VERTICAL, PAGE = 0, 1, 2  # 10.1.3 memory addressing modes; PAGE is the reset value
CHARGE_PUMP_ENABLE_BIT = 0x04  # 8Dh argument bit 2 (appendix "Charge Pump Regulator")
COM_PINS_ALTERNATIVE_BIT = 0x10  # DAh argument bit 4 (10.1.18)
RESET_CONTRAST = 0x7F  # 10.1.7
MISTAKE_LOG_LIMIT = 100

# PNG look: lit pixels in the colour of a common module.
PALETTES = {
    "blue": ((8, 10, 18), (120, 200, 255)),
    "white": ((8, 8, 8), (235, 240, 245)),
    "amber": ((12, 8, 4), (255, 176, 40)),
}
# Two-colour modules: the top 16 rows are yellow, the rest blue.
YELLOW_BAND_ROWS = 16
YELLOW = (255, 220, 60)
PIXEL_GAP_MIN_SCALE = 6


class EmulatedSsd1306:
    """The controller and its panel. ``write`` takes one I2C transaction (bytes after the address)."""

    panel_rows = HEIGHT  # the glass; a 128x32 module's controller has the same 64-row RAM

    def __init__(self, *, is_strict: bool = True, seed: int = 1306):
        self.is_strict = is_strict
        self._random = random.Random(seed)
        self.transaction_count = 0
        self.bytes_received = 0
        self.command_bytes_received = 0
        self.data_bytes_received = 0
        self.data_bytes_per_page = [0] * PAGE_COUNT
        self.refused_transaction_count = 0
        self.refused_data_bytes = 0
        self.largest_transaction_bytes = 0
        self.unknown_commands: list[int] = []
        self.mistakes: deque[str] = deque(maxlen=MISTAKE_LOG_LIMIT)
        self.is_unresponsive = False
        self.is_closed = False
        self.power_cycle()

    # --- what a test does ---

    def power_cycle(self) -> None:
        """Lose power and get it back (a loose supply wire): reset state, random RAM."""
        self.ram = [bytearray(self._random.randbytes(WIDTH)) for _ in range(PAGE_COUNT)]
        self._reset_registers()

    def set_unresponsive(self, is_unresponsive: bool = True) -> None:
        """Cable pulled: no transaction is acknowledged."""
        self.is_unresponsive = is_unresponsive

    # --- the bus ---

    def write(self, transaction: bytes) -> int:
        if self.is_closed:
            raise OSError(errno.EBADF, "Bad file descriptor")
        if self.is_unresponsive:
            raise OSError(errno.EREMOTEIO, "Remote I/O error (no acknowledge)")
        data = bytes(transaction)
        self.transaction_count += 1
        self.bytes_received += len(data)
        self.largest_transaction_bytes = max(self.largest_transaction_bytes, len(data))
        index = 0
        while index < len(data):
            control = data[index]
            if control & CONTROL_RESERVED_BITS:
                raise ValueError(f"control byte {control:#04x} has bits 5..0 set; they must be 0 (datasheet 8.1.5.2)")
            payload = data[index + 1 : index + 2] if control & CONTINUATION_BIT else data[index + 1 :]
            index += 1 + len(payload)
            if control & DATA_BIT:
                self._receive_data(payload, remaining_bytes=len(data) - index + len(payload))
            else:
                self.command_bytes_received += len(payload)
                for byte in payload:
                    self._receive_command_byte(byte)
        return len(data)

    def close(self) -> None:
        self.is_closed = True

    def open_driver(self, **driver_options):
        """The real driver (``Ssd1306Display``) on this controller: what ``FIELDPOS_HW=sim`` uses."""
        from terminal.drivers.ssd1306 import Ssd1306Display

        return Ssd1306Display(self, **driver_options)

    # --- state a test reads ---

    @property
    def is_panel_lit(self) -> bool:
        """The panel shows anything at all: display on and its high voltage supplied."""
        return self.is_display_on and self.is_charge_pump_on

    def gddram_image(self) -> Image:
        """The display RAM as a 128x64 mode "1" image: column x, row 8 * page + bit."""
        from PIL import Image as PillowImage

        image = PillowImage.new("1", (WIDTH, HEIGHT), 0)
        pixels = image.load()
        for page in range(PAGE_COUNT):
            for column, byte in enumerate(self.ram[page]):
                for bit in range(8):
                    if byte >> bit & 1:
                        pixels[column, page * 8 + bit] = 1
        return image

    def to_image(self) -> Image:
        """What the panel shows, as a 128 x ``panel_rows`` mode "1" image (1 = lit), the right way up."""
        from PIL import Image as PillowImage

        image = PillowImage.new("1", (WIDTH, self.panel_rows), 0)
        if not self.is_panel_lit:
            return image
        pixels = image.load()
        for y in range(self.panel_rows):
            ram_row = self._ram_row_for_panel_row(y)
            for x in range(WIDTH):
                column = x if self.is_segment_remapped else WIDTH - 1 - x
                is_on = ram_row is not None and bool(self.ram[ram_row // 8][column] >> (ram_row % 8) & 1)
                if self.is_entire_display_on:
                    is_on = True
                elif self.is_inverse:
                    is_on = not is_on
                pixels[x, y] = 1 if is_on else 0
        return image

    def to_png_image(self, *, scale: int = 4, palette: str = "blue") -> Image:
        """The panel as an RGB picture ``scale`` times larger: lit pixels in the module's colour,
        dimmed by the contrast setting, with a one-pixel dark gap between pixels from scale 6 up
        (below that the gaps would break thin strokes into dots).
        ``palette``: "blue", "white", "amber" or "yellow-blue" (two-colour modules)."""
        from PIL import Image as PillowImage

        background, lit = PALETTES["blue" if palette == "yellow-blue" else palette]
        brightness = 0.55 + 0.45 * self.contrast / 255  # an OLED stays readable at low contrast
        picture = PillowImage.new("RGB", (WIDTH * scale, self.panel_rows * scale), background)
        panel = self.to_image().load()
        gap = 1 if scale >= PIXEL_GAP_MIN_SCALE else 0
        for y in range(self.panel_rows):
            colour = YELLOW if palette == "yellow-blue" and y < YELLOW_BAND_ROWS else lit
            dimmed = tuple(int(channel * brightness) for channel in colour)
            for x in range(WIDTH):
                if panel[x, y]:
                    left, top = x * scale, y * scale
                    picture.paste(dimmed, (left, top, left + scale - gap, top + scale - gap))
        return picture

    def save_png(self, path: str | Path, *, scale: int = 4, palette: str = "blue") -> Path:
        """Write :meth:`to_png_image` to ``path``."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        self.to_png_image(scale=scale, palette=palette).save(target)
        return target

    # --- commands ---

    def _reset_registers(self) -> None:
        """The reset values of section 9's command table."""
        self.is_display_on = False
        self.is_charge_pump_on = False
        self.addressing_mode = PAGE
        self.column_start, self.column_end = 0, WIDTH - 1
        self.page_start, self.page_end = 0, PAGE_COUNT - 1
        self.column, self.page = 0, 0
        self.page_mode_column_start = 0
        self.start_line = 0
        self.display_offset = 0
        self.multiplex_rows = RAM_ROWS
        self.contrast = RESET_CONTRAST
        self.is_segment_remapped = False
        self.is_com_scan_remapped = False
        self.is_com_pins_alternative = True
        self.is_inverse = False
        self.is_entire_display_on = False
        self.is_scrolling = False
        self._command: list[int] = []  # a command waiting for its arguments

    def _receive_command_byte(self, byte: int) -> None:
        self._command.append(byte)
        opcode = self._command[0]
        if len(self._command) - 1 < ARGUMENT_COUNTS.get(opcode, 0):
            return
        command, self._command = self._command, []
        self._execute(opcode, command[1:])

    def _execute(self, opcode: int, arguments: list[int]) -> None:
        if opcode <= 0x0F:  # 10.1.1: lower nibble of the page-mode column start
            self.page_mode_column_start = self.page_mode_column_start & 0xF0 | opcode
            self.column = self.page_mode_column_start
        elif opcode <= 0x1F:  # 10.1.2: upper nibble (3 bits)
            self.page_mode_column_start = (opcode & 0x07) << 4 | self.page_mode_column_start & 0x0F
            self.column = self.page_mode_column_start
        elif 0x40 <= opcode <= 0x7F:
            self.start_line = opcode & 0x3F
        elif 0xB0 <= opcode <= 0xB7:
            self.page = opcode & 0x07
        elif opcode in ARGUMENT_COUNTS:
            self._execute_with_arguments(opcode, arguments)
        elif opcode in SINGLE_BYTE_COMMANDS:
            self._execute_single(opcode)
        else:
            self.unknown_commands.append(opcode)

    def _execute_single(self, opcode: int) -> None:
        if opcode in (0xAE, 0xAF):
            self.is_display_on = opcode == 0xAF
        elif opcode in (0xA0, 0xA1):
            self.is_segment_remapped = opcode == 0xA1
        elif opcode in (0xC0, 0xC8):
            self.is_com_scan_remapped = opcode == 0xC8
        elif opcode in (0xA4, 0xA5):
            self.is_entire_display_on = opcode == 0xA5
        elif opcode in (0xA6, 0xA7):
            self.is_inverse = opcode == 0xA7
        elif opcode in (0x2E, 0x2F):
            self.is_scrolling = opcode == 0x2F

    def _execute_with_arguments(self, opcode: int, arguments: list[int]) -> None:
        first = arguments[0]
        if opcode == 0x20:
            if first & 0x03 == 0x03:
                self.mistakes.append("addressing mode 3 is invalid (10.1.3)")
            else:
                self.addressing_mode = first & 0x03
        elif opcode in (0x21, 0x22):
            self._set_window(opcode, first, arguments[1])
        elif opcode == 0x81:
            self.contrast = first
        elif opcode == 0x8D:
            self.is_charge_pump_on = bool(first & CHARGE_PUMP_ENABLE_BIT)
        elif opcode == 0xA8:
            if (first & 0x3F) < 15:
                self.mistakes.append(f"multiplex ratio {first & 0x3F} is invalid: 15..63 (10.1.11)")
            else:
                self.multiplex_rows = (first & 0x3F) + 1
        elif opcode == 0xD3:
            self.display_offset = first & 0x3F
        elif opcode == 0xDA:
            self.is_com_pins_alternative = bool(first & COM_PINS_ALTERNATIVE_BIT)
        # D5 (clock), D9 (pre-charge), DB (VCOMH), scroll set-up: timing and voltages, nothing visible here.

    def _set_window(self, opcode: int, start: int, end: int) -> None:
        if self.addressing_mode == PAGE:
            self.mistakes.append(f"{opcode:#04x} window set in page addressing mode: it applies only to "
                                 "horizontal and vertical mode (10.1.4)")
        if opcode == 0x21:
            self.column_start, self.column_end = start & 0x7F, end & 0x7F
            self.column = self.column_start
        else:
            self.page_start, self.page_end = start & 0x07, end & 0x07
            self.page = self.page_start
        if self.column_end < self.column_start or self.page_end < self.page_start:
            self.mistakes.append("window end before its start")

    # --- display RAM ---

    def _receive_data(self, payload: bytes, *, remaining_bytes: int) -> None:
        if self.is_strict and not self.is_display_on:
            # Refused like a missing acknowledge: the rest of the transaction never arrives.
            self.refused_transaction_count += 1
            self.refused_data_bytes += remaining_bytes
            raise OSError(errno.EREMOTEIO, "Remote I/O error (GDDRAM data while the display is off)")
        if self.is_scrolling:
            self.mistakes.append("GDDRAM written while scrolling, which 10.2.4 prohibits: the picture is garbled")
        for byte in payload:
            self.ram[self.page][self.column] = byte
            self.data_bytes_received += 1
            self.data_bytes_per_page[self.page] += 1
            self._advance()

    def _advance(self) -> None:
        """Move the RAM pointer after one data byte (10.1.3)."""
        if self.addressing_mode == PAGE:
            self.column = self.page_mode_column_start if self.column >= WIDTH - 1 else self.column + 1
        elif self.addressing_mode == HORIZONTAL:
            if self.column >= self.column_end:
                self.column = self.column_start
                self.page = self.page_start if self.page >= self.page_end else self.page + 1
            else:
                self.column += 1
        elif self.page >= self.page_end:
            self.page = self.page_start
            self.column = self.column_start if self.column >= self.column_end else self.column + 1
        else:
            self.page += 1

    def _ram_row_for_panel_row(self, y: int) -> int | None:
        """Which RAM row lights panel row ``y``, or None for a row past the multiplex ratio.

        On a 64-row module the panel's top row is driven by the last COM line, so COM scan remapped
        (C8h) is the right way up. With the sequential COM pin configuration on a module wired for
        the alternative one, rows come out interleaved (10.1.18); modelled roughly, enough to show.
        """
        com = y if self.is_com_scan_remapped else HEIGHT - 1 - y
        if not self.is_com_pins_alternative:
            com = com // 2 if com % 2 == 0 else HEIGHT // 2 + com // 2
        if com >= self.multiplex_rows:
            return None
        return (com + self.start_line + self.display_offset) % RAM_ROWS
