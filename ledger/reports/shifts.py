"""Shifts (交班) and business days (日结): each shift's cashier, hours and how it ended, with its blind
cash count — what the books expected in the drawer, what was counted, and the over/short booked to
cash_over_short — and each closed business day, with what arrived after its close and was booked
on the next open day instead.

A shift's figures are those its slip printed: the cash expected and counted are kept on the shift
when it is handed over, and its transactions are its terminal's between the seqs that opened and
closed it, booked before its handover (the slip's totals themselves: ``ledger.shift_totals``).
What the terminal sent for that shift later (an offline sale uploaded after the handover) is
counted apart, as "arrived after".
"""

from datetime import datetime
from zoneinfo import ZoneInfo

from protocol.money import format_fen

from .query import Scope, business_day_at, park_of
from .table import Column, Report, Table, fen_column, int_column

CLOSED_HOW_TEXT = {"handover": "handover 交班", "close": "closed 签退", "login": "next login 换班登录",
                   "day_close": "day close 日结强制", None: "open 当班"}

SHIFT_COLUMNS = (
    Column("terminal", "terminal", "终端"),
    Column("station", "station", "站点"),
    Column("staff", "staff", "员工"),
    Column("opened", "opened", "上班"),
    Column("closed", "closed", "交班"),
    Column("how", "ended by", "结束方式"),
    int_column("transactions", "transactions", "笔数"),
    fen_column("cash_expected_fen", "cash expected", "应有现金"),
    fen_column("cash_counted_fen", "cash counted", "实点现金"),
    fen_column("over_short_fen", "over/short", "长短款"),
    int_column("arrived_after", "arrived after", "交班后到达"),
)
DAY_COLUMNS = (
    Column("business_day", "business day", "营业日"),
    Column("closed", "closed at", "日结时间"),
    Column("closed_by", "closed by", "日结人"),
    int_column("shifts_ended", "shifts ended by the close", "强制结束班次"),
    int_column("late_count", "arrived after the close", "日结后到达笔数"),
    fen_column("late_fen", "their amount", "金额"),
    Column("booked_on", "booked on", "记入营业日"),
)


def _time_text(time_ms, zone) -> str:
    return "" if time_ms is None else datetime.fromtimestamp(time_ms / 1000, zone).strftime("%Y-%m-%d %H:%M")


def shift_rows(db, scope: Scope) -> list[tuple]:
    """One row per shift that ended in the period (by the business day of its end), and per shift
    still open that began in it; in SHIFT_COLUMNS order."""
    _, zone_name, cutoff = park_of(db)
    zone = ZoneInfo(zone_name)
    sql = """SELECT s.terminal_id, t.station_id, s.staff_id, s.open_seq, s.opened_ms, s.close_seq, s.closed_ms,
                    s.closed_how, s.close_txn, s.cash_expected_fen, s.cash_counted_fen, s.business_day
               FROM shift s JOIN terminal t ON t.terminal_id = s.terminal_id
              WHERE s.park_id = ? AND (s.business_day BETWEEN ? AND ? OR s.business_day IS NULL)"""
    params: list = [scope.park_id, scope.period.first, scope.period.last]
    if scope.stations is not None:
        sql += f" AND t.station_id IN ({', '.join('?' * len(scope.stations)) or 'NULL'})"
        params += list(scope.stations)
    rows = []
    for (terminal, station, staff, open_seq, opened_ms, close_seq, closed_ms, how, close_txn, expected, counted,
         day) in db.execute(sql + " ORDER BY s.opened_ms, s.terminal_id", params).fetchall():
        if day is None:  # still open (by the day it began), or closed before shifts kept their day
            day = business_day_at(opened_ms if closed_ms is None else closed_ms, zone_name, cutoff)
            if not scope.period.first <= day <= scope.period.last:
                continue
        if close_seq is None:
            close_seq = 2**53  # open: everything the terminal sent since it opened
        # After the handover: booked after its transaction (or, closed without one, after it closed).
        after_sql, after = ("t.txn_id > ?", close_txn) if close_txn is not None else ("t.ledger_time_ms > ?", closed_ms)
        on_slip, arrived_after = db.execute(
            f"""SELECT COUNT(*) - COALESCE(SUM(CASE WHEN {after_sql} THEN 1 ELSE 0 END), 0),
                       COALESCE(SUM(CASE WHEN {after_sql} THEN 1 ELSE 0 END), 0)
                  FROM txn t WHERE t.park_id = ? AND t.terminal_id = ? AND t.seq > ? AND t.seq < ?
                   AND t.kind <> 'shift_handover'""",
            (after if after is not None else 2**53, after if after is not None else 2**53, scope.park_id, terminal,
             open_seq, close_seq)).fetchone()
        over_short = None if counted is None else counted - expected
        rows.append((terminal, station, staff, _time_text(opened_ms, zone), _time_text(closed_ms, zone),
                     CLOSED_HOW_TEXT[how], on_slip, expected, counted, over_short, arrived_after))
    return rows


def day_rows(db, scope: Scope) -> list[tuple]:
    """The period's closed business days, and where what arrived after each close was booked."""
    zone = ZoneInfo(park_of(db)[1])
    late = {closed_day: (count, fen, booked_on) for closed_day, count, fen, booked_on in db.execute(
        """SELECT b.closed_day, COUNT(*), COALESCE(SUM(t.amount_fen), 0), MIN(t.business_day) || CASE
                  WHEN MAX(t.business_day) <> MIN(t.business_day) THEN ' to ' || MAX(t.business_day) ELSE '' END
             FROM booked_late b JOIN txn t ON t.txn_id = b.txn_id
            WHERE t.park_id = ? AND b.closed_day BETWEEN ? AND ? GROUP BY b.closed_day""",
        (scope.park_id, scope.period.first, scope.period.last))}
    rows = []
    for day, closed_ms, closed_by, forced in db.execute(
            """SELECT business_day, closed_ms, closed_by, forced_shifts FROM business_day_close
                WHERE park_id = ? AND business_day BETWEEN ? AND ? ORDER BY business_day""",
            (scope.park_id, scope.period.first, scope.period.last)):
        count, fen, booked_on = late.get(day, (0, 0, ""))
        rows.append((day, _time_text(closed_ms, zone), closed_by, forced, count, fen, booked_on))
    return rows


def shifts(db, scope: Scope) -> Report:
    shift_table = shift_rows(db, scope)
    days = day_rows(db, scope)
    notes = ["over/short = cash counted − cash expected: positive is over (长款), negative short (短款); "
             "it is booked to the account cash_over_short when the shift is handed over",
             "a shift's figures are its slip's; what its till sent after the handover is counted as arrived after"]
    if any(row[4] for row in days):
        notes.append("transactions that arrived after their business day was closed (日结) are booked on the next "
                     "open day: see 'booked on'")
    return Report(
        name="shifts", title_en="Shifts and day closes", title_zh="交班与日结", scope_text=str(scope),
        tables=[Table("Shifts", "班次", SHIFT_COLUMNS, shift_table,
                      ("total", "", "", "", "", "", sum(row[6] for row in shift_table), None, None,
                       sum(row[9] or 0 for row in shift_table), sum(row[10] for row in shift_table))),
                Table("Closed business days", "已日结营业日", DAY_COLUMNS, days)],
        notes=notes,
    )


def late_booking_notes(db, scope: Scope) -> list[str]:
    """A note per closed day whose late arrivals are booked within ``scope``: reports that add up a
    day then say why it holds what arrived after the day before was closed."""
    where, params = scope.txn_filter()
    return [f"{count} transactions ({format_fen(fen, grouped=True)}) arrived after business day {closed_day} was closed "
            f"(日结) and are booked on {booked_on}"
            for closed_day, booked_on, count, fen in db.execute(
                f"""SELECT b.closed_day, t.business_day, COUNT(*), COALESCE(SUM(t.amount_fen), 0)
                      FROM booked_late b JOIN txn t ON t.txn_id = b.txn_id
                     WHERE {where} GROUP BY 1, 2 ORDER BY 1, 2""", params)]
