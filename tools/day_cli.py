"""``fieldpos ledger close-day [DATE]``: the day-end close (日结). A closed business day is locked:
whatever the ledger books afterwards (an offline sale synced late, the next morning's first top-up
before the cut-off) goes to the next open day, and the shifts report says so."""

import argparse
import getpass
import sys
import time

from tools.park_args import existing_store


def _day(text: str) -> str:
    from ledger.reports.query import ReportError, parse_day

    try:
        return parse_day(text, "DATE")
    except ReportError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_day_commands(ledger_parsers) -> None:
    close = ledger_parsers.add_parser(
        "close-day", help="日结: lock a business day (default: the one in progress); later bookings go to the next day")
    close.add_argument("date", nargs="?", type=_day, metavar="DATE", help="the business day, e.g. 2026-05-01")
    close.add_argument("--force", action="store_true",
                       help="end the shifts still open (uncounted) instead of refusing: for a till left logged in")
    close.add_argument("--by", default=None, help="who closes it, for the record (default: the login name)")
    close.set_defaults(handler=cmd_close_day)


def cmd_close_day(args) -> int:
    from ledger.days import DayCloseRefused, ShiftsStillOpen, local_time_text, next_day, shifts_still_open

    store = existing_store(args)
    if store is None:
        return 1
    try:
        park_id, zone = store.db.execute("SELECT park_id, time_zone FROM park ORDER BY park_id LIMIT 1").fetchone()
        now_ms = int(time.time() * 1000)
        day = args.date or store.business_day(park_id, now_ms)
        try:
            ended = store.close_business_day(park_id, day, now_ms, args.by or getpass.getuser(), force=args.force)
        except ShiftsStillOpen as refused:
            print(f"fieldpos: business day {day} not closed: {shifts_still_open(len(refused.shifts))} (hand them "
                  f"over at the till, or use --force to end them uncounted):", file=sys.stderr)
            for terminal, staff, _, opened_ms in refused.shifts:
                print(f"  {terminal}  {staff}  since {local_time_text(opened_ms, zone)}", file=sys.stderr)
            return 1
        except DayCloseRefused as refused:
            print(f"fieldpos: {refused}", file=sys.stderr)
            return 1
        (count,) = store.db.execute("SELECT COUNT(*) FROM txn WHERE park_id=? "
                                      "AND business_day=?", (park_id, day)).fetchone()
    finally:
        store.close()
    print(f"business day {day} closed: {count} transactions stay on it; whatever arrives from now on is booked on "
          f"{next_day(day)} or the next open day")
    for terminal, staff, _, opened_ms in ended:
        print(f"  ended uncounted: {terminal}  {staff}  (open since {local_time_text(opened_ms, zone)})")
    return 0
