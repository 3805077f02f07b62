"""The ledger's SQLite store: schema migrations, reads for decisions, and the one posting path.

WAL with ``synchronous=FULL``: a commit is on disk when it returns, so a Result is never sent for
something a power cut could undo. One writer (the service loop) batches many requests into one
transaction (group commit); each request gets a savepoint so one failure never spoils the batch.
"""

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
import errno
import json
import re
import sqlite3
from zoneinfo import ZoneInfo

from protocol import envelope, topics
from protocol.errors import RemoteProtocolError
from protocol.kinds import KINDS
from protocol.limits import MAX_PAYLOAD_BYTES, MAX_TIME_MS
from protocol.messages import (DamageFee, MenuItem, OfflineCharge, ParkRules, RentalItem, RentalStock, RentalType,
                               StaffEntry, StationSettings, Void)

from .errors import (AlreadyExists, CardBalanceBelowZero, NotFound, StoreUnavailableError,
                     TransientStoreError)
from .rules.campaigns import Campaign
from .rules.common import check_balanced
from .rules.decision import CardView, Decision, OriginalSale, Posting, StationView
from .days import DayAlreadyClosed, DayNotBegun, ShiftsStillOpen, day_end_ms, local_time_text, next_day
from .shift_totals import ShiftTotals, read_shift_totals
from .rules import rentals
from .schema import MIGRATIONS

# Sales, from the request kinds' declarations: what a station's takings and a card's daily spend
# add up. Written into the SQL as literals (request type names are [a-z_] only).
_SALE_KINDS = ", ".join(f"'{kind.type}'" for kind in KINDS.values() if kind.is_sale)

# How long a writer waits for another connection's lock before the batch counts as transient.
DEFAULT_BUSY_TIMEOUT_MS = 2_000


ASSET_INDEX = {"fen": 0, "bonus": 1, "points": 2}
_MOVE_CARD_BALANCE = {
    asset: f"""INSERT INTO card_balance (park_id, account_id, {asset}) VALUES (?, ?, ?)
               ON CONFLICT (park_id, account_id) DO UPDATE SET {asset} = {asset} + excluded.{asset}
               RETURNING fen, bonus, points"""
    for asset in ("fen", "bonus", "points")
}


@dataclass(frozen=True, slots=True)
class TerminalView:
    terminal_id: str
    park_id: str
    station_id: str
    allowed_kinds: frozenset
    revoked_from_seq: int | None


@dataclass(frozen=True, slots=True)
class StaffView:
    staff_id: str
    name: str
    role: str
    card_no: str
    pin_hash: str
    wrong_pins: int
    is_active: bool


@dataclass(frozen=True, slots=True)
class CardLimits:
    max_balance_fen: int
    min_topup_fen: int
    max_topup_fen: int
    daily_spend_fen: int


# Reported Chinese prepaid-card rules: 1,000 yuan for anonymous cards, 5,000 for named ones.
DEFAULT_CARD_LIMITS = {
    "temporary": CardLimits(max_balance_fen=100_000, min_topup_fen=1_000, max_topup_fen=100_000, daily_spend_fen=100_000),
    "member": CardLimits(max_balance_fen=500_000, min_topup_fen=1_000, max_topup_fen=500_000, daily_spend_fen=300_000),
}


@dataclass(frozen=True, slots=True)
class MemberView:
    card_no: str
    name: str
    phone: str
    pin_hash: str
    wrong_pins: int
    no_pin_limit_fen: int


@dataclass(frozen=True, slots=True)
class StoredRequest:
    body_sha256: str
    outcome: str
    reason: str
    result: bytes


@dataclass(frozen=True, slots=True)
class NewTxn:
    park_id: str
    kind: str
    terminal_id: str
    seq: int
    operator: str
    station_id: str
    card_account: str | None
    amount_fen: int
    ledger_time_ms: int
    terminal_time_ms: int
    clock_uncertain: bool
    voids_txn: int | None = None


# Refusal evidence is bounded (a fuzzing peer once left 20,000 rows): every refusal is counted per
# (terminal, reason), and only the newest few payloads of each pair are kept, under a global cap.
REFUSAL_SAMPLE_PER_REASON = 20
REFUSAL_SAMPLE_CAP = 2_000
# A terminal refused more often than this in one minute is raised once that minute: a broken or
# hostile till, not a cashier's mistake (a till re-sends at most every 2 s).
MAX_REFUSALS_PER_MINUTE = 60
# Starts of the ledger are kept this long: enough to count a restart loop, bounded by age.
STARTS_KEPT_MS = 24 * 3600 * 1000

# SQLite's primary result codes for a machine that cannot write (sqlite3.h): the fault is the disk's.
_SQLITE_UNAVAILABLE = {
    10: "disk I/O error",          # SQLITE_IOERR (extended codes keep it in the low byte)
    8: "read-only",                # SQLITE_READONLY
    13: "database or disk is full",  # SQLITE_FULL
    14: "unable to open",          # SQLITE_CANTOPEN
}
_SQLITE_BUSY = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED: another connection holds the lock
_UNAVAILABLE_TEXT = ("disk is full", "disk i/o", "unable to open", "readonly", "read-only", "no space left")
_UNAVAILABLE_ERRNOS = {errno.ENOSPC, errno.EIO, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.ENOENT}


# Other backends' drivers say how their errors map (ledger.postgres adds one when imported).
FAULT_MAPPERS: list = []


def store_fault(error: BaseException) -> TransientStoreError | None:
    """The store error ``error`` stands for, or None when it is not an environmental failure.
    Lock contention is a TransientStoreError (the sender's retry succeeds); a disk that is full,
    failing, read-only or gone is a StoreUnavailableError (the service stops taking messages)."""
    if isinstance(error, TransientStoreError):
        return error
    for mapper in FAULT_MAPPERS:
        if (fault := mapper(error)) is not None:
            return fault
    if isinstance(error, sqlite3.OperationalError):
        code = getattr(error, "sqlite_errorcode", None)
        primary = code & 0xFF if isinstance(code, int) else None
        text = str(error).lower()
        if primary in _SQLITE_UNAVAILABLE or any(part in text for part in _UNAVAILABLE_TEXT):
            return StoreUnavailableError(f"store unavailable: {error}")
        if primary in _SQLITE_BUSY or "locked" in text or "busy" in text:
            return TransientStoreError(f"store busy: {error}")
        return None
    if isinstance(error, OSError) and error.errno in _UNAVAILABLE_ERRNOS:
        return StoreUnavailableError(f"store unavailable: {error}")
    return None


_SEQ_IN_BODY = re.compile(rb'"seq":(\d{1,16})[,}]')


def without_pin_block(payload: bytes) -> bytes:
    """What the ledger may keep of a message: the envelope with its attachment (a sealed PIN block)
    cut out. A PIN never rests anywhere, set-aside messages included: re-applied, such a request
    gets PIN_BLOCK_INVALID (the PIN is typed again), as a terminal's re-send after a restart does."""
    try:
        sealed = envelope.split(payload)
    except RemoteProtocolError:
        return payload  # not an envelope at all: nothing in it can be opened as a PIN
    return sealed.without_attachment() if sealed.attachment else payload


def seq_of(payload: bytes) -> int | None:
    """The seq a request claims, read without trusting it: the envelope's sizes are checked and the
    body is searched, never parsed (a body that crashed the ledger may be what is being read)."""
    try:
        body = envelope.split(payload).body
    except RemoteProtocolError:
        return None
    found = _SEQ_IN_BODY.findall(body)
    return int(found[0]) if len(found) == 1 else None


@dataclass(frozen=True, slots=True)
class SetAside:
    payload_sha256: str
    topic: str
    payload: bytes
    terminal_id: str | None
    seq: int | None
    detail: str
    set_aside_ms: int
    state: str


class Store:
    # What the backend's driver raises for a write that failed for the machine's reasons, for a
    # clash with a row already there, and for anything at all (ledger.postgres sets its own).
    DRIVER_FAULTS: tuple = (sqlite3.OperationalError, OSError)
    INTEGRITY_ERRORS: tuple = (sqlite3.IntegrityError,)
    DRIVER_ERRORS: tuple = (sqlite3.Error,)
    # Several processes may write this store at once (PostgreSQL): reads for a decision lock first.
    is_shared = False

    def __init__(self, path, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS):
        self.path = str(path)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a batch is exactly one transaction.
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = FULL")
        self.db.execute("PRAGMA foreign_keys = ON")
        self._migrate()
        self._parks: dict[str, tuple] = {}
        self._accounts: set[tuple[str, str]] = set()
        self._batch_cache: dict = {}
        self._savepoints_in_batch = 0  # requests begun in this batch (PostgreSQL: only the first may wait for a lock)
        self._batch_depth = 0  # batches open (a nested one joins the outer: see batch)
        self.card_balances_after: dict[str, tuple[int, int, int]] = {}

    def close(self) -> None:
        self.db.close()

    def _migrate(self) -> None:
        applied = self.db.execute("PRAGMA user_version").fetchone()[0]
        for number, script in enumerate(MIGRATIONS[applied:], start=applied + 1):
            self.db.executescript(f"BEGIN IMMEDIATE; {script}; PRAGMA user_version = {number}; COMMIT;")

    # ------------------------------------------------------------ transactions
    @contextmanager
    def batch(self):
        """One write transaction for a batch of requests. Lock and I/O trouble become
        TransientStoreError with everything rolled back. A batch opened inside another joins it:
        the outer one commits or rolls back both (the portal opens an e-card and registers its
        phone as one transaction, so a crash between cannot leave one without the other)."""
        if self._batch_depth:
            self._batch_depth += 1
            try:
                yield self
            finally:
                self._batch_depth -= 1
            return
        self._batch_cache = {}  # terminals and stations read once per batch (setup changes between batches)
        self._savepoints_in_batch = 0
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except self.DRIVER_FAULTS as error:
            if (fault := store_fault(error)) is not None:
                raise fault from error
            raise
        self._batch_depth = 1
        try:
            yield self
            self.db.execute("COMMIT")
        except self.DRIVER_FAULTS as error:
            self._roll_back()
            if (fault := store_fault(error)) is not None:
                raise fault from error
            raise
        except BaseException:
            self._roll_back()
            raise
        finally:
            self._batch_depth = 0

    def _roll_back(self) -> None:
        # After a full disk or an I/O error the rollback itself may fail; SQLite has then rolled
        # back on its own, and the error that matters is the one being raised.
        try:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
        except self.DRIVER_ERRORS:
            pass

    def probe(self, now_ms: int) -> None:
        """A tiny write transaction: raises StoreUnavailableError while the store cannot be written.
        The service calls it while it waits for a full or failing disk to come back."""
        with self.batch():
            self.db.execute("INSERT OR REPLACE INTO refusal_minute VALUES ('(probe)', ?, 0)", (now_ms // 60_000,))
            self.db.execute("DELETE FROM refusal_minute WHERE terminal_id = '(probe)'")

    @contextmanager
    def savepoint(self):
        """Undo one request's writes if it fails, keeping the rest of the batch."""
        self._savepoints_in_batch += 1
        self.db.execute("SAVEPOINT request")
        try:
            yield
        except BaseException as error:
            try:
                self.db.execute("ROLLBACK TO request")
                self.db.execute("RELEASE request")
            except self.DRIVER_ERRORS:
                pass  # the batch fails as a whole below (a full disk): its rollback undoes all
            # A full or failing disk mid-request is the machine's fault, not the message's: it must
            # not become that message's refusal or set-aside (the intake re-raises store faults).
            if isinstance(error, self.DRIVER_FAULTS) and (fault := store_fault(error)) is not None:
                raise fault from error
            raise
        self.db.execute("RELEASE request")

    def lock(self, names) -> None:
        """Hold ``names`` (a terminal, a card, a counter: sorted, the same order everywhere) until the
        batch ends, before reading what a decision depends on. SQLite needs none: a batch holds the
        one write lock (BEGIN IMMEDIATE) from start to commit. PostgreSQL's workers do (ledger.postgres)."""

    # ------------------------------------------------------------ setup (tools, tests)
    @contextmanager
    def _adding(self, what: str):
        """One setup write in its own transaction; a clash with a row already there (a command run
        twice, a typo) becomes AlreadyExists naming ``what``, with nothing changed."""
        try:
            with self.batch():
                yield
        except self.INTEGRITY_ERRORS as error:
            # The driver's first line only: PostgreSQL's message goes on with a DETAIL line.
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise AlreadyExists(f"{what} clashes with one already in the books ({first}); nothing changed") from None

    def add_park(self, park_id, name, *, currency="CNY", time_zone="Asia/Shanghai", day_cutoff_minutes=240, card_fee_fen=2000,
                 damage_fee_fen=1000):
        with self._adding(f"park {park_id}"):
            self.db.execute(
                """INSERT INTO park (park_id, name, currency, time_zone, day_cutoff_minutes, card_fee_fen, damage_fee_fen)
                   VALUES (?, ?, ?, ?, ?, ?, ?)""",
                (park_id, name, currency, time_zone, day_cutoff_minutes, card_fee_fen, damage_fee_fen),
            )

    def park_rules(self, park_id) -> ParkRules:
        """The rules every till of the park must agree on: the ledger owns them and sends them in
        each terminal's signed config (see ledger.broadcasts)."""
        row = self.db.execute("SELECT card_fee_fen, damage_fee_fen FROM park WHERE park_id=?", (park_id,)).fetchone()
        if row is None:
            raise KeyError(f"no park {park_id!r}")
        _, _, no_pin_limit_fen = self.member_settings(park_id)
        return ParkRules(no_pin_limit_fen=no_pin_limit_fen, card_fee_fen=row[0], damage_fee_fen=row[1])

    def set_park_fees(self, park_id, *, card_fee_fen: int, damage_fee_fen: int) -> None:
        with self.batch():
            self.db.execute("UPDATE park SET card_fee_fen=?, damage_fee_fen=? WHERE park_id=?",
                            (card_fee_fen, damage_fee_fen, park_id))

    def add_station(self, park_id, station_id, name, *, contractor_id=None, commission_bp=0):
        with self._adding(f"station {station_id}"):
            self.db.execute(
                "INSERT INTO station VALUES (?, ?, ?, ?, ?)", (park_id, station_id, name, contractor_id, commission_bp)
            )

    def add_terminal(self, terminal_id, park_id, station_id, allowed_kinds, broker_password_hash, created_ms):
        with self._adding(f"terminal {terminal_id}"):
            if self.db.execute("SELECT 1 FROM station WHERE park_id=? AND station_id=?", (park_id, station_id)).fetchone() is None:
                raise NotFound(f"station {station_id} is not in park {park_id}")
            self.db.execute(
                "INSERT INTO terminal VALUES (?, ?, ?, ?, NULL, ?, ?)",
                (terminal_id, park_id, station_id, ",".join(sorted(allowed_kinds)), broker_password_hash, created_ms),
            )

    def add_terminal_key(self, key_id, terminal_id, public_key: bytes, created_ms):
        with self._adding(f"key {key_id}"):
            self.db.execute("INSERT INTO terminal_key VALUES (?, ?, ?, ?)", (key_id, terminal_id, public_key, created_ms))

    def revoke_terminal(self, terminal_id, from_seq: int) -> None:
        # Takes effect from the next batch: batch() clears the cached terminal.
        with self.batch():
            cursor = self.db.execute("UPDATE terminal SET revoked_from_seq=? WHERE terminal_id=?", (from_seq, terminal_id))
            if cursor.rowcount != 1:
                raise NotFound(f"no terminal {terminal_id}")

    def broker_credentials(self, park_id) -> list[tuple[str, str]]:
        """Broker logins of the park's terminals; a retired terminal has none."""
        return self.db.execute(
            """SELECT terminal_id, broker_password_hash FROM terminal WHERE park_id=? AND revoked_from_seq IS NULL
               ORDER BY terminal_id""", (park_id,)
        ).fetchall()

    # ------------------------------------------------------------ reads for decisions
    def terminal_keys(self) -> dict[str, tuple[str, bytes]]:
        """key id -> (terminal id, Ed25519 public key)."""
        return {k: (t, bytes(p)) for k, t, p in self.db.execute("SELECT key_id, terminal_id, public_key FROM terminal_key")}

    def terminal(self, terminal_id) -> TerminalView | None:
        key = ("terminal", terminal_id)
        if key not in self._batch_cache:
            self._batch_cache[key] = self._read_terminal(terminal_id)
        return self._batch_cache[key]

    def _read_terminal(self, terminal_id) -> TerminalView | None:
        row = self.db.execute(
            "SELECT terminal_id, park_id, station_id, allowed_kinds, revoked_from_seq FROM terminal WHERE terminal_id=?",
            (terminal_id,),
        ).fetchone()
        if row is None:
            return None
        return TerminalView(row[0], row[1], row[2], frozenset(row[3].split(",")), row[4])

    def station(self, park_id, station_id) -> StationView:
        key = ("station", park_id, station_id)
        if key not in self._batch_cache:
            self._batch_cache[key] = self._read_station(park_id, station_id)
        return self._batch_cache[key]

    def _read_station(self, park_id, station_id) -> StationView:
        row = self.db.execute(
            "SELECT station_id, contractor_id, commission_bp FROM station WHERE park_id=? AND station_id=?",
            (park_id, station_id),
        ).fetchone()
        if row is None:
            raise NotFound(f"station {station_id} is not in park {park_id}")
        return StationView(*row)

    def card(self, park_id, card_no, issuance: int | None = None) -> CardView | None:
        """The latest issuance of a card number (or the given one) with its balances."""
        row = self.db.execute(
            f"""SELECT c.card_no, c.issuance, c.uid, c.kind, c.state, c.card_fee_fen,
                      COALESCE(b.fen, 0), COALESCE(b.bonus, 0), COALESCE(b.points, 0)
               FROM card c LEFT JOIN card_balance b
                 ON b.park_id = c.park_id AND b.account_id = 'card:' || c.card_no || '/' || c.issuance
               WHERE c.park_id=? AND c.card_no=? {"AND c.issuance=?" if issuance is not None else ""}
               ORDER BY c.issuance DESC LIMIT 1""",
            (park_id, card_no) + ((issuance,) if issuance is not None else ()),
        ).fetchone()
        return None if row is None else CardView(*row)

    def card_balances(self, park_id, account) -> tuple[int, int, int]:
        row = self.db.execute(
            "SELECT fen, bonus, points FROM card_balance WHERE park_id=? AND account_id=?", (park_id, account)
        ).fetchone()
        return tuple(row) if row else (0, 0, 0)

    def stored_request(self, terminal_id, seq) -> StoredRequest | None:
        row = self.db.execute(
            "SELECT body_sha256, outcome, reason, result FROM request WHERE terminal_id=? AND seq=?", (terminal_id, seq)
        ).fetchone()
        return None if row is None else StoredRequest(row[0], row[1], row[2], bytes(row[3]))

    def highest_seq(self, terminal_id) -> int:
        return self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM request WHERE terminal_id=?", (terminal_id,)).fetchone()[0]

    def original_sale(self, terminal_id, seq) -> OriginalSale | None:
        row = self.db.execute(
            """SELECT t.txn_id, t.kind, t.amount_fen, t.card_account,
                      EXISTS (SELECT 1 FROM txn v WHERE v.voids_txn = t.txn_id)
               FROM txn t WHERE t.terminal_id=? AND t.seq=?""",
            (terminal_id, seq),
        ).fetchone()
        if row is None:
            return None
        postings = tuple(
            Posting(*p) for p in self.db.execute("SELECT account_id, asset, amount FROM posting WHERE txn_id=?", (row[0],))
        )
        return OriginalSale(row[0], row[1], row[2], row[3], bool(row[4]), postings)

    # ------------------------------------------------------------ writes (inside batch())
    def business_day(self, park_id, ledger_time_ms) -> str:
        if park_id not in self._parks:
            row = self.db.execute("SELECT time_zone, day_cutoff_minutes FROM park WHERE park_id=?", (park_id,)).fetchone()
            if row is None:
                raise NotFound(f"no park {park_id}")
            self._parks[park_id] = (ZoneInfo(row[0]), row[1])
        zone, cutoff = self._parks[park_id]
        local = datetime.fromtimestamp(ledger_time_ms / 1000, zone) - timedelta(minutes=cutoff)
        return local.date().isoformat()

    def booking_day(self, park_id, ledger_time_ms) -> str:
        """The business day a booking at ``ledger_time_ms`` goes to: its own (``business_day``), or
        when that day has been closed (``close_business_day``), the next day that is still open."""
        day = self.business_day(park_id, ledger_time_ms)
        while self.is_day_closed(park_id, day):
            day = next_day(day)
        return day

    def is_day_closed(self, park_id, business_day) -> bool:
        # Asked for every booking: kept for the batch (a close made by another process lands between
        # batches, as every setup change does).
        key = ("day_closed", park_id, business_day)
        if key not in self._batch_cache:
            self._batch_cache[key] = self.db.execute(
                "SELECT 1 FROM business_day_close WHERE park_id=? AND business_day=?", (park_id, business_day)
            ).fetchone() is not None
        return self._batch_cache[key]

    def book(self, txn: NewTxn, postings: tuple[Posting, ...], *, allow_negative: bool = False) -> int:
        """The one posting path: every transaction of the ledger is written here, and only here.
        Afterwards ``card_balances_after`` holds (fen, bonus, points) of each card account it moved."""
        check_balanced(postings)
        rentals.check_pool_postings(txn.kind, postings)  # only the rental kinds touch the deposit pool
        self.card_balances_after = {}
        day = self.booking_day(txn.park_id, txn.ledger_time_ms)
        cursor = self.db.execute(
            "INSERT INTO txn VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                txn.park_id, txn.kind, txn.terminal_id, txn.seq, txn.operator, txn.station_id, txn.card_account,
                txn.amount_fen, txn.ledger_time_ms, txn.terminal_time_ms, int(txn.clock_uncertain),
                day, txn.voids_txn,
            ),
        )
        txn_id = cursor.lastrowid
        if (own_day := self.business_day(txn.park_id, txn.ledger_time_ms)) != day:
            # Its own day was closed (日结) before it arrived: reports say where it went and why.
            self.db.execute("INSERT INTO booked_late VALUES (?, ?)", (txn_id, own_day))
        self.db.executemany(
            "INSERT INTO posting VALUES (?, ?, ?, ?, ?)",
            [(txn_id, txn.park_id, p.account, p.asset, p.amount) for p in postings],
        )
        new_accounts = [(txn.park_id, p.account) for p in postings if (txn.park_id, p.account) not in self._accounts]
        if new_accounts:
            self.db.executemany("INSERT OR IGNORE INTO account VALUES (?, ?)", new_accounts)
            self._accounts.update(new_accounts)  # a rolled-back insert is redone harmlessly next time
        for posting in postings:
            if posting.account.startswith("card:"):
                self._move_card_balance(txn.park_id, posting, allow_negative)
        return txn_id

    def _move_card_balance(self, park_id, posting: Posting, allow_negative: bool) -> None:
        balances = self.db.execute(
            _MOVE_CARD_BALANCE[posting.asset], (park_id, posting.account, posting.amount)
        ).fetchone()
        self.card_balances_after[posting.account] = balances
        after = balances[ASSET_INDEX[posting.asset]]
        # The decision already checked the balance; this is the second check TigerBeetle asks for. Money
        # coming in may leave a card below zero: a visitor paying off part of an offline debt.
        # Raised, not asserted: python -O strips asserts, and this check must hold in production.
        if not (allow_negative or after >= 0 or posting.amount > 0):
            raise CardBalanceBelowZero(f"{posting.account} would go to {after} {posting.asset}")

    def apply(self, decision: Decision, *, park_id: str, now_ms: int, txn: NewTxn | None, card=None) -> int | None:
        """Write every effect of a rule's decision (inside a batch's savepoint): PIN counters and
        alerts whatever the outcome; when it approves a booked kind (``txn``), the transaction via
        ``book`` and what hangs on it (new card, member, notification, the state of the request's
        ``card``, blocklist); a shift opened or closed. Returns the transaction id, or None when
        nothing was booked."""
        if decision.supersedes is not None:
            self.supersede(*decision.supersedes)
        if decision.member_wrong_pins is not None:
            self.set_member_wrong_pins(park_id, *decision.member_wrong_pins)
        for staff_id, count in decision.staff_wrong_pins:
            self.set_wrong_pins(park_id, staff_id, count)
        for alert in decision.alerts:
            self.record_alert(now_ms, alert.kind, alert.detail)
        txn_id = None
        if decision.is_approved and txn is not None:
            txn_id = self.book(txn, decision.postings, allow_negative=decision.allow_negative)
            if (new := decision.new_card) is not None:
                self.insert_card(park_id, new.card_no, new.issuance, new.uid, new.kind, new.card_fee_fen, txn_id)
            if (member := decision.new_member) is not None:
                self.insert_member(park_id, member.card_no, member.name, member.phone, member.pin_hash,
                                   member.no_pin_limit_fen)
            if decision.copy_member is not None:
                self.copy_member(park_id, *decision.copy_member)
            if (notice := decision.notification) is not None:
                fen, bonus, points = self.card_balances_after.get(notice.account) or (0, 0, 0)
                self.add_notification(park_id, notice.card_no, notice.phone, txn_id, {
                    "kind": notice.kind, "amount_fen": notice.amount_fen, "balance_fen": fen, "bonus_fen": bonus,
                    "points": points, "terminal": txn.terminal_id, "time_ms": now_ms,
                }, now_ms)
            if decision.card_state is not None:
                self.set_card_state(park_id, card.no, card.issuance, decision.card_state)
            for change in decision.blocklist:
                if change.change == "block":
                    self.block_card(park_id, change.card_no, change.issuance, change.reason, now_ms)
                else:
                    self.unblock_card(park_id, change.card_no, change.issuance, change.reason, now_ms)
            if decision.rental is not None:
                self.apply_rental(park_id, decision.rental, txn_id, txn.terminal_id, txn.seq, now_ms)
            if decision.ecard_window is not None:  # the QR is used up with the booking, not before
                self.use_ecard_window(park_id, *decision.ecard_window)
        if (shift := decision.shift) is not None:
            if shift.opens_for is None:
                self.close_shift(shift.terminal_id, shift.seq, now_ms, park_id=park_id, how=shift.closed_how,
                                 txn_id=txn_id, cash_expected_fen=shift.cash_expected_fen,
                                 cash_counted_fen=shift.cash_counted_fen)
            else:
                self.open_shift(park_id, shift.terminal_id, shift.opens_for, shift.seq, now_ms)
        return txn_id

    def insert_card(self, park_id, card_no, issuance, uid, kind, card_fee_fen, txn_id) -> None:
        self.db.execute(
            "INSERT INTO card VALUES (?, ?, ?, ?, ?, 'active', ?, ?)", (park_id, card_no, issuance, uid, kind, card_fee_fen, txn_id)
        )

    def set_card_state(self, park_id, card_no, issuance, state) -> None:
        self.db.execute("UPDATE card SET state=? WHERE park_id=? AND card_no=? AND issuance=?", (state, park_id, card_no, issuance))

    def record_request(self, terminal_id, seq, kind, body_sha256, payload, outcome, reason, txn_id, result, received_ms):
        self.db.execute(
            "INSERT INTO request VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (terminal_id, seq, kind, body_sha256, payload, outcome, reason, txn_id, result, received_ms),
        )

    def record_refusal(self, received_ms, topic, payload_sha256, reason, detail, *, terminal_id=None, seq=None,
                       payload=b"") -> None:
        """Count a refusal per (terminal, reason) and keep its payload among a bounded sample: the
        newest REFUSAL_SAMPLE_PER_REASON of each pair, at most REFUSAL_SAMPLE_CAP in all. A terminal
        refused more than MAX_REFUSALS_PER_MINUTE times in a minute raises one alert that minute.
        ``terminal_id`` defaults to the one the topic names, when it is registered (so a stream of
        made-up topics cannot grow the counts)."""
        reason = getattr(reason, "value", reason)
        if terminal_id is None:
            where = topics.parse_request_topic(topic) or topics.parse_status_topic(topic)
            terminal_id = where[1] if where is not None else ""
        if terminal_id and self.terminal(terminal_id) is None:
            terminal_id = ""
        self.db.execute(
            """INSERT INTO refusal_count VALUES (?, ?, ?, ?, 1) ON CONFLICT (terminal_id, reason)
               DO UPDATE SET count = count + 1, last_ms = MAX(last_ms, excluded.last_ms)""",
            (terminal_id, reason, received_ms, received_ms),
        )
        self.db.execute(
            "INSERT INTO refusal (received_ms, topic, payload_sha256, reason, detail, terminal_id, seq, payload) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (received_ms, topic[:200], payload_sha256, reason, detail[:500], terminal_id, seq,
             bytes(payload[:MAX_PAYLOAD_BYTES])),
        )
        self.db.execute(
            """DELETE FROM refusal WHERE terminal_id=? AND reason=? AND refusal_id <= (
                 SELECT refusal_id FROM refusal WHERE terminal_id=? AND reason=?
                 ORDER BY refusal_id DESC LIMIT 1 OFFSET ?)""",
            (terminal_id, reason, terminal_id, reason, REFUSAL_SAMPLE_PER_REASON),
        )
        self.db.execute(
            """DELETE FROM refusal WHERE refusal_id <= (
                 SELECT refusal_id FROM refusal ORDER BY refusal_id DESC LIMIT 1 OFFSET ?)""",
            (REFUSAL_SAMPLE_CAP,),
        )
        minute = received_ms // 60_000
        (count,) = self.db.execute(
            """INSERT INTO refusal_minute VALUES (?, ?, 1) ON CONFLICT (terminal_id) DO UPDATE SET
                 count = CASE WHEN minute = excluded.minute THEN count + 1 ELSE 1 END, minute = excluded.minute
               RETURNING count""",
            (terminal_id, minute),
        ).fetchone()
        if count == MAX_REFUSALS_PER_MINUTE + 1:
            self.record_alert(received_ms, "REFUSAL_FLOOD",
                              f"{terminal_id or 'an unregistered sender'}: over {MAX_REFUSALS_PER_MINUTE} refusals "
                              f"this minute (the latest {reason})")

    def refusal_counts(self) -> list[tuple[str, str, int, int, int]]:
        """(terminal, reason, count, first ms, last ms) of every refusal ever, the most frequent first."""
        return self.db.execute(
            "SELECT terminal_id, reason, count, first_ms, last_ms FROM refusal_count ORDER BY count DESC, terminal_id, reason"
        ).fetchall()

    def refusal_of_seq(self, terminal_id, seq) -> tuple[str, str] | None:
        """(reason, detail) of the newest refusal kept for a terminal's seq, if the sample holds one."""
        row = self.db.execute(
            "SELECT reason, detail FROM refusal WHERE terminal_id=? AND seq=? ORDER BY refusal_id DESC LIMIT 1",
            (terminal_id, seq),
        ).fetchone()
        return None if row is None else tuple(row)

    def record_alert(self, time_ms, kind, detail) -> None:
        self.db.execute("INSERT INTO alert VALUES (NULL, ?, ?, ?)", (time_ms, kind, detail[:1000]))

    # ------------------------------------------------------------ offline selling
    def supersede(self, terminal_id, seq, by_seq) -> None:
        self.db.execute("INSERT OR IGNORE INTO superseded VALUES (?, ?, ?)", (terminal_id, seq, by_seq))

    def superseded_by(self, terminal_id, seq) -> int | None:
        row = self.db.execute("SELECT by_seq FROM superseded WHERE terminal_id=? AND seq=?", (terminal_id, seq)).fetchone()
        return None if row is None else row[0]

    def stored_outcome(self, terminal_id, seq) -> tuple[str, str, int | None] | None:
        """(outcome, reason, txn id) of a stored request, or None."""
        row = self.db.execute(
            "SELECT outcome, reason, txn_id FROM request WHERE terminal_id=? AND seq=?", (terminal_id, seq)
        ).fetchone()
        return None if row is None else tuple(row)

    def blocklist_version(self, park_id) -> int:
        return self.db.execute(
            "SELECT COALESCE(MAX(version), 0) FROM blocklist_change WHERE park_id=?", (park_id,)
        ).fetchone()[0]

    def block_card(self, park_id, card_no, issuance, reason, now_ms) -> None:
        """Block a card issuance and record it on the blocklist (a new version per change)."""
        self.lock((f"blocklist:{park_id}",))  # versions are MAX + 1: one writer at a time
        self.set_card_state(park_id, card_no, issuance, "blocked")
        self.db.execute(
            "INSERT INTO blocklist_change VALUES (?, ?, ?, ?, 'block', ?, ?)",
            (park_id, self.blocklist_version(park_id) + 1, card_no, issuance, reason, now_ms),
        )

    def unblock_card(self, park_id, card_no, issuance, reason, now_ms) -> None:
        self.lock((f"blocklist:{park_id}",))
        self.set_card_state(park_id, card_no, issuance, "active")
        self.db.execute(
            "INSERT INTO blocklist_change VALUES (?, ?, ?, ?, 'unblock', ?, ?)",
            (park_id, self.blocklist_version(park_id) + 1, card_no, issuance, reason, now_ms),
        )

    def block_reason(self, park_id, card_no, issuance) -> str | None:
        row = self.db.execute(
            """SELECT reason FROM blocklist_change WHERE park_id=? AND card_no=? AND issuance=? AND change='block'
               ORDER BY version DESC LIMIT 1""",
            (park_id, card_no, issuance),
        ).fetchone()
        return None if row is None else row[0]

    def copy_member(self, park_id, from_card_no, to_card_no) -> None:
        self.db.execute(
            """INSERT INTO member (park_id, card_no, name, phone, pin_hash, wrong_pins, no_pin_limit_fen)
               SELECT park_id, ?, name, phone, pin_hash, wrong_pins, no_pin_limit_fen FROM member
               WHERE park_id=? AND card_no=?""",
            (to_card_no, park_id, from_card_no),
        )

    def shift_opened_at(self, terminal_id) -> int | None:
        """The seq that opened the terminal's current shift, or None when no shift is open."""
        row = self.db.execute("SELECT open_seq FROM shift WHERE terminal_id=? AND close_seq IS NULL", (terminal_id,)).fetchone()
        return None if row is None else row[0]

    def blocklist_changes(self, park_id, after_version) -> list[tuple]:
        return self.db.execute(
            "SELECT version, card_no, issuance, change FROM blocklist_change WHERE park_id=? AND version > ? ORDER BY version",
            (park_id, after_version),
        ).fetchall()

    def blocked_cards(self, park_id) -> list[tuple]:
        return self.db.execute(
            "SELECT card_no, issuance FROM card WHERE park_id=? AND state='blocked' ORDER BY card_no, issuance", (park_id,)
        ).fetchall()

    def low_balance_cards(self, park_id, below_fen, limit) -> list[tuple]:
        """Active cards that could not pay ``below_fen`` (the emptiest first)."""
        return self.db.execute(
            """SELECT c.card_no, c.issuance, COALESCE(b.fen, 0) AS fen FROM card c LEFT JOIN card_balance b
                 ON b.park_id = c.park_id AND b.account_id = 'card:' || c.card_no || '/' || c.issuance
               WHERE c.park_id=? AND c.state='active' AND COALESCE(b.fen, 0) < ? ORDER BY fen, c.card_no LIMIT ?""",
            (park_id, below_fen, limit),
        ).fetchall()

    def offline_policy(self, park_id) -> dict | None:
        row = self.db.execute("SELECT policy FROM offline_policy WHERE park_id=?", (park_id,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_offline_policy(self, park_id, policy: dict) -> None:
        with self.batch():
            self.db.execute("INSERT OR REPLACE INTO offline_policy VALUES (?, ?)", (park_id, json.dumps(policy)))

    def next_config_version(self, terminal_id) -> int:
        """Config versions only go up, per terminal (each publication takes the next)."""
        row = self.db.execute(
            """INSERT INTO config_version VALUES (?, 1) ON CONFLICT (terminal_id) DO UPDATE SET version = version + 1
               RETURNING version""",
            (terminal_id,),
        ).fetchone()
        return row[0]

    def terminals(self, park_id) -> list[str]:
        return [t for (t,) in self.db.execute("SELECT terminal_id FROM terminal WHERE park_id=? ORDER BY terminal_id", (park_id,))]

    def terminal_status(self, terminal_id) -> tuple[int, int, int] | None:
        """(highest seq assigned, queue depth, received ms) from the terminal's last heartbeat."""
        row = self.db.execute("SELECT highest_seq, queue_depth, received_ms FROM terminal_status WHERE terminal_id=?",
                              (terminal_id,)).fetchone()
        return None if row is None else tuple(row)

    def record_status(self, terminal_id, is_online, highest_seq, queue_depth, oldest_queued_ms, time_ms, received_ms,
                      printer_state=None, software_version=None):
        self.db.execute(
            """INSERT OR REPLACE INTO terminal_status (terminal_id, is_online, highest_seq, queue_depth, oldest_queued_ms,
                                                       time_ms, received_ms, printer_state, software_version)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (terminal_id, int(is_online), highest_seq, queue_depth, oldest_queued_ms, time_ms, received_ms,
             printer_state, software_version),
        )

    # ------------------------------------------------------------ card-type limits
    def card_limits(self, park_id, kind) -> CardLimits:
        # Read on every sale and top-up: once per batch, as the park's other rules are.
        key = ("card_limits", park_id, kind)
        if key not in self._batch_cache:
            row = self.db.execute(
                "SELECT max_balance_fen, min_topup_fen, max_topup_fen, daily_spend_fen FROM card_limits WHERE park_id=? AND kind=?",
                (park_id, kind),
            ).fetchone()
            self._batch_cache[key] = CardLimits(*row) if row else DEFAULT_CARD_LIMITS[kind]
        return self._batch_cache[key]

    def set_card_limits(self, park_id, kind, limits: CardLimits) -> None:
        self._batch_cache.pop(("card_limits", park_id, kind), None)
        with self.batch():
            self.db.execute("INSERT OR REPLACE INTO card_limits VALUES (?, ?, ?, ?, ?, ?)",
                            (park_id, kind, limits.max_balance_fen, limits.min_topup_fen, limits.max_topup_fen,
                             limits.daily_spend_fen))

    def spent_today(self, park_id, card_account, business_day) -> int:
        return self.db.execute(
            """SELECT COALESCE(SUM(amount_fen), 0) FROM txn WHERE park_id=? AND card_account=? AND business_day=?
               AND kind IN (""" + _SALE_KINDS + """) AND voids_txn IS NULL""",
            (park_id, card_account, business_day),
        ).fetchone()[0]

    def station_takings(self, park_id, station_id, business_day) -> tuple[int, int, int, int]:
        """(sales, fen net of voids, offline sales, voids) for one station on one business day."""
        row = self.db.execute(
            """SELECT COALESCE(SUM(kind IN (""" + _SALE_KINDS + """)), 0),
                      COALESCE(SUM(CASE WHEN kind IN (""" + _SALE_KINDS + """) THEN amount_fen
                                        WHEN kind = :void THEN -amount_fen ELSE 0 END), 0),
                      COALESCE(SUM(kind = :offline), 0), COALESCE(SUM(kind = :void), 0)
               FROM txn WHERE park_id=:park AND station_id=:station AND business_day=:day""",
            {"park": park_id, "station": station_id, "day": business_day, "void": Void.TYPE, "offline": OfflineCharge.TYPE},
        ).fetchone()
        return tuple(row)

    # ------------------------------------------------------------ members
    def member(self, park_id, card_no) -> MemberView | None:
        row = self.db.execute(
            "SELECT card_no, name, phone, pin_hash, wrong_pins, no_pin_limit_fen FROM member WHERE park_id=? AND card_no=?",
            (park_id, card_no),
        ).fetchone()
        return None if row is None else MemberView(*row)

    def member_cards_by_phone(self, park_id, phone, limit: int) -> list[tuple]:
        """(card no, issuance, uid, name, state, fen, bonus, points) of the newest issuance of every
        member card on ``phone``; state is active, lost, blocked or returned."""
        return [(no, issuance, uid, name, "lost" if state == "blocked" and self.block_reason(park_id, no, issuance) == "LOST"
                 else state, fen, bonus, points)
                for no, issuance, uid, name, state, fen, bonus, points in self.db.execute(
                    """SELECT c.card_no, c.issuance, c.uid, m.name, c.state,
                              COALESCE(b.fen, 0), COALESCE(b.bonus, 0), COALESCE(b.points, 0)
                       FROM member m
                       JOIN card c ON c.park_id = m.park_id AND c.card_no = m.card_no
                        AND c.issuance = (SELECT MAX(issuance) FROM card WHERE park_id = m.park_id AND card_no = m.card_no)
                       LEFT JOIN card_balance b
                         ON b.park_id = c.park_id AND b.account_id = 'card:' || c.card_no || '/' || c.issuance
                       WHERE m.park_id=? AND m.phone=? ORDER BY c.card_no LIMIT ?""", (park_id, phone, limit))]

    def insert_member(self, park_id, card_no, name, phone, pin_hash, no_pin_limit_fen) -> None:
        self.db.execute("INSERT INTO member (park_id, card_no, name, phone, pin_hash, no_pin_limit_fen) VALUES (?, ?, ?, ?, ?, ?)",
                        (park_id, card_no, name, phone, pin_hash, no_pin_limit_fen))

    def set_member_wrong_pins(self, park_id, card_no, count) -> None:
        self.db.execute("UPDATE member SET wrong_pins=? WHERE park_id=? AND card_no=?", (count, park_id, card_no))

    def member_settings(self, park_id) -> tuple[bool, int, int]:
        """(bonus first?, points per yuan, default no-PIN limit in fen)."""
        row = self.db.execute(
            "SELECT bonus_first, points_per_yuan, no_pin_limit_fen FROM member_settings WHERE park_id=?", (park_id,)
        ).fetchone()
        return (bool(row[0]), row[1], row[2]) if row else (False, 1, 20000)

    def set_member_settings(self, park_id, *, bonus_first=False, points_per_yuan=1, no_pin_limit_fen=20000,
                            allow_transfer=False) -> None:
        with self.batch():
            self.db.execute("INSERT OR REPLACE INTO member_settings VALUES (?, ?, ?, ?, ?)",
                            (park_id, int(bonus_first), points_per_yuan, no_pin_limit_fen, int(allow_transfer)))

    def allows_member_transfer(self, park_id) -> bool:
        row = self.db.execute("SELECT allow_transfer FROM member_settings WHERE park_id=?", (park_id,)).fetchone()
        return bool(row and row[0])

    def bonus_rules(self, park_id) -> list[tuple[int, int]]:
        return self.db.execute(
            "SELECT min_topup_fen, bonus_fen FROM bonus_rule WHERE park_id=? ORDER BY min_topup_fen", (park_id,)
        ).fetchall()

    def campaigns(self, park_id, business_day: str | None = None) -> list[Campaign]:
        """The park's campaigns, latest first; with ``business_day`` only those running that day (read
        on every top-up and member sale, so that answer is kept for the batch: a handful of rows)."""
        key = ("campaigns", park_id, business_day)
        if business_day is None or key not in self._batch_cache:
            where = "" if business_day is None else "AND NOT is_ended AND first_day <= :day AND last_day >= :day"
            found = [Campaign(*row[:6], is_ended=bool(row[6])) for row in self.db.execute(
                f"""SELECT campaign_id, name, kind, multiplier_pct, first_day, last_day, is_ended FROM campaign
                    WHERE park_id = :park {where} ORDER BY first_day DESC, campaign_id""",
                {"park": park_id, "day": business_day})]
            if business_day is None:
                return found
            self._batch_cache[key] = found
        return self._batch_cache[key]

    def add_bonus_rule(self, park_id, min_topup_fen, bonus_fen) -> None:
        with self.batch():
            self.db.execute("INSERT OR REPLACE INTO bonus_rule VALUES (?, ?, ?)", (park_id, min_topup_fen, bonus_fen))

    def add_notification(self, park_id, card_no, phone, txn_id, body: dict, now_ms) -> None:
        self.db.execute(
            "INSERT INTO notification (park_id, card_no, phone, txn_id, body, created_ms) VALUES (?, ?, ?, ?, ?, ?)",
            (park_id, card_no, phone, txn_id, json.dumps(body, ensure_ascii=False), now_ms),
        )

    # ------------------------------------------------------------ staff and shifts
    def add_staff(self, park_id, staff_id, name, role, card_no, pin_hash) -> None:
        with self._adding(f"staff {staff_id} with card {card_no}"):
            self.db.execute(
                "INSERT INTO staff (park_id, staff_id, name, role, card_no, pin_hash) VALUES (?, ?, ?, ?, ?, ?)",
                (park_id, staff_id, name, role, card_no, pin_hash),
            )

    def staff_by_card(self, park_id, card_no) -> StaffView | None:
        row = self.db.execute(
            "SELECT staff_id, name, role, card_no, pin_hash, wrong_pins, is_active FROM staff WHERE park_id=? AND card_no=?",
            (park_id, card_no),
        ).fetchone()
        return None if row is None else StaffView(*row[:6], bool(row[6]))

    def set_wrong_pins(self, park_id, staff_id, count) -> None:
        self.db.execute("UPDATE staff SET wrong_pins=? WHERE park_id=? AND staff_id=?", (count, park_id, staff_id))

    def open_shift(self, park_id, terminal_id, staff_id, seq, now_ms) -> None:
        """Open a shift; a shift still open on the terminal (a reboot, a forgotten logout) is closed first."""
        self.close_shift(terminal_id, seq, now_ms, park_id=park_id, how="login")
        self._batch_cache.pop(("shift", terminal_id), None)
        self.db.execute(
            "INSERT INTO shift (park_id, terminal_id, staff_id, open_seq, opened_ms) VALUES (?, ?, ?, ?, ?)",
            (park_id, terminal_id, staff_id, seq, now_ms),
        )

    def close_shift(self, terminal_id, seq, now_ms, *, park_id=None, how: str = "close", txn_id=None,
                    cash_expected_fen=None, cash_counted_fen=None, business_day=None) -> str | None:
        """Close the shift open on the terminal at ``seq`` (its transactions are the seqs between its
        opening and this one), saying ``how`` (shift.closed_how); a handover also keeps its booked
        transaction and the cash expected and counted. The shift belongs to ``business_day``, by
        default the day a booking now goes to. Returns the staff id, None when none was open."""
        self._batch_cache.pop(("shift", terminal_id), None)
        if park_id is None:
            row = self.db.execute("SELECT park_id FROM shift WHERE terminal_id=? AND close_seq IS NULL", (terminal_id,)).fetchone()
            if row is None:
                return None
            park_id = row[0]
        row = self.db.execute(
            """UPDATE shift SET close_seq=?, closed_ms=?, closed_how=?, close_txn=?, business_day=?, cash_expected_fen=?,
                                cash_counted_fen=?
               WHERE terminal_id=? AND close_seq IS NULL RETURNING staff_id""",
            (seq, now_ms, how, txn_id, business_day or self.booking_day(park_id, now_ms), cash_expected_fen,
             cash_counted_fen, terminal_id),
        ).fetchone()
        return None if row is None else row[0]

    def shift_staff_role(self, terminal_id) -> tuple[str, str] | None:
        """(staff id, role) of the shift open on the terminal, or None. Read on every request, so
        kept for the batch (opening or closing a shift drops the kept answer)."""
        key = ("shift", terminal_id)
        if key not in self._batch_cache:
            self._batch_cache[key] = self._read_shift_staff_role(terminal_id)
        return self._batch_cache[key]

    def _read_shift_staff_role(self, terminal_id) -> tuple[str, str] | None:
        row = self.db.execute(
            """SELECT s.staff_id, f.role FROM shift s JOIN staff f ON f.park_id = s.park_id AND f.staff_id = s.staff_id
               WHERE s.terminal_id=? AND s.close_seq IS NULL""",
            (terminal_id,),
        ).fetchone()
        return None if row is None else tuple(row)

    def requires_shift(self, park_id) -> bool:
        key = ("require_shift", park_id)
        if key not in self._batch_cache:
            row = self.db.execute("SELECT require_shift FROM park_rule WHERE park_id=?", (park_id,)).fetchone()
            self._batch_cache[key] = bool(row and row[0])
        return self._batch_cache[key]

    def set_requires_shift(self, park_id, required: bool) -> None:
        with self.batch():
            self.db.execute("INSERT OR REPLACE INTO park_rule VALUES (?, ?)", (park_id, int(required)))

    def open_shift_staff(self, terminal_id) -> str | None:
        row = self.db.execute("SELECT staff_id FROM shift WHERE terminal_id=? AND close_seq IS NULL", (terminal_id,)).fetchone()
        return None if row is None else row[0]

    def open_shift_of(self, terminal_id) -> tuple[str, int, int] | None:
        """(staff id, opening seq, opened ms) of the shift open on the terminal, or None."""
        row = self.db.execute("SELECT staff_id, open_seq, opened_ms FROM shift WHERE terminal_id=? AND close_seq IS NULL",
                              (terminal_id,)).fetchone()
        return None if row is None else tuple(row)

    def shift_totals(self, park_id, terminal_id, after_seq: int, before_seq: int) -> ShiftTotals:
        """What the terminal booked between two seqs (a shift's), as its slip shows it."""
        return read_shift_totals(self.db, park_id, terminal_id, after_seq, before_seq)

    def open_shifts(self, park_id, *, opened_before_ms: int | None = None) -> list[tuple[str, str, int, int]]:
        """(terminal, staff id, opening seq, opened ms) of every shift still open, oldest first."""
        return [tuple(row) for row in self.db.execute(
            """SELECT terminal_id, staff_id, open_seq, opened_ms FROM shift
               WHERE park_id=? AND close_seq IS NULL AND opened_ms < ? ORDER BY opened_ms, terminal_id""",
            (park_id, MAX_TIME_MS if opened_before_ms is None else opened_before_ms))]

    def day_close(self, park_id, business_day) -> tuple[int, str, int] | None:
        """(closed ms, closed by, shifts the close ended) of a closed business day, or None while open."""
        row = self.db.execute("SELECT closed_ms, closed_by, forced_shifts FROM business_day_close WHERE park_id=? AND business_day=?",
                              (park_id, business_day)).fetchone()
        return None if row is None else tuple(row)

    def close_business_day(self, park_id, business_day: str, now_ms: int, closed_by: str, *,
                           force: bool = False) -> list[tuple[str, str, int, int]]:
        """日结: lock ``business_day`` for good. Whatever is booked from now on goes to the next open day
        (``booking_day``). Refused while a shift that began on or before that day is still open
        (ShiftsStillOpen lists them): its cashier has not counted the drawer, and its takings would
        straddle the line; ``force`` closes such shifts uncounted (a till switched off with someone
        still logged in) and returns them. Refused when the day is closed already (DayAlreadyClosed)
        or has not begun (DayNotBegun)."""
        today = self.business_day(park_id, now_ms)
        if business_day > today:
            raise DayNotBegun(f"business day {business_day} has not begun (today is {today}); nothing to close")
        with self.batch():
            if (closed := self.day_close(park_id, business_day)) is not None:
                raise DayAlreadyClosed(f"business day {business_day} was closed at "
                                       f"{local_time_text(closed[0], self._parks[park_id][0].key)} by {closed[1]}; "
                                       f"a closed day stays closed")
            zone, cutoff = self._parks[park_id]
            still_open = self.open_shifts(park_id, opened_before_ms=day_end_ms(business_day, zone.key, cutoff))
            if still_open and not force:
                raise ShiftsStillOpen(still_open)
            for terminal_id, _, _, _ in still_open:
                # Past every seq the ledger holds for it: what that till sent is the shift's. The
                # cashier's next request finds no shift and logs in again.
                self.close_shift(terminal_id, self.highest_seq(terminal_id) + 1, now_ms, park_id=park_id, how="day_close",
                                 business_day=business_day)
            self.db.execute("INSERT INTO business_day_close VALUES (?, ?, ?, ?, ?)",
                            (park_id, business_day, now_ms, closed_by, len(still_open)))
        return still_open

    # ------------------------------------------------------------ crash accounting (rare path)
    def count_attempts(self, in_flight: list[tuple[str, str]]) -> None:
        """Messages (sha256, topic) that were in flight when the ledger died get an attempt counted."""
        with self.batch():
            for sha, topic in in_flight:
                self.db.execute(
                    """INSERT INTO poison VALUES (?, 1, ?, NULL, NULL)
                       ON CONFLICT (payload_sha256) DO UPDATE SET attempts = attempts + 1""",
                    (sha, topic),
                )

    def poison_hashes(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT payload_sha256 FROM poison")}

    def attempts(self, payload_sha256) -> int:
        row = self.db.execute("SELECT attempts FROM poison WHERE payload_sha256=?", (payload_sha256,)).fetchone()
        return row[0] if row else 0

    def clear_attempts(self, payload_sha256) -> None:
        self.db.execute("DELETE FROM poison WHERE payload_sha256=? AND set_aside_ms IS NULL", (payload_sha256,))

    def set_aside(self, payload_sha256, topic, payload, detail, now_ms) -> None:
        """Hold a message for an operator (inside a batch): listed and re-applied with ``fieldpos
        ledger set-aside``, answered SET_ASIDE (not final: the terminal keeps it pending) meanwhile.
        Records a SET_ASIDE alert the first time."""
        where = topics.parse_request_topic(topic)
        terminal_id = where[1] if where is not None else None
        payload = without_pin_block(payload)
        seq = seq_of(payload)
        row = self.db.execute(
            """INSERT INTO set_aside (payload_sha256, topic, payload, terminal_id, seq, detail, set_aside_ms, state)
               VALUES (?, ?, ?, ?, ?, ?, ?, 'held')
               ON CONFLICT (payload_sha256) DO UPDATE SET state = 'held', detail = excluded.detail,
                 set_aside_ms = excluded.set_aside_ms, resolved_ms = NULL, outcome = NULL WHERE state <> 'held'
               RETURNING 1""",
            (payload_sha256, topic[:200], bytes(payload), terminal_id, seq, detail[:500], now_ms),
        ).fetchone()
        # The crash accounting's own record of it (older tools look there).
        self.db.execute(
            "UPDATE poison SET payload=?, set_aside_ms=COALESCE(set_aside_ms, ?) WHERE payload_sha256=?",
            (payload, now_ms, payload_sha256),
        )
        if row is not None:
            where_text = f"{terminal_id} seq {seq}" if terminal_id and seq is not None else topic[:80]
            self.record_alert(now_ms, "SET_ASIDE", f"{where_text} ({payload_sha256[:12]}) set aside: {detail[:300]}")

    def is_set_aside(self, payload_sha256) -> bool:
        """Is this message held for an operator? (Primary-key lookup: cheap on every request.)"""
        return self.db.execute(
            "SELECT 1 FROM set_aside WHERE payload_sha256=? AND state='held'", (payload_sha256,)
        ).fetchone() is not None

    def set_asides(self, *, held_only: bool = True) -> list[SetAside]:
        """Set-aside messages, oldest first."""
        return [SetAside(row[0], row[1], bytes(row[2]), *row[3:]) for row in self.db.execute(
            f"""SELECT payload_sha256, topic, payload, terminal_id, seq, detail, set_aside_ms, state FROM set_aside
                {"WHERE state = 'held'" if held_only else ""} ORDER BY set_aside_ms, payload_sha256""")]

    def resolve_set_aside(self, payload_sha256, state, outcome, now_ms) -> None:
        """Clear a hold (inside a batch): ``applied`` when the retry stored a final outcome under the
        seq, ``released`` when it was finally refused. Its crash count goes too: a re-send is handled
        as any other message again."""
        assert state in ("released", "applied"), state
        self.db.execute("UPDATE set_aside SET state=?, outcome=?, resolved_ms=? WHERE payload_sha256=?",
                        (state, outcome[:200], now_ms, payload_sha256))
        self.db.execute("DELETE FROM poison WHERE payload_sha256=?", (payload_sha256,))

    # ------------------------------------------------------------ the ledger's own starts
    def record_start(self, now_ms: int, window_ms: int) -> tuple[int, bool]:
        """Count this start of the ledger (inside a batch); returns (starts within ``window_ms``,
        this one included; whether the ledger ever started before)."""
        had_started = self.db.execute("SELECT 1 FROM ledger_start LIMIT 1").fetchone() is not None
        self.db.execute("DELETE FROM ledger_start WHERE time_ms < ?", (now_ms - STARTS_KEPT_MS,))
        self.db.execute("INSERT INTO ledger_start VALUES (?)", (now_ms,))
        (count,) = self.db.execute("SELECT COUNT(*) FROM ledger_start WHERE time_ms > ?", (now_ms - window_ms,)).fetchone()
        return count, had_started

    # ------------------------------------------------------------ station settings and the staff directory
    # What each till sells by, owned here and sent in every terminal's signed config (ledger.broadcasts).
    # Every change is written with note_config_change in its own batch, so that the serving ledger
    # (another process when an operator runs ``fieldpos station``/``staff``) re-publishes the configs.
    def station_settings(self, park_id, station_id) -> StationSettings | None:
        """How the station sells and when, or None for a station the park does not have."""
        row = self.db.execute(
            """SELECT s.name, COALESCE(x.mode, 'free'), x.opens, x.closes FROM station s
               LEFT JOIN station_sales x ON x.park_id = s.park_id AND x.station_id = s.station_id
               WHERE s.park_id=? AND s.station_id=?""", (park_id, station_id)).fetchone()
        if row is None:
            return None
        menu = tuple(MenuItem(item=item_id, name=name, price_fen=price_fen) for item_id, name, price_fen in self.db.execute(
            "SELECT item_id, name, price_fen FROM menu_item WHERE park_id=? AND station_id=? ORDER BY position",
            (park_id, station_id)))
        return StationSettings(name=row[0], mode=row[1], menu=menu, opens=row[2], closes=row[3])

    def set_station_settings(self, park_id, station_id, settings: StationSettings) -> None:
        """Replace the station's mode, hours and menu with ``settings`` (already validated by building it)."""
        with self.batch():
            if self.db.execute("SELECT 1 FROM station WHERE park_id=? AND station_id=?", (park_id, station_id)).fetchone() is None:
                raise NotFound(f"station {station_id} is not in park {park_id}")
            self.db.execute("INSERT OR REPLACE INTO station_sales VALUES (?, ?, ?, ?, ?)",
                            (park_id, station_id, settings.mode, settings.opens, settings.closes))
            self.db.execute("DELETE FROM menu_item WHERE park_id=? AND station_id=?", (park_id, station_id))
            self.db.executemany("INSERT INTO menu_item VALUES (?, ?, ?, ?, ?, ?)", [
                (park_id, station_id, item.item, item.name, item.price_fen, position)
                for position, item in enumerate(settings.menu, start=1)])
            self.note_config_change(park_id)

    def staff_members(self, park_id, *, active_only: bool = True) -> list[tuple[str, str, str, str, bool]]:
        """(staff id, name, role, card number, is active) by staff id: never a PIN hash."""
        return [(*row[:4], bool(row[4])) for row in self.db.execute(
            f"""SELECT staff_id, name, role, card_no, is_active FROM staff WHERE park_id=?
                {"AND is_active" if active_only else ""} ORDER BY staff_id""", (park_id,))]

    def staff_directory(self, park_id) -> tuple[StaffEntry, ...]:
        """The park's active staff as every till gets them (who may log in, and their names)."""
        return tuple(StaffEntry(staff=staff_id, name=name, role=role, card_no=card_no)
                     for staff_id, name, role, card_no, _ in self.staff_members(park_id))

    def set_staff_member(self, park_id, staff_id, *, name: str, role: str, is_active: bool) -> None:
        with self.batch():
            updated = self.db.execute("UPDATE staff SET name=?, role=?, is_active=? WHERE park_id=? AND staff_id=?",
                                      (name, role, int(is_active), park_id, staff_id)).rowcount
            if not updated:
                raise NotFound(f"no staff member {staff_id} in park {park_id}")
            self.note_config_change(park_id)

    def note_config_change(self, park_id) -> None:
        """Count a change to what the park's configs carry (inside the batch that makes it)."""
        self.db.execute("""INSERT INTO config_change VALUES (?, 1)
                           ON CONFLICT (park_id) DO UPDATE SET version = version + 1""", (park_id,))

    def config_change_version(self, park_id) -> int:
        """How many config changes the park has had: read on every broadcast turn (a primary-key lookup)."""
        row = self.db.execute("SELECT version FROM config_change WHERE park_id=?", (park_id,)).fetchone()
        return 0 if row is None else row[0]

    # ------------------------------------------------------------ rentals (issue 13)
    # Set by Intake (or the online-payment entry) from the ledger's keys: rental rules sign and
    # check vouchers with it. None for a store opened only to read.
    voucher_key = None

    def add_rental_type(self, park_id, item_type: RentalType) -> None:
        damage = json.dumps([[fee.code, fee.name, fee.fee_fen] for fee in item_type.damage], ensure_ascii=False)
        with self._adding(f"rental item type {item_type.item_type}"):
            self.db.execute(
                "INSERT INTO rental_type VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (park_id, item_type.item_type, item_type.name, item_type.deposit_fen, item_type.price_fen,
                 item_type.price_per, item_type.allowed_minutes, item_type.grace_minutes,
                 item_type.late_fee_per_hour_fen, item_type.lost_fee_fen, damage))
            self.note_config_change(park_id)

    def rental_types(self, park_id) -> list[RentalType]:
        return [self._rental_type(row) for row in self.db.execute(
            "SELECT * FROM rental_type WHERE park_id=? ORDER BY item_type", (park_id,))]

    def rental_type(self, park_id, item_type) -> RentalType | None:
        row = self.db.execute("SELECT * FROM rental_type WHERE park_id=? AND item_type=?", (park_id, item_type)).fetchone()
        return None if row is None else self._rental_type(row)

    @staticmethod
    def _rental_type(row) -> RentalType:
        return RentalType(item_type=row[1], name=row[2], deposit_fen=row[3], price_fen=row[4], price_per=row[5],
                          allowed_minutes=row[6], grace_minutes=row[7], late_fee_per_hour_fen=row[8],
                          lost_fee_fen=row[9],
                          damage=tuple(DamageFee(code=c, name=n, fee_fen=f) for c, n, f in json.loads(row[10])))

    def add_rental_item(self, park_id, label, station_id, item_type, now_ms) -> None:
        with self._adding(f"rental item {label}"):
            self.db.execute("INSERT INTO rental_item VALUES (?, ?, ?, ?, 'available', ?)",
                            (park_id, label, station_id, item_type, now_ms))
            self.note_config_change(park_id)

    def set_rental_item_state(self, park_id, label, state, *, when_not=()) -> None:
        """An operator's change (repair, back from repair, retire); refuses an item that is out."""
        with self.batch():
            row = self.db.execute("SELECT state FROM rental_item WHERE park_id=? AND label=?", (park_id, label)).fetchone()
            if row is None:
                raise NotFound(f"no rental item {label} in park {park_id}")
            if row[0] in when_not:
                raise AlreadyExists(f"rental item {label} is {row[0]}; nothing changed")
            self.db.execute("UPDATE rental_item SET state=? WHERE park_id=? AND label=?", (state, park_id, label))
            self.note_config_change(park_id)

    def rental_items(self, park_id, station_id=None) -> list[tuple[str, str, str, str]]:
        """(label, station, item type, state) by label."""
        return self.db.execute(
            f"""SELECT label, station_id, item_type, state FROM rental_item WHERE park_id=?
                {"AND station_id=?" if station_id else ""} ORDER BY label""",
            (park_id, station_id) if station_id else (park_id,)).fetchall()

    def rental_item(self, park_id, label) -> rentals.ItemView | None:
        self.lock((f"rental_item:{park_id}:{label}",))
        row = self.db.execute("SELECT label, station_id, item_type, state FROM rental_item WHERE park_id=? AND label=?",
                              (park_id, label)).fetchone()
        return None if row is None else rentals.ItemView(*row)

    def rental_stock(self, park_id, station_id) -> RentalStock | None:
        """The config part of a rental station (one with items), else None."""
        items = [row for row in self.rental_items(park_id, station_id) if row[3] != "retired"]
        if not items:
            return None
        used = {row[2] for row in items}
        return RentalStock(item_types=tuple(t for t in self.rental_types(park_id) if t.item_type in used),
                           items=tuple(RentalItem(label=label, item_type=kind, state=state)
                                       for label, _, kind, state in items))

    _ORDER_COLUMNS = """order_no, item_type, deposit_fen, route, payer_account, payment_ref, transaction_id,
                        is_member, state, held_ms, expires_ms, item_label, station_id, out_ms"""

    def _order(self, row) -> rentals.OrderView | None:
        return None if row is None else rentals.OrderView(*row[:7], bool(row[7]), *row[8:])

    def deposit_order(self, park_id, order_no) -> rentals.OrderView | None:
        self.lock((f"deposit:{park_id}:{order_no}",))  # its state decides a hand-out or a return
        return self._order(self.db.execute(f"SELECT {self._ORDER_COLUMNS} FROM deposit_order WHERE park_id=? AND order_no=?",
                                           (park_id, order_no)).fetchone())

    def deposit_out_by_label(self, park_id, label) -> rentals.OrderView | None:
        self.lock((f"rental_item:{park_id}:{label}",))
        return self._order(self.db.execute(
            f"SELECT {self._ORDER_COLUMNS} FROM deposit_order WHERE park_id=? AND item_label=? AND state='out'",
            (park_id, label)).fetchone())

    def open_deposits(self, park_id, *, older_than_ms=None) -> list[rentals.OrderView]:
        where = "" if older_than_ms is None else f"AND held_ms < {int(older_than_ms)}"
        return [self._order(row) for row in self.db.execute(
            f"""SELECT {self._ORDER_COLUMNS} FROM deposit_order WHERE park_id=? AND state IN ('held', 'out') {where}
                ORDER BY order_no""", (park_id,))]

    def open_deposits_of(self, park_id, payer_account, limit: int) -> list[rentals.OrderView]:
        """The oldest ``limit`` open orders (held, or their item out) ``payer_account`` paid."""
        return [self._order(row) for row in self.db.execute(
            f"""SELECT {self._ORDER_COLUMNS} FROM deposit_order WHERE park_id=? AND payer_account=?
                AND state IN ('held', 'out') ORDER BY order_no LIMIT ?""", (park_id, payer_account, int(limit)))]

    def online_deposit(self, park_id, route, provider_order) -> rentals.OrderView | None:
        return self._order(self.db.execute(
            f"SELECT {self._ORDER_COLUMNS} FROM deposit_order WHERE park_id=? AND route=? AND payment_ref=?",
            (park_id, route, provider_order)).fetchone())

    def next_deposit_order_no(self, park_id) -> int:
        self.lock((f"deposit_order_no:{park_id}",))  # MAX + 1: one writer at a time
        return self.db.execute("SELECT COALESCE(MAX(order_no), 0) + 1 FROM deposit_order WHERE park_id=?",
                               (park_id,)).fetchone()[0]

    def open_deposit_count(self, park_id, payer_account) -> int:
        return self.db.execute(
            "SELECT COUNT(*) FROM deposit_order WHERE park_id=? AND payer_account=? AND state IN ('held', 'out')",
            (park_id, payer_account)).fetchone()[0]

    def first_redemption(self, park_id, order_no) -> str | None:
        """"first redeemed <local time> at <terminal>" of an order's voucher, or None."""
        row = self.db.execute(
            """SELECT redeemed_ms, terminal_id FROM voucher_redemption WHERE park_id=? AND order_no=?
               ORDER BY redeemed_ms, seq LIMIT 1""", (park_id, order_no)).fetchone()
        if row is None:
            return None
        self.business_day(park_id, 0)  # loads the park's time zone
        local = datetime.fromtimestamp(row[0] / 1000, self._parks[park_id][0])
        return f"first redeemed {local:%Y-%m-%d %H:%M:%S} at {row[1]}"

    def is_flagged_out(self, park_id, label) -> bool:
        """The item is out on a flagged (second, offline) redemption."""
        row = self.db.execute("SELECT state FROM rental_item WHERE park_id=? AND label=?", (park_id, label)).fetchone()
        return row is not None and row[0] == "out" and self.db.execute(
            "SELECT 1 FROM voucher_redemption WHERE park_id=? AND item_label=? AND is_flagged", (park_id, label)
        ).fetchone() is not None

    def apply_rental(self, park_id, effect, txn_id, terminal_id, seq, now_ms) -> None:
        """Write a rental rule's effect once its transaction is booked (inside apply)."""
        if isinstance(effect, rentals.NewHold):
            self.db.execute(
                """INSERT INTO deposit_order (park_id, order_no, item_type, deposit_fen, route, payer_account, payment_ref,
                       transaction_id, is_member, state, held_txn, held_ms, expires_ms)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'held', ?, ?, ?)""",
                (park_id, effect.order_no, effect.item_type, effect.deposit_fen, effect.route, effect.payer_account,
                 effect.payment_ref, effect.transaction_id, int(effect.is_member), txn_id, now_ms, effect.expires_ms))
        elif isinstance(effect, rentals.HandOut):
            self.db.execute("INSERT INTO voucher_redemption VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (park_id, effect.order_no, terminal_id, seq, effect.redeemed_ms, int(effect.is_offline),
                             effect.item_label, int(effect.is_flagged)))
            if not effect.is_flagged:
                self.db.execute("""UPDATE deposit_order SET state='out', item_label=?, station_id=?, out_ms=?
                                   WHERE park_id=? AND order_no=?""",
                                (effect.item_label, effect.station_id, effect.redeemed_ms, park_id, effect.order_no))
            self.db.execute("UPDATE rental_item SET state='out' WHERE park_id=? AND label=?", (park_id, effect.item_label))
        elif isinstance(effect, rentals.Close):
            self.db.execute("UPDATE rental_item SET state=? WHERE park_id=? AND label=?",
                            (effect.item_state, park_id, effect.item_label))
            if effect.order_no is None:
                self.db.execute("UPDATE voucher_redemption SET is_flagged=2 WHERE park_id=? AND item_label=? AND is_flagged=1",
                                (park_id, effect.item_label))  # 2: flagged, and the item is back
                return
            self.db.execute(
                """UPDATE deposit_order SET state='closed', closed_txn=?, closed_ms=?, condition=?, rental_fen=?,
                       late_fen=?, damage_fen=?, refunded_fen=?, claim_fen=? WHERE park_id=? AND order_no=?""",
                (txn_id, now_ms, effect.condition, effect.rental_fen, effect.late_fen, effect.damage_fen,
                 effect.refunded_fen, effect.claim_fen, park_id, effect.order_no))
            self._add_up_rental(park_id, effect.order_no, self.booking_day(park_id, now_ms))
            if effect.claim_fen:
                self.db.execute("INSERT INTO rental_claim VALUES (?, ?, ?, ?, ?)",
                                (park_id, effect.order_no, effect.claim_fen, effect.claim_card_account, now_ms))
            order = self.db.execute("SELECT payment_ref, transaction_id, deposit_fen, route, item_type FROM deposit_order "
                                    "WHERE park_id=? AND order_no=?", (park_id, effect.order_no)).fetchone()
            if effect.refund_to_provider is not None:
                self.db.execute(
                    "INSERT INTO refund_request (park_id, refund_no, order_no, provider, provider_order, transaction_id, "
                    "amount_fen, total_fen, state, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
                    (park_id, f"RF{rentals.order_id(effect.order_no)}", effect.order_no, effect.refund_to_provider,
                     order[0], order[1], effect.refunded_fen, order[2], now_ms))
            if order[3].startswith("online_"):  # an online renter has no card to be told on: their payment
                self.add_renter_notification(park_id, effect.order_no, "returned",
                                             f"{order[3].removeprefix('online_')}:{order[0]}", {
                    "kind": "renter_return", "order": rentals.order_id(effect.order_no), "item_type": order[4],
                    "condition": effect.condition, "deposit_fen": order[2], "rental_fen": effect.rental_fen,
                    "late_fen": effect.late_fen, "damage_fen": effect.damage_fen, "refunded_fen": effect.refunded_fen,
                    "claim_fen": effect.claim_fen, "method": order[3].removeprefix("online_"), "time_ms": now_ms}, now_ms)
        elif isinstance(effect, rentals.Forfeit):
            self.db.execute("UPDATE deposit_order SET state='forfeited', closed_txn=?, closed_ms=? WHERE park_id=? AND order_no=?",
                            (txn_id, now_ms, park_id, effect.order_no))
            if effect.item_label is not None:
                self.db.execute("UPDATE rental_item SET state='retired' WHERE park_id=? AND label=?",
                                (park_id, effect.item_label))
        else:
            raise TypeError(f"not a rental effect: {effect!r}")

    def twice_redeemed_vouchers(self, park_id) -> list[tuple[str, list]]:
        """(order, [(terminal, redeemed ms, item label), ...] first to last) of every voucher redeemed
        more than once: the exposure report lists them."""
        found: dict[int, list] = {}
        for order_no, terminal, redeemed_ms, label in self.db.execute(
                """SELECT order_no, terminal_id, redeemed_ms, item_label FROM voucher_redemption
                   WHERE park_id=? AND order_no IN (SELECT order_no FROM voucher_redemption WHERE park_id=? AND is_flagged)
                   ORDER BY order_no, redeemed_ms, seq""", (park_id, park_id)):
            found.setdefault(order_no, []).append((terminal, redeemed_ms, label))
        return [(rentals.order_id(order_no), redemptions) for order_no, redemptions in found.items()]

    def _add_up_rental(self, park_id, order_no, business_day) -> None:
        """Count a returned rental in its day's rows (migration 17): the rental report reads those."""
        where = "FROM deposit_order o WHERE o.park_id = ? AND o.order_no = ? AND o.out_ms IS NOT NULL"
        self.db.execute(
            f"""INSERT INTO rental_day SELECT o.park_id, ?, o.station_id, o.item_label, o.item_type, 1,
                       o.closed_ms - o.out_ms, o.rental_fen, o.late_fen > 0, o.damage_fen > 0 {where}
                ON CONFLICT (park_id, business_day, station_id, item_label) DO UPDATE SET rentals = rentals + 1,
                   out_ms = out_ms + excluded.out_ms, rental_fen = rental_fen + excluded.rental_fen,
                   late = late + excluded.late, damaged = damaged + excluded.damaged""",
            (business_day, park_id, order_no))
        self.db.execute(
            f"""INSERT INTO rental_day_slot SELECT o.park_id, ?, o.station_id, o.out_ms / 900000, 1 {where}
                ON CONFLICT (park_id, business_day, station_id, slot) DO UPDATE SET rentals = rentals + 1""",
            (business_day, park_id, order_no))
        self.db.execute(
            f"""INSERT INTO rental_day_by_renter SELECT o.park_id, ?, o.station_id,
                       CASE WHEN o.route = 'card' AND o.is_member <> 0 THEN 'member' WHEN o.route = 'card' THEN 'temporary'
                            WHEN o.route LIKE 'online_%' THEN 'online' ELSE 'desk' END,
                       1, o.closed_ms - o.out_ms {where}
                ON CONFLICT (park_id, business_day, station_id, renter) DO UPDATE SET
                   rentals = rentals + 1, out_ms = out_ms + excluded.out_ms""",
            (business_day, park_id, order_no))
        card = self.db.execute(f"SELECT o.station_id, o.is_member, o.payer_account {where} AND o.route = 'card'",
                               (park_id, order_no)).fetchone()
        if card is not None:
            renter = "member" if card[1] else "temporary"
            for scope in (card[0], ""):  # the station's chain and the whole park's
                self._chain_card_day(park_id, scope, renter, card[2], business_day)

    def _chain_card_day(self, park_id, scope, renter, payer_account, business_day) -> None:
        """Count a card's rental on ``business_day`` in its chain of days with rentals (rental_card_day):
        a new day is linked between the card's days before and after it, as a day may come in after a
        later one (an offline return uploaded days after)."""
        key = "park_id=? AND scope=? AND renter=? AND payer_account=?"
        card = (park_id, scope, renter, payer_account)
        if self.db.execute(f"UPDATE rental_card_day SET rentals = rentals + 1 WHERE {key} AND business_day=?",
                           (*card, business_day)).rowcount:
            return
        before = self.db.execute(f"SELECT MAX(business_day) FROM rental_card_day WHERE {key} AND business_day < ?",
                                 (*card, business_day)).fetchone()[0]
        after = self.db.execute(f"SELECT MIN(business_day) FROM rental_card_day WHERE {key} AND business_day > ?",
                                (*card, business_day)).fetchone()[0]
        self.db.execute("INSERT INTO rental_card_day VALUES (?, ?, ?, ?, ?, 1, ?, ?)", (*card, business_day, before, after))
        if before is not None:
            self.db.execute(f"UPDATE rental_card_day SET next_day=? WHERE {key} AND business_day=?",
                            (business_day, *card, before))
        if after is not None:
            self.db.execute(f"UPDATE rental_card_day SET prev_day=? WHERE {key} AND business_day=?",
                            (business_day, *card, after))

    _REFUND_COLUMNS = "refund_no, provider, provider_order, transaction_id, amount_fen, total_fen, order_no"

    def _refund(self, row) -> tuple:
        return (*row[:6], rentals.order_id(row[6]) if row[6] else "")  # order 0: a stray payment's refund

    def pending_refunds(self, park_id) -> list[tuple]:
        """(refund_no, provider, provider_order, transaction_id, amount_fen, total_fen, order) not yet
        paid and not refused for good (those wait for an operator)."""
        return [self._refund(row) for row in self.db.execute(
            f"""SELECT {self._REFUND_COLUMNS} FROM refund_request WHERE park_id=? AND state='pending'
                AND failed_code IS NULL ORDER BY created_ms, refund_no""", (park_id,))]

    def owed_refund(self, park_id, refund_no) -> tuple | None:
        """A refund not yet paid, refused for good or not (a late provider success still counts)."""
        row = self.db.execute(f"SELECT {self._REFUND_COLUMNS} FROM refund_request WHERE park_id=? AND refund_no=? "
                              "AND state='pending'", (park_id, refund_no)).fetchone()
        return None if row is None else self._refund(row)

    def refund_done(self, park_id, refund_no, provider_refund_id, now_ms, *, cash_txn=None) -> bool:
        """Mark a refund paid (by the provider, or in cash at the desk with ``cash_txn``); False when
        it was already (a duplicate refund notification). An online renter is told how."""
        done = self.db.execute(
            """UPDATE refund_request SET state='done', provider_refund_id=?, done_ms=?, cash_txn=?
               WHERE park_id=? AND refund_no=? AND state='pending'""",
            (provider_refund_id, now_ms, cash_txn, park_id, refund_no)).rowcount == 1
        if done:
            order_no, provider, provider_order, amount_fen = self.db.execute(
                "SELECT order_no, provider, provider_order, amount_fen FROM refund_request WHERE park_id=? AND refund_no=?",
                (park_id, refund_no)).fetchone()
            if order_no:
                self.add_renter_notification(park_id, order_no, "refunded", f"{provider}:{provider_order}", {
                    "kind": "renter_refund", "order": rentals.order_id(order_no), "refunded_fen": amount_fen,
                    "method": "cash" if cash_txn is not None else provider, "time_ms": now_ms}, now_ms)
        return done

    def refund_failed(self, park_id, refund_no, code, now_ms) -> bool:
        """The provider refused a refund for good: no more rounds until an operator acts. False when
        it is paid or already marked."""
        return self.db.execute(
            """UPDATE refund_request SET failed_code=?, failed_ms=? WHERE park_id=? AND refund_no=?
               AND state='pending' AND failed_code IS NULL""", (code[:40], now_ms, park_id, refund_no)).rowcount == 1

    def retry_refund(self, park_id, refund_no) -> bool:
        """A failed refund goes to the provider again next round (same number); False if not failed."""
        return self.db.execute(
            """UPDATE refund_request SET failed_code=NULL, failed_ms=NULL WHERE park_id=? AND refund_no=?
               AND state='pending' AND failed_code IS NOT NULL""", (park_id, refund_no)).rowcount == 1

    def refund_requests(self, park_id, *, open_only: bool) -> list[tuple]:
        """(refund_no, order, provider, provider_order, amount_fen, state, failed_code, failed_ms,
        created_ms, done_ms, paid in cash) — oldest first; ``open_only``: not paid yet."""
        return [(row[0], rentals.order_id(row[1]) if row[1] else "", *row[2:10], row[10] is not None)
                for row in self.db.execute(
                    f"""SELECT refund_no, order_no, provider, provider_order, amount_fen, state, failed_code, failed_ms,
                               created_ms, done_ms, cash_txn FROM refund_request
                         WHERE park_id=? {"AND state='pending'" if open_only else ""} ORDER BY created_ms, refund_no""",
                    (park_id,))]

    def add_stray_payment(self, park_id, provider, provider_order, transaction_id, item_type, amount_fen, reason,
                          paid_ms, now_ms) -> str | None:
        """Record a paid order that is no deposit and owe its whole amount back; returns its refund
        number, or None when it was recorded before (a notification delivered again)."""
        if self.db.execute("SELECT 1 FROM stray_payment WHERE park_id=? AND provider=? AND provider_order=?",
                           (park_id, provider, provider_order)).fetchone() is not None:
            return None
        number = self.db.execute("SELECT COUNT(*) + 1 FROM stray_payment WHERE park_id=?", (park_id,)).fetchone()[0]
        refund_no = f"RX{number}"
        self.db.execute("INSERT INTO stray_payment VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (park_id, provider, provider_order, transaction_id, item_type, amount_fen, reason, paid_ms,
                         now_ms, refund_no))
        self.db.execute("INSERT INTO refund_request (park_id, refund_no, order_no, provider, provider_order, "
                        "transaction_id, amount_fen, total_fen, state, created_ms) VALUES (?, ?, 0, ?, ?, ?, ?, ?, "
                        "'pending', ?)", (park_id, refund_no, provider, provider_order, transaction_id, amount_fen,
                                          amount_fen, now_ms))
        return refund_no

    def add_renter_notification(self, park_id, order_no, event, address, body: dict, now_ms) -> None:
        """Tell an online renter (by their payment's address); once per order and event."""
        self.db.execute(
            "INSERT INTO renter_notification (park_id, order_no, event, address, body, created_ms) VALUES "
            "(?, ?, ?, ?, ?, ?) ON CONFLICT (park_id, order_no, event) DO NOTHING",
            (park_id, order_no, event, address, json.dumps(body, ensure_ascii=False), now_ms))

    # ------------------------------------------------------------ e-cards (issue 17)
    def add_ecard(self, park_id, card_no, issuance, device_key: bytes, opened_ms, expires_ms) -> None:
        self.db.execute("INSERT INTO ecard (park_id, card_no, issuance, device_key, opened_ms, expires_ms) VALUES (?, ?, ?, ?, ?, ?)",
                        (park_id, card_no, issuance, bytes(device_key), opened_ms, expires_ms))

    def ecard(self, park_id, card_no, issuance) -> tuple[bytes, int, int] | None:
        """(device key, expires_ms, last accepted window) of an e-card, or None."""
        row = self.db.execute("SELECT device_key, expires_ms, last_window FROM ecard WHERE park_id=? AND card_no=? AND issuance=?",
                              (park_id, card_no, issuance)).fetchone()
        return None if row is None else (bytes(row[0]), row[1], row[2])

    def use_ecard_window(self, park_id, card_no, issuance, window: int) -> bool:
        """Record ``window`` as the e-card's last used one; False when it (or a later one) was used."""
        return self.db.execute("UPDATE ecard SET last_window=? WHERE park_id=? AND card_no=? AND issuance=? AND last_window < ?",
                               (window, park_id, card_no, issuance, window)).rowcount == 1

    def next_ecard_no(self, park_id, prefix: str) -> str:
        """The next free e-card number: ``prefix`` and six digits (E000001, E000002, ...)."""
        self.lock((f"ecard_no:{park_id}",))  # MAX + 1: one writer at a time
        row = self.db.execute("SELECT MAX(card_no) FROM card WHERE park_id=? AND card_no GLOB ?",
                              (park_id, prefix + "[0-9][0-9][0-9][0-9][0-9][0-9]")).fetchone()
        return f"{prefix}{(int(row[0][len(prefix):]) + 1) if row[0] else 1:06d}"

    def set_member_pin(self, park_id, card_no, pin_hash) -> None:
        """A member's new PIN hash (ledger.pins), its wrong tries cleared."""
        self.db.execute("UPDATE member SET pin_hash=?, wrong_pins=0 WHERE park_id=? AND card_no=?", (pin_hash, park_id, card_no))
