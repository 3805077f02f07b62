"""The ledger's intake at its edges, driven directly (the code the MQTT loop calls) over a real
SQLite file: seq jumps exactly at the limit, heartbeats kept or dropped, envelopes too short to
read. No broker.

Written to kill the operator mutants of tools/mutation.py the older tests let through.
"""

import json

import pytest

from host_sim.rig import ParkRig, card, single_line
from protocol import codec, envelope, topics
from protocol.envelope import Purpose
from protocol.pin import seal_pin
from protocol.messages import REPLY_TYPES, TerminalStatus, parse

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


# ---------------------------------------------------------------- a retired till's re-sends
def test_a_retired_tills_resend_of_a_decided_sale_is_counted_once_as_a_replay(ledger):
    sale = ledger.sign("T-FISH-1", codec.encode(ledger.charge_body()))
    approved = ledger.send(*sale)
    ledger.store.revoke_terminal("T-FISH-1", from_seq=2)
    assert ledger.send(*sale) == approved
    assert ledger.intake.counts["replayed"] == 1 and ledger.intake.counts["refused"] == 0


# ---------------------------------------------------------------- member cards (the desk of test_members)
from .test_members import MEMBER, NEW_CARD, ZHAO_PIN, desk, with_supervisor  # noqa: E402,F401  (desk: a fixture)


def notification_kinds(desk):
    return [json.loads(body)["kind"] for (body,) in desk.ledger.store.db.execute("SELECT body FROM notification")]


def test_a_loss_report_an_unblock_and_an_offline_sale_send_the_member_no_message(desk):
    from protocol.messages import CardUnblock, LossReport, OfflineCharge

    assert desk.top_up(10_000).is_approved
    assert desk.send("T-FISH-1", OfflineCharge, amount_fen=500, lines=single_line("钓鱼 Fishing", 500), pin_sha256=None,
                     supersedes_seq=None, approved_ms=NOW_MS).is_approved
    assert desk.send("T-DESK-1", LossReport).is_approved
    assert desk.send("T-DESK-1", CardUnblock).is_approved
    assert notification_kinds(desk) == ["top_up"]


def replace(desk, new_card=NEW_CARD, from_issuance=1):
    from protocol.messages import CardReplace

    return with_supervisor(desk, "T-DESK-1", CardReplace, ZHAO_PIN, new_card, from_card_no=MEMBER.no,
                           from_issuance=from_issuance)


def test_a_replacement_is_only_for_a_lost_member_card_onto_a_new_cards_first_issuance(desk):
    from protocol.messages import LossReport

    assert replace(desk).reason == "KIND_NOT_ALLOWED"              # not reported lost
    assert desk.send("T-DESK-1", LossReport).is_approved
    assert replace(desk, from_issuance=2).reason == "UNKNOWN_CARD"
    assert replace(desk, new_card=card(NEW_CARD.no, issuance=2)).reason == "OLD_ISSUANCE"
    assert replace(desk, new_card=MEMBER).reason == "CARD_IN_USE"
    assert replace(desk).is_approved


def open_desk_shift(desk):
    from protocol.messages import ShiftOpen

    fields = desk.ledger.fields("T-DESK-1", card("S0002"))
    fields["operator"] = "li"
    identity = desk.ledger.rig.identity("T-DESK-1")
    attachment, sha = seal_pin("2345", terminal="T-DESK-1", seq=fields["seq"], ledger_pin_key=identity.pin_key)
    topic = topics.request("P1", "T-DESK-1")
    payload = envelope.seal(ShiftOpen(**fields, pin_sha256=sha).to_bytes(), signing_key=identity.signing_key,
                            key_id=identity.key_id, purpose=Purpose.REQUEST, topic=topic, attachment=attachment)
    assert desk.ledger.send(topic, payload).is_approved
    desk.operators["T-DESK-1"] = "li"


def test_a_top_up_already_spent_is_not_reversed(desk):
    from protocol.messages import Reversal

    open_desk_shift(desk)
    wrong = desk.top_up(30_000)
    assert desk.charge(10_000).is_approved
    reversal = with_supervisor(desk, "T-DESK-1", Reversal, ZHAO_PIN, MEMBER, original_seq=wrong.seq, amount_fen=30_000)
    assert (reversal.outcome, reversal.reason) == ("declined", "INSUFFICIENT_FUNDS")
    assert reversal.balances.fen == 20_000


def test_a_replacement_onto_a_returned_cards_number_takes_its_next_issuance(desk):
    from protocol.messages import CardReturn, LossReport

    assert desk.ledger.issue(opening_fen=0, card_ref=NEW_CARD).is_approved
    assert desk.ledger.request("T-DESK-1", CardReturn, card_ref=NEW_CARD, channel="cash", payment_ref="",
                               damage_fee_fen=0).is_approved
    assert desk.send("T-DESK-1", LossReport).is_approved
    assert replace(desk, new_card=card(NEW_CARD.no, issuance=3)).reason == "OLD_ISSUANCE"
    assert replace(desk, new_card=card(NEW_CARD.no, issuance=2)).is_approved


# ---------------------------------------------------------------- an operator's retry of a held message
def test_a_retried_message_is_answered_under_the_hash_the_till_sent(ledger):
    topic, payload = ledger.sign("T-FISH-1", codec.encode(ledger.charge_body()))
    as_sent = "cd" * 32  # the hash of the payload with its PIN block, which the ledger no longer holds
    (reply,) = ledger.intake.process([(topic, payload, as_sent)], retry_set_aside=True)
    body = envelope.verify(envelope.split(reply.payload), verify_key=ledger.result_key, purpose=Purpose.RESULT,
                           topic=reply.topic)
    result = parse(body, REPLY_TYPES)
    assert result.is_approved and result.request_sha256 == as_sent


def test_a_top_up_whose_bonus_was_spent_is_not_reversed_though_the_money_is_there(desk):
    from protocol.messages import Reversal

    desk.ledger.store.set_member_settings("P1", bonus_first=True, points_per_yuan=1, no_pin_limit_fen=20000)
    open_desk_shift(desk)
    wrong = desk.top_up(50_000)                 # 500 yuan and its 50 yuan bonus
    assert desk.charge(3_000).is_approved       # paid from the bonus first: 20 yuan of it left
    reversal = with_supervisor(desk, "T-DESK-1", Reversal, ZHAO_PIN, MEMBER, original_seq=wrong.seq, amount_fen=50_000)
    assert (reversal.outcome, reversal.reason) == ("declined", "INSUFFICIENT_FUNDS")
    assert (reversal.balances.fen, reversal.balances.bonus) == (50_000, 2_000)
