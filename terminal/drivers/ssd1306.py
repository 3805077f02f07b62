"""Our own driver for a 128x64 OLED with the Solomon Systech SSD1306 controller, on I2C.

The bus object is anything with ``write(bytes)`` where one call is one I2C write transaction to the
controller's address: on a Pi, :func:`open_i2c` (``/dev/i2c-1`` with the slave address set by
ioctl); in tests and the host simulator, ``host_sim.devices.ssd1306.EmulatedSsd1306``. The controller is
write-only on I2C (datasheet 8.1.5: no read of RAM or status), so the driver keeps what it last
sent and sends only the pages that changed: a new amount on the screen costs a few hundred bytes,
not the full 1 KB frame (~25 ms at 400 kHz).

Every transaction starts with a control byte (datasheet 8.1.5.2, Figure 8-7): Co = 0 (only data
bytes follow) and D/C# = 0 for commands, 1 for display RAM (GDDRAM) data.

Datasheet references are to the SSD1306 Advance Information, rev. 1.1 (Solomon Systech, 2008); the
charge pump to its appendix "Charge Pump Regulator". Panels sold as "1.3 inch SSD1306" often carry
an SH1106 (132 columns, no horizontal addressing mode): this driver does not drive those.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from terminal.errors import DisplayError
from terminal.hal.display import Display, check_frame

if TYPE_CHECKING:
    from PIL.Image import Image


class I2cDevice(Protocol):
    """One ``write`` is one I2C write transaction to the display's address."""

    def write(self, data: bytes) -> int | None: ...

    def close(self) -> None: ...


# --- the controller (datasheet section 9, command table; section 10.1, command descriptions) ---

WIDTH_PIXELS = 128
HEIGHT_PIXELS = 64
PAGE_HEIGHT_PIXELS = 8  # GDDRAM is 8 pages of 128 columns; one byte is 8 rows, bit 0 on top (8.7)
PAGE_COUNT = HEIGHT_PIXELS // PAGE_HEIGHT_PIXELS
FRAME_BYTES = WIDTH_PIXELS * PAGE_COUNT

CONTROL_COMMANDS = 0x00  # Co = 0, D/C# = 0
CONTROL_DATA = 0x40  # Co = 0, D/C# = 1


class Command(enum.IntEnum):
    SET_MEMORY_ADDRESSING_MODE = 0x20  # 10.1.3, one argument
    SET_COLUMN_ADDRESS = 0x21  # 10.1.4, start and end column; also moves the pointer to start
    SET_PAGE_ADDRESS = 0x22  # 10.1.5, start and end page; also moves the pointer to start
    DEACTIVATE_SCROLL = 0x2E  # 10.2.3
    SET_DISPLAY_START_LINE = 0x40  # 10.1.6, + line 0..63
    SET_CONTRAST = 0x81  # 10.1.7, one argument
    CHARGE_PUMP_SETTING = 0x8D  # appendix "Charge Pump Regulator", one argument
    SEGMENT_REMAP_COLUMN_127_TO_SEG0 = 0xA1  # 10.1.8
    ENTIRE_DISPLAY_FOLLOWS_RAM = 0xA4  # 10.1.9 ("resume to RAM content display")
    NORMAL_DISPLAY = 0xA6  # 10.1.10 (A7 inverts)
    SET_MULTIPLEX_RATIO = 0xA8  # 10.1.11, one argument
    DISPLAY_OFF = 0xAE  # 10.1.12 (sleep mode)
    DISPLAY_ON = 0xAF  # 10.1.12
    COM_SCAN_REMAPPED = 0xC8  # 10.1.14, scan from COM[N-1] to COM0
    SET_DISPLAY_OFFSET = 0xD3  # 10.1.15, one argument
    SET_CLOCK_DIVIDE = 0xD5  # 10.1.16, one argument
    SET_PRECHARGE_PERIOD = 0xD9  # 10.1.17, one argument
    SET_COM_PINS = 0xDA  # 10.1.18, one argument
    SET_VCOMH_DESELECT = 0xDB  # 10.1.19, one argument


HORIZONTAL_ADDRESSING = 0x00  # 10.1.3: column first, then the next page, inside the window
CLOCK_DIVIDE_RESET = 0x80  # 10.1.16: divide ratio 1, oscillator frequency setting 8 (the reset value)
MULTIPLEX_64_ROWS = HEIGHT_PIXELS - 1  # 10.1.11: N - 1
CHARGE_PUMP_ON = 0x14  # appendix: 8Dh, 14h enables the internal pump (modules without external VCC)
# 10.1.18: A[4] = 1 alternative COM pin configuration, A[5] = 0 no left/right remap: how the COM
# lines of 64-row modules are wired (32-row modules use 0x02).
COM_PINS_ALTERNATIVE = 0x12
# Contrast and pre-charge as used with the internal charge pump by the module makers' reference code
# (Adafruit, luma.oled): 0xCF; pre-charge phase 1 = 1 clock, phase 2 = 15 clocks (10.1.17).
CONTRAST_INTERNAL_PUMP = 0xCF
PRECHARGE_INTERNAL_PUMP = 0xF1
VCOMH_077_VCC = 0x20  # 10.1.19: ~0.77 x VCC, the reset value

# The software initialisation flow of Solomon's SSD1306 application note (display off while
# configuring, charge pump enabled before display on). Segment remap plus reversed COM scan turn the picture the right
# way up on the common 0.96-inch modules, whose glass is mounted rotated relative to SEG0/COM0.
INITIALIZATION = bytes((
    Command.DISPLAY_OFF,
    Command.SET_CLOCK_DIVIDE, CLOCK_DIVIDE_RESET,
    Command.SET_MULTIPLEX_RATIO, MULTIPLEX_64_ROWS,
    Command.SET_DISPLAY_OFFSET, 0,
    Command.SET_DISPLAY_START_LINE | 0,
    Command.CHARGE_PUMP_SETTING, CHARGE_PUMP_ON,
    Command.SET_MEMORY_ADDRESSING_MODE, HORIZONTAL_ADDRESSING,
    Command.SEGMENT_REMAP_COLUMN_127_TO_SEG0,
    Command.COM_SCAN_REMAPPED,
    Command.SET_COM_PINS, COM_PINS_ALTERNATIVE,
    Command.SET_CONTRAST, CONTRAST_INTERNAL_PUMP,
    Command.SET_PRECHARGE_PERIOD, PRECHARGE_INTERNAL_PUMP,
    Command.SET_VCOMH_DESELECT, VCOMH_077_VCC,
    Command.DEACTIVATE_SCROLL,  # a scroll left running by an earlier program garbles RAM writes (10.2.3)
    Command.ENTIRE_DISPLAY_FOLLOWS_RAM,
    Command.NORMAL_DISPLAY,
    Command.DISPLAY_ON,
))  # fmt: skip

# Data bytes per I2C transaction (plus the control byte). SMBus-style adapters and the CH341/MCP2221
# USB bridges used on benches move at most 32 bytes per message; the Pi's own controller takes more,
# but 32 costs only one extra byte per 32.
DATA_CHUNK_BYTES = 32
MAX_COMMAND_BYTES = DATA_CHUNK_BYTES

# linux/i2c-dev.h: bind this file descriptor to a slave address.
I2C_SLAVE = 0x0703
# 8.1.5.1: the slave address is 0b011110 followed by SA0 (D/C# pin): 0x3C, or 0x3D with SA0 high.
DEFAULT_ADDRESS = 0x3C
DEFAULT_BUS = 1  # the I2C bus on the Pi's header pins 3 and 5


def frame_pages(image: Image) -> list[bytes]:
    """The image as GDDRAM pages: 8 x 128 bytes, column by column, bit 0 the top row of the page."""
    from PIL import Image as PillowImage

    # Rotated a quarter-turn clockwise, each image column becomes a row packed most significant bit
    # first, bottom pixel first: byte j of row x holds page 7 - j with its top row in bit 0.
    packed = image.transpose(PillowImage.Transpose.ROTATE_270).tobytes()
    return [packed[PAGE_COUNT - 1 - page :: PAGE_COUNT] for page in range(PAGE_COUNT)]


def changed_page_runs(old: list[bytes] | None, new: list[bytes]) -> Iterator[tuple[int, int, int, int]]:
    """(first page, last page, first column, last column) of each run of adjacent changed pages.

    The column range is the narrowest one covering every change in the run. ``old`` None: the whole
    panel is one run.
    """
    if old is None:
        yield 0, PAGE_COUNT - 1, 0, WIDTH_PIXELS - 1
        return
    page = 0
    while page < PAGE_COUNT:
        if old[page] == new[page]:
            page += 1
            continue
        first_page = page
        while page < PAGE_COUNT and old[page] != new[page]:
            page += 1
        changed_columns = [
            column
            for column in range(WIDTH_PIXELS)
            if any(old[run_page][column] != new[run_page][column] for run_page in range(first_page, page))
        ]
        yield first_page, page - 1, changed_columns[0], changed_columns[-1]


class Ssd1306Display(Display):
    """:class:`Display` on an SSD1306 128x64 over I2C. Initialises the controller on construction.

    Counts what it sends (``transaction_count``, ``bytes_sent``, ``data_bytes_sent``) and how often a
    refused write made it start over (``recovery_count``).
    """

    def __init__(self, bus: I2cDevice, *, chunk_bytes: int = DATA_CHUNK_BYTES):
        if not 1 <= chunk_bytes <= 4096:
            raise ValueError(f"chunk_bytes must be 1..4096, not {chunk_bytes}")
        self.bus = bus
        self.chunk_bytes = chunk_bytes
        self.transaction_count = 0
        self.bytes_sent = 0
        self.data_bytes_sent = 0
        self.recovery_count = 0
        self._shown_pages: list[bytes] | None = None  # None: the panel's RAM is unknown
        self.initialize()

    @property
    def size(self) -> tuple[int, int]:
        return WIDTH_PIXELS, HEIGHT_PIXELS

    def initialize(self) -> None:
        """Configure the controller and switch the panel on; the next :meth:`show` sends everything.

        Call it again after the panel may have lost power: I2C cannot tell us it reset.
        """
        self._shown_pages = None
        try:
            self._send_commands(INITIALIZATION)
        except OSError as error:
            raise DisplayError(f"Display not answering on I2C ({error}) — check its cable, then restart") from error

    def show(self, image: Image) -> None:
        check_frame(image, self.size)
        pages = frame_pages(image)
        try:
            self._send_changes(pages)
        except OSError:
            # The controller refused a write: it was reset (a loose supply wire) or the bus
            # glitched. Its settings and RAM are unknown, so start over once: set-up and whole frame.
            self.recovery_count += 1
            self.initialize()
            try:
                self._send_changes(pages)
            except OSError as error:
                raise DisplayError(f"Display refused the picture ({error}) — check its cable, then restart") from error

    def close(self) -> None:
        """Switch the panel off, then release the bus.

        A frozen last screen would look like a working terminal to a visitor tapping a card; a dark
        one says the terminal is not running (and an OLED left showing one picture burns it in).
        """
        try:
            self._send_commands(bytes((Command.DISPLAY_OFF,)))
        except OSError:
            pass  # closing anyway: the panel is unreachable
        finally:
            self.bus.close()

    def _send_changes(self, pages: list[bytes]) -> None:
        previous, self._shown_pages = self._shown_pages, None  # unknown until every write went through
        for first_page, last_page, first_column, last_column in changed_page_runs(previous, pages):
            self._send_commands(bytes((
                Command.SET_COLUMN_ADDRESS, first_column, last_column,
                Command.SET_PAGE_ADDRESS, first_page, last_page,
            )))  # fmt: skip
            columns = slice(first_column, last_column + 1)
            self._send_data(b"".join(pages[page][columns] for page in range(first_page, last_page + 1)))
        self._shown_pages = pages

    def _send_commands(self, commands: bytes) -> None:
        # A command and its arguments stay in one transaction: never split at the chunk limit.
        if len(commands) > MAX_COMMAND_BYTES:
            raise ValueError(f"at most {MAX_COMMAND_BYTES} command bytes per transaction")
        self._write(bytes((CONTROL_COMMANDS,)) + commands)

    def _send_data(self, data: bytes) -> None:
        for start in range(0, len(data), self.chunk_bytes):
            chunk = data[start : start + self.chunk_bytes]
            self._write(bytes((CONTROL_DATA,)) + chunk)
            self.data_bytes_sent += len(chunk)

    def _write(self, transaction: bytes) -> None:
        written = self.bus.write(transaction)
        if written is not None and written != len(transaction):
            raise OSError(f"I2C write took {written} of {len(transaction)} bytes")
        self.transaction_count += 1
        self.bytes_sent += len(transaction)


def open_i2c(bus: int = DEFAULT_BUS, address: int = DEFAULT_ADDRESS) -> I2cDevice:
    """Open ``/dev/i2c-<bus>`` bound to ``address``: each ``write`` is then one I2C transaction."""
    import fcntl  # lazy: only a real terminal opens a bus

    path = f"/dev/i2c-{bus}"
    try:
        device = open(path, "r+b", buffering=0)  # noqa: SIM115 - the driver owns and closes it
    except OSError as error:
        raise DisplayError(f"Cannot open {path} ({error}) — enable I2C (raspi-config), then restart") from error
    try:
        fcntl.ioctl(device, I2C_SLAVE, address)
    except OSError as error:
        device.close()
        raise DisplayError(f"Cannot address the display at {address:#04x} on {path} ({error})") from error
    return device
