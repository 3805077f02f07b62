"""The print engine of an ESC/POS printer: parsed commands + print modes -> bands of paper and a log.

``PrintEngine.apply(event)`` takes what ``escpos_parser`` made of the bytes and returns outputs: a
``Band`` of paper (a 1-bit image the full paper width, plus what it says, for tests and logs), a
``CutPaper``, a ``Signal`` (drawer pulse, beeper), a ``StatusRequest`` the printer must answer, or
an ``Unprintable`` error. It holds the modes ESC @ resets and the line being composed; it knows
nothing of faults, paper left or ports (``host_sim.devices.printer`` does).

Lines follow the Epson rules: ESC a is latched by the first data in a line; characters of different
sizes on one line stand on a common bottom; the line feeds max(line spacing, tallest character);
text that would pass the print area's right edge goes to the next line; HT moves to the next ESC D
stop (default every 8 Font A characters). One dot is one motion unit (GS P is ignored).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable, Union

from . import escpos_render as render
from .escpos_parser import UNPRINTABLE, Command, CommandError, Text

if TYPE_CHECKING:
    from PIL.Image import Image

DEFAULT_LINE_SPACING_DOTS = 30  # ESC 2 on the TM-T20: 3.75 mm (Font A's 24 dots and a 6-dot gap)
DEFAULT_TAB_COLUMNS = 8  # HT stops every 8 Font A characters until ESC D sets others
DEFAULT_BARCODE_HEIGHT_DOTS = 162  # GS h default
DEFAULT_BARCODE_MODULE_DOTS = 3  # GS w default
DEFAULT_QR_MODULE_DOTS = 3  # GS ( k fn 167 default
QR_ERROR_LEVELS = {48: "L", 49: "M", 50: "Q", 51: "H"}  # GS ( k fn 169
DOTS_PER_INCH = 203


# --- what the log keeps ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextStyle:
    font: str = "A"  # "A", "B", or "Kanji"
    is_bold: bool = False  # ESC E, ESC ! bit 3, or ESC G double-strike
    underline_dots: int = 0  # ESC - / FS - / ESC ! bit 7: 0, 1 or 2
    width_multiplier: int = 1
    height_multiplier: int = 1
    is_inverse: bool = False  # GS B
    is_rotated: bool = False  # ESC V


@dataclass(frozen=True, slots=True)
class TextRun:
    text: str
    style: TextStyle


@dataclass(frozen=True, slots=True)
class PrintedLine:
    runs: tuple[TextRun, ...]
    align: int = 0
    is_upside_down: bool = False

    @property
    def text(self) -> str:
        return "".join(run.text for run in self.runs)

    @property
    def is_bold(self) -> bool:
        return bool(self.runs) and all(run.style.is_bold for run in self.runs if run.text.strip())

    @property
    def width_multiplier(self) -> int:
        return max((run.style.width_multiplier for run in self.runs), default=1)

    @property
    def height_multiplier(self) -> int:
        return max((run.style.height_multiplier for run in self.runs), default=1)


@dataclass(frozen=True, slots=True)
class PrintedImage:
    width_bytes: int
    height_dots: int
    data: bytes  # packed rows, 1 = black, as they were sent (before any GS v 0 / ESC * enlargement)
    align: int = 0
    command: str = "GS v 0"

    @property
    def width_dots(self) -> int:
        return self.width_bytes * 8

    def to_image(self) -> Image:
        """As a Pillow mode "1" image (the mode the driver was given)."""
        return render.raster(self.width_bytes, self.height_dots, self.data)


@dataclass(frozen=True, slots=True)
class PrintedBarcode:
    system: str  # "EAN13", "CODE128", ...
    data: str  # as sent
    human_readable: str  # as printed, with the check digits the printer added
    align: int = 0


@dataclass(frozen=True, slots=True)
class PrintedQr:
    payload: str
    module_dots: int
    error_correction: str  # "L", "M", "Q" or "H"
    align: int = 0


@dataclass(frozen=True, slots=True)
class PrintedFeed:
    dots: int


Element = Union[PrintedLine, PrintedImage, PrintedBarcode, PrintedQr, PrintedFeed]


# --- outputs --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Band:
    image: Image  # paper width, 1-bit
    element: Element | None  # None: more of the previous element (a bit image in several bands)


@dataclass(frozen=True, slots=True)
class CutPaper:
    is_partial: bool
    offset: int


@dataclass(frozen=True, slots=True)
class Signal:
    kind: str  # "drawer pulse", "beep"
    detail: str
    offset: int


@dataclass(frozen=True, slots=True)
class StatusRequest:
    command: str  # "DLE EOT" or "GS r"
    kind: int
    offset: int


Output = Union[Band, CutPaper, Signal, StatusRequest, CommandError]


# --- modes ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class PrintModes:
    """What ESC @ resets."""

    font: str = "A"
    is_emphasized: bool = False
    is_double_strike: bool = False
    underline_dots: int = 0
    kanji_underline_dots: int = 0
    width_multiplier: int = 1
    height_multiplier: int = 1
    kanji_width_multiplier: int = 1  # FS ! bit 2 / FS W
    kanji_height_multiplier: int = 1  # FS ! bit 3 / FS W
    is_inverse: bool = False
    is_rotated: bool = False  # ESC V: each character turned 90° clockwise
    is_upside_down: bool = False  # ESC {
    align: int = 0
    right_spacing_dots: int = 0
    kanji_spacing_dots: tuple[int, int] = (0, 0)  # FS S left, right
    line_spacing_dots: int = DEFAULT_LINE_SPACING_DOTS
    left_margin_dots: int = 0
    area_width_dots: int | None = None  # GS W; None: to the right edge
    tab_stops_dots: tuple[int, ...] | None = None  # None: the defaults
    barcode_height_dots: int = DEFAULT_BARCODE_HEIGHT_DOTS
    barcode_module_dots: int = DEFAULT_BARCODE_MODULE_DOTS
    hri_position: int = 0
    hri_font: str = "A"
    qr_module_dots: int = DEFAULT_QR_MODULE_DOTS
    qr_error_level: str = "L"  # GS ( k fn 169 default: 48, L
    qr_model: int = 50
    qr_data: bytes | None = None
    graphics: tuple[int, int, int, int, bytes] | None = None  # GS ( L fn 112: width, height, bx, by, data


@dataclass(slots=True)
class _LineItem:
    x: int  # from the left margin
    image: Image


@dataclass(slots=True)
class _Line:
    items: list[_LineItem] = field(default_factory=list)
    runs: list[TextRun] = field(default_factory=list)
    images: list[PrintedImage] = field(default_factory=list)
    x: int = 0
    align: int | None = None  # latched by the first data
    is_upside_down: bool = False  # ESC {, latched with the alignment

    @property
    def is_empty(self) -> bool:
        return not self.items and self.x == 0


class PrintEngine:
    def __init__(self, width_dots: int, *, fonts: tuple[str, ...] = ("A", "B")):
        self.width_dots = width_dots
        self.fonts = fonts  # a printer without font B prints font A where B is asked for
        self.modes = PrintModes()
        self._line = _Line()
        self._outputs: list[Output] = []

    def apply(self, event: Text | Command) -> list[Output]:
        self._outputs = []
        if isinstance(event, Text):
            self._text(event)
        else:
            handler = HANDLERS.get(event.name)
            if handler is not None:
                handler(self, event)
        return self._outputs

    # --- text ---

    def _text(self, event: Text) -> None:
        modes = self.modes
        if event.is_kanji:
            font_name = "Kanji"
            font, width, height = render.KANJI, modes.kanji_width_multiplier, modes.kanji_height_multiplier
            width, height = max(width, modes.width_multiplier), max(height, modes.height_multiplier)
            left, right = modes.kanji_spacing_dots
            underline = modes.kanji_underline_dots
        else:
            font_name = modes.font if modes.font in self.fonts else "A"
            font, width, height = render.FONTS[font_name], modes.width_multiplier, modes.height_multiplier
            left, right = 0, modes.right_spacing_dots
            underline = modes.underline_dots
        is_bold = modes.is_emphasized or modes.is_double_strike
        style = TextStyle(font_name, is_bold, underline, width, height, modes.is_inverse, modes.is_rotated)
        for character in event.text:
            cell = render.character_cell(
                character, font, is_bold=is_bold, width_multiplier=width, height_multiplier=height,
                right_spacing_dots=right, underline_dots=underline, is_inverse=modes.is_inverse,
                is_rotated=modes.is_rotated,
            )  # fmt: skip
            self._place(cell, left * width)
            self._add_to_runs(character, style)

    def _add_to_runs(self, character: str, style: TextStyle) -> None:
        runs = self._line.runs
        if runs and runs[-1].style == style:
            runs[-1] = TextRun(runs[-1].text + character, style)
        else:
            runs.append(TextRun(character, style))

    def _place(self, image: Image, left_gap_dots: int = 0) -> None:
        self._start_line()
        if self._line.x + left_gap_dots + image.width > self._area_width() and self._line.items:
            self._print_line()  # the line is full: print it and go on in the next
            self._start_line()
        line = self._line
        line.items.append(_LineItem(line.x + left_gap_dots, image))
        line.x += left_gap_dots + image.width

    def _start_line(self) -> None:
        """The first data of a line latches ESC a and ESC { for all of it (Epson: "at the beginning of the line")."""
        if self._line.align is None:
            self._line.align = self.modes.align
            self._line.is_upside_down = self.modes.is_upside_down

    def _area_width(self) -> int:
        room = self.width_dots - self.modes.left_margin_dots
        return min(room, self.modes.area_width_dots) if self.modes.area_width_dots else room

    def _print_line(self, *, feed_dots: int | None = None) -> None:
        """Print the line and feed ``feed_dots`` (the line spacing unless told), at least its tallest."""
        line, self._line = self._line, _Line()
        tallest = max((item.image.height for item in line.items), default=0)
        feed_dots = self.modes.line_spacing_dots if feed_dots is None else feed_dots
        band = render.white(self.width_dots, max(feed_dots, tallest))
        content = max((item.x + item.image.width for item in line.items), default=0)
        left = self._aligned_left(line.align or 0, content)
        for item in line.items:
            band.paste(item.image, (left + item.x, tallest - item.image.height))
        if line.is_upside_down:  # ESC {: the whole line turned half a turn, its end printed first
            band = band.rotate(180)
        runs = tuple(line.runs)
        if line.images and not runs:  # a line of ESC * bit image only: a picture in the log
            self._outputs.append(Band(band, line.images[0]))
        else:
            self._outputs.append(Band(band, PrintedLine(runs, line.align or 0, line.is_upside_down)))

    def _aligned_left(self, align: int, content_width: int) -> int:
        area = self._area_width()
        offset = {1: (area - content_width) // 2, 2: area - content_width}.get(align, 0)
        return self.modes.left_margin_dots + max(0, offset)

    def _print_picture(self, picture: Image, element: Element) -> None:
        """A raster, barcode or QR: the pending line first, then the picture aligned by ESC a."""
        if not self._line.is_empty:
            self._print_line()
        if picture.width > self._area_width():
            self._unprintable(None, f"{type(element).__name__} is {picture.width} dots wide, the print area {self._area_width()}")
            return
        band = render.white(self.width_dots, picture.height)
        band.paste(picture, (self._aligned_left(self.modes.align, picture.width), 0))
        self._outputs.append(Band(band, element))

    def _unprintable(self, command: Command | None, reason: str) -> None:
        offset = command.offset if command else -1
        data = (command.name.encode() if command else b"")
        self._outputs.append(CommandError(UNPRINTABLE, offset, data, reason))

    # --- command handlers (by the reference's mnemonic) ---

    def _initialize(self, _command: Command) -> None:
        self.modes = PrintModes()
        self._line = _Line()  # ESC @ clears the print buffer

    def _line_feed(self, _command: Command) -> None:
        self._print_line()

    def _tab(self, _command: Command) -> None:
        stops = self.modes.tab_stops_dots
        if stops is None:
            step = DEFAULT_TAB_COLUMNS * render.FONT_A.width_dots
            stops = tuple(range(step, self._area_width(), step))
        following = [stop for stop in stops if stop > self._line.x]
        if following and following[0] <= self._area_width():
            self._start_line()
            self._line.x = following[0]

    def _set_tabs(self, command: Command) -> None:
        columns = command.parameters[:-1]  # without the NUL
        column_dots = render.FONTS[self.modes.font].width_dots + self.modes.right_spacing_dots
        self.modes.tab_stops_dots = tuple(column * column_dots for column in columns)

    def _print_mode(self, command: Command) -> None:
        n = command.parameters[0]  # ESC ! : bit 0 font B, 3 emphasised, 4 double height, 5 double width, 7 underline
        modes = self.modes
        modes.font = "B" if n & 0x01 else "A"
        modes.is_emphasized = bool(n & 0x08)
        modes.height_multiplier = 2 if n & 0x10 else 1
        modes.width_multiplier = 2 if n & 0x20 else 1
        modes.underline_dots = 1 if n & 0x80 else 0

    def _character_size(self, command: Command) -> None:
        n = command.parameters[0]
        self.modes.width_multiplier, self.modes.height_multiplier = (n >> 4) + 1, (n & 0x0F) + 1

    def _kanji_print_mode(self, command: Command) -> None:
        n = command.parameters[0]  # FS ! : bit 2 double width, bit 3 double height, bit 7 underline
        self.modes.kanji_width_multiplier = 2 if n & 0x04 else 1
        self.modes.kanji_height_multiplier = 2 if n & 0x08 else 1
        self.modes.kanji_underline_dots = 1 if n & 0x80 else 0

    def _kanji_quadruple(self, command: Command) -> None:
        size = 2 if command.parameters[0] & 1 else 1
        self.modes.kanji_width_multiplier = self.modes.kanji_height_multiplier = size

    def _feed_lines(self, command: Command) -> None:
        """ESC d n: print the line and feed n lines (ESC d 1 is LF)."""
        self._print_and_feed(command.parameters[0] * self.modes.line_spacing_dots)

    def _feed_motion_units(self, command: Command) -> None:
        """ESC J n: print the line and feed n dots, whatever the line spacing."""
        self._print_and_feed(command.parameters[0])

    def _print_and_feed(self, dots: int) -> None:
        if not self._line.is_empty:
            self._print_line(feed_dots=dots)
        elif dots:
            self._outputs.append(Band(render.white(self.width_dots, dots), PrintedFeed(dots)))

    def _absolute_position(self, command: Command) -> None:
        position = int.from_bytes(command.parameters, "little")
        if position <= self._area_width():
            self._start_line()
            self._line.x = position

    def _relative_position(self, command: Command) -> None:
        position = self._line.x + int.from_bytes(command.parameters, "little", signed=True)
        if 0 <= position <= self._area_width():
            self._line.x = position

    def _column_image(self, command: Command) -> None:
        mode, columns = command.parameters[0], int.from_bytes(command.parameters[1:3], "little")
        picture = render.column_bit_image(mode, columns, command.parameters[3:])
        self._place(picture)
        packed = picture.tobytes("raw", "1;I")
        self._line.images.append(PrintedImage((picture.width + 7) // 8, picture.height, packed, self.modes.align, "ESC *"))

    def _raster(self, command: Command) -> None:
        parameters = command.parameters
        mode = parameters[0] % 48
        width_bytes = int.from_bytes(parameters[1:3], "little")
        height = int.from_bytes(parameters[3:5], "little")
        data = parameters[5:]
        picture = render.scale(render.raster(width_bytes, height, data), 2 if mode & 1 else 1, 2 if mode & 2 else 1)
        self._print_picture(picture, PrintedImage(width_bytes, height, data, self.modes.align))

    def _graphics(self, command: Command) -> None:
        """GS ( L / GS 8 L: fn 112 stores a raster graphic, fn 50 prints it; the rest change no paper."""
        size_bytes = 4 if command.name == "GS 8 L" else 2
        body = command.parameters[size_bytes:]
        if len(body) < 2:
            return self._unprintable(command, "graphics command without m fn")
        function = body[1]
        if function == 112:  # a bx by c xL xH yL yH d1..dk
            if len(body) < 10:
                return self._unprintable(command, "GS ( L fn 112 is shorter than its header")
            bx, by = body[3], body[4]
            width, height = int.from_bytes(body[6:8], "little"), int.from_bytes(body[8:10], "little")
            data = body[10:]
            if body[2] != 48 or bx not in (1, 2) or by not in (1, 2) or len(data) < (width + 7) // 8 * height:
                return self._unprintable(command, "GS ( L fn 112: only monochrome (48) with 1x/2x scale is emulated")
            self.modes.graphics = (width, height, bx, by, bytes(data))
        elif function in (2, 50):
            if self.modes.graphics is None:
                return self._unprintable(command, "GS ( L fn 50: no graphics stored")
            width, height, bx, by, data = self.modes.graphics
            width_bytes = (width + 7) // 8
            picture = render.scale(render.raster(width_bytes, height, data).crop((0, 0, width, height)), bx, by)
            self._print_picture(picture, PrintedImage(width_bytes, height, data, self.modes.align, "GS ( L"))
        elif function in (113, 67, 69, 83, 85, 64, 65, 66):
            self._unprintable(command, f"GS ( L fn {function} (column data or NV graphics) is not emulated")

    def _barcode(self, command: Command) -> None:
        try:  # python-barcode's tables (a dev dependency): only when a barcode comes
            from .barcodes import BarcodeDataError, encode
        except ImportError:
            return self._unprintable(command, "barcodes need python-barcode (pip install python-barcode)")

        system, data = command.parameters[0], command.parameters[1:]
        data = data[:-1] if system <= 6 else data[1:]  # the NUL, or the count n
        modes = self.modes
        try:
            symbol = encode(system, data, modes.barcode_module_dots)
        except BarcodeDataError as error:
            return self._unprintable(command, str(error))
        font = render.FONTS.get(modes.hri_font, render.FONT_A)
        picture = render.barcode(symbol, modes.barcode_height_dots, modes.hri_position, font)
        element = PrintedBarcode(symbol.system, data.decode("latin-1"), symbol.human_readable, modes.align)
        self._print_picture(picture, element)

    def _two_dimensional_code(self, command: Command) -> None:
        body = command.parameters[2:]
        if len(body) < 2:
            return self._unprintable(command, "GS ( k without cn fn")
        symbol_type, function, values = body[0], body[1], body[2:]
        if symbol_type != 49:
            if function == 81:  # fn 81 prints PDF417, MaxiCode, DataMatrix, Aztec ... alike
                self._unprintable(command, f"2-D code type {symbol_type} is not emulated (only QR, cn 49)")
            return
        modes = self.modes
        if function == 65 and values:
            modes.qr_model = values[0]
        elif function == 67 and values:
            modes.qr_module_dots = values[0]
        elif function == 69 and values:
            modes.qr_error_level = QR_ERROR_LEVELS.get(values[0], modes.qr_error_level)
        elif function == 80 and values:
            modes.qr_data = bytes(values[1:])  # values[0] is m = 48
        elif function == 81:
            self._print_qr(command)

    def _print_qr(self, command: Command) -> None:
        modes = self.modes
        if not modes.qr_data:
            return  # fn 181 with nothing stored prints nothing
        try:
            picture = render.qr(modes.qr_data, module_dots=modes.qr_module_dots, error_level=modes.qr_error_level,
                                is_micro=modes.qr_model == 51)  # fmt: skip
        except Exception as error:  # segno: data too long for a QR code at this level
            return self._unprintable(command, f"QR code: {error}")
        payload = modes.qr_data.decode("utf-8", errors="replace")
        self._print_picture(picture, PrintedQr(payload, modes.qr_module_dots, modes.qr_error_level, modes.align))

    def _not_emulated(self, command: Command) -> None:
        """A command that puts something on paper we do not draw: said, so a test or the sim shows it."""
        self._unprintable(command, f"{command.name} ({NOT_EMULATED[command.name]}) is not emulated")

    def _cut(self, command: Command) -> None:
        mode = command.parameters[0]
        feed = command.parameters[1] if len(command.parameters) > 1 else 0
        if not self._line.is_empty:
            self._print_line()
        if feed and mode in (65, 66, 97, 98, 103, 104):
            self._outputs.append(Band(render.white(self.width_dots, feed), PrintedFeed(feed)))
        self._outputs.append(CutPaper(mode in (1, 49, 66, 98, 104), command.offset))

    def _obsolete_partial_cut(self, command: Command) -> None:
        if not self._line.is_empty:
            self._print_line()
        self._outputs.append(CutPaper(True, command.offset))

    def _drawer_pulse(self, command: Command) -> None:
        pin, on, off = command.parameters[0] % 48, command.parameters[1], command.parameters[2]
        detail = f"pin {2 if pin == 0 else 5}, on {on * 2} ms, off {off * 2} ms"
        self._outputs.append(Signal("drawer pulse", detail, command.offset))

    def _real_time_request(self, command: Command) -> None:
        if command.parameters[0] == 1:  # DLE DC4 1 m t: real-time pulse
            pin, on = command.parameters[1], command.parameters[2]
            detail = f"pin {2 if pin == 0 else 5}, on {on * 100} ms (real time)"
            self._outputs.append(Signal("drawer pulse", detail, command.offset))

    def _beep(self, command: Command) -> None:
        times, duration = command.parameters
        self._outputs.append(Signal("beep", f"{times} times, {duration * 50} ms", command.offset))

    def _status(self, command: Command) -> None:
        self._outputs.append(StatusRequest(command.name, command.parameters[0], command.offset))


def _setter(attribute: str, convert: Callable[[bytes], object]) -> Callable[[PrintEngine, Command], None]:
    def handler(engine: PrintEngine, command: Command) -> None:
        setattr(engine.modes, attribute, convert(command.parameters))

    return handler


def _first(parameters: bytes) -> int:
    return parameters[0]


def _low_bit(parameters: bytes) -> bool:
    return bool(parameters[0] & 1)


def _little_endian(parameters: bytes) -> int:
    return int.from_bytes(parameters, "little")


def _inch_fraction(denominator: int) -> Callable[[bytes], int]:
    return lambda parameters: round(parameters[0] * DOTS_PER_INCH / denominator)


# Commands that print (or change how later data prints) which the emulator does not draw.
NOT_EMULATED = {
    "FS p": "print NV bit image",
    "GS /": "print downloaded bit image",
    "GS Q 0": "variable vertical size bit image",
    "ESC L": "page mode",
}

HANDLERS: dict[str, Callable[[PrintEngine, Command], None]] = {
    "ESC @": PrintEngine._initialize,
    "LF": PrintEngine._line_feed,
    "HT": PrintEngine._tab,
    "ESC D": PrintEngine._set_tabs,
    "ESC !": PrintEngine._print_mode,
    "GS !": PrintEngine._character_size,
    "FS !": PrintEngine._kanji_print_mode,
    "FS W": PrintEngine._kanji_quadruple,
    "ESC E": _setter("is_emphasized", _low_bit),
    "ESC G": _setter("is_double_strike", _low_bit),
    "ESC -": _setter("underline_dots", lambda p: p[0] % 48),
    "FS -": _setter("kanji_underline_dots", lambda p: p[0] % 48),
    "ESC M": _setter("font", lambda p: "B" if p[0] in (1, 49) else "A"),
    "GS B": _setter("is_inverse", _low_bit),
    "ESC V": _setter("is_rotated", lambda p: p[0] % 48 != 0),
    "ESC {": _setter("is_upside_down", _low_bit),
    "ESC a": _setter("align", lambda p: p[0] % 48),
    "ESC SP": _setter("right_spacing_dots", _first),
    "FS S": _setter("kanji_spacing_dots", lambda p: (p[0], p[1])),
    "ESC 2": _setter("line_spacing_dots", lambda _p: DEFAULT_LINE_SPACING_DOTS),
    "ESC 3": _setter("line_spacing_dots", _first),
    "ESC A": _setter("line_spacing_dots", _inch_fraction(60)),
    "ESC +": _setter("line_spacing_dots", _inch_fraction(360)),
    "GS L": _setter("left_margin_dots", _little_endian),
    "GS W": _setter("area_width_dots", _little_endian),
    "GS h": _setter("barcode_height_dots", _first),
    "GS w": _setter("barcode_module_dots", _first),
    "GS H": _setter("hri_position", lambda p: p[0] % 48),
    "GS f": _setter("hri_font", lambda p: "B" if p[0] in (1, 49, 98) else "A"),
    "ESC d": PrintEngine._feed_lines,
    "ESC J": PrintEngine._feed_motion_units,
    "ESC $": PrintEngine._absolute_position,
    "ESC \\": PrintEngine._relative_position,
    "ESC *": PrintEngine._column_image,
    "GS v 0": PrintEngine._raster,
    "GS ( L": PrintEngine._graphics,
    "GS 8 L": PrintEngine._graphics,
    "GS k": PrintEngine._barcode,
    "GS ( k": PrintEngine._two_dimensional_code,
    "GS V": PrintEngine._cut,
    "ESC i": PrintEngine._obsolete_partial_cut,
    "ESC m": PrintEngine._obsolete_partial_cut,
    "ESC p": PrintEngine._drawer_pulse,
    "DLE DC4": PrintEngine._real_time_request,
    "ESC B": PrintEngine._beep,
    "DLE EOT": PrintEngine._status,
    "GS r": PrintEngine._status,
    **{name: PrintEngine._not_emulated for name in NOT_EMULATED},
}


def merge_element(previous: Element | None, element: Element) -> Element | None:
    """Bands of one picture sent in pieces (GS v 0 bands, ESC * lines) are one picture in the log:
    the merged element, or None when ``element`` starts something new."""
    if (
        isinstance(previous, PrintedImage)
        and isinstance(element, PrintedImage)
        and previous.width_bytes == element.width_bytes
        and previous.command == element.command
    ):
        return replace(previous, height_dots=previous.height_dots + element.height_dots, data=previous.data + element.data)
    return None
