"""``fieldpos console``: serve the back-office web console; ``fieldpos console user add|list|disable``
manages its named users (the first admin is made here). Every change is in the console's audit log
with ``cli:<login>`` as the actor."""

import argparse
import getpass
from pathlib import Path
import sys

DEFAULT_LISTEN = "127.0.0.1:8080"


def listen_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"--listen takes HOST:PORT with a port from 1 to 65535, not {text!r}")
    return host.strip("[]"), int(port)


def add_console_commands(commands, roles) -> None:
    console = commands.add_parser("console", help="the back-office web console (reports, dashboard) and its users")
    console.add_argument("--home", default=argparse.SUPPRESS, help="the park's ledger home (as before the command)")
    console.add_argument("--listen", type=listen_address, default=listen_address(DEFAULT_LISTEN),
                         help=f"HOST:PORT to serve on (default: {DEFAULT_LISTEN}; 0.0.0.0:8080 for the park's LAN)")
    console.set_defaults(handler=cmd_console_serve)
    users = console.add_subparsers(dest="console_command").add_parser("user", help="console users") \
        .add_subparsers(dest="user_command", required=True)
    add = users.add_parser("add", help="add a named console user")
    add.add_argument("--username", required=True)
    add.add_argument("--name", required=True, help="the name shown in the console and the audit log")
    add.add_argument("--role", required=True, choices=roles)
    add.add_argument("--station", action="append", default=[], help="station_supervisor only: a station they supervise (repeat)")
    add.add_argument("--password", help="at least 10 characters; asked for when omitted (keeps it out of shell history)")
    add.set_defaults(handler=cmd_console_user_add)
    users.add_parser("list", help="one line per user").set_defaults(handler=cmd_console_user_list)
    disable = users.add_parser("disable", help="disable a user: their sessions end at once")
    disable.add_argument("--username", required=True)
    disable.set_defaults(handler=cmd_console_user_disable)


def _ledger_home(args):
    from ledger.park_home import ParkHome

    home = ParkHome(Path(args.home))
    if not home.has_ledger():
        print(f"fieldpos: no ledger in {args.home} (create one with 'fieldpos ledger init')", file=sys.stderr)
        return None
    return home


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:?"


def cmd_console_user_add(args) -> int:
    from backoffice.accounts import ConsoleStore
    from ledger.reports.query import check_stations, open_read_only, park_of

    home = _ledger_home(args)
    if home is None:
        return 1
    db = open_read_only(home.store_location)
    try:
        check_stations(db, park_of(db)[0], args.station)
    finally:
        db.close()
    password = args.password
    if password is None:
        password = getpass.getpass(f"password for {args.username}: ")
        if getpass.getpass("again: ") != password:
            print("fieldpos: the two passwords differ; nothing changed", file=sys.stderr)
            return 2
    user = ConsoleStore.in_home(home.home).add_user(args.username, args.name, args.role, password,
                                                    stations=args.station, actor=_actor())
    print(f"console user {user.username} ({user.role}{': ' + ', '.join(user.stations) if user.stations else ''}) added")
    return 0


def cmd_console_user_list(args) -> int:
    from backoffice.accounts import ConsoleStore

    home = _ledger_home(args)
    if home is None:
        return 1
    store = ConsoleStore.in_home(home.home)
    users = store.users() if store.exists() else []
    for user in users:
        state = "active" if user.is_active else "disabled"
        print(f"{user.username:<16} {user.role:<18} {state:<8} {user.display_name}"
              + (f"  stations: {', '.join(user.stations)}" if user.stations else ""))
    print(f"{len(users)} console users" + ("" if users else " (add the first admin: fieldpos console user add --role admin ...)"))
    return 0


def cmd_console_user_disable(args) -> int:
    from backoffice.accounts import ConsoleStore
    from backoffice.errors import NoSuchUser

    home = _ledger_home(args)
    if home is None:
        return 1
    store = ConsoleStore.in_home(home.home)
    if not store.exists():
        raise NoSuchUser(f"no console user {args.username}")
    store.set_active(args.username, False, actor=_actor())
    print(f"console user {args.username} disabled; their sessions have ended")
    return 0


def cmd_console_serve(args) -> int:
    import uvicorn

    from backoffice.accounts import ConsoleStore
    from backoffice.app import create_app

    home = _ledger_home(args)
    if home is None:
        return 1
    host, port = args.listen
    store = ConsoleStore.in_home(home.home)
    users = len(store.users()) if store.exists() else 0
    print(f"console for park {home.park_id()} on http://{host}:{port}/ ({users} console users"
          + ("; add the first admin: fieldpos console user add --role admin ..." if not users else "") + ")", flush=True)
    uvicorn.run(create_app(home.home), host=host, port=port, log_level="warning")
    return 0
