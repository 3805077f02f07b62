"""The ledger's HTTP endpoint for payment providers, and the booking of a paid order.

    POST /payments/<provider>/notify                 signed payment or refund notification
    GET  /payments/<provider>/voucher/<out_trade_no> the voucher of a paid order (the provider's
                                                     "return URL" page shows it as a QR code)

A notification is believed only after its signature holds (the provider's public key). A payment
is then booked through the DepositBook, which is idempotent on (provider, out_trade_no): WeChat Pay
delivers a notification again until it hears 2xx, so duplicates are normal. A signed notification
is enough to book even if query_order still says NOTPAY — providers' query replicas can lag their
notifications, and the signature is the provider's own word. When no notification ever comes,
``confirm_payment`` asks query_order instead (WeChat: "call the query API to confirm").

Answers: 204 done (also for a duplicate, and for a payment that can be no deposit — the wrong
amount, an unknown item type — which is recorded, raised as an alert and refunded in full, so the
provider stops delivering it), 401 bad signature, 400 not a notification this ledger can book, 503
the books are busy (the provider retries). Served by http.server's ThreadingHTTPServer:
a handful of notifications a minute needs no framework, and the console's FastAPI is an optional
extra the ledger host may not have.
"""

from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
import logging
import re
import threading
import time

from ..errors import LedgerError, TransientStoreError
from ..rentals_online import StrayPayment
from .deposit_book import DepositBook
from .errors import BadNotification, BadSignature
from .provider import MAX_BODY_BYTES, OrderStatus, PaymentNotice, PaymentProvider, RefundNotice

log = logging.getLogger("fieldpos.ledger.payments")

_NOTIFY = re.compile(r"/payments/([a-z]{1,16})/notify")
_VOUCHER = re.compile(r"/payments/([a-z]{1,16})/voucher/([A-Za-z0-9][A-Za-z0-9_.-]{0,31})")
# A provider that does not finish sending its request in this long is cut off (slow-loris guard).
REQUEST_READ_TIMEOUT_S = 10


def book_payment(book: DepositBook, provider: str, order: OrderStatus, *, now_ms: int):
    """Book a paid order as a deposit (once); BadNotification for an unpaid one."""
    if not order.is_paid or not order.transaction_id:
        raise BadNotification(f"order {order.out_trade_no} is {order.trade_state}, not paid")
    return book.record_payment(provider, order, now_ms=now_ms)


def confirm_payment(provider: PaymentProvider, book: DepositBook, out_trade_no: str, *, now_ms: int):
    """Ask the provider about an order whose notification has not come; book it if paid.
    Returns the deposit, or None while the provider still says NOTPAY."""
    order = provider.query_order(out_trade_no)
    if not order.is_paid:
        return None
    return book_payment(book, provider.name, order, now_ms=now_ms)


def receive_notification(provider: PaymentProvider, book: DepositBook, path: str, headers: Mapping[str, str],
                         body: bytes, *, now_ms: int) -> PaymentNotice | RefundNotice:
    """Verify and act on one notification; raises BadSignature, BadNotification or LedgerError."""
    notice = provider.verify_notification(path, dict(headers), body, now_s=now_ms // 1000)
    if isinstance(notice, PaymentNotice):
        book_payment(book, provider.name, notice.order, now_ms=now_ms)
    else:
        _finish_refund(book, notice, now_ms=now_ms)
    return notice


def _finish_refund(book: DepositBook, notice: RefundNotice, *, now_ms: int) -> None:
    refund = notice.refund
    request = book.owed_refund(refund.out_refund_no)  # marked failed too: the provider paid it after all
    if request is None:
        return  # already confirmed (a duplicate notification, or the refund call's own answer won)
    # WeChat: check the refunded amount against the merchant's own record before believing it.
    if (request.amount_fen, request.provider_order) != (refund.amount_fen, refund.out_trade_no):
        raise BadNotification(f"refund {refund.out_refund_no} of {refund.amount_fen} fen for {refund.out_trade_no}"
                              f" does not match the {request.amount_fen} fen owed for {request.provider_order}")
    book.refund_done(refund.out_refund_no, refund.refund_id, now_ms=now_ms)


class PaymentEndpoint:
    """The endpoint on its own thread. ``providers`` by name ("wechat", "alipay")."""

    def __init__(self, *, providers: Mapping[str, PaymentProvider], book: DepositBook, host: str = "127.0.0.1",
                 port: int = 0, public_base_url: str | None = None, clock_ms: Callable[[], int] | None = None):
        self.providers = dict(providers)
        self.book = book
        self.clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        # WeChat Pay's advice: a lock around "is it booked yet? book it" for one order, so two
        # deliveries of one notification arriving together are booked once even before the books'
        # own uniqueness check. One lock is enough at a few notifications a minute.
        self.booking_lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self.base_url = public_base_url or f"http://{host}:{self._server.server_address[1]}"
        self._thread: threading.Thread | None = None

    def notify_url(self, provider: str) -> str:
        return f"{self.base_url}/payments/{provider}/notify"

    def voucher_url(self, provider: str, out_trade_no: str) -> str:
        return f"{self.base_url}/payments/{provider}/voucher/{out_trade_no}"

    def start(self) -> "PaymentEndpoint":
        self._thread = threading.Thread(target=self._server.serve_forever, name="payment-endpoint", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> "PaymentEndpoint":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _handler_for(endpoint: PaymentEndpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = REQUEST_READ_TIMEOUT_S
        server_version = "fieldpos-ledger"

        def do_POST(self) -> None:
            match = _NOTIFY.fullmatch(self.path)
            provider = endpoint.providers.get(match.group(1)) if match else None
            if provider is None:
                return self._answer(HTTPStatus.NOT_FOUND, "NOT_FOUND", f"no provider endpoint at {self.path[:80]}")
            length = self.headers.get("Content-Length", "")
            if not length.isdigit() or int(length) > MAX_BODY_BYTES:
                return self._answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "BAD_NOTIFICATION",
                                    f"Content-Length must be 0..{MAX_BODY_BYTES}")
            body = self.rfile.read(int(length))
            try:
                with endpoint.booking_lock:
                    receive_notification(provider, endpoint.book, self.path, dict(self.headers.items()), body,
                                         now_ms=endpoint.clock_ms())
            except BadSignature as error:
                log.warning("%s notification refused: %s", provider.name, error)
                return self._answer(HTTPStatus.UNAUTHORIZED, "SIGN_ERROR", str(error))
            except TransientStoreError as error:
                return self._answer(HTTPStatus.SERVICE_UNAVAILABLE, error.code, str(error))
            except StrayPayment as error:  # paid, but no deposit: recorded, alerted, refunded in full
                log.warning("%s notification: %s", provider.name, error)
            except LedgerError as error:  # BadNotification, UNKNOWN_PROVIDER...
                log.error("%s notification not booked: %s %s", provider.name, error.code, error)
                return self._answer(HTTPStatus.BAD_REQUEST, error.code, str(error))
            except Exception:  # a bug: the provider hears 500 and delivers again, the log has the trace
                log.exception("%s notification failed", provider.name)
                return self._answer(HTTPStatus.INTERNAL_SERVER_ERROR, "INTERNAL", "the ledger failed; deliver again")
            self.send_response(HTTPStatus.NO_CONTENT)
            self.end_headers()

        def do_GET(self) -> None:
            match = _VOUCHER.fullmatch(self.path)
            if match is None or match.group(1) not in endpoint.providers:
                return self._answer(HTTPStatus.NOT_FOUND, "NOT_FOUND", f"nothing at {self.path[:80]}")
            try:
                deposit = endpoint.book.deposit_of(match.group(1), match.group(2))
            except TransientStoreError as error:
                return self._answer(HTTPStatus.SERVICE_UNAVAILABLE, error.code, str(error))
            except Exception:
                log.exception("voucher look-up for %s failed", match.group(2))
                return self._answer(HTTPStatus.INTERNAL_SERVER_ERROR, "INTERNAL", "the ledger failed; try again")
            if deposit is None:
                return self._answer(HTTPStatus.NOT_FOUND, "NOT_PAID_YET", f"no payment booked for {match.group(2)} yet")
            self._send_json(HTTPStatus.OK, {"order": deposit.order, "voucher": deposit.voucher,
                                            "expires_ms": deposit.expires_ms})

        def _answer(self, status: HTTPStatus, code: str, message: str) -> None:
            self._send_json(status, {"code": code, "message": message[:300]})

        def _send_json(self, status: HTTPStatus, payload: dict) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:
            log.debug("payment endpoint: " + format, *args)

    return Handler
