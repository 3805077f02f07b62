"""The ledger's signing keys, one per purpose, each with a key id so it can rotate.

Kept in a JSON file beside the database, readable only by the ledger's user. Terminals receive the
public halves in their provisioning bundle. (Certifying these keys with an offline park root key is
the next step; until then the bundle pins the keys themselves.)
"""

from dataclasses import dataclass, replace
import fcntl
import json
import os
from pathlib import Path

from nacl.public import PrivateKey
from nacl.signing import SigningKey

from protocol.envelope import Purpose
from protocol.topics import check_id

from .errors import LedgerError


PIN_PURPOSE = "pin"
# Every purpose a ledger signs for. A key file made before a purpose existed lacks its key (the
# voucher key came with rentals); ``add_missing_keys`` adds it.
PURPOSES = (Purpose.RESULT, Purpose.CONFIG, Purpose.BLOCKLIST, Purpose.CARD_RECORD, Purpose.VOUCHER)


def _new_key(park_id: str, purpose: Purpose) -> "LedgerKey":
    return LedgerKey(check_id(f"{park_id}-{purpose.value}-1", "key id"), SigningKey.generate())


@dataclass(frozen=True)
class LedgerKey:
    key_id: str
    signing_key: SigningKey

    @property
    def public_hex(self) -> str:
        return self.signing_key.verify_key.encode().hex()


@dataclass(frozen=True)
class LedgerKeys:
    """Signing keys per purpose, the X25519 key PIN blocks are sealed to, and the PIN pepper (a
    server-side secret mixed into every stored PIN hash, so a stolen database alone cannot be
    brute-forced over the small PIN space)."""

    park_id: str
    by_purpose: dict  # Purpose value -> LedgerKey
    pin_key: PrivateKey
    pin_pepper: bytes
    card_key_master: bytes  # diversifies the cards' sector keys (protocol.card_record.sector_key)

    def for_purpose(self, purpose: Purpose) -> LedgerKey:
        try:
            return self.by_purpose[purpose.value]
        except KeyError:
            # A key file made before this purpose existed (the voucher key came with rentals).
            raise LedgerError(f"the ledger key file has no {purpose.value} key", code="NO_LEDGER_KEY") from None

    def public_keys(self) -> dict[str, dict[str, str]]:
        """{purpose: {key_id, public_key}} for terminal bundles; ``pin`` is the X25519 sealing key."""
        keys = {p: {"key_id": k.key_id, "public_key": k.public_hex} for p, k in self.by_purpose.items()}
        keys[PIN_PURPOSE] = {"key_id": f"{self.park_id}-pin-1", "public_key": self.pin_key.public_key.encode().hex()}
        return keys

    @classmethod
    def generate(cls, park_id: str) -> "LedgerKeys":
        return cls(
            park_id,
            {p.value: _new_key(park_id, p) for p in PURPOSES},
            PrivateKey.generate(),
            os.urandom(32),
            os.urandom(32),
        )

    def missing_purposes(self) -> tuple[Purpose, ...]:
        return tuple(p for p in PURPOSES if p.value not in self.by_purpose)

    def _data(self) -> dict:
        return {
            "park_id": self.park_id,
            "keys": {p: {"key_id": k.key_id, "seed": k.signing_key.encode().hex()} for p, k in self.by_purpose.items()},
            "pin_key": self.pin_key.encode().hex(),
            "pin_pepper": self.pin_pepper.hex(),
            "card_key_master": self.card_key_master.hex(),
        }

    def save(self, path: Path) -> None:
        path = Path(path)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(self._data(), file, indent=2)
            file.flush()
            os.fsync(file.fileno())

    @classmethod
    def add_missing_keys(cls, path: Path) -> tuple["LedgerKeys", tuple[LedgerKey, ...]]:
        """The key file at ``path`` with a new key for each purpose it lacks, and those new keys
        (none: the file is left as it was). A key already there is never replaced: the file is
        rewritten whole (a new file renamed over it, so a crash leaves the old or the new one) under
        a lock, and read again inside it, so a second process adding at the same moment adds nothing."""
        path = Path(path)
        if not cls.load(path).missing_purposes():
            return cls.load(path), ()
        with open(path, "rb") as locked:
            fcntl.flock(locked, fcntl.LOCK_EX)  # held until the new file is in place
            keys = cls.load(path)
            added = {purpose.value: _new_key(keys.park_id, purpose) for purpose in keys.missing_purposes()}
            if not added:
                return keys, ()
            keys = replace(keys, by_purpose={**keys.by_purpose, **added})
            new_path = path.with_name(path.name + ".new")
            new_path.unlink(missing_ok=True)
            keys.save(new_path)
            os.replace(new_path, path)
            directory = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)  # the rename itself survives a power cut
            finally:
                os.close(directory)
        return keys, tuple(added.values())

    @classmethod
    def load(cls, path: Path) -> "LedgerKeys":
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise LedgerError(f"ledger key file {path} is missing: run 'fieldpos ledger init'", code="NO_LEDGER_KEYS") from None
        return cls(
            data["park_id"],
            {p: LedgerKey(k["key_id"], SigningKey(bytes.fromhex(k["seed"]))) for p, k in data["keys"].items()},
            PrivateKey(bytes.fromhex(data["pin_key"])),
            bytes.fromhex(data["pin_pepper"]),
            bytes.fromhex(data["card_key_master"]),
        )
