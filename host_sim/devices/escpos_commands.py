"""The ESC/POS command table: every command's name, how long it is, and which parameters are legal.

The lengths are those of the Epson ESC/POS command reference for the TM-T20/TM-T88 class, plus the
commands common 58/80 mm printers sold in China add (``FS &``, ``FS .``, ``FS !``, ``FS 2``,
``ESC B`` beeper, ``GS |`` density) and the three non-Epson line spacings python-escpos sends
(``ESC A``, ``ESC +``). A command's length depends on one of a few shapes: a fixed number of
parameter bytes, data up to a NUL, a count in the parameters (``pL pH``, ``xL xH yL yH``, ``p1..p4``)
or one of the handful of irregular forms written out below (``ESC *``, ``ESC &``, ``GS k``, ...).

This module is data and pure functions: ``host_sim.devices.escpos_parser`` walks a byte stream with
it, and the no-leak test walks the table itself. Nothing here draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

NUL, HT, LF, FF, CR, CAN = 0x00, 0x09, 0x0A, 0x0C, 0x0D, 0x18
DLE, ESC, FS, GS = 0x10, 0x1B, 0x1C, 0x1D
PREFIX_BYTES = (DLE, ESC, FS, GS)

# The largest command we hold in memory: a GS v 0 image at its limits (128 bytes x 4095 rows) is
# 524 kB; GS 8 L could declare 4 GB. A command declaring more is reported and skipped unbuffered.
MAX_COMMAND_BYTES = 1 << 20
NUL_TERMINATED_LIMIT = 255  # GS k data (form A) and ESC D tab stops end at a NUL within this many


class NeedData(Exception):
    """The command is not all here yet (the parser waits for more bytes)."""


class MalformedCommand(Exception):
    """The bytes after a known prefix cannot be this command; ``consumed`` counts what to step over."""

    def __init__(self, reason: str, consumed: int):
        super().__init__(reason)
        self.reason = reason
        self.consumed = consumed


# A shape: the parameter bytes after the prefix -> how many of them belong to the command.
# It raises NeedData when it must see more, MalformedCommand when they cannot be this command.
Shape = Callable[[bytes], int]
# A check: the command's parameter bytes -> None, or why the printer rejects them.
Check = Callable[[bytes], "str | None"]


@dataclass(frozen=True, slots=True)
class CommandSpec:
    prefix: bytes
    name: str  # the reference's mnemonic, e.g. "GS v 0"; the renderer dispatches on it
    shape: Shape
    check: Check | None = None


def _byte(parameters: bytes, index: int) -> int:
    if index >= len(parameters):
        raise NeedData
    return parameters[index]


def _little_endian(parameters: bytes, start: int, size: int) -> int:
    if start + size > len(parameters):
        raise NeedData
    return int.from_bytes(parameters[start : start + size], "little")


def fixed(count: int) -> Shape:
    return lambda _parameters: count


def nul_terminated(start: int = 0) -> Shape:
    def shape(parameters: bytes) -> int:
        end = parameters.find(NUL, start, start + NUL_TERMINATED_LIMIT + 1)
        if end >= 0:
            return end + 1
        if len(parameters) > start + NUL_TERMINATED_LIMIT:
            raise MalformedCommand(f"no NUL within {NUL_TERMINATED_LIMIT} bytes", start)
        raise NeedData

    return shape


def counted(start: int, size: int) -> Shape:
    """A little-endian count of ``size`` bytes at ``start`` giving the number of bytes that follow."""
    return lambda parameters: start + size + _little_endian(parameters, start, size)


def function_with_length(parameters: bytes) -> int:
    """GS ( X pL pH ..., ESC ( X pL pH ..., FS ( X pL pH ...: (pL + pH * 256) bytes follow pL pH."""
    return 2 + _little_endian(parameters, 0, 2)


def column_bit_image(parameters: bytes) -> int:
    """ESC * m nL nH d1..dk: k = n for the 8-dot modes (m 0, 1), 3n for the 24-dot modes (m 32, 33)."""
    mode = _byte(parameters, 0)
    columns = _little_endian(parameters, 1, 2)
    if mode in (0, 1):
        return 3 + columns
    if mode in (32, 33):
        return 3 + 3 * columns
    raise MalformedCommand(f"bit-image mode {mode} is not 0, 1, 32 or 33", 1)


def raster_bit_image(parameters: bytes) -> int:
    """GS v 0 m xL xH yL yH d1..dk: k = x bytes per row times y rows."""
    return 5 + _little_endian(parameters, 1, 2) * _little_endian(parameters, 3, 2)


def variable_height_bit_image(parameters: bytes) -> int:
    """GS Q 0 m xL xH yL yH d1..dk: x columns of (y + 7) // 8 bytes."""
    return 5 + _little_endian(parameters, 1, 2) * ((_little_endian(parameters, 3, 2) + 7) // 8)


def downloaded_bit_image(parameters: bytes) -> int:
    """GS * x y d1..dk: k = x * y * 8 (x and y in units of 8 dots)."""
    return 2 + _byte(parameters, 0) * _byte(parameters, 1) * 8


def barcode(parameters: bytes) -> int:
    """GS k m d1..dk NUL (m 0..6) or GS k m n d1..dn (m 65..79)."""
    system = _byte(parameters, 0)
    if system <= 6:
        return nul_terminated(1)(parameters)
    if 65 <= system <= 79:
        return 2 + _byte(parameters, 1)
    raise MalformedCommand(f"barcode system {system} is not 0..6 or 65..79", 1)


def user_defined_characters(parameters: bytes) -> int:
    """ESC & y c1 c2 [x d1..d(y*x)] for each character c1..c2."""
    height_bytes, first, last = _byte(parameters, 0), _byte(parameters, 1), _byte(parameters, 2)
    if last < first or not 32 <= first <= 126 or last > 126:
        raise MalformedCommand(f"character range {first}..{last} is not within 32..126", 3)
    length = 3
    for _ in range(last - first + 1):
        length += 1 + height_bytes * _byte(parameters, length)
    return length


def nv_bit_images(parameters: bytes) -> int:
    """FS q n [xL xH yL yH d1..dk]1..n with k = x * y * 8."""
    length = 1
    for _ in range(_byte(parameters, 0)):
        length += 4 + _little_endian(parameters, length, 2) * _little_endian(parameters, length + 2, 2) * 8
    return length


def bmp_graphics(parameters: bytes) -> int:
    """GS D m fn a kc1 kc2 b c d1..dk: d is a Windows BMP whose own header gives its size k."""
    function = _byte(parameters, 1)
    if function not in (0x43, 0x53):
        raise MalformedCommand(f"GS D function {function} is not 67 or 83", 2)
    if bytes(parameters[7:9]) != b"BM" and len(parameters) >= 9:
        raise MalformedCommand("GS D data is not a BMP", 7)
    return 7 + _little_endian(parameters, 9, 4)


def real_time_status(parameters: bytes) -> int:
    """DLE EOT n (n 1..4) or DLE EOT n a (n 7, 8)."""
    kind = _byte(parameters, 0)
    if 1 <= kind <= 4:
        return 1
    if kind in (7, 8):
        return 2
    raise MalformedCommand(f"status kind {kind} is not 1..4, 7 or 8", 1)


def real_time_request(parameters: bytes) -> int:
    """DLE DC4 fn ...: fn 1 (pulse) m t, fn 2 (power off) a b, fn 3 (clear buffer) a b c d e ..."""
    function = _byte(parameters, 0)
    lengths = {1: 3, 2: 3, 3: 3, 7: 2, 8: 8}
    if function in lengths:
        return lengths[function]
    raise MalformedCommand(f"DLE DC4 function {function} is not 1, 2, 3, 7 or 8", 1)


def cut(parameters: bytes) -> int:
    """GS V m (m 0, 1, 48, 49) or GS V m n (m 65, 66, 97, 98, 103, 104)."""
    mode = _byte(parameters, 0)
    if mode in (0, 1, 48, 49):
        return 1
    if mode in (65, 66, 97, 98, 103, 104):
        return 2
    raise MalformedCommand(f"cut mode {mode} is not 0, 1, 48, 49, 65, 66, 97, 98, 103 or 104", 1)


def nv_user_memory(parameters: bytes) -> int:
    """FS g 1 m a1..a4 nL nH d1..dk (write) or FS g 2 m a1..a4 nL nH (read)."""
    function = _byte(parameters, 0)
    if function == 0x31:
        return 8 + _little_endian(parameters, 6, 2)
    if function == 0x32:
        return 8
    raise MalformedCommand(f"FS g function {function} is not 49 or 50", 1)


# --- parameter checks (the printer ignores a command with an illegal parameter) -------------------


def one_of(*allowed: int) -> Check:
    return lambda parameters: None if parameters[0] in allowed else f"{parameters[0]} is not one of {allowed}"


def within(low: int, high: int) -> Check:
    return lambda parameters: None if low <= parameters[0] <= high else f"{parameters[0]} is not {low}..{high}"


def _character_size(parameters: bytes) -> str | None:
    n = parameters[0]
    return None if n >> 4 <= 7 and n & 0x0F <= 7 else f"size 0x{n:02X}: width and height are 1..8 each"


def _raster_mode(parameters: bytes) -> str | None:
    if parameters[0] not in (0, 1, 2, 3, 48, 49, 50, 51):
        return f"raster mode {parameters[0]} is not 0..3 or 48..51"
    if _little_endian(parameters, 1, 2) == 0 or _little_endian(parameters, 3, 2) == 0:
        return "raster image with no width or no height"
    return None


ZERO_ONE_TWO = (0, 1, 2, 48, 49, 50)
ZERO_ONE = (0, 1, 48, 49)

# --- the table ------------------------------------------------------------------------------------


def _spec(prefix: str, shape: Shape, check: Check | None = None) -> CommandSpec:
    names = {"DLE": DLE, "ESC": ESC, "FS": FS, "GS": GS, "SP": 0x20, "EOT": 0x04, "ENQ": 0x05, "DC4": 0x14,
             "HT": HT, "LF": LF, "FF": FF, "CR": CR, "CAN": CAN}  # fmt: skip
    raw = bytes(names[word] if word in names else ord(word) for word in prefix.split())
    return CommandSpec(raw, prefix, shape, check)


COMMANDS: tuple[CommandSpec, ...] = (
    # one-byte controls
    _spec("HT", fixed(0)),  # horizontal tab
    _spec("LF", fixed(0)),  # print and line feed
    _spec("FF", fixed(0)),  # print and return to standard mode (page mode)
    _spec("CR", fixed(0)),  # print and carriage return (ignored when auto line feed is off)
    _spec("CAN", fixed(0)),  # cancel print data in page mode
    # DLE: real-time commands
    _spec("DLE EOT", real_time_status),  # transmit real-time status
    _spec("DLE ENQ", fixed(1)),  # real-time request to printer
    _spec("DLE DC4", real_time_request),  # real-time pulse, power-off, clear buffer
    # ESC
    _spec("ESC FF", fixed(0)),  # print data in page mode
    _spec("ESC SP", fixed(1)),  # right-side character spacing
    _spec("ESC !", fixed(1)),  # print mode (font, emphasised, double height/width, underline)
    _spec("ESC $", fixed(2)),  # absolute print position
    _spec("ESC %", fixed(1)),  # select/cancel user-defined character set
    _spec("ESC &", user_defined_characters),  # define user-defined characters
    _spec("ESC *", column_bit_image),  # select bit-image mode
    _spec("ESC -", fixed(1), one_of(*ZERO_ONE_TWO)),  # underline mode
    _spec("ESC 2", fixed(0)),  # default line spacing
    _spec("ESC 3", fixed(1)),  # line spacing n
    _spec("ESC =", fixed(1)),  # select peripheral device
    _spec("ESC ?", fixed(1)),  # cancel user-defined characters
    _spec("ESC @", fixed(0)),  # initialize printer
    _spec("ESC A", fixed(1)),  # line spacing n/60 inch (non-Epson; python-escpos)
    _spec("ESC +", fixed(1)),  # line spacing n/360 inch (non-Epson; python-escpos)
    _spec("ESC B", fixed(2)),  # beeper n times t x 50 ms (Chinese printers)
    _spec("ESC D", nul_terminated()),  # horizontal tab positions
    _spec("ESC E", fixed(1)),  # emphasised mode
    _spec("ESC G", fixed(1)),  # double-strike mode
    _spec("ESC J", fixed(1)),  # print and feed paper n dots
    _spec("ESC K", fixed(1)),  # print and reverse feed (impact models)
    _spec("ESC L", fixed(0)),  # select page mode
    _spec("ESC M", fixed(1), one_of(*ZERO_ONE_TWO, 97, 98)),  # character font
    _spec("ESC R", fixed(1), within(0, 17)),  # international character set
    _spec("ESC S", fixed(0)),  # select standard mode
    _spec("ESC T", fixed(1)),  # print direction in page mode
    _spec("ESC U", fixed(1)),  # unidirectional printing
    _spec("ESC V", fixed(1), one_of(0, 1, 2, 48, 49, 50)),  # 90° clockwise rotation
    _spec("ESC W", fixed(8)),  # print area in page mode
    _spec("ESC \\", fixed(2)),  # relative print position
    _spec("ESC a", fixed(1), one_of(*ZERO_ONE_TWO)),  # justification
    _spec("ESC c 0", fixed(1)),  # paper type(s) to output to
    _spec("ESC c 1", fixed(1)),  # paper type(s) for command settings
    _spec("ESC c 3", fixed(1)),  # paper sensors to output paper-end signals
    _spec("ESC c 4", fixed(1)),  # paper sensors to stop printing
    _spec("ESC c 5", fixed(1)),  # enable/disable panel buttons
    _spec("ESC d", fixed(1)),  # print and feed n lines
    _spec("ESC e", fixed(1)),  # print and reverse feed n lines
    _spec("ESC f", fixed(2)),  # cut sheet wait time (slip)
    _spec("ESC i", fixed(0)),  # partial cut, one point left (obsolete)
    _spec("ESC m", fixed(0)),  # partial cut, three points left (obsolete)
    _spec("ESC p", fixed(3), one_of(*ZERO_ONE)),  # generate pulse (cash drawer)
    _spec("ESC r", fixed(1)),  # print colour
    _spec("ESC t", fixed(1)),  # character code table
    _spec("ESC u", fixed(1)),  # transmit peripheral device status
    _spec("ESC v", fixed(0)),  # transmit paper sensor status
    _spec("ESC {", fixed(1)),  # upside-down print mode
    _spec("ESC ( A", function_with_length),  # beeper (TM models with a buzzer)
    _spec("ESC ( Y", function_with_length),  # enable/disable print control
    # FS: Kanji (here GB18030) and NV images
    _spec("FS !", fixed(1)),  # Kanji print mode
    _spec("FS &", fixed(0)),  # Kanji character mode on
    _spec("FS -", fixed(1), one_of(*ZERO_ONE_TWO)),  # Kanji underline
    _spec("FS .", fixed(0)),  # Kanji character mode off
    _spec("FS 2", fixed(2 + 72)),  # define user-defined Kanji c1 c2 + 24 x 24 dots
    _spec("FS ?", fixed(2)),  # cancel user-defined Kanji
    _spec("FS C", fixed(1)),  # Kanji character code system
    _spec("FS S", fixed(2)),  # Kanji left and right spacing
    _spec("FS W", fixed(1)),  # Kanji quadruple size
    _spec("FS p", fixed(2)),  # print NV bit image n in mode m
    _spec("FS q", nv_bit_images),  # define NV bit images
    _spec("FS g", nv_user_memory),  # NV user memory
    _spec("FS ( A", function_with_length),  # Kanji character font
    _spec("FS ( C", function_with_length),  # character code (UTF-8 on newer models)
    _spec("FS ( E", function_with_length),  # receipt enhancement
    _spec("FS ( L", function_with_length),  # label and black mark paper
    _spec("FS ( e", function_with_length),  # automatic status back, extended
    # GS
    _spec("GS !", fixed(1), _character_size),  # character size 1..8 x 1..8
    _spec("GS $", fixed(2)),  # absolute vertical position in page mode
    _spec("GS ( A", function_with_length),  # test print
    _spec("GS ( C", function_with_length),  # edit NV user memory
    _spec("GS ( D", function_with_length),  # enable/disable real-time commands
    _spec("GS ( E", function_with_length),  # user setup commands
    _spec("GS ( H", function_with_length),  # request transmission of response or status
    _spec("GS ( K", function_with_length),  # print control (density, speed)
    _spec("GS ( L", function_with_length),  # graphics
    _spec("GS ( M", function_with_length),  # customise printer control value(s)
    _spec("GS ( N", function_with_length),  # character effects (colour, shadow)
    _spec("GS ( P", function_with_length),  # page mode control
    _spec("GS ( Q", function_with_length),  # draw lines in page mode
    _spec("GS ( k", function_with_length),  # 2-D codes (QR, PDF417, ...)
    _spec("GS ( z", function_with_length),  # read-out status of the receipt (TM-T88VI)
    _spec("GS *", downloaded_bit_image),  # define downloaded bit image
    _spec("GS /", fixed(1)),  # print downloaded bit image
    _spec("GS 8 L", counted(0, 4)),  # graphics, 4-byte length
    _spec("GS :", fixed(0)),  # start/end macro definition
    _spec("GS B", fixed(1)),  # white/black reverse print
    _spec("GS C 0", fixed(2)),  # counter print mode (obsolete)
    _spec("GS C 1", fixed(6)),  # counter mode A (obsolete)
    _spec("GS C 2", fixed(2)),  # counter value (obsolete)
    _spec("GS D", bmp_graphics),  # Windows BMP NV/download graphics
    _spec("GS E", fixed(1)),  # head energising time
    _spec("GS H", fixed(1), one_of(0, 1, 2, 3, 48, 49, 50, 51)),  # HRI position
    _spec("GS I", fixed(1)),  # transmit printer ID
    _spec("GS L", fixed(2)),  # left margin
    _spec("GS P", fixed(2)),  # horizontal and vertical motion units
    _spec("GS Q 0", variable_height_bit_image),  # print variable vertical size bit image
    _spec("GS T", fixed(1)),  # print position to the beginning of the line
    _spec("GS V", cut),  # select cut mode and cut paper
    _spec("GS W", fixed(2)),  # print area width
    _spec("GS \\", fixed(2)),  # relative vertical position in page mode
    _spec("GS ^", fixed(3)),  # execute macro
    _spec("GS a", fixed(1)),  # automatic status back
    _spec("GS b", fixed(1)),  # smoothing mode
    _spec("GS c", fixed(0)),  # print counter (obsolete)
    _spec("GS f", fixed(1), one_of(0, 1, 2, 3, 4, 48, 49, 50, 51, 52, 97, 98)),  # HRI font
    _spec("GS g 0", fixed(3)),  # initialise maintenance counter
    _spec("GS g 2", fixed(3)),  # transmit maintenance counter
    _spec("GS h", fixed(1), within(1, 255)),  # barcode height
    _spec("GS j", fixed(1)),  # automatic status back (ink)
    _spec("GS k", barcode),  # print barcode
    _spec("GS r", fixed(1), one_of(1, 2, 4, 49, 50, 52)),  # transmit status
    _spec("GS v 0", raster_bit_image, _raster_mode),  # print raster bit image
    _spec("GS w", fixed(1), within(1, 6)),  # barcode module width
    _spec("GS z 0", fixed(2)),  # online recovery wait time
    _spec("GS |", fixed(1)),  # print density (Chinese printers; python-escpos)
)

COMMANDS_BY_PREFIX: dict[bytes, CommandSpec] = {spec.prefix: spec for spec in COMMANDS}
PREFIX_LENGTHS = sorted({len(spec.prefix) for spec in COMMANDS}, reverse=True)


def find_spec(data: bytes) -> CommandSpec | None:
    """The command whose prefix starts ``data`` (the longest wins), or None."""
    for length in PREFIX_LENGTHS:
        spec = COMMANDS_BY_PREFIX.get(bytes(data[:length]))
        if spec is not None:
            return spec
    return None


def is_prefix_of_longer(data: bytes) -> bool:
    """True when ``data`` could still grow into a longer prefix (e.g. "GS (" before its letter)."""
    return any(len(spec.prefix) > len(data) and spec.prefix.startswith(data) for spec in COMMANDS)
