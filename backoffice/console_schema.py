"""The console's own database (``console.db`` beside ``ledger.db`` in the park home), as migrations.

Why not the ledger's database: the console's writes (logins, sessions, lockouts, the audit log)
would queue behind the ledger's single writer and its group commits, and the console would need a
writable connection to the books. Kept apart, the console opens the books read-only, the ledger's
``verify`` keeps its rule that no state lives outside the postings, and a busy login page never
delays a sale. Changes to the park itself will go through the ledger's own commands.
"""

ROLES = ("admin", "finance", "front_desk", "station_supervisor", "technician")

MIGRATIONS: list[str] = [
    # 1: users, sessions, login attempts (rate limit and lockout), and the append-only audit log.
    f"""
    CREATE TABLE console_user (
        username        TEXT PRIMARY KEY,
        display_name    TEXT NOT NULL,
        role            TEXT NOT NULL CHECK (role IN ({", ".join(f"'{role}'" for role in ROLES)})),
        stations        TEXT NOT NULL DEFAULT '',   -- comma-separated; a station supervisor's scope
        password_hash   TEXT NOT NULL,              -- argon2id, with its parameters (argon2-cffi)
        is_active       INTEGER NOT NULL DEFAULT 1,
        failed_logins   INTEGER NOT NULL DEFAULT 0, -- wrong passwords since the last good one
        locked_until_ms INTEGER,
        created_ms      INTEGER NOT NULL
    );
    CREATE TABLE console_session (
        token_sha256 TEXT PRIMARY KEY,              -- the cookie holds the token; only its hash is kept
        username     TEXT NOT NULL REFERENCES console_user,
        csrf_token   TEXT NOT NULL,
        created_ms   INTEGER NOT NULL,
        expires_ms   INTEGER NOT NULL
    );
    CREATE TABLE login_attempt (
        time_ms  INTEGER NOT NULL,
        address  TEXT NOT NULL,
        username TEXT NOT NULL,
        is_ok    INTEGER NOT NULL
    );
    CREATE INDEX login_attempt_by_address ON login_attempt (address, time_ms);
    CREATE TABLE audit (
        audit_id    INTEGER PRIMARY KEY,
        time_ms     INTEGER NOT NULL,
        actor       TEXT NOT NULL,     -- a console user, or cli:<login> for the command line
        action      TEXT NOT NULL,
        target      TEXT NOT NULL,
        before_json TEXT,
        after_json  TEXT,
        address     TEXT NOT NULL DEFAULT ''
    );
    CREATE TRIGGER audit_is_append_only_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_is_append_only_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    """,
]
