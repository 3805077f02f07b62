"""Dots on paper at 203 dpi: character cells, bit images, barcodes and QR codes as Pillow "1" images.

Pure drawing, no printer state: ``host_sim.devices.printer`` decides what goes where. Every image
here is mode "1" with 0 = black (Pillow's convention), at one pixel per printer dot. Sizes follow the
Epson TM-T20 at 203 dpi: Font A 12 x 24 dots, Font B 9 x 17, Kanji 24 x 24; GS ! and ESC ! enlarge a
cell by whole multiples, as the printer does, by repeating dots.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.Image import Image

    from .barcodes import Symbol


@dataclass(frozen=True, slots=True)
class CellFont:
    width_dots: int
    height_dots: int
    pixel_size: int  # WenQuanYi Micro Hei Mono: a Latin advance is 0.6 em, so 20 px fills 12 dots


FONT_A = CellFont(12, 24, 20)
FONT_B = CellFont(9, 17, 15)
KANJI = CellFont(24, 24, 24)
FONTS = {"A": FONT_A, "B": FONT_B}

HRI_GAP_DOTS = 4  # between the bars and their human-readable text
QR_QUIET_ZONE_MODULES = 4  # ISO/IEC 18004's light border, drawn so a reader finds the symbol on paper


def white(width: int, height: int) -> Image:
    from PIL import Image as PillowImage

    return PillowImage.new("1", (max(0, width), max(0, height)), 1)


@functools.lru_cache(maxsize=4096)
def glyph(character: str, font: CellFont, is_bold: bool) -> Image:
    """One character in its base cell; bold is struck twice, one dot apart, like the print head."""
    from PIL import ImageDraw

    from terminal.fonts import load_font

    cell = white(font.width_dots, font.height_dots)
    draw = ImageDraw.Draw(cell)
    draw.fontmode = "1"
    for offset in (0, 1) if is_bold else (0,):
        draw.text((offset, 0), character, font=load_font(font.pixel_size), fill=0)
    return cell


@functools.lru_cache(maxsize=8192)  # a receipt repeats few characters in few styles; cells are never modified
def character_cell(
    character: str,
    font: CellFont,
    *,
    is_bold: bool = False,
    width_multiplier: int = 1,
    height_multiplier: int = 1,
    right_spacing_dots: int = 0,
    underline_dots: int = 0,
    is_inverse: bool = False,
    is_rotated: bool = False,
) -> Image:
    """A printed character: turned 90° clockwise (ESC V), enlarged, its right spacing added
    (enlarged too), underlined, inverted."""
    from PIL import Image as PillowImage

    base = glyph(character, font, is_bold)
    if is_rotated:  # the cell turns with the glyph (24 x 12 for Font A): nothing of it is cut off
        base = base.rotate(-90, expand=True)
    width = base.width * width_multiplier
    height = base.height * height_multiplier
    cell = white(width + right_spacing_dots * width_multiplier, height)
    cell.paste(base.resize((width, height), PillowImage.Resampling.NEAREST), (0, 0))
    if underline_dots:
        cell.paste(0, (0, height - underline_dots, cell.width, height))
    if is_inverse:
        cell = invert(cell)
    return cell


def invert(image: Image) -> Image:
    from PIL import ImageChops

    return ImageChops.invert(image.convert("L")).convert("1")


def scale(image: Image, width_multiplier: int, height_multiplier: int) -> Image:
    from PIL import Image as PillowImage

    if (width_multiplier, height_multiplier) == (1, 1):
        return image
    size = (image.width * width_multiplier, image.height * height_multiplier)
    return image.resize(size, PillowImage.Resampling.NEAREST)


def raster(width_bytes: int, height_dots: int, data: bytes) -> Image:
    """Rows of packed bits, 1 = black, most significant bit leftmost (GS v 0, GS ( L fn 112)."""
    from PIL import Image as PillowImage

    return PillowImage.frombytes("1", (width_bytes * 8, height_dots), bytes(data), "raw", "1;I")


def column_bit_image(mode: int, columns: int, data: bytes) -> Image:
    """ESC * m: columns of 1 (8-dot modes) or 3 (24-dot modes) bytes, most significant bit on top.

    The TM-T20's densities: m 0 is 8 dots tall at 1/3 vertical density and half horizontal (each bit
    is 2 x 3 dots), m 1 full horizontal (1 x 3), m 32 is 24 dots at half horizontal (2 x 1), m 33 full."""
    bytes_per_column = 1 if mode in (0, 1) else 3
    height = 8 * bytes_per_column
    rows = bytearray(((columns + 7) // 8) * height)
    row_bytes = (columns + 7) // 8
    for column in range(columns):
        for byte_index in range(bytes_per_column):
            value = data[column * bytes_per_column + byte_index]
            for bit in range(8):
                if value & (0x80 >> bit):
                    row = byte_index * 8 + bit
                    rows[row * row_bytes + column // 8] |= 0x80 >> (column % 8)
    image = raster(row_bytes, height, bytes(rows)).crop((0, 0, columns, height))
    return scale(image, 2 if mode in (0, 32) else 1, 3 if mode in (0, 1) else 1)


def barcode(symbol: Symbol, height_dots: int, hri_position: int, hri_font: CellFont) -> Image:
    """Bars ``height_dots`` tall, one dot per module character; HRI text 1 above, 2 below, 3 both."""
    from PIL import Image as PillowImage

    bars_row = bytes(0 if module == "1" else 255 for module in symbol.modules)
    bars = PillowImage.frombytes("L", (len(bars_row), 1), bars_row).resize((len(bars_row), height_dots)).convert("1")
    text = _text_line(symbol.human_readable, hri_font)
    is_above, is_below = hri_position in (1, 3), hri_position in (2, 3)
    text_band = text.height + HRI_GAP_DOTS
    width = max(bars.width, text.width)
    image = white(width, bars.height + text_band * (is_above + is_below))
    bars_top = text_band if is_above else 0
    image.paste(bars, ((width - bars.width) // 2, bars_top))
    if is_above:
        image.paste(text, ((width - text.width) // 2, 0))
    if is_below:
        image.paste(text, ((width - text.width) // 2, bars_top + bars.height + HRI_GAP_DOTS))
    return image


def _text_line(text: str, font: CellFont) -> Image:
    image = white(font.width_dots * len(text), font.height_dots)
    for index, character in enumerate(text):
        image.paste(glyph(character, font, False), (index * font.width_dots, 0))
    return image


def qr(data: bytes, *, module_dots: int, error_level: str, is_micro: bool = False) -> Image:
    """A QR code (error level "L", "M", "Q" or "H", never raised by segno) ``module_dots`` per module."""
    import segno

    symbol = segno.make(data, error=error_level, micro=is_micro, boost_error=False)
    return qr_matrix_image(symbol.matrix, module_dots)


def qr_matrix_image(matrix, module_dots: int) -> Image:
    from PIL import Image as PillowImage

    side = len(matrix) + 2 * QR_QUIET_ZONE_MODULES
    light_row = b"\xff" * side
    margin = b"\xff" * QR_QUIET_ZONE_MODULES
    to_grey = bytes.maketrans(b"\x00\x01", b"\xff\x00")  # segno: 1 is dark; mode "L": 0 is black
    rows = [light_row] * QR_QUIET_ZONE_MODULES
    rows += [margin + bytes(row).translate(to_grey) + margin for row in matrix]
    rows += [light_row] * QR_QUIET_ZONE_MODULES
    image = PillowImage.frombytes("L", (side, side), b"".join(rows))
    return image.resize((side * module_dots, side * module_dots), PillowImage.Resampling.NEAREST).convert("1")
