"""Several ledger workers on one PostgreSQL store (issue 16): one hot card charged from 100
terminals at once through two workers sharing the requests ($share/ledger/), one worker killed
mid-run. The books must come out exact: every charge booked once, exactly as many approved as the
balance covers and the card at zero, no request set aside, ``ledger verify`` clean, every request
answered."""

import os
from pathlib import Path
import select
import signal
import subprocess
import sys
import time

import pytest

from host_sim.rig import ParkRig, card, common, single_line
from ledger.intake import lock_names
from protocol import envelope, topics
from protocol.envelope import Purpose
from protocol.messages import REPLY_TYPES, CardIssue, Charge, parse
from transport import mqtt

ROOT = Path(__file__).resolve().parent.parent
TERMINALS = [f"T{n:03d}" for n in range(1, 101)]
CHARGES_PER_TERMINAL = 4
CHARGE_FEN = 100
# Enough for three charges in four: the last hundred meet an empty card, so two workers deciding on
# one balance at once (no lock) would both approve, and the second booking would fail its check.
OPENING_FEN = 30_000
HOT_CARD = card("H00001")
# A terminal re-sends a request that got no answer (the till does every few seconds): what a killed
# worker had in hand comes back this way. Not an assertion: only when the test's load re-sends.
RESEND_S = 2.0
# Each request is published twice at once (a re-send racing its original): the round robin of the
# shared subscription hands the two copies to different workers, which must book it once.
COPIES = 2
# The whole run must end by then (a guard against a hang, never a measured figure).
GIVE_UP_S = 240


def start_worker(rig, number):
    return subprocess.Popen(
        [sys.executable, "-m", "tools.cli", "--home", str(rig.home.home), "ledger", "serve", "--broker-port",
         str(rig.port), "--worker", str(number)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


class Tills:
    """100 terminals in one select loop, each with one request in flight, re-sending it unanswered."""

    def __init__(self, rig, payloads):
        self.payloads = payloads  # terminal -> [payload by seq - 1]
        self.index = dict.fromkeys(payloads, 0)
        self.sent_at = {}
        self.outcomes = {}  # (terminal, seq) -> (outcome, reason, txn)
        self.replies = 0
        self.set_aside = 0
        self.resends = 0
        self.ready = set()
        self.clients = {}
        for terminal_id in payloads:
            identity = rig.identity(terminal_id)
            client = mqtt.make_client(terminal_id, username=terminal_id, password=identity.broker.password,
                                      persistent=False)
            client.user_data_set(terminal_id)
            client.on_connect = lambda c, t, *a: c.subscribe(topics.result("P1", t), qos=1)
            client.on_subscribe = lambda c, t, *a: self.ready.add(t)
            client.on_message = self._on_message
            client.connect("127.0.0.1", rig.port, **mqtt.connect_arguments(client, persistent=False))
            self.clients[terminal_id] = client
        self.sockets = {client.socket(): client for client in self.clients.values()}

    def _send(self, terminal_id):
        index = self.index[terminal_id]
        if index < len(self.payloads[terminal_id]):
            self.sent_at[terminal_id] = time.monotonic()
            for _ in range(COPIES):
                self.clients[terminal_id].publish(topics.request("P1", terminal_id), self.payloads[terminal_id][index], qos=1)

    def _on_message(self, client, terminal_id, message):
        result = parse(envelope.split(message.payload).body, REPLY_TYPES)
        self.replies += 1
        self.set_aside += result.reason == "SET_ASIDE"
        key = (terminal_id, result.seq)
        if key in self.outcomes:
            assert self.outcomes[key] == (result.outcome, result.reason, result.txn), "a retry got another Result"
        self.outcomes[key] = (result.outcome, result.reason, result.txn)
        if result.seq == self.index[terminal_id] + 1 and result.reason != "SET_ASIDE":
            self.index[terminal_id] += 1
            self._send(terminal_id)

    def pump(self):
        readable, writable, _ = select.select(list(self.sockets), [s for s, c in self.sockets.items() if c.want_write()],
                                              [], 0.05)
        for sock in readable:
            self.sockets[sock].loop_read()
        for sock in writable:
            self.sockets[sock].loop_write()
        for client in self.clients.values():
            client.loop_misc()
        now = time.monotonic()
        for terminal_id, sent in list(self.sent_at.items()):
            if self.index[terminal_id] < len(self.payloads[terminal_id]) and now - sent > RESEND_S:
                self.resends += 1
                self._send(terminal_id)

    @property
    def done(self) -> bool:
        return all(self.index[t] == len(p) for t, p in self.payloads.items())

    def start(self):
        deadline = time.monotonic() + 30
        while len(self.ready) < len(self.clients):
            assert time.monotonic() < deadline, "terminals did not subscribe"
            self.pump()
        # The workers may still be subscribing (what reaches the broker before then reaches no
        # one): the re-sends below carry those requests to them, as a real terminal's do.
        for terminal_id in self.clients:
            self._send(terminal_id)

    def close(self):
        for client in self.clients.values():
            client.disconnect()


def test_lock_names_are_the_terminal_and_every_card_sorted():
    charge = Charge(park="P1", terminal="T1", seq=1, terminal_time_ms=1, clock_uncertain=False, operator="op",
                    config_version=0, card=HOT_CARD, amount_fen=100, lines=single_line("x", 100))
    assert lock_names(charge) == ["card:P1:H00001", "terminal:T1"]


def test_two_workers_one_hot_card_100_terminals_and_a_worker_killed_mid_run(tmp_path, postgres_url, monkeypatch):
    monkeypatch.setenv("FIELDPOS_STORE_URL", postgres_url)
    with ParkRig(tmp_path, mqtt_version="5").create({"T-DESK-1": "desk", **{t: "fishing" for t in TERMINALS}}) as rig:
        assert rig.home.store_location.startswith("postgresql://")
        rig.start_broker()
        rig.start_ledger()
        desk = rig.link("T-DESK-1")
        issued = desk.submit(lambda seq: CardIssue(**common(desk, seq, HOT_CARD), card_kind="temporary", card_fee_fen=2000,
                                                   opening_fen=OPENING_FEN, channel="cash", payment_ref=""))
        assert issued.outcome == "approved"
        rig.stop_ledger()

        payloads = {}
        for terminal_id in TERMINALS:
            identity = rig.identity(terminal_id)
            link = rig.link(terminal_id, connect=False)
            topic = topics.request("P1", terminal_id)
            payloads[terminal_id] = [
                envelope.seal(Charge(**common(link, seq, HOT_CARD), amount_fen=CHARGE_FEN,
                                     lines=single_line("鱼饵 Bait", CHARGE_FEN)).to_bytes(),
                              signing_key=identity.signing_key, key_id=identity.key_id, purpose=Purpose.REQUEST, topic=topic)
                for seq in range(1, CHARGES_PER_TERMINAL + 1)]

        workers = [start_worker(rig, 1), start_worker(rig, 2)]
        tills = Tills(rig, payloads)
        try:
            tills.start()
            total = len(TERMINALS) * CHARGES_PER_TERMINAL
            deadline = time.monotonic() + GIVE_UP_S
            killed = False
            while not tills.done:
                assert time.monotonic() < deadline, f"only {sum(tills.index.values())} of {total} answered"
                tills.pump()
                if not killed and sum(tills.index.values()) >= total // 3:
                    workers[1].send_signal(signal.SIGKILL)  # mid-run, with requests in its hands
                    killed = True
            assert killed
        finally:
            tills.close()
            for worker in workers:
                if worker.poll() is None:
                    worker.send_signal(signal.SIGTERM)
                worker.wait(20)

        outcomes = [tills.outcomes[(t, s)] for t in TERMINALS for s in range(1, CHARGES_PER_TERMINAL + 1)]
        approved = [txn for outcome, _, txn in outcomes if outcome == "approved"]
        declined = [reason for outcome, reason, _ in outcomes if outcome != "approved"]
        assert len(approved) == OPENING_FEN // CHARGE_FEN
        assert set(declined) == {"INSUFFICIENT_FUNDS"} and len(declined) == len(outcomes) - len(approved)
        assert len(set(approved)) == len(approved)  # every charge its own transaction: none booked twice
        assert tills.set_aside == 0  # no booking failed its second balance check (two workers, one balance)
        txns = approved

        store = rig.home.open_store()
        try:
            charges = store.db.execute("SELECT COUNT(*), COUNT(DISTINCT terminal_id || '/' || seq) FROM txn "
                                       "WHERE kind = 'charge'").fetchone()
            assert tuple(charges) == (len(txns), len(txns))
            assert store.card_balances("P1", HOT_CARD.account)[0] == OPENING_FEN - len(txns) * CHARGE_FEN == 0
            assert store.db.execute("SELECT COUNT(*) FROM alert WHERE kind = 'SET_ASIDE'").fetchone()[0] == 0
        finally:
            store.close()
        verify = subprocess.run([sys.executable, "-m", "tools.cli", "--home", str(rig.home.home), "ledger", "verify"],
                                cwd=ROOT, capture_output=True, text=True, env={**os.environ})
        assert verify.returncode == 0, verify.stdout + verify.stderr
        print(f"\n{len(txns)} charges booked once each through 2 workers (one killed); {tills.resends} re-sends")


def test_several_workers_need_postgresql(tmp_path):
    with ParkRig(tmp_path, mqtt_version="5").create({"T-DESK-1": "desk"}) as rig:
        if rig.home.store_location.startswith("postgres"):
            pytest.skip("this park is on PostgreSQL (FIELDPOS_TEST_STORE=postgresql)")
        done = subprocess.run([sys.executable, "-m", "tools.cli", "--home", str(rig.home.home), "ledger", "serve",
                               "--workers", "2"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2
    assert "needs the books on PostgreSQL" in done.stderr
