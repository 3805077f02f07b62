"""``fieldpos report rentals`` over 1,000,000 rentals (issue 13 acceptance: at most 1 s).

Generates a rental station's books straight into a ledger database (every migration applied): 90
business days of returned rentals of four item types over 200 items, each a deposit order with its
hold and close transactions, and the day rows the ledger adds up as each comes back (the report
reads those, not postings nor orders), made by the migrations' own fill statements.
Then times the report over the last day, 7 days, 31 days and all 90 days through the read-only
connection ``fieldpos report`` uses, and prints p50/p95 beside a floor measured in the same run:
reading the period's day rows once, ungrouped (the least any report over them can do). Last, the
plans of the report's queries, with the index each one uses.

Run: .venv/bin/python bench/rentals_report.py [--rentals 1000000] [--db var/bench-rentals.db] [--runs 7]
"""

import argparse
from datetime import date, timedelta
from pathlib import Path
import random
import statistics
import sys
import time

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger.reports.query import Period, Scope, open_read_only  # noqa: E402
from ledger.reports.rentals import rentals  # noqa: E402
from ledger.schema import MIGRATIONS  # noqa: E402
from ledger.store import Store  # noqa: E402
from protocol.messages import RentalType  # noqa: E402

PARK, STATION, DAYS = "P1", "rods", 90
DAY_MS, MINUTE_MS = 86_400_000, 60_000
FIRST_DAY_MS = 1_777_600_800_000  # 2026-05-01 10:00 Asia/Shanghai
FIRST_DAY = date(2026, 5, 1)
TYPES = {"rod": 3000, "bike": 20000, "boat": 10000, "bbq": 5000}
ROUTES = ("card", "cash", "wechat", "online_wechat", "online_alipay")
# The rows the report reads, per item, per 15-minute slot, per kind of renter and per paying card
# (the whole park's chain of each card's days), as (table, condition).
DAY_ROWS = (("rental_day", ""), ("rental_day_slot", ""), ("rental_day_by_renter", ""),
            ("rental_card_day", " AND scope = '' AND renter IN ('member', 'temporary')"))


def generate(path: Path, count: int, seed: int = 13) -> None:
    rng = random.Random(seed)
    store = Store(path)
    store.add_park(PARK, "Bench park")
    store.add_station(PARK, STATION, "Rental desk")
    for item_type, deposit in TYPES.items():
        store.add_rental_type(PARK, RentalType(item_type=item_type, name=item_type, deposit_fen=deposit, price_fen=1000,
                                               price_per="session", allowed_minutes=120, grace_minutes=15,
                                               late_fee_per_hour_fen=500, lost_fee_fen=8000, damage=()))
    labels = [(f"{item_type.upper()}-{n:03d}", item_type) for item_type in TYPES for n in range(50)]
    db = store.db
    with store.batch():
        db.executemany("INSERT INTO rental_item VALUES (?, ?, ?, ?, 'available', 0)",
                       [(PARK, label, STATION, item_type) for label, item_type in labels])
    per_day = count // DAYS
    order_no = txn_id = 0
    for day in range(DAYS):
        business_day = (FIRST_DAY + timedelta(days=day)).isoformat()
        txns, orders = [], []
        for _ in range(per_day if day < DAYS - 1 else count - per_day * (DAYS - 1)):
            order_no += 1
            label, item_type = rng.choice(labels)
            out_ms = FIRST_DAY_MS + day * DAY_MS + rng.randrange(10 * 60) * MINUTE_MS
            back_ms = out_ms + rng.randrange(20, 200) * MINUTE_MS
            late = 500 * max(0, -(-(back_ms - out_ms - 135 * MINUTE_MS) // (60 * MINUTE_MS)))
            damage = 2000 if rng.random() < 0.03 else 0
            deposit = TYPES[item_type]
            refunded = max(0, deposit - 1000 - late - damage)
            claim = max(0, 1000 + late + damage - deposit)
            route = rng.choice(ROUTES)
            payer = f"card:C{rng.randrange(100_000):06d}/1" if route == "card" else f"channel:{route}"
            txns += [(txn_id + 1, PARK, "deposit_desk", "T-RENT-1", txn_id + 1, "op", STATION, None, deposit, out_ms,
                      out_ms, 0, business_day, None),
                     (txn_id + 2, PARK, "rental_return", "T-RENT-1", txn_id + 2, "op", STATION, None, refunded, back_ms,
                      back_ms, 0, business_day, None)]
            ref = f"ONL-{order_no}" if route.startswith("online_") else ""
            orders.append((PARK, order_no, item_type, deposit, route, payer, ref, "", int(rng.random() < 0.3), "closed",
                           txn_id + 1, out_ms, out_ms + 3 * DAY_MS, label, STATION, out_ms, txn_id + 2, back_ms,
                           "damaged" if damage else "intact", 1000, late, damage, refunded, claim))
            txn_id += 2
        with store.batch():
            db.executemany("INSERT INTO txn VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", txns)
            db.executemany(f"INSERT INTO deposit_order VALUES ({', '.join('?' * 24)})", orders)
    # The day rows a ledger adds up as each rental comes back: made here by the migrations' own fills.
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    fills = [statement for migration in MIGRATIONS if "rental_day" in migration
             for statement in migration.split(";") if statement.strip().startswith("INSERT INTO")
             and statement.split()[2] in tables]
    db.executescript("BEGIN; " + "; ".join(fills) + "; COMMIT;")
    store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rentals", type=int, default=1_000_000)
    parser.add_argument("--db", default="var/bench-rentals.db")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    path = Path(args.db)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        generate(path, args.rentals)
        print(f"generated {args.rentals:,} rentals in {time.perf_counter() - started:.0f} s into {path}")
    db = open_read_only(path)
    last = (FIRST_DAY + timedelta(days=DAYS - 1)).isoformat()
    print(f"{db.execute('SELECT COUNT(*) FROM deposit_order').fetchone()[0]:,} rentals in the books")
    for days in (1, 7, 31, DAYS):
        first = (FIRST_DAY + timedelta(days=DAYS - days)).isoformat()
        scope = Scope(PARK, Period(first, last))
        times, floor_times = [], []
        for _ in range(args.runs):
            started = time.perf_counter()
            report = rentals(db, scope)
            times.append(time.perf_counter() - started)
            started = time.perf_counter()
            for table, condition in DAY_ROWS:
                db.execute(f"SELECT COUNT(*), SUM(rentals) FROM {table} WHERE park_id = ? AND business_day BETWEEN ? AND ?"
                           + condition, (PARK, first, last)).fetchone()
            floor_times.append(time.perf_counter() - started)
        counted = sum(row[2] for row in report.tables[0].rows)
        rows = sum(db.execute(f"SELECT COUNT(*) FROM {table} WHERE park_id = ? AND business_day BETWEEN ? AND ?"
                              + condition, (PARK, first, last)).fetchone()[0] for table, condition in DAY_ROWS)
        times.sort()
        print(f"report rentals, {days:>2} day(s), {counted:>9,} rentals: p50 {statistics.median(times) * 1000:4.0f} ms, "
              f"p95 {times[int(len(times) * 0.95) - 1 if len(times) > 1 else 0] * 1000:4.0f} ms; floor (its {rows:,} "
              f"day rows read once) p50 {statistics.median(floor_times) * 1000:.0f} ms")
    print("query plans (all 90 days):")
    first = FIRST_DAY.isoformat()
    for sql, params in (
            ("SELECT item_label, SUM(rentals) FROM rental_day WHERE park_id = ? AND business_day BETWEEN ? AND ? "
             "GROUP BY item_label", (PARK, first, last)),
            ("SELECT slot, SUM(rentals) FROM rental_day_slot WHERE park_id = ? AND business_day BETWEEN ? AND ? "
             "GROUP BY slot", (PARK, first, last)),
            ("SELECT renter, SUM(rentals) FROM rental_day_by_renter WHERE park_id = ? AND business_day BETWEEN ? AND ? "
             "GROUP BY renter", (PARK, first, last)),
            ("SELECT renter, SUM(prev_day IS NULL OR prev_day < ?) FROM rental_card_day WHERE park_id = ? AND scope = '' "
             "AND renter IN ('member', 'temporary') AND business_day BETWEEN ? AND ? GROUP BY renter",
             (first, PARK, first, last))):
        plan = db.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
        print(f"  {sql.split(' FROM ')[1].split()[0]:<20} " + "; ".join(row[-1] for row in plan))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
