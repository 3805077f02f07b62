"""Receipt printer models: paper width, fonts, code pages, Chinese font, QR, cutter, fastest baud.

One profile drives both sides: our ESC/POS driver (what to send, text or raster) and the host
simulator's emulated printer (what it accepts and how wide its paper is), so the two cannot drift.
No I/O: ``choose_text_mode`` takes byte counts and a baud rate and returns a decision.

Why text or raster: a raster receipt prints any glyph the same on every printer but is ~8x the bytes
(bench: 39 KB, ~20 s at 19,200 baud, against 4.7 KB and 2.4 s of GB18030 text). On a fast link the
picture costs nothing a cashier notices; on a slow one the printer's own font is the only sane way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Mapping

# Print widths of the two roll sizes at 203 dpi (8 dots/mm): the printable area of a 58 mm roll is
# 48 mm and of an 80 mm roll 72 mm (Epson TM-T20 / TM-T88 specifications).
WIDTH_58MM_DOTS = 384
WIDTH_80MM_DOTS = 576

# Serial framing: 8 data bits, no parity, 1 stop bit, plus the start bit: 10 bits on the wire a byte.
BITS_PER_BYTE_ON_THE_WIRE = 10
# The longest a receipt may take on the wire before the printer's own font is preferred to a picture:
# a cashier hands the receipt over while the customer is still at the till.
RASTER_MAX_SECONDS = 6.0

TextMode = Literal["gb18030", "raster", "auto"]
TEXT_MODES = ("gb18030", "raster", "auto")

# ESC t n -> Python codec, by Epson's character code table numbers (TM-T20 / TM-T88).
EPSON_CODE_PAGES: Mapping[int, str] = {
    0: "cp437", 2: "cp850", 3: "cp860", 4: "cp863", 5: "cp865", 16: "cp1252", 17: "cp866", 18: "cp852",
    19: "cp858",
}  # fmt: skip
# A cheap 58 mm printer sold in China (Xprinter XP-58 class) keeps Epson's numbers for fewer pages.
CHINESE_58MM_CODE_PAGES: Mapping[int, str] = {0: "cp437", 2: "cp850", 16: "cp1252", 17: "cp866"}


@dataclass(frozen=True, slots=True, kw_only=True)
class PrinterProfile:
    """What one printer model can do; chosen per terminal in its config."""

    name: str
    width_dots: int
    # "gb18030": text is sent as characters and the printer's own Chinese font prints them (small,
    # fast over a slow serial line). "raster": the whole receipt is one image (any glyph, any
    # printer, but ~8x more bytes). "auto": raster when the link is fast enough, else text.
    text_mode: TextMode
    native_qr: bool
    has_cutter: bool
    has_chinese_font: bool = True  # GB18030 via FS & (and the printer powers on in Chinese mode)
    fonts: tuple[str, ...] = ("A", "B")  # ESC M fonts: A is 12 x 24 dots, B 9 x 17
    code_pages: Mapping[int, str] = field(default_factory=lambda: dict(EPSON_CODE_PAGES), hash=False)
    max_baud: int = 115_200

    def __post_init__(self) -> None:
        if self.width_dots not in (WIDTH_58MM_DOTS, WIDTH_80MM_DOTS):
            raise ValueError(f"width_dots must be {WIDTH_58MM_DOTS} or {WIDTH_80MM_DOTS}, not {self.width_dots}")
        if self.text_mode not in TEXT_MODES:
            raise ValueError(f"text_mode must be one of {TEXT_MODES}, not {self.text_mode!r}")
        if self.text_mode == "gb18030" and not self.has_chinese_font:
            raise ValueError(f"profile {self.name}: text_mode 'gb18030' needs a printer with a Chinese font")
        if "A" not in self.fonts:
            raise ValueError(f"profile {self.name}: every ESC/POS printer has font A")

    @property
    def width_bytes(self) -> int:
        return self.width_dots // 8


def link_seconds(byte_count: int, baud: int) -> float:
    """How long ``byte_count`` bytes take on a serial line at ``baud`` (no flow-control stalls)."""
    return byte_count * BITS_PER_BYTE_ON_THE_WIRE / baud


def choose_text_mode(profile: PrinterProfile, *, raster_bytes: int, baud: int | None) -> Literal["gb18030", "raster"]:
    """Text or raster for one receipt: the profile's fixed choice, or for "auto" the picture when it
    crosses the link within RASTER_MAX_SECONDS (an unknown baud, e.g. USB, counts as fast)."""
    if profile.text_mode != "auto":
        return profile.text_mode
    if not profile.has_chinese_font:
        return "raster"
    if baud is None or link_seconds(raster_bytes, min(baud, profile.max_baud)) <= RASTER_MAX_SECONDS:
        return "raster"
    return "gb18030"


# Profiles we have met in parks. A cheap 58 mm Chinese printer (Xprinter XP-58 class) has a GB18030
# font but no QR and no cutter, and takes at most 9600 or 19200 baud; an 80 mm kitchen-style printer
# (Epson TM-T20 class, Chinese model) has all three and 115200 baud.
PROFILE_58MM_TEXT = PrinterProfile(
    name="58mm-gb18030", width_dots=WIDTH_58MM_DOTS, text_mode="gb18030", native_qr=False, has_cutter=False,
    code_pages=CHINESE_58MM_CODE_PAGES, max_baud=19_200,
)  # fmt: skip
PROFILE_58MM_RASTER = PrinterProfile(
    name="58mm-raster", width_dots=WIDTH_58MM_DOTS, text_mode="raster", native_qr=False, has_cutter=True
)
PROFILE_58MM_AUTO = PrinterProfile(
    name="58mm-auto", width_dots=WIDTH_58MM_DOTS, text_mode="auto", native_qr=False, has_cutter=True
)
PROFILE_80MM_TEXT = PrinterProfile(
    name="80mm-gb18030", width_dots=WIDTH_80MM_DOTS, text_mode="gb18030", native_qr=True, has_cutter=True
)
PROFILE_80MM_RASTER = PrinterProfile(
    name="80mm-raster", width_dots=WIDTH_80MM_DOTS, text_mode="raster", native_qr=True, has_cutter=True
)
PROFILE_80MM_AUTO = PrinterProfile(
    name="80mm-auto", width_dots=WIDTH_80MM_DOTS, text_mode="auto", native_qr=True, has_cutter=True
)
PROFILES = {
    p.name: p
    for p in (PROFILE_58MM_TEXT, PROFILE_58MM_RASTER, PROFILE_58MM_AUTO, PROFILE_80MM_TEXT, PROFILE_80MM_RASTER, PROFILE_80MM_AUTO)
}
