"""The protocol's edges, exactly at each named limit: one value on the line is taken, one past it is
refused by name. Envelope offsets, the card-record layout and the signed bytes are rebuilt here from
docs/PROTOCOL.md's tables, not from the code. No broker, no database: every test runs in milliseconds.

Written to kill the operator mutants of tools/mutation.py that the older tests let through (a ``<``
turned ``<=``, a limit one bigger): each row names the limit it pins.
"""

import hashlib
import hmac
import json

from nacl.public import PrivateKey
from nacl.signing import SigningKey
import pytest

from protocol import card_record, codec, envelope, limits, pin, topics
from protocol.card_record import CardRecord, CardRecordError
from protocol.envelope import Purpose
from protocol.errors import LocalProtocolError, RemoteProtocolError
from protocol.messages import (BROADCAST_TYPES, REPLY_TYPES, REQUEST_TYPES, Balances, Blocklist, BlocklistDelta,
                               CardEntry, CardIssue,
                               CardRef, Charge, Hello, LineItem, MemberCard, MemberLookupReply, OfflineCharge, Result,
                               StationReportReply, TerminalStatus, TopUp, parse, printable_detail)

KEY = SigningKey(bytes(range(32)))
OTHER_KEY = SigningKey(bytes(range(1, 33)))
TOPIC = "fieldpos/v1/P1/t/T-FISH-1/req"  # written out: the topic scheme is part of what is pinned
DOMAIN = b"fieldpos-signature\x00"       # PROTOCOL.md: the signature domain string


def refused(call, *args, **kwargs) -> str:
    """The reason code of the protocol error ``call`` raises (the test fails if it raises none)."""
    with pytest.raises((RemoteProtocolError, LocalProtocolError)) as error:
        call(*args, **kwargs)
    return error.value.code


def remote_refusal(body: bytes) -> str:
    with pytest.raises(RemoteProtocolError) as error:
        codec.decode(body)
    return error.value.code


# ---------------------------------------------------------------- the strict parser (codec)
def nested_objects(depth: int) -> bytes:
    return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)


def nested_lists_in_a_body(depth: int) -> bytes:
    return b'{"a":' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


@pytest.mark.parametrize("body, expected", [
    (nested_objects(8), None),
    (nested_objects(9), "TOO_DEEP"),
    (nested_lists_in_a_body(8), None),
    (nested_lists_in_a_body(9), "TOO_DEEP"),
])
def test_a_body_nested_eight_deep_is_read_and_nine_deep_is_refused_before_the_parser_recurses(body, expected):
    if expected is None:
        assert isinstance(codec.decode(body), dict)
    else:
        assert remote_refusal(body) == expected


def test_a_body_eight_deep_with_more_brackets_beside_it_is_still_read():
    # Past the quick count (more than 8 brackets in all), the walk must count from the top level.
    body = b'{"a":[],"b":' + nested_objects(7) + b"}"
    assert codec.decode(body)["a"] == []


def test_nesting_after_a_closed_sibling_is_counted_from_where_the_sibling_closed():
    body = b'{"a":[],"b":' + b"[" * 8 + b"]" * 8 + b"}"  # nine deep in "b"
    assert remote_refusal(body) == "TOO_DEEP"


def test_many_shallow_brackets_side_by_side_are_not_mistaken_for_depth():
    # Twenty sibling lists: 21 brackets in all, never more than 2 open at once.
    body = b"{" + b",".join(b'"f%d":[]' % n for n in range(20)) + b"}"
    assert codec.decode(body) == {f"f{n}": [] for n in range(20)}


@pytest.mark.parametrize("body", [
    b'{"name":"[[[[[[[[[[{{{{{{{{{{"}',          # brackets inside a string are text, not depth
    b'{"name":"\\"[[[[[[[[[[{{{{{{{{{{"}',       # the same after an escaped quote
])
def test_brackets_inside_a_string_do_not_count_as_nesting(body):
    assert codec.decode(body) == json.loads(body)


def test_an_escaped_quote_does_not_hide_real_nesting_from_the_depth_check():
    body = b'{"x":"\\"","a":' + b"[" * 9 + b"]" * 9 + b"}"
    assert remote_refusal(body) == "TOO_DEEP"


def test_real_nesting_beside_bracketed_strings_is_still_counted():
    body = b'{"s":"[[[[","a":' + b"[" * 9 + b"]" * 9 + b"}"
    assert remote_refusal(body) == "TOO_DEEP"


@pytest.mark.parametrize("literal, expected", [
    ("1000000000000000", 1000000000000000),        # 16 digits: MAX_NUMBER_DIGITS
    ("-1000000000000000", -1000000000000000),      # 16 digits and a sign
    ("9007199254740991", 2**53 - 1),               # MAX_SEQ
    ("-9007199254740991", -(2**53 - 1)),
    ("0", 0),
])
def test_integers_up_to_sixteen_digits_and_two_to_the_53_are_read_exactly(literal, expected):
    assert codec.decode(b'{"n":%s}' % literal.encode()) == {"n": expected}


@pytest.mark.parametrize("literal, reason", [
    ("10000000000000000", "NUMBER_TOO_LONG"),      # 17 digits
    ("-10000000000000000", "NUMBER_TOO_LONG"),     # 17 digits and a sign
    ("9007199254740992", "VALUE_OUT_OF_RANGE"),    # 16 digits, one past MAX_SEQ
    ("-9007199254740992", "VALUE_OUT_OF_RANGE"),
])
def test_an_integer_past_sixteen_digits_or_two_to_the_53_is_refused_by_name(literal, reason):
    assert remote_refusal(b'{"n":%s}' % literal.encode()) == reason


@pytest.mark.parametrize("chars, expected", [(420, None), (421, "STRING_TOO_LONG")])
@pytest.mark.parametrize("shape", ["{{\"s\":{}}}", "{{\"s\":[{}]}}", "{{\"s\":[[{}]]}}", "{{\"s\":[{{\"t\":{}}}]}}"])
def test_a_string_of_420_characters_is_read_and_421_refused_wherever_it_sits(chars, expected, shape):
    # 420: the longest e-card token (protocol.ecard.MAX_TOKEN_CHARS), the longest string a body carries.
    body = shape.format(json.dumps("x" * chars)).encode()
    if expected is None:
        assert codec.decode(body) == json.loads(body)
    else:
        assert remote_refusal(body) == expected


def test_long_strings_and_numbers_in_a_list_are_still_fine_when_in_bounds():
    assert codec.decode(b'{"s":[1,"ab",[2,"cd"],{"t":3}]}') == {"s": [1, "ab", [2, "cd"], {"t": 3}]}


@pytest.mark.parametrize("fields, expected", [(32, None), (33, "TOO_MANY_FIELDS")])
def test_an_object_of_32_fields_is_read_and_33_refused(fields, expected):
    body = codec.encode({f"f{n:02d}": n for n in range(fields)})
    if expected is None:
        assert codec.decode(body) == {f"f{n:02d}": n for n in range(fields)}
    else:
        assert remote_refusal(body) == expected


@pytest.mark.parametrize("name, expected", [
    ("a" * 32, None),
    ("snake_case_0", None),
    ("a" * 33, "BAD_FIELD_NAME"),
    ("", "BAD_FIELD_NAME"),
    ("Amount", "BAD_FIELD_NAME"),
    ("a,b", "BAD_FIELD_NAME"),
    ("a-b", "BAD_FIELD_NAME"),
    ("a\u0000", "BAD_FIELD_NAME"),
])
def test_field_names_are_short_snake_case_identifiers(name, expected):
    body = json.dumps({name: 1, "other": 2}).encode()
    if expected is None:
        assert codec.decode(body) == {name: 1, "other": 2}
    else:
        assert remote_refusal(body) == expected


def test_an_empty_object_and_distinct_fields_pass_and_a_duplicate_is_named():
    assert codec.decode(b"{}") == {}
    assert codec.decode(b'{"a":{},"b":{"a":1}}') == {"a": {}, "b": {"a": 1}}
    with pytest.raises(RemoteProtocolError) as error:
        codec.decode(b'{"a":1,"b":2,"b":3}')
    assert error.value.code == "DUPLICATE_FIELD" and "'b'" in str(error.value)


@pytest.mark.parametrize("body", [b'"a string"', b"12", b"null", b"[]", b"{", b""])
def test_a_body_that_is_not_one_json_object_is_malformed(body):
    assert remote_refusal(body) == "MALFORMED_BODY"


def test_the_encoder_never_writes_nan_which_our_own_parser_would_refuse():
    with pytest.raises(ValueError):
        codec.encode({"a": float("nan")})


def test_the_canonical_encoding_is_sorted_compact_utf8():
    assert codec.encode({"b": 1, "a": "鱼", "c": [True, None]}) == '{"a":"鱼","b":1,"c":[true,null]}'.encode()


# ---------------------------------------------------------------- the envelope (PROTOCOL.md's table)
def test_every_byte_of_an_envelope_sits_at_the_offset_the_table_gives():
    body, attachment = b'{"type":"hello"}', b"PINBLOCK"
    payload = envelope.seal(body, signing_key=KEY, key_id="k-7", purpose=Purpose.REQUEST, topic=TOPIC, attachment=attachment)
    k = 3
    assert payload[0:2] == b"FP" and payload[2] == 1 and payload[3] == 1 and payload[4] == k
    assert payload[5:5 + k] == b"k-7"
    header, signature = payload[:5 + k], payload[5 + k:69 + k]
    assert payload[69 + k:71 + k] == b"\x00\x08"
    assert payload[71 + k:71 + k + 8] == attachment and payload[71 + k + 8:] == body
    # The signature covers DOMAIN || purpose || 0 || topic || 0 || header || body, built from the prose.
    KEY.verify_key.verify(DOMAIN + b"request\x00" + TOPIC.encode() + b"\x00" + header + body, signature)
    sealed = envelope.split(payload)
    assert (sealed.version, sealed.key_id, sealed.header, sealed.signature) == (1, "k-7", header, signature)
    assert (sealed.attachment, sealed.body, sealed.payload) == (attachment, body, payload)
    assert sealed.sha256 == hashlib.sha256(payload).hexdigest()
    assert sealed.without_attachment() == header + signature + b"\x00\x00" + body
    assert envelope.verify(sealed, verify_key=KEY.verify_key, purpose=Purpose.REQUEST, topic=TOPIC) == body


def test_the_signed_bytes_are_exactly_the_documents_concatenation():
    assert envelope.signed_bytes(Purpose.CARD_RECORD, "t/x", b"HDR", b"{}") == DOMAIN + b"card-record\x00t/x\x00HDR{}"


def test_a_request_signed_with_another_key_is_refused_as_bad_signature():
    payload = envelope.seal(b"{}", signing_key=OTHER_KEY, key_id="k1", purpose=Purpose.REQUEST, topic=TOPIC)
    code = refused(envelope.verify, envelope.split(payload), verify_key=KEY.verify_key, purpose=Purpose.REQUEST, topic=TOPIC)
    assert code == "BAD_SIGNATURE"


def sealed_payload(body=b"{}", key_id="k1", attachment=b""):
    return envelope.seal(body, signing_key=KEY, key_id=key_id, purpose=Purpose.REQUEST, topic=TOPIC, attachment=attachment)


def test_a_payload_of_exactly_the_limit_is_sealed_and_split_and_one_byte_more_is_oversize():
    empty = len(sealed_payload())
    body_at_limit = b"{" + b" " * (limits.MAX_PAYLOAD_BYTES - empty) + b"}"
    payload = sealed_payload(body_at_limit)
    assert len(payload) == 8 * 1024
    assert envelope.split(payload).body == body_at_limit
    assert refused(sealed_payload, body_at_limit + b" ") == "OVERSIZE"
    assert refused(envelope.split, payload + b" ") == "OVERSIZE"


def test_a_broadcast_may_be_sixty_kib_and_not_one_byte_more():
    body = b"{" + b" " * (60 * 1024 - len(sealed_payload())) + b"}"
    payload = envelope.seal(body, signing_key=KEY, key_id="k1", purpose=Purpose.BLOCKLIST, topic="b",
                            max_bytes=limits.MAX_BROADCAST_BYTES)
    assert len(payload) == 60 * 1024 == limits.MAX_BROADCAST_BYTES
    assert envelope.split(payload, max_bytes=limits.MAX_BROADCAST_BYTES).body == body
    assert refused(envelope.split, payload + b" ", max_bytes=limits.MAX_BROADCAST_BYTES) == "OVERSIZE"


def test_an_attachment_of_256_bytes_travels_and_257_is_refused_on_both_sides():
    payload = sealed_payload(attachment=b"a" * 256)
    assert envelope.split(payload).attachment == b"a" * 256
    assert refused(sealed_payload, attachment=b"a" * 257) == "OVERSIZE"
    k = 2
    forged = payload[:69 + k] + (257).to_bytes(2, "big") + b"a" * 257 + b"{}"
    assert refused(envelope.split, forged) == "OVERSIZE"


@pytest.mark.parametrize("key_id", ["k", "k" * 32])
def test_key_ids_of_one_and_32_characters_are_read(key_id):
    assert envelope.split(sealed_payload(key_id=key_id)).key_id == key_id


def header_then(key_length: int, rest: bytes = b"") -> bytes:
    return b"FP\x01\x01" + bytes((key_length,)) + rest


@pytest.mark.parametrize("payload, reason", [
    (b"FP\x01\x01", "TRUNCATED"),                                     # 4 bytes: shorter than the header
    (b"XP\x01\x01\x02k1", "BAD_MAGIC"),
    (b"FP\x02\x01\x02k1", "UNSUPPORTED_VERSION"),
    (b"FP\x00\x01\x02k1", "UNSUPPORTED_VERSION"),
    (b"FP\x01\x02\x02k1", "UNSUPPORTED_ALGORITHM"),
    (header_then(0, b"\x00" * 66), "BAD_KEY_ID"),
    (header_then(33, b"k" * 33 + b"\x00" * 66), "BAD_KEY_ID"),
    (header_then(2, b"k\xff" + b"\x00" * 66), "BAD_KEY_ID"),           # not ASCII
    (header_then(2, b"-k" + b"\x00" * 66), "BAD_KEY_ID"),              # not an id
    (header_then(2, b"k1" + b"\x00" * 65), "TRUNCATED"),               # ends inside the attachment length
    (header_then(2, b"k1" + b"\x00" * 64 + b"\x00\x03ab"), "TRUNCATED"),  # ends inside the attachment
])
def test_a_broken_envelope_header_is_refused_with_its_own_reason(payload, reason):
    assert refused(envelope.split, payload) == reason


def test_the_shortest_envelope_has_an_empty_body_and_an_attachment_that_fills_the_rest():
    bare = header_then(2, b"k1" + b"S" * 64 + b"\x00\x00")
    assert (envelope.split(bare).body, envelope.split(bare).attachment) == (b"", b"")
    exact = header_then(2, b"k1" + b"S" * 64 + b"\x00\x03abc")
    assert (envelope.split(exact).attachment, envelope.split(exact).body) == (b"abc", b"")
    five = b"FP\x01\x01\x01"
    assert refused(envelope.split, five) == "TRUNCATED"
    assert refused(envelope.split, b"XP\x01\x01\x01") == "BAD_MAGIC"  # five bytes are a whole fixed header


def test_sealing_in_an_unsupported_version_is_our_own_bug_and_refused():
    with pytest.raises(LocalProtocolError) as error:
        envelope.seal(b"{}", signing_key=KEY, key_id="k1", purpose=Purpose.REQUEST, topic=TOPIC, version=2)
    assert error.value.code == "UNSUPPORTED_VERSION"
    assert sealed_payload()[2] == limits.PROTOCOL_VERSION == 1 and limits.SUPPORTED_VERSIONS == {1}


# ---------------------------------------------------------------- the card record (PROTOCOL.md's table)
UID = bytes.fromhex("04a1b2c3d4e5f6")
RECORD = CardRecord("T000123", 7, "member", "P1")


def test_the_card_record_bytes_sit_at_the_offsets_the_table_gives():
    data = card_record.sign_record(RECORD, UID, KEY)
    assert len(data) == 96
    assert data[0:2] == b"FC" and data[2] == 1 and data[3] == 2
    assert data[4:8] == (7).to_bytes(4, "big")
    assert data[8:28] == b"T000123" + b"\0" * 13
    assert data[28:32] == hashlib.sha256(b"P1").digest()[:4]
    KEY.verify_key.verify(DOMAIN + b"card-record\x00" + UID + data[:32], data[32:])
    assert card_record.read_record(data, UID, KEY.verify_key, "P1") == RECORD


def test_the_record_lives_in_the_three_data_blocks_of_sectors_1_and_2():
    # MIFARE Classic 1K: four blocks a sector, the last one the sector trailer (keys), never data.
    blocks = tuple(block for sector in (1, 2) for block in range(4 * sector, 4 * sector + 3))
    assert card_record.RECORD_BLOCKS == blocks
    assert len(card_record.RECORD_BLOCKS) * 16 == card_record.SIGNED_RECORD_BYTES == 96


def test_an_issuance_uses_all_four_of_its_bytes():
    record = CardRecord("T000123", 2**24 + 7, "temporary", "P1")
    assert card_record.read_record(card_record.sign_record(record, UID, KEY), UID, KEY.verify_key, "P1") == record


@pytest.mark.parametrize("kind, code", [("temporary", 1), ("member", 2), ("staff", 3)])
def test_each_card_kind_has_its_code_byte(kind, code):
    record = CardRecord("ABCD", 1, kind, "P1")
    assert record.to_bytes()[3] == code
    assert card_record.read_record(card_record.sign_record(record, UID, KEY), UID, KEY.verify_key, "P1").kind == kind


@pytest.mark.parametrize("number", ["ABCD", "A" * 20])
def test_card_numbers_of_4_and_20_characters_are_written(number):
    assert CardRecord(number, 1, "temporary", "P1").to_bytes()[8:28] == number.encode().ljust(20, b"\0")


@pytest.mark.parametrize("record", [
    CardRecord("ABC", 1, "temporary", "P1"),
    CardRecord("A" * 21, 1, "temporary", "P1"),
    CardRecord("AB-C", 1, "temporary", "P1"),
    CardRecord("ABCD", 1, "visitor", "P1"),
])
def test_a_card_record_outside_the_layout_is_never_written(record):
    with pytest.raises(LocalProtocolError):
        record.to_bytes()


def signed_raw(record_bytes: bytes, uid: bytes = UID) -> bytes:
    return record_bytes + KEY.sign(DOMAIN + b"card-record\x00" + uid + record_bytes).signature


GOOD = RECORD.to_bytes()


@pytest.mark.parametrize("data, message", [
    (signed_raw(GOOD)[:95], "no fieldpos record"),
    (signed_raw(GOOD) + b"\0", "no fieldpos record"),
    (signed_raw(b"FX" + GOOD[2:]), "no fieldpos record"),
    (signed_raw(GOOD[:2] + b"\x02" + GOOD[3:]), "no fieldpos record"),
    (signed_raw(GOOD, uid=bytes(7)), "signature does not match"),
    (signed_raw(GOOD[:28] + hashlib.sha256(b"P2").digest()[:4]), "another park"),
    (signed_raw(GOOD[:3] + b"\x04" + GOOD[4:]), "damaged"),
    (signed_raw(GOOD[:3] + b"\x00" + GOOD[4:]), "damaged"),
    (signed_raw(GOOD[:8] + b"T0-0123".ljust(20, b"\0") + GOOD[28:]), "damaged"),
])
def test_a_card_record_that_is_short_foreign_forged_or_damaged_is_refused(data, message):
    with pytest.raises(CardRecordError) as error:
        card_record.read_record(data, UID, KEY.verify_key, "P1")
    assert message in str(error.value) and error.value.code == "CARD_RECORD_INVALID"


def test_the_sector_key_is_six_bytes_of_an_hmac_over_the_uid():
    expected = hmac.new(b"master", b"fieldpos-sector-key\x00" + UID, hashlib.sha256).digest()[:6]
    assert card_record.sector_key(b"master", UID) == expected and len(expected) == 6


# ---------------------------------------------------------------- PIN blocks
LEDGER_PIN = PrivateKey(bytes(range(32)))


@pytest.mark.parametrize("value, is_valid", [("1234", True), ("123456", True), ("123", False), ("1234567", False),
                                             ("12a4", False), (1234, False)])
def test_a_pin_is_four_to_six_digits(value, is_valid):
    if is_valid:
        assert pin.check_pin(value) == value
    else:
        assert refused(pin.check_pin, value) == "VALUE_OUT_OF_RANGE"


def test_a_pin_block_opens_only_for_the_request_it_was_sealed_for():
    block, digest = pin.seal_pin("2468", terminal="T-DESK-1", seq=42, ledger_pin_key=LEDGER_PIN.public_key,
                                 supervisor_pin="97531")
    assert digest == hashlib.sha256(block).hexdigest()
    opened = dict(pin_sha256=digest, terminal="T-DESK-1", seq=42, ledger_pin_key=LEDGER_PIN)
    assert pin.open_pin(block, **opened) == "2468"
    assert pin.open_pin(block, **opened, field="supervisor_pin") == "97531"
    for change in [dict(pin_sha256=None), dict(pin_sha256="0" * 64), dict(terminal="T-DESK-2"), dict(seq=43)]:
        assert refused(pin.open_pin, block, **(opened | change)) == "PIN_BLOCK_INVALID"
    assert refused(pin.open_pin, b"", **(opened | dict(pin_sha256=hashlib.sha256(b"").hexdigest()))) == "PIN_BLOCK_INVALID"
    not_a_box = b"x" * 60
    assert refused(pin.open_pin, not_a_box, **(opened | dict(pin_sha256=hashlib.sha256(not_a_box).hexdigest()))) \
        == "PIN_BLOCK_INVALID"


def test_a_pin_block_without_the_asked_pin_is_refused():
    block, digest = pin.seal_pin(None, terminal="T-DESK-1", seq=5, ledger_pin_key=LEDGER_PIN.public_key)
    assert refused(pin.open_pin, block, pin_sha256=digest, terminal="T-DESK-1", seq=5, ledger_pin_key=LEDGER_PIN) \
        == "PIN_BLOCK_INVALID"


# ---------------------------------------------------------------- topics and ids
def test_every_topic_is_spelled_as_the_document_says():
    assert topics.request("P1", "T-1") == "fieldpos/v1/P1/t/T-1/req"
    assert topics.result("P1", "T-1") == "fieldpos/v1/P1/t/T-1/res"
    assert topics.status("P1", "T-1") == "fieldpos/v1/P1/t/T-1/status"
    assert topics.config("P1", "T-1") == "fieldpos/v1/P1/t/T-1/cfg"
    assert topics.blocklist("P1") == "fieldpos/v1/P1/blocklist"
    assert topics.all_requests("P1") == "fieldpos/v1/P1/t/+/req"
    assert topics.all_statuses("P1") == "fieldpos/v1/P1/t/+/status"


@pytest.mark.parametrize("value, is_valid", [
    ("T", True), ("T" * 32, True), ("t-1.a_b", True), ("9", True),
    ("T" * 33, False), ("", False), ("-T", False), ("T+", False), ("T#", False), ("T/1", False), (7, False),
])
def test_an_id_is_1_to_32_safe_characters_and_never_a_wildcard(value, is_valid):
    if is_valid:
        assert topics.check_id(value) == value
    else:
        with pytest.raises(LocalProtocolError):
            topics.check_id(value)


@pytest.mark.parametrize("topic, expected", [
    ("fieldpos/v1/P1/t/T-1/req", ("P1", "T-1")),
    ("fieldpos/v1/P1/t/T-1/res", None),
    ("fieldpos/v1/P1/t/-T/req", None),
    ("fieldpos/v1/-P/t/T-1/req", None),
    ("fieldpos/v1/P1/t/T-1/req/x", None),
])
def test_the_ledger_reads_park_and_terminal_from_a_request_topic(topic, expected):
    assert topics.parse_request_topic(topic) == expected


@pytest.mark.parametrize("topic, expected", [
    ("fieldpos/v1/P1/t/T-1/status", ("P1", "T-1")),
    ("fieldpos/v1/P1/t/T-1/req", None),
    ("fieldpos/v1/P1/t/-T/status", None),
    ("fieldpos/v1/-P/t/T-1/status", None),
])
def test_the_ledger_reads_park_and_terminal_from_a_status_topic(topic, expected):
    assert topics.parse_status_topic(topic) == expected


# ---------------------------------------------------------------- messages: each field check at its bounds
CARD = CardRef(no="T000123", issuance=1, uid="04a1b2c3")


def top_up(**change):
    fields = dict(park="P1", terminal="T-DESK-1", seq=1, terminal_time_ms=0, clock_uncertain=False, operator="op-1",
                  config_version=0, card=CARD, amount_fen=100, channel="cash", payment_ref="")
    return TopUp(**(fields | change))


def top_up_refusal(**change) -> str:
    return refused(top_up, **change)


@pytest.mark.parametrize("field, low, high", [
    ("seq", 1, 2**53 - 1),
    ("terminal_time_ms", 0, 2**53 - 1),
    ("config_version", 0, 2**53 - 1),
])
def test_each_integer_field_takes_its_bounds_and_refuses_one_past(field, low, high):
    assert getattr(top_up(**{field: low}), field) == low
    assert getattr(top_up(**{field: high}), field) == high
    assert top_up_refusal(**{field: low - 1}) == "VALUE_OUT_OF_RANGE"
    assert top_up_refusal(**{field: high + 1}) == "VALUE_OUT_OF_RANGE"
    assert top_up_refusal(**{field: True}) == "WRONG_TYPE"  # a bool is an int in Python, never on our wire
    assert top_up_refusal(**{field: "1"}) == "WRONG_TYPE"


def test_an_amount_of_one_fen_to_100000_yuan_is_taken_and_zero_or_one_fen_more_is_refused():
    assert top_up(amount_fen=1).amount_fen == 1
    assert top_up(amount_fen=10_000_000).amount_fen == limits.MAX_AMOUNT_FEN == 10_000_000
    assert top_up_refusal(amount_fen=0) == "AMOUNT_OUT_OF_RANGE"
    assert top_up_refusal(amount_fen=10_000_001) == "AMOUNT_OUT_OF_RANGE"


@pytest.mark.parametrize("field, value, reason", [
    ("operator", "o" * 32, None), ("operator", "o" * 33, "VALUE_OUT_OF_RANGE"), ("operator", "", "VALUE_OUT_OF_RANGE"),
    ("operator", "-op", "VALUE_OUT_OF_RANGE"), ("operator", 5, "WRONG_TYPE"),
    ("payment_ref", "", None), ("payment_ref", "r" * 64, None), ("payment_ref", "r" * 65, "VALUE_OUT_OF_RANGE"),
    ("payment_ref", "tab\there", "VALUE_OUT_OF_RANGE"), ("payment_ref", None, "WRONG_TYPE"),
    ("channel", "alipay", None), ("channel", "gold", "VALUE_OUT_OF_RANGE"), ("channel", ["cash"], "WRONG_TYPE"),
    ("clock_uncertain", True, None), ("clock_uncertain", 1, "WRONG_TYPE"),
])
def test_each_text_and_choice_field_takes_what_the_park_sends_and_refuses_the_rest(field, value, reason):
    if reason is None:
        assert getattr(top_up(**{field: value}), field) == value
    else:
        assert top_up_refusal(**{field: value}) == reason


@pytest.mark.parametrize("uid, reason", [
    ("04a1b2c3", None), ("04a1b2c3d4e5f6", None), ("04a1b2c3d4e5f60718a9", None),
    ("04a1b2c3d4", "VALUE_OUT_OF_RANGE"), ("04a1b2c3d4e5f607", "VALUE_OUT_OF_RANGE"),
    ("04a1b2c3d4e5f60718a9b0", "VALUE_OUT_OF_RANGE"), ("04a1b2c", "VALUE_OUT_OF_RANGE"),
    ("04A1B2C3", "VALUE_OUT_OF_RANGE"), ("04a1b2cz", "VALUE_OUT_OF_RANGE"), (4, "WRONG_TYPE"),
])
def test_a_card_uid_is_4_7_or_10_bytes_in_lower_case_hex(uid, reason):
    if reason is None:
        assert CardRef(no="ABCD", issuance=1, uid=uid).uid == uid
    else:
        assert refused(CardRef, no="ABCD", issuance=1, uid=uid) == reason


@pytest.mark.parametrize("no, issuance, reason", [
    ("ABCD", 1, None), ("A" * 20, 1_000_000, None), ("ABC", 1, "VALUE_OUT_OF_RANGE"), ("A" * 21, 1, "VALUE_OUT_OF_RANGE"),
    ("abcd", 1, "VALUE_OUT_OF_RANGE"), ("ABCD", 0, "VALUE_OUT_OF_RANGE"), ("ABCD", 1_000_001, "VALUE_OUT_OF_RANGE"),
])
def test_a_card_number_is_4_to_20_capitals_or_digits_and_an_issuance_1_to_a_million(no, issuance, reason):
    if reason is None:
        assert CardRef(no=no, issuance=issuance, uid="04a1b2c3").account == f"card:{no}/{issuance}"
    else:
        assert refused(CardRef, no=no, issuance=issuance, uid="04a1b2c3") == reason


def charge(items, amount_fen=None, cls=Charge, **change):
    lines = tuple(items)
    fields = dict(park="P1", terminal="T-FISH-1", seq=9, terminal_time_ms=0, clock_uncertain=False, operator="op-1",
                  config_version=0, card=CARD, lines=lines, pin_sha256=None,
                  amount_fen=sum(line.qty * line.unit_fen for line in lines) if amount_fen is None else amount_fen)
    if cls is OfflineCharge:
        fields |= dict(supersedes_seq=None, approved_ms=0)
    return cls(**(fields | change))


BAIT = LineItem(item="鱼饵 Bait", qty=1, unit_fen=500)


def test_a_sale_of_32_lines_is_taken_and_33_or_none_refused():
    assert len(charge([BAIT] * 32).lines) == limits.MAX_LINE_ITEMS == 32
    assert refused(charge, [BAIT] * 33) == "VALUE_OUT_OF_RANGE"
    assert refused(charge, [], amount_fen=500) == "VALUE_OUT_OF_RANGE"
    assert refused(charge, [BAIT], lines=[BAIT]) == "WRONG_TYPE"        # a list, not a tuple
    assert refused(charge, [BAIT], lines=(BAIT, CARD)) == "WRONG_TYPE"  # not all line items
    assert refused(charge, [BAIT], card="T000123") == "WRONG_TYPE"


@pytest.mark.parametrize("qty, unit_fen, reason", [
    (999, 0, None), (1, 10_000_000, None), (0, 1, "VALUE_OUT_OF_RANGE"), (1000, 1, "VALUE_OUT_OF_RANGE"),
    (1, -1, "AMOUNT_OUT_OF_RANGE"), (1, 10_000_001, "AMOUNT_OUT_OF_RANGE"),
])
def test_a_line_holds_1_to_999_of_an_item_at_0_to_100000_yuan(qty, unit_fen, reason):
    if reason is None:
        assert LineItem(item="x", qty=qty, unit_fen=unit_fen).qty == qty
    else:
        assert refused(LineItem, item="x", qty=qty, unit_fen=unit_fen) == reason


def test_lines_one_fen_off_the_amount_are_refused_and_exact_lines_taken():
    lines = [LineItem(item="Ice", qty=3, unit_fen=250), LineItem(item="Tea", qty=2, unit_fen=100)]
    assert charge(lines, amount_fen=950).amount_fen == 950
    assert refused(charge, lines, amount_fen=951) == "LINES_DO_NOT_ADD_UP"
    assert refused(charge, lines, amount_fen=949) == "LINES_DO_NOT_ADD_UP"


def test_an_offline_sale_names_only_an_earlier_attempt_and_never_carries_a_pin():
    assert charge([BAIT], cls=OfflineCharge, supersedes_seq=8).supersedes_seq == 8
    assert refused(charge, [BAIT], cls=OfflineCharge, supersedes_seq=9) == "VALUE_OUT_OF_RANGE"
    assert refused(charge, [BAIT], cls=OfflineCharge, supersedes_seq=10) == "VALUE_OUT_OF_RANGE"
    assert refused(charge, [BAIT], cls=OfflineCharge, pin_sha256="a" * 64) == "VALUE_OUT_OF_RANGE"
    assert refused(charge, [BAIT], cls=OfflineCharge, amount_fen=501) == "LINES_DO_NOT_ADD_UP"
    assert charge([BAIT], pin_sha256="a" * 64).pin_sha256 == "a" * 64  # online, a PIN may travel


def card_issue(card_fee_fen, opening_fen):
    return CardIssue(park="P1", terminal="T-DESK-1", seq=1, terminal_time_ms=0, clock_uncertain=False, operator="op-1",
                     config_version=0, card=CARD, card_kind="temporary", card_fee_fen=card_fee_fen,
                     opening_fen=opening_fen, channel="cash", payment_ref="")


def test_a_card_issue_may_move_up_to_the_amount_bound_in_fee_and_opening_together():
    assert card_issue(1000, 10_000_000 - 1000).opening_fen == 9_999_000
    assert refused(card_issue, 1001, 10_000_000 - 1000) == "AMOUNT_OUT_OF_RANGE"
    assert card_issue(0, 0).card_fee_fen == 0


@pytest.mark.parametrize("field, value, reason", [
    ("nonce", "a" * 32, None), ("nonce", "a" * 31, "VALUE_OUT_OF_RANGE"), ("nonce", "a" * 33, "VALUE_OUT_OF_RANGE"),
    ("nonce", "A" * 32, "VALUE_OUT_OF_RANGE"), ("nonce", ["a"] * 32, "WRONG_TYPE"),
])
def test_a_hello_nonce_is_32_lower_case_hex_digits(field, value, reason):
    fields = dict(park="P1", terminal="T-1", nonce="0" * 32, terminal_time_ms=5) | {field: value}
    if reason is None:
        assert Hello(**fields).nonce == value
    else:
        assert refused(Hello, **fields) == reason


def result(**change):
    fields = dict(park="P1", terminal="T-1", seq=3, request_sha256="ab" * 32, outcome="approved", reason="OK",
                  balances=Balances(fen=-5, bonus=0, points=7), txn=11, ledger_time_ms=1, detail="",
                  card_record=None, amount_fen=0)
    return Result(**(fields | change))


def test_a_result_serialises_field_for_field_with_its_nested_balances_and_nulls():
    answer = result()
    assert answer.to_obj() == {
        "type": "result", "park": "P1", "terminal": "T-1", "seq": 3, "request_sha256": "ab" * 32,
        "outcome": "approved", "reason": "OK", "balances": {"fen": -5, "bonus": 0, "points": 7}, "txn": 11,
        "ledger_time_ms": 1, "detail": "", "card_record": None, "amount_fen": 0}
    assert parse(answer.to_bytes(), REPLY_TYPES) == answer
    assert answer.is_approved and not result(outcome="declined", reason="INSUFFICIENT_FUNDS").is_approved
    assert result(seq=None, balances=None, txn=None, amount_fen=None).to_obj()["balances"] is None


@pytest.mark.parametrize("change, reason", [
    (dict(outcome="maybe"), "VALUE_OUT_OF_RANGE"), (dict(reason="NOT_A_REASON"), "VALUE_OUT_OF_RANGE"),
    (dict(card_record="ab" * 95), "VALUE_OUT_OF_RANGE"), (dict(balances={"fen": 1}), "WRONG_TYPE"),
    (dict(request_sha256="ab" * 31), "VALUE_OUT_OF_RANGE"), (dict(detail="x" * 65), "VALUE_OUT_OF_RANGE"),
])
def test_a_result_with_a_field_out_of_its_form_is_never_built(change, reason):
    assert refused(result, **change) == reason
    assert result(card_record="ab" * 96).card_record == "ab" * 96


def test_parts_serialise_without_a_type_and_refuse_one_on_the_wire():
    assert CARD.to_obj() == {"no": "T000123", "issuance": 1, "uid": "04a1b2c3"}
    assert CardRef.from_obj({"no": "T000123", "issuance": 1, "uid": "04a1b2c3"}) == CARD
    assert refused(CardRef.from_obj, {"type": "card", "no": "T000123", "issuance": 1, "uid": "04a1b2c3"}) == "UNKNOWN_FIELD"


def parse_refusal(obj, types=REQUEST_TYPES) -> str:
    with pytest.raises(RemoteProtocolError) as error:
        parse(json.dumps(obj).encode(), types)
    return error.value.code


def test_a_top_up_reads_back_from_the_wire_and_each_wrong_shape_is_refused_by_name():
    wire = top_up().to_obj()
    assert parse(codec.encode(wire), REQUEST_TYPES) == top_up()
    assert parse_refusal(wire | {"tip_fen": 1}) == "UNKNOWN_FIELD"
    assert parse_refusal({k: v for k, v in wire.items() if k != "payment_ref"}) == "MISSING_FIELD"
    assert parse_refusal(wire | {"card": "T000123"}) == "WRONG_TYPE"
    assert parse_refusal(wire | {"card": wire["card"] | {"extra": 1}}) == "UNKNOWN_FIELD"
    assert parse_refusal(wire | {"amount_fen": 0}) == "AMOUNT_OUT_OF_RANGE"
    assert parse_refusal(wire | {"type": ["top_up"]}) == "WRONG_TYPE"
    assert parse_refusal(wire | {"type": "top_down"}) == "UNKNOWN_TYPE"
    assert parse_refusal({k: v for k, v in wire.items() if k != "type"}) == "UNKNOWN_TYPE"
    assert parse_refusal(wire, REPLY_TYPES) == "UNKNOWN_TYPE"


def test_a_charge_reads_back_with_its_lines_and_a_lines_field_that_is_no_list_is_refused():
    sale = charge([BAIT, LineItem(item="Rod", qty=2, unit_fen=3000)])
    wire = sale.to_obj()
    assert wire["lines"] == [{"item": "鱼饵 Bait", "qty": 1, "unit_fen": 500}, {"item": "Rod", "qty": 2, "unit_fen": 3000}]
    assert wire["pin_sha256"] is None and wire["type"] == "charge"
    assert parse(sale.to_bytes(), REQUEST_TYPES) == sale
    assert parse_refusal(wire | {"lines": {"item": "Rod"}}) == "WRONG_TYPE"
    assert parse_refusal(wire | {"lines": [{"item": "Rod", "qty": 2}]}) == "MISSING_FIELD"
    assert parse_refusal(wire | {"lines": ["Rod"]}) == "WRONG_TYPE"


def test_a_blocklist_may_be_empty_and_reads_back_entries_in_order():
    snapshot = Blocklist(park="P1", version=3, issued_ms=9, blocked=(), low=(CardEntry(no="ABCD", issuance=2, fen=-40),))
    assert parse(snapshot.to_bytes(), BROADCAST_TYPES) == snapshot
    assert snapshot.to_obj()["low"] == [{"no": "ABCD", "issuance": 2, "fen": -40}]


def entries(count):
    return tuple(CardEntry(no=f"C{n:05d}", issuance=1, fen=0) for n in range(count))


def test_a_blocklist_holds_up_to_a_thousand_cards_in_each_list():
    full = Blocklist(park="P1", version=1, issued_ms=0, blocked=entries(1000), low=entries(1000))
    assert len(full.blocked) == len(full.low) == 1000
    assert refused(Blocklist, park="P1", version=1, issued_ms=0, blocked=entries(1001), low=()) == "VALUE_OUT_OF_RANGE"
    assert refused(Blocklist, park="P1", version=1, issued_ms=0, blocked=(), low=entries(1001)) == "VALUE_OUT_OF_RANGE"


def test_an_empty_blocklist_and_an_empty_delta_are_valid_news():
    assert Blocklist(park="P1", version=1, issued_ms=0, blocked=(), low=()).low == ()
    delta = BlocklistDelta(park="P1", from_version=1, version=2, issued_ms=0, blocked=(), unblocked=(), low=())
    assert parse(delta.to_bytes(), BROADCAST_TYPES) == delta


def test_a_heartbeat_with_nothing_queued_names_no_oldest_time():
    status = TerminalStatus(park="P1", terminal="T-1", is_online=False, highest_seq=0, queue_depth=0,
                            oldest_queued_ms=None, time_ms=0)
    assert status.to_obj()["oldest_queued_ms"] is None
    assert refused(TerminalStatus, park="P1", terminal="T-1", is_online=False, highest_seq=0, queue_depth=0,
                   oldest_queued_ms=-1, time_ms=0) == "VALUE_OUT_OF_RANGE"


def member_cards(count):
    return tuple(MemberCard(no=f"M{n:04d}", issuance=1, uid="04a1b2c3", name="王芳", state="active", fen=0, bonus=0,
                            points=0) for n in range(count))


def test_a_member_lookup_answers_with_at_most_twenty_cards():
    fields = dict(park="P1", terminal="T-1", seq=1, request_sha256="ab" * 32, ledger_time_ms=0)
    assert len(MemberLookupReply(**fields, cards=member_cards(20)).cards) == 20
    assert refused(MemberLookupReply, **fields, cards=member_cards(21)) == "VALUE_OUT_OF_RANGE"


def test_an_item_name_is_never_empty_though_a_payment_reference_may_be():
    assert refused(LineItem, item="", qty=1, unit_fen=1) == "VALUE_OUT_OF_RANGE"
    assert top_up(payment_ref="").payment_ref == ""


def test_replies_that_are_always_answers_say_so():
    report = StationReportReply(park="P1", terminal="T-1", seq=1, request_sha256="ab" * 32, station="S1",
                                business_day="2026-05-01", sales_count=0, sales_fen=0, offline_count=0, voids_count=0,
                                ledger_time_ms=0)
    lookup = MemberLookupReply(park="P1", terminal="T-1", seq=1, request_sha256="ab" * 32, cards=(), ledger_time_ms=0)
    assert report.is_approved is True and lookup.is_approved is True


@pytest.mark.parametrize("text, expected", [
    ("Card blocked", "Card blocked"),
    ("x" * 70, "x" * 64),
    ("bad\nline\x00", "bad?line?"),
    (12, "12"),
])
def test_a_refusal_detail_is_printable_and_at_most_64_characters(text, expected):
    assert printable_detail(text) == expected
