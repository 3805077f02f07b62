"""Every report by the name ``fieldpos report NAME`` and the console use, and what each needs.

``is_park_wide``: the report covers the whole park (liabilities, members, lookups by card or phone),
so a station supervisor, scoped to their stations, is not shown it.
"""

from dataclasses import dataclass
import time
from typing import Callable

from ..days import first_open_day
from .contractor import contractor_statement
from .dashboard import dashboard_report
from .corrections import corrections
from .deposits import deposits
from .liabilities import liabilities
from .lookup import lookup
from .members import member_statistics
from .query import Period, Scope, business_day_at, check_stations, park_of
from .rentals import rentals
from .shifts import shifts
from .table import Report
from .takings import takings
from .time_of_day import time_of_day


@dataclass(frozen=True)
class ReportKind:
    name: str
    title_en: str
    title_zh: str
    is_park_wide: bool


REPORTS = {kind.name: kind for kind in (
    ReportKind("dashboard", "Dashboard", "概览", False),
    ReportKind("takings", "Takings", "营业额", False),
    ReportKind("time-of-day", "Time of day", "分时段", False),
    ReportKind("corrections", "Voids, reversals, refunds", "撤销冲正退款", False),
    ReportKind("liabilities", "Liabilities", "负债", True),
    ReportKind("members", "Member statistics", "会员统计", True),
    ReportKind("lookup", "Transaction lookup", "交易查询", True),
    ReportKind("contractor", "Contractor statement", "承包商对账", True),
    ReportKind("deposits", "Rental deposits", "租赁押金", True),
    ReportKind("rentals", "Rentals", "租赁统计", False),
    ReportKind("shifts", "Shifts and day closes", "交班与日结", False),
)}


def today(db, now_ms: int | None = None) -> str:
    """The business day bookings go to now: after a day-end close, the next open day (a report of
    "today" shows what is still being booked, not the closed day)."""
    park_id, zone, cutoff = park_of(db)
    return first_open_day(db, park_id, business_day_at(int(time.time() * 1000) if now_ms is None else now_ms,
                                                        zone, cutoff))


def make_scope(db, *, day=None, from_day=None, to_day=None, stations=None, now_ms: int | None = None) -> Scope:
    park_id = park_of(db)[0]
    check_stations(db, park_id, stations)
    period = Period.of(day=day, from_day=from_day, to_day=to_day, today=today(db, now_ms))
    return Scope(park_id, period, tuple(stations) if stations is not None else None)


def run_report(db, name: str, scope: Scope, **options) -> Report:
    """``options``: takings ``by`` and ``period``; lookup ``receipt``/``card``/``phone``; contractor ``contractor``."""
    runners: dict[str, Callable[[], Report]] = {
        "dashboard": lambda: dashboard_report(db, scope),
        "takings": lambda: takings(db, scope, by=options.get("by") or "station", period=options.get("period") or "day"),
        "time-of-day": lambda: time_of_day(db, scope),
        "corrections": lambda: corrections(db, scope),
        "liabilities": lambda: liabilities(db, scope),
        "members": lambda: member_statistics(db, scope),
        "lookup": lambda: lookup(db, scope.park_id, receipt=options.get("receipt"), card=options.get("card"),
                                 phone=options.get("phone"), stations=scope.stations),
        "contractor": lambda: contractor_statement(db, scope, options.get("contractor") or ""),
        "deposits": lambda: deposits(db, scope),
        "rentals": lambda: rentals(db, scope),
        "shifts": lambda: shifts(db, scope),
    }
    return runners[name]()
