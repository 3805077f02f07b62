"""Vectors for the tap's protocol subset, computed by the reference (protocol/, PyNaCl, hashlib),
and a way to run tests/helpers/tap_vector_check.py over them under any Python: CPython, the
MicroPython unix port or the WebAssembly port. Every vector names what the tap must produce or
refuse, so a runtime that differs from protocol/ in one byte or one reason code fails."""

import hashlib
import json
import random
from pathlib import Path

from nacl.signing import SigningKey

from protocol import codec, envelope, messages, topics
from protocol.card_record import CardRecord, sector_key, sign_record
from protocol.envelope import Purpose
from protocol.errors import ProtocolError
from tools import protocol_example

CHECKER = Path(__file__).with_name("tap_vector_check.py")


def _reason(call):
    try:
        call()
    except ProtocolError as error:
        return error.code
    return None


def _decode_outcome(body: bytes):
    try:
        return ["ok", codec.decode(body)]
    except ProtocolError as error:
        return ["err", error.code]


def _mutations(seed_bodies, count, rng):
    alphabet = list(b'{}[]":,-0123456789.eE+ \\untrfalsNIy_abc') + [0xE9, 0xFF, 0xED, 0xA0, 0x80, 0xC0, 0x1F, 0xEF]
    for _ in range(count):
        body = bytearray(rng.choice(seed_bodies))
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(body) + 1)
            roll = rng.random()
            if roll < 0.4:
                body[i:i] = bytes([rng.choice(alphabet)])
            elif roll < 0.7 and len(body) > 1:
                del body[min(i, len(body) - 1)]
            elif body:
                body[min(i, len(body) - 1)] = rng.choice(alphabet)
        yield bytes(body)


def _json_edge_bodies():
    deep = b'{"a":' + b"[" * 8 + b"]" * 8 + b"}"
    return [
        b'{"a":1,"a":2}', b'{"a":1.0}', b'{"a":1e2}', b'{"a":NaN}', b'{"a":-Infinity}', b'{"a":Infinity}',
        b'{"a":12345678901234567}', b'{"a":-1234567890123456}', b'{"a":9007199254740992}', b'{"a":-9007199254740991}',
        b'{"a":"' + b"x" * 421 + b'"}', b'{"a":["' + b"y" * 421 + b'"]}', b'{"A":1}', b'{"":1}', b'{"a,b":1}',
        b'{' + b",".join(b'"k%d":%d' % (i, i) for i in range(33)) + b'}', deep, b'{"a":' + b"[" * 7 + b"]" * 7 + b"}",
        b'{"a":"[[[[[[[[[["}', b'\xef\xbb\xbf{}', b'{"a":"\xed\xa0\x80"}', b'{"a":"\xc0\x80"}', b'{"a":"\xff"}',
        b'{"a":"\xf4\x90\x80\x80"}', b'{"a":"\\u00e9\\/\\n\\ud83d\\ude00"}', b' {"a" : [ 1 , 2 ] } ', b'[1]', b'"x"',
        b'{"a":01}', b'{"a":-}', b'{"a":1.}', b'{"a":"\x01"}', b'{"a":tru}', b'{"a":1}x', b'{"a":"\\x"}',
        '{"钓":"鱼"}'.encode(), b'{"a":[1,{"b":{"c":[{"d":"' + b"z" * 500 + b'"}]}}]}',
    ]


def _message_bodies():
    """Replies and broadcasts as the ledger sends them (protocol/), valid ones and broken ones."""
    result = messages.Result(
        park="P1", terminal="TAP-1", seq=7, request_sha256="a" * 64, outcome="approved", reason="OK",
        balances=messages.Balances(fen=7000, bonus=0, points=0), txn=1001, ledger_time_ms=1780000000123,
        detail="钓鱼 ok", amount_fen=3000).to_obj()
    declined = dict(result, outcome="declined", reason="CARD_BLOCKED", balances=None, txn=None, amount_fen=None)
    welcome = messages.Welcome(park="P1", terminal="TAP-1", nonce="0" * 32, request_sha256="b" * 64,
                               highest_seq=41, ledger_time_ms=1780000000000).to_obj()
    config = _sample_config()
    blocklist = {"type": "blocklist", "park": "P1", "version": 3, "issued_ms": 5,
                 "blocked": [{"no": "C00001", "issuance": 1, "fen": -200}], "low": []}
    delta = {"type": "blocklist_delta", "park": "P1", "from_version": 3, "version": 4, "issued_ms": 6,
             "blocked": [], "unblocked": [{"no": "C00001", "issuance": 1, "fen": 0}], "low": []}
    valid = [result, declined, welcome, config, blocklist, delta]
    broken = []
    for obj in valid:
        for key in sorted(obj):
            if key == "type":
                continue
            for bad in (None, True, "x", -1, 0, 2**53 - 1, [], {}, "A" * 65, "\u00a0", "C00001", "ok\n"):
                broken.append(dict(obj, **{key: bad}))
            without = dict(obj)
            del without[key]
            broken.append(without)
        broken.append(dict(obj, extra=1))
        broken.append(dict(obj, type=5))
        broken.append(dict(obj, type="nope"))
    broken.append(dict(config, station=dict(config["station"], menu=[])))
    broken.append(dict(config, station=dict(config["station"], opens="25:00", closes="08:00")))
    broken.append(dict(config, station=dict(config["station"], opens="08:00", closes=None)))
    broken.append(dict(config, offline=dict(config["offline"], max_count=True)))
    broken.append(dict(result, balances={"fen": 1, "bonus": 2}))
    broken.append(dict(blocklist, blocked=[{"no": "c1", "issuance": 1, "fen": 0}]))
    broken.append(dict(blocklist, blocked=["C00001"]))
    return [codec.encode(obj) for obj in valid + broken]


def _sample_config() -> dict:
    return {
        "type": "config", "park": "P1", "terminal": "TAP-1", "version": 4, "issued_ms": 1780000000000,
        "offline": {"allowed_modes": "fixed", "blocklist_max_age_ms": 3600000, "max_card_fen": 5000,
                    "max_count": 20, "max_offline_ms": 7200000, "max_reboots": 3, "max_terminal_fen": 50000,
                    "max_transaction_fen": 3000},
        "rules": {"card_fee_fen": 2000, "damage_fee_fen": 1000, "no_pin_limit_fen": 20000},
        "station": {"name": "旋转木马 Carousel", "mode": "fixed", "opens": None, "closes": None,
                    "menu": [{"item": "ride", "name": "木马 1次", "price_fen": 1500}]},
        "staff": [], "rental": None,
    }


def _parse_outcome(body: bytes, types: dict):
    try:
        return ["ok", messages.parse(body, types).to_obj()]
    except ProtocolError as error:
        return ["err", error.code]


def _envelope_vectors():
    rng = random.Random(7)
    key = SigningKey(bytes(range(32)))
    ledger = SigningKey(bytes(range(32, 64)))
    topic = topics.request("P1", "TAP-1")
    body = codec.encode({"type": "hello", "park": "P1", "terminal": "TAP-1", "nonce": "0" * 32, "terminal_time_ms": 1})
    good = envelope.seal(body, signing_key=key, key_id="TAP-1-k1", purpose=Purpose.REQUEST, topic=topic)
    payloads = [good, good[:4], b"XP" + good[2:], good[:2] + b"\x02" + good[3:], good[:3] + b"\x02" + good[4:],
                good[:4] + b"\x00" + good[5:], good[:4] + b"\x21" + good[5:], good[:30],
                good[:5 + 8 + 64] + b"\x01\x01" + good[5 + 8 + 66:], good[:5 + 8 + 64] + b"\x00\x50" + body[:10],
                good[:5] + b"TAP-1-k\xff" + good[13:], good[:5] + b"TAP/1-k1" + good[13:], b"x" * 8193]
    for _ in range(40):
        mutated = bytearray(good)
        mutated[rng.randrange(len(mutated))] ^= 1 << rng.randrange(8)
        payloads.append(bytes(mutated))
    vectors = []
    for payload in payloads:
        try:
            parts = envelope.split(payload)
        except ProtocolError as error:
            vectors.append({"payload": payload.hex(), "split": error.code})
            continue
        signed = _reason(lambda: envelope.verify(parts, verify_key=key.verify_key, purpose=Purpose.REQUEST, topic=topic))
        vectors.append({"payload": payload.hex(), "split": None, "key_id": parts.key_id, "body": parts.body.hex(),
                        "sha256": parts.sha256, "verify": signed})
    # The ledger's Result for the tap: signed by protocol/, opened by the tap.
    result_topic = topics.result("P1", "TAP-1")
    result = envelope.seal(_message_bodies()[0], signing_key=ledger, key_id="P1-result-1", purpose=Purpose.RESULT,
                           topic=result_topic)
    vectors.append({"payload": result.hex(), "split": None, "key_id": "P1-result-1", "body": result[5 + 11 + 66:].hex(),
                    "sha256": hashlib.sha256(result).hexdigest(), "verify": None, "public_key": ledger.verify_key.encode().hex(),
                    "purpose": "result", "topic": result_topic})
    return vectors


def _card_vectors():
    key = SigningKey(bytes(range(64, 96)))
    vectors = []
    for uid in (bytes.fromhex("04a1b2c3"), bytes.fromhex("04a1b2c3d4e5f6")):
        record = sign_record(CardRecord("C00001", 3, "temporary", "P1"), uid, key)
        for data, park in ((record, "P1"), (record, "P2"), (record[:95], "P1"), (record[:40] + b"\x00" + record[41:], "P1"),
                           (record[:3] + b"\x09" + record[4:], "P1")):
            vectors.append({"uid": uid.hex(), "data": data.hex(), "park": park,
                            "sector_key": sector_key(bytes(range(96, 128)), uid).hex()})
    return {"public_key": key.verify_key.encode().hex(), "master": bytes(range(96, 128)).hex(), "records": vectors}


def build() -> dict:
    rng = random.Random(18)
    seeds = [codec.encode(obj) for obj in ({"a": 1, "b": [1, 2, {"c": "x"}], "d": None, "e": True, "f": False, "g": -5,
                                            "h": "é\n\"", "i": "钓鱼"},)] + _message_bodies()[:6]
    bodies = _json_edge_bodies() + list(_mutations(seeds, 400, rng))
    objects = [
        {"b": 1, "a": [1, "x\u001b\u2028é钓\"\\/\x7f\t\b\f\r\n"], "é": None, "Z": True, "_": False, "z": -0},
        {"emoji": "😀", "nested": {"y": [], "x": {}}, "big": 2**53 - 1, "neg": -(2**53 - 1)},
    ]
    example = protocol_example.example()
    sign_cases = []
    for i in range(4):
        seed = bytes(rng.randrange(256) for _ in range(32))
        message = bytes(rng.randrange(256) for _ in range(i * 97))
        sign_cases.append({"seed": seed.hex(), "message": message.hex(),
                           "public_key": SigningKey(seed).verify_key.encode().hex(),
                           "signature": SigningKey(seed).sign(message).signature.hex()})
    return {
        "encode": [{"obj": obj, "bytes": codec.encode(obj).hex()} for obj in objects],
        "decode": [{"body": body.hex(), "outcome": _decode_outcome(body)} for body in bodies],
        "sha512": [{"data": (b"abc" * n).hex(), "digest": hashlib.sha512(b"abc" * n).hexdigest()} for n in (0, 1, 37, 42, 43, 100)],
        "sign": sign_cases,
        "replies": [{"body": body.hex(), "outcome": _parse_outcome(body, {**messages.REPLY_TYPES, **messages.BROADCAST_TYPES})}
                    for body in _message_bodies()],
        "envelopes": _envelope_vectors(),
        "cards": _card_vectors(),
        "example": {"seed": protocol_example.TERMINAL_SEED.hex(), "payload": example["request payload (hex)"],
                    "result": example["result payload (hex)"], "ledger_key": example["ledger result public key"]},
    }


def checker_script(vectors: dict, root: str | None) -> str:
    """The checker with the vectors in it: one file, for runtimes that cannot read ours."""
    prelude = "import sys\n" + (f"sys.path.insert(0, {root!r})\n" if root else "")
    return prelude + f"VECTORS_JSON = {json.dumps(vectors, ensure_ascii=False)!r}\n" + CHECKER.read_text()
