"""Rental deposit vouchers: a ledger-signed token small enough for a QR code on 58 mm paper.

Token: ``"FPV1:" + base32(bytes)`` (upper case, no padding), where bytes are::

    key id, park, order, item type   each 1 length byte + ASCII (protocol ids, 1..32 chars)
    expires                          u32 big-endian, seconds since the epoch
    signature                        64 bytes, Ed25519 over DOMAIN + every byte before it

Only ``A-Z 2-7 :`` appear, so a QR code holds it in alphanumeric mode (5.5 bits a character instead
of 8): a typical token is about 170 characters, QR version 8 at level M. The signature is checked
before any field is trusted; a rental terminal checks it offline with the ledger's voucher key.
"""

import base64
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from .errors import LocalProtocolError, ProtocolError
from .reasons import Reason
from .topics import check_id

PREFIX = "FPV1:"
DOMAIN = b"fieldpos-voucher\x00"
SIGNATURE_BYTES = 64
_FIELDS = ("key_id", "park", "order", "item_type")


class VoucherError(ProtocolError):
    """A voucher that cannot be honoured; ``code`` is VOUCHER_INVALID or VOUCHER_EXPIRED."""

    code = Reason.VOUCHER_INVALID.value


@dataclass(frozen=True, slots=True)
class Voucher:
    park: str
    order: str
    item_type: str
    expires_ms: int  # whole seconds: the token carries seconds
    key_id: str


def _signed_part(voucher: Voucher) -> bytes:
    parts = []
    for name in _FIELDS:
        text = check_id(getattr(voucher, name), name).encode("ascii")
        parts.append(bytes((len(text),)) + text)
    if voucher.expires_ms % 1000 or not 0 <= voucher.expires_ms // 1000 < 2**32:
        raise LocalProtocolError(f"voucher expiry {voucher.expires_ms} is not whole seconds within u32")
    return b"".join(parts) + (voucher.expires_ms // 1000).to_bytes(4, "big")


def make_voucher(voucher: Voucher, signing_key: SigningKey) -> str:
    """The token for ``voucher``, signed by the ledger's voucher key."""
    signed = _signed_part(voucher)
    signature = signing_key.sign(DOMAIN + signed).signature
    return PREFIX + base64.b32encode(signed + signature).decode("ascii").rstrip("=")


def parse_voucher(token: str) -> tuple[Voucher, bytes, bytes]:
    """(voucher, signed bytes, signature) of a token, its signature NOT checked (for logs and
    verify_voucher). Raises VoucherError(VOUCHER_INVALID) for anything that is not a token."""
    if type(token) is not str or not token.startswith(PREFIX) or len(token) > 420:
        raise VoucherError("not a fieldpos voucher")
    text = token[len(PREFIX):]
    try:
        raw = base64.b32decode(text + "=" * (-len(text) % 8))
    except (ValueError, base64.binascii.Error):
        raise VoucherError("voucher is not base32") from None
    if base64.b32encode(raw).decode("ascii").rstrip("=") != text:
        # One token per voucher: the unused low bits of the last character must be zero too.
        raise VoucherError("voucher is not in its one canonical form")
    values, at = [], 0
    for name in _FIELDS:
        size = raw[at] if at < len(raw) else 0
        chunk = raw[at + 1: at + 1 + size]
        if not 1 <= size <= 32 or len(chunk) != size:
            raise VoucherError(f"voucher {name} is cut short")
        try:
            values.append(check_id(chunk.decode("ascii"), name))
        except (UnicodeDecodeError, LocalProtocolError):
            raise VoucherError(f"voucher {name} is not an id") from None
        at += 1 + size
    if len(raw) != at + 4 + SIGNATURE_BYTES:
        raise VoucherError("voucher has the wrong length")
    expires_ms = int.from_bytes(raw[at: at + 4], "big") * 1000
    key_id, park, order, item_type = values
    return Voucher(park, order, item_type, expires_ms, key_id), raw[: at + 4], raw[at + 4:]


def verify_voucher(token: str, verify_key: VerifyKey, now_ms: int) -> Voucher:
    """The voucher in ``token`` if the ledger's voucher key signed it and it has not expired at
    ``now_ms``; else VoucherError with code VOUCHER_INVALID (malformed, forged, altered, another
    key) or VOUCHER_EXPIRED (checked only once the signature holds)."""
    voucher, signed, signature = parse_voucher(token)
    try:
        verify_key.verify(DOMAIN + signed, signature)
    except BadSignatureError:
        raise VoucherError("voucher signature does not verify") from None
    if now_ms >= voucher.expires_ms:
        raise VoucherError(f"voucher expired at {voucher.expires_ms}", code=Reason.VOUCHER_EXPIRED)
    return voucher
