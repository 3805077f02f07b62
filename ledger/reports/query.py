"""What every report is asked for, and the read-only connection it reads the books through.

A report never writes and never creates: it opens the ledger's database with SQLite's ``mode=ro``
URI, so a typo'd home is a one-line error instead of a new, empty ``ledger.db`` whose report says
"no sales", and the ledger's single writer never waits on a report.
"""

from dataclasses import dataclass
from datetime import date
from pathlib import Path
import sqlite3

from ..errors import LedgerError


class ReportError(LedgerError):
    """A report was asked for something it cannot answer: a bad date, an unknown station or receipt."""

    code = "BAD_REPORT_QUERY"


class NoLedger(ReportError):
    """There is no ledger database where the report was asked to read one."""

    code = "NO_LEDGER"


# Longest period one report covers: a year and a day, so a typo'd year is refused, not scanned.
MAX_PERIOD_DAYS = 367


def open_read_only(db_path: Path) -> sqlite3.Connection:
    """A connection that cannot write and cannot create the file (``mode=ro``). A ``postgresql://``
    location (a park home's store.url) gives a read-only PostgreSQL connection with the same
    ``execute``: the reports' SQLite statements are translated as the store's are."""
    if str(db_path).startswith(("postgresql://", "postgres://")):
        from ..postgres import open_read_only as open_postgres  # only a PostgreSQL park needs psycopg

        try:
            db = open_postgres(str(db_path))
            db.execute("SELECT 1 FROM park LIMIT 1")
        except Exception as error:  # a server that does not answer, a schema or table that is not there
            raise NoLedger(f"cannot read the ledger at {str(db_path).split('@')[-1]}: {str(error).strip()[:200]}") from None
        return db
    path = Path(db_path)
    if not path.is_file():
        raise NoLedger(f"no ledger database at {path}")
    # A WAL database read with mode=ro needs its -wal and -shm files, and SQLite creates them when
    # they are missing. Missing means no connection has the ledger open (the last one to close
    # removes them): then the file is read as immutable, and nothing is created beside it.
    is_open_elsewhere = path.with_name(path.name + "-wal").exists()
    options = "mode=ro" if is_open_elsewhere else "mode=ro&immutable=1"
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?{options}", uri=True, check_same_thread=False)
        db.execute("PRAGMA query_only = ON")
        db.execute("SELECT 1 FROM park LIMIT 1")
    except sqlite3.Error as error:
        raise NoLedger(f"cannot read the ledger at {path}: {error}") from None
    return db


def parse_day(text: str, what: str = "a day") -> str:
    """``2026-05-01`` stays as it is; anything else is a ReportError naming the option."""
    try:
        return date.fromisoformat(text).isoformat() if len(text) == 10 else _bad_day(text, what)
    except ValueError:
        return _bad_day(text, what)


def _bad_day(text: str, what: str):
    raise ReportError(f"{what} must be a date like 2026-05-01, not {text!r}")


@dataclass(frozen=True)
class Period:
    """Business days ``first`` to ``last``, both included (ISO dates: they compare as text)."""

    first: str
    last: str

    @classmethod
    def of(cls, *, day: str | None = None, from_day: str | None = None, to_day: str | None = None,
           today: str) -> "Period":
        if day is not None and (from_day is not None or to_day is not None):
            raise ReportError("give --day, or --from and --to, not both")
        if day is not None:
            day = parse_day(day, "--day")
            return cls(day, day)
        first = parse_day(from_day, "--from") if from_day is not None else None
        last = parse_day(to_day, "--to") if to_day is not None else None
        first, last = first or last or today, last or (today if first is None or today >= first else first)
        if first > last:
            raise ReportError(f"--from {first} is after --to {last}")
        if (date.fromisoformat(last) - date.fromisoformat(first)).days >= MAX_PERIOD_DAYS:
            raise ReportError(f"a report covers at most {MAX_PERIOD_DAYS} days, not {first} to {last}")
        return cls(first, last)

    def __str__(self) -> str:
        return self.first if self.first == self.last else f"{self.first} to {self.last}"


@dataclass(frozen=True)
class Scope:
    """Which park, which business days, and which stations (None: all of them) a report covers.
    A station supervisor's console passes only their own stations."""

    park_id: str
    period: Period
    stations: tuple[str, ...] | None = None

    def __str__(self) -> str:
        stations = "all stations" if self.stations is None else "stations " + ", ".join(self.stations)
        return f"park {self.park_id}, {self.period}, {stations}"

    def txn_filter(self, alias: str = "t") -> tuple[str, list]:
        """SQL conditions on a ``txn`` table aliased ``alias``, and their parameters."""
        sql = f"{alias}.park_id = ? AND {alias}.business_day BETWEEN ? AND ?"
        params: list = [self.park_id, self.period.first, self.period.last]
        if self.stations is not None:
            sql += f" AND {alias}.station_id IN ({', '.join('?' * len(self.stations)) or 'NULL'})"
            params += list(self.stations)
        return sql, params


def park_of(db: sqlite3.Connection) -> tuple[str, str, int]:
    """(park id, time zone, day cutoff minutes) of the one park this ledger keeps."""
    row = db.execute("SELECT park_id, time_zone, day_cutoff_minutes FROM park ORDER BY park_id LIMIT 1").fetchone()
    if row is None:
        raise NoLedger("the ledger has no park yet")
    return row


def check_stations(db: sqlite3.Connection, park_id: str, stations) -> None:
    """Refuse a station the park does not have (a typo would otherwise report an empty day)."""
    known = {row[0] for row in db.execute("SELECT station_id FROM station WHERE park_id = ?", (park_id,))}
    for station in stations or ():
        if station not in known:
            raise ReportError(f"no station {station!r} in park {park_id} (stations: {', '.join(sorted(known))})")


def business_day_at(time_ms: int, time_zone: str, cutoff_minutes: int) -> str:
    """The business day a moment belongs to, as the ledger dates its transactions (Store.business_day)."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    local = datetime.fromtimestamp(time_ms / 1000, ZoneInfo(time_zone)) - timedelta(minutes=cutoff_minutes)
    return local.date().isoformat()
