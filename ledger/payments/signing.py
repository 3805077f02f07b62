"""Signatures between the ledger (the merchant) and the payment provider. Pure: no clock, no I/O.

Ed25519, not HMAC-SHA256: WeChat Pay APIv3 (RSA-SHA256 with a platform certificate) and Alipay
(RSA2) both sign asymmetrically, and for the same reason — the ledger keeps only the provider's
PUBLIC key, so a copied park home or backup can not forge a "paid" notification; with a shared HMAC
key it could. Each side signs with its own key: the ledger its requests, the provider its answers and
notifications. Ed25519 is already the project's signature (pynacl), so nothing new is installed.

The signed text follows WeChat Pay APIv3's "method, URL, timestamp, nonce, body" lines, with a
domain prefix so a signature made here means nothing anywhere else. An answer is signed over its
request's method and path too (as ``ANSWER <method>``), so an answer can not be replayed for
another request. Nonces are not remembered: a notification replayed inside the 5-minute window
books nothing new, because booking is idempotent on the provider's order and refund numbers.
"""

import base64
import binascii
from collections.abc import Mapping
import re

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from .errors import BadSignature

DOMAIN = b"fieldpos-pay-v1\n"
KEY_ID_HEADER = "Pay-Key-Id"
TIMESTAMP_HEADER = "Pay-Timestamp"
NONCE_HEADER = "Pay-Nonce"
SIGNATURE_HEADER = "Pay-Signature"
# WeChat Pay tells merchants to refuse a notification whose timestamp is more than 5 minutes off.
MAX_CLOCK_SKEW_S = 5 * 60
_NONCE = re.compile(r"[A-Za-z0-9]{16,64}")
_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def signed_text(method: str, path: str, timestamp_s: int, nonce: str, body: bytes) -> bytes:
    """The bytes a signature covers."""
    head = f"{method}\n{path}\n{timestamp_s}\n{nonce}\n".encode("ascii")
    return DOMAIN + head + body


def sign(signing_key: SigningKey, key_id: str, method: str, path: str, body: bytes, *,
         timestamp_s: int, nonce: str) -> dict[str, str]:
    """The headers that sign ``body`` sent as ``method path``."""
    signature = signing_key.sign(signed_text(method, path, timestamp_s, nonce, body)).signature
    return {KEY_ID_HEADER: key_id, TIMESTAMP_HEADER: str(timestamp_s), NONCE_HEADER: nonce,
            SIGNATURE_HEADER: base64.b64encode(signature).decode("ascii")}


def verify(headers: Mapping[str, str], verify_keys: Mapping[str, VerifyKey], method: str, path: str,
           body: bytes, *, now_s: int) -> str:
    """Check the signature headers of ``body`` received as ``method path``; return the key id.
    Raises BadSignature (one line saying which check failed)."""
    key_id = headers.get(KEY_ID_HEADER, "")
    timestamp = headers.get(TIMESTAMP_HEADER, "")
    nonce = headers.get(NONCE_HEADER, "")
    signature_text = headers.get(SIGNATURE_HEADER, "")
    if not _KEY_ID.fullmatch(key_id) or key_id not in verify_keys:
        raise BadSignature(f"unknown or missing {KEY_ID_HEADER} {key_id[:64]!r}")
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise BadSignature(f"missing or malformed {TIMESTAMP_HEADER}")
    if abs(int(timestamp) - now_s) > MAX_CLOCK_SKEW_S:
        raise BadSignature(f"{TIMESTAMP_HEADER} {timestamp} is more than {MAX_CLOCK_SKEW_S} s from now")
    if not _NONCE.fullmatch(nonce):
        raise BadSignature(f"missing or malformed {NONCE_HEADER}")
    try:
        signature = base64.b64decode(signature_text, validate=True)
    except (binascii.Error, ValueError):
        raise BadSignature(f"{SIGNATURE_HEADER} is not base64") from None
    if len(signature) != 64:
        raise BadSignature(f"{SIGNATURE_HEADER} is not an Ed25519 signature")
    try:
        verify_keys[key_id].verify(signed_text(method, path, int(timestamp), nonce, body), signature)
    except BadSignatureError:
        raise BadSignature(f"signature does not match the body (key {key_id})") from None
    return key_id
