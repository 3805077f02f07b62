"""The card record a MIFARE card carries (PROTOCOL.md §9), read and checked as
protocol.card_record.read_record does, and the per-card sector key that opens it."""

import hashlib

from tap.envelope import CARD_RECORD, DOMAIN
from tap.errors import CARD_RECORD_INVALID, TapError

MAGIC = b"FC"
VERSION = 1
RECORD_BYTES = 32
SIGNED_RECORD_BYTES = 96
KINDS = {1: "temporary", 2: "member", 3: "staff"}
RECORD_BLOCKS = (4, 5, 6, 8, 9, 10)
_ALNUM = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def hmac_sha256(key, message):
    """RFC 2104 over hashlib.sha256 (every MicroPython port has SHA-256; not every one has hmac)."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key + bytes(64 - len(key))
    inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in key) + message).digest()
    return hashlib.sha256(bytes(byte ^ 0x5C for byte in key) + inner).digest()


def sector_key(master, uid):
    """The 6-byte key A of the record's sectors on the card with this UID."""
    return hmac_sha256(master, b"fieldpos-sector-key\x00" + uid)[:6]


def park_tag(park_id):
    return hashlib.sha256(park_id.encode()).digest()[:4]


class CardRecord:
    def __init__(self, card_no, issuance, kind, uid_hex):
        self.card_no = card_no
        self.issuance = issuance
        self.kind = kind
        self.uid_hex = uid_hex

    def card_ref(self):
        """The request's ``card`` field."""
        return {"no": self.card_no, "issuance": self.issuance, "uid": self.uid_hex}


def read_record(data, uid, verify_key, park_id):
    """The verified record of the 96 bytes read from the card with this UID, else TapError."""
    data = bytes(data)
    if len(data) != SIGNED_RECORD_BYTES or data[:2] != MAGIC or data[2] != VERSION:
        raise TapError(CARD_RECORD_INVALID, "no fieldpos record on this card")
    record = data[:RECORD_BYTES]
    try:
        verify_key.verify(DOMAIN + CARD_RECORD.encode() + b"\x00" + bytes(uid) + record, data[RECORD_BYTES:])
    except Exception:
        raise TapError(CARD_RECORD_INVALID, "card record signature does not match this card")
    if record[28:32] != park_tag(park_id):
        raise TapError(CARD_RECORD_INVALID, "card belongs to another park")
    kind = KINDS.get(record[3])
    number = record[8:28]
    while number and number[-1] == 0:
        number = number[:-1]
    if kind is None or not number or any(byte not in _ALNUM for byte in number):
        raise TapError(CARD_RECORD_INVALID, "card record is damaged")
    return CardRecord(number.decode(), int.from_bytes(record[4:8], "big"), kind, bytes(uid).hex())
