"""A Report as text (terminal), CSV, Excel or PDF (``pdf.py``). Money is formatted from integer fen: yuan with two
decimals in text and CSV; in Excel a Decimal (an exact number, never a float) shown as 0.00."""

import csv
from decimal import Decimal
import io
import unicodedata

from protocol.money import format_fen

from .table import Report, Table

FORMATS = ("text", "csv", "xlsx", "pdf")


def _cell_text(value, kind: str, *, grouped: bool) -> str:
    if value is None:
        return ""
    if kind == "fen" and isinstance(value, int):
        return format_fen(value, grouped=grouped)
    return str(value)


def _width(text: str) -> int:
    """Columns a terminal gives the text: Chinese characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, *, right: bool) -> str:
    room = " " * (width - _width(text))
    return room + text if right else text + room


def to_text(report: Report) -> str:
    lines = [f"{report.title_en} {report.title_zh}: {report.scope_text}"]
    for table in report.tables:
        lines += ["", f"{table.title_en} {table.title_zh}"]
        rows = [[column.en for column in table.columns]]
        rows += [[_cell_text(value, column.kind, grouped=True) for value, column in zip(row, table.columns)]
                 for row in table.rows + ([table.totals] if table.totals else [])]
        widths = [max(_width(row[index]) for row in rows) for index in range(len(table.columns))]
        for number, row in enumerate(rows):
            cells = [_pad(cell, width, right=column.kind != "text") for cell, width, column in zip(row, widths, table.columns)]
            lines.append("  " + "  ".join(cells).rstrip())
            if number == 0:
                lines.append("  " + "  ".join("-" * width for width in widths))
        if not table.rows:
            lines.append("  (none)")
    lines += [f"note: {note}" for note in report.notes]
    return "\n".join(lines) + "\n"


def to_csv(report: Report) -> str:
    """Every table one after another, each under a line with its title (Excel opens it as is)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([f"{report.title_en} {report.title_zh}", report.scope_text])
    for table in report.tables:
        writer.writerow([])
        writer.writerow([f"{table.title_en} {table.title_zh}"])
        writer.writerow([column.key.removesuffix("_fen") + "_yuan" if column.kind == "fen" else column.key
                         for column in table.columns])
        for row in table.rows + ([table.totals] if table.totals else []):
            writer.writerow([_cell_text(value, column.kind, grouped=False) for value, column in zip(row, table.columns)])
    for note in report.notes:
        writer.writerow([f"note: {note}"])
    return out.getvalue()


def to_xlsx(report: Report) -> bytes:
    """One sheet per table, bilingual headings, money as exact decimals formatted 0.00."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    book.remove(book.active)
    for number, table in enumerate(report.tables, start=1):
        sheet = book.create_sheet(_sheet_title(table, number))
        sheet.append([f"{report.title_en} {report.title_zh}", report.scope_text])
        sheet.append([f"{table.title_en} {table.title_zh}"])
        sheet.append([f"{column.zh} {column.en}" for column in table.columns])
        for cell in sheet[3]:
            cell.font = Font(bold=True)
        for row in table.rows + ([table.totals] if table.totals else []):
            sheet.append([_excel_value(value, column.kind) for value, column in zip(row, table.columns)])
            for cell, column in zip(sheet[sheet.max_row], table.columns):
                if column.kind == "fen":
                    cell.number_format = "#,##0.00"
        for note in report.notes:
            sheet.append([f"note: {note}"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _excel_value(value, kind: str):
    if kind == "fen" and isinstance(value, int):
        return Decimal(value).scaleb(-2)
    return value


def _sheet_title(table: Table, number: int) -> str:
    # Excel: at most 31 characters, none of []:*?/\ ; numbered so two tables never share a name.
    title = "".join(ch for ch in table.title_en if ch not in "[]:*?/\\")
    return f"{number} {title}"[:31]


def render(report: Report, fmt: str) -> bytes:
    if fmt == "text":
        return to_text(report).encode()
    if fmt == "csv":
        return to_csv(report).encode("utf-8-sig")  # the BOM makes Excel read the Chinese titles right
    if fmt == "xlsx":
        return to_xlsx(report)
    if fmt == "pdf":
        from .pdf import to_pdf  # fpdf2 is loaded only when a PDF is asked for

        return to_pdf(report)
    raise ValueError(f"unknown format {fmt!r}")
