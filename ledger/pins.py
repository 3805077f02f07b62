"""Stored PIN hashes: scrypt over HMAC(pepper, PIN), with a per-record salt.

A 6-digit PIN has a million values; a plain salted hash falls to brute force in seconds. scrypt
makes each guess cost ~20 ms of CPU and 16 MiB, and the pepper (kept with the ledger's keys, not in
the database) means a stolen database alone gives nothing to guess against.
"""

import hashlib
import hmac
import os

from protocol.pin import open_pin

# scrypt cost: n=2**14, r=8 is the usual interactive setting (16 MiB, ~20 ms here); PINs are
# checked at shift open and for member charges above the no-PIN limit, a few per minute per park.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
# Wrong PINs in a row before a staff PIN (or a member card) locks until a supervisor unlocks it.
MAX_WRONG_PINS = 3


def _derive(pin: str, salt: bytes, pepper: bytes) -> bytes:
    peppered = hmac.new(pepper, pin.encode(), hashlib.sha256).digest()
    return hashlib.scrypt(peppered, salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)


def hash_pin(pin: str, pepper: bytes) -> str:
    salt = os.urandom(SALT_BYTES)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${_derive(pin, salt, pepper).hex()}"


def pin_matches(pin: str, stored: str, pepper: bytes) -> bool:
    scheme, n, r, p, salt, digest = stored.split("$")
    if scheme != "scrypt" or (int(n), int(r), int(p)) != (SCRYPT_N, SCRYPT_R, SCRYPT_P):
        raise ValueError(f"unsupported PIN hash scheme {scheme}/{n}/{r}/{p}")
    return hmac.compare_digest(_derive(pin, bytes.fromhex(salt), pepper), bytes.fromhex(digest))


class SealedPins:
    """The PINs sealed with one request, opened on first use with the ledger's PIN key and compared
    or hashed with its pepper (rules.decision.Pins). Lives as long as the request's decision."""

    def __init__(self, attachment: bytes, request, pin_key, pepper: bytes):
        self._attachment = attachment
        self._request = request
        self._pin_key = pin_key
        self._pepper = pepper
        self._opened: dict[str, str] = {}

    def _pin(self, field: str) -> str:
        if field not in self._opened:
            request = self._request
            self._opened[field] = open_pin(self._attachment, pin_sha256=getattr(request, "pin_sha256", None),
                                           terminal=request.terminal, seq=request.seq, ledger_pin_key=self._pin_key,
                                           field=field)
        return self._opened[field]

    def open(self, field: str = "pin") -> None:
        self._pin(field)

    def matches(self, stored_hash: str, field: str = "pin") -> bool:
        return pin_matches(self._pin(field), stored_hash, self._pepper)

    def new_hash(self, field: str = "pin") -> str:
        return hash_pin(self._pin(field), self._pepper)
