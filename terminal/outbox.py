"""The terminal's durable outbox: sequence numbers and every signed request, on disk before sending.

``(terminal, seq)`` is the ledger's idempotency key forever, so a seq must never be handed out
twice — not after a crash, a power cut or a restored SD card. The counter and the signed payload
are written in one fsync'd SQLite commit before the first byte goes to the network; a request
leaves the pending set only when its signed Result is in.
"""

from dataclasses import dataclass
import functools
import logging
import sqlite3
import threading
from typing import Callable

from .errors import TerminalError

log = logging.getLogger("fieldpos.terminal.outbox")

# What a full or failing SD card raises: SQLite's own errors ("database or disk is full", "disk I/O
# error") and the operating system's (ENOSPC, EIO) when a file is opened or synced.
STORAGE_ERRORS = (sqlite3.Error, OSError)


class OutboxFullError(TerminalError):
    """Too many requests are waiting for the ledger: stop selling and get the station online."""

    code = "OUTBOX_FULL"


# A station selling offline for a whole day makes a few hundred sales; this is several days' worth
# and still a small file on an SD card.
MAX_PENDING = 10_000


@dataclass(frozen=True, slots=True)
class PendingRequest:
    seq: int
    payload: bytes
    request_sha256: str


def _locked(method):
    """One connection is shared by the app, paho's network thread and the uploader: each method
    runs whole under the lock, so no thread's statement lands inside another's transaction."""

    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with self.lock:
            return method(self, *args, **kwargs)

    return locked


class Outbox:
    def __init__(self, path, *, max_pending: int = MAX_PENDING):
        self.max_pending = max_pending
        self.lock = threading.RLock()
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = FULL")
        self.db.executescript(
            """
            CREATE TABLE IF NOT EXISTS counter (one INTEGER PRIMARY KEY CHECK (one = 1), last_seq INTEGER NOT NULL);
            INSERT OR IGNORE INTO counter VALUES (1, 0);
            CREATE TABLE IF NOT EXISTS outbox (
                seq            INTEGER PRIMARY KEY,
                payload        BLOB NOT NULL,
                request_sha256 TEXT NOT NULL UNIQUE,
                result         BLOB,          -- the signed Result, once it is in
                created_ms     INTEGER NOT NULL,
                printed_ms     INTEGER        -- NULL until its receipt is out (or it needs none)
            );
            """
        )
        # Results go through a second connection that does not fsync each commit: a Result lost
        # to a power cut is harmless (the request is re-sent and the ledger replays the same Result),
        # while an fsync per Result made draining a long offline queue three times slower.
        self._results_db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._results_db.execute("PRAGMA synchronous = NORMAL")

    @_locked
    def close(self) -> None:
        self._results_db.close()
        self.db.close()

    @property
    @_locked
    def last_seq(self) -> int:
        return self.db.execute("SELECT last_seq FROM counter").fetchone()[0]

    @_locked
    def skip_past(self, highest_seq_at_ledger: int) -> None:
        """Never reuse a seq the ledger already holds (restored SD card, swapped board)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute("UPDATE counter SET last_seq = MAX(last_seq, ?)", (highest_seq_at_ledger,))
            self.db.execute("COMMIT")
        except BaseException:
            self._roll_back()
            raise

    def _roll_back(self) -> None:
        """Undo an unfinished transaction without hiding why it failed. SQLite rolls a transaction
        back by itself on some errors (a full disk at COMMIT): a second ROLLBACK then raises
        "cannot rollback - no transaction is active", which would replace the real error."""
        if not self.db.in_transaction:
            return
        try:
            self.db.execute("ROLLBACK")
        except sqlite3.Error:
            log.warning("rollback after a failed write also failed", exc_info=True)

    @_locked
    def append(self, build: Callable[[int], tuple[bytes, str]], now_ms: int, *, replaces_seq: int | None = None) -> PendingRequest:
        """Take the next seq, let ``build(seq)`` sign the request, and store both durably.
        ``replaces_seq``: an earlier request this one replaces (an offline sale superseding an
        unanswered online attempt) — in the same commit it is marked as needing no receipt of its
        own, so a late approval of it never prints a second receipt for one sale."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            if self.pending_count() >= self.max_pending:
                raise OutboxFullError(f"{self.max_pending} requests are waiting for the ledger")
            seq = self.last_seq + 1
            payload, request_sha256 = build(seq)
            self.db.execute("UPDATE counter SET last_seq = ?", (seq,))
            self.db.execute(
                "INSERT INTO outbox (seq, payload, request_sha256, created_ms) VALUES (?, ?, ?, ?)",
                (seq, payload, request_sha256, now_ms),
            )
            if replaces_seq is not None:
                self.db.execute("UPDATE outbox SET printed_ms = ? WHERE seq = ?", (now_ms, replaces_seq))
            self.db.execute("COMMIT")
        except BaseException:
            self._roll_back()
            raise
        return PendingRequest(seq, payload, request_sha256)

    @_locked
    def complete(self, request_sha256: str, result: bytes) -> int | None:
        """Store the Result for a request; returns its seq, or None if it is not ours or done already."""
        row = self._results_db.execute(
            "UPDATE outbox SET result = ? WHERE request_sha256 = ? AND result IS NULL RETURNING seq", (result, request_sha256)
        ).fetchone()
        return None if row is None else row[0]

    @_locked
    def pending(self) -> list[PendingRequest]:
        return [
            PendingRequest(*row)
            for row in self.db.execute("SELECT seq, payload, request_sha256 FROM outbox WHERE result IS NULL ORDER BY seq")
        ]

    @_locked
    def oldest_pending_ms(self) -> int | None:
        return self.db.execute("SELECT MIN(created_ms) FROM outbox WHERE result IS NULL").fetchone()[0]

    @_locked
    def pending_count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM outbox WHERE result IS NULL").fetchone()[0]

    @_locked
    def mark_printed(self, seq: int, now_ms: int) -> None:
        self.db.execute("UPDATE outbox SET printed_ms = ? WHERE seq = ?", (now_ms, seq))

    @_locked
    def unprinted(self) -> list[tuple[int, bytes, bytes | None]]:
        """(seq, request payload, Result payload or None) of requests whose receipt is not out."""
        return [
            (seq, bytes(payload), None if result is None else bytes(result))
            for seq, payload, result in self.db.execute(
                "SELECT seq, payload, result FROM outbox WHERE printed_ms IS NULL ORDER BY seq"
            )
        ]

    @_locked
    def answered(self, limit: int) -> list[tuple[bytes, bytes]]:
        """(request payload, Result payload) of the newest ``limit`` answered requests, newest first."""
        return [(bytes(payload), bytes(result)) for payload, result in self.db.execute(
            "SELECT payload, result FROM outbox WHERE result IS NOT NULL ORDER BY seq DESC LIMIT ?", (limit,))]

    @_locked
    def result_for(self, seq: int) -> bytes | None:
        row = self.db.execute("SELECT result FROM outbox WHERE seq = ?", (seq,)).fetchone()
        return None if row is None or row[0] is None else bytes(row[0])
