"""The protocol on its own: no broker, no database. Round trips and tampering, as properties."""

from hypothesis import given, settings, strategies as st
from nacl.signing import SigningKey
import pytest

from protocol import codec, envelope, topics
from protocol.envelope import Purpose
from protocol.errors import LocalProtocolError, RemoteProtocolError
from protocol.limits import MAX_AMOUNT_FEN
from protocol.messages import REQUEST_TYPES, CardRef, Charge, LineItem, TopUp, parse

KEY = SigningKey(bytes(range(32)))
TOPIC = topics.request("P1", "T-FISH-1")

card_refs = st.builds(
    CardRef,
    no=st.from_regex(r"[0-9A-Z]{4,20}", fullmatch=True),
    issuance=st.integers(1, 1000),
    uid=st.sampled_from([4, 7, 10]).flatmap(lambda n: st.binary(min_size=n, max_size=n)).map(bytes.hex),
)
item_names = st.text(st.characters(categories=("L", "N", "Zs")), min_size=1, max_size=64).filter(str.isprintable)
lines = st.lists(st.builds(LineItem, item=item_names, qty=st.integers(1, 20), unit_fen=st.integers(1, 50_000)), min_size=1, max_size=8)


@st.composite
def charges(draw):
    items = tuple(draw(lines))
    return Charge(park="P1", terminal="T-FISH-1", seq=draw(st.integers(1, 2**53 - 1)),
                  terminal_time_ms=draw(st.integers(0, 2**45)), clock_uncertain=draw(st.booleans()),
                  operator="op-1", config_version=draw(st.integers(0, 10**6)), card=draw(card_refs),
                  amount_fen=sum(line.qty * line.unit_fen for line in items), lines=items)


@given(charges())
def test_a_charge_survives_the_round_trip_through_the_envelope(charge):
    payload = envelope.seal(charge.to_bytes(), signing_key=KEY, key_id="T-FISH-1-k1", purpose=Purpose.REQUEST, topic=TOPIC)
    body = envelope.verify(envelope.split(payload), verify_key=KEY.verify_key, purpose=Purpose.REQUEST, topic=TOPIC)
    assert parse(body, REQUEST_TYPES) == charge
    assert body == charge.to_bytes()  # canonical: the same message always has the same bytes


@settings(max_examples=300)
@given(charges(), st.data())
def test_any_single_bit_change_fails_verification(charge, data):
    payload = envelope.seal(charge.to_bytes(), signing_key=KEY, key_id="T-FISH-1-k1", purpose=Purpose.REQUEST, topic=TOPIC)
    bit = data.draw(st.integers(0, len(payload) * 8 - 1))
    tampered = bytearray(payload)
    tampered[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(RemoteProtocolError):
        sealed = envelope.split(bytes(tampered))
        envelope.verify(sealed, verify_key=KEY.verify_key, purpose=Purpose.REQUEST, topic=TOPIC)


def test_a_signature_is_bound_to_its_purpose_and_topic():
    body = b'{"type":"hello"}'
    payload = envelope.seal(body, signing_key=KEY, key_id="k1", purpose=Purpose.REQUEST, topic=TOPIC)
    sealed = envelope.split(payload)
    assert envelope.verify(sealed, verify_key=KEY.verify_key, purpose=Purpose.REQUEST, topic=TOPIC) == body
    for purpose, topic in [(Purpose.RESULT, TOPIC), (Purpose.REQUEST, topics.request("P1", "T-FISH-2"))]:
        with pytest.raises(RemoteProtocolError) as error:
            envelope.verify(sealed, verify_key=KEY.verify_key, purpose=purpose, topic=topic)
        assert error.value.code == "BAD_SIGNATURE"


@pytest.mark.parametrize("text, code", [
    (b'{"a":1,"a":2}', "DUPLICATE_FIELD"),
    (b'{"a":NaN}', "NAN_NOT_ALLOWED"),
    (b'{"a":-Infinity}', "NAN_NOT_ALLOWED"),
    (b'{"a":1.5}', "FLOAT_NOT_ALLOWED"),
    (b'{"a":1E2}', "FLOAT_NOT_ALLOWED"),
    (b'{"a":9007199254740993}', "VALUE_OUT_OF_RANGE"),
    (b'[1,2]', "MALFORMED_BODY"),
    (b'\xff{}', "MALFORMED_BODY"),
])
def test_the_strict_parser_refuses_what_a_lenient_one_would_accept(text, code):
    with pytest.raises(RemoteProtocolError) as error:
        codec.decode(text)
    assert error.value.code == code


def test_a_terminal_cannot_build_an_amount_out_of_bounds_or_a_float():
    base = dict(park="P1", terminal="T-FISH-1", seq=1, terminal_time_ms=0, clock_uncertain=False, operator="op",
                config_version=0, card=CardRef(no="C0001", issuance=1, uid="01020304"), channel="cash", payment_ref="")
    for amount, code in [(MAX_AMOUNT_FEN + 1, "AMOUNT_OUT_OF_RANGE"), (0, "AMOUNT_OUT_OF_RANGE"), (30.0, "WRONG_TYPE"), (True, "WRONG_TYPE")]:
        with pytest.raises(LocalProtocolError) as error:
            TopUp(**base, amount_fen=amount)
        assert error.value.code == code


def test_ids_that_could_widen_a_topic_are_refused():
    for bad in ("T+1", "T#", "a/b", "", "x" * 33, "T 1"):
        with pytest.raises(LocalProtocolError):
            topics.request("P1", bad)
    assert topics.parse_request_topic("fieldpos/v1/P1/t/+/req") is None
    assert topics.parse_request_topic("fieldpos/v1/P1/t/T-1/req") == ("P1", "T-1")


def test_protocol_document_matches_the_code():
    """docs/PROTOCOL.md's worked example is byte-exact and every reason code is documented."""
    from pathlib import Path

    from protocol.reasons import Reason
    from tools.protocol_example import example

    document = (Path(__file__).resolve().parent.parent / "docs" / "PROTOCOL.md").read_text()
    for name, value in example().items():
        assert f"```\n{value}\n```" in document, f"the worked example's {name} is out of date"
    for reason in Reason:
        assert f"| `{reason.value}` |" in document, f"reason {reason.value} is not documented"


def test_the_worked_example_verifies_with_an_independent_ed25519_implementation():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from tools.protocol_example import example

    values = example()
    public_key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(values["terminal public key"]))
    public_key.verify(bytes.fromhex(values["request signature"]), bytes.fromhex(values["signed bytes (hex)"]))
    payload = bytes.fromhex(values["request payload (hex)"])
    assert payload.endswith(values["request body"].encode())


def test_a_config_without_the_park_rules_or_with_a_negative_fee_is_refused_by_the_till():
    from protocol.messages import BROADCAST_TYPES, OfflinePolicy, ParkRules, TerminalConfig

    policy = OfflinePolicy(max_transaction_fen=20_000, max_card_fen=30_000, max_terminal_fen=2_000_000, max_count=500,
                           max_offline_ms=86_400_000, max_reboots=3, blocklist_max_age_ms=86_400_000,
                           allowed_modes="fixed,count,menu,free")
    rules = ParkRules(no_pin_limit_fen=5000, card_fee_fen=2000, damage_fee_fen=1000)
    config = TerminalConfig(park="P1", terminal="T-FISH-1", version=1, issued_ms=0, offline=policy, rules=rules)
    assert parse(config.to_bytes(), BROADCAST_TYPES) == config
    without_rules = {k: v for k, v in config.to_obj().items() if k != "rules"}
    with pytest.raises(RemoteProtocolError) as missing:
        parse(codec.encode(without_rules), BROADCAST_TYPES)
    assert missing.value.code == "MISSING_FIELD"
    negative = config.to_obj() | {"rules": rules.to_obj() | {"card_fee_fen": -1}}
    with pytest.raises(RemoteProtocolError) as out_of_range:
        parse(codec.encode(negative), BROADCAST_TYPES)
    assert out_of_range.value.code == "AMOUNT_OUT_OF_RANGE"
