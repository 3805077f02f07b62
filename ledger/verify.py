"""``fieldpos ledger verify``: replay the books and report the first thing that does not add up.

Checks, in order: every transaction sums to zero per asset; every card's running balance equals
the sum of its postings (both ways: no balance without postings, no postings without a balance);
every approved request has exactly its transaction and every transaction an approved request, so
no state hides outside the postings.
"""

from dataclasses import dataclass

from .store import Store


@dataclass(frozen=True)
class VerifyReport:
    transactions: int
    postings: int
    card_accounts: int
    problems: tuple[str, ...]

    @property
    def is_ok(self) -> bool:
        return not self.problems


_CHECKS = (
    (
        "transaction {0} does not balance in {1}: sum {2}",
        "SELECT txn_id, asset, SUM(amount) FROM posting GROUP BY txn_id, asset HAVING SUM(amount) <> 0 ORDER BY txn_id",
    ),
    (
        "card account {1} ({0}) balance row says {2}/{3}/{4} fen/bonus/points, its postings add up to {5}/{6}/{7}",
        """WITH replay AS (
               SELECT park_id, account_id,
                      SUM(CASE asset WHEN 'fen' THEN amount ELSE 0 END) AS fen,
                      SUM(CASE asset WHEN 'bonus' THEN amount ELSE 0 END) AS bonus,
                      SUM(CASE asset WHEN 'points' THEN amount ELSE 0 END) AS points
               FROM posting WHERE account_id LIKE 'card:%' GROUP BY park_id, account_id)
           SELECT COALESCE(b.park_id, r.park_id), COALESCE(b.account_id, r.account_id),
                  b.fen, b.bonus, b.points, r.fen, r.bonus, r.points
           FROM card_balance b FULL OUTER JOIN replay r USING (park_id, account_id)
           WHERE COALESCE(b.fen, 0) <> COALESCE(r.fen, 0) OR COALESCE(b.bonus, 0) <> COALESCE(r.bonus, 0)
              OR COALESCE(b.points, 0) <> COALESCE(r.points, 0)""",
    ),
    (
        "request {0} seq {1} is approved but has no transaction",
        """SELECT r.terminal_id, r.seq FROM request r LEFT JOIN txn t ON t.txn_id = r.txn_id
           WHERE r.outcome = 'approved' AND r.kind NOT IN ('shift_open', 'shift_close', 'station_report', 'member_lookup')
             AND r.reason <> 'SAME_SALE'
             AND (t.txn_id IS NULL OR t.terminal_id <> r.terminal_id OR t.seq <> r.seq)""",
    ),
    (
        "transaction {0} ({1} seq {2}) has no approved request",
        """SELECT t.txn_id, t.terminal_id, t.seq FROM txn t LEFT JOIN request r
             ON r.terminal_id = t.terminal_id AND r.seq = t.seq AND r.outcome = 'approved' AND r.txn_id = t.txn_id
           WHERE r.seq IS NULL""",
    ),
)


def verify_books(store: Store, *, max_problems: int = 20) -> VerifyReport:
    """Replay the books in ``store``; the report lists up to ``max_problems`` mismatches."""
    db = store.db
    problems: list[str] = []
    db.execute("BEGIN")  # one snapshot for every check, even while the ledger keeps writing
    try:
        for template, sql in _CHECKS:
            for row in db.execute(sql).fetchmany(max_problems - len(problems)):
                problems.append(template.format(*row))
        transactions = db.execute("SELECT COUNT(*) FROM txn").fetchone()[0]
        postings = db.execute("SELECT COUNT(*) FROM posting").fetchone()[0]
        cards = db.execute("SELECT COUNT(*) FROM card_balance").fetchone()[0]
    finally:
        db.execute("ROLLBACK")
    return VerifyReport(transactions, postings, cards, tuple(problems))
