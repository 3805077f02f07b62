"""``fieldpos settlement``: mark a contractor's statement paid (the payout is booked out of the
contractor's payable through the ledger's own path) and list the statements paid so far."""

import getpass
import sys
import time

from tools.arg_types import business_days, one_line
from tools.park_args import existing_store, has_ledger, park_home


def now_ms() -> int:
    """The ledger's clock for these commands (a test sets it to the morning after a park day)."""
    return int(time.time() * 1000)


def cmd_pay(args) -> int:
    from ledger.settlement import pay_statement
    from protocol.money import format_fen

    store = existing_store(args)
    if store is None:
        return 1
    try:
        done = pay_statement(store, contractor_id=args.contractor, station_id=args.station, period=args.period,
                             channel=args.channel, reference=args.reference, paid_by=args.by or f"cli:{getpass.getuser()}",
                             now_ms=now_ms())
    finally:
        store.close()
    paid = done.paid
    print(f"statement of {paid.contractor_id} for {paid.period} paid: {format_fen(paid.amount_fen, grouped=True)} by "
          f"{paid.channel} ({paid.receipts} receipts), payout {paid.payout_no}, transaction {paid.txn_id}, "
          f"{paid.paid_local} by {paid.paid_by}")
    return 0


def cmd_list(args) -> int:
    from ledger.reports.contractor import paid_statements
    from ledger.reports.query import open_read_only, park_of
    from protocol.money import format_fen

    if not has_ledger(args):
        return 1
    db = open_read_only(park_home(args).store_location)
    try:
        paid = paid_statements(db, park_of(db)[0], args.contractor)
    finally:
        db.close()
    for row in paid:
        print(f"{row.payout_no:>4}  {row.contractor_id}  {row.period}  {format_fen(row.amount_fen, grouped=True):>12}  "
              f"{row.channel} {row.reference}  paid {row.paid_local} by {row.paid_by}")
    if not paid:
        print("no statement paid yet", file=sys.stderr)
    return 0


def add_settlement_commands(commands) -> None:
    from ledger.rules.settlement import CHANNELS

    settlement = commands.add_parser("settlement", help="contractor statements: mark one paid, list those paid") \
        .add_subparsers(dest="settlement_command", required=True)
    pay = settlement.add_parser("pay", help="mark a contractor's statement paid: books its net payable out of the "
                                            "contractor's payable (once; a period must be over)")
    who = pay.add_mutually_exclusive_group(required=True)
    who.add_argument("--contractor", help="the contractor's id, as on its stations")
    who.add_argument("--station", help="a station the contractor runs (the statement covers all of theirs)")
    pay.add_argument("--period", type=business_days, required=True,
                     help="business days: 2026-05-01, a month 2026-05, or 2026-05-01..2026-05-07")
    pay.add_argument("--channel", choices=CHANNELS, default="bank", help="how the money leaves (default: %(default)s)")
    pay.add_argument("--reference", type=one_line, default="", help="the transfer's number, for the books")
    pay.add_argument("--by", type=one_line, help="who paid (default: cli:<login name>)")
    pay.set_defaults(handler=cmd_pay)
    listing = settlement.add_parser("list", help="statements paid so far, oldest first")
    listing.add_argument("--contractor", help="only this contractor's")
    listing.set_defaults(handler=cmd_list)
