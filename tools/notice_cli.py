"""``fieldpos notice``: send members a notice through the notification outbox (all of them, one card
type, or those who bought at a station), list the notices sent, and record a member's opt-out."""

import argparse
import getpass
import json
import sys
import time

from tools.arg_types import business_days, one_line
from tools.park_args import existing_store, has_ledger, park_home


def now_ms() -> int:
    return int(time.time() * 1000)


def _text(text: str) -> str:
    from ledger.member_notices import MAX_NOTICE_CHARS

    if not text.strip() or len(text) > MAX_NOTICE_CHARS or not " ".join(text.split()).isprintable():
        raise argparse.ArgumentTypeError(f"1 to {MAX_NOTICE_CHARS} printable characters")
    return text


def cmd_send(args) -> int:
    from ledger.member_notices import Audience, send_notice

    if args.period is not None and args.visited is None:
        print("fieldpos: --period goes with --visited STATION", file=sys.stderr)
        return 2
    audience = (Audience("card-type", card_type=args.card_type) if args.card_type else
                Audience("visited", station=args.visited, period=args.period) if args.visited else Audience())
    store = existing_store(args)
    if store is None:
        return 1
    try:
        sent = send_notice(store, text=args.text, audience=audience, sent_by=args.by or f"cli:{getpass.getuser()}",
                           now_ms=now_ms())
    finally:
        store.close()
    print(f"notice {sent.notice_id} to {audience}: {sent.recipients} member(s) queued, {sent.opted_out} opted out")
    return 0


def cmd_list(args) -> int:
    from ledger.member_notices import sent_notices
    from ledger.reports.query import open_read_only, park_of

    if not has_ledger(args):
        return 1
    db = open_read_only(park_home(args).store_location)
    try:
        notices = sent_notices(db, park_of(db)[0], limit=args.last)
    finally:
        db.close()
    for notice_id, _, sent_by, audience, recipients, opted_out, text in notices:
        print(f"{notice_id:>4}  {sent_by}  {json.loads(audience)}  {recipients} sent, {opted_out} opted out  {text}")
    if not notices:
        print("no notice sent yet", file=sys.stderr)
    return 0


def _set(args, wants: bool) -> int:
    from ledger.member_notices import member_phone, set_wants_notices

    store = existing_store(args)
    if store is None:
        return 1
    try:
        park_id = store.db.execute("SELECT park_id FROM park ORDER BY park_id LIMIT 1").fetchone()[0]
        phone = args.phone or member_phone(store.db, park_id, args.card)
        changed = set_wants_notices(store, phone=phone, wants=wants, now_ms=now_ms())
    finally:
        store.close()
    state = "gets notices" if wants else "gets no notices"
    print(f"the member at {phone} {state}" + ("" if changed else " (already so)"))
    return 0


def add_notice_commands(commands) -> None:
    from ledger.member_notices import CARD_TYPES

    notice = commands.add_parser("notice", help="notices to members (all, a card type, or a station's buyers); "
                                                "their opt-out").add_subparsers(dest="notice_command", required=True)
    send = notice.add_parser("send", help="queue a notice for every member in the audience who has not opted out")
    send.add_argument("--text", type=_text, required=True)
    audience = send.add_mutually_exclusive_group()
    audience.add_argument("--card-type", choices=CARD_TYPES, help="only members with this kind of card")
    audience.add_argument("--visited", metavar="STATION", help="only members who bought at this station")
    send.add_argument("--period", type=business_days, help="with --visited: bought on these business days (2026-05, "
                                                     "2026-05-01..2026-05-07)")
    send.add_argument("--by", type=one_line, help="who sends it (default: cli:<login name>)")
    send.set_defaults(handler=cmd_send)
    listing = notice.add_parser("list", help="the notices sent, newest first")
    listing.add_argument("--last", type=int, default=20, choices=range(1, 501), metavar="N", help="how many (1-500)")
    listing.set_defaults(handler=cmd_list)
    for name, wants in (("opt-out", False), ("opt-in", True)):
        change = notice.add_parser(name, help=f"the member {'wants no' if not wants else 'wants'} notices (kept by phone: "
                                              f"every card of theirs)")
        who = change.add_mutually_exclusive_group(required=True)
        who.add_argument("--card", help="a member card number")
        who.add_argument("--phone", help="the member's phone")
        change.set_defaults(handler=lambda args, wants=wants: _set(args, wants))
