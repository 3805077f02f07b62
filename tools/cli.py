"""The ``fieldpos`` command: one entry point for technicians, operators and developers."""

import argparse
import logging
import os
from pathlib import Path
import signal
import sys

from tools.arg_types import (
    positive_int, demo_terminal_count, seed, port, fen, price_fen, clock_time, display_text, basis_points, existing_file,
)
from tools.park_args import existing_store, has_ledger, park_home

DEFAULT_HOME = os.environ.get("FIELDPOS_HOME", "var/park")
# Plain text, not the module docstring: argparse prints a description verbatim, and the docstring's
# reStructuredText would reach the operator as raw markup.
CLI_DESCRIPTION = "The fieldpos command: one entry point for technicians, operators and developers."


def cmd_ledger_init(args) -> int:
    park_home(args).init(args.park, args.name, card_fee_fen=args.card_fee_fen, require_login=not args.no_login_required,
                         store_url=args.store)
    print(f"ledger for park {args.park} created in {args.home}"
          + (" (requests are accepted without a staff login)" if args.no_login_required else ""))
    return 0


def cmd_station_add(args) -> int:
    if not has_ledger(args):
        return 1
    from ledger.park_admin import ParkAdmin
    from tools.admin_cli import record_change

    record_change(args, ParkAdmin(park_home(args)).add_station(args.station, args.name, contractor_id=args.contractor,
                                                               commission_bp=args.commission_bp))
    print(f"station {args.station} added")
    return 0


YES_NO = {"yes": True, "no": False}


def cmd_member_settings(args) -> int:
    """Show the park's member settings; ``--allow-transfer yes|no`` turns member transfers on or off
    and leaves the other settings as they are."""
    from protocol.money import format_fen

    if args.allow_transfer is not None and args.allow_transfer not in YES_NO:
        print(f"fieldpos: --allow-transfer takes yes or no, not {args.allow_transfer!r}", file=sys.stderr)
        return 2
    store = existing_store(args)
    if store is None:
        return 1
    park_id = park_home(args).park_id()
    try:
        bonus_first, points_per_yuan, no_pin_limit_fen = store.member_settings(park_id)
        if args.allow_transfer is not None:
            store.set_member_settings(park_id, bonus_first=bonus_first, points_per_yuan=points_per_yuan,
                                      no_pin_limit_fen=no_pin_limit_fen, allow_transfer=YES_NO[args.allow_transfer])
        allows_transfer = store.allows_member_transfer(park_id)
    finally:
        store.close()
    print(f"park {park_id} members: transfers {'allowed' if allows_transfer else 'not allowed'}, "
          f"no-PIN limit {format_fen(no_pin_limit_fen)}, points per yuan {points_per_yuan}, "
          f"{'bonus' if bonus_first else 'real money'} spent first")
    return 0


def cmd_staff_add(args) -> int:
    import getpass

    if not has_ledger(args):
        return 1
    pin = args.pin if args.pin is not None else getpass.getpass(f"PIN for {args.staff} (4-6 digits): ")
    from ledger.park_admin import ParkAdmin
    from tools.admin_cli import record_change

    record_change(args, ParkAdmin(park_home(args)).add_staff(args.staff, args.name, args.role, args.card_no, pin))
    print(f"staff {args.staff} ({args.role}) added with card {args.card_no}")
    return 0


# ------------------------------------------------------------ what the tills sell by (sent in their signed config)
CONFIG_NOTE = "running tills take it with their next config"


def _describe_station(station_id: str, settings) -> list[str]:
    from protocol.money import format_fen

    hours = "always open" if settings.opens is None else f"open {settings.opens}-{settings.closes}"
    lines = [f"station {station_id} ({settings.name}): {settings.mode} mode, {hours}, {len(settings.menu)} menu item(s)"]
    lines += [f"  {key} {item.item}  {item.name}  {format_fen(item.price_fen)}" for key, item in enumerate(settings.menu, 1)]
    return lines


def _change_station(args, change, done: str) -> int:
    if not has_ledger(args):
        return 1
    from ledger.park_admin import ParkAdmin
    from tools.admin_cli import record_change

    # The console's action names: station.menu_add|menu_set|menu_remove, station.mode, station.hours.
    action = "station." + (f"menu_{args.menu_command}" if args.station_command == "menu" else args.station_command)
    record_change(args, ParkAdmin(park_home(args)).change_station_sales(args.station, change, action))
    print(f"station {args.station}: {done}; {CONFIG_NOTE}")
    print("\n".join(_describe_station(args.station, park_home(args).station_settings(args.station))))
    return 0


def cmd_station_menu_list(args) -> int:
    if not has_ledger(args):
        return 1
    print("\n".join(_describe_station(args.station, park_home(args).station_settings(args.station))))
    return 0


def cmd_station_menu_add(args) -> int:
    from ledger.station_settings import add_item

    return _change_station(args, lambda now: add_item(now, args.station, args.item, args.name, args.price_fen),
                           f"menu item {args.item} added")


def cmd_station_menu_set(args) -> int:
    from ledger.station_settings import set_item

    if args.name is None and args.price_fen is None:
        print("fieldpos: station menu set needs --name or --price-fen (or both)", file=sys.stderr)
        return 2
    return _change_station(args, lambda now: set_item(now, args.station, args.item, name=args.name, price_fen=args.price_fen),
                           f"menu item {args.item} changed")


def cmd_station_menu_remove(args) -> int:
    from ledger.station_settings import remove_item

    return _change_station(args, lambda now: remove_item(now, args.station, args.item), f"menu item {args.item} removed")


def cmd_station_mode(args) -> int:
    from ledger.station_settings import set_mode

    return _change_station(args, lambda now: set_mode(now, args.station, args.mode), f"sells in {args.mode} mode")


def cmd_station_hours(args) -> int:
    from ledger.station_settings import set_hours

    given = (args.open is not None, args.close is not None)
    if given != ((False, False) if args.always else (True, True)):
        print("fieldpos: station hours takes --open HH:MM and --close HH:MM, or --always", file=sys.stderr)
        return 2
    return _change_station(args, lambda now: set_hours(now, args.station, args.open, args.close),
                           "always open" if args.always else f"open {args.open}-{args.close}")


def cmd_staff_list(args) -> int:
    if not has_ledger(args):
        return 1
    members = park_home(args).staff_members()
    for staff_id, name, role, card_no, is_active in members:
        print(f"{staff_id}  {name}  {role}  card {card_no}" + ("" if is_active else "  (retired)"))
    print(f"{sum(member[4] for member in members)} active, {sum(not member[4] for member in members)} retired")
    return 0


def cmd_staff_set(args) -> int:
    if not has_ledger(args):
        return 1
    if args.name is None and args.role is None:
        print("fieldpos: staff set needs --name or --role (or both)", file=sys.stderr)
        return 2
    from ledger.park_admin import ParkAdmin
    from tools.admin_cli import record_change

    change = ParkAdmin(park_home(args)).change_staff(args.staff, name=args.name, role=args.role)
    record_change(args, change)
    print(f"staff {args.staff}: {change.after['name']}, {change.after['role']}; {CONFIG_NOTE}")
    return 0


def cmd_staff_retire(args) -> int:
    if not has_ledger(args):
        return 1
    from ledger.park_admin import ParkAdmin
    from tools.admin_cli import record_change

    record_change(args, ParkAdmin(park_home(args)).change_staff(args.staff, retire=True))
    print(f"staff {args.staff} retired: their card no longer logs in; {CONFIG_NOTE}")
    return 0


def cmd_provision(args) -> int:
    from ledger.park_home import STATION_KINDS

    if not has_ledger(args):
        return 1
    kinds = STATION_KINDS.get(args.kinds) or tuple(args.kinds.split(","))
    tls_ca = Path(args.tls_ca).read_text() if args.tls_ca else None
    from transport.broker_config import is_loopback_host

    home = park_home(args)
    path = home.provision_terminal(args.terminal, args.station, kinds=kinds, broker_host=args.broker_host,
                                   broker_port=args.broker_port, tls_ca_pem=tls_ca)
    from ledger.park_admin import Change
    from tools.admin_cli import record_change

    record_change(args, Change("terminal.provision", args.terminal, None, {"station": args.station, "kinds": args.kinds}))
    print(f"terminal {args.terminal} registered; bundle written to {path} (keep it secret; flash it with flash.sh)")
    if is_loopback_host(args.broker_host):
        print(f"fieldpos: warning: the bundle's broker host {args.broker_host} is this machine itself: only a till run "
              f"here reaches it; for a Pi, provision with --broker-host set to this host's address on the park's "
              f"network", file=sys.stderr)
    if home.refresh_broker_logins():
        print(_reload_note(home))
    else:
        print("write the broker config (fieldpos broker-config) so the terminal can log in")
    return 0


def _reload_note(home) -> str:
    """Make the park's running broker re-read the logins just written, and say what happened."""
    from transport.mosquitto_process import reload_running_broker

    pid = reload_running_broker(home.broker_dir)
    if pid is not None:
        return f"broker logins updated; the running broker (PID {pid}) reloaded them"
    return (f"broker logins updated in {home.broker_dir}; no broker started by 'fieldpos broker-run' is running for "
            f"this home: one started another way reads them after 'kill -HUP <its PID>'")


def _register_simulated_hardware_if_chosen() -> None:
    """The terminal never imports the simulator; on a machine without the Pi's SPI device (or with
    FIELDPOS_HW=sim) the CLI imports it so that it registers the "sim" hardware."""
    from terminal.hal.factory import choose_kind

    try:
        kind = choose_kind()
    except ValueError:
        return  # make_hardware reports the bad FIELDPOS_HW where it is used
    if kind == "sim":
        import host_sim  # noqa: F401 - registers "sim" with terminal.hal.factory


def cmd_terminal_check(args) -> int:
    from terminal.selfcheck import check_terminal

    _register_simulated_hardware_if_chosen()
    lines = check_terminal(Path(args.bundle), Path(args.config), mqtt_version=args.mqtt)
    for line in lines:
        print(line)
    failed = [line.part for line in lines if not line.is_ok]
    print(f"{len(lines) - len(failed)} of {len(lines)} ok" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def cmd_terminal_retire(args) -> int:
    if not has_ledger(args):
        return 1
    from ledger.park_admin import Change
    from tools.admin_cli import record_change

    from_seq = park_home(args).retire_terminal(args.terminal, is_stolen=args.stolen)
    record_change(args, Change("terminal.retire", args.terminal, {"is_retired": False},
                               {"is_retired": True, "refused_from_seq": from_seq, "stolen": args.stolen}))
    print(f"terminal {args.terminal} retired: the ledger refuses what it signs from seq {from_seq} on; its bundle is "
          f"deleted. Regenerate the broker config (fieldpos broker-config) to remove its login. Terminal ids are "
          f"never reused: provision the replacement under a new id.")
    return 0


def cmd_broker_config(args) -> int:
    if not has_ledger(args):
        return 1
    home = park_home(args)
    options = {}
    if args.tls:
        from transport.broker_config import TlsFiles
        from transport.park_ca import CA_CERT_FILE, CA_KEY_FILE, create_park_ca, issue_server_certificate

        # Terminals pin the park CA, so regenerating the config (a new terminal, a new port) keeps
        # the CA and the broker's certificate; delete the ca/ folder on purpose to start over.
        ca_dir = home.home / "ca"
        ca_cert, ca_key = ca_dir / CA_CERT_FILE, ca_dir / CA_KEY_FILE
        if not ca_cert.exists():
            ca_cert, ca_key = create_park_ca(ca_dir, home.park_id())
            print(f"park CA created: {ca_cert} (give it to terminals with 'provision --tls-ca')")
        server = TlsFiles(ca_cert, ca_dir / "broker.crt", ca_dir / "broker.key")
        if not server.certfile.exists():
            server = issue_server_certificate(ca_cert, ca_key, ca_dir, hostnames=args.hostname or ["localhost"])
        options["tls"] = server
        options["tls_port"] = args.tls_port
    path = home.write_broker_config(port=args.port, listen_host=args.listen, **options)
    print(f"mosquitto config written: {path}")
    from transport.mosquitto_process import reload_running_broker

    pid = reload_running_broker(home.broker_dir)
    print(f"the running broker (PID {pid}) reloaded its logins and ACL (a new port needs a restart)" if pid is not None
          else f"start it with: fieldpos --home {args.home} broker-run")
    return 0


def cmd_broker_run(args) -> int:
    """Run the park's Mosquitto in the foreground with the config broker-config wrote, until SIGTERM or
    Ctrl-C; while it runs, provision and broker-config make it reload its logins."""
    import re
    import threading

    from transport.mosquitto_process import MosquittoProcess, is_port_accepting

    if not has_ledger(args):
        return 1
    home = park_home(args)
    config = home.broker_dir / "mosquitto.conf"
    if not config.is_file():
        print(f"fieldpos: no broker config in {home.broker_dir} (write one with 'fieldpos broker-config')", file=sys.stderr)
        return 1
    listener = re.search(r"^listener (\d+) (\S+)$", config.read_text(), re.MULTILINE)
    if listener is None:  # the first listener is the plain one broker-config writes
        print(f"fieldpos: {config} has no listener line: write it again with 'fieldpos broker-config'", file=sys.stderr)
        return 1
    port, host = int(listener.group(1)), listener.group(2)
    probe_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    broker = MosquittoProcess(config, port, host=probe_host)
    if is_port_accepting(probe_host, port):
        print(f"fieldpos: port {port} is already taken (Debian's own mosquitto service holds 1883: stop it with "
              f"'sudo systemctl disable --now mosquitto', or choose another port with 'fieldpos broker-config "
              f"--port 1884')", file=sys.stderr)
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    with broker:
        print(f"broker for park {home.park_id()} listening on {host}:{port} (PID {broker.pid}; log {broker.log_path})",
              flush=True)
        while not stop.is_set() and broker.is_running:
            stop.wait(1.0)
    if not stop.is_set():
        print(f"fieldpos: the broker stopped on its own; see {broker.log_path}", file=sys.stderr)
        return 1
    return 0


def _serve_forever(service) -> int:
    def stop(signum, frame):
        service._stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    service.run()
    return 0


def cmd_ledger_serve(args) -> int:
    from ledger.intake import Intake
    from ledger.service import LedgerService

    home = park_home(args)
    if not has_ledger(args):
        return 1
    if args.worker is not None:
        return _serve_as_worker(args, home)
    if args.workers > 1 and not home.store_location.startswith("postgres"):
        print(f"fieldpos: --workers {args.workers} needs the books on PostgreSQL (ledger init --store "
              f"postgresql://...): a SQLite ledger has one writer", file=sys.stderr)
        return 2
    # Held until the service stops: a second ledger on this home refuses, naming this one's PID.
    with home.lock_ledger():
        if args.workers > 1:
            return _serve_with_workers(args, home)
        if (added := home.add_missing_ledger_keys()) is not None:  # a key file from before rentals
            print(f"fieldpos: {added}", file=sys.stderr)
        login = home.ledger_login()
        intake = Intake(home.open_store(), home.ledger_keys())
        service = LedgerService(intake, park_id=home.park_id(), host=args.broker_host, port=args.broker_port,
                                username=login["username"], password=login["password"], mqtt_version=args.mqtt)
        from ledger.notify import HttpSmsSender, Notifier, PaymentRelaySender

        renters = PaymentRelaySender(args.renter_relay_url, os.environ.get("FIELDPOS_RELAY_KEY", "")) \
            if args.renter_relay_url else None
        Notifier(home.store_location, HttpSmsSender(args.sms_url, os.environ.get("FIELDPOS_SMS_KEY", "")) if args.sms_url else None,
                 renter_sender=renters).start()
        from ledger.payments.service import start_online_payments

        # Online deposits: only for a home holding payment-providers.json (None otherwise).
        start_online_payments(home.home, home.store_location, home.ledger_keys(), home.park_id())
        logging.getLogger("fieldpos").info("ledger for %s serving via %s:%s", home.park_id(), args.broker_host, args.broker_port)
        from tools.serving_line import announce_when_subscribed, serving_line

        terminal_count = len(intake.store.terminals(home.park_id()))
        announce_when_subscribed(service.is_subscribed, serving_line(
            home.park_id(), terminal_count, args.broker_host, args.broker_port, args.mqtt))
        return _serve_forever(service)


def _serve_as_worker(args, home) -> int:
    """One of ``serve --workers N``'s processes (started by it, under its hold on the home)."""
    from ledger.intake import Intake
    from ledger.service import LedgerService

    login = home.ledger_login()
    service = LedgerService(Intake(home.open_store(), home.ledger_keys()), park_id=home.park_id(),
                            host=args.broker_host, port=args.broker_port, username=login["username"],
                            password=login["password"], mqtt_version=args.mqtt, worker=args.worker)
    logging.getLogger("fieldpos").info("ledger worker %d for %s serving via %s:%s", args.worker, home.park_id(),
                                       args.broker_host, args.broker_port)
    return _serve_forever(service)


# A worker that died is started again after this long (systemd's RestartSec for the whole service).
WORKER_RESTART_S = 1.0


def _serve_with_workers(args, home) -> int:
    """N worker processes on one PostgreSQL store, sharing the park's requests through MQTT 5 shared
    subscriptions; this process holds the home, sends notifications, and starts a worker again when
    one dies (what it had in hand the terminals re-send, and the ledger answers it once)."""
    import subprocess
    import threading
    import time

    from ledger.notify import HttpSmsSender, Notifier, PaymentRelaySender
    from transport.broker_config import LEDGER_WORKER_LOGINS

    if not 1 <= args.workers <= LEDGER_WORKER_LOGINS:
        print(f"fieldpos: --workers {args.workers}: 1 to {LEDGER_WORKER_LOGINS} (the broker config's worker logins)",
              file=sys.stderr)
        return 2
    renters = PaymentRelaySender(args.renter_relay_url, os.environ.get("FIELDPOS_RELAY_KEY", "")) \
        if args.renter_relay_url else None
    Notifier(home.store_location, HttpSmsSender(args.sms_url, os.environ.get("FIELDPOS_SMS_KEY", "")) if args.sms_url else None,
             renter_sender=renters).start()
    command = [sys.executable, "-m", "tools.cli", "--home", str(home.home), "ledger", "serve", "--broker-host",
               args.broker_host, "--broker-port", str(args.broker_port), "--mqtt", args.mqtt]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    workers = {k: subprocess.Popen([*command, "--worker", str(k)]) for k in range(1, args.workers + 1)}
    print(f"ledger for park {home.park_id()}: {args.workers} workers (PIDs "
          f"{', '.join(str(p.pid) for p in workers.values())}) via {args.broker_host}:{args.broker_port}", flush=True)
    while not stop.wait(0.5):
        for k, process in workers.items():
            if process.poll() is not None:
                logging.getLogger("fieldpos").error("ledger worker %d (PID %d) ended with %s; starting it again",
                                                    k, process.pid, process.returncode)
                time.sleep(WORKER_RESTART_S)
                workers[k] = subprocess.Popen([*command, "--worker", str(k)])
    for process in workers.values():
        process.terminate()
    for process in workers.values():
        process.wait(10)
    return 0


# ``ledger verify`` exit codes: 0 books balance and every seq has a final outcome; 1 the books do not
# balance (whatever else); 3 the books balance but some seqs have no final outcome yet (a queue still
# draining, a message set aside, a request never received): work for an operator, not a broken ledger.
VERIFY_UNFINISHED_EXIT = 3


def cmd_ledger_verify(args) -> int:
    from ledger.verify import unfinished_seqs, verify_books

    store = existing_store(args)
    if store is None:
        return 1
    try:
        report = verify_books(store)
        unfinished = unfinished_seqs(store)
    finally:
        store.close()
    print(f"{report.transactions} transactions, {report.postings} postings, {report.card_accounts} card accounts")
    if report.is_ok:
        print("books balance: every transaction sums to zero per asset; every card balance equals its postings")
    for problem in report.problems:
        print(f"MISMATCH: {problem}")
    if unfinished.is_finished:
        print("every terminal seq has a final outcome")
    else:
        print(f"unfinished seqs: {unfinished.count} without a final outcome"
              + (f", {len(unfinished.unreadable_set_asides)} set-aside messages without a readable seq"
                 if unfinished.unreadable_set_asides else ""))
        for run in unfinished.runs:
            print(f"  {run}")
        if unfinished.runs_left_out:
            print(f"  ... and {unfinished.runs_left_out} more runs")
        for line in unfinished.unreadable_set_asides:
            print(f"  set aside {line}")
    if not report.is_ok:
        return 1
    return 0 if unfinished.is_finished else VERIFY_UNFINISHED_EXIT


def _format_ms(time_ms: int) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(time_ms / 1000).astimezone().strftime("%Y-%m-%d %H:%M:%S%z")


def cmd_set_aside_list(args) -> int:
    store = existing_store(args)
    if store is None:
        return 1
    try:
        held = store.set_asides()
    finally:
        store.close()
    for row in held:
        seq = "seq ?" if row.seq is None else f"seq {row.seq}"
        print(f"{_format_ms(row.set_aside_ms)}  {row.terminal_id or '?'}  {seq}  {row.payload_sha256[:12]}  {row.detail}")
    print(f"{len(held)} set aside" + (" (retry: fieldpos ledger set-aside retry SHA-PREFIX... or --all)" if held else ""))
    return 0


def cmd_set_aside_retry(args) -> int:
    """Run held messages through the intake again, with the park's keys, as the ledger would. A final
    outcome clears the hold: stored under its seq (applied) or finally refused (released); the
    terminal's next re-send gets that answer. A not-final one (it failed again) stays held."""
    if not args.all and not args.prefixes:
        print("fieldpos: name set-aside messages by their SHA-256 prefix, or --all", file=sys.stderr)
        return 1
    store = existing_store(args)
    if store is None:
        return 1
    try:
        return _retry_set_asides(store, park_home(args).ledger_keys(), args)
    finally:
        store.close()


def _retry_set_asides(store, keys, args) -> int:
    import time

    from ledger.intake import Intake
    from protocol import envelope
    from protocol.messages import REPLY_TYPES, parse
    from protocol.reasons import NOT_FINAL_REASONS

    held = store.set_asides()
    chosen, failed = ([], 0)
    if args.all:
        chosen = held
    for prefix in args.prefixes:
        matches = [row for row in held if row.payload_sha256.startswith(prefix.lower())]
        if len(matches) != 1:
            print(f"{prefix}: {'no held message' if not matches else f'{len(matches)} held messages'} with that prefix")
            failed += 1
        elif matches[0] not in chosen:
            chosen.append(matches[0])
    intake = Intake(store, keys)
    for row in chosen:
        label = f"{row.payload_sha256[:12]} {row.terminal_id or '?'} seq {'?' if row.seq is None else row.seq}"
        replies = intake.process([(row.topic, row.payload, row.payload_sha256)], retry_set_aside=True)
        if replies:
            answer = parse(envelope.split(replies[0].payload).body, REPLY_TYPES)
            outcome, reason = getattr(answer, "outcome", "approved"), getattr(answer, "reason", "OK")
        else:
            outcome, reason = "dropped", "NO_ANSWER"  # nothing a terminal waits for (not a request topic)
        if reason in NOT_FINAL_REASONS:
            print(f"{label}: {outcome} {reason}: still held")
            failed += 1
            continue
        state = "applied" if outcome in ("approved", "declined") else "released"
        with store.batch():
            store.resolve_set_aside(row.payload_sha256, state, f"{outcome} {reason}", int(time.time() * 1000))
        print(f"{label}: {outcome} {reason}: {state}; the terminal's next re-send gets this answer")
    return 1 if failed else 0


def cmd_report_offline(args) -> int:
    import time

    from ledger.reports.offline import format_offline_exposure, offline_exposure

    home = park_home(args)
    store = existing_store(args)
    if store is None:
        return 1
    try:
        print(format_offline_exposure(offline_exposure(store, home.park_id()), int(time.time() * 1000)))
    finally:
        store.close()
    return 0


def cmd_demo(args) -> int:
    from host_sim.demo import run_demo

    return run_demo(Path(args.out), terminals=args.terminals, visitors=args.visitors, mqtt_version=args.mqtt,
                    broker=args.broker, seed=args.seed)


def cmd_terminal_run(args) -> int:
    if args.sim:
        if args.bundle or args.config:
            print("fieldpos: --sim builds its own park; for a bundle on emulated hardware run without --sim "
                  "and set FIELDPOS_HW=sim", file=sys.stderr)
            return 2
        return _run_station_simulator(args)
    if not (args.bundle and args.config):
        print("fieldpos: terminal run needs --bundle and --config (or --sim)", file=sys.stderr)
        return 2
    import threading

    from terminal.runner import run_terminal

    _register_simulated_hardware_if_chosen()
    stop = threading.Event()
    # systemd stops the service with SIGTERM: finish the turn, close the link and the outbox.
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    return run_terminal(Path(args.bundle), Path(args.config), stop=stop, mqtt_version=args.mqtt)


def _run_station_simulator(args) -> int:
    from terminal.hal.printer import PROFILES

    if args.printer_profile not in PROFILES:
        print(f"fieldpos: --printer-profile must be one of {', '.join(PROFILES)}", file=sys.stderr)
        return 2
    try:
        from host_sim.station_ui import run_station_ui
    except ImportError as error:
        if not (error.name or "").startswith("textual"):
            raise
        print("fieldpos: the simulator window needs Textual: pip install 'fieldpos[sim]'", file=sys.stderr)
        return 2
    return run_station_ui(Path(args.out), station=args.terminal_station, printer_profile=args.printer_profile)


class _OneLineParser(argparse.ArgumentParser):
    """argparse prints usage plus the error (two lines or more); an operator reads one line that says
    what was wrong and where the help is. Subcommand parsers inherit this class from add_subparsers."""

    def error(self, message):
        print(f"fieldpos: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


# Argument types: bad input is refused while parsing, before a ledger, broker or demo starts.
STAFF_ROLE_CHOICES = ("cashier", "rental", "front_desk", "supervisor", "technician", "finance", "admin")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="fieldpos", description=CLI_DESCRIPTION)
    parser.add_argument("--home", default=DEFAULT_HOME, help="the park's ledger home directory (default: %(default)s)")
    parser.add_argument("-v", "--verbose", action="store_true")
    commands = parser.add_subparsers(dest="command", required=True)

    ledger = commands.add_parser("ledger", help="the central ledger").add_subparsers(dest="ledger_command", required=True)
    init = ledger.add_parser("init", help="create a park's ledger: database, keys, broker login")
    init.add_argument("--park", required=True)
    init.add_argument("--name", required=True)
    init.add_argument("--card-fee-fen", type=fen, default=2000)
    init.add_argument("--store", metavar="URL",
                      help="keep the books on PostgreSQL (postgresql://user@host/db; several ledger workers) instead "
                           "of ledger.db in the home; default: $FIELDPOS_STORE_URL if set")
    init.add_argument("--no-login-required", action="store_true",
                      help="accept requests from terminals where no staff member is logged in (for scripted tests only)")
    init.set_defaults(handler=cmd_ledger_init)
    serve = ledger.add_parser("serve", help="run the ledger service")
    serve.add_argument("--broker-host", default="127.0.0.1")
    serve.add_argument("--broker-port", type=port, default=1883)
    serve.add_argument("--mqtt", choices=("5", "3.1.1"), default="5")
    serve.add_argument("--sms-url", help="SMS gateway for member notifications (default: written to the log); "
                                         "its API key comes from FIELDPOS_SMS_KEY")
    serve.add_argument("--renter-relay-url", help="the park's relay to online renters' WeChat / Alipay accounts, "
                                                  "told of returns and refunds (default: written to the log); its "
                                                  "API key comes from FIELDPOS_RELAY_KEY")
    serve.add_argument("--workers", type=int, default=1,
                       help="ledger processes sharing the park's requests (MQTT 5 shared subscriptions); more than "
                            "one needs the books on PostgreSQL (default: %(default)s)")
    serve.add_argument("--worker", type=int, help=argparse.SUPPRESS)  # one of --workers N's processes
    serve.set_defaults(handler=cmd_ledger_serve)
    verify = ledger.add_parser("verify", help="replay the books and list seqs without a final outcome; exit 1 on a "
                                              "books mismatch, 3 when only seqs are unfinished")
    verify.set_defaults(handler=cmd_ledger_verify)
    set_aside = ledger.add_parser("set-aside", help="messages the ledger holds for an operator") \
        .add_subparsers(dest="set_aside_command", required=True)
    set_aside.add_parser("list", help="one line each: time, terminal, seq, SHA-256 prefix, why") \
        .set_defaults(handler=cmd_set_aside_list)
    retry = set_aside.add_parser("retry", help="run held messages through the ledger again; a final outcome clears the hold")
    retry.add_argument("prefixes", nargs="*", metavar="SHA-PREFIX", help="the held messages, by SHA-256 prefix")
    retry.add_argument("--all", action="store_true", help="every held message")
    retry.set_defaults(handler=cmd_set_aside_retry)
    from tools.day_cli import add_day_commands

    add_day_commands(ledger)

    station = commands.add_parser("station", help="stations").add_subparsers(dest="station_command", required=True)
    add = station.add_parser("add")
    add.add_argument("--station", required=True)
    add.add_argument("--name", required=True, type=display_text)
    add.add_argument("--contractor")
    add.add_argument("--commission-bp", type=basis_points, default=0, help="park commission in basis points (1500 = 15 %%)")
    add.set_defaults(handler=cmd_station_add)
    menu = station.add_parser("menu", help="what a station sells and at what price (its till's keys 1-9, in order)") \
        .add_subparsers(dest="menu_command", required=True)
    menu_list = menu.add_parser("list", help="the station's mode, hours and menu")
    menu_list.add_argument("--station", required=True)
    menu_list.set_defaults(handler=cmd_station_menu_list)
    menu_add = menu.add_parser("add", help="add an item at the end of the menu")
    menu_add.add_argument("--station", required=True)
    menu_add.add_argument("--item", required=True, help="the item's id (letters, digits, - _ .)")
    menu_add.add_argument("--name", required=True, type=display_text, help="what the till shows and prints")
    menu_add.add_argument("--price-fen", required=True, type=price_fen, help="the price in fen (3000 = 30.00)")
    menu_add.set_defaults(handler=cmd_station_menu_add)
    menu_set = menu.add_parser("set", help="rename or reprice an item (it keeps its key)")
    menu_set.add_argument("--station", required=True)
    menu_set.add_argument("--item", required=True)
    menu_set.add_argument("--name", type=display_text)
    menu_set.add_argument("--price-fen", type=price_fen)
    menu_set.set_defaults(handler=cmd_station_menu_set)
    menu_remove = menu.add_parser("remove", help="take an item off the menu (the items after it move up a key)")
    menu_remove.add_argument("--station", required=True)
    menu_remove.add_argument("--item", required=True)
    menu_remove.set_defaults(handler=cmd_station_menu_remove)
    mode = station.add_parser("mode", help="how the station sells: fixed (the first item's price a tap), count (uses x "
                                           "the first item's price), menu (items by key) or free (any amount)")
    mode.add_argument("--station", required=True)
    mode.add_argument("--mode", required=True, choices=("fixed", "count", "menu", "free"))
    mode.set_defaults(handler=cmd_station_mode)
    hours = station.add_parser("hours", help="when the station sells (park time); outside them its till refuses "
                                             "visitors' cards, while staff may still log in, undo and close the shift")
    hours.add_argument("--station", required=True)
    hours.add_argument("--open", type=clock_time, metavar="HH:MM")
    hours.add_argument("--close", type=clock_time, metavar="HH:MM", help="before --open: open past midnight")
    hours.add_argument("--always", action="store_true", help="no opening hours: sells whenever staff are logged in")
    hours.set_defaults(handler=cmd_station_hours)

    staff = commands.add_parser("staff", help="staff who log in on terminals").add_subparsers(dest="staff_command", required=True)
    add_staff = staff.add_parser("add")
    add_staff.add_argument("--staff", required=True, help="staff id (appears as operator on every message)")
    add_staff.add_argument("--name", required=True, type=display_text)
    add_staff.add_argument("--role", required=True, choices=STAFF_ROLE_CHOICES)
    add_staff.add_argument("--card-no", required=True, help="the staff card's number")
    add_staff.add_argument("--pin", help="4-6 digits; asked for when omitted (keeps it out of shell history)")
    add_staff.set_defaults(handler=cmd_staff_add)
    staff.add_parser("list", help="everyone with a staff card: id, name, role, card (never a PIN)") \
        .set_defaults(handler=cmd_staff_list)
    set_staff = staff.add_parser("set", help="change a staff member's name or role")
    set_staff.add_argument("--staff", required=True)
    set_staff.add_argument("--name", type=display_text)
    set_staff.add_argument("--role", choices=STAFF_ROLE_CHOICES)
    set_staff.set_defaults(handler=cmd_staff_set)
    retire_staff = staff.add_parser("retire", help="a staff member leaves: their card no longer logs in (history is kept)")
    retire_staff.add_argument("--staff", required=True)
    retire_staff.set_defaults(handler=cmd_staff_retire)

    from tools.admin_cli import add_admin_commands

    add_admin_commands(commands, staff, station)  # the administration the console's pages also make

    members = commands.add_parser("member-settings", help="show or change the park's member settings")
    members.add_argument("--allow-transfer", metavar="yes|no",
                         help="may members move real money to another member's card at the desk (default: no)")
    members.set_defaults(handler=cmd_member_settings)

    provision = commands.add_parser("provision", help="register a terminal and write its bundle")
    provision.add_argument("--terminal", required=True)
    provision.add_argument("--station", required=True)
    provision.add_argument("--kinds", default="station", help="station, front_desk, supervisor, tap (an unattended tap point), rental (a rental desk), "
                                                            "all, or a comma list of types")
    provision.add_argument("--broker-host", default="127.0.0.1",
                           help="the ledger host's address as the Pis reach it (default %(default)s: this machine "
                                "only, which provision warns about)")
    provision.add_argument("--broker-port", type=port, default=1883)
    provision.add_argument("--tls-ca", type=existing_file, help="park CA certificate (PEM) the terminal verifies the broker with")
    provision.set_defaults(handler=cmd_provision)

    broker = commands.add_parser("broker-config", help="write the Mosquitto config, password file and ACL")
    broker.add_argument("--port", type=port, default=1883)
    broker.add_argument("--listen", default="127.0.0.1")
    broker.add_argument("--tls", action="store_true", help="add a TLS listener with a new park CA")
    broker.add_argument("--tls-port", type=port, default=8883)
    broker.add_argument("--hostname", action="append", help="broker host name for the TLS certificate")
    broker.set_defaults(handler=cmd_broker_config)
    broker_run = commands.add_parser("broker-run", help="run the park's Mosquitto with that config, in the foreground; "
                                                        "provision and broker-config make it reload its logins")
    broker_run.set_defaults(handler=cmd_broker_run)

    report = commands.add_parser("report", help="reports from the books").add_subparsers(dest="report_command", required=True)
    report.add_parser("offline", help="offline sales, overdrafts, queues, and the worst case the policy allows") \
        .set_defaults(handler=cmd_report_offline)
    from tools.report_cli import add_report_commands

    add_report_commands(report)
    from tools.rental_cli import add_rental_commands

    add_rental_commands(commands)
    from tools.settlement_cli import add_settlement_commands

    add_settlement_commands(commands)
    from tools.notice_cli import add_notice_commands

    add_notice_commands(commands)

    from backoffice.console_schema import ROLES
    from tools.console_cli import add_console_commands

    add_console_commands(commands, ROLES)
    from tools.portal_cli import add_portal_commands

    add_portal_commands(commands)

    demo = commands.add_parser("demo", help="run a simulated park: broker, ledger and terminals on this machine")
    demo.add_argument("--out", default="var/demo", help="where the demo leaves its park, logs and receipts: a new or empty folder, or one a previous demo made "
                           "(replaced); any other folder is refused")
    demo.add_argument("--terminals", type=demo_terminal_count, default=4, help="the front desk plus up to three stations")
    demo.add_argument("--visitors", type=positive_int, default=60)
    demo.add_argument("--seed", type=seed, default=7,  # host_sim.demo.DEFAULT_SEED (not imported to build the parser)
                      help="the park day to play: one seed prints the same figures every run (default: %(default)s)")
    demo.add_argument("--mqtt", choices=("5", "3.1.1"), default="5",
                      help="MQTT version (the embedded broker speaks 3.1.1 only and forces it)")
    demo.add_argument("--broker", choices=("auto", "mosquitto", "embedded"), default="auto",
                      help="auto: Mosquitto if installed, else the embedded Python broker (default: %(default)s)")
    demo.set_defaults(handler=cmd_demo)

    terminal = commands.add_parser("terminal", help="a station terminal").add_subparsers(dest="terminal_command", required=True)
    check = terminal.add_parser("check", help="check this board's parts and its link to the ledger (stop the till first)")
    check.add_argument("--bundle", required=True)
    check.add_argument("--config", required=True)
    check.add_argument("--mqtt", choices=("5", "3.1.1"), default="5")
    check.set_defaults(handler=cmd_terminal_check)
    retire = terminal.add_parser("retire", help="retire a terminal for good (broken, replaced, or stolen)")
    retire.add_argument("--terminal", required=True)
    retire.add_argument("--stolen", action="store_true",
                        help="cut it off even if it still holds sales the ledger has not seen (they will be refused)")
    retire.set_defaults(handler=cmd_terminal_retire)
    run = terminal.add_parser("run", help="run the till: on this board's hardware, or --sim in a window with a park behind it")
    run.add_argument("--bundle", type=existing_file, help="the terminal's provisioning bundle (its outbox is kept beside it)")
    run.add_argument("--config", type=existing_file, help="the station config, a JSON file in StationConfig.to_dict() form")
    run.add_argument("--mqtt", choices=("5", "3.1.1"), default="5")
    run.add_argument("--sim", action="store_true", help="a simulated station in this terminal window, with its own park")
    run.add_argument("--out", default="var/sim", help="with --sim: where the park, receipts and display.png go: a new or empty folder, or one a "
                          "previous --sim made (default: %(default)s)")
    run.add_argument("--terminal-station", choices=("fishing", "riding", "bbq", "desk", "rental"), default="fishing",
                     help="with --sim: which station the terminal serves (default: %(default)s)")
    run.add_argument("--printer-profile", default="58mm-raster",
                     help="with --sim: the emulated printer (80mm-gb18030 prints text the window shows as decoded)")
    run.set_defaults(handler=cmd_terminal_run)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from protocol.errors import FieldposError

    try:
        return args.handler(args)
    except FieldposError as error:
        print(f"fieldpos: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
