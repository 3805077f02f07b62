"""A contractor's statement for a period (第三方承包对账): gross sales at their stations, voids,
the park's commission, net payable, and every transaction with the receipt number printed on the
merchant copy, so the contractor can tick their receipts one by one.

Commission and net payable are read from each transaction's own postings (the revenue and
contractor accounts), not recomputed: commission is rounded per sale when it is booked, and the
statement must add up to exactly what the books say is owed. No fees are booked yet: the fees
column reads 0 until the park configures one.

Besides sales and voids, the statement lists every other transaction at the contractor's stations
that credited their payable — a rental return's fee at a contractor-run rental desk (the fee is the
station's; late and damage fees are the park's) — with the receipt number of the desk's return
slip: what the books owe the contractor is all on the statement, so all of it is paid out.

A statement marked paid (``ledger.settlement``) shows its payout: when, by whom, how, and what is
still outstanding; a payout lives in the books as a ``contractor_payout`` transaction.
"""

from datetime import datetime
import sqlite3
from zoneinfo import ZoneInfo

from ..rules.settlement import PaidStatement
from .corrections import receipt_number
from .query import ReportError, Scope, park_of
from .table import Column, Report, Table, fen_column, int_column, sum_columns
from .takings import SALE_KINDS

COLUMNS = (
    Column("time", "time", "时间"),
    Column("receipt", "receipt", "小票号"),
    Column("station", "station", "站点"),
    Column("kind", "kind", "类型"),
    fen_column("amount_fen", "amount", "金额"),
    fen_column("commission_fen", "commission", "佣金"),
    fen_column("payable_fen", "payable", "应付"),
)
SUMMARY_COLUMNS = (Column("item", "item", "项目"), fen_column("amount_fen", "amount", "金额"))
COUNT_COLUMNS = (Column("item", "item", "项目"), int_column("count", "count", "笔数"))
PAID_COLUMNS = (
    int_column("payout_no", "payout", "付款号"),
    Column("period", "period", "对账期"),
    Column("paid_at", "paid at", "付款时间"),
    Column("paid_by", "paid by", "付款人"),
    Column("channel", "channel", "渠道"),
    Column("reference", "reference", "凭证号"),
    fen_column("amount_fen", "amount", "金额"),
)
# How a statement line names a transaction that is neither a sale nor a void but credited the
# contractor (today only a rental return's fee; a kind not named here is listed by its type).
OTHER_EARNINGS = {"rental_return": "rental fee 租金"}
_PAID_SQL = ("SELECT payout_no, contractor_id, first_day, last_day, amount_fen, receipts, channel, reference, paid_by, "
             "paid_ms, txn_id FROM contractor_payout WHERE park_id = ?")


def contractors(db, park_id: str) -> dict[str, list[str]]:
    """contractor id -> the stations they run."""
    found: dict[str, list[str]] = {}
    for contractor, station in db.execute(
            "SELECT contractor_id, station_id FROM station WHERE park_id = ? AND contractor_id IS NOT NULL ORDER BY 2",
            (park_id,)):
        found.setdefault(contractor, []).append(station)
    return found


def paid_statements(db, park_id: str, contractor_id: str | None = None, *, first_day: str | None = None,
                    last_day: str | None = None) -> list[PaidStatement]:
    """Statements marked paid, oldest first: all of a park's, one contractor's, or those whose
    period meets ``first_day``..``last_day``. Reads only; a ledger from before settlements has none."""
    sql, params = _PAID_SQL, [park_id]
    if contractor_id is not None:
        sql, params = sql + " AND contractor_id = ?", params + [contractor_id]
    if first_day is not None and last_day is not None:
        sql, params = sql + " AND first_day <= ? AND last_day >= ?", params + [last_day, first_day]
    try:
        rows = db.execute(sql + " ORDER BY payout_no", params).fetchall()
    except sqlite3.OperationalError as error:
        if "no such table" in str(error):
            return []  # a ledger read as it is (immutable) from before settlements existed: nothing paid
        raise
    zone = ZoneInfo(park_of(db)[1])
    return [PaidStatement(*row[:10], datetime.fromtimestamp(row[9] / 1000, zone).strftime("%Y-%m-%d %H:%M:%S"), row[10])
            for row in rows]


def contractor_statement(db, scope: Scope, contractor_id: str) -> Report:
    run_by = contractors(db, scope.park_id)
    if contractor_id not in run_by:
        raise ReportError(f"no contractor {contractor_id!r} in park {scope.park_id} "
                          f"(contractors: {', '.join(sorted(run_by)) or 'none'})")
    stations = run_by[contractor_id]
    if scope.stations is not None and not set(stations) <= set(scope.stations):
        raise ReportError(f"contractor {contractor_id} runs stations outside this report's scope")
    zone = ZoneInfo(park_of(db)[1])
    where, params = Scope(scope.park_id, scope.period, tuple(stations)).txn_filter()
    kinds = ", ".join(f"'{kind}'" for kind in (*SALE_KINDS, "void"))
    account = f"contractor:{contractor_id}"
    found = db.execute(
        f"""SELECT t.ledger_time_ms, t.terminal_id, t.seq, t.station_id, t.kind, t.amount_fen,
                   COALESCE((SELECT SUM(p.amount) FROM posting p WHERE p.txn_id = t.txn_id AND p.asset = 'fen'
                              AND p.account_id = 'revenue:' || t.station_id), 0),
                   COALESCE((SELECT SUM(p.amount) FROM posting p WHERE p.txn_id = t.txn_id AND p.asset = 'fen'
                              AND p.account_id = ?), 0)
              FROM txn t
             WHERE {where}
               AND (t.kind IN ({kinds})
                    OR EXISTS (SELECT 1 FROM posting p WHERE p.txn_id = t.txn_id AND p.asset = 'fen' AND p.account_id = ?))
             ORDER BY t.ledger_time_ms, t.txn_id""",
        [account, *params, account]).fetchall()
    rows, gross, voided, earned, counts = [], 0, 0, 0, {"sale": 0, "void": 0, "other": 0}
    for ms, terminal, seq, station, kind, amount, commission, payable in found:
        if kind == "void":
            line, label, voided = -amount, "void 撤销", voided + amount
        elif kind in SALE_KINDS:
            line, label, gross = amount, "sale 销售", gross + amount
        else:
            # Not a sale: the transaction's amount is something else (a return's is the deposit paid
            # back); what the station earned by it is what it credited to the station's two accounts.
            line, label = commission + payable, OTHER_EARNINGS.get(kind, kind)
            earned += line
        counts["void" if kind == "void" else "sale" if kind in SALE_KINDS else "other"] += 1
        rows.append((datetime.fromtimestamp(ms / 1000, zone).strftime("%Y-%m-%d %H:%M:%S"),
                     receipt_number(terminal, seq), station, label, line, commission, payable))
    commission = sum(row[5] for row in rows)
    payable = sum(row[6] for row in rows)
    fees = 0
    summary = [
        ("gross sales 销售总额", gross),
        ("voids 撤销", -voided),
        ("rental fees 租金", earned),
        ("net sales 净销售额", gross - voided + earned),
        ("commission 佣金", -commission),
        ("fees 费用", -fees),
        ("net payable 应付净额", payable - fees),
    ]
    notes = ["net sales = gross sales - voids + rental fees; net payable = net sales - commission - fees; "
             "each line's commission is the one booked with it"]
    paid = paid_statements(db, scope.park_id, contractor_id, first_day=scope.period.first, last_day=scope.period.last)
    this = [p for p in paid if (p.first_day, p.last_day) == (scope.period.first, scope.period.last)]
    summary += [("paid 已付款", sum(p.amount_fen for p in this)),
                ("outstanding 未付款", payable - fees - sum(p.amount_fen for p in this))]
    if this:
        notes.append(f"paid 已付款: {this[0].paid_local} by {this[0].paid_by} ({this[0].channel}), payout {this[0].payout_no}")
    else:
        notes.append("not paid yet 未付款")
    if len(this) != len(paid):
        notes.append("other paid statements overlap this period 本期与其他已付对账单重叠: " +
                     ", ".join(f"{p.period} (payout {p.payout_no})" for p in paid if p not in this))
    paid_rows = [(p.payout_no, p.period, p.paid_local, p.paid_by, p.channel, p.reference, p.amount_fen) for p in paid]
    return Report(
        name="contractor", title_en=f"Contractor statement: {contractor_id}", title_zh=f"承包商对账单：{contractor_id}",
        scope_text=f"park {scope.park_id}, {scope.period}, stations {', '.join(stations)}",
        tables=[Table("Statement", "对账汇总", SUMMARY_COLUMNS, summary),
                Table("Counts", "笔数", COUNT_COLUMNS, [("sales 销售", counts["sale"]), ("voids 撤销", counts["void"]),
                                                       ("rental fees 租金", counts["other"])]),
                Table("Every receipt", "逐笔小票", COLUMNS, rows, sum_columns(COLUMNS, rows)),
                Table("Payments", "付款记录", PAID_COLUMNS, paid_rows)],
        notes=notes,
    )
