"""The ledger's signing keys, one per purpose, each with a key id so it can rotate.

Kept in a JSON file beside the database, readable only by the ledger's user. Terminals receive the
public halves in their provisioning bundle. (Certifying these keys with an offline park root key is
the next step; until then the bundle pins the keys themselves.)
"""

from dataclasses import dataclass
import json
import os
from pathlib import Path

from nacl.public import PrivateKey
from nacl.signing import SigningKey

from protocol.envelope import Purpose
from protocol.topics import check_id

from .errors import LedgerError


PIN_PURPOSE = "pin"


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
        purposes = (Purpose.RESULT, Purpose.CONFIG, Purpose.BLOCKLIST, Purpose.CARD_RECORD, Purpose.VOUCHER)
        return cls(
            park_id,
            {p.value: LedgerKey(check_id(f"{park_id}-{p.value}-1", "key id"), SigningKey.generate()) for p in purposes},
            PrivateKey.generate(),
            os.urandom(32),
            os.urandom(32),
        )

    def save(self, path: Path) -> None:
        data = {
            "park_id": self.park_id,
            "keys": {p: {"key_id": k.key_id, "seed": k.signing_key.encode().hex()} for p, k in self.by_purpose.items()},
            "pin_key": self.pin_key.encode().hex(),
            "pin_pepper": self.pin_pepper.hex(),
            "card_key_master": self.card_key_master.hex(),
        }
        path = Path(path)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(data, file, indent=2)
            file.flush()
            os.fsync(file.fileno())

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
