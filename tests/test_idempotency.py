"""(terminal, seq) is the idempotency key forever: retries get the stored Result, never a second
posting; transient failures store nothing, so the retry still succeeds."""

import hashlib
import sqlite3
import threading

from nacl.signing import SigningKey
import paho.mqtt.client as paho
import pytest

from host_sim.rig import OBSERVER, card, common, single_line
from protocol import envelope, topics
from protocol.envelope import Purpose
from protocol.messages import CardIssue, Charge, Result
from transport import mqtt
from terminal.outbox import PendingRequest

VISITOR = card("C00007")


def issue(desk, opening_fen=10000):
    return desk.submit(lambda seq: CardIssue(**common(desk, seq, VISITOR), card_kind="temporary", card_fee_fen=2000,
                                             opening_fen=opening_fen, channel="cash", payment_ref=""))


def charge_builder(link, amount_fen=3000):
    return lambda seq: Charge(**common(link, seq, VISITOR), amount_fen=amount_fen, lines=single_line("烤串 BBQ skewers", amount_fen))


class Observer:
    """Sees every message in the park, as an auditor with read access would."""

    def __init__(self, rig):
        self.messages = []
        self.arrived = threading.Condition()
        self.client = mqtt.make_client(OBSERVER, username=OBSERVER, password=rig.observer_password,
                                       mqtt_version=rig.mqtt_version, persistent=False)
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.on_connect = lambda client, *args: client.subscribe("fieldpos/#", qos=1)
        self.client.connect("127.0.0.1", rig.port, **mqtt.connect_arguments(self.client, persistent=False))
        self.client.loop_start()
        assert subscribed.wait(5)

    def _on_message(self, client, userdata, message):
        with self.arrived:
            self.messages.append((message.topic, message.payload))
            self.arrived.notify_all()

    def wait_for(self, topic, count, timeout_s=10):
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.on(topic)) >= count, timeout_s)
        return self.on(topic)

    def on(self, topic):
        return [payload for t, payload in self.messages if t == topic]

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def txn_count(rig, kind="charge"):
    return rig.reader.db.execute("SELECT COUNT(*) FROM txn WHERE kind=?", (kind,)).fetchone()[0]


def test_the_same_request_sent_three_times_posts_once_and_gets_three_identical_results(rig):
    desk, fishing = rig.link("T-DESK-1"), rig.link("T-FISH-1")
    issue(desk)
    observer = Observer(rig)
    try:
        pending = fishing.enqueue(charge_builder(fishing))
        for _ in range(3):
            fishing.client.publish(fishing.request_topic, pending.payload, qos=1)
        results = observer.wait_for(fishing.result_topic, 3)
    finally:
        observer.close()
    assert len(results) == 3 and len(set(results)) == 1  # byte-identical, signature included
    assert txn_count(rig) == 1
    postings = rig.reader.db.execute(
        "SELECT COUNT(*) FROM posting p JOIN txn t USING (txn_id) WHERE t.kind='charge'").fetchone()[0]
    assert postings == 2
    result = fishing.send(pending)  # the terminal's own resend loop gets the same answer
    assert result.outcome == "approved" and result.balances.fen == 7000


@pytest.mark.sqlite_only(reason="locks the ledger.db file from another connection (SQLite's one writer)")
def test_a_retry_after_the_store_was_locked_is_applied_once(tmp_path, stopped_rig):
    rig = stopped_rig
    ledger = rig.start_ledger(busy_timeout_ms=50)
    desk = rig.link("T-DESK-1")
    fishing = rig.link("T-FISH-1", resend_interval_s=0.3)
    issue(desk)
    blocker = sqlite3.connect(rig.home.db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the database: the ledger's batch fails
    pending = fishing.enqueue(charge_builder(fishing))
    try:
        fishing.send(pending, timeout_s=0.5)
        raise AssertionError("the ledger answered while its store was locked")
    except Exception as error:
        assert type(error).__name__ == "NoResultError"
    assert ledger.transient_failures >= 1
    blocker.execute("ROLLBACK")
    blocker.close()
    result = fishing.send(pending)
    assert result.outcome == "approved" and result.balances.fen == 7000
    assert txn_count(rig) == 1


def test_the_same_seq_with_a_different_body_is_refused_and_raised_as_an_alert(rig):
    desk, fishing = rig.link("T-DESK-1"), rig.link("T-FISH-1")
    issue(desk)
    first = fishing.submit(charge_builder(fishing, 3000))
    assert first.is_approved
    other = fishing.seal(charge_builder(fishing, 100)(first.seq))  # same seq, another amount
    result = fishing.send(PendingRequest(first.seq, other, hashlib.sha256(other).hexdigest()))
    assert (result.outcome, result.reason) == ("refused", "SEQ_REUSED")
    alerts = rig.reader.db.execute("SELECT kind FROM alert").fetchall()
    assert ("SEQ_REUSED",) in alerts
    assert txn_count(rig) == 1


def test_the_terminal_accepts_only_results_signed_by_the_ledger_for_its_own_request(rig):
    desk, fishing = rig.link("T-DESK-1"), rig.link("T-FISH-1")
    issue(desk)
    pending = fishing.enqueue(charge_builder(fishing))
    # What a compromised broker could deliver before the real answer: a Result signed with a key the
    # terminal does not trust, and one signed properly but quoting another request's hash.
    real_key = rig.home.ledger_keys().for_purpose(Purpose.RESULT)
    topic = topics.result("P1", "T-FISH-1")

    def forged(request_sha256, signing_key):
        body = Result(park="P1", terminal="T-FISH-1", seq=pending.seq, request_sha256=request_sha256, outcome="approved",
                      reason="OK", balances=None, txn=1, ledger_time_ms=1, detail="").to_bytes()
        message = paho.MQTTMessage(topic=topic.encode())
        message.payload = envelope.seal(body, signing_key=signing_key, key_id=real_key.key_id, purpose=Purpose.RESULT, topic=topic)
        return message

    fishing._on_message(fishing.client, None, forged(pending.request_sha256, SigningKey.generate()))
    fishing._on_message(fishing.client, None, forged("0" * 64, real_key.signing_key))
    assert fishing.rejected_replies == 1  # the badly signed one; the wrong-hash one matches no request
    assert fishing.outbox.pending_count() == 1
    result = fishing.send(pending)
    assert result.txn is not None and result.txn != 1 and result.balances.fen == 7000
    assert fishing.outbox.pending_count() == 0
