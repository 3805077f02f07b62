"""The signed envelope (docs/PROTOCOL.md §3), as protocol.envelope builds and checks it.

    "FP" | version 1 | algorithm 1 | key id length k | key id | signature (64) |
    attachment length (2, big-endian) | attachment | body

The signature covers DOMAIN || purpose || 0x00 || topic || 0x00 || header || body. The tap seals
requests (never with an attachment: it takes no PIN) and opens the ledger's replies and broadcasts.
"""

import hashlib

from tap.ed25519 import BadSignature
from tap.errors import (
    TapError, BAD_KEY_ID, BAD_MAGIC, BAD_SIGNATURE, OVERSIZE, TRUNCATED, UNSUPPORTED_ALGORITHM,
    UNSUPPORTED_VERSION,
)

MAGIC = b"FP"
VERSION = 1
ALGORITHM_ED25519 = 1
SIGNATURE_BYTES = 64
DOMAIN = b"fieldpos-signature\x00"
MAX_ATTACHMENT_BYTES = 256
MAX_PAYLOAD_BYTES = 8 * 1024
MAX_BROADCAST_BYTES = 60 * 1024
_FIXED_HEADER_BYTES = 5

# Purposes (protocol.envelope.Purpose)
REQUEST = "request"
RESULT = "result"
CONFIG = "config"
BLOCKLIST = "blocklist"
CARD_RECORD = "card-record"
STATUS = "status"


# Ids (park, terminal, station, operator, key) and topics, as protocol.topics has them. An id is
# 1-32 of ``A-Z a-z 0-9 _ . -``, first a letter or digit, so it can never form an MQTT wildcard or
# an extra topic level. Checked by hand: MicroPython's ``re`` has no ``{m,n}``.
MAX_ID_CHARS = 32
TOPIC_ROOT = "fieldpos/v1/"
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def is_id(value):
    return (type(value) is str and 1 <= len(value) <= MAX_ID_CHARS and value[0] in _ALNUM
            and all(char in _ALNUM or char in "_.-" for char in value))


def check_id(value, what="id"):
    if not is_id(value):
        raise TapError("LOCAL", what + " must be 1-32 of A-Z a-z 0-9 _ . -")
    return value


def topic(park, terminal, leaf):
    """A terminal's topic (leaf ``req``, ``res``, ``cfg``, ``status``); the park's blocklist when
    ``terminal`` is None."""
    if terminal is None:
        return TOPIC_ROOT + check_id(park, "park") + "/blocklist"
    return TOPIC_ROOT + check_id(park, "park") + "/t/" + check_id(terminal, "terminal") + "/" + leaf


def _fail(code, message):
    raise TapError(code, message)


def signed_bytes(purpose, topic, header, body):
    return b"".join((DOMAIN, purpose.encode(), b"\x00", topic.encode(), b"\x00", header, body))


def sha256_hex(data):
    return hashlib.sha256(data).digest().hex()


class Envelope:
    """A received envelope whose signature has not been checked yet."""

    def __init__(self, key_id, header, signature, attachment, body, payload):
        self.key_id = key_id
        self.header = header
        self.signature = signature
        self.attachment = attachment
        self.body = body
        self.payload = payload

    def sha256(self):
        """What a Result quotes as ``request_sha256``: the hex SHA-256 of the whole payload."""
        return sha256_hex(self.payload)


def seal(body, signing_key, key_id, purpose, topic, attachment=b"", max_bytes=MAX_PAYLOAD_BYTES):
    """The payload to publish: ``body`` signed for ``topic`` and ``purpose``."""
    key = check_id(key_id, "key id").encode()
    header = MAGIC + bytes((VERSION, ALGORITHM_ED25519, len(key))) + key
    if len(attachment) > MAX_ATTACHMENT_BYTES:
        _fail(OVERSIZE, "attachment of " + str(len(attachment)) + " bytes")
    signature = signing_key.sign(signed_bytes(purpose, topic, header, body))
    payload = header + signature + len(attachment).to_bytes(2, "big") + attachment + body
    if len(payload) > max_bytes:
        _fail(OVERSIZE, "message of " + str(len(payload)) + " bytes is over " + str(max_bytes))
    return payload


def split(payload, max_bytes=MAX_PAYLOAD_BYTES):
    """Cut a payload into its parts, checking sizes and header in protocol.envelope.split's order.
    The body and the payload stay views of what was received (a broadcast's packet buffer): a
    copy of a config at each step was the largest block a tap asked its heap for; the short
    parts (key id, header, signature, attachment) are bytes."""
    view = memoryview(payload)
    size = len(view)
    if size > max_bytes:
        _fail(OVERSIZE, str(size) + " bytes is over " + str(max_bytes))
    if size < _FIXED_HEADER_BYTES:
        _fail(TRUNCATED, "shorter than the envelope header")
    fixed = bytes(view[:_FIXED_HEADER_BYTES])
    if fixed[:2] != MAGIC:
        _fail(BAD_MAGIC, "not a fieldpos envelope")
    if fixed[2] != VERSION:
        _fail(UNSUPPORTED_VERSION, "protocol version " + str(fixed[2]))
    if fixed[3] != ALGORITHM_ED25519:
        _fail(UNSUPPORTED_ALGORITHM, "algorithm " + str(fixed[3]))
    key_length = fixed[4]
    if not 1 <= key_length <= MAX_ID_CHARS:
        _fail(BAD_KEY_ID, "key id length " + str(key_length))
    attachment_start = _FIXED_HEADER_BYTES + key_length + SIGNATURE_BYTES + 2
    if size < attachment_start:
        _fail(TRUNCATED, "envelope ends inside the key id, signature or attachment length")
    attachment_length = int.from_bytes(bytes(view[attachment_start - 2:attachment_start]), "big")
    if attachment_length > MAX_ATTACHMENT_BYTES:
        _fail(OVERSIZE, "attachment of " + str(attachment_length) + " bytes")
    body_start = attachment_start + attachment_length
    if size < body_start:
        _fail(TRUNCATED, "envelope ends inside the attachment")
    header_end = _FIXED_HEADER_BYTES + key_length
    key_bytes = bytes(view[_FIXED_HEADER_BYTES:header_end])
    if any(byte > 0x7F for byte in key_bytes) or not is_id(key_bytes.decode()):
        _fail(BAD_KEY_ID, "key id is not a valid id")
    return Envelope(key_bytes.decode(), bytes(view[:header_end]), bytes(view[header_end:header_end + SIGNATURE_BYTES]),
                    bytes(view[attachment_start:body_start]), view[body_start:], view)


def verify(envelope, verify_key, purpose, topic):
    """The body (a view, as split left it), if the signature holds for this purpose and topic;
    else BAD_SIGNATURE. The signed bytes go to the key as their parts, not joined (see split)."""
    try:
        verify_key.verify((DOMAIN, purpose.encode(), b"\x00", topic.encode(), b"\x00", envelope.header, envelope.body),
                          envelope.signature)
    except BadSignature:
        _fail(BAD_SIGNATURE, "signature does not verify")
    return envelope.body
