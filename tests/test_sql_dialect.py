"""ledger.sql_dialect: the store's SQLite statements as PostgreSQL's (tables of input -> output), and
every migration of the ledger applied on a real PostgreSQL database."""

import pytest

from ledger.sql_dialect import Catalog, DialectError, Table, translate, translate_script

CATALOG = Catalog(
    tables={
        "refusal_count": Table(["terminal_id", "reason", "first_ms", "last_ms", "count"], ["terminal_id", "reason"]),
        "offline_policy": Table(["park_id", "policy"], ["park_id"]),
        "config_version": Table(["terminal_id", "version"], ["terminal_id"]),
        "account": Table(["park_id", "account_id"], ["park_id", "account_id"]),
        "txn": Table(["txn_id", "park_id", "kind"], ["txn_id"], rowid="txn_id"),
        "staff": Table(["park_id", "staff_id", "is_active"], ["park_id", "staff_id"]),
    },
    integer_columns={"is_active", "is_flagged", "is_member", "count", "version"},
)

CASES = [
    # parameters, and a literal % beside them
    ("SELECT a FROM t WHERE b=? AND c LIKE 'x%'", "SELECT a FROM t WHERE b=%s AND c LIKE 'x%%'"),
    ("SELECT 1 FROM txn WHERE kind = :void AND x = :park", "SELECT 1 FROM txn WHERE kind = %(void)s AND x = %(park)s"),
    ("SELECT '?' || ?", "SELECT '?' || %s"),  # a ? inside a string is text
    # conflicts
    ("INSERT OR IGNORE INTO account VALUES (?, ?)", "INSERT INTO account VALUES (%s, %s) ON CONFLICT DO NOTHING"),
    ("INSERT OR REPLACE INTO offline_policy VALUES (?, ?)",
     "INSERT INTO offline_policy VALUES (%s, %s) ON CONFLICT (park_id) DO UPDATE SET policy = excluded.policy"),
    ("INSERT OR REPLACE INTO account VALUES (?, ?)", "INSERT INTO account VALUES (%s, %s) ON CONFLICT (park_id, account_id) DO NOTHING"),
    # upserts: the table's own columns qualified on the right of = (PostgreSQL finds them ambiguous)
    ("""INSERT INTO refusal_count VALUES (?, ?, ?, ?, 1) ON CONFLICT (terminal_id, reason)
        DO UPDATE SET count = count + 1, last_ms = MAX(last_ms, excluded.last_ms)""",
     """INSERT INTO refusal_count VALUES (%s, %s, %s, %s, 1) ON CONFLICT (terminal_id, reason)
        DO UPDATE SET count = refusal_count.count + 1, last_ms = GREATEST(refusal_count.last_ms, excluded.last_ms)"""),
    ("INSERT INTO config_version VALUES (?, 1) ON CONFLICT (terminal_id) DO UPDATE SET version = version + 1 RETURNING version",
     "INSERT INTO config_version VALUES (%s, 1) ON CONFLICT (terminal_id) DO UPDATE SET version = config_version.version + 1 "
     "RETURNING version"),
    # aggregates stay aggregates; the two-argument forms are scalars
    ("SELECT MAX(a), MIN(b, c) FROM t", "SELECT MAX(a), LEAST(b, c) FROM t"),
    # integer flags as conditions
    ("SELECT staff_id FROM staff WHERE park_id=? AND is_active ORDER BY staff_id",
     "SELECT staff_id FROM staff WHERE park_id=%s AND (is_active <> 0) ORDER BY staff_id"),
    ("SELECT CASE WHEN o.route = 'card' AND o.is_member THEN 1 END FROM o",
     "SELECT CASE WHEN o.route = 'card' AND (o.is_member <> 0) THEN 1 END FROM o"),
    ("SELECT 1 FROM v WHERE park_id=? AND is_flagged", "SELECT 1 FROM v WHERE park_id=%s AND (is_flagged <> 0)"),
    ("SELECT 1 FROM v WHERE ? BETWEEN count AND version ORDER BY 1",  # values of a range, not conditions
     "SELECT 1 FROM v WHERE %s BETWEEN count AND version ORDER BY 1"),
    ("SELECT is_active FROM staff WHERE is_active = 1", "SELECT is_active FROM staff WHERE is_active = 1"),
    # a rowid table's insert returns its key (lastrowid)
    ("INSERT INTO txn VALUES (NULL, ?, ?)", "INSERT INTO txn VALUES (NULL, %s, %s) RETURNING txn_id"),
    ("SELECT 1 FROM card WHERE card_no GLOB ?", "SELECT 1 FROM card WHERE card_no #~~# %s"),
    ("BEGIN IMMEDIATE", "BEGIN"),
    ("BEGIN", "BEGIN ISOLATION LEVEL REPEATABLE READ"),
    ("SELECT x::text FROM t", "SELECT x::text FROM t"),
    ("SELECT amount FROM posting WHERE txn_id = ? ORDER BY rowid", "SELECT amount FROM posting WHERE txn_id = %s ORDER BY ctid"),
    ("INSERT INTO blobs VALUES (x'', X'00ff', ?)", "INSERT INTO blobs VALUES ('\\x'::bytea, '\\x00ff'::bytea, %s)"),
    ("SELECT a FROM (SELECT a FROM t) WHERE a > 1", "SELECT a FROM (SELECT a FROM t) AS fieldpos_subquery_1 WHERE a > 1"),
    ("SELECT a FROM (SELECT a FROM t) s", "SELECT a FROM (SELECT a FROM t) s"),
    ("SELECT a FROM t WHERE a IN (SELECT b FROM u)", "SELECT a FROM t WHERE a IN (SELECT b FROM u)"),  # PostgreSQL's own cast is no named parameter
]


@pytest.mark.parametrize("sqlite, postgres", CASES)
def test_a_statement_is_translated(sqlite, postgres):
    assert translate(sqlite, CATALOG)[0] == postgres


def test_an_insert_into_a_rowid_table_names_the_key_it_returns():
    assert translate("INSERT INTO txn VALUES (NULL, ?, ?)", CATALOG)[1] == "txn_id"
    assert translate("INSERT INTO account VALUES (?, ?)", CATALOG)[1] is None


def test_what_is_not_translated_says_so():
    with pytest.raises(DialectError, match="INSERT OR ROLLBACK"):
        translate("INSERT OR ROLLBACK INTO account VALUES (?, ?)", CATALOG)
    with pytest.raises(DialectError, match="catalog does not know"):
        translate("INSERT OR REPLACE INTO nowhere VALUES (?)", CATALOG)
    with pytest.raises(DialectError, match="trigger"):
        translate_script("CREATE TRIGGER t AFTER INSERT ON x BEGIN UPDATE y SET a = 1; END;", Catalog())


def test_ddl_types_rowid_and_triggers():
    statements = translate_script("""
        CREATE TABLE alert (
            alert_id INTEGER PRIMARY KEY,   -- SQLite's rowid
            payload  BLOB NOT NULL,
            ratio    REAL
        );
        CREATE TRIGGER alert_is_immutable BEFORE UPDATE ON alert
            BEGIN SELECT RAISE(ABORT, 'alerts are immutable'); END;
        CREATE INDEX alert_by_payload ON alert (payload) WHERE ratio > 0.5;
    """, Catalog())
    text = "\n".join(statements)
    assert "alert_id BIGINT PRIMARY KEY" in text and "payload  BYTEA NOT NULL" in text and "DOUBLE PRECISION" in text
    assert "CREATE SEQUENCE alert_alert_id_rowid OWNED BY alert.alert_id" in text
    assert "NEW.alert_id := nextval('alert_alert_id_rowid')" in text
    assert "RAISE EXCEPTION 'alerts are immutable'" in text
    assert "SQLite's rowid" not in text  # comments are gone (a ; in one would split a statement)
    assert statements[-1].startswith("CREATE INDEX alert_by_payload")


def test_every_migration_applies_on_postgresql_and_the_books_behave(postgres_url):
    """The real schema on a real server: the immutable postings, rowids, upserts, sums as integers."""
    import psycopg

    from ledger.postgres import drop_schema
    from ledger.schema import MIGRATIONS
    from ledger.store import NewTxn
    from ledger.store_location import open_store
    from ledger.rules.decision import Posting

    url = f"{postgres_url}?schema=dialect_test"
    store = open_store(url)
    try:
        assert store.schema_version() == len(MIGRATIONS)
        store.add_park("p1", "Park")
        store.add_station("p1", "pond", "Pond")
        with store.batch():
            txn_id = store.book(NewTxn("p1", "top_up", "T1", 1, "op", "pond", "card:C1/1", 500, 1_780_000_000_000,
                                       1_780_000_000_000, False),
                                (Posting("card:C1/1", "fen", 500), Posting("channel:cash", "fen", -500)))
        assert store.card_balances("p1", "card:C1/1") == (500, 0, 0)
        assert store.spent_today("p1", "card:C1/1", "2026-05-28") == 0
        assert type(store.db.execute("SELECT SUM(amount) FROM posting WHERE amount > 0").fetchone()[0]) is int
        with pytest.raises(psycopg.Error, match="postings are immutable"):
            store.db.execute("UPDATE posting SET amount = 1 WHERE txn_id = ?", (txn_id,))
        for _ in range(3):
            store.record_refusal(1_000, "fieldpos/v1/p1/t/T9/req", "ab" * 32, "BAD_SIGNATURE", "x")
        assert store.refusal_counts() == [("", "BAD_SIGNATURE", 3, 1_000, 1_000)]
        # GLOB as SQLite reads it: * any text, ? one character, [0-9] a class, anything else itself.
        for value, pattern, expected in (("card:E1/2", "card:E1/*", True), ("card:E12/2", "card:E1/*", False),
                                         ("E000123", "E[0-9][0-9][0-9][0-9][0-9][0-9]", True),
                                         ("E00012x", "E[0-9][0-9][0-9][0-9][0-9][0-9]", False),
                                         ("a.b", "a.b", True), ("axb", "a.b", False), ("ab", "a?", True),
                                         ("A", "a", False)):
            assert store.db.execute("SELECT ? GLOB ?", (value, pattern)).fetchone()[0] is expected, (value, pattern)
        # A second store on the same schema migrates nothing and sees the same books.
        again = open_store(url)
        assert again.card_balances("p1", "card:C1/1") == (500, 0, 0)
        again.close()
    finally:
        store.close()
        drop_schema(url)
