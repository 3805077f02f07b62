"""The park's online payment settings, kept in the park home beside the ledger's keys:

    <home>/payment-providers.json   (0600)
    {"endpoint": {"listen_host", "listen_port", "public_base_url"},
     "providers": {"wechat": {"base_url", "merchant_id", "merchant_key_id", "merchant_key_seed",
                              "provider_keys": {key id: Ed25519 public key hex}}, "alipay": {...}}}

The merchant's private key signs the ledger's requests; the providers' PUBLIC keys check their
answers and notifications (signing.py says why Ed25519). A park without this file takes no
online payments, and ``ledger serve`` starts no endpoint.
"""

from dataclasses import dataclass
import json
from pathlib import Path
from urllib.parse import urlsplit

from nacl.signing import SigningKey, VerifyKey

from ..park_home import _write_private_json
from .errors import PaymentError
from .http_provider import HttpPaymentProvider
from .provider import PROVIDERS

SETTINGS_FILE = "payment-providers.json"


class PaymentSettingsError(PaymentError):
    """The park home's payment-providers.json is missing a field or holds a bad one."""

    code = "PAYMENT_SETTINGS"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderSettings:
    name: str
    base_url: str
    merchant_id: str
    merchant_key_id: str
    merchant_key: SigningKey
    provider_keys: dict[str, VerifyKey]

    def client(self, **options) -> HttpPaymentProvider:
        return HttpPaymentProvider(name=self.name, base_url=self.base_url, merchant_id=self.merchant_id,
                                   merchant_key_id=self.merchant_key_id, merchant_key=self.merchant_key,
                                   provider_keys=self.provider_keys, **options)


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentSettings:
    listen_host: str
    listen_port: int
    public_base_url: str  # the endpoint as the providers reach it (notify and return URLs)
    providers: dict[str, ProviderSettings]


def settings_path(home: Path) -> Path:
    return Path(home) / SETTINGS_FILE


def save_payment_settings(home: Path, settings: PaymentSettings) -> None:
    _write_private_json(settings_path(home), {
        "endpoint": {"listen_host": settings.listen_host, "listen_port": settings.listen_port,
                     "public_base_url": settings.public_base_url},
        "providers": {name: {"base_url": p.base_url, "merchant_id": p.merchant_id, "merchant_key_id": p.merchant_key_id,
                             "merchant_key_seed": p.merchant_key.encode().hex(),
                             "provider_keys": {key_id: bytes(key).hex() for key_id, key in p.provider_keys.items()}}
                      for name, p in settings.providers.items()}})


def load_payment_settings(home: Path) -> PaymentSettings | None:
    """The settings, None when the park takes no online payments; PaymentSettingsError (one line
    naming the field) for a file that does not hold together."""
    path = settings_path(home)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise PaymentSettingsError(f"{path}: not readable JSON ({error})") from None
    try:
        endpoint = data["endpoint"]
        providers = {name: _provider(name, fields) for name, fields in data["providers"].items()}
        settings = PaymentSettings(listen_host=str(endpoint["listen_host"]), listen_port=int(endpoint["listen_port"]),
                                   public_base_url=_url(endpoint["public_base_url"]), providers=providers)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise PaymentSettingsError(f"{path}: missing or bad field {error}") from None
    if not 0 <= settings.listen_port <= 65535:
        raise PaymentSettingsError(f"{path}: listen_port {settings.listen_port} is not a port")
    return settings


def _provider(name: str, fields: dict) -> ProviderSettings:
    if name not in PROVIDERS:
        raise ValueError(f"provider {name!r} (one of {', '.join(PROVIDERS)})")
    return ProviderSettings(name=name, base_url=_url(fields["base_url"]), merchant_id=str(fields["merchant_id"]),
                            merchant_key_id=str(fields["merchant_key_id"]),
                            merchant_key=SigningKey(bytes.fromhex(fields["merchant_key_seed"])),
                            provider_keys={str(key_id): VerifyKey(bytes.fromhex(key))
                                           for key_id, key in fields["provider_keys"].items()})


def _url(text) -> str:
    if not isinstance(text, str) or urlsplit(text).scheme not in ("http", "https") or not urlsplit(text).netloc:
        raise ValueError(f"URL {str(text)[:80]!r}")
    return text.rstrip("/")
