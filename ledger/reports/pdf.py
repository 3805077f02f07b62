"""A Report as a PDF (fpdf2), for the papers a park hands over: a contractor signs their statement,
and ticks its receipts on paper. Every table in turn, its heading repeated on each page, money as
yuan from integer fen (the same text as the CSV), Chinese set in a CJK font found on the machine.

A PDF embeds only the glyphs it uses (fpdf2 subsets the font), so a statement stays small although
the font file is several megabytes.
"""

from datetime import datetime, timezone
import math
import os
from pathlib import Path
import time

from protocol.money import format_fen

from .query import ReportError
from .table import Report, Table

# Debian's fonts-wqy-microhei (the bootstrap installs it), then the Noto CJK files other systems
# carry. FIELDPOS_PDF_FONT names another TrueType file or collection.
FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc"),
)
FONT_ENV = "FIELDPOS_PDF_FONT"
FONT_FAMILY = "cjk"
# Sizes in points: A4 portrait holds the contractor statement's seven columns at 8 pt.
TITLE_PT, HEADING_PT, BODY_PT = 14, 11, 8


class NoPdfFont(ReportError):
    """No font that can set Chinese text is installed, so no PDF can be made."""

    code = "NO_PDF_FONT"


def font_path() -> Path:
    named = os.environ.get(FONT_ENV)
    for path in ([Path(named)] if named else []) + list(FONT_CANDIDATES):
        if path.is_file():
            return path
    raise NoPdfFont(f"no CJK font for PDF reports (install fonts-wqy-microhei, or set {FONT_ENV} to a .ttf/.ttc file)")


def _cell_text(value, kind: str) -> str:
    if value is None:
        return ""
    if kind == "fen" and isinstance(value, int):
        return format_fen(value, grouped=True)
    return str(value)


def _column_widths(pdf, table: Table, rows: list[list[str]], room_mm: float) -> list[float]:
    """Each column as wide as its widest cell (heading included), scaled to fit the page."""
    pdf.set_font(FONT_FAMILY, size=BODY_PT)
    widest = [max(pdf.get_string_width(row[index]) for row in rows) + 3 for index in range(len(table.columns))]
    scale = min(1.0, room_mm / sum(widest)) if sum(widest) else 1.0
    spare = max(0.0, room_mm - sum(widest)) / len(widest)
    # Whole hundredths of a millimetre, rounded down: a float sum a hair over the page is refused.
    return [math.floor((width * scale + spare) * 100) / 100 for width in widest]


def to_pdf(report: Report, *, made_ms: int | None = None) -> bytes:
    """The report as PDF bytes. ``made_ms`` dates the document (default: now); the file's own
    metadata date is the same moment, so two PDFs of one report made at one time are identical."""
    from fpdf import FPDF
    from fpdf.fonts import FontFace

    made = datetime.fromtimestamp((made_ms if made_ms is not None else int(time.time() * 1000)) / 1000, timezone.utc)
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_creation_date(made)
    pdf.set_title(f"{report.title_en} {report.title_zh}")
    pdf.set_creator("fieldpos")
    pdf.add_font(FONT_FAMILY, fname=str(font_path()))
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.set_margins(12, 12, 12)
    pdf.add_page()
    room_mm = pdf.w - pdf.l_margin - pdf.r_margin
    pdf.set_font(FONT_FAMILY, size=TITLE_PT)
    pdf.multi_cell(room_mm, 7, f"{report.title_zh}  {report.title_en}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT_FAMILY, size=BODY_PT)
    pdf.multi_cell(room_mm, 5, report.scope_text, new_x="LMARGIN", new_y="NEXT")
    pdf.multi_cell(room_mm, 5, f"制表 Made {made:%Y-%m-%d %H:%M} UTC", new_x="LMARGIN", new_y="NEXT")
    for table in report.tables:
        pdf.ln(3)
        pdf.set_font(FONT_FAMILY, size=HEADING_PT)
        pdf.multi_cell(room_mm, 6, f"{table.title_zh}  {table.title_en}", new_x="LMARGIN", new_y="NEXT")
        heading = [f"{column.zh} {column.en}" for column in table.columns]
        body = [[_cell_text(value, column.kind) for value, column in zip(row, table.columns)]
                for row in table.rows + ([table.totals] if table.totals else [])]
        if not body:
            pdf.set_font(FONT_FAMILY, size=BODY_PT)
            pdf.multi_cell(room_mm, 5, "(无 none)", new_x="LMARGIN", new_y="NEXT")
            continue
        widths = _column_widths(pdf, table, [heading] + body, room_mm)
        alignments = tuple("LEFT" if column.kind == "text" else "RIGHT" for column in table.columns)
        pdf.set_font(FONT_FAMILY, size=BODY_PT)
        with pdf.table(col_widths=widths, width=sum(widths), align="LEFT", text_align=alignments, line_height=4.5,
                       headings_style=FontFace(emphasis=None, fill_color=(230, 230, 230)),
                       repeat_headings=1) as grid:
            grid.row(heading)
            for cells in body:
                grid.row(cells)
    if report.notes:
        pdf.ln(3)
        pdf.set_font(FONT_FAMILY, size=BODY_PT)
        for note in report.notes:
            pdf.multi_cell(room_mm, 4.5, f"注 note: {note}", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
