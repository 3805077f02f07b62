"""Rentals (issue 13): per item type and per item, the rentals returned in the period, hours out,
utilisation, revenue, late and damage rates; when items go out (local hour); who rents (member
card, temporary card, desk, online), repeat renters and the average time out. All of it from the
deposit orders the ledger already keeps, added up per business day as each rental comes back
(Store._add_up_rental): no new personal data, and a month of a busy park is a few thousand rows,
with one more per paying card and day for telling renters apart."""

from datetime import date, datetime
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
RENTERS = {"member": "member card 会员卡", "temporary": "temporary card 临时卡", "online": "online 线上",
           "desk": "at the desk 柜台"}


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _hours(ms: int) -> str:
    return f"{ms / HOUR_MS:.1f}"


def _card_renters(db, park_id: str, scope: Scope) -> dict[str, tuple[int, int]]:
    """{renter: (cards, repeat renters)} of the paying cards (members' and temporary cards) in the
    period. A card's days with rentals are chained (rental_card_day, per station and for the whole
    park), so one pass over the period's days counts them: a card's first day in the period is the
    day whose previous one lies before the period, and it is a repeat renter unless that day had one
    rental and its next day lies after the period."""
    first, last = scope.period.first, scope.period.last
    stations = scope.stations
    if stations is not None and len(stations) > 1 and {row[0] for row in db.execute(
            "SELECT DISTINCT station_id FROM rental_day_by_renter WHERE park_id = ?", (park_id,))} <= set(stations):
        stations = None  # every station that ever rented out: the whole park's chain
    if stations is None or len(stations) == 1:
        rows = db.execute(
            """SELECT renter, SUM(prev_day IS NULL OR prev_day < ?),
                      SUM((prev_day IS NULL OR prev_day < ?) AND rentals = 1 AND (next_day IS NULL OR next_day > ?))
                 FROM rental_card_day WHERE park_id = ? AND scope = ? AND renter IN ('member', 'temporary')
                  AND business_day BETWEEN ? AND ? GROUP BY renter""",
            (first, first, last, park_id, "" if stations is None else stations[0], first, last))
        return {renter: (cards, cards - once) for renter, cards, once in rows}
    # Some of the rental stations: a card may have rented at two of them, so its days are added up.
    return {renter: (cards, repeat) for renter, cards, repeat in db.execute(
        f"""SELECT renter, COUNT(*), SUM(n > 1) FROM (
                SELECT renter, SUM(rentals) AS n FROM rental_card_day
                 WHERE park_id = ? AND scope IN ({', '.join('?' * len(stations)) or 'NULL'})
                   AND business_day BETWEEN ? AND ? GROUP BY renter, payer_account) AS cards GROUP BY renter""",
        (park_id, *stations, first, last))}


def rentals(db, scope: Scope) -> Report:
    park_id, time_zone, _ = park_of(db)
    days = (date.fromisoformat(scope.period.last) - date.fromisoformat(scope.period.first)).days + 1
    # The rentals the period's returns added up, day by day (Store._add_up_rental): a few rows a day
    # per item, per 15-minute slot and per kind of renter, however many rentals there were.
    where = "park_id = ? AND business_day BETWEEN ? AND ?"
    params: list = [park_id, scope.period.first, scope.period.last]
    if scope.stations is not None:
        where += f" AND station_id IN ({', '.join('?' * len(scope.stations)) or 'NULL'})"
        params += list(scope.stations)
    items_of = dict(db.execute("SELECT item_type, COUNT(*) FROM rental_item WHERE park_id = ? AND state <> 'retired' "
                               "GROUP BY item_type", (park_id,)).fetchall())
    available_ms = days * 24 * HOUR_MS
    by_item, types = [], {}
    for label, item_type, count, out_ms, revenue, late, damaged in db.execute(
            f"""SELECT item_label, item_type, SUM(rentals), SUM(out_ms), SUM(rental_fen), SUM(late), SUM(damaged)
                  FROM rental_day WHERE {where} GROUP BY item_label, item_type ORDER BY item_label""", params):
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
    for slot, count in db.execute(f"SELECT slot, SUM(rentals) FROM rental_day_slot WHERE {where} GROUP BY slot", params):
        hour = datetime.fromtimestamp(slot * SLOT_MS / 1000, zone).hour  # a slot lies in one local hour
        hours[hour] = hours.get(hour, 0) + count
    by_hour = [(f"{hour:02d}:00", count) for hour, count in sorted(hours.items())]
    cards = _card_renters(db, park_id, scope)
    renters = [(RENTERS[renter], count, *cards.get(renter, (0, 0)), f"{(out_ms or 0) / count / 60_000:.0f} min")
               for renter, count, out_ms in db.execute(
                   f"SELECT renter, SUM(rentals), SUM(out_ms) FROM rental_day_by_renter WHERE {where} "
                   "GROUP BY renter ORDER BY renter", params)]
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
