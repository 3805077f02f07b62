"""Ed25519 (RFC 8032, pure, no prehash) for the tap: SigningKey, VerifyKey, BadSignature.

The C module (tap/native, through tap.ed25519_c) when the board has it: milliseconds a signature
where the Python takes seconds on an RP2040. Otherwise tap.ed25519_python. Only the one in use is
imported: a board's heap holds one of them, not both.
"""

from tap.errors import BadSignature  # noqa: F401 - callers catch it from here

try:
    from tap.ed25519_c import SigningKey, VerifyKey  # noqa: F401
    NATIVE = True
except ImportError:
    from tap.ed25519_python import SigningKey, VerifyKey  # noqa: F401
    NATIVE = False
