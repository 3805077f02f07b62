"""``fieldpos report NAME``: every report of ledger.reports on the command line, as text, CSV or
Excel. Reports read the ledger through a read-only connection and never create one."""

import argparse
from pathlib import Path
import sys


def _day(text: str) -> str:
    from ledger.reports.query import ReportError, parse_day

    try:
        return parse_day(text)
    except ReportError as error:
        raise argparse.ArgumentTypeError(str(error).split("] ", 1)[-1]) from None


def _writable_file(text: str) -> str:
    """Where a report is written: its folder must exist (a typo is said here, before reading anything)."""
    if not Path(text).parent.is_dir():
        raise argparse.ArgumentTypeError(f"no such folder for {text}")
    if Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder, not a file")
    return text


def add_report_commands(report_parsers) -> None:
    from ledger.reports.catalog import REPORTS
    from ledger.reports.export import FORMATS
    from ledger.reports.takings import DIMENSIONS, PERIODS

    for kind in REPORTS.values():
        parser = report_parsers.add_parser(kind.name, help=f"{kind.title_en} ({kind.title_zh})")
        if kind.name not in ("liabilities", "lookup", "dashboard"):  # these are as of now, not of a period
            parser.add_argument("--day", type=_day, help="one business day, YYYY-MM-DD (default: today)")
            parser.add_argument("--from", dest="from_day", type=_day, metavar="DAY", help="first business day")
            parser.add_argument("--to", dest="to_day", type=_day, metavar="DAY", help="last business day")
        if not kind.is_park_wide:
            parser.add_argument("--station", action="append", help="only this station (repeat for more)")
        parser.add_argument("--format", choices=FORMATS, default="text")
        parser.add_argument("--out", type=_writable_file, help="write to this file (needed for xlsx and pdf)")
        if kind.name == "takings":
            parser.add_argument("--by", choices=DIMENSIONS, default="station")
            parser.add_argument("--period", choices=PERIODS, default="day")
        if kind.name == "lookup":
            which = parser.add_mutually_exclusive_group(required=True)
            which.add_argument("--receipt", help="receipt number, e.g. T-BBQ-1-9")
            which.add_argument("--card", help="card number (every issuance)")
            which.add_argument("--phone", help="a member's phone number")
        if kind.name == "contractor":
            parser.add_argument("--contractor", required=True, help="the contractor's id, as on its stations")
        parser.set_defaults(handler=cmd_report, report_name=kind.name)


def cmd_report(args) -> int:
    from ledger.park_home import ParkHome
    from ledger.reports.catalog import make_scope, run_report
    from ledger.reports.export import render
    from ledger.reports.query import open_read_only

    if args.format in ("xlsx", "pdf") and not args.out:
        print(f"fieldpos: --format {args.format} needs --out FILE.{args.format}", file=sys.stderr)
        return 2
    home = ParkHome(Path(args.home))
    if not home.has_ledger():
        print(f"fieldpos: no ledger in {args.home} (create one with 'fieldpos ledger init')", file=sys.stderr)
        return 1
    db = open_read_only(home.store_location)
    try:
        scope = make_scope(db, day=getattr(args, "day", None), from_day=getattr(args, "from_day", None),
                           to_day=getattr(args, "to_day", None), stations=getattr(args, "station", None))
        report = run_report(db, args.report_name, scope, **{key: getattr(args, key, None) for key in
                                                            ("by", "period", "receipt", "card", "phone", "contractor")})
    finally:
        db.close()
    data = render(report, args.format)
    if args.out:
        Path(args.out).write_bytes(data)
        print(f"{report.title_en}: written to {args.out}")
    else:
        sys.stdout.write(data.decode("utf-8-sig"))
    return 0
