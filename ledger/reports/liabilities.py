"""What the park owes, now: money and bonus on cards, card deposits, points, contractors' payables.
Read at one moment from the running card balances (which ``ledger verify`` proves equal to their
postings) and from the postings of the park's own accounts.

Rental deposits held are the deposit pool's balance (``fieldpos report deposits`` itemises them).
"""

from .query import Scope
from .table import Column, Report, Table, fen_column, int_column

_CARD_KIND_JOIN = """LEFT JOIN card c ON c.park_id = b.park_id
                       AND c.card_no = substr(b.account_id, 6, instr(b.account_id, '/') - 6)
                       AND c.issuance = CAST(substr(b.account_id, instr(b.account_id, '/') + 1) AS INTEGER)"""

CARD_COLUMNS = (
    Column("card_type", "card type", "卡类"),
    int_column("cards", "cards with a balance", "有余额卡数"),
    fen_column("balance_fen", "balances outstanding", "卡内余额"),
    fen_column("owed_fen", "owed by visitors (overdrawn)", "透支应收"),
    fen_column("bonus_fen", "bonus outstanding", "赠送余额"),
    int_column("points", "points outstanding", "积分"),
)
SUMMARY_COLUMNS = (Column("item", "liability", "负债项目"), fen_column("amount_fen", "amount", "金额"),
                   Column("note", "note", "说明"))


def account_balances(db, park_id: str, account_prefix: str) -> list[tuple[str, int]]:
    """(account, fen balance) of every account whose name starts with ``account_prefix``. A range,
    not LIKE: SQLite uses the (park_id, account_id) index for it and reads only those postings."""
    after = account_prefix[:-1] + chr(ord(account_prefix[-1]) + 1)
    return db.execute(
        """SELECT account_id, SUM(amount) FROM posting WHERE park_id = ? AND account_id >= ? AND account_id < ?
             AND asset = 'fen' GROUP BY account_id ORDER BY account_id""", (park_id, account_prefix, after)).fetchall()


def liabilities(db, scope: Scope) -> Report:
    park_id = scope.park_id
    card_rows = db.execute(
        f"""SELECT COALESCE(c.kind, 'unknown'), SUM(b.fen > 0), SUM(MAX(b.fen, 0)), SUM(MIN(b.fen, 0)),
                   SUM(b.bonus), SUM(b.points)
              FROM card_balance b {_CARD_KIND_JOIN}
             WHERE b.park_id = ? GROUP BY 1 ORDER BY 1""", (park_id,)).fetchall()
    card_rows = [tuple(value or 0 if index else value for index, value in enumerate(row)) for row in card_rows]
    deposits = sum(amount for account, amount in account_balances(db, park_id, "card_fee") if account == "card_fee")
    contractors = account_balances(db, park_id, "contractor:")
    rental_deposits = sum(amount for _, amount in account_balances(db, park_id, "deposit:"))
    balances = sum(row[2] for row in card_rows)
    bonus = sum(row[4] for row in card_rows)
    summary = [
        ("card balances outstanding 卡内余额", balances, "real money on cards, refundable at the exit"),
        ("card deposits held 卡押金", deposits, "card fees taken, refunded when a card comes back"),
        ("bonus outstanding 赠送余额", bonus, "promotional credit, spendable, never paid out"),
        *((f"payable to {account.split(':', 1)[1]} 应付承包商", amount, "contractor sales less commission, not yet paid")
          for account, amount in contractors),
        ("rental deposits held 租赁押金", rental_deposits, "the deposit pool: refunded or captured on return"),
    ]
    return Report(
        name="liabilities", title_en="Liabilities", title_zh="负债", scope_text=f"park {park_id}, now",
        tables=[Table("What the park owes", "园区负债", SUMMARY_COLUMNS, summary),
                Table("Cards by type", "按卡类", CARD_COLUMNS, card_rows,
                      ("total", *(sum(row[index] for row in card_rows) for index in range(1, 6))))],
        notes=["overdrawn cards (offline sales) are money visitors owe the park, shown apart from balances"],
    )
