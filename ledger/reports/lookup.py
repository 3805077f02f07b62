"""Find transactions for a dispute: by the receipt number on the visitor's copy (``T-BBQ-1-9``), by
card number (every issuance of it), or by a member's phone number (every card opened with it).
A lookup is not limited to a period: disputes come late."""

from datetime import datetime
from zoneinfo import ZoneInfo

from .corrections import receipt_number
from .query import ReportError, park_of
from .table import Column, Report, Table, fen_column

# A visitor's card history is short; a lookup never lists more than this many transactions.
MAX_LOOKUP_ROWS = 500

COLUMNS = (
    Column("time", "time", "时间"),
    Column("business_day", "business day", "营业日"),
    Column("receipt", "receipt", "小票号"),
    Column("kind", "kind", "类型"),
    Column("station", "station", "站点"),
    Column("operator", "operator", "操作员"),
    Column("card", "card", "卡号"),
    fen_column("amount_fen", "amount", "金额"),
)
POSTING_COLUMNS = (Column("receipt", "receipt", "小票号"), Column("account", "account", "账户"),
                   Column("asset", "asset", "资产"), Column("amount", "amount (fen, bonus fen or points)", "金额"))


class NothingFound(ReportError):
    """A lookup found no transaction: a mistyped receipt, card or phone, or another park's."""

    code = "NOT_FOUND"


def parse_receipt(text: str) -> tuple[str, int]:
    terminal, _, seq = text.strip().rpartition("-")
    if not terminal or not seq.isdigit():
        raise ReportError(f"a receipt number is the terminal and its number, like T-BBQ-1-9, not {text!r}")
    return terminal, int(seq)


def lookup(db, park_id: str, *, receipt: str | None = None, card: str | None = None, phone: str | None = None,
           stations: tuple[str, ...] | None = None) -> Report:
    if sum(value is not None for value in (receipt, card, phone)) != 1:
        raise ReportError("look up by one of: a receipt number, a card number, a phone number")
    if receipt is not None:
        terminal, seq = parse_receipt(receipt)
        where, params, what = "t.terminal_id = ? AND t.seq = ?", [terminal, seq], f"receipt {receipt}"
    elif card is not None:
        where, params, what = "t.card_account LIKE ? ESCAPE '\\'", [f"card:{_like(card.strip())}/%"], f"card {card}"
    else:
        cards = [row[0] for row in db.execute("SELECT card_no FROM member WHERE park_id = ? AND phone = ?",
                                              (park_id, phone.strip()))]
        # No card: a condition false in both stores' SQL (PostgreSQL takes no bare integer as one).
        where = " OR ".join("t.card_account LIKE ? ESCAPE '\\'" for _ in cards) or "1 = 0"
        params, what = [f"card:{_like(card_no)}/%" for card_no in cards], f"phone {phone} (cards: {', '.join(cards) or 'none'})"
    if stations is not None:
        where = f"({where}) AND t.station_id IN ({', '.join('?' * len(stations)) or 'NULL'})"
        params += list(stations)
    zone = ZoneInfo(park_of(db)[1])
    found = db.execute(
        f"""SELECT t.txn_id, t.ledger_time_ms, t.business_day, t.terminal_id, t.seq, t.kind, t.station_id, t.operator,
                   t.card_account, t.amount_fen
              FROM txn t WHERE t.park_id = ? AND ({where}) ORDER BY t.ledger_time_ms, t.txn_id LIMIT ?""",
        [park_id, *params, MAX_LOOKUP_ROWS + 1]).fetchall()
    notes = [f"more than {MAX_LOOKUP_ROWS} transactions: the first {MAX_LOOKUP_ROWS} are listed"] \
        if len(found) > MAX_LOOKUP_ROWS else []
    found = found[:MAX_LOOKUP_ROWS]
    rows = [(datetime.fromtimestamp(ms / 1000, zone).strftime("%Y-%m-%d %H:%M:%S"), day, receipt_number(terminal, seq),
             kind, station, operator, card_account or "", amount)
            for _, ms, day, terminal, seq, kind, station, operator, card_account, amount in found]
    tables = [Table("Transactions", "交易", COLUMNS, rows)]
    if receipt is not None and found:
        postings = db.execute("SELECT account_id, asset, amount FROM posting WHERE txn_id = ? ORDER BY rowid",
                              (found[0][0],)).fetchall()
        tables.append(Table("Postings", "分录", POSTING_COLUMNS, [(receipt, *row) for row in postings]))
    if not found:
        raise NothingFound(f"no transaction found for {what}")
    return Report(name="lookup", title_en="Transaction lookup", title_zh="交易查询", scope_text=f"park {park_id}, {what}",
                  tables=tables, notes=notes)


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
