"""``fieldpos ledger verify``: replay the books and report the first thing that does not add up.

Checks, in order: every transaction sums to zero per asset; every card's running balance equals
the sum of its postings (both ways: no balance without postings, no postings without a balance);
every approved request has exactly its transaction and every transaction an approved request (or,
for the two the ledger books itself — an online deposit and a forfeit — its deposit order; for a
contractor payout, the paid statement of that amount), so no
state hides outside the postings; the deposit pool equals the sum of the open holds, order by order,
and only rental kinds post to it; each shift handed over with a count booked exactly its over or
short to cash_over_short, and nothing else posts there.

Beside the books, ``unfinished_seqs`` lists every terminal seq with no final outcome: gaps below
a terminal's highest stored seq, seqs its last heartbeat says it assigned that never arrived, and
set-aside messages, each explained where the ledger knows why (refused with a reason, set aside,
never received). A timed-out online attempt an offline sale superseded is finished: it is not listed.
"""

from dataclasses import dataclass, field

from protocol.kinds import KINDS

from .rules.adjustments import ADJUSTMENT_KIND
from .rules.rentals import FORFEIT_KIND, ONLINE_DEPOSIT_KIND, POOL_KINDS, REFUND_CASH_KIND
from .rules.settlement import PAYOUT_KIND
from .store import Store
from .topups_online import REFUND_KIND as TOPUP_REFUND_KIND, REFUND_PREFIX as TOPUP_REFUND_PREFIX, TOPUP_KIND

# Kinds whose approval is a reply, not a transaction (logging in, reports, lookups): from the
# declarations, written into the check as SQL literals (request type names are [a-z_] only).
_UNBOOKED_KINDS = ", ".join(f"'{kind.type}'" for kind in KINDS.values() if not kind.is_booked)
_LEDGER_BOOKED_KINDS = f"'{ONLINE_DEPOSIT_KIND}', '{FORFEIT_KIND}'"
_POOL_KINDS = ", ".join(f"'{kind}'" for kind in sorted(POOL_KINDS))
# Pool accounts by key range ('deposit;' is the next string after every 'deposit:...'): an index seek.
_POOL = "account_id >= 'deposit:' AND account_id < 'deposit;'"


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
           WHERE r.outcome = 'approved' AND r.kind NOT IN (""" + _UNBOOKED_KINDS + """)
             AND r.reason <> 'SAME_SALE'
             AND (t.txn_id IS NULL OR t.terminal_id <> r.terminal_id OR t.seq <> r.seq)""",
    ),
    (
        "transaction {0} ({1} seq {2}) has no approved request",
        """SELECT t.txn_id, t.terminal_id, t.seq FROM txn t LEFT JOIN request r
             ON r.terminal_id = t.terminal_id AND r.seq = t.seq AND r.outcome = 'approved' AND r.txn_id = t.txn_id
           WHERE r.seq IS NULL AND t.kind NOT IN (""" + _LEDGER_BOOKED_KINDS + f", '{TOPUP_KIND}', '{TOPUP_REFUND_KIND}', '{ADJUSTMENT_KIND}', '{PAYOUT_KIND}'"
        + f", '{REFUND_CASH_KIND}'" + """)""",
    ),
    (
        # A top-up paid online (ledger.topups_online): its evidence is the provider order booked with it.
        "transaction {0} tops up {1} online but no booked online top-up order of that card and amount names it",
        f"""SELECT t.txn_id, t.card_account FROM txn t WHERE t.kind = '{TOPUP_KIND}'
             AND NOT EXISTS (SELECT 1 FROM online_topup o WHERE o.txn_id = t.txn_id AND o.state = 'booked'
                              AND o.amount_fen = t.amount_fen AND 'card:' || o.card_no || '/' || o.issuance = t.card_account)""",
    ),
    (
        # Money of an online top-up paid back: the refund request to the provider it made (RT + its seq).
        "transaction {0} pays {1} back to an online payment but no refund request of that amount names it",
        f"""SELECT t.txn_id, t.card_account FROM txn t WHERE t.kind = '{TOPUP_REFUND_KIND}'
             AND NOT EXISTS (SELECT 1 FROM refund_request q WHERE q.park_id = t.park_id
                              AND q.refund_no = '{TOPUP_REFUND_PREFIX}' || t.seq AND q.amount_fen = t.amount_fen)""",
    ),
    (
        # A refund paid in cash at the desk: the refund request it paid names it, with its amount.
        "transaction {0} ({1}) pays a refund in cash but no refund request of that amount names it",
        f"""SELECT t.txn_id, t.kind FROM txn t WHERE t.kind = '{REFUND_CASH_KIND}'
             AND NOT EXISTS (SELECT 1 FROM refund_request q WHERE q.cash_txn = t.txn_id AND q.amount_fen = t.amount_fen
                              AND q.state = 'done')""",
    ),
    (
        # A contractor payout's evidence is the statement it paid (ledger.settlement): the same amount,
        # out of that contractor's payable.
        "transaction {0} ({1}) pays a contractor but no paid statement of that amount out of its payable holds it",
        f"""SELECT t.txn_id, t.kind FROM txn t WHERE t.kind = '{PAYOUT_KIND}'
             AND NOT EXISTS (SELECT 1 FROM contractor_payout c JOIN posting p ON p.txn_id = t.txn_id
                              AND p.account_id = 'contractor:' || c.contractor_id AND p.asset = 'fen'
                              AND p.amount = -c.amount_fen
                             WHERE c.txn_id = t.txn_id AND t.amount_fen = c.amount_fen)""",
    ),
    (
        # A balance adjustment's evidence is its request, approved by a second person (ledger.park_admin).
        "transaction {0} ({1}) is a balance adjustment that no approved adjustment of that amount holds",
        f"""SELECT t.txn_id, t.kind FROM txn t WHERE t.kind = '{ADJUSTMENT_KIND}'
             AND NOT EXISTS (SELECT 1 FROM balance_adjustment a JOIN posting p ON p.txn_id = t.txn_id
                              AND p.account_id = a.card_account AND p.asset = a.asset AND p.amount = a.amount
                             WHERE a.txn_id = t.txn_id AND a.state = 'booked' AND a.decided_by <> a.requested_by)""",
    ),
    (
        "transaction {0} ({1}) was booked by the ledger but no deposit order holds or closes it",
        """SELECT t.txn_id, t.kind FROM txn t WHERE t.kind IN (""" + _LEDGER_BOOKED_KINDS + """)
             AND NOT EXISTS (SELECT 1 FROM deposit_order o WHERE o.held_txn = t.txn_id OR o.closed_txn = t.txn_id)""",
    ),
    (
        "transaction {0} ({1}) posts to the deposit pool account {2}, which only rental kinds may",
        """SELECT t.txn_id, t.kind, p.account_id FROM posting p JOIN txn t USING (txn_id)
           WHERE p.""" + _POOL + """ AND t.kind NOT IN (""" + _POOL_KINDS + """)""",
    ),
    (
        "deposit order D{1} ({0}) is {2}: its pool account should hold {3} fen and holds {4}",
        """WITH pool AS (SELECT park_id, account_id, SUM(amount) AS fen FROM posting WHERE """ + _POOL + """
                        GROUP BY park_id, account_id)
           SELECT o.park_id, o.order_no, o.state, CASE WHEN o.state IN ('held', 'out') THEN o.deposit_fen ELSE 0 END,
                  COALESCE(p.fen, 0)
           FROM deposit_order o LEFT JOIN pool p ON p.park_id = o.park_id AND p.account_id = 'deposit:D' || o.order_no
           WHERE COALESCE(p.fen, 0) <> CASE WHEN o.state IN ('held', 'out') THEN o.deposit_fen ELSE 0 END""",
    ),
    (
        "deposit pool account {1} ({0}) holds {2} fen and belongs to no deposit order",
        """SELECT p.park_id, p.account_id, SUM(p.amount) FROM posting p
           WHERE p.""" + _POOL + """ AND NOT EXISTS (SELECT 1 FROM deposit_order o
                 WHERE o.park_id = p.park_id AND 'deposit:D' || o.order_no = p.account_id)
           GROUP BY p.park_id, p.account_id""",
    ),
    (
        "the rental day rows of {0} count {1} returned rentals, the deposit orders {2}",
        """WITH days AS (SELECT park_id, SUM(rentals) AS n FROM rental_day GROUP BY park_id),
                orders AS (SELECT park_id, COUNT(*) AS n FROM deposit_order WHERE state = 'closed' AND out_ms IS NOT NULL
                           GROUP BY park_id)
           SELECT COALESCE(days.park_id, orders.park_id), COALESCE(days.n, 0), COALESCE(orders.n, 0)
           FROM days FULL OUTER JOIN orders USING (park_id) WHERE COALESCE(days.n, 0) <> COALESCE(orders.n, 0)""",
    ),
    (
        "the deposit pool of {0} holds {1} fen, the open holds add up to {2}",
        """WITH pool AS (SELECT park_id, SUM(amount) AS fen FROM posting WHERE """ + _POOL + """ GROUP BY park_id),
                held AS (SELECT park_id, SUM(deposit_fen) AS fen FROM deposit_order WHERE state IN ('held', 'out')
                         GROUP BY park_id)
           SELECT COALESCE(pool.park_id, held.park_id), COALESCE(pool.fen, 0), COALESCE(held.fen, 0)
           FROM pool FULL OUTER JOIN held USING (park_id) WHERE COALESCE(pool.fen, 0) <> COALESCE(held.fen, 0)""",
    ),
    (
        # A blind count's difference is booked by its handover and nothing else: the shift's record of
        # what was counted and expected must be what its transaction moved to cash_over_short.
        "shift {0} on {1} counted {2} fen with {3} expected, but its handover booked {4} to cash_over_short",
        """SELECT s.shift_id, s.terminal_id, s.cash_counted_fen, s.cash_expected_fen, COALESCE(b.fen, 0)
             FROM shift s LEFT JOIN (SELECT txn_id, SUM(amount) AS fen FROM posting  -- an index seek, not a scan
                                      WHERE park_id IN (SELECT park_id FROM park) AND account_id = 'cash_over_short'
                                      GROUP BY txn_id) b ON b.txn_id = s.close_txn
            WHERE s.closed_how = 'handover'
              AND COALESCE(s.cash_counted_fen - s.cash_expected_fen, 0) <> COALESCE(b.fen, 0)""",
    ),
    (
        "transaction {0} ({1}) posts to cash_over_short, which only a shift handover may",
        """SELECT t.txn_id, t.kind FROM posting p JOIN txn t ON t.txn_id = p.txn_id
            WHERE p.park_id IN (SELECT park_id FROM park) AND p.account_id = 'cash_over_short'
              AND t.kind <> 'shift_handover'""",
    ),
)


def verify_books(store: Store, *, max_problems: int = 20) -> VerifyReport:
    """Replay the books in ``store``; the report lists up to ``max_problems`` mismatches."""
    db = store.db
    problems: list[str] = []
    db.execute("BEGIN")  # one snapshot for every check, even while the ledger keeps writing
    try:
        for template, sql in _CHECKS:
            room = max_problems - len(problems)
            if room <= 0:
                break  # never fetchmany(0): some Pythons' sqlite3 read it as "every row" (python/cpython#139283)
            for row in db.execute(sql).fetchmany(room):
                problems.append(template.format(*row))
        transactions = db.execute("SELECT COUNT(*) FROM txn").fetchone()[0]
        postings = db.execute("SELECT COUNT(*) FROM posting").fetchone()[0]
        cards = db.execute("SELECT COUNT(*) FROM card_balance").fetchone()[0]
    finally:
        db.execute("ROLLBACK")
    return VerifyReport(transactions, postings, cards, tuple(problems))


@dataclass(frozen=True)
class UnfinishedSeqs:
    """A run of one terminal's seqs with no final outcome, and why (as far as the ledger knows)."""

    terminal_id: str
    first_seq: int
    last_seq: int
    why: str

    @property
    def count(self) -> int:
        return self.last_seq - self.first_seq + 1

    def __str__(self) -> str:
        seqs = f"seq {self.first_seq}" if self.count == 1 else f"seqs {self.first_seq}-{self.last_seq} ({self.count})"
        return f"{self.terminal_id} {seqs}: {self.why}"


@dataclass(frozen=True)
class UnfinishedReport:
    count: int                                  # seqs in all, however many runs were left out
    runs: tuple[UnfinishedSeqs, ...]            # the first ``max_runs`` runs, by terminal and seq
    runs_left_out: int = 0
    unreadable_set_asides: tuple[str, ...] = field(default=())  # held messages whose seq is unknown

    @property
    def is_finished(self) -> bool:
        return self.count == 0 and not self.unreadable_set_asides


# A seq jump (a terminal's bug, or a valid request at a huge seq) makes one run, not millions of
# lines; within a run only this many seqs are looked up one by one for an explanation.
MAX_EXPLAINED_PER_RUN = 200


def unfinished_seqs(store: Store, *, max_runs: int = 50) -> UnfinishedReport:
    """Every terminal seq with no final outcome, grouped in runs with their explanation."""
    db = store.db
    db.execute("BEGIN")
    try:
        ranges = _missing_ranges(db)
        runs: list[UnfinishedSeqs] = []
        for terminal_id, low, high, is_above_stored in ranges:
            runs.extend(_explain(store, terminal_id, low, high, is_above_stored))
        # Held messages above everything the terminal reported, or whose seq holds an outcome by now
        # (a copy with another body): the first are unfinished seqs, the second only held messages.
        held = store.set_asides()
        for row in held:
            if row.terminal_id is None or row.seq is None or store.stored_request(row.terminal_id, row.seq) is not None:
                continue
            if not any(run.terminal_id == row.terminal_id and run.first_seq <= row.seq <= run.last_seq for run in runs):
                runs.append(UnfinishedSeqs(row.terminal_id, row.seq, row.seq, _set_aside_text(row.detail, row.payload_sha256)))
        unreadable = tuple(f"{row.payload_sha256[:12]} on {row.topic[:80]}: {row.detail}" for row in held
                           if row.terminal_id is None or row.seq is None)
    finally:
        db.execute("ROLLBACK")
    runs.sort(key=lambda run: (run.terminal_id, run.first_seq))
    count = sum(run.count for run in runs)
    return UnfinishedReport(count, tuple(runs[:max_runs]), max(0, len(runs) - max_runs), unreadable)


def _missing_ranges(db) -> list[tuple[str, int, int, bool]]:
    """(terminal, first, last, above the highest stored seq?) of seqs without a stored outcome."""
    gaps = db.execute(
        """SELECT terminal_id, prev + 1, seq - 1, 0 FROM (
               SELECT terminal_id, seq, LAG(seq, 1, 0) OVER (PARTITION BY terminal_id ORDER BY seq) AS prev FROM request)
           WHERE seq - prev > 1
           UNION ALL
           SELECT s.terminal_id, COALESCE(MAX(r.seq), 0) + 1, s.highest_seq, 1
             FROM terminal_status s LEFT JOIN request r ON r.terminal_id = s.terminal_id
            GROUP BY s.terminal_id HAVING s.highest_seq > COALESCE(MAX(r.seq), 0)
           ORDER BY 1, 2"""
    ).fetchall()
    return [(t, low, high, bool(above)) for t, low, high, above in gaps]


def _set_aside_text(detail: str, sha: str) -> str:
    return f"set aside ({sha[:12]}): {detail}; fieldpos ledger set-aside retry {sha[:12]}"


def _explain(store: Store, terminal_id: str, low: int, high: int, is_above_stored: bool) -> list[UnfinishedSeqs]:
    """Split a run into the seqs the ledger can explain and the rest."""
    db = store.db
    plain = ("not received yet (the terminal's last heartbeat says it assigned them)" if is_above_stored
             else "never received (or refused with its evidence no longer kept)")
    known: dict[int, str | None] = {}  # seq -> why; None: finished after all (superseded)
    for seq, by_seq in db.execute(
            "SELECT seq, by_seq FROM superseded WHERE terminal_id=? AND seq BETWEEN ? AND ? LIMIT ?",
            (terminal_id, low, high, MAX_EXPLAINED_PER_RUN)):
        known[seq] = None
    for seq, reason, detail in db.execute(
            """SELECT seq, reason, detail FROM refusal WHERE terminal_id=? AND seq BETWEEN ? AND ?
               ORDER BY refusal_id LIMIT ?""", (terminal_id, low, high, MAX_EXPLAINED_PER_RUN * 4)):
        if seq not in known:
            known[seq] = f"refused {reason}: {detail[:120]}"
        elif known[seq] is not None:
            known[seq] = f"refused {reason}: {detail[:120]}"  # the newest refusal explains it
    for sha, seq, detail in db.execute(
            """SELECT payload_sha256, seq, detail FROM set_aside WHERE terminal_id=? AND state='held'
               AND seq BETWEEN ? AND ? LIMIT ?""", (terminal_id, low, high, MAX_EXPLAINED_PER_RUN)):
        known[seq] = _set_aside_text(detail, sha)
    runs: list[UnfinishedSeqs] = []
    cursor = low
    for seq in sorted(known):
        if seq > cursor:
            runs.append(UnfinishedSeqs(terminal_id, cursor, seq - 1, plain))
        if known[seq] is not None:
            runs.append(UnfinishedSeqs(terminal_id, seq, seq, known[seq]))
        cursor = seq + 1
    if cursor <= high:
        runs.append(UnfinishedSeqs(terminal_id, cursor, high, plain))
    return runs
