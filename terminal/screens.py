"""What the terminal's display says, as a small model (:class:`Screen`), and its picture.

:func:`render_screen` lays a screen out on a 1-bit panel: a title bar, an optional big amount, up to
four lines and a footer, in the CJK font (``terminal.fonts``) so Chinese and Latin share a line. The
layout is designed for the 128x64 OLED (13-pixel text in 14-pixel rows: title plus three rows, or
title, amount, one line and footer); larger panels (320x240) get the same layout scaled up, with
room for all four lines. The tone shows in the title bar, so a cashier tells an approval from a decline at a
glance, before reading: error is an inverted (lit) bar, warning a framed one, ok carries a tick.

Nothing is silently cut from an amount: one that does not fit even in the line font is a ValueError.
A line too wide for the panel ends in "…". A screen with more rows than the panel has is a
ValueError naming what to drop: the app's screens are fixed, so a test catches it.

Pillow is imported inside :func:`render_screen`: building a Screen costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
import functools
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from PIL.Image import Image
    from PIL.ImageDraw import ImageDraw
    from PIL.ImageFont import FreeTypeFont

Tone = Literal["normal", "ok", "error", "warning"]
TONES = ("normal", "ok", "error", "warning")
MAX_LINES = 4
MAX_TEXT_CHARACTERS = 64  # far past any panel's width: longer text is a bug, not a long name

# The layout on the 128x64 panel, in pixels; larger panels multiply every figure by one scale.
# 13 px is the smallest size at which the WenQuanYi glyphs stay readable drawn without
# anti-aliasing (at 12 px strokes of 额 or 需 merge): CJK fills 11 rows above the baseline and the
# baseline row, Latin descenders 2 below, so a 14-pixel row keeps lines apart. That leaves room
# below the title for three rows, or an amount, one line and the footer.
BASE_SIZE = (128, 64)
TEXT_FONT_PX = 13
ROW_PX = 14
TEXT_BASELINE_PX = 11
TITLE_BAR_PX = 15
TITLE_BASELINE_PX = 12
BODY_TOP_PX = 16  # title bar, then a one-pixel rule
AMOUNT_FONT_PX = 24
AMOUNT_BLOCK_PX = 20  # digits at 24 px rise 17 rows above the baseline and have no descenders
AMOUNT_BASELINE_PX = 18
MARGIN_PX = 2
TICK_BOX_PX = 10
ELLIPSIS = "\u2026"

LIT, DARK = 1, 0  # mode "1": 1 is a lit OLED pixel


@dataclass(frozen=True, slots=True, kw_only=True)
class Screen:
    """One screenful. ``lines`` may be given as a list; it is kept as a tuple."""

    title: str
    lines: tuple[str, ...] = ()
    footer: str = ""
    tone: Tone = "normal"
    amount_text: str | None = None  # e.g. "30.00", already formatted (terminal.receipt.format_fen)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lines", tuple(self.lines))
        if len(self.lines) > MAX_LINES:
            raise ValueError(f"a screen has at most {MAX_LINES} lines, not {len(self.lines)}")
        if self.tone not in TONES:
            raise ValueError(f"tone must be one of {', '.join(TONES)}, not {self.tone!r}")
        texts = [self.title, self.footer, *self.lines] + ([self.amount_text] if self.amount_text is not None else [])
        for text in texts:
            if not isinstance(text, str):
                raise TypeError(f"screen text must be str, not {type(text).__name__}")
            if "\n" in text or len(text) > MAX_TEXT_CHARACTERS:
                raise ValueError(f"screen text must be one line of at most {MAX_TEXT_CHARACTERS} characters: {text!r}")


@dataclass(frozen=True, slots=True)
class _Layout:
    """The 128x64 figures multiplied for one panel size."""

    width: int
    height: int
    scale: float

    def px(self, base_px: float) -> int:
        return max(1, round(base_px * self.scale))

    @property
    def footer_top(self) -> int:
        return self.height - self.px(ROW_PX)


def render_screen(screen: Screen, size: tuple[int, int] = BASE_SIZE) -> Image:
    """The screen as a mode "1" image of ``size`` (1 = lit), ready for ``Display.show``; the image
    is the caller's own (a copy), to change as it likes."""
    # A till shows the same few screens over and over (idle, the menu, the tap prompt, an amount as
    # it is typed), and drawing text is the costly part of a screen (measuring and rasterising CJK
    # glyphs, milliseconds a line): each (screen, size, font) is drawn once and copied after.
    return _drawn_screen(screen, tuple(size), _display_font_file()).copy()


@functools.lru_cache(maxsize=128)  # a 128x64 1-bit image is 1 KiB: 128 of them cost a Pi Zero little
def _drawn_screen(screen: Screen, size: tuple[int, int], font_file) -> Image:
    # font_file keys the cache only (a FIELDPOS_FONT changed meanwhile draws anew); the drawing loads it.
    from PIL import Image as PillowImage
    from PIL import ImageDraw

    width, height = size
    layout = _Layout(width, height, min(width / BASE_SIZE[0], height / BASE_SIZE[1]))
    _check_fits(screen, layout)
    image = PillowImage.new("1", size, DARK)
    draw = ImageDraw.Draw(image)
    draw.fontmode = "1"  # no anti-aliasing: a pixel is on or off
    text_font = load_display_font(layout.px(TEXT_FONT_PX))
    _draw_title_bar(draw, screen, layout, text_font)
    row_top = layout.px(BODY_TOP_PX)
    if screen.amount_text is not None:
        _draw_amount(draw, screen.amount_text, layout, row_top)
        row_top += layout.px(AMOUNT_BLOCK_PX)
    for line in screen.lines:
        baseline = row_top + layout.px(TEXT_BASELINE_PX)
        _draw_text(draw, line, layout, text_font, left=layout.px(MARGIN_PX), baseline=baseline)
        row_top += layout.px(ROW_PX)
    if screen.footer:
        footer_width = min(text_font.getlength(screen.footer), width - 2 * layout.px(MARGIN_PX))
        baseline = layout.footer_top + layout.px(TEXT_BASELINE_PX)
        _draw_text(draw, screen.footer, layout, text_font, left=round((width - footer_width) / 2), baseline=baseline)
    return image


def panel_lines(text: str, rows: int, size: tuple[int, int] = BASE_SIZE) -> tuple[str, ...]:
    """``text`` (a reason: "中文 English — what to do") as at most ``rows`` lines that each fit the
    panel's width: the Chinese on its own line, then the English broken between words (Chinese breaks
    between any two characters), and the last line
    ending in "…" only when even ``rows`` lines cannot hold it all. Most reasons are two to three
    times wider than a 128-pixel panel; cut at its edge they lose the English that says what to do."""
    layout = _Layout(*size, min(size[0] / BASE_SIZE[0], size[1] / BASE_SIZE[1]))
    font = load_display_font(layout.px(TEXT_FONT_PX))
    available = layout.width - 2 * layout.px(MARGIN_PX)
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        # The Chinese on a line of its own, whole: the English follows on the next.
        changes_language = bool(current) and not current.isascii() and word[0].isascii() and word[0].isalpha()
        if font.getlength(candidate) <= available and not changes_language:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = word
        while font.getlength(current) > available and not current.isascii():  # Chinese breaks anywhere
            cut = next(i for i in range(len(current), 0, -1) if font.getlength(current[:i]) <= available)
            lines.append(current[:cut])
            current = current[cut:]
    if current:
        lines.append(current)
    if len(lines) > rows:
        lines[rows - 1:] = [_fit_width(" ".join(lines[rows - 1:]), font, available)]
    return tuple(lines)


def load_display_font(size_px: int) -> FreeTypeFont:
    """The CJK font for the display: the proportional face of a WenQuanYi collection.

    Receipts use the monospaced face (face 1) so columns line up; on a 128-pixel panel its 0.6 em
    Latin is too wide ("余额 Balance 70.00" would not fit), so the display takes face 0. A font
    named by FIELDPOS_FONT is used as given.
    """
    from terminal.fonts import load_font

    return load_font(size_px, _display_font_file())


def _display_font_file():
    """The font file and face :func:`load_display_font` loads (FIELDPOS_FONT is read each time)."""
    from terminal.fonts import KNOWN_FONTS, FontFile, find_cjk_font

    chosen = find_cjk_font()
    if chosen in KNOWN_FONTS and chosen.path.name.startswith("wqy-"):
        chosen = FontFile(chosen.path, 0)
    return chosen


def _check_fits(screen: Screen, layout: _Layout) -> None:
    body_bottom = layout.px(BODY_TOP_PX) + len(screen.lines) * layout.px(ROW_PX)
    if screen.amount_text is not None:
        body_bottom += layout.px(AMOUNT_BLOCK_PX)
    limit = layout.footer_top if screen.footer else layout.height
    if body_bottom > limit:
        raise ValueError(
            f"screen {screen.title!r} needs {body_bottom - limit} more pixel rows than a {layout.width}x"
            f"{layout.height} panel has: drop a line (or the footer)"
        )


def _draw_title_bar(draw: ImageDraw, screen: Screen, layout: _Layout, font: FreeTypeFont) -> None:
    bar_bottom = layout.px(TITLE_BAR_PX) - 1
    text_colour = LIT
    if screen.tone == "error":
        draw.rectangle((0, 0, layout.width - 1, bar_bottom), fill=LIT)
        text_colour = DARK
    elif screen.tone == "warning":
        draw.rectangle((0, 0, layout.width - 1, bar_bottom), outline=LIT, width=layout.px(1))
    # A full-width rule ends the bar in every tone, so a short title still reads as a heading.
    draw.line((0, bar_bottom + 1, layout.width - 1, bar_bottom + 1), fill=LIT, width=layout.px(1))
    left = layout.px(MARGIN_PX) + (layout.px(1) if screen.tone == "warning" else 0)
    if screen.tone == "ok":
        _draw_tick(draw, layout, left)
        left += layout.px(TICK_BOX_PX + MARGIN_PX)
    _draw_text(draw, screen.title, layout, font, left=left, baseline=layout.px(TITLE_BASELINE_PX), fill=text_colour)


def _draw_tick(draw: ImageDraw, layout: _Layout, left: int) -> None:
    """A tick drawn with lines: it does not depend on the font having a glyph for it."""
    points = [(left + layout.px(x), layout.px(y)) for x, y in ((0, 7), (3, 10), (9, 2))]
    draw.line(points, fill=LIT, width=layout.px(2))


def _draw_amount(draw: ImageDraw, amount_text: str, layout: _Layout, top: int) -> None:
    available = layout.width - 2 * layout.px(MARGIN_PX)
    largest_px, smallest_px = layout.px(AMOUNT_FONT_PX), layout.px(TEXT_FONT_PX)
    # Width grows with the size, so start near the size that fits rather than trying every one
    # (each size is a font load; the cache holds only a few).
    width_at_largest = load_display_font(largest_px).getlength(amount_text)
    size_px = largest_px if width_at_largest <= available else int(largest_px * available / width_at_largest)
    # Largest size that fits, down to the line font: an amount is never cut short.
    for candidate_px in range(size_px, smallest_px - 1, -1):
        font = load_display_font(candidate_px)
        text_width = font.getlength(amount_text)
        if text_width <= available:
            position = (round((layout.width - text_width) / 2), top + layout.px(AMOUNT_BASELINE_PX))
            draw.text(position, amount_text, font=font, fill=LIT, anchor="ls")
            return
    raise ValueError(f"amount {amount_text!r} does not fit a {layout.width}-pixel panel")


def _draw_text(
    draw: ImageDraw, text: str, layout: _Layout, font: FreeTypeFont, *, left: int, baseline: int, fill: int = LIT
) -> None:
    available = layout.width - left - layout.px(MARGIN_PX)
    draw.text((left, baseline), _fit_width(text, font, available), font=font, fill=fill, anchor="ls")


def _fit_width(text: str, font: FreeTypeFont, available_px: int) -> str:
    if font.getlength(text) <= available_px:
        return text
    # The longest prefix that fits with the ellipsis, by bisection: measuring text is the costly
    # part of drawing a screen (~0.2 ms a call), and a long line would take dozens of tries one by one.
    fits, too_long = 0, len(text)
    while too_long - fits > 1:
        middle = (fits + too_long) // 2
        if font.getlength(text[:middle] + ELLIPSIS) <= available_px:
            fits = middle
        else:
            too_long = middle
    return text[:fits] + ELLIPSIS
