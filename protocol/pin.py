"""PIN blocks: a PIN sealed to the ledger's X25519 key, bound to (terminal, seq).

The terminal seals ``{"pin": ..., "seq": ..., "terminal": ...}`` with a NaCl sealed box (ephemeral
X25519 + XSalsa20-Poly1305) and sends it as the envelope's attachment; the signed body names the
attachment's SHA-256. Only the ledger can open it, and a block lifted from one request is useless
in another: the seq and terminal inside must match the request that carries it. A PIN block is
never queued offline, logged, or stored with the request.
"""

import hashlib
import re

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from . import codec
from .errors import LocalProtocolError, RemoteProtocolError
from .reasons import Reason

_PIN = re.compile(r"^[0-9]{4,6}$")


def check_pin(pin: str) -> str:
    if not isinstance(pin, str) or not _PIN.match(pin):
        raise LocalProtocolError("a PIN is 4 to 6 digits", code=Reason.VALUE_OUT_OF_RANGE)
    return pin


def seal_pin(pin: str | None, *, terminal: str, seq: int, ledger_pin_key: PublicKey,
             supervisor_pin: str | None = None) -> tuple[bytes, str]:
    """Return (attachment, its SHA-256 hex for the body's ``pin_sha256``). A supervisor's PIN, for
    operations that need a second credential, travels in the same sealed block."""
    block = {"seq": seq, "terminal": terminal}
    if pin is not None:
        block["pin"] = check_pin(pin)
    if supervisor_pin is not None:
        block["supervisor_pin"] = check_pin(supervisor_pin)
    plain = codec.encode(block)
    sealed = SealedBox(ledger_pin_key).encrypt(plain)
    return sealed, hashlib.sha256(sealed).hexdigest()


def open_pin(attachment: bytes, *, pin_sha256: str | None, terminal: str, seq: int, ledger_pin_key: PrivateKey,
             field: str = "pin") -> str:
    """The PIN (or with ``field="supervisor_pin"``, the supervisor's) inside ``attachment``, after
    checking it is the block the signed body names and that it was sealed for this very request.
    Raises RemoteProtocolError(PIN_BLOCK_INVALID)."""
    if pin_sha256 is None or not attachment or hashlib.sha256(attachment).hexdigest() != pin_sha256:
        raise RemoteProtocolError("PIN block missing or not the one the request names", code=Reason.PIN_BLOCK_INVALID)
    try:
        inside = codec.decode(SealedBox(ledger_pin_key).decrypt(attachment))
    except (CryptoError, RemoteProtocolError):
        raise RemoteProtocolError("PIN block cannot be opened", code=Reason.PIN_BLOCK_INVALID) from None
    if inside.get("terminal") != terminal or inside.get("seq") != seq:
        raise RemoteProtocolError("PIN block was sealed for another request", code=Reason.PIN_BLOCK_INVALID)
    if not _PIN.match(str(inside.get(field, ""))):
        raise RemoteProtocolError(f"PIN block holds no {field.replace('_', ' ')}", code=Reason.PIN_BLOCK_INVALID)
    return inside[field]
