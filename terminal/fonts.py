"""Finding and loading a font that has Chinese glyphs, for receipts rendered as images.

``FIELDPOS_FONT`` names a font file (``path`` or ``path#face_index`` for a .ttc collection) and wins
over the known paths. Loaded fonts are cached: opening the 5 MB WenQuanYi collection costs ~10 ms,
more than drawing a whole receipt.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from terminal.errors import FontMissingError

if TYPE_CHECKING:
    from PIL.ImageFont import FreeTypeFont

FONT_ENVIRONMENT_VARIABLE = "FIELDPOS_FONT"
FONT_PACKAGE = "fonts-wqy-microhei"


@dataclass(frozen=True, slots=True)
class FontFile:
    path: Path
    face_index: int = 0


# Tried in order. Face 1 of wqy-microhei.ttc is "WenQuanYi Micro Hei Mono": every Latin character has
# the same advance (0.6 em) so columns of figures line up like on a text-mode printer.
KNOWN_FONTS = (
    FontFile(Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"), 1),  # Debian fonts-wqy-microhei
    FontFile(Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"), 1),  # Debian fonts-wqy-zenhei
    FontFile(Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"), 2),  # fonts-noto-cjk, face 2 = SC
)


def find_cjk_font() -> FontFile:
    """The font file to use, or FontMissingError naming the package to install."""
    override = os.environ.get(FONT_ENVIRONMENT_VARIABLE)
    if override:
        path_text, _, index_text = override.partition("#")
        font = FontFile(Path(path_text), int(index_text or 0))
        if not font.path.is_file():
            raise FontMissingError(f"{FONT_ENVIRONMENT_VARIABLE}={override} is not a file")
        return font
    for font in KNOWN_FONTS:
        if font.path.is_file():
            return font
    raise FontMissingError(
        f"No Chinese font found — run: apt-get install {FONT_PACKAGE} (or set {FONT_ENVIRONMENT_VARIABLE})"
    )


@functools.lru_cache(maxsize=8)
def load_font(size_px: int, font: FontFile | None = None) -> FreeTypeFont:
    """The CJK font at ``size_px`` pixels per em, loaded once per (size, file)."""
    from PIL import ImageFont  # lazy: a terminal that never prints never loads Pillow

    chosen = font or find_cjk_font()
    return ImageFont.truetype(str(chosen.path), size_px, index=chosen.face_index)
