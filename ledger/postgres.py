"""The ledger's books on PostgreSQL: the same Store, the same statements, several ledger workers.

``PostgresStore`` is ``Store`` with another connection under ``self.db``: a small adapter that
takes the store's SQLite statements, translates each distinct one once (ledger.sql_dialect, cached
by its text) and runs it through psycopg 3. The SQLite store keeps its own connection untouched, so
nothing is added to its statements.

What differs, because several processes write at once:
- ``lock(names)``: PostgreSQL advisory locks, held to the end of the batch, taken before a
  decision reads what it depends on (the terminal, the card, a counter). Only the first request of
  a batch waits for one; a later request that finds one held raises LockContended, and the intake
  commits what the batch has done and starts the next batch with that request (waiting while
  holding other locks is how two workers deadlock).
- the schema's version lives in ``schema_version`` (SQLite keeps it in ``PRAGMA user_version``);
  migrating takes a session lock so two workers starting together migrate once.
- a URL's ``schema=<name>`` puts the books in that schema (created when missing): tests give each
  park its own schema in one database.
"""

import hashlib
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import errors as pg_errors, pq, sql as pg_sql
from psycopg.types.numeric import NumericLoader

from . import store as store_module
from .errors import LockContended, StoreUnavailableError, TransientStoreError
from .schema import MIGRATIONS
from .sql_dialect import PREAMBLE, Catalog, Table, translate, translate_script

# A migration with one of these may need the catalog (upserts, flags) for what the next one writes.
_WRITES_ROWS = re.compile(r"\b(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)
# Any constant works as long as every worker uses the same one: the key of the migration lock.
_MIGRATION_LOCK = 0x6669656C64706F73  # "fieldpos"
# Statements whose rowcount is rows changed (a SELECT's is rows returned).
_CHANGES = ("INSERT", "UPDATE", "DELETE")


class IntegralNumericLoader(NumericLoader):
    """PostgreSQL's SUM over BIGINT is NUMERIC; the ledger's sums are whole fen, as SQLite returns them."""

    def load(self, data):
        value = super().load(data)
        return int(value) if value == value.to_integral_value() else value


class _InsertCursor:
    """The cursor of an INSERT that returned its rowid: ``lastrowid`` as SQLite's cursor has it."""

    def __init__(self, cursor, lastrowid):
        self._cursor = cursor
        self.lastrowid = lastrowid
        self.rowcount = cursor.rowcount

    def fetchone(self):
        return None

    def fetchall(self):
        return []

    def __iter__(self):
        return iter(())


class PgConnection:
    """The part of sqlite3.Connection the ledger uses, over a psycopg connection in autocommit
    mode (the store issues BEGIN and COMMIT itself, as it does on SQLite)."""

    def __init__(self, conn: psycopg.Connection):
        self.conn = conn
        self.catalog = Catalog()
        self._translated: dict[str, tuple[str, str | None]] = {}
        self._trace = None  # sqlite3's set_trace_callback: tests count the store's statements with it
        self.total_changes = 0  # rows inserted, updated or deleted, as sqlite3's (tests: "a read writes nothing")

    def set_trace_callback(self, callback) -> None:
        """Call ``callback`` with each statement as the store wrote it (before translation)."""
        self._trace = callback

    def _translate(self, sql: str) -> tuple[str, str | None]:
        found = self._translated.get(sql)
        if found is None:
            found = self._translated[sql] = translate(sql, self.catalog)
        return found

    def execute(self, sql: str, params=()):
        if self._trace is not None:
            self._trace(sql)
        query, rowid = self._translate(sql)
        if query == "COMMIT" and self.conn.info.transaction_status == pq.TransactionStatus.INERROR:
            # PostgreSQL answers COMMIT of a failed transaction with a silent ROLLBACK: never let a
            # batch believe (and answer) what was not stored.
            raise TransientStoreError("the transaction failed before its commit; nothing was stored")
        cursor = self.conn.execute(query, params if params is not None else ())
        if cursor.rowcount > 0 and query[:6].upper() in _CHANGES:
            self.total_changes += cursor.rowcount
        if rowid is not None:
            row = cursor.fetchone()
            return _InsertCursor(cursor, row[0] if row else None)
        return cursor

    def executemany(self, sql: str, rows):
        query, _ = self._translate(sql)
        rows = list(rows)
        if self._trace is not None:
            for _ in rows:  # as sqlite3 does: once per row
                self._trace(sql)
        with self.conn.cursor() as cursor:
            cursor.executemany(query, rows)
            if cursor.rowcount > 0 and query[:6].upper() in _CHANGES:
                self.total_changes += cursor.rowcount
            return cursor

    def executescript(self, script: str):
        for statement in translate_script(script, self.catalog):
            self.conn.execute(statement)

    @property
    def in_transaction(self) -> bool:
        return self.conn.info.transaction_status != pq.TransactionStatus.IDLE

    def close(self) -> None:
        self.conn.close()

    def load_catalog(self) -> None:
        """Read the tables as the database has them (after a migration), for INSERT OR REPLACE and
        ON CONFLICT translations; forget translations made with the older catalog."""
        # pg_catalog, not information_schema: the same answer in a fraction of the time.
        tables: dict[str, Table] = {}
        integers: set[str] = set()
        for table, column, type_name in self.conn.execute(
                """SELECT c.relname, a.attname, format_type(a.atttypid, NULL) FROM pg_attribute a
                   JOIN pg_class c ON c.oid = a.attrelid
                   WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
                     AND a.attnum > 0 AND NOT a.attisdropped ORDER BY c.relname, a.attnum"""):
            tables.setdefault(table, Table([], [])).columns.append(column)
            if type_name == "bigint":
                integers.add(column)
        for table, column in self.conn.execute(
                """SELECT c.relname, a.attname FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
                   JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, position) ON true
                   JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
                   WHERE c.relnamespace = current_schema()::regnamespace AND i.indisprimary
                   ORDER BY c.relname, k.position"""):
            tables[table].primary_key.append(column)
        for (name,) in self.conn.execute(
                "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace AND relkind = 'S'"):
            for table, info in tables.items():
                if len(info.primary_key) == 1 and name == f"{table}_{info.primary_key[0]}_rowid":
                    info.rowid = info.primary_key[0]
        self.catalog = Catalog(tables, integers)
        self._translated.clear()


def split_url(url: str) -> tuple[str, str | None]:
    """(the URL psycopg connects with, the schema named by ``schema=``, if any)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((value for key, value in query if key == "schema"), None)
    rest = urlencode([(key, value) for key, value in query if key != "schema"])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, rest, parts.fragment)), schema


def _fault(error: BaseException) -> TransientStoreError | None:
    """PostgreSQL's errors as the store's: a lost or refused connection, a full disk or too many
    connections is the machine's (StoreUnavailableError); a deadlock, a serialization failure or a
    lock that timed out is contention (LockContended: the request goes again in the next batch)."""
    if not isinstance(error, psycopg.Error):
        return None
    if isinstance(error, (pg_errors.DeadlockDetected, pg_errors.SerializationFailure, pg_errors.LockNotAvailable)):
        return LockContended(f"store contended: {str(error).strip()[:200]}")
    state = getattr(error, "sqlstate", None) or ""
    if isinstance(error, psycopg.OperationalError) and (not state or state[:2] in ("08", "53", "57", "58")):
        return StoreUnavailableError(f"store unavailable: {str(error).strip()[:200]}")
    return None


store_module.FAULT_MAPPERS.append(_fault)


def lock_key(name: str) -> int:
    """A signed 64-bit advisory-lock key for a name (collisions only make two names share a lock)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


class PostgresStore(store_module.Store):
    DRIVER_FAULTS = (psycopg.OperationalError, OSError)
    INTEGRITY_ERRORS = (psycopg.IntegrityError,)
    DRIVER_ERRORS = (psycopg.Error,)
    is_shared = True

    def __init__(self, url: str, **_options):
        self.path = url
        self.url, self.schema = split_url(url)
        self.db = PgConnection(self._connect())
        self._migrate()
        self._parks: dict[str, tuple] = {}
        self._accounts: set[tuple[str, str]] = set()
        self._batch_cache: dict = {}
        self._savepoints_in_batch = 0
        self._batch_depth = 0
        self.card_balances_after: dict[str, tuple[int, int, int]] = {}

    def _connect(self) -> psycopg.Connection:
        try:
            conn = psycopg.connect(self.url, autocommit=True)
        except psycopg.OperationalError as error:
            raise StoreUnavailableError(f"store unavailable: {str(error).strip()[:200]}") from error
        conn.adapters.register_loader("numeric", IntegralNumericLoader)
        if self.schema:
            conn.execute(pg_sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(pg_sql.Identifier(self.schema)))
            conn.execute(pg_sql.SQL("SET search_path TO {}").format(pg_sql.Identifier(self.schema)))
        return conn

    def _migrate(self) -> None:
        conn = self.db.conn
        conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                conn.execute("INSERT INTO schema_version VALUES (0)")
            applied = row[0] if row else 0
            self.db.load_catalog()
            # Every time, not only before a migration: a function PREAMBLE gained since (GLOB's) must
            # reach a schema already at the latest version. Each statement is idempotent.
            for statement in PREAMBLE:
                conn.execute(statement)
            for number, script in enumerate(MIGRATIONS[applied:], start=applied + 1):
                with conn.transaction():
                    for statement in translate_script(script, self.db.catalog):
                        conn.execute(statement)
                    conn.execute("UPDATE schema_version SET version = %s", (number,))
                if _WRITES_ROWS.search(script):
                    self.db.load_catalog()  # the next migration's DML may write what this one made
            self.db.load_catalog()
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))

    def schema_version(self) -> int:
        return self.db.conn.execute("SELECT version FROM schema_version").fetchone()[0]

    def lock(self, names) -> None:
        if not self._batch_depth or not names:
            return  # outside a batch a transaction-scoped lock would end with its own statement
        keys = [lock_key(name) for name in names]
        if self._savepoints_in_batch <= 1:
            # The batch's first request holds no other request's locks: waiting cannot deadlock
            # with another worker that only ever tries (PostgreSQL detects the rest).
            self.db.conn.execute("SELECT " + ", ".join(["pg_advisory_xact_lock(%s)"] * len(keys)), keys)
            return
        got = self.db.conn.execute("SELECT " + ", ".join(["pg_try_advisory_xact_lock(%s)"] * len(keys)), keys).fetchone()
        if not all(got):
            raise LockContended(f"another worker holds {', '.join(n for n, ok in zip(names, got) if not ok)}")

    def probe(self, now_ms: int) -> None:
        """A tiny write transaction, on a new connection when the old one broke."""
        if self.db.conn.broken or self.db.conn.closed:
            catalog = self.db.catalog
            self.db = PgConnection(self._connect())
            self.db.catalog = catalog
        super().probe(now_ms)


def open_read_only(url: str) -> PgConnection:
    """A connection for reports: every transaction read-only, nothing created (not even the schema
    a URL names: LookupError when it is not there)."""
    connect_url, schema = split_url(url)
    conn = psycopg.connect(connect_url, autocommit=True)
    conn.adapters.register_loader("numeric", IntegralNumericLoader)
    if schema:
        if conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone() is None:
            conn.close()
            raise LookupError(f"no schema {schema} on the server")
        conn.execute(pg_sql.SQL("SET search_path TO {}").format(pg_sql.Identifier(schema)))
    conn.execute("SET default_transaction_read_only = on")
    readable = PgConnection(conn)
    readable.load_catalog()
    return readable


def drop_schema(url: str) -> None:
    """Drop the schema a URL names (tests; never the ledger itself)."""
    connect_url, schema = split_url(url)
    if not schema:
        raise ValueError("no schema= in the URL: refusing to drop anything")
    with psycopg.connect(connect_url, autocommit=True) as conn:
        conn.execute(pg_sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(pg_sql.Identifier(schema)))
