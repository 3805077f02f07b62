"""Member statistics for a period: members, how many were active, what they topped up and spent,
and the bonus and points the park gave them. Top-ups and spending are the transactions' amounts;
bonus and points are read from their postings (the promo and points accounts issue them)."""

from .query import Scope
from .table import Column, Report, Table, fen_column, int_column

COLUMNS = (
    Column("card", "member card", "会员卡"),
    Column("name", "name", "姓名"),
    int_column("top_ups", "top-ups", "充值笔数"),
    fen_column("top_up_fen", "topped up", "充值额"),
    int_column("sales", "purchases", "消费笔数"),
    fen_column("spent_fen", "spent (net of voids)", "消费额"),
    fen_column("bonus_fen", "bonus given", "赠送额"),
    int_column("points", "points earned", "积分"),
)
SUMMARY_COLUMNS = (Column("item", "item", "项目"), int_column("value", "value", "数值"))

_MEMBER_TXNS = """
    SELECT m.card_no, m.name, t.txn_id, t.kind, t.amount_fen
      FROM member m JOIN txn t ON t.park_id = m.park_id AND t.card_account LIKE 'card:' || m.card_no || '/%'
     WHERE m.park_id = ? AND {where}"""


def member_statistics(db, scope: Scope) -> Report:
    where, params = scope.txn_filter()
    rows = db.execute(
        f"""WITH mt AS ({_MEMBER_TXNS.format(where=where)})
            SELECT mt.card_no, mt.name,
                   SUM(mt.kind = 'top_up'), SUM(CASE WHEN mt.kind = 'top_up' THEN mt.amount_fen ELSE 0 END),
                   SUM(mt.kind IN ('charge', 'offline_charge')),
                   SUM(CASE mt.kind WHEN 'charge' THEN mt.amount_fen WHEN 'offline_charge' THEN mt.amount_fen
                                    WHEN 'void' THEN -mt.amount_fen ELSE 0 END),
                   COALESCE((SELECT SUM(p.amount) FROM posting p JOIN mt x ON x.txn_id = p.txn_id
                              WHERE x.card_no = mt.card_no AND x.kind = 'top_up' AND p.asset = 'bonus' AND p.account_id = 'promo'), 0) * -1,
                   COALESCE((SELECT SUM(p.amount) FROM posting p JOIN mt x ON x.txn_id = p.txn_id
                              WHERE x.card_no = mt.card_no AND p.asset = 'points' AND p.account_id = 'points_issued'), 0) * -1
              FROM mt GROUP BY mt.card_no, mt.name ORDER BY mt.card_no""",
        [scope.park_id, *params]).fetchall()
    members = db.execute("SELECT COUNT(*) FROM member WHERE park_id = ?", (scope.park_id,)).fetchone()[0]
    summary = [
        ("members 会员数", members),
        ("active in the period 活跃会员", len(rows)),
        ("top-ups 充值笔数", sum(row[2] for row in rows)),
    ]
    return Report(
        name="members", title_en="Member statistics", title_zh="会员统计", scope_text=str(scope),
        tables=[Table("Summary", "汇总", SUMMARY_COLUMNS, summary),
                Table("Per member card", "按会员卡", COLUMNS, rows,
                      ("total", "", *(sum(row[index] for row in rows) for index in range(2, 8))))],
        notes=["a replaced card is its own row: the lost card's history stays on its number"],
    )
