"""Voids, reversals and refunds, each with who did it and who approved it: the list a finance
officer checks every day. The approver is the supervisor whose card the till read (it is in the
signed request the ledger keeps as evidence, with the PIN checked when it was booked). Balance
adjustments follow in their own table, each with the reason, who asked and who approved."""

from datetime import datetime
from zoneinfo import ZoneInfo

from protocol import codec, envelope

from .query import Scope, park_of
from .table import Column, Report, Table, fen_column, sum_columns

CORRECTION_KINDS = ("void", "reversal", "card_return")
_KIND_TEXT = {"void": "void 撤销", "reversal": "reversal 冲正", "card_return": "refund 退卡退款"}

COLUMNS = (
    Column("time", "time", "时间"),
    Column("receipt", "receipt", "小票号"),
    Column("kind", "kind", "类型"),
    Column("station", "station", "站点"),
    Column("operator", "operator", "操作员"),
    fen_column("amount_fen", "amount", "金额"),
    Column("approver", "approved by", "批准人"),
    Column("original", "original receipt", "原小票"),
    Column("card", "card", "卡号"),
)


ADJUSTMENT_COLUMNS = (
    Column("time", "time", "时间"),
    Column("adjustment", "adjustment", "调账单"),
    Column("card", "card", "卡号"),
    Column("asset", "asset", "资产"),
    Column("amount", "amount (fen, bonus fen or points)", "金额"),
    Column("reason", "reason", "原因"),
    Column("asked_by", "asked for by", "申请人"),
    Column("approver", "approved by", "批准人"),
)


def receipt_number(terminal_id: str, seq: int) -> str:
    """The number printed on both receipt copies: the terminal and its sequence number."""
    return f"{terminal_id}-{seq}"


def _approver(payload: bytes, staff_by_card: dict) -> str:
    body = codec.decode(envelope.split(payload).body)
    card_no = body.get("supervisor_card_no")
    if not card_no:
        return ""
    staff_id, name = staff_by_card.get(card_no, ("?", "unknown card"))
    return f"{staff_id} {name} ({card_no})"


def corrections(db, scope: Scope) -> Report:
    zone = ZoneInfo(park_of(db)[1])
    staff_by_card = {card: (staff_id, name) for staff_id, name, card in
                     db.execute("SELECT staff_id, name, card_no FROM staff WHERE park_id = ?", (scope.park_id,))}
    where, params = scope.txn_filter()
    rows = []
    for time_ms, terminal, seq, kind, station, operator, amount, card, payload, o_terminal, o_seq in db.execute(
            f"""SELECT t.ledger_time_ms, t.terminal_id, t.seq, t.kind, t.station_id, t.operator, t.amount_fen,
                       t.card_account, r.payload, o.terminal_id, o.seq
                  FROM txn t JOIN request r ON r.terminal_id = t.terminal_id AND r.seq = t.seq
                  LEFT JOIN txn o ON o.txn_id = t.voids_txn
                 WHERE {where} AND t.kind IN ({", ".join(f"'{kind}'" for kind in CORRECTION_KINDS)})
                 ORDER BY t.ledger_time_ms, t.txn_id""", params):
        rows.append((
            datetime.fromtimestamp(time_ms / 1000, zone).strftime("%Y-%m-%d %H:%M:%S"), receipt_number(terminal, seq),
            _KIND_TEXT[kind], station, operator, amount, _approver(payload, staff_by_card),
            receipt_number(o_terminal, o_seq) if o_terminal else "", card or "",
        ))
    # Adjustments book no station (the scope's station filter leaves them to park-wide readers).
    adjustments = [
        (datetime.fromtimestamp(time_ms / 1000, zone).strftime("%Y-%m-%d %H:%M:%S"), f"A{number}", account, asset,
         amount, reason, asked_by, approver)
        for time_ms, number, account, asset, amount, reason, asked_by, approver in db.execute(
            f"""SELECT t.ledger_time_ms, a.adjustment_id, a.card_account, a.asset, a.amount, a.reason, a.requested_by,
                       a.decided_by
                  FROM txn t JOIN balance_adjustment a ON a.txn_id = t.txn_id
                 WHERE {where} AND t.kind = 'balance_adjustment' ORDER BY t.ledger_time_ms, t.txn_id""", params)]
    return Report(
        name="corrections", title_en="Voids, reversals and refunds", title_zh="撤销、冲正与退款", scope_text=str(scope),
        tables=[Table("Corrections", "更正记录", COLUMNS, rows, sum_columns(COLUMNS, rows)),
                Table("Balance adjustments", "调账", ADJUSTMENT_COLUMNS, adjustments)],
    )
