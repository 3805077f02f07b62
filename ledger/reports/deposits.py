"""Rental deposits (issue 13): what the deposit pool holds now, by payment route, with its oldest
hold; what the period released, captured and forfeited; the claims still open; and the refunds
still owed to online payers, those the provider refused for good first (they wait for an operator:
``fieldpos rental refund``). From the deposit orders, whose money ``ledger verify`` proves equal to
the pool's postings."""

from datetime import datetime
from zoneinfo import ZoneInfo

from .query import Scope, park_of
from .table import Column, Report, Table, fen_column, int_column, sum_columns

HELD_COLUMNS = (
    Column("route", "paid by", "支付方式"),
    int_column("holds", "deposits held", "押金笔数"),
    fen_column("held_fen", "held", "押金金额"),
    Column("oldest", "oldest hold", "最早"),
)
PERIOD_COLUMNS = (
    Column("what", "deposits", "押金"),
    int_column("orders", "orders", "笔数"),
    fen_column("deposit_fen", "deposits", "押金"),
    fen_column("refunded_fen", "released", "退还"),
    fen_column("rental_fen", "rental captured", "租金"),
    fen_column("late_fen", "late fees captured", "超时费"),
    fen_column("damage_fen", "damage captured", "损坏赔偿"),
    fen_column("claim_fen", "beyond the deposit", "押金不足"),
)
# Refunds of no deposit order, by their number's prefix (ledger.rentals_online.REFUND_PURPOSES).
OTHER_REFUNDS = {"RX": "stray payment 误付", "RT": "card top-up 充值"}
REFUND_COLUMNS = (
    Column("refund", "refund", "退款单"),
    Column("for", "for", "对应"),
    Column("payment", "payment", "原支付"),
    fen_column("amount_fen", "owed", "应退"),
    Column("state", "state", "状态"),
    Column("since", "since", "时间"),
)
CLAIM_COLUMNS = (
    Column("order", "order", "订单"),
    fen_column("amount_fen", "owed", "欠款"),
    Column("on", "booked on", "记于"),
    Column("since", "since", "时间"),
)


def _local(time_ms: int, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(time_ms / 1000, zone).strftime("%Y-%m-%d %H:%M")


def deposits(db, scope: Scope) -> Report:
    park_id, time_zone, _ = park_of(db)
    zone = ZoneInfo(time_zone)
    held = [(route, count, fen, _local(oldest, zone)) for route, count, fen, oldest in db.execute(
        """SELECT route, COUNT(*), SUM(deposit_fen), MIN(held_ms) FROM deposit_order
            WHERE park_id = ? AND state IN ('held', 'out') GROUP BY route ORDER BY route""", (park_id,))]
    closed = db.execute(
        """SELECT o.state, COUNT(*), SUM(o.deposit_fen), SUM(o.refunded_fen), SUM(o.rental_fen), SUM(o.late_fen),
                  SUM(o.damage_fen), SUM(o.claim_fen)
             FROM deposit_order o JOIN txn t ON t.txn_id = o.closed_txn
            WHERE o.park_id = ? AND t.business_day BETWEEN ? AND ? GROUP BY o.state ORDER BY o.state""",
        (park_id, scope.period.first, scope.period.last)).fetchall()
    labels = {"closed": "returned 已归还", "forfeited": "forfeited 没收"}
    period_rows = [(labels.get(state, state), *(value or 0 for value in values)) for state, *values in closed]
    taken = db.execute(
        """SELECT COUNT(*), COALESCE(SUM(o.deposit_fen), 0) FROM deposit_order o JOIN txn t ON t.txn_id = o.held_txn
            WHERE o.park_id = ? AND t.business_day BETWEEN ? AND ?""",
        (park_id, scope.period.first, scope.period.last)).fetchone()
    period_rows.insert(0, ("taken 收取", taken[0], taken[1], 0, 0, 0, 0, 0))
    claims = [(f"D{order_no}", amount, "member card " + account.split(":", 1)[1] if account else "open claim 待追偿",
               _local(created, zone)) for order_no, amount, account, created in db.execute(
        "SELECT order_no, amount_fen, card_account, created_ms FROM rental_claim WHERE park_id = ? ORDER BY order_no",
        (park_id,))]
    refunds = [(refund_no, f"D{order_no}" if order_no else OTHER_REFUNDS.get(refund_no[:2], "-"), f"{provider} {provider_order}",
                amount, f"FAILED 失败 {failed}: retry or pay in cash 重试或现金退" if failed else "owed 退款中",
                _local(failed_ms or created, zone))
               for refund_no, order_no, provider, provider_order, amount, failed, failed_ms, created in db.execute(
                   """SELECT refund_no, order_no, provider, provider_order, amount_fen, failed_code, failed_ms, created_ms
                        FROM refund_request WHERE park_id = ? AND state = 'pending'
                       ORDER BY failed_code IS NULL, created_ms, refund_no""", (park_id,))]
    return Report(
        name="deposits", title_en="Rental deposits", title_zh="租赁押金", scope_text=f"park {park_id}, {scope.period}",
        tables=[Table("Held now, by how it was paid", "当前押金(按支付方式)", HELD_COLUMNS, held,
                      sum_columns(HELD_COLUMNS, held) if held else None),
                Table("In the period", "本期", PERIOD_COLUMNS, period_rows),
                Table("Claims beyond the deposit", "押金不足欠款", CLAIM_COLUMNS, claims,
                      sum_columns(CLAIM_COLUMNS, claims) if claims else None),
                Table("Refunds owed to online payers", "待退线上款项", REFUND_COLUMNS, refunds,
                      sum_columns(REFUND_COLUMNS, refunds) if refunds else None)],
        notes=["held now is the whole pool at this moment; the period's rows are by the business day each "
               "deposit was taken, returned or forfeited"],
    )
