"""``fieldpos portal``: serve the member portal; ``fieldpos portal provision`` registers the portal's
own terminal (``<park>-portal``, allowed member_open and loss_report) through which it opens e-cards
and reports cards lost on the ledger's decision path."""

import argparse
import os
import sys

from tools.console_cli import _ledger_home, listen_address

DEFAULT_LISTEN = "127.0.0.1:8081"
PORTAL_KINDS = ("member_open", "loss_report")


def add_portal_commands(commands) -> None:
    portal = commands.add_parser("portal", help="the member portal (register, e-card, balance, visit records)")
    portal.add_argument("--home", default=argparse.SUPPRESS, help="the park's ledger home (as before the command)")
    portal.add_argument("--listen", type=listen_address, default=listen_address(DEFAULT_LISTEN),
                        help=f"HOST:PORT to serve on (default {DEFAULT_LISTEN})")
    portal.add_argument("--sms-url", help="SMS gateway for the login codes (default: written to the log); "
                                          "its API key comes from FIELDPOS_SMS_KEY")
    portal.set_defaults(handler=cmd_portal_serve)
    more = portal.add_subparsers(dest="portal_command")
    provision = more.add_parser("provision", help="register the portal's terminal with the ledger")
    provision.add_argument("--station", default="desk", help="the station its e-card openings book to (default: desk)")
    provision.set_defaults(handler=cmd_portal_provision)
    refund = more.add_parser("refund-topup", help="pay (part of) an online top-up back to the member's payment")
    refund.add_argument("order", help="the provider's order number of the top-up (TU..., on the member's history)")
    refund.add_argument("--amount", required=True, help="yuan to pay back, e.g. 200.00")
    refund.add_argument("--provider", default="wechat", choices=("wechat", "alipay"))
    refund.set_defaults(handler=cmd_portal_refund_topup)


def _portal_terminal(home) -> str:
    return f"{home.park_id()}-portal"


def cmd_portal_provision(args) -> int:
    home = _ledger_home(args)
    if home is None:
        return 1
    terminal_id = _portal_terminal(home)
    if home.bundle_path(terminal_id).exists():
        print(f"fieldpos: the portal's terminal {terminal_id} is provisioned already", file=sys.stderr)
        return 1
    home.provision_terminal(terminal_id, args.station, kinds=PORTAL_KINDS)
    print(f"portal terminal {terminal_id} registered ({', '.join(PORTAL_KINDS)})")
    return 0


def cmd_portal_serve(args) -> int:
    import uvicorn

    from backoffice.portal.app import create_portal_app
    from ledger.notify import HttpSmsSender

    home = _ledger_home(args)
    if home is None:
        return 1
    if not home.bundle_path(_portal_terminal(home)).exists():
        print("fieldpos: the portal has no terminal yet: run 'fieldpos portal provision' first", file=sys.stderr)
        return 1
    sender = HttpSmsSender(args.sms_url, os.environ.get("FIELDPOS_SMS_KEY", "")) if args.sms_url else None
    host, port = args.listen
    print(f"member portal for park {home.park_id()} on http://{host}:{port}/m", flush=True)
    uvicorn.run(create_portal_app(home.home, sender=sender), host=host, port=port, log_level="warning")
    return 0


def cmd_portal_refund_topup(args) -> int:
    import time

    from ledger.errors import LedgerError
    from ledger.topups_online import refund_online_top_up
    from protocol.money import format_fen, parse_amount

    amount_fen = parse_amount(args.amount)
    if not amount_fen:
        print(f"fieldpos: --amount {args.amount!r} is not an amount in yuan (e.g. 200.00)", file=sys.stderr)
        return 2
    home = _ledger_home(args)
    if home is None:
        return 1
    store = home.open_store()
    try:
        refund_no = refund_online_top_up(store, park_id=home.park_id(), provider=args.provider,
                                         provider_order=args.order, amount_fen=amount_fen,
                                         now_ms=time.time_ns() // 1_000_000)
    except LedgerError as error:
        print(f"fieldpos: {error}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(f"refund {refund_no}: {format_fen(amount_fen)} back to {args.provider} order {args.order} "
          "(the ledger sends it to the provider)")
    return 0
