"""Online payments beside the ledger's MQTT loop: the notification endpoint and the refund thread,
started by ``ledger serve`` when the park home holds payment settings."""

from pathlib import Path
import threading

from ..keys import LedgerKeys
from .deposit_book import LedgerDepositBook
from .notifications import PaymentEndpoint
from .refunds import ROUND_INTERVAL_S, RefundSender
from .settings import load_payment_settings


class OnlinePayments:
    def __init__(self, endpoint: PaymentEndpoint, refunds: RefundSender, interval_s: float = ROUND_INTERVAL_S):
        self.endpoint = endpoint
        self.refunds = refunds
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=refunds.run_until, args=(self._stop, interval_s),
                                        name="payment-refunds", daemon=True)

    def start(self) -> "OnlinePayments":
        self.endpoint.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.endpoint.stop()


def start_online_payments(home: Path, db_path: Path, keys: LedgerKeys, park_id: str) -> OnlinePayments | None:
    """Start the endpoint and refund thread for a park with payment settings; None without them."""
    settings = load_payment_settings(home)
    if settings is None:
        return None
    providers = {name: provider.client() for name, provider in settings.providers.items()}
    book = LedgerDepositBook(db_path, keys, park_id)
    endpoint = PaymentEndpoint(providers=providers, book=book, host=settings.listen_host, port=settings.listen_port,
                               public_base_url=settings.public_base_url)
    return OnlinePayments(endpoint, RefundSender(providers=providers, book=book, notify_url_of=endpoint.notify_url)).start()
