"""When the park sells: sales per hour of the park's local day (charges and offline sales, less
voids, by the time the ledger booked them). The books hold UTC milliseconds; they are grouped in
15-minute slots in SQL and each slot is put in its local hour here, so a park in a half-hour time
zone (or a day that changes to summer time) still lands in the right hour."""

from collections import defaultdict
from datetime import datetime
from zoneinfo import ZoneInfo

from .query import Scope, park_of
from .table import Chart, Column, Report, Table, fen_column, int_column, sum_columns
from .takings import SALE_LIST

SLOT_MS = 15 * 60 * 1000

COLUMNS = (
    Column("hour", "hour", "时段"),
    int_column("sales", "sales", "笔数"),
    fen_column("net_fen", "net sales", "净销售额"),
)


def hourly_sales(db, scope: Scope) -> list[tuple[int, int, int]]:
    """(local hour 0-23, sales, net fen), every hour that had any."""
    zone = ZoneInfo(park_of(db)[1])
    where, params = scope.txn_filter()
    hours: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for slot, sales, net in db.execute(
            f"""SELECT t.ledger_time_ms / {SLOT_MS}, SUM(t.kind IN ({SALE_LIST})),
                       SUM(CASE WHEN t.kind = 'void' THEN -t.amount_fen ELSE t.amount_fen END)
                  FROM txn t WHERE {where} AND t.kind IN ({SALE_LIST}, 'void') GROUP BY 1""", params):
        hour = datetime.fromtimestamp(slot * SLOT_MS / 1000, zone).hour
        hours[hour][0] += sales
        hours[hour][1] += net
    return [(hour, sales, net) for hour, (sales, net) in sorted(hours.items())]


def time_of_day(db, scope: Scope) -> Report:
    rows = [(f"{hour:02d}:00", sales, net) for hour, sales, net in hourly_sales(db, scope)]
    return Report(
        name="time-of-day", title_en="Sales by time of day", title_zh="分时段销售", scope_text=str(scope),
        tables=[Table("Per hour (park time)", "按小时（园区时间）", COLUMNS, rows, sum_columns(COLUMNS, rows))],
        chart=Chart("bar", 0, "hour", ("net_fen",)),
    )
