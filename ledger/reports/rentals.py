"""Rentals (issue 13): per item type and per item, the rentals returned in the period, hours out,
utilisation, revenue, late and damage rates; when items go out (local hour); who rents (member
card, temporary card, desk, online), repeat renters and the average time out. All of it from the
deposit orders the ledger already keeps: no new personal data. Aggregated in SQL, so a million
rentals stay a few grouped scans."""

from datetime import date
from zoneinfo import ZoneInfo

from .query import Scope, park_of
from .table import Chart, Column, Report, Table, fen_column, int_column, sum_columns

HOUR_MS = 3_600_000
SLOT_MS = 15 * 60 * 1000
TYPE_COLUMNS = (
    Column("item_type", "item type", "类型"),
    int_column("items", "items", "件数"),
    int_column("rentals", "rentals", "租次"),
    Column("per_day", "rentals a day", "日均租次"),
    Column("hours_out", "hours out", "租出小时"),
    Column("utilisation", "utilisation", "利用率"),
    fen_column("revenue_fen", "rental revenue", "租金"),
    Column("late_rate", "late", "超时率"),
    Column("damage_rate", "damaged or lost", "损坏率"),
)
ITEM_COLUMNS = (
    Column("label", "item", "物品"),
    Column("item_type", "item type", "类型"),
    int_column("rentals", "rentals", "租次"),
    Column("hours_out", "hours out", "租出小时"),
    Column("utilisation", "utilisation", "利用率"),
    fen_column("revenue_fen", "rental revenue", "租金"),
)
HOUR_COLUMNS = (Column("hour", "hour out", "出租时段"), int_column("rentals", "rentals", "租次"))
RENTER_COLUMNS = (
    Column("renter", "renter", "租客"),
    int_column("rentals", "rentals", "租次"),
    int_column("renters", "renters (cards)", "卡数"),
    int_column("repeat", "repeat renters", "回头客"),
    Column("average", "average time out", "平均时长"),
)
_RENTER = """CASE WHEN o.route = 'card' AND o.is_member THEN 'member card 会员卡'
                  WHEN o.route = 'card' THEN 'temporary card 临时卡'
                  WHEN o.route LIKE 'online_%' THEN 'online 线上'
                  ELSE 'at the desk 柜台' END"""


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _hours(ms: int) -> str:
    return f"{ms / HOUR_MS:.1f}"


def rentals(db, scope: Scope) -> Report:
    park_id, time_zone, _ = park_of(db)
    days = (date.fromisoformat(scope.period.last) - date.fromisoformat(scope.period.first)).days + 1
    # The rentals the period closed, by the business day of their return (the index on txn finds them).
    where, params = scope.txn_filter()
    closed = f"""FROM deposit_order o JOIN txn t ON t.txn_id = o.closed_txn
                 WHERE {where} AND o.state = 'closed' AND o.out_ms IS NOT NULL"""
    items_of = dict(db.execute("SELECT item_type, COUNT(*) FROM rental_item WHERE park_id = ? AND state <> 'retired' "
                               "GROUP BY item_type", (park_id,)).fetchall())
    available_ms = days * 24 * HOUR_MS
    # One grouped pass per item; the item types add their items up here (a few hundred rows).
    by_item, types = [], {}
    for label, item_type, count, out_ms, revenue, late, damaged in db.execute(
            f"""SELECT o.item_label, o.item_type, COUNT(*), SUM(o.closed_ms - o.out_ms), SUM(o.rental_fen),
                       SUM(o.late_fen > 0), SUM(o.damage_fen > 0) {closed}
                GROUP BY o.item_label, o.item_type ORDER BY o.item_label""", params):
        by_item.append((label, item_type, count, _hours(out_ms), _percent(out_ms, available_ms), revenue))
        total = types.setdefault(item_type, [0, 0, 0, 0, 0])
        for index, value in enumerate((count, out_ms, revenue, late, damaged)):
            total[index] += value
    by_type = []
    for item_type, (count, out_ms, revenue, late, damaged) in sorted(types.items()):
        items = items_of.get(item_type, 0)
        by_type.append((item_type, items, count, f"{count / days:.1f}", _hours(out_ms),
                        _percent(out_ms, items * available_ms), revenue, _percent(late, count), _percent(damaged, count)))
    zone = ZoneInfo(time_zone)
    hours: dict[int, int] = {}
    from datetime import datetime
    for slot, count in db.execute(f"SELECT o.out_ms / {SLOT_MS}, COUNT(*) {closed} GROUP BY 1", params):
        hour = datetime.fromtimestamp(slot * SLOT_MS / 1000, zone).hour  # a slot lies in one local hour
        hours[hour] = hours.get(hour, 0) + count
    by_hour = [(f"{hour:02d}:00", count) for hour, count in sorted(hours.items())]
    renters = [(renter, count, cards, repeat, f"{(out_ms or 0) / count / 60_000:.0f} min")
               for renter, count, cards, repeat, out_ms in db.execute(
                   f"""SELECT renter, SUM(n), SUM(is_card), SUM(is_card AND n > 1), SUM(out_ms) FROM (
                           SELECT {_RENTER} AS renter, o.payer_account, o.route = 'card' AS is_card, COUNT(*) AS n,
                                  SUM(o.closed_ms - o.out_ms) AS out_ms {closed}
                           GROUP BY 1, 2, 3) GROUP BY renter ORDER BY renter""", params)]
    return Report(
        name="rentals", title_en="Rentals", title_zh="租赁统计", scope_text=str(scope),
        tables=[Table("By item type", "按类型", TYPE_COLUMNS, by_type),
                Table("By item", "按物品", ITEM_COLUMNS, by_item, sum_columns(ITEM_COLUMNS, by_item) if by_item else None),
                Table("When items go out", "出租时段", HOUR_COLUMNS, by_hour),
                Table("Renters", "租客", RENTER_COLUMNS, renters)],
        notes=["rentals are counted on the business day they came back; utilisation is time out over 24 hours a "
               "day for each item not retired; renters are told apart by the card that paid (desk and online "
               "payers are not tracked as persons)"],
        chart=Chart("bar", 2, "hour", ("rentals",)),
    )
