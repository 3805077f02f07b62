"""End-to-end figures of the spine, each beside the floor measured in the same run.

1. Online charge round trip: 1,000 sequential charges from one terminal, real Mosquitto on
   loopback, SQLite synchronous=FULL, the ledger in its own process. Floor: a bare paho QoS 1
   request/reply of the same size through the same broker (echo responder, no crypto, no database)
   plus one fsync'd SQLite commit.
2. Ingest: N terminals (default 100), one request in flight each, driven from one select loop,
   into one ledger process. Floor: the same clients against the echo responder.
3. Ed25519 verifications per second on one core (PyNaCl).

Run: tools/dev.sh bench e2e [--terminals 100] [--seconds 10]
"""

import argparse
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
from protocol import envelope, topics  # noqa: E402
from protocol.envelope import Purpose  # noqa: E402
from protocol.messages import CardIssue, Charge  # noqa: E402
from transport import mqtt  # noqa: E402

from floors import fsync_commit_s  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def ms(seconds):
    return f"{seconds * 1000:.2f} ms"


# ---------------------------------------------------------------- processes
def start_ledger(rig):
    process = subprocess.Popen(
        [sys.executable, "-m", "tools.cli", "--home", str(rig.home.home), "ledger", "serve", "--broker-port", str(rig.port),
         "--mqtt", rig.mqtt_version],
        cwd=ROOT,
    )
    time.sleep(1.0)
    return process


def start_echo(rig):
    login = rig.home.ledger_login()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "echo_responder.py"), "127.0.0.1", str(rig.port), login["username"],
         login["password"], rig.park_id, rig.mqtt_version],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    assert process.stdout.readline().strip() == "ready"
    return process


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
        body = Charge(**common(link, seq, visitor), amount_fen=100, lines=single_line("鱼饵 Bait", 100)).to_bytes()
        payloads.append(envelope.seal(body, signing_key=identity.signing_key, key_id=identity.key_id,
                                      purpose=Purpose.REQUEST, topic=topic))
    return payloads


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--terminals", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--charges", type=int, default=1000)
    parser.add_argument("--mqtt", choices=("5", "3.1.1"), default="5")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        station_ids = [f"T{n:03d}" for n in range(1, args.terminals + 1)]
        with ParkRig(Path(scratch), mqtt_version=args.mqtt).create({"T-DESK-1": "desk", **{t: "fishing" for t in station_ids}}) as rig:
            rig.start_broker()
            # Cards for every terminal, issued through the real ledger before any timing.
            rig.start_ledger()
            desk = rig.link("T-DESK-1")
            cards = {}
            for terminal_id in station_ids:
                visitor = cards[terminal_id] = card(f"B{terminal_id[1:]}00")
                desk.submit(lambda seq: CardIssue(**common(desk, seq, visitor), card_kind="temporary", card_fee_fen=2000,
                                                  opening_fen=9_000_000, channel="cash", payment_ref=""))
            rig.stop_ledger()

            per_terminal = int(args.seconds * 60) + 50  # more than a terminal can send at the floor's pace
            print(f"signing {args.terminals * per_terminal + 2 * args.charges} requests ...", flush=True)
            sequential = signed_charges(rig, station_ids[0], cards[station_ids[0]], args.charges, 1)
            ingest = {t: signed_charges(rig, t, cards[t], per_terminal, 1 + (args.charges if t == station_ids[0] else 0))
                      for t in station_ids}
            echo_size = sequential[:args.charges]

            commit_s = fsync_commit_s(scratch)
            echo = start_echo(rig)
            echo_times = sequential_round_trips(rig, station_ids[0], echo_size)
            echo_rate = Terminals(rig, station_ids, {t: ingest[t] for t in station_ids}).run(args.seconds)
            stop(echo)

            ledger = start_ledger(rig)
            try:
                online = sequential_round_trips(rig, station_ids[0], sequential)
                ledger_rate = Terminals(rig, station_ids, ingest).run(args.seconds)
            finally:
                stop(ledger)
            verify_rate = verifications_per_second()

    floor_p50 = statistics.median(echo_times) + commit_s
    floor_p99 = percentile(echo_times, 0.99) + commit_s
    print()
    print(f"payload {len(sequential[0])} bytes; MQTT {args.mqtt}, QoS 1, TCP_NODELAY; SQLite WAL synchronous=FULL")
    print(f"floor: bare QoS 1 echo p50 {ms(statistics.median(echo_times))}, p99 {ms(percentile(echo_times, 0.99))}; "
          f"one fsync'd SQLite commit p50 {ms(commit_s)}")
    print(f"online charge round trip ({args.charges} sequential): p50 {ms(statistics.median(online))} "
          f"(floor {ms(floor_p50)}, {statistics.median(online) / floor_p50:.1f}x; target <= 3x), "
          f"p99 {ms(percentile(online, 0.99))} (floor {ms(floor_p99)}, {percentile(online, 0.99) / floor_p99:.1f}x; target <= 5x)")
    print(f"ingest, {args.terminals} terminals, one in flight each: {ledger_rate:,.0f} charges/s committed and answered; "
          f"echo floor {echo_rate:,.0f}/s; {100 * ledger_rate / echo_rate:.0f} % of floor (target >= 60 %, >= 2,000/s)")
    print(f"Ed25519 verify on one core (PyNaCl): {verify_rate:,.0f}/s")


if __name__ == "__main__":
    main()
