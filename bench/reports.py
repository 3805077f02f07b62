"""The daily report and the console's dashboard over a ledger of 1,000,000 transactions.

Generates a park's books straight into a ledger database (the schema of ledger.schema, every
migration applied): 60 business days, four stations (one run by a contractor) and a front desk;
sales, voids, offline sales, card issues, top-ups and returns with their postings, balanced per
transaction. Then times, over the busiest day:

- the daily report: takings by station, by payment channel, and sales by hour (what finance reads
  every morning), through the read-only connection the console and ``fieldpos report`` use;
- the dashboard: today's totals, by station, by hour, the terminals and the alerts.

and prints p50/p95 and each query's plan (EXPLAIN QUERY PLAN), so the indexes used are on record.
Targets (issue 14): p50 at most 1 s for the daily report and 300 ms for the dashboard.

Run: .venv/bin/python bench/reports.py [--transactions 1000000] [--db var/bench-reports.db] [--runs 20]
"""

import argparse
from pathlib import Path
import random
import statistics
import sys
import time

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger.reports.dashboard import dashboard  # noqa: E402
from ledger.reports.query import Period, Scope, open_read_only  # noqa: E402
from ledger.reports.takings import takings  # noqa: E402
from ledger.reports.time_of_day import time_of_day  # noqa: E402
from ledger.store import Store  # noqa: E402

PARK = "P1"
DAYS = 60
STATIONS = {"fishing": None, "riding": "C-HORSE", "bbq": None, "boats": None}
TERMINALS = {"T-FISHING-1": "fishing", "T-FISHING-2": "fishing", "T-RIDING-1": "riding", "T-BBQ-1": "bbq",
             "T-BOATS-1": "boats", "T-DESK-1": "desk", "T-DESK-2": "desk"}
CHANNELS = ("cash", "wechat", "alipay")
DAY_MS = 86_400_000
# 2026-05-01 10:00 Asia/Shanghai; the park's day runs to 04:00 the next morning.
FIRST_DAY_MS = 1_777_600_800_000
COMMISSION_BP = 1500


def generate(path: Path, count: int, seed: int = 14) -> None:
    """Write ``count`` transactions and their postings; the busiest day is the last."""
    rng = random.Random(seed)
    store = Store(path)
    store.add_park(PARK, "Bench park")
    for station, contractor in {**STATIONS, "desk": None}.items():
        store.add_station(PARK, station, station, contractor_id=contractor, commission_bp=COMMISSION_BP if contractor else 0)
    db = store.db
    with store.batch():
        for terminal, station in TERMINALS.items():
            db.execute("INSERT INTO terminal VALUES (?, ?, ?, 'charge', NULL, '', 0)", (terminal, PARK, station))
            store.record_status(terminal, True, 0, 0, None, FIRST_DAY_MS + DAYS * DAY_MS, FIRST_DAY_MS + DAYS * DAY_MS,
                                printer_state="ready", software_version="bench")
    seq = dict.fromkeys(TERMINALS, 0)
    # Days grow busier towards the end (a season starting): the last day carries about 3 % of all.
    weights = [1 + day / 12 for day in range(DAYS)]
    per_day = [int(count * weight / sum(weights)) for weight in weights]
    per_day[-1] += count - sum(per_day)
    txn_id, cards = 0, 0
    sellers = [terminal for terminal, station in TERMINALS.items() if station != "desk"]
    for day, day_count in enumerate(per_day):
        business_day = time.strftime("%Y-%m-%d", time.gmtime((FIRST_DAY_MS + 8 * 3600_000 + day * DAY_MS) / 1000))
        txns, postings = [], []
        last_sale = {}
        for _ in range(day_count):
            txn_id += 1
            when = FIRST_DAY_MS + day * DAY_MS + rng.randrange(12 * 3600_000)
            roll = rng.random()
            if roll < 0.74:
                kind, terminal = ("offline_charge" if roll < 0.01 else "charge"), rng.choice(sellers)
            elif roll < 0.75 and last_sale:
                kind, terminal = "void", rng.choice(list(last_sale))
            else:
                kind, terminal = rng.choice(("card_issue", "top_up", "top_up", "card_return")), rng.choice(("T-DESK-1", "T-DESK-2"))
            station = TERMINALS[terminal]
            seq[terminal] += 1
            if kind == "card_issue":
                cards += 1
            account = f"card:TB{rng.randrange(max(cards, 1)):07d}/1"
            amount = rng.randrange(500, 30_000, 50)
            voids = None
            if kind == "void":
                voids, amount, account = last_sale.pop(terminal)
            txns.append((txn_id, PARK, kind, terminal, seq[terminal], "op", station, account, amount, when, when, 0,
                         business_day, voids))
            postings += _postings(txn_id, kind, station, account, amount, rng)
            if kind in ("charge", "offline_charge"):
                last_sale[terminal] = (txn_id, amount, account)
        db.execute("BEGIN")
        db.executemany("INSERT INTO txn VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", txns)
        db.executemany("INSERT INTO posting VALUES (?, ?, ?, ?, ?)", postings)
        db.execute("COMMIT")
    store.close()


def _postings(txn_id: int, kind: str, station: str, account: str, amount: int, rng) -> list[tuple]:
    def pair(debit: str, credit: str, fen: int) -> list[tuple]:
        return [(txn_id, PARK, debit, "fen", -fen), (txn_id, PARK, credit, "fen", fen)]

    contractor = STATIONS.get(station)
    if kind in ("charge", "offline_charge", "void"):
        sign = -1 if kind == "void" else 1
        if contractor is None:
            return [(txn_id, PARK, account, "fen", -amount * sign), (txn_id, PARK, f"revenue:{station}", "fen", amount * sign)]
        commission = amount * COMMISSION_BP // 10_000
        return [(txn_id, PARK, account, "fen", -amount * sign), (txn_id, PARK, f"contractor:{contractor}", "fen", (amount - commission) * sign),
                (txn_id, PARK, f"revenue:{station}", "fen", commission * sign)]
    channel = f"channel:{rng.choice(CHANNELS)}"
    if kind == "card_return":
        return pair(account, channel, amount)
    return pair(channel, account, amount)


def timed(function, runs: int) -> tuple[float, float]:
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - started)
    seconds.sort()
    return statistics.median(seconds), seconds[min(len(seconds) - 1, int(len(seconds) * 0.95))]


def print_plans(db, day: str) -> None:
    from ledger.reports.takings import SALE_LIST

    queries = {
        "takings by station": f"""SELECT t.business_day, t.station_id, SUM(t.kind IN ({SALE_LIST})), SUM(t.amount_fen)
            FROM txn t WHERE t.park_id = ? AND t.business_day BETWEEN ? AND ? AND t.kind IN ({SALE_LIST}, 'void') GROUP BY 1, 2""",
        "takings by channel": """SELECT t.business_day, substr(p.account_id, 9), COUNT(DISTINCT t.txn_id), SUM(p.amount)
            FROM txn t JOIN posting p ON p.txn_id = t.txn_id WHERE t.park_id = ? AND t.business_day BETWEEN ? AND ?
             AND p.account_id LIKE 'channel:%' AND p.asset = 'fen' GROUP BY 1, 2""",
        "sales by hour": f"""SELECT t.ledger_time_ms / 900000, SUM(t.amount_fen) FROM txn t
            WHERE t.park_id = ? AND t.business_day BETWEEN ? AND ? AND t.kind IN ({SALE_LIST}, 'void') GROUP BY 1""",
        "dashboard today": f"""SELECT t.station_id, t.kind, COUNT(*), SUM(t.amount_fen) FROM txn t
            WHERE t.park_id = ? AND t.business_day BETWEEN ? AND ?
              AND t.kind IN ({SALE_LIST}, 'void', 'top_up', 'card_return', 'card_issue', 'reversal') GROUP BY 1, 2""",
        "deposits held": """SELECT account_id, SUM(amount) FROM posting WHERE park_id = ? AND account_id >= ? AND account_id < ?
             AND asset = 'fen' GROUP BY account_id""",
    }
    for name, sql in queries.items():
        params = (PARK, "card_fee", "card_fef") if name == "deposits held" else (PARK, day, day)
        plan = [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
        print(f"  plan, {name}: " + "; ".join(plan))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--db", default="var/bench-reports.db", help="kept between runs; deleted to regenerate")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    path = Path(args.db)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        generate(path, args.transactions)
        print(f"generated {args.transactions:,} transactions in {time.perf_counter() - started:.0f} s: {path}")
    Store(path).close()  # bring an older bench database up to the current migrations (indexes)
    db = open_read_only(path)
    total, day, day_count = db.execute(
        "SELECT (SELECT COUNT(*) FROM txn), business_day, COUNT(*) FROM txn GROUP BY business_day ORDER BY 3 DESC LIMIT 1").fetchone()
    scope = Scope(PARK, Period(day, day))
    day_ms = db.execute("SELECT MAX(ledger_time_ms) FROM txn WHERE business_day = ?", (day,)).fetchone()[0]

    def daily_report():
        takings(db, scope, by="station")
        takings(db, scope, by="channel")
        time_of_day(db, scope)

    print(f"{total:,} transactions; busiest business day {day}: {day_count:,} transactions")
    daily = timed(daily_report, args.runs)
    board = timed(lambda: dashboard(db, now_ms=day_ms), args.runs)
    print(f"daily report (takings by station and channel, sales by hour): p50 {daily[0] * 1000:.0f} ms, "
          f"p95 {daily[1] * 1000:.0f} ms (target p50 <= 1000 ms)")
    print(f"dashboard: p50 {board[0] * 1000:.0f} ms, p95 {board[1] * 1000:.0f} ms (target p50 <= 300 ms)")
    print_plans(db, day)
    db.close()
    return 0 if daily[0] <= 1.0 and board[0] <= 0.3 else 1


if __name__ == "__main__":
    sys.exit(main())
