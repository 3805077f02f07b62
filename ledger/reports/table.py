"""A report's result as plain data: titled tables of typed columns, ready for text, CSV, Excel and
the console's pages. Money stays integer fen until a renderer formats it."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Column:
    key: str
    en: str
    zh: str
    kind: str = "text"      # text | int | fen (integer fen, shown as yuan)


@dataclass(frozen=True)
class Table:
    title_en: str
    title_zh: str
    columns: tuple[Column, ...]
    rows: list[tuple]
    totals: tuple | None = None     # same width as a row; None where a total means nothing

    def column(self, key: str) -> list:
        index = [column.key for column in self.columns].index(key)
        return [row[index] for row in self.rows]

    def as_dicts(self) -> list[dict]:
        keys = [column.key for column in self.columns]
        return [dict(zip(keys, row)) for row in self.rows]


@dataclass(frozen=True)
class Chart:
    """What the console draws: one series per value column, over the label column."""

    kind: str               # bar | line
    table: int              # index of the table in Report.tables
    label_key: str
    value_keys: tuple[str, ...]


@dataclass(frozen=True)
class Report:
    name: str
    title_en: str
    title_zh: str
    scope_text: str                  # "P1, 2026-05-01, stations: bbq"
    tables: list[Table]
    notes: list[str] = field(default_factory=list)
    chart: Chart | None = None


def fen_column(key: str, en: str, zh: str) -> Column:
    return Column(key, en, zh, "fen")


def int_column(key: str, en: str, zh: str) -> Column:
    return Column(key, en, zh, "int")


def sum_columns(columns, rows, *, label: str = "total") -> tuple:
    """A totals row: sums of int and fen columns, ``label`` in the first, blanks elsewhere."""
    totals = []
    for index, column in enumerate(columns):
        if column.kind in ("int", "fen"):
            totals.append(sum(row[index] or 0 for row in rows))
        else:
            totals.append(label if index == 0 else "")
    return tuple(totals)
