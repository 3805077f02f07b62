"""The ledger's intake at its edges, driven directly (the code the MQTT loop calls) over a real
SQLite file: seq jumps exactly at the limit, heartbeats kept or dropped, envelopes too short to
read. No broker.

Written to kill the operator mutants of tools/mutation.py the older tests let through.
"""

import pytest

from host_sim.rig import ParkRig
from protocol import codec, topics
from protocol.envelope import Purpose
from protocol.messages import TerminalStatus

from .conftest import TERMINALS
from .helpers.intake_driver import Ledger

NOW_MS = 1_780_000_000_000


@pytest.fixture
def ledger(tmp_path):
    rig = ParkRig(tmp_path).create(TERMINALS)
    ledger = Ledger(rig)
    assert ledger.issue().is_approved  # T-DESK-1 seq 1: the visitor's card, 100 yuan on it
    yield ledger
    rig.close()
    ledger.store.close()


def charge_at(ledger, seq):
    body = ledger.charge_body(amount_fen=100)
    body["seq"] = seq
    return ledger.send(*ledger.sign("T-FISH-1", codec.encode(body)))


def test_a_till_that_holds_seq_1_may_jump_to_1000001_and_not_one_further(ledger):
    assert charge_at(ledger, 1).is_approved
    too_far = charge_at(ledger, 1_000_002)
    assert (too_far.outcome, too_far.reason) == ("refused", "SEQ_TOO_FAR")
    assert charge_at(ledger, 1_000_001).is_approved
    assert ledger.store.highest_seq("T-FISH-1") == 1_000_001


def test_a_new_till_may_start_anywhere_up_to_a_million(ledger):
    assert charge_at(ledger, 1_000_000).is_approved
    assert charge_at(ledger, 2_000_001).reason == "SEQ_TOO_FAR"


def heartbeat(ledger, terminal_id="T-FISH-1", *, named=None, signer=None, highest_seq=7, queue_depth=2):
    named = named or terminal_id
    body = TerminalStatus(park="P1", terminal=named, is_online=True, highest_seq=highest_seq, queue_depth=queue_depth,
                          oldest_queued_ms=None, time_ms=NOW_MS).to_bytes()
    topic = topics.status("P1", terminal_id)
    _, payload = ledger.sign(signer or terminal_id, body, topic=topic, purpose=Purpose.STATUS)
    return ledger.intake.process([(topic, payload)])


def test_a_tills_signed_heartbeat_is_kept_and_answered_with_nothing(ledger):
    assert heartbeat(ledger) == []
    assert ledger.store.terminal_status("T-FISH-1") == (7, 2, NOW_MS)


@pytest.mark.parametrize("change", [dict(signer="T-FISH-2"), dict(named="T-FISH-2")])
def test_a_heartbeat_signed_by_or_naming_another_till_is_dropped(ledger, change):
    assert heartbeat(ledger, **change) == []
    assert ledger.store.terminal_status("T-FISH-1") is None


@pytest.mark.parametrize("payload", [b"FP\x01", b"FP", b"F"])
def test_a_request_too_short_to_be_an_envelope_is_refused_as_truncated_and_answered(ledger, payload):
    result = ledger.send(topics.request("P1", "T-FISH-1"), payload)
    assert (result.outcome, result.reason, result.seq) == ("refused", "TRUNCATED", None)
    assert ledger.intake.counts["refused"] == 1 and ledger.intake.counts["set_aside"] == 0
