"""Console users, their sessions, and the login rules: argon2id password hashes, a lockout after
repeated wrong passwords, a rate limit per client address, server-side sessions (the cookie holds a
random token, the database only its SHA-256) each with its own CSRF token.

Every change to a user is written to the audit log in the same transaction as the change itself.
"""

from contextlib import contextmanager
from dataclasses import dataclass
import hashlib
import json
from pathlib import Path
import re
import secrets
import sqlite3
import time

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .console_schema import MIGRATIONS, ROLES
from .errors import AccountLocked, BadUser, LoginRefused, NoSuchUser, TooManyAttempts, UserExists

CONSOLE_DB_NAME = "console.db"

# Five wrong passwords lock an account for a quarter of an hour (OWASP: lockout with a time-out,
# not forever, so an attacker cannot lock staff out for the day by trying their names).
MAX_FAILED_LOGINS = 5
LOCKOUT_MS = 15 * 60 * 1000
# Per client address, across user names: slows guessing many accounts from one machine.
MAX_ATTEMPTS_PER_ADDRESS = 20
ATTEMPT_WINDOW_MS = 5 * 60 * 1000
# A working shift and a bit: a session ends by itself before the next day's staff arrive.
SESSION_MS = 12 * 3600 * 1000
MIN_PASSWORD_LENGTH = 10
_USERNAME = re.compile(r"[a-z][a-z0-9_.-]{1,31}")
_STATION = re.compile(r"[A-Za-z0-9_-]{1,32}")

_HASHER = PasswordHasher()  # argon2id, RFC 9106's second recommended parameter set
# Checked against when the user does not exist, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _HASHER.hash(secrets.token_hex(16))


@dataclass(frozen=True)
class ConsoleUser:
    username: str
    display_name: str
    role: str
    stations: tuple[str, ...]
    is_active: bool
    failed_logins: int
    locked_until_ms: int | None

    @property
    def station_scope(self) -> tuple[str, ...] | None:
        """The stations this user's reports are limited to; None: the whole park."""
        return self.stations if self.role == "station_supervisor" else None


@dataclass(frozen=True)
class Session:
    user: ConsoleUser
    csrf_token: str
    expires_ms: int


def _now_ms() -> int:
    return int(time.time() * 1000)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class ConsoleStore:
    """The console database. One short connection per operation: the console serves few people,
    and a connection never crosses the web server's threads."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @classmethod
    def in_home(cls, home: Path) -> "ConsoleStore":
        return cls(Path(home) / CONSOLE_DB_NAME)

    def exists(self) -> bool:
        return self.path.is_file()

    @contextmanager
    def _db(self):
        db = sqlite3.connect(self.path, isolation_level=None, timeout=5)
        try:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA foreign_keys = ON")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                db.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
            db.execute("BEGIN IMMEDIATE")
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.close()

    # ------------------------------------------------------------------ users
    def add_user(self, username: str, display_name: str, role: str, password: str, *, stations=(), actor: str,
                 address: str = "") -> ConsoleUser:
        if not _USERNAME.fullmatch(username):
            raise BadUser(f"a user name is 2-32 lower-case letters, digits, '.', '_' or '-', starting with a letter: {username!r}")
        if role not in ROLES:
            raise BadUser(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        stations = tuple(stations)
        if role == "station_supervisor" and not stations:
            raise BadUser("a station supervisor needs the stations they supervise (--station, repeated)")
        if role != "station_supervisor" and stations:
            raise BadUser("only a station supervisor is limited to stations")
        for station in stations:
            if not _STATION.fullmatch(station):
                raise BadUser(f"not a station id: {station!r}")
        if len(password) < MIN_PASSWORD_LENGTH:
            raise BadUser(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
        with self._db() as db:
            if db.execute("SELECT 1 FROM console_user WHERE username = ?", (username,)).fetchone():
                raise UserExists(f"console user {username} exists already")
            db.execute("""INSERT INTO console_user (username, display_name, role, stations, password_hash, created_ms)
                          VALUES (?, ?, ?, ?, ?, ?)""",
                       (username, display_name, role, ",".join(stations), _HASHER.hash(password), _now_ms()))
            user = _read_user(db, username)
            _audit(db, actor, "user.add", username, None, _user_facts(user), address)
        return user

    def users(self) -> list[ConsoleUser]:
        with self._db() as db:
            return [_read_user(db, row[0]) for row in db.execute("SELECT username FROM console_user ORDER BY username")]

    def user(self, username: str) -> ConsoleUser | None:
        with self._db() as db:
            return _read_user(db, username)

    def set_active(self, username: str, is_active: bool, *, actor: str, address: str = "") -> ConsoleUser:
        with self._db() as db:
            before = _read_user(db, username)
            if before is None:
                raise NoSuchUser(f"no console user {username}")
            db.execute("UPDATE console_user SET is_active = ? WHERE username = ?", (int(is_active), username))
            if not is_active:
                db.execute("DELETE FROM console_session WHERE username = ?", (username,))  # out at once
            after = _read_user(db, username)
            _audit(db, actor, "user.enable" if is_active else "user.disable", username, _user_facts(before),
                   _user_facts(after), address)
        return after

    # ------------------------------------------------------------------ logging in
    def log_in(self, username: str, password: str, *, address: str, now_ms: int | None = None) -> tuple[str, Session]:
        """(cookie token, session) for the right password; else LoginRefused (or a subclass)."""
        now_ms = _now_ms() if now_ms is None else now_ms
        with self._db() as db:
            recent = db.execute("SELECT COUNT(*) FROM login_attempt WHERE address = ? AND time_ms > ?",
                                (address, now_ms - ATTEMPT_WINDOW_MS)).fetchone()[0]
            db.execute("INSERT INTO login_attempt VALUES (?, ?, ?, 0)", (now_ms, address, username[:64]))
            if recent >= MAX_ATTEMPTS_PER_ADDRESS:
                _audit(db, username[:64] or "?", "login.rate_limited", username[:64], None, None, address)
                error = TooManyAttempts()
            else:
                error = self._check_password(db, username, password, address, now_ms)
            if error is None:
                db.execute("UPDATE login_attempt SET is_ok = 1 WHERE rowid = last_insert_rowid()")
                token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
                db.execute("INSERT INTO console_session VALUES (?, ?, ?, ?, ?)",
                           (_sha256(token), username, csrf, now_ms, now_ms + SESSION_MS))
                db.execute("DELETE FROM console_session WHERE expires_ms < ?", (now_ms,))
                _audit(db, username, "login", username, None, None, address)
                session = Session(_read_user(db, username), csrf, now_ms + SESSION_MS)
        # Raised after the transaction commits: the attempt and the failure count must be kept.
        if error is not None:
            raise error
        return token, session

    def _check_password(self, db, username: str, password: str, address: str, now_ms: int):
        row = db.execute("SELECT password_hash, is_active, failed_logins, locked_until_ms FROM console_user "
                         "WHERE username = ?", (username,)).fetchone()
        password_hash, is_active, failed, locked_until = row or (_DUMMY_HASH, 0, 0, None)
        try:
            is_right = _HASHER.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            is_right = False
        if row is None or not is_active:
            return LoginRefused()
        if locked_until is not None and locked_until > now_ms:
            return AccountLocked()
        if not is_right:
            failed += 1
            locks = failed >= MAX_FAILED_LOGINS
            db.execute("UPDATE console_user SET failed_logins = ?, locked_until_ms = ? WHERE username = ?",
                       (0 if locks else failed, now_ms + LOCKOUT_MS if locks else None, username))
            _audit(db, username, "login.locked" if locks else "login.failed", username, None, None, address)
            return AccountLocked() if locks else LoginRefused()
        db.execute("UPDATE console_user SET failed_logins = 0, locked_until_ms = NULL WHERE username = ?", (username,))
        if _HASHER.check_needs_rehash(password_hash):
            db.execute("UPDATE console_user SET password_hash = ? WHERE username = ?", (_HASHER.hash(password), username))
        return None

    def session(self, token: str | None, *, now_ms: int | None = None) -> Session | None:
        if not token:
            return None
        now_ms = _now_ms() if now_ms is None else now_ms
        with self._db() as db:
            row = db.execute("SELECT username, csrf_token, expires_ms FROM console_session "
                             "WHERE token_sha256 = ? AND expires_ms > ?", (_sha256(token), now_ms)).fetchone()
            if row is None:
                return None
            user = _read_user(db, row[0])
            if user is None or not user.is_active:
                return None
            return Session(user, row[1], row[2])

    def log_out(self, token: str, *, address: str = "") -> None:
        with self._db() as db:
            row = db.execute("SELECT username FROM console_session WHERE token_sha256 = ?", (_sha256(token),)).fetchone()
            db.execute("DELETE FROM console_session WHERE token_sha256 = ?", (_sha256(token),))
            if row:
                _audit(db, row[0], "logout", row[0], None, None, address)

    # ------------------------------------------------------------------ the audit log
    def record(self, actor: str, action: str, target: str, before=None, after=None, *, address: str = "") -> None:
        with self._db() as db:
            _audit(db, actor, action, target, before, after, address)

    def audit_entries(self, *, limit: int = 500) -> list[tuple]:
        with self._db() as db:
            return db.execute("SELECT audit_id, time_ms, actor, action, target, before_json, after_json, address "
                              "FROM audit ORDER BY audit_id DESC LIMIT ?", (limit,)).fetchall()


def _read_user(db, username: str) -> ConsoleUser | None:
    row = db.execute("SELECT username, display_name, role, stations, is_active, failed_logins, locked_until_ms "
                     "FROM console_user WHERE username = ?", (username,)).fetchone()
    if row is None:
        return None
    return ConsoleUser(row[0], row[1], row[2], tuple(s for s in row[3].split(",") if s), bool(row[4]), row[5], row[6])


def _user_facts(user: ConsoleUser) -> dict:
    return {"display_name": user.display_name, "role": user.role, "stations": list(user.stations),
            "is_active": user.is_active}


def _audit(db, actor: str, action: str, target: str, before, after, address: str) -> None:
    db.execute("INSERT INTO audit (time_ms, actor, action, target, before_json, after_json, address) "
               "VALUES (?, ?, ?, ?, ?, ?, ?)",
               (_now_ms(), actor, action, target, None if before is None else json.dumps(before, ensure_ascii=False),
                None if after is None else json.dumps(after, ensure_ascii=False), address))
