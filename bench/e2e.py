"""End-to-end figures of the spine, each beside the floor measured in the same run.

1. Online charge round trip: 1,000 sequential charges from one terminal, real Mosquitto on
   loopback, SQLite synchronous=FULL, the ledger in its own process. Floor: a bare paho QoS 1
   request/reply of the same size through the same broker (echo responder, no crypto, no database)
   plus one fsync'd SQLite commit.
2. Ingest: N terminals (default 100), one request in flight each, driven from one select loop,
   into one ledger process. Floor: the same clients against the echo responder.
3. Ed25519 verifications per second on one core (PyNaCl).

``--store postgresql`` keeps the books on the PostgreSQL server at ``--pg-server`` (a database made
for the run and dropped after it) and ``--workers N`` runs N ledger processes sharing the requests
(``serve --workers N``); ``--compare`` runs SQLite with one worker and PostgreSQL with one and two,
each in its own park and beside its own echo floor, and prints them side by side.

Run: tools/dev.sh bench e2e [--terminals 100] [--seconds 10] [--store postgresql --workers 2 | --compare]
"""

import argparse
from contextlib import contextmanager
import os
from pathlib import Path
import select
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nacl.signing import SigningKey  # noqa: E402

from host_sim.rig import ParkRig, card, common, single_line  # noqa: E402
from ledger.store import DEFAULT_CARD_LIMITS  # noqa: E402
from protocol import envelope, topics  # noqa: E402
from protocol.envelope import Purpose  # noqa: E402
from protocol.messages import CardIssue, Charge  # noqa: E402
from transport import mqtt  # noqa: E402

from floors import fsync_commit_s  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# Small enough that a temporary card opened at its balance cap pays every charge of a run within its
# daily spend limit (ledger.store.DEFAULT_CARD_LIMITS): the figure is of approved charges, booked, not
# of declines.
CHARGE_FEN = 10
OPENING_FEN = DEFAULT_CARD_LIMITS["temporary"].max_balance_fen


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def ms(seconds):
    return f"{seconds * 1000:.2f} ms"


# ---------------------------------------------------------------- processes
def start_ledger(rig, workers=1):
    process = subprocess.Popen(
        [sys.executable, "-m", "tools.cli", "--home", str(rig.home.home), "ledger", "serve", "--broker-port", str(rig.port),
         "--mqtt", rig.mqtt_version, "--workers", str(workers)],
        cwd=ROOT,
    )
    time.sleep(1.0 + 0.5 * workers)
    return process


@contextmanager
def bench_store(store, pg_server):
    """The environment a park made inside keeps its books in: SQLite in its home, or a PostgreSQL
    database made for the run (and dropped after it) on ``pg_server``."""
    if store == "sqlite":
        yield
        return
    import psycopg

    name = f"fieldpos_bench_{os.getpid()}"
    with psycopg.connect(f"{pg_server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["FIELDPOS_STORE_URL"] = f"{pg_server}/{name}"
    try:
        yield
    finally:
        os.environ.pop("FIELDPOS_STORE_URL", None)
        with psycopg.connect(f"{pg_server}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_echo(rig):
    login = rig.home.ledger_login()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "echo_responder.py"), "127.0.0.1", str(rig.port), login["username"],
         login["password"], rig.park_id, rig.mqtt_version],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    assert process.stdout.readline().strip() == "ready"
    return process


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) used so far by process ``pid`` and its children still running (a
    ``--workers N`` ledger's workers), from /proc; None where there is no /proc. On a shared machine
    this is steadier than a rate: it does not count the time the ledger waited for a core."""
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for child in [pid, *map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]:
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of the line)
        return total / ticks
    except (OSError, ValueError):
        return None


def stop(process):
    process.terminate()
    process.wait(10)


# ---------------------------------------------------------------- a select-loop load generator
class Terminals:
    """N terminal connections in one thread; each keeps one request in flight and sends the next
    as soon as any message arrives on its result topic."""

    def __init__(self, rig, terminal_ids, payloads_by_terminal):
        self.clients = {}
        self.payloads = payloads_by_terminal
        self.next_index = dict.fromkeys(terminal_ids, 0)
        self.sent_at = {}
        self.latencies = []
        self.answered = 0
        self.ready = set()
        for terminal_id in terminal_ids:
            identity = rig.identity(terminal_id)
            client = mqtt.make_client(terminal_id, username=terminal_id, password=identity.broker.password,
                                      persistent=False, mqtt_version=rig.mqtt_version)
            client.user_data_set(terminal_id)
            client.on_connect = self._on_connect
            client.on_subscribe = lambda c, terminal, *a: self.ready.add(terminal)
            client.on_message = self._on_message
            client.connect("127.0.0.1", rig.port, **mqtt.connect_arguments(client, persistent=False))
            self.clients[terminal_id] = client
        self.sockets = {client.socket(): client for client in self.clients.values()}

    def _on_connect(self, client, terminal_id, flags, reason_code, properties):
        mqtt.set_nodelay(client)
        client.subscribe(topics.result("P1", terminal_id), qos=1)

    def _send(self, terminal_id):
        index = self.next_index[terminal_id]
        if index >= len(self.payloads[terminal_id]):
            return
        self.next_index[terminal_id] = index + 1
        self.sent_at[terminal_id] = time.perf_counter()
        self.clients[terminal_id].publish(topics.request("P1", terminal_id), self.payloads[terminal_id][index], qos=1)

    def _on_message(self, client, terminal_id, message):
        self.latencies.append(time.perf_counter() - self.sent_at[terminal_id])
        self.answered += 1
        if self.running:
            self._send(terminal_id)

    def pump(self, timeout_s):
        readable, writable, _ = select.select(
            list(self.sockets), [s for s, c in self.sockets.items() if c.want_write()], [], timeout_s)
        for sock in readable:
            self.sockets[sock].loop_read()
        for sock in writable:
            self.sockets[sock].loop_write()

    def run(self, seconds):
        self.running = False
        deadline = time.monotonic() + 10
        while len(self.ready) < len(self.clients) and time.monotonic() < deadline:
            self.pump(0.05)
        self.running = True
        started = time.perf_counter()
        for terminal_id in self.clients:
            self._send(terminal_id)
        while time.perf_counter() - started < seconds:
            self.pump(0.05)
        elapsed = time.perf_counter() - started
        self.running = False
        answered = self.answered
        self.timed_latencies = list(self.latencies)
        drain_until = time.monotonic() + 5
        while len(self.latencies) < sum(self.next_index.values()) and time.monotonic() < drain_until:
            self.pump(0.05)
        for client in self.clients.values():
            client.disconnect()
        return answered / elapsed


# ---------------------------------------------------------------- figures
def verifications_per_second(seconds=1.0):
    key = SigningKey.generate()
    message = os.urandom(400)
    signature = key.sign(message).signature
    verify_key = key.verify_key
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(100):
            verify_key.verify(message, signature)
        count += 100
    return count / (time.perf_counter() - started)


def wait_until_answering(rig, terminal_id, payload, timeout_s=60):
    """Re-send one request (idempotent) until the ledger answers it: every worker has subscribed.
    Workers start without a session, so what is published before they subscribe reaches no one."""
    identity = rig.identity(terminal_id)
    client = mqtt.make_client(terminal_id, username=terminal_id, password=identity.broker.password, persistent=False,
                              mqtt_version=rig.mqtt_version)
    arrived = threading.Event()
    client.on_connect = lambda c, *a: c.subscribe(topics.result("P1", terminal_id), qos=1)
    client.on_message = lambda *a: arrived.set()
    client.connect("127.0.0.1", rig.port, **mqtt.connect_arguments(client, persistent=False))
    client.loop_start()
    deadline = time.monotonic() + timeout_s
    while not arrived.is_set():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the ledger did not answer within {timeout_s} s")
        client.publish(topics.request("P1", terminal_id), payload, qos=1)
        arrived.wait(0.5)
    client.disconnect()
    client.loop_stop()


def sequential_round_trips(rig, terminal_id, payloads):
    """One terminal, one request at a time, waiting for any reply on its result topic."""
    identity = rig.identity(terminal_id)
    client = mqtt.make_client(terminal_id, username=terminal_id, password=identity.broker.password, persistent=False,
                              mqtt_version=rig.mqtt_version)
    arrived = threading.Event()
    subscribed = threading.Event()
    client.on_connect = lambda c, *a: (mqtt.set_nodelay(c), c.subscribe(topics.result("P1", terminal_id), qos=1))
    client.on_subscribe = lambda *a: subscribed.set()
    client.on_message = lambda *a: arrived.set()
    client.connect("127.0.0.1", rig.port, **mqtt.connect_arguments(client, persistent=False))
    client.loop_start()
    subscribed.wait(10)
    times = []
    for payload in payloads:
        arrived.clear()
        started = time.perf_counter()
        client.publish(topics.request("P1", terminal_id), payload, qos=1)
        if not arrived.wait(5):
            raise RuntimeError("no reply within 5 s")
        times.append(time.perf_counter() - started)
    client.disconnect()
    client.loop_stop()
    return times


def signed_charges(rig, terminal_id, visitor, count, first_seq):
    identity = rig.identity(terminal_id)
    link = rig.link(terminal_id, connect=False)
    topic = topics.request(identity.park_id, terminal_id)
    payloads = []
    for seq in range(first_seq, first_seq + count):
        body = Charge(**common(link, seq, visitor), amount_fen=CHARGE_FEN,
                      lines=single_line("鱼饵 Bait", CHARGE_FEN)).to_bytes()
        payloads.append(envelope.seal(body, signing_key=identity.signing_key, key_id=identity.key_id,
                                      purpose=Purpose.REQUEST, topic=topic))
    return payloads


def charges_not_approved(rig) -> dict:
    """{outcome and reason: count} of the charges the ledger did not approve (none, in a sound run)."""
    store = rig.home.open_store()
    try:
        rows = store.db.execute("SELECT outcome, reason, COUNT(*) FROM request WHERE kind = 'charge' "
                                "AND outcome <> 'approved' GROUP BY outcome, reason").fetchall()
    finally:
        store.close()
    return {f"{outcome} {reason}": count for outcome, reason, count in rows}


def measure(args, store, workers):
    """One configuration in its own park: the echo floor, then the ledger, on the same broker."""
    with tempfile.TemporaryDirectory() as scratch, bench_store(store, args.pg_server):
        station_ids = [f"T{n:03d}" for n in range(1, args.terminals + 1)]
        with ParkRig(Path(scratch), mqtt_version=args.mqtt).create({"T-DESK-1": "desk", **{t: "fishing" for t in station_ids}}) as rig:
            rig.start_broker()
            # Cards for every terminal, issued through the real ledger before any timing.
            rig.start_ledger()
            desk = rig.link("T-DESK-1")
            cards = {}
            for terminal_id in station_ids:
                visitor = cards[terminal_id] = card(f"B{terminal_id[1:]}00")
                issued = desk.submit(lambda seq: CardIssue(**common(desk, seq, visitor), card_kind="temporary",
                                                           card_fee_fen=2000, opening_fen=OPENING_FEN, channel="cash",
                                                           payment_ref=""))
                if issued.outcome != "approved":
                    raise RuntimeError(f"card {visitor.no} not issued: {issued.reason}")
            rig.stop_ledger()

            per_terminal = int(args.seconds * 60) + 50  # more than a terminal can send at the floor's pace
            print(f"[{store}, {workers} worker(s)] signing {args.terminals * per_terminal + 2 * args.charges} requests ...",
                  flush=True)
            sequential = signed_charges(rig, station_ids[0], cards[station_ids[0]], args.charges, 1)
            ingest = {t: signed_charges(rig, t, cards[t], per_terminal, 1 + (args.charges if t == station_ids[0] else 0))
                      for t in station_ids}
            echo_size = sequential[:args.charges]

            commit_s = fsync_commit_s(scratch)
            echo = start_echo(rig)
            echo_times = sequential_round_trips(rig, station_ids[0], echo_size)
            echo_load = Terminals(rig, station_ids, {t: ingest[t] for t in station_ids})
            echo_rate = echo_load.run(args.seconds)
            stop(echo)

            ledger = start_ledger(rig, workers)
            try:
                wait_until_answering(rig, station_ids[0], sequential[0])
                time.sleep(0.5 * workers)  # the other workers subscribe at about the same time
                online = sequential_round_trips(rig, station_ids[0], sequential)
                load = Terminals(rig, station_ids, ingest)
                cpu_before = cpu_seconds(ledger.pid)
                ledger_rate = load.run(args.seconds)
                cpu_after = cpu_seconds(ledger.pid)
            finally:
                stop(ledger)
            not_approved = charges_not_approved(rig)
            if not_approved:
                raise RuntimeError(f"charges not approved, the figure would not be of bookings: {not_approved}")
    return dict(store=store, workers=workers, payload=len(sequential[0]), commit_s=commit_s, echo_times=echo_times,
                echo_rate=echo_rate, echo_latencies=echo_load.timed_latencies, online=online, ledger_rate=ledger_rate,
                latencies=load.timed_latencies,
                cpu_per_charge_s=None if cpu_before is None else (cpu_after - cpu_before) / max(1, sum(load.next_index.values())))


def report(args, figures):
    commit_s, echo_times, online = figures["commit_s"], figures["echo_times"], figures["online"]
    floor_p50 = statistics.median(echo_times) + commit_s
    floor_p99 = percentile(echo_times, 0.99) + commit_s
    store = "SQLite WAL synchronous=FULL" if figures["store"] == "sqlite" else "PostgreSQL (synchronous_commit on)"
    print()
    print(f"[{figures['store']}, {figures['workers']} worker(s)] payload {figures['payload']} bytes; MQTT {args.mqtt}, "
          f"QoS 1, TCP_NODELAY; {store}")
    print(f"floor: bare QoS 1 echo p50 {ms(statistics.median(echo_times))}, p99 {ms(percentile(echo_times, 0.99))}; "
          f"one fsync'd SQLite commit p50 {ms(commit_s)}")
    print(f"online charge round trip ({args.charges} sequential): p50 {ms(statistics.median(online))} "
          f"(floor {ms(floor_p50)}, {statistics.median(online) / floor_p50:.1f}x; target <= 3x), "
          f"p99 {ms(percentile(online, 0.99))} (floor {ms(floor_p99)}, {percentile(online, 0.99) / floor_p99:.1f}x; target <= 5x)")
    ledger_rate, echo_rate = figures["ledger_rate"], figures["echo_rate"]
    print(f"ingest, {args.terminals} terminals, one in flight each: {ledger_rate:,.0f} charges/s committed and answered; "
          f"echo floor {echo_rate:,.0f}/s; {100 * ledger_rate / echo_rate:.0f} % of floor (target >= 60 %, >= 2,000/s)")
    if figures["cpu_per_charge_s"] is not None:
        print(f"ledger CPU per ingested charge: {figures['cpu_per_charge_s'] * 1e6:,.0f} µs (user + system, all workers; "
              f"the time it waited for a core not counted)")
    latencies, echo_latencies = figures["latencies"], figures["echo_latencies"]
    if latencies and echo_latencies:
        print(f"ingest round trip under load: p50 {ms(statistics.median(latencies))}, p99 {ms(percentile(latencies, 0.99))} "
              f"(echo floor p50 {ms(statistics.median(echo_latencies))}, p99 {ms(percentile(echo_latencies, 0.99))})")


def table(args, rows):
    print()
    print(f"| store, workers | ingest/s | echo floor/s | % of floor | p50 under load (floor) | p99 under load (floor) |")
    print("|---|---|---|---|---|---|")
    for f in rows:
        lat, echo = f["latencies"] or [0], f["echo_latencies"] or [0]
        print(f"| {f['store']}, {f['workers']} | {f['ledger_rate']:,.0f} | {f['echo_rate']:,.0f} | "
              f"{100 * f['ledger_rate'] / f['echo_rate']:.0f} % | {ms(statistics.median(lat))} ({ms(statistics.median(echo))}) | "
              f"{ms(percentile(lat, 0.99))} ({ms(percentile(echo, 0.99))}) |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--terminals", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--charges", type=int, default=1000)
    parser.add_argument("--mqtt", choices=("5", "3.1.1"), default="5")
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--workers", type=int, default=1, help="ledger processes (more than one: PostgreSQL only)")
    parser.add_argument("--pg-server", default="postgresql://postgres@127.0.0.1:5432",
                        help="PostgreSQL server for --store postgresql (default: %(default)s)")
    parser.add_argument("--compare", action="store_true",
                        help="SQLite 1 worker, PostgreSQL 1 and 2 workers, one after the other in this run")
    args = parser.parse_args()
    if args.workers > 1 and args.store != "postgresql" and not args.compare:
        parser.error("--workers above 1 needs --store postgresql (a SQLite ledger has one writer)")
    configs = [("sqlite", 1), ("postgresql", 1), ("postgresql", 2)] if args.compare else [(args.store, args.workers)]
    rows = []
    for store, workers in configs:
        rows.append(measure(args, store, workers))
        report(args, rows[-1])
    if len(rows) > 1:
        table(args, rows)
    print(f"Ed25519 verify on one core (PyNaCl): {verifications_per_second():,.0f}/s")


if __name__ == "__main__":
    main()
