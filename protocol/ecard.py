"""The e-card QR: a ledger-signed card credential bound to the member's phone, shown as a rotating token.

When a member opens an e-card the phone makes an Ed25519 device key and registers its public half;
the ledger signs a **credential** (park, card number, issuance, device public key, expiry) with its
card-record key — an e-card's credential is its card record, bound to a device key where a plastic
card's record is bound to a UID, and terminals already hold that key. The phone then shows a QR that
changes every WINDOW_SECONDS: the credential plus the current time window and the device's signature
over both. A screenshot is useless a minute later, and a copied credential without the device's
private key cannot make a new window.

Token: ``"FPE1:" + base32(bytes)`` (upper case, no padding), bytes::

    key id, park, card number     each 1 length byte + ASCII
    issuance                      u32 big-endian
    device public key             32 bytes (Ed25519)
    expires                       u32 big-endian, seconds since the epoch
    ledger signature              64 bytes, Ed25519 over CREDENTIAL_DOMAIN + the bytes above
    window                        u32 big-endian: seconds since the epoch // WINDOW_SECONDS
    device signature              64 bytes, Ed25519 over PRESENTATION_DOMAIN + every byte before it

About 320 characters of ``A-Z 2-7 :`` (QR alphanumeric mode, version 11 or 12 at level M). Pure code: no
clock (the caller passes ``now_ms``), no I/O, only the standard library and nacl. Which window was
used last is the ledger's business (ledger.online_members), not a terminal's.
"""

import base64
import hashlib
from dataclasses import dataclass
from enum import Enum

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from .errors import LocalProtocolError, ProtocolError
from .topics import check_id

PREFIX = "FPE1:"
CREDENTIAL_DOMAIN = b"fieldpos-ecard-credential\x00"
PRESENTATION_DOMAIN = b"fieldpos-ecard-presentation\x00"
SIGNATURE_BYTES = 64
DEVICE_KEY_BYTES = 32
# The QR changes every 20 s; a token is good in its own window and the next one (20-40 s), long
# enough for a scanner to read it and a slow phone to redraw, too short to pass a screenshot on.
WINDOW_SECONDS = 20
LIFETIME_WINDOWS = 2
# A phone's clock may run ahead of the terminal's; one window ahead is accepted, no more.
AHEAD_WINDOWS = 1
# An e-card's card reference on a Charge: the UID slot holds the first 10 bytes of SHA-256 of the
# device public key (a 10-byte "UID", the longest ISO 14443 allows), so the ledger's existing UID
# check refuses a credential re-registered to another phone.
DEVICE_TAG_BYTES = 10
MAX_TOKEN_CHARS = 420
_CARD_NUMBER_CHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")


class ECardFault(str, Enum):
    """Why an e-card token is refused (the code on the terminal's screen and in the ledger's log)."""

    INVALID = "ECARD_INVALID"            # not a token, altered, or a signature that does not verify
    EXPIRED = "ECARD_EXPIRED"            # the credential itself has expired: reopen the e-card
    STALE = "ECARD_STALE"                # the time window is older than the lifetime (or too far ahead)
    REPLAYED = "ECARD_REPLAYED"          # the ledger has seen this window (or a later one) already
    WRONG_DEVICE = "ECARD_WRONG_DEVICE"  # signed by a device the ledger did not register for the card


class ECardError(ProtocolError):
    """An e-card token that cannot be honoured; ``code`` is an ECardFault value."""

    code = ECardFault.INVALID.value


@dataclass(frozen=True, slots=True)
class Credential:
    park: str
    card_no: str
    issuance: int
    device_key: bytes  # the phone's Ed25519 public key, 32 bytes
    expires_ms: int    # whole seconds: the token carries seconds
    key_id: str        # the ledger's card-record key id

    @property
    def device_tag(self) -> str:
        return device_tag(self.device_key)


@dataclass(frozen=True, slots=True)
class Presentation:
    """A checked token: the credential and the time window the phone signed."""

    credential: Credential
    window: int

    @property
    def card_ref(self) -> dict:
        """The Charge's ``card`` for this e-card (section 5.8 of PROTOCOL.md)."""
        return {"no": self.credential.card_no, "issuance": self.credential.issuance,
                "uid": self.credential.device_tag}


def device_tag(device_key: bytes) -> str:
    """The hex "UID" an e-card's card reference carries: the first 10 bytes of SHA-256(device key)."""
    return hashlib.sha256(bytes(device_key)).digest()[:DEVICE_TAG_BYTES].hex()


def window_of(time_ms: int) -> int:
    return time_ms // 1000 // WINDOW_SECONDS


def _short(value: str) -> bytes:
    text = value.encode("ascii")
    return bytes((len(text),)) + text


def _credential_bytes(credential: Credential) -> bytes:
    if len(credential.device_key) != DEVICE_KEY_BYTES:
        raise LocalProtocolError("an e-card device key is 32 bytes")
    if not (4 <= len(credential.card_no) <= 20 and set(credential.card_no) <= _CARD_NUMBER_CHARS):
        raise LocalProtocolError(f"e-card number {credential.card_no!r} is not 4-20 of 0-9 A-Z")
    if not 1 <= credential.issuance < 2**32:
        raise LocalProtocolError(f"e-card issuance {credential.issuance} is not within u32")
    if credential.expires_ms % 1000 or not 0 <= credential.expires_ms // 1000 < 2**32:
        raise LocalProtocolError(f"e-card expiry {credential.expires_ms} is not whole seconds within u32")
    return (_short(check_id(credential.key_id, "key id")) + _short(check_id(credential.park, "park"))
            + _short(credential.card_no) + credential.issuance.to_bytes(4, "big")
            + bytes(credential.device_key) + (credential.expires_ms // 1000).to_bytes(4, "big"))


def sign_credential(credential: Credential, ledger_key: SigningKey) -> bytes:
    """The signed credential (its bytes and the ledger's signature) that the phone keeps."""
    signed = _credential_bytes(credential)
    return signed + ledger_key.sign(CREDENTIAL_DOMAIN + signed).signature


def present(signed_credential: bytes, device_key: SigningKey, now_ms: int) -> str:
    """The QR text the phone shows at ``now_ms``: the credential, the window, the device's signature."""
    body = bytes(signed_credential) + window_of(now_ms).to_bytes(4, "big")
    signature = device_key.sign(PRESENTATION_DOMAIN + body).signature
    return PREFIX + base64.b32encode(body + signature).decode("ascii").rstrip("=")


def parse_token(token: str) -> tuple[Credential, int, bytes, bytes, bytes, bytes]:
    """(credential, window, credential bytes, ledger signature, presentation bytes, device signature),
    no signature checked. ECardError(ECARD_INVALID) for anything that is not a token."""
    if type(token) is not str or not token.startswith(PREFIX) or len(token) > MAX_TOKEN_CHARS:
        raise ECardError("not a fieldpos e-card")
    text = token[len(PREFIX):]
    try:
        raw = base64.b32decode(text + "=" * (-len(text) % 8))
    except ValueError:  # binascii.Error is a ValueError
        raise ECardError("e-card is not base32") from None
    if base64.b32encode(raw).decode("ascii").rstrip("=") != text:
        raise ECardError("e-card is not in its one canonical form")
    values, at = [], 0
    for name in ("key id", "park", "card number"):
        size = raw[at] if at < len(raw) else 0
        chunk = raw[at + 1: at + 1 + size]
        if not 1 <= size <= 32 or len(chunk) != size:
            raise ECardError(f"e-card {name} is cut short")
        try:
            values.append(chunk.decode("ascii"))
        except UnicodeDecodeError:
            raise ECardError(f"e-card {name} is not ASCII") from None
        at += 1 + size
    if len(raw) != at + 4 + DEVICE_KEY_BYTES + 4 + SIGNATURE_BYTES + 4 + SIGNATURE_BYTES:
        raise ECardError("e-card has the wrong length")
    issuance = int.from_bytes(raw[at: at + 4], "big")
    device_key = raw[at + 4: at + 4 + DEVICE_KEY_BYTES]
    at += 4 + DEVICE_KEY_BYTES
    expires_ms = int.from_bytes(raw[at: at + 4], "big") * 1000
    credential_end = at + 4
    ledger_signature = raw[credential_end: credential_end + SIGNATURE_BYTES]
    presentation_end = credential_end + SIGNATURE_BYTES + 4
    window = int.from_bytes(raw[presentation_end - 4: presentation_end], "big")
    key_id, park, card_no = values
    credential = Credential(park, card_no, issuance, device_key, expires_ms, key_id)
    try:
        if _credential_bytes(credential) != raw[:credential_end]:
            raise ECardError("e-card credential is not canonical")
    except LocalProtocolError as error:
        raise ECardError(f"e-card credential field out of range: {error.args[0]}") from None
    return (credential, window, raw[:credential_end], ledger_signature, raw[:presentation_end],
            raw[presentation_end:])


def verify_token(token: str, ledger_key: VerifyKey, park: str, now_ms: int) -> Presentation:
    """The presentation in ``token`` if the ledger signed its credential for ``park``, the device key
    in it signed the window, the credential has not expired and the window is fresh at ``now_ms``.
    What a terminal checks offline; the ledger adds the replay and registered-device checks."""
    credential, window, signed, ledger_signature, shown, device_signature = parse_token(token)
    try:
        ledger_key.verify(CREDENTIAL_DOMAIN + signed, ledger_signature)
    except BadSignatureError:
        raise ECardError("e-card credential signature does not verify") from None
    try:
        VerifyKey(credential.device_key).verify(PRESENTATION_DOMAIN + shown, device_signature)
    except (BadSignatureError, ValueError):
        raise ECardError("e-card device signature does not verify") from None
    if credential.park != park:
        raise ECardError(f"e-card of park {credential.park}, not {park}")
    if now_ms >= credential.expires_ms:
        raise ECardError(f"e-card credential expired at {credential.expires_ms}", code=ECardFault.EXPIRED)
    now_window = window_of(now_ms)
    if not now_window - LIFETIME_WINDOWS < window <= now_window + AHEAD_WINDOWS:
        raise ECardError(f"e-card shown for window {window}, now {now_window}", code=ECardFault.STALE)
    return Presentation(credential, window)
