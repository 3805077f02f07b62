"""What Mosquitto does with a ledger worker that died while a member of the shared subscription
``$share/ledger/<requests>`` (Mosquitto issues #2662 and #1747), for the two session settings a
worker could use. Prints counts from one run of the park's own Mosquitto config on loopback.

For each setting: workers A and B subscribe; B's connection is cut without a DISCONNECT (a killed
process); a terminal then publishes N requests; we count what A receives, then let B come back with
the same client id and count what its session had kept for it.

- persistent (clean start off, session expiry 1 day: what a single ledger uses): Mosquitto keeps
  handing B its share while B is away; those requests wait in B's session until B returns (or the
  session expires), so with a dead worker they are stranded, answered only after the terminals'
  re-sends reach A.
- no session (clean start on, session expiry 0: what ``serve --workers N`` uses): B's subscription
  ends with its connection and A receives every request.

Run: .venv/bin/python bench/shared_offline.py [--requests 100]
"""

import argparse
from pathlib import Path
import sys
import tempfile
import threading
import time

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from host_sim.rig import ParkRig  # noqa: E402
from protocol import topics  # noqa: E402
from transport import mqtt  # noqa: E402
from transport.broker_config import ledger_request_share_filter, worker_username  # noqa: E402

SETTLE_S = 0.5  # after the last publish: how long we wait for stragglers (loopback: far more than enough)


class Member:
    def __init__(self, rig, worker, *, persistent):
        login = rig.home.ledger_login()
        self.name = worker_username(login["username"], worker)
        self.persistent = persistent
        self.received = []
        self.subscribed = threading.Event()
        self.client = mqtt.make_client(self.name, username=self.name, password=login["password"], persistent=persistent)
        self.client.on_connect = lambda c, *a: c.subscribe(ledger_request_share_filter(rig.park_id), qos=1)
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = lambda c, u, message: self.received.append(message.payload)
        self.client.connect("127.0.0.1", rig.port, **mqtt.connect_arguments(self.client, persistent=persistent))
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise RuntimeError(f"{self.name} did not subscribe")

    def die(self):
        """Gone without a DISCONNECT packet, as a killed process: the socket simply closes."""
        self.client.loop_stop()
        self.client.socket().close()

    def stop(self):
        self.client.disconnect()
        self.client.loop_stop()


def run(rig, requests, *, persistent):
    a = Member(rig, 1, persistent=persistent)
    b = Member(rig, 2, persistent=persistent)
    b.die()
    time.sleep(SETTLE_S)  # Mosquitto notices the closed socket
    terminal_id = "T-DESK-1"
    identity = rig.identity(terminal_id)
    terminal = mqtt.make_client(terminal_id, username=terminal_id, password=identity.broker.password, persistent=False)
    terminal.connect("127.0.0.1", rig.port, **mqtt.connect_arguments(terminal, persistent=False))
    terminal.loop_start()
    infos = [terminal.publish(topics.request(rig.park_id, terminal_id), f"request {n}".encode(), qos=1)
             for n in range(requests)]
    for info in infos:
        info.wait_for_publish(10)
    time.sleep(SETTLE_S)
    to_a = len(a.received)
    back = Member(rig, 2, persistent=persistent)  # the same client id again, as a restarted worker
    time.sleep(SETTLE_S)
    kept_for_b = len(back.received)
    for client in (a, back):
        client.stop()
    terminal.disconnect()
    terminal.loop_stop()
    return to_a, kept_for_b


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        with ParkRig(Path(scratch), mqtt_version="5").create({"T-DESK-1": "desk"}) as rig:
            broker = rig.start_broker()
            version = getattr(broker, "version", "") or "Mosquitto"
            print(f"{version}, MQTT 5, QoS 1, {args.requests} requests published while worker B is dead")
            for persistent, label in ((True, "persistent session (clean start off, expiry 1 day)"),
                                      (False, "no session (clean start on, expiry 0)")):
                to_a, kept = run(rig, args.requests, persistent=persistent)
                stranded = args.requests - to_a
                print(f"{label}: live worker A got {to_a}; {stranded} not delivered to anyone while B was dead; "
                      f"B's session handed {kept} to B when it came back")


if __name__ == "__main__":
    main()
