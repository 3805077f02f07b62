"""The portal's own database (``portal.db`` in the park home): one-time login codes, member
sessions and visit-record links. Kept apart from the books for the console's reason
(backoffice.console_schema): the portal's writes never queue behind a sale.

Codes: six digits from ``secrets``, kept only as SHA-256 with the phone, valid five minutes, five
tries; at most one a minute and five an hour per phone (an SMS costs the park money and annoys the
member). Sessions as the console's: the cookie holds a random token, the database its SHA-256, each
session its own CSRF token. Visit links: 128 random bits in the URL, its SHA-256 in the database.
"""

from dataclasses import dataclass
import hashlib
from pathlib import Path
import re
import secrets
import sqlite3

from .errors import BadPhone, CodeRateLimited, CodeRefused

PORTAL_DB_NAME = "portal.db"
CODE_DIGITS = 6
CODE_VALID_MS = 5 * 60 * 1000
MAX_CODE_TRIES = 5
CODE_GAP_MS = 60 * 1000
MAX_CODES_PER_HOUR = 5
SESSION_MS = 30 * 86_400_000  # a member stays logged in on their own phone for a month
_PHONE = re.compile(r"1[3-9][0-9]{9}")

SCHEMA = """
CREATE TABLE IF NOT EXISTS login_code (
    phone        TEXT PRIMARY KEY,
    code_sha256  TEXT NOT NULL,
    expires_ms   INTEGER NOT NULL,
    tries        INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS code_sent (
    phone    TEXT NOT NULL,
    sent_ms  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS code_sent_by_phone ON code_sent (phone, sent_ms);
CREATE TABLE IF NOT EXISTS member_session (
    token_sha256 TEXT PRIMARY KEY,
    phone        TEXT NOT NULL,
    csrf_token   TEXT NOT NULL,
    expires_ms   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS visit_link (
    link_id      INTEGER PRIMARY KEY,
    token_sha256 TEXT NOT NULL UNIQUE,
    phone        TEXT NOT NULL,
    card_no      TEXT NOT NULL,
    business_day TEXT NOT NULL,
    show_times   INTEGER NOT NULL,
    show_amounts INTEGER NOT NULL,
    created_ms   INTEGER NOT NULL,
    revoked_ms   INTEGER
);
"""


@dataclass(frozen=True)
class MemberSession:
    phone: str
    csrf_token: str


@dataclass(frozen=True)
class VisitLink:
    link_id: int
    phone: str
    card_no: str
    business_day: str
    show_times: bool
    show_amounts: bool
    is_revoked: bool


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def check_phone(phone: str) -> str:
    phone = phone.strip()
    if not _PHONE.fullmatch(phone):
        raise BadPhone(f"{phone[:20]!r} is not an 11-digit mobile number")
    return phone


class MemberLogins:
    """portal.db: one short connection per operation, as the console's store."""

    def __init__(self, path: Path):
        self.path = Path(path)
        with self._db() as db:
            db.executescript(SCHEMA)

    @classmethod
    def in_home(cls, home: Path) -> "MemberLogins":
        return cls(Path(home) / PORTAL_DB_NAME)

    def _db(self):
        db = sqlite3.connect(self.path, isolation_level=None)
        db.execute("PRAGMA busy_timeout = 5000")
        return _Closing(db)

    # ------------------------------------------------------------ one-time codes
    def new_code(self, phone: str, now_ms: int) -> str:
        """A fresh code for ``phone`` (the previous one stops working); CodeRateLimited when the
        phone had one less than a minute ago or five in the last hour."""
        phone = check_phone(phone)
        code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            last, count = db.execute("SELECT MAX(sent_ms), COUNT(*) FROM code_sent WHERE phone=? AND sent_ms > ?",
                                     (phone, now_ms - 3600_000)).fetchone()
            if last is not None and (now_ms - last < CODE_GAP_MS or count >= MAX_CODES_PER_HOUR):
                db.execute("ROLLBACK")
                raise CodeRateLimited()
            db.execute("INSERT INTO code_sent VALUES (?, ?)", (phone, now_ms))
            db.execute("INSERT OR REPLACE INTO login_code VALUES (?, ?, ?, 0)",
                       (phone, _sha256(f"{phone}:{code}"), now_ms + CODE_VALID_MS))
            db.execute("COMMIT")
        return code

    def log_in(self, phone: str, code: str, now_ms: int) -> tuple[str, MemberSession]:
        """(cookie token, session) for the right code in time; CodeRefused otherwise. A code works once."""
        phone = check_phone(phone)
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT code_sha256, expires_ms, tries FROM login_code WHERE phone=?", (phone,)).fetchone()
            if row is None or now_ms >= row[1] or row[2] >= MAX_CODE_TRIES:
                db.execute("COMMIT")
                raise CodeRefused()
            if not secrets.compare_digest(row[0], _sha256(f"{phone}:{code.strip()[:CODE_DIGITS + 2]}")):
                db.execute("UPDATE login_code SET tries = tries + 1 WHERE phone=?", (phone,))
                db.execute("COMMIT")
                raise CodeRefused()
            db.execute("DELETE FROM login_code WHERE phone=?", (phone,))
            token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            db.execute("INSERT INTO member_session VALUES (?, ?, ?, ?)", (_sha256(token), phone, csrf, now_ms + SESSION_MS))
            db.execute("COMMIT")
        return token, MemberSession(phone, csrf)

    def session(self, token: str | None, now_ms: int) -> MemberSession | None:
        if not token:
            return None
        with self._db() as db:
            row = db.execute("SELECT phone, csrf_token FROM member_session WHERE token_sha256=? AND expires_ms > ?",
                             (_sha256(token), now_ms)).fetchone()
        return None if row is None else MemberSession(*row)

    def log_out(self, token: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM member_session WHERE token_sha256=?", (_sha256(token),))

    # ------------------------------------------------------------ visit-record links
    def add_visit_link(self, phone: str, card_no: str, business_day: str, *, show_times: bool, show_amounts: bool,
                       now_ms: int) -> str:
        """A new unguessable link token for the member's record of ``business_day``."""
        token = secrets.token_urlsafe(16)
        with self._db() as db:
            db.execute("INSERT INTO visit_link (token_sha256, phone, card_no, business_day, show_times, show_amounts, "
                       "created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (_sha256(token), phone, card_no, business_day, int(show_times), int(show_amounts), now_ms))
        return token

    def visit_link(self, token: str) -> VisitLink | None:
        """The live link for ``token``; None for an unknown or revoked one (both answer 404)."""
        with self._db() as db:
            row = db.execute("SELECT link_id, phone, card_no, business_day, show_times, show_amounts, revoked_ms "
                             "FROM visit_link WHERE token_sha256=?", (_sha256(token[:64]),)).fetchone()
        if row is None or row[6] is not None:
            return None
        return VisitLink(row[0], row[1], row[2], row[3], bool(row[4]), bool(row[5]), False)

    def visit_links(self, phone: str) -> list[VisitLink]:
        with self._db() as db:
            rows = db.execute("SELECT link_id, phone, card_no, business_day, show_times, show_amounts, revoked_ms "
                              "FROM visit_link WHERE phone=? ORDER BY link_id DESC", (phone,)).fetchall()
        return [VisitLink(*row[:4], bool(row[4]), bool(row[5]), row[6] is not None) for row in rows]

    def revoke_visit_link(self, phone: str, link_id: int, now_ms: int) -> bool:
        """Revoke one of ``phone``'s links; False when it is not theirs or was revoked already."""
        with self._db() as db:
            return db.execute("UPDATE visit_link SET revoked_ms=? WHERE link_id=? AND phone=? AND revoked_ms IS NULL",
                              (now_ms, link_id, phone)).rowcount == 1


class _Closing:
    """``with`` for a connection that closes it (sqlite3's own context manager only commits)."""

    def __init__(self, db):
        self.db = db

    def __enter__(self):
        return self.db

    def __exit__(self, *exc):
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")
        self.db.close()
