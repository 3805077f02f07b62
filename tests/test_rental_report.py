"""The rental report's renters (issue 13): counted from per-card day chains instead of grouping every
paying card, and still equal to a straightforward count over the deposit orders themselves — for
any period, any station scope, returns booked out of day order, and on a ledger upgraded from the
schema that kept one row per card and day."""

import random
import sqlite3

import pytest

from ledger.park_home import ParkHome
from ledger.reports.query import Period, Scope
from ledger.reports.rentals import RENTERS, rentals
from ledger.rules.rentals import Close, order_id
from ledger.schema import MIGRATIONS
from ledger.store import Store
from protocol.messages import RentalType

PARK = "P1"
DAY_MS, MINUTE_MS = 86_400_000, 60_000
FIRST_MS = 1_780_000_000_000  # 2026-05-28 04:26 Asia/Shanghai: after the 04:00 cut-off
STATIONS = ("pond", "bikes", "lake")
ROUTES = ("card", "card", "card", "cash", "online_wechat")
ROD = RentalType(item_type="rod", name="rod", deposit_fen=3000, price_fen=1000, price_per="session",
                 allowed_minutes=120, grace_minutes=15, late_fee_per_hour_fen=500, lost_fee_fen=8000, damage=())


@pytest.fixture
def books(tmp_path, store_backend):
    """A park's books on each backend (PostgreSQL: ParkHome.init takes FIELDPOS_STORE_URL)."""
    home = ParkHome(tmp_path / "park")
    home.init(PARK, "Report park")
    store = home.open_store()
    try:
        _park(store, with_park=False)
        yield store
    finally:
        store.close()


def _park(store: Store, *, with_park: bool = True) -> None:
    if with_park:
        store.add_park(PARK, "Report park")
    for station in STATIONS:
        store.add_station(PARK, station, station)
    store.add_rental_type(PARK, ROD)
    for station in STATIONS:
        store.add_rental_item(PARK, f"ROD-{station}", station, "rod", 0)


def _rentals(rng: random.Random, count: int, days: int) -> list[tuple]:
    """(order_no, station, route, payer, is_member, out_ms, back_ms): few cards, so many repeat,
    some on one day twice, some at two stations."""
    made = []
    for order_no in range(1, count + 1):
        station = rng.choice(STATIONS)
        route = rng.choice(ROUTES)
        card_no = rng.randrange(12)
        payer = f"card:C{card_no:03d}/1" if route == "card" else f"channel:{route.removeprefix('online_')}"
        out_ms = FIRST_MS + rng.randrange(days) * DAY_MS + rng.randrange(600) * MINUTE_MS
        made.append((order_no, station, route, payer, route == "card" and card_no < 5, out_ms,
                     out_ms + rng.randrange(10, 300) * MINUTE_MS))
    return made


def _book(store: Store, made: list[tuple], order) -> None:
    """Hold and hand out every rental, then bring them back in ``order`` (a list of indexes)
    through the store's own return path, each at its own time (so days arrive out of order)."""
    db = store.db
    with store.batch():
        for order_no, station, route, payer, is_member, out_ms, _ in made:
            db.execute("INSERT INTO txn VALUES (?, ?, 'deposit_desk', 'T-RENT', ?, 'op', ?, NULL, 3000, ?, ?, 0, ?, NULL)",
                       (order_no, PARK, order_no, station, out_ms, out_ms, store.business_day(PARK, out_ms)))
            db.execute("""INSERT INTO deposit_order (park_id, order_no, item_type, deposit_fen, route, payer_account,
                              payment_ref, is_member, state, held_txn, held_ms, expires_ms, item_label, station_id, out_ms)
                          VALUES (?, ?, 'rod', 3000, ?, ?, ?, ?, 'out', ?, ?, ?, ?, ?, ?)""",
                       (PARK, order_no, route, payer, f"WX{order_no}" if route.startswith("online_") else "",
                        int(is_member), order_no, out_ms, out_ms + 3 * DAY_MS, f"ROD-{station}", station, out_ms))
    with store.batch():
        for index in order:
            order_no, station, _, _, _, _, back_ms = made[index]
            txn_id = 100_000 + order_no
            db.execute("INSERT INTO txn VALUES (?, ?, 'rental_return', 'T-RENT', ?, 'op', ?, NULL, 2000, ?, ?, 0, ?, NULL)",
                       (txn_id, PARK, txn_id, station, back_ms, back_ms, store.business_day(PARK, back_ms)))
            store.apply_rental(PARK, Close(order_no, f"ROD-{station}", "available", "intact", 1000, 0, 0, 2000),
                               txn_id, "T-RENT", txn_id, back_ms)


def _straight_renters(store: Store, scope: Scope) -> list[tuple]:
    """The renters table counted the plain way: every returned rental of the period, one by one."""
    rows = store.db.execute(
        """SELECT o.route, o.is_member, o.payer_account, o.closed_ms - o.out_ms, t.business_day, o.station_id
             FROM deposit_order o JOIN txn t ON t.txn_id = o.closed_txn WHERE o.state = 'closed'""").fetchall()
    by_renter: dict[str, list] = {}
    for route, is_member, payer, out_ms, day, station in rows:
        if not scope.period.first <= day <= scope.period.last or (
                scope.stations is not None and station not in scope.stations):
            continue
        renter = ("member" if is_member else "temporary") if route == "card" else (
            "online" if route.startswith("online_") else "desk")
        by_renter.setdefault(renter, []).append((payer, out_ms))
    table = []
    for renter, rented in sorted(by_renter.items()):
        per_card: dict[str, int] = {}
        for payer, _ in rented:
            per_card[payer] = per_card.get(payer, 0) + 1
        is_card = renter in ("member", "temporary")
        table.append((RENTERS[renter], len(rented), len(per_card) if is_card else 0,
                      sum(n > 1 for n in per_card.values()) if is_card else 0,
                      f"{sum(out for _, out in rented) / len(rented) / 60_000:.0f} min"))
    return table


def _days(store: Store, made) -> list[str]:
    return sorted({store.business_day(PARK, back_ms) for *_, back_ms in made})


def _scopes(days: list[str]):
    periods = [(days[0], days[-1]), (days[0], days[0]), (days[-1], days[-1]), (days[1], days[-2]),
               (days[2], days[4]), (days[3], days[3])]
    for first, last in periods:
        for stations in (None, ("pond",), ("pond", "bikes"), STATIONS, ()):
            yield Scope(PARK, Period(first, last), stations)


def test_renters_equal_a_plain_count_over_the_orders_for_any_period_and_stations_with_returns_out_of_order(books):
    store = books
    rng = random.Random(13)
    made = _rentals(rng, 400, days=9)
    order = list(range(len(made)))
    rng.shuffle(order)  # returns of later days booked before earlier ones: the chains re-link
    _book(store, made, order)
    days = _days(store, made)
    assert len(days) >= 8
    checked = 0
    for scope in _scopes(days):
        expected = _straight_renters(store, scope)
        assert rentals(store.db, scope).tables[3].rows == expected, scope
        checked += bool(expected)
    assert checked > 20
    # The test means something: cards rented again within the periods, and some at two stations.
    whole = {row[0]: row for row in _straight_renters(store, Scope(PARK, Period(days[0], days[-1])))}
    assert whole[RENTERS["member"]][3] > 0 and whole[RENTERS["temporary"]][3] > 0
    pond_only = {row[0]: row for row in _straight_renters(store, Scope(PARK, Period(days[0], days[-1]), ("pond",)))}
    assert pond_only[RENTERS["member"]][2] <= whole[RENTERS["member"]][2]


def test_every_card_day_row_links_to_the_cards_day_before_and_after_it(tmp_path):
    store = Store(tmp_path / "ledger.db")
    try:
        _park(store)
        rng = random.Random(7)
        made = _rentals(rng, 200, days=6)
        order = list(range(len(made)))
        rng.shuffle(order)
        _book(store, made, order)
        chains: dict[tuple, list] = {}
        for scope, renter, payer, day, count, before, after in store.db.execute(
                """SELECT scope, renter, payer_account, business_day, rentals, prev_day, next_day FROM rental_card_day
                   ORDER BY scope, renter, payer_account, business_day"""):
            chains.setdefault((scope, renter, payer), []).append((day, count, before, after))
        assert chains
        for rows in chains.values():
            days = [row[0] for row in rows]
            assert [row[2] for row in rows] == [None, *days[:-1]]
            assert [row[3] for row in rows] == [*days[1:], None]
        park_wide = sum(count for (scope, *_), rows in chains.items() if scope == "" for _, count, _, _ in rows)
        assert park_wide == sum(route == "card" for _, _, route, *_ in made)
    finally:
        store.close()


def test_a_ledger_upgraded_from_per_card_rows_reports_the_same_renters(tmp_path):
    # The ledger before: migrations up to the one that added its own per-card rows, with rentals
    # returned then. Opening it upgrades it; the report must say what the orders say.
    path = tmp_path / "old.db"
    day_rows = next(number for number, script in enumerate(MIGRATIONS) if "CREATE TABLE rental_day (" in script)
    before = next(number for number, script in enumerate(MIGRATIONS) if "CREATE TABLE rental_card_day" in script)
    old = sqlite3.connect(path, isolation_level=None)
    for number, script in enumerate(MIGRATIONS[:day_rows], start=1):
        old.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
    old.execute("INSERT INTO park (park_id, name) VALUES (?, 'old park')", (PARK,))
    for station in STATIONS:
        old.execute("INSERT INTO station (park_id, station_id, name) VALUES (?, ?, ?)", (PARK, station, station))
    rng = random.Random(5)
    made = _rentals(rng, 150, days=5)
    for order_no, station, route, payer, is_member, out_ms, back_ms in made:
        day = f"2026-06-{1 + (back_ms - FIRST_MS) // DAY_MS:02d}"
        for txn_id, kind, at in ((order_no, "deposit_desk", out_ms), (100_000 + order_no, "rental_return", back_ms)):
            old.execute("INSERT INTO txn VALUES (?, ?, ?, 'T-RENT', ?, 'op', ?, NULL, 3000, ?, ?, 0, ?, NULL)",
                        (txn_id, PARK, kind, txn_id, station, at, at, day))
        old.execute("""INSERT INTO deposit_order (park_id, order_no, item_type, deposit_fen, route, payer_account,
                           payment_ref, is_member, state, held_txn, held_ms, expires_ms, item_label, station_id, out_ms,
                           closed_txn, closed_ms, condition, rental_fen, refunded_fen)
                       VALUES (?, ?, 'rod', 3000, ?, ?, ?, ?, 'closed', ?, ?, ?, ?, ?, ?, ?, ?, 'intact', 1000, 2000)""",
                    (PARK, order_no, route, payer, f"WX{order_no}" if route.startswith("online_") else "", int(is_member),
                     order_no, out_ms, out_ms + 3 * DAY_MS, f"ROD-{station}", station, out_ms, 100_000 + order_no, back_ms))
    # Then the day rows came (filled from these rentals), and the migrations after them, up to mine.
    for number, script in enumerate(MIGRATIONS[day_rows:before], start=day_rows + 1):
        old.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
    assert old.execute("SELECT COUNT(*) FROM rental_day_renter").fetchone()[0] > 0
    old.close()
    store = Store(path)
    try:
        tables = {row[0] for row in store.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "rental_day_renter" not in tables and {"rental_card_day", "rental_day_by_renter"} <= tables
        days = sorted({row[0] for row in store.db.execute("SELECT business_day FROM txn WHERE kind = 'rental_return'")})
        for scope in _scopes(days):
            assert rentals(store.db, scope).tables[3].rows == _straight_renters(store, scope), scope
        assert store.db.execute("SELECT COUNT(*) FROM rental_card_day WHERE scope = ''").fetchone()[0] > 0
    finally:
        store.close()
