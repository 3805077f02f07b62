"""The card record: what a MIFARE Classic card carries, signed by the ledger's card-record key.

MIFARE Classic's crypto is broken (keys fall in seconds, "magic" cards take any UID), so the card
holds no balance — only who it is. 96 bytes in two sectors (1 and 2, three data blocks each):

    offset  size  field
    0       2     magic "FC"
    2       1     record version (1)
    3       1     kind: 1 temporary, 2 member, 3 staff
    4       4     issuance, big-endian
    8       20    card number, ASCII, NUL-padded
    28      4     park tag: first 4 bytes of SHA-256(park id)
    32      64    Ed25519 signature over DOMAIN || "card-record" || 0x00 || UID || bytes 0..32

The signature covers the card's UID, so a valid record copied onto another card (another UID) does
not verify. Terminals hold only the public key: a stolen terminal cannot mint cards.
"""

from dataclasses import dataclass
import hashlib
import hmac

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from .errors import LocalProtocolError, RemoteProtocolError
from .envelope import DOMAIN, Purpose

MAGIC = b"FC"
VERSION = 1
RECORD_BYTES = 32
SIGNED_RECORD_BYTES = RECORD_BYTES + 64
KINDS = {1: "temporary", 2: "member", 3: "staff"}
KIND_CODES = {name: code for code, name in KINDS.items()}
# Sector 1 and 2 data blocks: sector 0 holds the manufacturer block, trailers are skipped.
RECORD_BLOCKS = (4, 5, 6, 8, 9, 10)


def sector_key(master: bytes, uid: bytes) -> bytes:
    """The 6-byte MIFARE key A of the record's sectors on the card with this UID. Diversified per
    UID, so a key recovered from one card (seconds, with Crypto1 broken) opens no other card. It
    guards only reading: the record's signature is what makes it trustworthy."""
    return hmac.new(master, b"fieldpos-sector-key\x00" + uid, hashlib.sha256).digest()[:6]


class CardRecordError(RemoteProtocolError):
    """The card's record is missing, damaged, forged, or from another park."""

    code = "CARD_RECORD_INVALID"


@dataclass(frozen=True, slots=True)
class CardRecord:
    card_no: str
    issuance: int
    kind: str
    park_id: str

    def to_bytes(self) -> bytes:
        number = self.card_no.encode("ascii")
        if not 4 <= len(number) <= 20 or not number.isalnum() or self.kind not in KIND_CODES:
            raise LocalProtocolError(f"cannot encode card record {self!r}")
        return (MAGIC + bytes((VERSION, KIND_CODES[self.kind])) + self.issuance.to_bytes(4, "big")
                + number.ljust(20, b"\0") + park_tag(self.park_id))


def park_tag(park_id: str) -> bytes:
    return hashlib.sha256(park_id.encode()).digest()[:4]


def _signed_bytes(uid: bytes, record: bytes) -> bytes:
    return DOMAIN + Purpose.CARD_RECORD.value.encode() + b"\x00" + uid + record


def sign_record(record: CardRecord, uid: bytes, key: SigningKey) -> bytes:
    """The 96 bytes to write to the card (ledger side only)."""
    data = record.to_bytes()
    return data + key.sign(_signed_bytes(uid, data)).signature


def read_record(data: bytes, uid: bytes, key: VerifyKey, park_id: str) -> CardRecord:
    """Verify and decode the 96 bytes read from a card with this UID."""
    if len(data) != SIGNED_RECORD_BYTES or data[:2] != MAGIC or data[2] != VERSION:
        raise CardRecordError("no fieldpos record on this card")
    record, signature = data[:RECORD_BYTES], data[RECORD_BYTES:]
    try:
        key.verify(_signed_bytes(uid, record), signature)
    except BadSignatureError:
        raise CardRecordError("card record signature does not match this card") from None
    if record[28:32] != park_tag(park_id):
        raise CardRecordError("card belongs to another park")
    kind = KINDS.get(record[3])
    number = record[8:28].rstrip(b"\0")
    if kind is None or not number.isalnum():
        raise CardRecordError("card record is damaged")
    return CardRecord(number.decode("ascii"), int.from_bytes(record[4:8], "big"), kind, park_id)
