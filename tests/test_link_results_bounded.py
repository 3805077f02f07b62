"""The terminal's link keeps no Result it has handed over (issue 11, defect 3): a till that sells
all season does not grow a dict of every answer it ever got. In-process: a stand-in for the MQTT
client answers each publish at once with a Result signed by the park's real ledger key."""

import hashlib
from types import SimpleNamespace

import pytest

from host_sim.rig import ParkRig, card, common, single_line
from protocol import envelope
from protocol.envelope import Purpose
from protocol.messages import Charge, Result
from terminal.outbox import PendingRequest

from .conftest import TERMINALS

SALES = 10_000
VISITOR = card("C00042")


class AnsweringClient:
    """Stands in for paho: every request published is answered, synchronously, with an approval."""

    def __init__(self, link, result_signing_key, result_key_id):
        self.link = link
        self.signing_key = result_signing_key
        self.key_id = result_key_id
        self.published = 0

    def answer(self, request_sha256: str, seq: int) -> bytes:
        identity = self.link.identity
        body = Result(park=identity.park_id, terminal=identity.terminal_id, seq=seq, request_sha256=request_sha256,
                      outcome="approved", reason="OK", balances=None, txn=seq, ledger_time_ms=1_780_000_000_000,
                      detail="", card_record=None, amount_fen=None).to_bytes()
        return envelope.seal(body, signing_key=self.signing_key, key_id=self.key_id, purpose=Purpose.RESULT,
                             topic=self.link.result_topic)

    def deliver(self, payload: bytes) -> None:
        self.link._handle_message(SimpleNamespace(topic=self.link.result_topic, payload=payload))

    def publish(self, topic, payload, qos=0):
        self.published += 1
        seq = int(envelope.split(payload).body.split(b'"seq":')[1].split(b",")[0])
        self.deliver(self.answer(hashlib.sha256(payload).hexdigest(), seq))


@pytest.fixture
def till(tmp_path):
    rig = ParkRig(tmp_path).create(TERMINALS)
    link = rig.link("T-FISH-1", connect=False)
    result_key = rig.home.ledger_keys().for_purpose(Purpose.RESULT)
    paho = link.client
    link.client = AnsweringClient(link, result_key.signing_key, result_key.key_id)
    link._connected.set()  # as if the broker were up: _wait publishes
    yield link
    link._connected.clear()
    link.client = paho  # never connected: closing it sends nothing
    rig.close()


def sale(link, seq: int) -> PendingRequest:
    payload = link.seal(Charge(**common(link, seq, VISITOR), amount_fen=500, lines=single_line("烤串 Skewers", 500)))
    return PendingRequest(seq, payload, hashlib.sha256(payload).hexdigest())


def test_after_ten_thousand_answered_sales_the_link_holds_no_result_the_till_already_took(till):
    for seq in range(1, SALES + 1):
        result = till.send(sale(till, seq), timeout_s=5)
        assert result.is_approved and result.seq == seq
    assert till.client.published == SALES
    assert len(till._results) == 0


def test_ten_thousand_late_answers_nobody_waits_for_are_kept_bounded_and_a_watched_one_survives(till):
    from terminal.net import MAX_UNCLAIMED_RESULTS

    watched = sale(till, 1)
    till.watch(watched)
    till.client.deliver(till.client.answer(watched.request_sha256, 1))
    for seq in range(2, SALES + 2):
        till.client.deliver(till.client.answer(hashlib.sha256(b"late %d" % seq).hexdigest(), seq))
    assert len(till._results) <= MAX_UNCLAIMED_RESULTS
    assert till.poll(watched).seq == 1  # the request the till is showing keeps its Result
    till.unwatch(watched)
    assert watched.request_sha256 not in till._results
