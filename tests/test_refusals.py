"""Every bad input is refused with a reason code, nothing is posted, and the ledger keeps serving.

Most cases drive the ledger's intake directly (the same code the MQTT loop calls); the last test
sends a burst of bad messages through the real broker and shows a good one still goes through.
"""

import json

from nacl.signing import SigningKey
import pytest

from host_sim.rig import card, common, single_line
from ledger.verify import verify_books
from protocol import codec, envelope, topics
from protocol.envelope import Purpose
from protocol.limits import MAX_AMOUNT_FEN, MAX_PAYLOAD_BYTES
from protocol.messages import CardIssue, CardReturn, Charge

from .helpers.intake_driver import VISITOR


def refused(ledger, topic, payload, reason):
    before = ledger.postings()
    result = ledger.send(topic, payload)
    assert (result.outcome, result.reason) == ("refused", reason), result
    assert ledger.postings() == before
    assert verify_books(ledger.store).is_ok
    stored = ledger.store.db.execute("SELECT reason FROM refusal ORDER BY refusal_id DESC LIMIT 1").fetchone()
    assert stored == (reason,)
    return result


# ---------------------------------------------------------------- tampering and replay
def test_a_flipped_bit_anywhere_in_the_message_is_refused(ledger):
    topic, payload = ledger.sign("T-FISH-1", codec.encode(ledger.charge_body()))
    for position in range(0, len(payload) * 8, 37):  # header, key id, signature and body alike
        tampered = bytearray(payload)
        tampered[position // 8] ^= 1 << (position % 8)
        result = ledger.send(topic, bytes(tampered))
        assert result.outcome == "refused", (position, result)
    assert ledger.postings() == 3  # only the card issue's


def test_a_valid_signature_on_another_seq_is_refused(ledger):
    topic, payload = ledger.sign("T-FISH-1", codec.encode(ledger.charge_body()))
    body = envelope.split(payload).body
    forged = payload.replace(body, body.replace(b'"seq":1', b'"seq":9'))
    assert forged != payload
    refused(ledger, topic, forged, "BAD_SIGNATURE")


def test_a_request_replayed_on_another_terminals_topic_is_refused(ledger):
    _, payload = ledger.sign("T-FISH-1", codec.encode(ledger.charge_body()))
    refused(ledger, topics.request("P1", "T-FISH-2"), payload, "KEY_NOT_FOR_TOPIC")


def test_a_signed_result_replayed_as_a_request_is_refused(ledger):
    topic, payload = ledger.sign("T-FISH-1", codec.encode(ledger.charge_body()))
    (reply,) = ledger.intake.process([(topic, payload)])
    refused(ledger, topic, reply.payload, "UNKNOWN_KEY")


def test_a_request_signed_for_the_result_purpose_is_refused(ledger):
    topic, payload = ledger.sign("T-FISH-1", codec.encode(ledger.charge_body()), purpose=Purpose.RESULT)
    refused(ledger, topic, payload, "BAD_SIGNATURE")


def test_an_unknown_terminal_is_refused(ledger):
    stranger = SigningKey.generate()
    topic = topics.request("P1", "T-NOBODY")
    body = ledger.charge_body()
    body["terminal"] = "T-NOBODY"
    payload = envelope.seal(codec.encode(body), signing_key=stranger, key_id="T-NOBODY-k1", purpose=Purpose.REQUEST, topic=topic)
    refused(ledger, topic, payload, "UNKNOWN_TERMINAL")


def test_a_revoked_terminal_gets_only_its_earlier_answers_again(ledger):
    sale = ledger.sign("T-FISH-1", codec.encode(ledger.charge_body()))  # seq 1
    approved = ledger.send(*sale)
    assert approved.outcome == "approved"
    ledger.store.revoke_terminal("T-FISH-1", from_seq=2)
    # A re-send of what was decided before retirement gets the very same signed answer back...
    assert ledger.send(*sale) == approved
    # ...and anything else it signs is refused unread, whatever its seq.
    refused(ledger, *ledger.sign("T-FISH-1", codec.encode(ledger.charge_body())), "TERMINAL_REVOKED")  # seq 2
    earlier = ledger.charge_body()
    earlier["seq"] = 1
    earlier["amount_fen"] = earlier["lines"][0]["unit_fen"] = 100
    refused(ledger, *ledger.sign("T-FISH-1", codec.encode(earlier)), "TERMINAL_REVOKED")


def test_a_station_terminal_cannot_issue_cards(ledger):
    fields = ledger.fields("T-FISH-1", card("C00777"))
    message = CardIssue(**fields, card_kind="temporary", card_fee_fen=2000, opening_fen=100000, channel="cash", payment_ref="")
    refused(ledger, *ledger.sign("T-FISH-1", message.to_bytes()), "KIND_NOT_ALLOWED")


# ---------------------------------------------------------------- malformed envelopes and bodies
def test_a_truncated_payload_is_refused(ledger):
    topic, payload = ledger.sign("T-FISH-1", codec.encode(ledger.charge_body()))
    refused(ledger, topic, payload[:3], "TRUNCATED")
    refused(ledger, topic, payload[:40], "TRUNCATED")
    refused(ledger, topic, payload[:-5], "BAD_SIGNATURE")


def test_an_oversize_payload_is_refused(ledger):
    body = ledger.charge_body()
    body["lines"][0]["item"] = "x" * 60
    topic, payload = ledger.sign("T-FISH-1", codec.encode(body))
    refused(ledger, topic, payload + b" " * MAX_PAYLOAD_BYTES, "OVERSIZE")


@pytest.mark.parametrize(
    "mangle, reason",
    [
        (lambda text: text.replace('"amount_fen":3000', '"amount_fen":3000,"amount_fen":1'), "DUPLICATE_FIELD"),
        (lambda text: text.replace('"amount_fen":3000', '"amount_fen":NaN'), "NAN_NOT_ALLOWED"),
        (lambda text: text.replace('"amount_fen":3000', '"amount_fen":30.0'), "FLOAT_NOT_ALLOWED"),
        (lambda text: text.replace('"amount_fen":3000', '"amount_fen":3e3'), "FLOAT_NOT_ALLOWED"),
        (lambda text: text.replace('"amount_fen":3000', '"amount_fen":"3000"'), "WRONG_TYPE"),
        (lambda text: text.replace('"amount_fen":3000', '"amount_fen":true'), "WRONG_TYPE"),
        (lambda text: text.replace('"amount_fen":3000', '"amount_fen":3000,"tip_fen":100'), "UNKNOWN_FIELD"),
        (lambda text: text.replace('"operator":"op-1",', ""), "MISSING_FIELD"),
        (lambda text: text.replace('"type":"charge"', '"type":"refund_everything"'), "UNKNOWN_TYPE"),
        (lambda text: text[:-1], "MALFORMED_BODY"),
        (lambda text: text.replace('"amount_fen":3000', '"amount_fen":99999999999999999999'), "NUMBER_TOO_LONG"),
        (lambda text: text.replace('"amount_fen":3000', '"amount_fen":9007199254740993'), "VALUE_OUT_OF_RANGE"),
    ],
    ids=["duplicate-key", "nan", "float", "exponent", "string-amount", "bool-amount", "unknown-field",
         "missing-field", "unknown-type", "truncated-json", "huge-integer", "integer-past-2**53"],
)
def test_a_malformed_body_is_refused(ledger, mangle, reason):
    text = codec.encode(ledger.charge_body()).decode()
    mangled = mangle(text)
    assert mangled != text
    refused(ledger, *ledger.sign("T-FISH-1", mangled.encode()), reason)


@pytest.mark.parametrize("amount_fen, reason", [(0, "AMOUNT_OUT_OF_RANGE"), (-3000, "AMOUNT_OUT_OF_RANGE"),
                                                (MAX_AMOUNT_FEN + 1, "AMOUNT_OUT_OF_RANGE")])
def test_amounts_outside_the_bounds_are_refused(ledger, amount_fen, reason):
    body = ledger.charge_body()
    body["amount_fen"] = amount_fen
    body["lines"][0]["unit_fen"] = abs(amount_fen)
    refused(ledger, *ledger.sign("T-FISH-1", codec.encode(body)), reason)


def test_lines_that_do_not_add_up_are_refused(ledger):
    body = ledger.charge_body(3000)
    body["lines"][0]["unit_fen"] = 2000
    refused(ledger, *ledger.sign("T-FISH-1", codec.encode(body)), "LINES_DO_NOT_ADD_UP")


def test_a_body_naming_another_terminal_than_its_topic_is_refused(ledger):
    body = ledger.charge_body()
    body["terminal"] = "T-FISH-2"
    refused(ledger, *ledger.sign("T-FISH-1", codec.encode(body)), "TOPIC_MISMATCH")


# ---------------------------------------------------------------- declines: the ledger's state says no
def declined(ledger, body, reason):
    before = ledger.postings()
    result = ledger.send(*ledger.sign("T-FISH-1", codec.encode(body)))
    assert (result.outcome, result.reason) == ("declined", reason), result
    assert ledger.postings() == before
    return result


def test_a_charge_above_the_balance_is_declined_and_the_balance_shown(ledger):
    result = declined(ledger, ledger.charge_body(10001), "INSUFFICIENT_FUNDS")
    assert result.balances.fen == 10000


def test_a_charge_on_a_blocked_card_is_declined(ledger):
    with ledger.store.batch():
        ledger.store.set_card_state("P1", VISITOR.no, 1, "blocked")
    declined(ledger, ledger.charge_body(), "CARD_BLOCKED")


def test_a_charge_on_a_returned_card_or_an_old_issuance_is_declined(ledger):
    assert ledger.request("T-DESK-1", CardReturn, channel="cash", payment_ref="", damage_fee_fen=0).outcome == "approved"
    declined(ledger, ledger.charge_body(), "CARD_RETURNED")
    reissued = card(VISITOR.no, issuance=2, uid=VISITOR.uid)
    assert ledger.issue(5000, reissued).outcome == "approved"
    declined(ledger, ledger.charge_body(card_ref=VISITOR), "OLD_ISSUANCE")
    assert ledger.send(*ledger.sign("T-FISH-1", codec.encode(ledger.charge_body(card_ref=reissued)))).balances.fen == 2000


def test_an_unknown_card_and_a_card_under_another_uid_are_declined(ledger):
    declined(ledger, ledger.charge_body(card_ref=card("C99999")), "UNKNOWN_CARD")
    clone = card(VISITOR.no, uid="deadbeef")
    result = declined(ledger, ledger.charge_body(card_ref=clone), "CARD_UID_MISMATCH")
    assert result.balances is None  # a clone learns nothing about the victim's balance
    alerts = ledger.store.db.execute("SELECT kind, detail FROM alert").fetchall()
    assert alerts and alerts[-1][0] == "CARD_UID_MISMATCH" and "deadbeef" in alerts[-1][1]


# ---------------------------------------------------------------- through the broker
def test_the_ledger_keeps_serving_after_a_burst_of_bad_messages(rig):
    desk, fishing = rig.link("T-DESK-1"), rig.link("T-FISH-1")
    visitor = card("C00100")
    junk = [b"", b"FP", b"\x00" * 100, b"FP\x01\x01\x05T-FISH-1" + b"\x00" * 64 + b"{}", json.dumps({"a": 1}).encode()]
    for payload in junk:
        fishing.client.publish(fishing.request_topic, payload, qos=1)
    issued = desk.submit(lambda seq: CardIssue(**common(desk, seq, visitor), card_kind="temporary", card_fee_fen=2000,
                                               opening_fen=5000, channel="wechat", payment_ref="wx-1"))
    sale = fishing.submit(lambda seq: Charge(**common(fishing, seq, visitor), amount_fen=1500, lines=single_line("鱼饵", 1500)))
    assert (issued.outcome, sale.outcome, sale.balances.fen) == ("approved", "approved", 3500)
    refusals = rig.reader.db.execute("SELECT COUNT(*) FROM refusal").fetchone()[0]
    assert refusals == len(junk)
