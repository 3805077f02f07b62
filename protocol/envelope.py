"""The signed envelope: the exact bytes of every fieldpos message on the wire.

Layout (all integers unsigned, one byte)::

    offset  size  field
    0       2     magic "FP"
    2       1     protocol version (1)
    3       1     algorithm (1 = Ed25519)
    4       1     key id length k (1..32)
    5       k     key id, ASCII [A-Za-z0-9_.-]
    5+k     64    Ed25519 signature
    69+k    2     attachment length a, big-endian (0 when there is none)
    71+k    a     attachment: a secret sealed to the ledger (an encrypted PIN block)
    71+k+a  n     body: UTF-8 JSON (see protocol.codec)

The signature covers ``DOMAIN || purpose || 0x00 || topic || 0x00 || header || body`` where header
is bytes 0..5+k. Binding the purpose means a signed Result can never pass as a request; binding the
topic means a request cannot be replayed onto another terminal's topic. The signature is checked
before a single byte of the body is parsed.

The attachment is outside the signature on purpose: the body carries its SHA-256, so it is bound
all the same, and the ledger can keep the signed request as audit evidence with the PIN block cut
out (attachment length 0) and the signature still verifying.
"""

from dataclasses import dataclass
import hashlib
from enum import Enum

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from .errors import LocalProtocolError, RemoteProtocolError
from .limits import MAX_ID_CHARS, MAX_PAYLOAD_BYTES, PROTOCOL_VERSION, SUPPORTED_VERSIONS
from .reasons import Reason
from .topics import check_id

MAGIC = b"FP"
ALGORITHM_ED25519 = 1
SIGNATURE_BYTES = 64
DOMAIN = b"fieldpos-signature\x00"
_FIXED_HEADER_BYTES = 5
# A sealed PIN block is 48 bytes of box overhead plus a small JSON; 256 leaves room, no more.
MAX_ATTACHMENT_BYTES = 256


class Purpose(str, Enum):
    """What a signature vouches for; each ledger purpose has its own key."""

    REQUEST = "request"
    RESULT = "result"
    CONFIG = "config"
    BLOCKLIST = "blocklist"
    CARD_RECORD = "card-record"
    STATUS = "status"
    VOUCHER = "voucher"  # rental deposit vouchers (protocol.voucher), checked offline by rental terminals


@dataclass(frozen=True, slots=True)
class Envelope:
    """A received envelope whose signature has not been checked yet."""

    version: int
    key_id: str
    header: bytes
    signature: bytes
    attachment: bytes
    body: bytes
    payload: bytes

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the whole payload: what a Result quotes as ``request_sha256``."""
        return hashlib.sha256(self.payload).hexdigest()

    def without_attachment(self) -> bytes:
        """The payload with the attachment cut out: what the ledger keeps as evidence."""
        return self.header + self.signature + b"\x00\x00" + self.body


def signed_bytes(purpose: Purpose, topic: str, header: bytes, body: bytes) -> bytes:
    return b"".join((DOMAIN, purpose.value.encode(), b"\x00", topic.encode(), b"\x00", header, body))


def _header(version: int, key_id: str) -> bytes:
    key = check_id(key_id, "key id").encode("ascii")
    return MAGIC + bytes((version, ALGORITHM_ED25519, len(key))) + key


def seal(
    body: bytes,
    *,
    signing_key: SigningKey,
    key_id: str,
    purpose: Purpose,
    topic: str,
    version: int = PROTOCOL_VERSION,
    attachment: bytes = b"",
    max_bytes: int = MAX_PAYLOAD_BYTES,
) -> bytes:
    """Sign ``body`` for ``topic`` and return the payload to publish. An ``attachment`` must be
    named by its SHA-256 in the body (see the module docstring)."""
    if version not in SUPPORTED_VERSIONS:
        raise LocalProtocolError(f"protocol version {version} is not supported", code=Reason.UNSUPPORTED_VERSION)
    header = _header(version, key_id)
    signature = signing_key.sign(signed_bytes(purpose, topic, header, body)).signature
    if len(attachment) > MAX_ATTACHMENT_BYTES:
        raise LocalProtocolError(f"attachment of {len(attachment)} bytes is over {MAX_ATTACHMENT_BYTES}", code=Reason.OVERSIZE)
    payload = header + signature + len(attachment).to_bytes(2, "big") + attachment + body
    if len(payload) > max_bytes:
        raise LocalProtocolError(f"message of {len(payload)} bytes is over {max_bytes}", code=Reason.OVERSIZE)
    return payload


def split(payload: bytes, *, max_bytes: int = MAX_PAYLOAD_BYTES) -> Envelope:
    """Cut a payload into its parts, checking sizes and header fields only (not the signature).
    ``max_bytes``: MAX_PAYLOAD_BYTES for requests and replies, MAX_BROADCAST_BYTES for snapshots."""
    if len(payload) > max_bytes:
        raise RemoteProtocolError(f"{len(payload)} bytes is over {max_bytes}", code=Reason.OVERSIZE)
    if len(payload) < _FIXED_HEADER_BYTES:
        raise RemoteProtocolError("shorter than the envelope header", code=Reason.TRUNCATED)
    if payload[:2] != MAGIC:
        raise RemoteProtocolError("not a fieldpos envelope", code=Reason.BAD_MAGIC)
    version, algorithm, key_length = payload[2], payload[3], payload[4]
    if version not in SUPPORTED_VERSIONS:
        raise RemoteProtocolError(f"protocol version {version}", code=Reason.UNSUPPORTED_VERSION)
    if algorithm != ALGORITHM_ED25519:
        raise RemoteProtocolError(f"algorithm {algorithm}", code=Reason.UNSUPPORTED_ALGORITHM)
    if not 1 <= key_length <= MAX_ID_CHARS:
        raise RemoteProtocolError(f"key id length {key_length}", code=Reason.BAD_KEY_ID)
    attachment_start = _FIXED_HEADER_BYTES + key_length + SIGNATURE_BYTES + 2
    if len(payload) < attachment_start:
        raise RemoteProtocolError("envelope ends inside the key id, signature or attachment length", code=Reason.TRUNCATED)
    attachment_length = int.from_bytes(payload[attachment_start - 2 : attachment_start], "big")
    if attachment_length > MAX_ATTACHMENT_BYTES:
        raise RemoteProtocolError(f"attachment of {attachment_length} bytes", code=Reason.OVERSIZE)
    body_start = attachment_start + attachment_length
    if len(payload) < body_start:
        raise RemoteProtocolError("envelope ends inside the attachment", code=Reason.TRUNCATED)
    header = payload[: _FIXED_HEADER_BYTES + key_length]
    try:
        key_id = check_id(header[_FIXED_HEADER_BYTES:].decode("ascii"), "key id")
    except (UnicodeDecodeError, LocalProtocolError):
        raise RemoteProtocolError("key id is not a valid id", code=Reason.BAD_KEY_ID) from None
    return Envelope(
        version=version,
        key_id=key_id,
        header=header,
        signature=payload[len(header) : len(header) + SIGNATURE_BYTES],
        attachment=payload[attachment_start:body_start],
        body=payload[body_start:],
        payload=payload,
    )


def verify(envelope: Envelope, *, verify_key: VerifyKey, purpose: Purpose, topic: str) -> bytes:
    """Return the body if the signature holds for this purpose and topic, else raise BAD_SIGNATURE."""
    try:
        verify_key.verify(signed_bytes(purpose, topic, envelope.header, envelope.body), envelope.signature)
    except BadSignatureError:
        raise RemoteProtocolError("signature does not verify", code=Reason.BAD_SIGNATURE) from None
    return envelope.body
