"""The console's front page as one read: today so far (sales, top-ups, refunds, deposits held, by
station, by hour), the terminals' last heartbeats (queue, printer, software version), and what needs
someone's attention.

``with_money=False`` (a technician) leaves every amount out of the result, not merely off the page.
"""

from dataclasses import dataclass, field
from datetime import datetime, timezone
import time

from ..days import first_open_day
from .liabilities import account_balances
from .query import Period, Scope, business_day_at, park_of
from .table import Chart, Column, Report, Table, fen_column, int_column, sum_columns
from .takings import SALE_KINDS, SALE_LIST
from .time_of_day import COLUMNS as HOUR_COLUMNS, hourly_sales

# How far back the dashboard lists alerts, and how many at most.
ALERT_WINDOW_MS = 24 * 3600 * 1000
MAX_ALERTS = 50
# A terminal that has not been heard from in this long is shown offline, whatever it last said.
STALE_HEARTBEAT_MS = 5 * 60 * 1000


@dataclass(frozen=True)
class TerminalLine:
    terminal_id: str
    station_id: str
    is_online: bool
    queue_depth: int | None
    highest_seq: int | None
    last_seen_ms: int | None
    is_retired: bool
    printer_state: str | None = None      # a protocol PrinterState value; None: not reported (no printer, older build)
    software_version: str | None = None


@dataclass(frozen=True)
class Dashboard:
    business_day: str
    now_ms: int
    terminals: list[TerminalLine]
    alerts: list[tuple[int, str, str]]          # (time ms, kind, detail)
    set_aside_held: int
    money: dict | None = None                   # None: the viewer may not see money
    by_station: list[tuple[str, int, int]] = field(default_factory=list)   # (station, sales, net fen)
    by_hour: list[tuple[int, int, int]] = field(default_factory=list)      # (hour, sales, net fen)


def dashboard(db, *, stations: tuple[str, ...] | None = None, with_money: bool = True,
              now_ms: int | None = None) -> Dashboard:
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    park_id, zone, cutoff = park_of(db)
    db.execute("BEGIN")  # one snapshot: the totals and the terminals agree with each other
    try:
        # After a day-end close (日结) "today" is the day bookings now go to, not the closed one.
        day = first_open_day(db, park_id, business_day_at(now_ms, zone, cutoff))
        scope = Scope(park_id, Period(day, day), stations)
        result = Dashboard(
            business_day=day, now_ms=now_ms, terminals=_terminals(db, park_id, stations, now_ms),
            alerts=db.execute("SELECT time_ms, kind, detail FROM alert WHERE time_ms >= ? ORDER BY time_ms DESC LIMIT ?",
                              (now_ms - ALERT_WINDOW_MS, MAX_ALERTS)).fetchall() if stations is None else [],
            set_aside_held=db.execute("SELECT COUNT(*) FROM set_aside WHERE state = 'held'").fetchone()[0],
        )
        if with_money:
            money, by_station = _today(db, scope)
            result = Dashboard(**{**result.__dict__, "money": money, "by_station": by_station,
                                  "by_hour": hourly_sales(db, scope)})
    finally:
        db.execute("ROLLBACK")
    return result


def _today(db, scope: Scope) -> tuple[dict, list]:
    where, params = scope.txn_filter()
    by_kind = dict.fromkeys(("sale", "void", "top_up", "card_return", "card_issue", "reversal"), (0, 0))
    by_station = {}
    for station, kind, count, amount in db.execute(
            f"""SELECT t.station_id, t.kind, COUNT(*), SUM(t.amount_fen) FROM txn t
                 WHERE {where} AND t.kind IN ({SALE_LIST}, 'void', 'top_up', 'card_return', 'card_issue', 'reversal')
                 GROUP BY 1, 2""", params):
        key = "sale" if kind in SALE_KINDS else kind
        total_count, total_fen = by_kind[key]
        by_kind[key] = (total_count + count, total_fen + amount)
        if key in ("sale", "void"):
            sales, net = by_station.get(station, (0, 0))
            by_station[station] = (sales + (count if key == "sale" else 0), net + (amount if key == "sale" else -amount))
    money = {
        "sales": by_kind["sale"][0], "sales_fen": by_kind["sale"][1], "voids_fen": by_kind["void"][1],
        "net_sales_fen": by_kind["sale"][1] - by_kind["void"][1],
        "top_ups": by_kind["top_up"][0], "top_ups_fen": by_kind["top_up"][1],
        "refunds": by_kind["card_return"][0], "refunds_fen": by_kind["card_return"][1],
        "cards_issued": by_kind["card_issue"][0],
    }
    if scope.stations is None:  # park-wide money: not a station supervisor's
        money["deposits_held_fen"] = sum(amount for account, amount in account_balances(db, scope.park_id, "card_fee")
                                         if account == "card_fee")
    return money, [(station, sales, net) for station, (sales, net) in sorted(by_station.items())]


def _terminals(db, park_id: str, stations, now_ms: int) -> list[TerminalLine]:
    lines = []
    for terminal, station, revoked, is_online, highest, depth, received_ms, printer, version in db.execute(
            """SELECT t.terminal_id, t.station_id, t.revoked_from_seq, s.is_online, s.highest_seq, s.queue_depth,
                      s.received_ms, s.printer_state, s.software_version
                 FROM terminal t LEFT JOIN terminal_status s USING (terminal_id)
                WHERE t.park_id = ? ORDER BY t.terminal_id""", (park_id,)):
        if stations is not None and station not in stations:
            continue
        is_fresh = received_ms is not None and now_ms - received_ms <= STALE_HEARTBEAT_MS
        lines.append(TerminalLine(terminal, station, bool(is_online) and is_fresh, depth, highest, received_ms,
                                  revoked is not None, printer, version))
    return lines


TODAY_COLUMNS = (Column("item", "item", "项目"), int_column("count", "count", "笔数"), fen_column("fen", "amount", "金额"))
STATION_COLUMNS = (Column("station", "station", "站点"), int_column("sales", "sales", "笔数"),
                   fen_column("net_fen", "net sales", "净销售额"))
TERMINAL_COLUMNS = (
    Column("terminal", "terminal", "终端"), Column("station", "station", "站点"), Column("status", "status", "状态"),
    int_column("queue_depth", "queued", "待传笔数"), int_column("highest_seq", "highest seq", "最大序号"),
    Column("last_seen", "last seen (UTC)", "最后联系（UTC）"), Column("printer", "printer", "打印机"),
    Column("software_version", "software", "软件版本"),
)


def dashboard_report(db, scope: Scope, *, now_ms: int | None = None) -> Report:
    """``fieldpos report dashboard``: the console's front page as tables — today so far, by station,
    by hour, and every terminal with its queue, printer and software version as last reported."""
    board = dashboard(db, stations=scope.stations, now_ms=now_ms)
    money = board.money
    today = [("sales", money["sales"], money["sales_fen"]), ("voided", None, money["voids_fen"]),
             ("net sales", money["sales"], money["net_sales_fen"]), ("top-ups", money["top_ups"], money["top_ups_fen"]),
             ("refunds", money["refunds"], money["refunds_fen"]), ("cards issued", money["cards_issued"], None)]
    if "deposits_held_fen" in money:
        today.append(("card deposits held", None, money["deposits_held_fen"]))
    hours = [(f"{hour:02d}:00", sales, net) for hour, sales, net in board.by_hour]
    terminals = [(line.terminal_id, line.station_id,
                  "retired" if line.is_retired else "online" if line.is_online else "offline",
                  line.queue_depth, line.highest_seq, _utc(line.last_seen_ms), line.printer_state or "not reported",
                  line.software_version or "not reported") for line in board.terminals]
    return Report(
        name="dashboard", title_en="Dashboard", title_zh="概览",
        scope_text=f"{scope.park_id}, {board.business_day} so far" + (
            f", stations: {', '.join(scope.stations)}" if scope.stations is not None else ""),
        tables=[
            Table("Today so far", "今日至今", TODAY_COLUMNS, today),
            Table("By station", "按站点", STATION_COLUMNS, board.by_station, sum_columns(STATION_COLUMNS, board.by_station)),
            Table("Terminals", "终端", TERMINAL_COLUMNS, terminals),
            Table("Per hour (park time)", "按小时（园区时间）", HOUR_COLUMNS, hours, sum_columns(HOUR_COLUMNS, hours)),
        ],
        notes=[f"{board.set_aside_held} set-aside messages held; {len(board.alerts)} alerts in the last 24 hours"],
        chart=Chart("bar", 3, "hour", ("net_fen",)),
    )


def _utc(time_ms: int | None) -> str:
    if time_ms is None:
        return ""
    return datetime.fromtimestamp(time_ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
