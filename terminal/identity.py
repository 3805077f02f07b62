"""The terminal's provisioning bundle: who it is, its signing key, the ledger's public keys, and how
to reach the broker. Written by ``fieldpos provision``; readable only by the terminal's user."""

from dataclasses import dataclass
import json
from pathlib import Path

from nacl.public import PublicKey
from nacl.signing import SigningKey, VerifyKey

from .errors import TerminalError


class BundleError(TerminalError):
    """The provisioning bundle is missing or damaged: re-provision the terminal."""

    code = "BUNDLE"


@dataclass(frozen=True)
class BrokerSettings:
    host: str
    port: int
    username: str
    password: str
    tls_ca: str | None = None  # PEM of the park CA; None means plain TCP (tests, demo)


@dataclass(frozen=True)
class TerminalIdentity:
    park_id: str
    terminal_id: str
    station_id: str
    key_id: str
    signing_key: SigningKey
    ledger_keys: dict  # purpose -> (key_id, VerifyKey)
    pin_key: PublicKey  # the ledger's X25519 key PIN blocks are sealed to
    broker: BrokerSettings
    card_key_master: bytes = b""  # derives each card's sector read key (protocol.card_record.sector_key)

    def ledger_key(self, purpose: str) -> tuple[str, VerifyKey]:
        return self.ledger_keys[purpose]

    @classmethod
    def load(cls, path) -> "TerminalIdentity":
        try:
            data = json.loads(Path(path).read_text())
            return cls(
                park_id=data["park_id"],
                terminal_id=data["terminal_id"],
                station_id=data["station_id"],
                key_id=data["key_id"],
                signing_key=SigningKey(bytes.fromhex(data["signing_seed"])),
                ledger_keys={
                    purpose: (k["key_id"], VerifyKey(bytes.fromhex(k["public_key"])))
                    for purpose, k in data["ledger_keys"].items()
                    if purpose != "pin"
                },
                pin_key=PublicKey(bytes.fromhex(data["ledger_keys"]["pin"]["public_key"])),
                broker=BrokerSettings(**data["broker"]),
                card_key_master=bytes.fromhex(data.get("card_key_master", "")),
            )
        except FileNotFoundError:
            raise BundleError(f"no provisioning bundle at {path}: provision this terminal first") from None
        except (KeyError, ValueError, TypeError) as error:
            raise BundleError(f"provisioning bundle {path} is damaged ({error!r}): re-provision") from None
