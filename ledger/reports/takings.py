"""Takings: sales at the stations (charges and offline sales, less voids) by station, cashier or
card type; or money through the desks' payment channels (card issues and top-ups in, refunds and
reversals out). Per business day, ISO week or month, and over the whole period.

Sales amounts are the transactions' own amounts: what the stations' revenue and contractor
accounts were credited. Channel money is read from the channel accounts' postings (negative means
the park took the money in), so it is exactly what the drawers and payment providers should hold.
"""

from collections import defaultdict
from datetime import date

from protocol.kinds import KINDS

from .query import ReportError, Scope
from .shifts import late_booking_notes
from .table import Chart, Column, Report, Table, fen_column, int_column, sum_columns

SALE_KINDS = tuple(kind.type for kind in KINDS.values() if kind.is_sale)
SALE_LIST = ", ".join(f"'{kind}'" for kind in SALE_KINDS)   # type names are [a-z_] only
DIMENSIONS = ("station", "cashier", "card-type", "channel")
PERIODS = ("day", "week", "month")

# 'card:TD0000001/1' -> the card table's (card_no, issuance): a primary-key lookup per transaction.
CARD_JOIN = """LEFT JOIN card c ON c.park_id = t.park_id
                 AND c.card_no = substr(t.card_account, 6, instr(t.card_account, '/') - 6)
                 AND c.issuance = CAST(substr(t.card_account, instr(t.card_account, '/') + 1) AS INTEGER)"""

_SALES_KEYS = {"station": ("t.station_id", ""), "cashier": ("t.operator", ""), "card-type": ("COALESCE(c.kind, 'unknown')", CARD_JOIN)}

SALES_COLUMNS = (
    int_column("sales", "sales", "笔数"),
    fen_column("gross_fen", "gross", "销售额"),
    int_column("voids", "voids", "撤销笔数"),
    fen_column("voids_fen", "voided", "撤销额"),
    fen_column("net_fen", "net", "净额"),
)
CHANNEL_COLUMNS = (
    int_column("transactions", "transactions", "笔数"),
    fen_column("in_fen", "money in", "收入"),
    fen_column("out_fen", "money out", "退款"),
    fen_column("net_fen", "net", "净额"),
)
_GROUP_LABELS = {"station": ("station", "站点"), "cashier": ("cashier", "收银员"), "card-type": ("card type", "卡类"),
                 "channel": ("channel", "支付渠道")}


def period_label(business_day: str, period: str) -> str:
    if period == "day":
        return business_day
    if period == "month":
        return business_day[:7]
    year, week, _ = date.fromisoformat(business_day).isocalendar()
    return f"{year}-W{week:02d}"


def _daily_rows(db, scope: Scope, by: str) -> list[tuple]:
    """(business day, group, value columns...) straight from the books."""
    where, params = scope.txn_filter()
    if by == "channel":
        return db.execute(
            f"""SELECT t.business_day, substr(p.account_id, 9), COUNT(DISTINCT t.txn_id),
                       SUM(CASE WHEN p.amount < 0 THEN -p.amount ELSE 0 END),
                       SUM(CASE WHEN p.amount > 0 THEN p.amount ELSE 0 END)
                  FROM txn t JOIN posting p ON p.txn_id = t.txn_id
                 WHERE {where} AND p.account_id LIKE 'channel:%' AND p.asset = 'fen'
                 GROUP BY 1, 2""", params).fetchall()
    key, join = _SALES_KEYS[by]
    return db.execute(
        f"""SELECT t.business_day, {key},
                   SUM(t.kind IN ({SALE_LIST})), SUM(CASE WHEN t.kind IN ({SALE_LIST}) THEN t.amount_fen ELSE 0 END),
                   SUM(t.kind = 'void'), SUM(CASE WHEN t.kind = 'void' THEN t.amount_fen ELSE 0 END)
              FROM txn t {join}
             WHERE {where} AND t.kind IN ({SALE_LIST}, 'void')
             GROUP BY 1, 2""", params).fetchall()


def takings(db, scope: Scope, *, by: str = "station", period: str = "day") -> Report:
    if by not in DIMENSIONS:
        raise ReportError(f"takings by {by!r}? choose one of {', '.join(DIMENSIONS)}")
    if period not in PERIODS:
        raise ReportError(f"takings per {period!r}? choose one of {', '.join(PERIODS)}")
    by_period: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for business_day, group, *values in _daily_rows(db, scope, by):
        totals = by_period[(period_label(business_day, period), group)]
        for index, value in enumerate(values):
            totals[index] += value or 0
    value_columns = CHANNEL_COLUMNS if by == "channel" else SALES_COLUMNS
    group_en, group_zh = _GROUP_LABELS[by]
    group_column = Column("group", group_en, group_zh)

    def row(values: list[int]) -> tuple:
        if by == "channel":
            count, money_in, money_out = values[:3]
            return (count, money_in, money_out, money_in - money_out)
        sales, gross, voids, voided = values
        return (sales, gross, voids, voided, gross - voided)

    overall: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for (_, group), values in by_period.items():
        overall[group] = [a + b for a, b in zip(overall[group], values)]
    summary_columns = (group_column, *value_columns)
    summary_rows = [(group, *row(values)) for group, values in sorted(overall.items())]
    detail_columns = (Column("period", period, {"day": "日", "week": "周", "month": "月"}[period]), group_column, *value_columns)
    detail_rows = [(label, group, *row(values)) for (label, group), values in sorted(by_period.items())]
    title = f"takings by {group_en}"
    return Report(
        name="takings", title_en=title.capitalize(), title_zh=f"营业额（按{group_zh}）", scope_text=str(scope),
        tables=[Table(f"Whole period by {group_en}", f"全期按{group_zh}", summary_columns, summary_rows,
                      sum_columns(summary_columns, summary_rows)),
                Table(f"Per {period}", f"按{ {'day': '日', 'week': '周', 'month': '月'}[period]}", detail_columns,
                      detail_rows, sum_columns(detail_columns, detail_rows))],
        notes=["net = gross sales less voids; channel money in = card issues and top-ups, out = refunds and reversals"]
        + late_booking_notes(db, scope),
        chart=Chart("bar", 0, "group", ("net_fen",)),
    )

