"""The shift slip's totals (ledger.shift_totals.read_shift_totals: what the ledger adds up when a
shift is handed over, and what ``fieldpos report shifts`` adds up per shift) over a busy desk shift,
in books that hold many other terminals' transactions.

Generates books straight into a ledger database (every migration applied): ``--others``
transactions spread over other terminals, then one desk shift of ``--shift`` transactions (card
issues, top-ups, returns through cash and WeChat, each with its postings). Times, p50 over
``--runs``, the slip's totals for that shift, beside a floor measured in the same run: one bare
pass over the same transactions and postings (the rows the totals must read, summed in SQL).

Run: .venv/bin/python bench/shift_slip.py [--shift 5000] [--others 200000] [--runs 20] [--db var/bench-shift.db]
"""

import argparse
from pathlib import Path
import random
import statistics
import sys
import time

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger.shift_totals import read_shift_totals  # noqa: E402
from ledger.store import Store  # noqa: E402

PARK = "P1"
DESK = "T-DESK-1"
LEDGER_MS = 1_777_602_720_000


def fill(db, *, shift: int, others: int, rng: random.Random) -> tuple[int, int]:
    """Books with ``others`` transactions on other terminals and one desk shift of ``shift``; returns
    the shift's (opening seq, closing seq)."""
    db.execute("INSERT INTO park (park_id, name) VALUES (?, 'bench')", (PARK,))
    txn_id = 0
    txns, postings = [], []

    def add(terminal, seq, kind, amount, moves):
        nonlocal txn_id
        txn_id += 1
        txns.append((txn_id, PARK, kind, terminal, seq, "op", "desk", "card:C1/1", amount, LEDGER_MS, LEDGER_MS, 0,
                     "2026-05-01", None))
        postings.extend((txn_id, PARK, account, "fen", fen) for account, fen in moves)

    for n in range(1, others + 1):
        amount = rng.randrange(100, 20000)
        add(f"T-STATION-{n % 40}", n, "charge", amount, (("card:C1/1", -amount), ("revenue:bbq", amount)))
    for seq in range(2, shift + 2):  # seq 1 opened the shift
        amount = rng.randrange(1000, 50000)
        channel = "channel:cash" if rng.random() < 0.6 else "channel:wechat"
        kind = rng.choice(("card_issue", "top_up", "top_up", "card_return"))
        sign = 1 if kind == "card_return" else -1
        add(DESK, seq, kind, amount, ((channel, sign * amount), ("card:C1/1", -sign * amount)))
    db.executemany("INSERT INTO txn VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", txns)
    db.executemany("INSERT INTO posting VALUES (?, ?, ?, ?, ?)", postings)
    return 1, shift + 2


def p50_ms(work, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shift", type=int, default=5000)
    parser.add_argument("--others", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--db", type=Path, default=Path("var/bench-shift.db"))
    args = parser.parse_args(argv)
    args.db.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{args.db}{suffix}").unlink(missing_ok=True)
    store = Store(args.db)
    try:
        with store.batch():
            opened, closed = fill(store.db, shift=args.shift, others=args.others, rng=random.Random(7))
        totals = read_shift_totals(store.db, PARK, DESK, opened, closed)
        assert totals.transactions == args.shift
        slip_ms = p50_ms(lambda: read_shift_totals(store.db, PARK, DESK, opened, closed), args.runs)
        floor_ms = p50_ms(lambda: store.db.execute(
            """SELECT COUNT(*), SUM(p.amount) FROM txn t LEFT JOIN posting p ON p.txn_id = t.txn_id
                WHERE t.park_id = ? AND t.terminal_id = ? AND t.seq > ? AND t.seq < ?""",
            (PARK, DESK, opened, closed)).fetchone(), args.runs)
        plan = [row[3] for row in store.db.execute(
            """EXPLAIN QUERY PLAN SELECT t.txn_id FROM txn t LEFT JOIN posting p ON p.txn_id = t.txn_id
                WHERE t.park_id = ? AND t.terminal_id = ? AND t.seq > ? AND t.seq < ?""", (PARK, DESK, 0, 1))]
    finally:
        store.close()
    print(f"shift slip totals: {args.shift:,} transactions in a shift, {args.others:,} other transactions in the books")
    print(f"  slip totals p50 {slip_ms:.1f} ms   floor (one bare pass over the same rows) p50 {floor_ms:.1f} ms")
    print(f"  expected cash {totals.cash_expected_fen / 100:,.2f}; plan: {'; '.join(plan)}")


if __name__ == "__main__":
    main()
