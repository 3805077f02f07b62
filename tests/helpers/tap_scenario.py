"""A tap's day against a scripted broker (tests/helpers/tap_broker_script.py) whose ledger answers
are signed by protocol/ with fixed keys: for tests of tap.app in CPython, and to record an exchange
that the MicroPython ports then replay byte for byte."""

import json

from nacl.signing import SigningKey

from protocol import codec, envelope, messages, topics
from protocol.card_record import CardRecord, sign_record
from protocol.envelope import Purpose

PARK, TAP = "P1", "TAP-1"
SEEDS = {"terminal": bytes(range(32)), "result": bytes(range(32, 64)), "config": bytes(range(64, 96)),
         "blocklist": bytes(range(96, 128)), "card-record": bytes(range(128, 160))}
KEYS = {name: SigningKey(seed) for name, seed in SEEDS.items()}
LEDGER_MS = 1_780_000_000_000


def bundle() -> dict:
    return {
        "park_id": PARK, "terminal_id": TAP, "station_id": "riding", "key_id": f"{TAP}-k1",
        "signing_seed": SEEDS["terminal"].hex(),
        "ledger_keys": {purpose: {"key_id": f"{PARK}-{purpose}-1", "public_key": KEYS[purpose].verify_key.encode().hex()}
                        for purpose in ("result", "config", "blocklist", "card-record")},
        "card_key_master": bytes(range(160, 192)).hex(),
        "broker": {"host": "127.0.0.1", "port": 1, "username": TAP, "password": "x" * 32, "tls_ca": None},
    }


def seal(purpose: str, topic: str, obj: dict) -> bytes:
    return envelope.seal(codec.encode(obj), signing_key=KEYS[purpose], key_id=f"{PARK}-{purpose}-1",
                         purpose=Purpose(purpose), topic=topic)


def config(*, version=1, mode="fixed", allowed_modes="fixed", price_fen=1500, issued_ms=LEDGER_MS) -> bytes:
    return seal("config", topics.config(PARK, TAP), {
        "type": "config", "park": PARK, "terminal": TAP, "version": version, "issued_ms": issued_ms,
        "offline": {"allowed_modes": allowed_modes, "blocklist_max_age_ms": 3_600_000, "max_card_fen": 5000,
                    "max_count": 20, "max_offline_ms": 7_200_000, "max_reboots": 3, "max_terminal_fen": 50_000,
                    "max_transaction_fen": 3000},
        "rules": {"card_fee_fen": 2000, "damage_fee_fen": 1000, "no_pin_limit_fen": 20000},
        "station": {"name": "骑马 Riding", "mode": mode, "opens": None, "closes": None,
                    "menu": [{"item": "ride", "name": "骑马 1次", "price_fen": price_fen}]},
        "staff": [], "rental": None,
    })


def blocklist(blocked=(), *, version=1, issued_ms=LEDGER_MS) -> bytes:
    return seal("blocklist", topics.blocklist(PARK), {
        "type": "blocklist", "park": PARK, "version": version, "issued_ms": issued_ms,
        "blocked": [{"no": no, "issuance": 1, "fen": 0} for no in blocked], "low": []})


def card(no: str, uid: bytes) -> tuple[bytes, bytes]:
    """(UID, the 96-byte record on the card)."""
    return uid, sign_record(CardRecord(no, 1, "temporary", PARK), uid, KEYS["card-record"])


class Ledger:
    """Answers the tap's requests as the ledger would: a Welcome to hello, an approval (with a
    running balance) to a charge — or nothing, while ``silent``."""

    def __init__(self, balance_fen=10000, highest_seq=0):
        self.balance_fen = balance_fen
        self.highest_seq = highest_seq
        self.silent = False
        self.requests = []

    def __call__(self, topic, payload):
        parts = envelope.split(bytes(payload))
        body = envelope.verify(parts, verify_key=KEYS["terminal"].verify_key, purpose=Purpose.REQUEST, topic=topic)
        message = messages.parse(body, messages.REQUEST_TYPES)  # the reference parser reads what the tap sent
        self.requests.append(message)
        if self.silent:
            return []
        res = topics.result(PARK, TAP)
        if message.TYPE == "hello":
            return [(res, seal("result", res, {"type": "welcome", "park": PARK, "terminal": TAP, "nonce": message.nonce,
                                               "request_sha256": parts.sha256, "highest_seq": self.highest_seq,
                                               "ledger_time_ms": LEDGER_MS}))]
        self.balance_fen -= message.amount_fen
        return [(res, seal("result", res, {
            "type": "result", "park": PARK, "terminal": TAP, "seq": message.seq, "request_sha256": parts.sha256,
            "outcome": "approved", "reason": "OK", "balances": {"bonus": 0, "fen": self.balance_fen, "points": 0},
            "txn": 1000 + message.seq, "ledger_time_ms": LEDGER_MS + 5, "detail": "", "card_record": None,
            "amount_fen": message.amount_fen}))]


class Ticks:
    """A clock that moves 1 ms each time it is read: the same in every runtime."""

    def __init__(self):
        self.now = 1000

    def __call__(self):
        self.now += 1
        return self.now


def fixed_random(count):
    return bytes(range(count))


def dump_log(log) -> str:
    return json.dumps([[direction, data.hex()] for direction, data in log])
