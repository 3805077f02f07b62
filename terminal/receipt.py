"""A receipt, laid out once, rendered two ways: a Pillow image (raster printers) or styled text lines
(printers with their own GB18030 font, encoded by ``terminal.drivers.escpos``).

Layout works in text columns of the printer's Font A (12 x 24 dots, so 32 columns on 58 mm paper and
48 on 80 mm). An ASCII character takes one column; anything else is printed by the printer's Chinese
font in a 24-dot cell, so takes two. The image renderer uses a font whose Latin advance is exactly one
column (see ``IMAGE_FONT_SIZE_PX``), so a receipt looks the same on both kinds of printer.

Pillow and segno are imported inside the functions that need them: a terminal that has not printed
yet has not paid for them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Union

# The largest amount a receipt prints is the protocol's: no sale the ledger could book is refused at
# the printer, and a value in yuan passed as fen (or fen multiplied twice) is caught here rather than
# printed. Its lines are the protocol's LineItem, which holds quantity and price to the same limits.
from protocol.limits import MAX_AMOUNT_FEN
from protocol.messages import LineItem
from protocol.money import format_fen

if TYPE_CHECKING:
    from PIL.Image import Image

# Epson Font A is 12 x 24 dots (ESC/POS reference, ESC M); the text layout counts these columns.
FONT_A_WIDTH_DOTS = 12
FONT_A_HEIGHT_DOTS = 24



def display_width(text: str) -> int:
    """Columns ``text`` takes on the printer: ASCII 1, anything else 2 (printed by the Chinese font)."""
    return sum(1 if ord(character) < 0x80 else 2 for character in text)


def wrap_to_columns(text: str, columns: int) -> list[str]:
    """Split ``text`` into pieces no wider than ``columns``: Chinese may break between any two
    characters, a Latin word only at a space ("Demo Farm", not "Demo Fa / rm") unless it is longer
    than a whole line."""
    pieces: list[str] = []
    current, current_width = "", 0
    for character in text:
        width = display_width(character)
        if current_width + width > columns:
            space = current.rfind(" ")
            if character != " " and ord(character) < 0x80 and space > 0 and current[space + 1:].isascii():
                pieces.append(current[:space].rstrip())
                current = current[space + 1 :]
            else:
                pieces.append(current.rstrip())
                current = "" if character == " " else current[len(current):]
            current_width = display_width(current)
            if character == " " and not current:
                continue
        current += character
        current_width += width
    pieces.append(current)
    return pieces


# The ledger's transaction number, on the merchant copy only: not what a visitor quotes.
INTERNAL_REF_LABEL = "内部号 Internal"


class ReceiptCopy(enum.Enum):
    CUSTOMER = "顾客联"
    MERCHANT = "商户联"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceiptData:
    """Everything one printed copy says. Build it once per sale; ``copies()`` gives both parts."""

    park_name: str
    station_name: str
    terminal_id: str
    seq: int
    operator: str
    time_text: str  # already in the park's time zone; the app formats it
    is_time_uncertain: bool = False  # the terminal's clock has not been confirmed since boot
    masked_card_number: str  # e.g. "**** 1234"; never the full number
    line_items: tuple[LineItem, ...] = ()  # the protocol's line items: what the request carried
    amount_fen: int
    balance_after_fen: int | None = None  # None when not known (an offline sale)
    bonus_balance_after_fen: int | None = None
    ledger_transaction_id: str | None = None  # None until the ledger has booked it
    is_online: bool
    is_reprint: bool = False
    copy: ReceiptCopy = ReceiptCopy.CUSTOMER
    title: str = "消费凭证"
    # A rental desk's receipts: (label, value) lines after the amount (a return's deposit, rental, late
    # fee, damage, refund; a hand-out's item and order), and a deposit voucher's token, printed as the
    # QR code the desk scans instead of the receipt number's.
    detail_lines: tuple[tuple[str, str], ...] = ()
    voucher: str | None = None
    # How the money moved: ("付款方式 Paid by", "现金 Cash") for a top-up or a card issued, ("退款方式
    # Refund by", ...) for a return. None where the card itself paid (a charge).
    method: tuple[str, str] | None = None
    # A void or reversal: the receipt number it undoes and the supervisor who approved it. Its amount
    # prints negative, so nobody adds it to the day's takings.
    undoes_receipt_number: str | None = None
    approved_by: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.seq, int) or self.seq < 0:
            raise ValueError(f"seq must be a non-negative integer, not {self.seq!r}")
        _check_amount("amount_fen", self.amount_fen)
        for name in ("balance_after_fen", "bonus_balance_after_fen"):
            if getattr(self, name) is not None:
                _check_amount(name, getattr(self, name))
        if sum(character.isdigit() for character in self.masked_card_number) > 4:
            raise ValueError("masked_card_number shows more than 4 digits: print only the last four")
        # Each line's quantity and price were checked against the same limits when it was built
        # (protocol.messages.LineItem); what only the whole receipt knows is checked here.
        if self.line_items and sum(line_total_fen(item) for item in self.line_items) != self.amount_fen:
            raise ValueError("line items do not add up to amount_fen")

    @property
    def receipt_number(self) -> str:
        """``<terminal>-<seq>``: unique forever, and what contractor settlement ticks off."""
        return f"{self.terminal_id}-{self.seq}"

    def copies(self) -> tuple[ReceiptData, ReceiptData]:
        """The customer copy, then the merchant copy."""
        return replace(self, copy=ReceiptCopy.CUSTOMER), replace(self, copy=ReceiptCopy.MERCHANT)


# A shift slip's copies: one stays with the cashier, one goes with the cash to the office.
SLIP_COPY_TEXT = {ReceiptCopy.CUSTOMER: "收银员联", ReceiptCopy.MERCHANT: "财务联"}


@dataclass(frozen=True, slots=True, kw_only=True)
class ShiftSlipReceipt(ReceiptData):
    """交班单: a shift's totals as the ledger answered its handover, printed through the same layout
    and ESC/POS path as every receipt. Lines are (label, count, fen), labels already bilingual;
    ``amount_fen`` is unused (0): a slip has no single amount. The cash lines are None at a till
    that takes no cash."""

    business_day: str
    opened_text: str
    kind_lines: tuple[tuple[str, int, int], ...] = ()
    tender_lines: tuple[tuple[str, int, int], ...] = ()
    voids: tuple[int, int] = (0, 0)
    refunds: tuple[int, int] = (0, 0)
    cash_expected_fen: int | None = None
    cash_counted_fen: int | None = None
    cash_over_short_fen: int | None = None


def line_total_fen(item: LineItem) -> int:
    return item.qty * item.unit_fen


def _check_amount(name: str, amount_fen: object) -> None:
    if not isinstance(amount_fen, int) or isinstance(amount_fen, bool):
        raise TypeError(f"{name} must be integer fen, not {type(amount_fen).__name__}")
    if abs(amount_fen) > MAX_AMOUNT_FEN:
        raise ValueError(f"{name}={amount_fen} is beyond the {MAX_AMOUNT_FEN} fen limit")


# --- layout: what is printed, in order, independent of how ---------------------------------------


class Align(enum.IntEnum):
    """Values are the ``n`` of ESC a n (Epson ESC/POS reference)."""

    LEFT = 0
    CENTER = 1
    RIGHT = 2


@dataclass(frozen=True, slots=True)
class TextLine:
    """One printed line: ``left`` text, and ``right`` text pushed to the right edge if given."""

    left: str
    right: str = ""
    align: Align = Align.LEFT
    is_bold: bool = False
    is_large: bool = False  # double width and height

    def compose(self, columns: int) -> str:
        """The line as a text-mode printer receives it: ``right`` padded out to ``columns``."""
        if not self.right:
            return self.left
        padding = columns // (2 if self.is_large else 1) - display_width(self.left) - display_width(self.right)
        minimum_gap = 1 if self.left else 0
        return self.left + " " * max(padding, minimum_gap) + self.right


@dataclass(frozen=True, slots=True)
class Rule:
    """A separator across the paper."""


@dataclass(frozen=True, slots=True)
class QrCode:
    payload: str


Block = Union[TextLine, Rule, QrCode]


@dataclass(frozen=True, slots=True)
class ReceiptLayout:
    columns: int
    blocks: tuple[Block, ...] = field(default_factory=tuple)


def columns_for_width(width_dots: int) -> int:
    return width_dots // FONT_A_WIDTH_DOTS


def layout_receipt(receipt: ReceiptData, width_dots: int) -> ReceiptLayout:
    """What the receipt says, line by line, for paper ``width_dots`` wide."""
    columns = columns_for_width(width_dots)
    if isinstance(receipt, ShiftSlipReceipt):
        return ReceiptLayout(columns, tuple(_slip_blocks(receipt, columns)))
    blocks: list[Block] = []
    blocks += _centered(receipt.park_name, columns, is_large=True)
    blocks += _centered(receipt.station_name, columns)
    blocks += _centered(f"{receipt.title}  {receipt.copy.value}", columns, is_bold=True)
    if receipt.is_reprint:
        blocks += _centered("REPRINT 补打", columns, is_large=True)
    if receipt.is_online:
        blocks += _centered("ONLINE", columns)
    else:
        blocks += _centered("OFFLINE 离线", columns, is_large=True)
    blocks.append(Rule())
    time_text = receipt.time_text + (" *" if receipt.is_time_uncertain else "")
    for label, value in (
        ("终端", receipt.terminal_id),
        ("操作员", receipt.operator),
        ("时间", time_text),
        ("卡号", receipt.masked_card_number),
    ):
        blocks.extend(_label_value(label, value, columns))
    if receipt.line_items:
        blocks.append(Rule())
        for item in receipt.line_items:
            blocks.extend(TextLine(piece) for piece in wrap_to_columns(item.item, columns))
            quantity_text = f"  {item.qty} x {format_fen(item.unit_fen)}"
            blocks.append(TextLine(quantity_text, format_fen(line_total_fen(item))))
    blocks.append(Rule())
    amount_text = ("-" if receipt.undoes_receipt_number else "") + format_fen(receipt.amount_fen)
    blocks.append(TextLine("金额", amount_text, is_bold=True))
    if receipt.balance_after_fen is not None:
        blocks.append(TextLine("余额", format_fen(receipt.balance_after_fen)))
    if receipt.bonus_balance_after_fen:
        blocks.append(TextLine("赠送余额", format_fen(receipt.bonus_balance_after_fen)))
    for label, value in receipt.detail_lines:
        blocks.extend(_label_value(label, value, columns))
    if receipt.method is not None:
        blocks.extend(_label_value(*receipt.method, columns))
    if receipt.undoes_receipt_number:
        blocks.extend(_label_value("原单号 Original", receipt.undoes_receipt_number, columns))
    if receipt.approved_by:
        blocks.extend(_label_value("主管 Approved by", receipt.approved_by, columns))
    blocks.append(Rule())
    # One number for the visitor to quote: the receipt number, which the back office looks up. The
    # ledger's own transaction number is for the park's staff, so only the merchant copy has it,
    # labelled as internal.
    blocks.extend(_label_value("单号 Receipt no.", receipt.receipt_number, columns))
    if receipt.copy is ReceiptCopy.MERCHANT:
        blocks.extend(_label_value(INTERNAL_REF_LABEL, receipt.ledger_transaction_id or "待上传 pending", columns))
    if receipt.voucher is not None:
        blocks += _centered("押金凭证 出示此码取物", columns, is_bold=True)
        blocks += _centered("Show this code at the rental desk", columns)
        blocks.append(QrCode(receipt.voucher))
    else:
        blocks.append(QrCode(receipt.receipt_number))
        blocks.append(TextLine(receipt.receipt_number, align=Align.CENTER))
    if receipt.is_time_uncertain:
        blocks.append(TextLine("* 时间未校准 TIME UNVERIFIED"))
    return ReceiptLayout(columns, tuple(blocks))


def _slip_blocks(slip: ShiftSlipReceipt, columns: int) -> list[Block]:
    blocks: list[Block] = []
    blocks += _centered(slip.park_name, columns, is_large=True)
    blocks += _centered(slip.station_name, columns)
    blocks += _centered(f"{slip.title}  {SLIP_COPY_TEXT[slip.copy]}", columns, is_bold=True)
    if slip.is_reprint:
        blocks += _centered("REPRINT 补打", columns, is_large=True)
    blocks.append(Rule())
    for label, value in (("终端", slip.terminal_id), ("员工", slip.operator), ("营业日", slip.business_day),
                         ("上班 From", slip.opened_text), ("交班 To", slip.time_text)):
        blocks.extend(_label_value(label, value, columns))

    def counted_lines(heading: str, lines) -> None:
        blocks.append(Rule())
        blocks.append(TextLine(heading, is_bold=True))
        for label, count, fen in lines:
            blocks.append(TextLine(f" {label} x{count}", format_fen(fen)))
        if not lines:
            blocks.append(TextLine(" —"))

    counted_lines("按类型 By kind", slip.kind_lines)
    counted_lines("按支付方式 By tender", slip.tender_lines)
    blocks.append(Rule())
    blocks.append(TextLine(f"撤销冲正 Voids x{slip.voids[0]}", format_fen(-slip.voids[1])))
    blocks.append(TextLine(f"退款 Refunds x{slip.refunds[0]}", format_fen(-slip.refunds[1])))
    if slip.cash_expected_fen is not None:
        blocks.append(Rule())
        blocks.append(TextLine("现金清点 Cash count", is_bold=True))
        blocks.append(TextLine(" 应有 Expected", format_fen(slip.cash_expected_fen)))
        if slip.cash_counted_fen is None:
            blocks.append(TextLine(" 实点 Counted", "未清点 not counted"))
        else:
            blocks.append(TextLine(" 实点 Counted", format_fen(slip.cash_counted_fen)))
            difference = slip.cash_over_short_fen
            label = " 长款 Over" if difference > 0 else " 短款 Short" if difference < 0 else " 相符 Balanced"
            blocks.append(TextLine(label, format_fen(difference), is_bold=True))
    blocks.append(Rule())
    blocks.extend(_label_value("单号 Slip no.", slip.receipt_number, columns))
    blocks.append(TextLine("签字 Signed:"))
    blocks.append(TextLine(""))
    blocks.append(TextLine("_" * min(columns, 24)))
    return blocks


def _centered(text: str, columns: int, *, is_bold: bool = False, is_large: bool = False) -> list[TextLine]:
    """Centred lines; large ones bold (they are headings and marks) and wrapped at half the columns."""
    width = columns // 2 if is_large else columns
    return [
        TextLine(piece, align=Align.CENTER, is_bold=is_bold or is_large, is_large=is_large)
        for piece in wrap_to_columns(text, width)
    ]


def _label_value(label: str, value: str, columns: int) -> list[TextLine]:
    """``label .... value`` on one line, or the value on its own line when both do not fit."""
    if display_width(label) + 1 + display_width(value) <= columns:
        return [TextLine(label, value)]
    return [TextLine(label)] + [TextLine("", piece) for piece in wrap_to_columns(value, columns)]


def render_receipt_text(receipt: ReceiptData, width_dots: int) -> list[str]:
    """The receipt as plain lines (for logs, the display and tests); a QR code shows as ``[QR ...]``."""
    layout = layout_receipt(receipt, width_dots)
    lines = []
    for block in layout.blocks:
        if isinstance(block, TextLine):
            lines.append(block.compose(layout.columns))
        elif isinstance(block, Rule):
            lines.append("-" * layout.columns)
        else:
            lines.append(f"[QR {block.payload}]")
    return lines


# --- image rendering ------------------------------------------------------------------------------

# At 20 px per em, WenQuanYi Micro Hei Mono's Latin advance (0.6 em) is exactly 12 dots, one Font A
# column, and its Chinese glyphs (1 em = 20 dots) fit inside the printer's 24-dot cell.
IMAGE_FONT_SIZE_PX = 20
# One text line advances 30 dots: Font A's 24 dots plus the printers' usual 6-dot gap (TM-T20 default
# line spacing 3.75 mm at 8 dots/mm).
LINE_HEIGHT_DOTS = 30
RULE_HEIGHT_DOTS = 12
TOP_MARGIN_DOTS = 8
# A QR takes about half the paper width: easy for a phone or a settlement scanner, not wasteful.
QR_WIDTH_FRACTION = 2
QR_QUIET_ZONE_MODULES = 4  # ISO/IEC 18004 asks for a 4-module light border
QR_ERROR_CORRECTION = "m"  # M recovers ~15%: enough for a scuffed thermal print


def render_qr_image(payload: str, *, module_dots: int | None = None, width_dots: int | None = None) -> Image:
    """A 1-bit QR code (model 2, error correction M, with its quiet zone), either ``module_dots`` per
    module or sized to about half of ``width_dots``."""
    import segno
    from PIL import Image as PillowImage

    matrix = segno.make(payload, error=QR_ERROR_CORRECTION, micro=False).matrix
    side_modules = len(matrix) + 2 * QR_QUIET_ZONE_MODULES
    if module_dots is None:
        if width_dots is None:
            raise TypeError("give module_dots or width_dots")
        module_dots = max(1, width_dots // QR_WIDTH_FRACTION // side_modules)
    light_row = b"\xff" * side_modules
    margin = b"\xff" * QR_QUIET_ZONE_MODULES
    # segno's matrix holds 1 for dark; a mode "L" image wants 0 for black.
    to_grey = bytes.maketrans(b"\x00\x01", b"\xff\x00")
    rows = [light_row] * QR_QUIET_ZONE_MODULES
    rows += [margin + bytes(row).translate(to_grey) + margin for row in matrix]
    rows += [light_row] * QR_QUIET_ZONE_MODULES
    image = PillowImage.frombytes("L", (side_modules, side_modules), b"".join(rows))
    side_dots = side_modules * module_dots
    return image.resize((side_dots, side_dots), PillowImage.Resampling.NEAREST).convert("1")


def render_receipt_image(receipt: ReceiptData, width_dots: int) -> Image:
    """The receipt as a 1-bit image ``width_dots`` wide, ready for GS v 0."""
    from PIL import Image as PillowImage
    from PIL import ImageDraw

    from terminal.fonts import load_font

    layout = layout_receipt(receipt, width_dots)
    qr_images = {
        block.payload: render_qr_image(block.payload, width_dots=width_dots)
        for block in layout.blocks
        if isinstance(block, QrCode)
    }
    height_dots = TOP_MARGIN_DOTS + sum(_block_height_dots(block, qr_images) for block in layout.blocks)
    image = PillowImage.new("1", (width_dots, height_dots), 1)
    draw = ImageDraw.Draw(image)
    draw.fontmode = "1"  # no anti-aliasing: the print head has only black and white
    fonts = {False: load_font(IMAGE_FONT_SIZE_PX), True: load_font(2 * IMAGE_FONT_SIZE_PX)}
    top = TOP_MARGIN_DOTS
    for block in layout.blocks:
        if isinstance(block, TextLine):
            _draw_text_line(draw, block, top, width_dots, fonts[block.is_large])
        elif isinstance(block, Rule):
            middle = top + RULE_HEIGHT_DOTS // 2
            draw.line([(0, middle), (width_dots - 1, middle)], fill=0, width=2)
        else:
            qr_image = qr_images[block.payload]
            image.paste(qr_image, ((width_dots - qr_image.width) // 2, top))
        top += _block_height_dots(block, qr_images)
    return image


def _block_height_dots(block: Block, qr_images: dict[str, Image]) -> int:
    if isinstance(block, TextLine):
        return LINE_HEIGHT_DOTS * (2 if block.is_large else 1)
    if isinstance(block, Rule):
        return RULE_HEIGHT_DOTS
    return qr_images[block.payload].height


def _draw_text_line(draw, line: TextLine, top: int, width_dots: int, font) -> None:
    left_width = font.getlength(line.left)
    if line.align == Align.CENTER:
        x = (width_dots - left_width) // 2
    elif line.align == Align.RIGHT:
        x = width_dots - left_width - 1
    else:
        x = 0
    # Bold the way a print head does it: strike the line twice, one dot apart (ESC E "emphasized").
    strikes = (0, 1) if line.is_bold else (0,)
    right_x = width_dots - font.getlength(line.right) - len(strikes)
    for offset in strikes:
        if line.left:
            draw.text((x + offset, top), line.left, font=font, fill=0)
        if line.right:
            draw.text((right_x + offset, top), line.right, font=font, fill=0)
