"""ESC/POS: the encoder (pure functions returning bytes) and the driver (a thin loop over a serial port).

Command bytes follow the Epson "ESC/POS Application Programming Guide / Command Reference"; each
constant names its command. Chinese text uses the FS & / FS . Chinese (Kanji) mode of printers sold
in China, with GB18030 as the character code. Two traps shape ``encode_text``:

* ``¥`` (U+00A5) is a 4-byte sequence in GB18030 (81 30 84 36). Printers with a GB2312/GBK font
  print it as two garbage glyphs, so it is mapped to the full-width ``￥`` (U+FFE5, A3 A4); any
  other character needing 4 bytes is refused (the driver then prints that receipt as an image).
* A printer left in Chinese mode prints the next job's accented Latin (code page bytes >= 0x80) as
  Chinese, so every run of Chinese is closed with FS . and each receipt starts with FS . too.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from terminal.errors import PrinterError, PrinterOfflineError, UnprintableTextError
from terminal.hal.printer import Printer, PrinterProfile, PrinterStatus
from terminal.printer_profiles import choose_text_mode
from terminal.receipt import Align, QrCode, ReceiptData, Rule, TextLine, layout_receipt

if TYPE_CHECKING:
    from PIL.Image import Image

log = logging.getLogger(__name__)

# --- command bytes (Epson ESC/POS command reference) ----------------------------------------------

LINE_FEED = b"\n"  # LF: print the buffer and feed one line
INITIALIZE = b"\x1b@"  # ESC @: clear the buffer, reset modes to power-on defaults
CHINESE_MODE_ON = b"\x1c&"  # FS &: select Kanji (here GB18030) character mode
CHINESE_MODE_OFF = b"\x1c."  # FS .: cancel Kanji character mode
PARTIAL_CUT_AFTER_FEED = b"\x1dVB\x00"  # GS V 66 0: feed to the cutter, then partial cut (function B)
STATUS_PRINTER = b"\x10\x04\x01"  # DLE EOT 1: transmit printer status
STATUS_OFFLINE_CAUSE = b"\x10\x04\x02"  # DLE EOT 2: transmit offline cause status
STATUS_PAPER_SENSOR = b"\x10\x04\x04"  # DLE EOT 4: transmit roll paper sensor status

# Every real-time status byte has bits 0 and 7 clear and bits 1 and 4 set (DLE EOT, "fixed" bits):
# a reply that does not match is line noise or an automatic status message, not our answer.
STATUS_FIXED_BITS_MASK = 0b1001_0011
STATUS_FIXED_BITS_VALUE = 0b0001_0010
STATUS_OFFLINE_BIT = 0x08  # DLE EOT 1, bit 3: offline
STATUS_COVER_OPEN_BIT = 0x04  # DLE EOT 2, bit 2: cover is open
STATUS_PAPER_END_STOP_BIT = 0x20  # DLE EOT 2, bit 5: printing stopped by paper end
STATUS_PAPER_NEAR_END_BITS = 0x0C  # DLE EOT 4, bits 2 and 3: roll paper near-end sensor
STATUS_PAPER_OUT_BITS = 0x60  # DLE EOT 4, bits 5 and 6: roll paper end sensor

# GS ( k QR code (cn = 49) function numbers, Epson reference "GS ( k <Function 165..181>".
QR_SYMBOL_TYPE = 49
QR_FUNCTION_MODEL = 65  # fn 165
QR_FUNCTION_MODULE_SIZE = 67  # fn 167
QR_FUNCTION_ERROR_CORRECTION = 69  # fn 169
QR_FUNCTION_STORE = 80  # fn 180
QR_FUNCTION_PRINT = 81  # fn 181
QR_MODEL_2 = 50
QR_ERROR_CORRECTION_M = 49  # 48 L, 49 M, 50 Q, 51 H
QR_MODULE_DOTS = 6  # fn 167 allows 1..16; 6 dots puts a receipt number's QR at ~20 mm
QR_MAX_DATA_BYTES = 7089  # fn 180: k <= 7089 (the capacity of a version 40 symbol)

# GS v 0 takes the height in two bytes but printers limit it (TM-T20: yH <= 8) and small ones have a
# receive buffer of a few KB, so an image goes out in bands of this many rows.
RASTER_BAND_ROWS = 128
RASTER_MODE_NORMAL = 0  # GS v 0 m = 0: normal width and height

# Without a cutter, the last line must pass the tear bar, ~15 mm above the head: 4 lines of 30 dots.
TEAR_OFF_FEED_LINES = 4
FEED_LINES_MAX = 255  # ESC d n: one byte

DEFAULT_STATUS_TIMEOUT_MS = 500  # a printer answers DLE EOT within a few ms even while printing
# A raster receipt is 40-65 KB: ~20-35 s at 19200 baud, so it is written in chunks and the timeout
# bounds one chunk (4 KB at 9600 baud is ~4.3 s): a stall means the printer stopped taking data.
WRITE_CHUNK_BYTES = 4096
DEFAULT_WRITE_TIMEOUT_MS = 10_000
DEFAULT_BAUD = 19_200  # the TM-T20's factory setting; raster profiles want 115200 if the printer has it

# --- encoder --------------------------------------------------------------------------------------

# Characters with a safe stand-in: ¥ (4 bytes in GB18030) becomes the full-width ￥ in GB2312.
SUBSTITUTIONS = str.maketrans({"\u00a5": "\uffe5", "\u00a0": " "})
GB18030_TWO_BYTES = 2


def select_alignment(align: Align) -> bytes:
    return b"\x1ba" + bytes([int(align)])  # ESC a n


def select_bold(is_bold: bool) -> bytes:
    return b"\x1bE" + bytes([1 if is_bold else 0])  # ESC E n


def select_character_size(width_multiplier: int, height_multiplier: int) -> bytes:
    # GS ! n: bits 4-7 width - 1, bits 0-3 height - 1 (1..8 each).
    if not (1 <= width_multiplier <= 8 and 1 <= height_multiplier <= 8):
        raise ValueError("character size multipliers are 1..8")
    return b"\x1d!" + bytes([(width_multiplier - 1) << 4 | (height_multiplier - 1)])


def feed_lines(count: int) -> bytes:
    return b"\x1bd" + bytes([min(count, FEED_LINES_MAX)])  # ESC d n: print and feed n lines


def encode_text(text: str) -> bytes:
    """``text`` as bytes for a GB18030 printer: ASCII as is, everything else inside FS & ... FS .

    Raises UnprintableTextError for control characters (they would be commands) and for characters
    outside the 2-byte GB18030 range (a GB2312/GBK printer font does not have them)."""
    text = text.translate(SUBSTITUTIONS)
    encoded = bytearray()
    run_start = 0
    for index in range(len(text) + 1):
        is_boundary = index == len(text) or (index > run_start and _is_ascii(text[index]) != _is_ascii(text[run_start]))
        if not is_boundary:
            continue
        run = text[run_start:index]
        if run:
            encoded += _encode_ascii(run) if _is_ascii(run[0]) else _encode_chinese(run)
        run_start = index
    return bytes(encoded)


def _is_ascii(character: str) -> bool:
    return ord(character) < 0x80


def _encode_ascii(run: str) -> bytes:
    for character in run:
        if ord(character) < 0x20 or ord(character) == 0x7F:
            raise UnprintableTextError(f"control character U+{ord(character):04X} in receipt text")
    return run.encode("ascii")


def _encode_chinese(run: str) -> bytes:
    encoded = run.encode("gb18030")
    if len(encoded) != GB18030_TWO_BYTES * len(run):
        for character in run:
            if len(character.encode("gb18030")) != GB18030_TWO_BYTES:
                raise UnprintableTextError(f"{character!r} (U+{ord(character):04X}) has no 2-byte GB18030 code")
    return CHINESE_MODE_ON + encoded + CHINESE_MODE_OFF


def encode_text_line(line: TextLine, columns: int) -> bytes:
    size = 2 if line.is_large else 1
    return b"".join(
        (
            select_alignment(line.align),
            select_bold(line.is_bold),
            select_character_size(size, size),
            encode_text(line.compose(columns)),
            LINE_FEED,
        )
    )


def encode_native_qr(payload: str, *, module_dots: int = QR_MODULE_DOTS) -> bytes:
    """GS ( k: select model 2, module size, error correction M, store ``payload``, print it."""
    data = payload.encode("utf-8")
    if not 1 <= len(data) <= QR_MAX_DATA_BYTES:
        raise ValueError(f"QR payload must be 1..{QR_MAX_DATA_BYTES} bytes, not {len(data)}")

    def function(function_number: int, parameters: bytes) -> bytes:
        length = 2 + len(parameters)  # pL pH count cn and fn too
        return b"\x1d(k" + length.to_bytes(2, "little") + bytes([QR_SYMBOL_TYPE, function_number]) + parameters

    return b"".join(
        (
            function(QR_FUNCTION_MODEL, bytes([QR_MODEL_2, 0])),
            function(QR_FUNCTION_MODULE_SIZE, bytes([module_dots])),
            function(QR_FUNCTION_ERROR_CORRECTION, bytes([QR_ERROR_CORRECTION_M])),
            function(QR_FUNCTION_STORE, b"0" + data),  # m = 48
            function(QR_FUNCTION_PRINT, b"0"),  # m = 48
        )
    )


def encode_raster(image: Image) -> bytes:
    """GS v 0 bands of a 1-bit image (bit 1 = black, most significant bit leftmost)."""
    if image.mode != "1":
        image = image.convert("1")
    if image.width % 8:  # a raster row is whole bytes: pad the right edge with white
        from PIL import Image as PillowImage

        padded = PillowImage.new("1", (image.width + 8 - image.width % 8, image.height), 1)
        padded.paste(image, (0, 0))
        image = padded
    width_dots, height_dots = image.size
    width_bytes = width_dots // 8
    # Pillow packs mode "1" with 1 = white; "1;I" packs it inverted, 1 = black, as the printer wants.
    packed = image.tobytes("raw", "1;I")
    bands = []
    for first_row in range(0, height_dots, RASTER_BAND_ROWS):
        rows = min(RASTER_BAND_ROWS, height_dots - first_row)
        header = b"\x1dv0" + bytes([RASTER_MODE_NORMAL]) + width_bytes.to_bytes(2, "little") + rows.to_bytes(2, "little")
        bands.append(header + packed[first_row * width_bytes : (first_row + rows) * width_bytes])
    return b"".join(bands)


def encode_text_receipt(receipt: ReceiptData, profile: PrinterProfile) -> bytes:
    """The receipt in the printer's own font; the QR native or as a small raster image."""
    from terminal.receipt import render_qr_image

    layout = layout_receipt(receipt, profile.width_dots)
    parts = [INITIALIZE, CHINESE_MODE_OFF]
    for block in layout.blocks:
        if isinstance(block, TextLine):
            parts.append(encode_text_line(block, layout.columns))
        elif isinstance(block, Rule):
            parts.append(encode_text_line(TextLine("-" * layout.columns), layout.columns))
        elif isinstance(block, QrCode):
            parts.append(select_alignment(Align.CENTER))
            if profile.native_qr:
                parts.append(encode_native_qr(block.payload))
            else:
                parts.append(encode_raster(render_qr_image(block.payload, width_dots=profile.width_dots)))
            parts.append(select_alignment(Align.LEFT))
    return b"".join(parts)


def encode_image_receipt(image: Image) -> bytes:
    return INITIALIZE + CHINESE_MODE_OFF + select_alignment(Align.LEFT) + encode_raster(image)


def encode_receipt(receipt: ReceiptData | Image, profile: PrinterProfile, *, baud: int | None = None) -> bytes:
    """All bytes for one copy (without the cut), text or raster as ``profile`` says; for an "auto"
    profile, raster when it crosses a link of ``baud`` in time (``choose_text_mode``)."""
    if not isinstance(receipt, ReceiptData):
        if receipt.width != profile.width_dots:
            raise ValueError(f"image is {receipt.width} dots wide, the printer {profile.width_dots}")
        return encode_image_receipt(receipt)
    from terminal.receipt import render_receipt_image

    raster = None
    if profile.text_mode == "auto":
        raster = encode_image_receipt(render_receipt_image(receipt, profile.width_dots))
    if choose_text_mode(profile, raster_bytes=len(raster or b""), baud=baud) == "gb18030":
        try:
            return encode_text_receipt(receipt, profile)
        except UnprintableTextError as error:
            # The printer's font cannot say it, but an image can: print this one receipt as raster.
            log.warning("printing receipt %s as an image: %s", receipt.receipt_number, error)
    return raster or encode_image_receipt(render_receipt_image(receipt, profile.width_dots))


def encode_cut(profile: PrinterProfile) -> bytes:
    return PARTIAL_CUT_AFTER_FEED if profile.has_cutter else feed_lines(TEAR_OFF_FEED_LINES)


def parse_status(printer_byte: int, offline_cause_byte: int | None, paper_byte: int) -> PrinterStatus:
    """Replies to DLE EOT 1, 2 (asked only when offline, else None) and 4 -> PrinterStatus."""
    for reply in (printer_byte, offline_cause_byte, paper_byte):
        if reply is not None and reply & STATUS_FIXED_BITS_MASK != STATUS_FIXED_BITS_VALUE:
            raise PrinterError(f"unexpected status reply 0x{reply:02X} — check the baud rate")
    cause = offline_cause_byte or 0
    return PrinterStatus(
        is_online=not printer_byte & STATUS_OFFLINE_BIT,
        is_paper_out=bool(paper_byte & STATUS_PAPER_OUT_BITS or cause & STATUS_PAPER_END_STOP_BIT),
        is_paper_near_end=bool(paper_byte & STATUS_PAPER_NEAR_END_BITS),
        is_cover_open=bool(cause & STATUS_COVER_OPEN_BIT),
    )


# --- driver ---------------------------------------------------------------------------------------


def open_serial(path: str, baud: int = DEFAULT_BAUD, *, has_hardware_flow_control: bool = False) -> Any:
    """Open the printer's serial port (a USB adapter, the Pi's UART, or an emulator's pty)."""
    import serial  # lazy: only a terminal that prints opens a port

    return serial.Serial(
        path,
        baud,
        timeout=DEFAULT_STATUS_TIMEOUT_MS / 1000,
        write_timeout=DEFAULT_WRITE_TIMEOUT_MS / 1000,
        rtscts=has_hardware_flow_control,
    )


class EscPosPrinter(Printer):
    """An ESC/POS printer on an open pyserial-like port (``read``, ``write``, ``reset_input_buffer``)."""

    def __init__(self, port: Any, profile: PrinterProfile, *, status_timeout_ms: int = DEFAULT_STATUS_TIMEOUT_MS):
        self.port = port
        self.profile = profile
        self.port.timeout = status_timeout_ms / 1000
        # The link speed decides text or raster for an "auto" profile; a port without one (a test
        # double, USB) counts as fast.
        self.baud: int | None = getattr(port, "baudrate", None)
        if self.baud is not None and self.baud > profile.max_baud:
            raise PrinterError(f"printer {profile.name} takes at most {profile.max_baud} baud, the port is set to {self.baud}")

    def status(self) -> PrinterStatus:
        printer_byte = self._query(STATUS_PRINTER)
        offline_cause_byte = self._query(STATUS_OFFLINE_CAUSE) if printer_byte & STATUS_OFFLINE_BIT else None
        return parse_status(printer_byte, offline_cause_byte, self._query(STATUS_PAPER_SENSOR))

    def print_receipt(self, receipt: ReceiptData | Image) -> None:
        self.ensure_ready(self.status())
        self._write(encode_receipt(receipt, self.profile, baud=self.baud))

    def cut(self) -> None:
        self._write(encode_cut(self.profile))

    def close(self) -> None:
        self.port.close()

    def _query(self, request: bytes) -> int:
        self.port.reset_input_buffer()  # a stale byte would be taken for this answer
        self._write(request)
        try:
            reply = self.port.read(1)
        except OSError as error:
            raise PrinterOfflineError(f"Printer not answering ({error}) — check its power and cable") from error
        if not reply:
            raise PrinterOfflineError("Printer not answering — check its power and cable, then press Reprint")
        return reply[0]

    def _write(self, data: bytes) -> None:
        try:
            for start in range(0, len(data), WRITE_CHUNK_BYTES):
                self.port.write(data[start : start + WRITE_CHUNK_BYTES])
        except OSError as error:  # pyserial's SerialTimeoutException is an OSError too
            raise PrinterOfflineError(f"Printer not taking data ({error}) — check its power and cable") from error
