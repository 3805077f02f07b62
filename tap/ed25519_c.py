"""SigningKey and VerifyKey over the C module (tap/native's ed25519_native, built per board
architecture and copied by ``flash.sh --native``). Importing this fails with ImportError when the
board has no such module; tap.ed25519 then takes tap.ed25519_python."""

from tap import ed25519_native as _native  # ImportError here: the board has no C module
from tap.errors import BadSignature


class SigningKey:
    """An Ed25519 key from its 32-byte seed (the bundle's ``signing_seed``)."""

    def __init__(self, seed):
        if len(seed) != 32:
            raise ValueError("an Ed25519 seed is 32 bytes")
        self._seed = bytes(seed)
        self.public_key = _native.public_key(self._seed)

    def sign(self, message):
        """The 64-byte signature of ``message``."""
        return _native.sign(self._seed, self.public_key, message)


class VerifyKey:
    """An Ed25519 public key (32 bytes); one that is not a curve point verifies nothing."""

    def __init__(self, public_key):
        if len(public_key) != 32:
            raise ValueError("an Ed25519 public key is 32 bytes")
        self.public_key = bytes(public_key)

    def verify(self, message, signature):
        """Raise BadSignature unless ``signature`` is this key's over ``message``: bytes, or a
        tuple of parts signed as if joined (joined here: the C hashes one buffer)."""
        if type(message) is tuple:
            message = b"".join(bytes(part) for part in message)
        if not _native.verify(self.public_key, message, signature):
            raise BadSignature()
