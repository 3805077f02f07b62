"""A simulated WeChat Pay / Alipay-style provider: a real HTTP server on loopback with its own
orders and refunds, signed answers and notifications, and faults a test or the demo turns on.

    POST /v3/pay/transactions/native             create an order (idempotent on out_trade_no)
    GET  /v3/pay/transactions/out-trade-no/<no>  query it
    POST /v3/refund/domestic/refunds             refund, idempotent on out_refund_no
    GET  /v3/refund/domestic/refunds/<no>        query a refund
    GET  /pay/<no>                               the payer's page (WeChat's code_url); its button
    POST /sim/pay/<no>                           pays, queues the notification, goes to the return page
    GET  /return/<no>                            the "return URL" page: the ledger's voucher as a QR code

Requests must be signed by the merchant (Ed25519, ledger.payments.signing); answers and
notifications are signed with the provider's key. Notifications go out from one thread in order and
are delivered again after a non-2xx answer or no answer, on a short schedule (WeChat's is
15 s, 15 s, 30 s, 3 min... over 24 h; the sim keeps its shape, not its length).

Faults (``provider.faults``, changed at any time):
    slow_s                   every API answer waits this long first
    unavailable              every API call answers 503 SYSTEM_ERROR
    refund_failures          the next N refund calls answer 500 SYSTEM_ERROR and do nothing
    refund_timeouts          the next N refund calls MAKE the refund, then hold the answer until
                             release_held_answers() (or HOLD_LIMIT_S) and close without answering —
                             the case where only the refund number's idempotency prevents a second refund
    duplicate_notifications  every notification is delivered twice
    query_lags_payment       query_order shows a paid order NOTPAY until settle_queries()
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
import html
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
from pathlib import Path
import queue
import re
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from nacl.signing import SigningKey, VerifyKey

from ledger.payments import signing
from ledger.payments.errors import BadNotification, BadSignature
from ledger.payments.http_provider import MERCHANT_HEADER, ORDER_PATH, QUERY_ORDER_PATH, REFUND_PATH
from ledger.payments.provider import (MAX_AMOUNT_FEN, MAX_BODY_BYTES, OrderStatus, PAYMENT_EVENT, REFUND_EVENT,
                                      RefundStatus, load_json_object, order_json, refund_json)
from ledger.payments.settings import PaymentSettings, ProviderSettings, save_payment_settings
from transport.mosquitto_process import free_port

# A held answer (refund_timeouts) is dropped after this long even if nobody releases it.
HOLD_LIMIT_S = 30.0
# Delays between delivery attempts of one notification; then it is given up (and counted).
NOTIFY_RETRY_DELAYS_S = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
NOTIFY_TIMEOUT_S = 5.0
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")


@dataclass
class Faults:
    slow_s: float = 0.0
    unavailable: bool = False
    refund_failures: int = 0
    refund_timeouts: int = 0
    duplicate_notifications: bool = False
    query_lags_payment: bool = False


@dataclass
class SimOrder:
    out_trade_no: str
    item_type: str
    amount_fen: int
    notify_url: str
    return_url: str
    description: str
    transaction_id: str = ""
    paid_ms: int = 0
    refunded_fen: int = 0
    query_shows_paid: bool = True

    def status(self, *, for_query: bool = False) -> OrderStatus:
        paid = self.paid_ms > 0 and (self.query_shows_paid or not for_query)
        state = ("REFUND" if self.refunded_fen else "SUCCESS") if paid else "NOTPAY"
        return OrderStatus(out_trade_no=self.out_trade_no, trade_state=state,
                           transaction_id=self.transaction_id if paid else "", item_type=self.item_type,
                           amount_fen=self.amount_fen, paid_ms=self.paid_ms if paid else 0)


@dataclass(frozen=True)
class Delivery:
    """One delivery attempt of a notification: what, to which order or refund, and the answer."""

    event_type: str
    subject: str  # out_trade_no or out_refund_no
    http_status: int  # 0: no answer


class SimProviderError(Exception):
    """A refusal the sim answers with an HTTP status and a WeChat-style error code."""

    def __init__(self, status: HTTPStatus, code: str, message: str):
        super().__init__(message)
        self.status, self.code = status, code


class SimulatedProvider:
    """One provider (``name`` "wechat" or "alipay") serving one merchant, the park's ledger."""

    def __init__(self, *, name: str = "wechat", merchant_id: str = "1900000109",
                 merchant_keys: Mapping[str, VerifyKey], host: str = "127.0.0.1", port: int = 0,
                 notify_retry_delays_s: tuple[float, ...] = NOTIFY_RETRY_DELAYS_S):
        self.name = name
        self.merchant_id = merchant_id
        self.merchant_keys = dict(merchant_keys)
        self.key_id = f"{name}-platform-1"
        self.signing_key = SigningKey.generate()
        self.faults = Faults()
        self.notify_retry_delays_s = notify_retry_delays_s
        self.orders: dict[str, SimOrder] = {}
        self.refunds: dict[str, RefundStatus] = {}
        self.refund_calls = 0
        self.deliveries: list[Delivery] = []
        self.notifications_given_up = 0
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._held: list[threading.Event] = []
        self._stopping = threading.Event()
        self._outbox: queue.Queue = queue.Queue()
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self.base_url = f"http://{host}:{self._server.server_address[1]}"
        self._threads: list[threading.Thread] = []

    @property
    def public_keys(self) -> dict[str, VerifyKey]:
        """What the ledger keeps to check this provider's signatures."""
        return {self.key_id: self.signing_key.verify_key}

    # ------------------------------------------------------------ life
    def start(self) -> "SimulatedProvider":
        for target, name in ((self._server.serve_forever, "provider-sim-http"), (self._notify_loop, "provider-sim-notify")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.release_held_answers()
        self._outbox.put(None)
        self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            thread.join()

    def __enter__(self) -> "SimulatedProvider":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------ the payer and the test
    def pay(self, out_trade_no: str) -> str:
        """The payer pays: the order is paid and its notification queued. Returns the transaction id;
        paying a paid order again changes nothing."""
        with self._lock:
            order = self.orders.get(out_trade_no)
            if order is None:
                raise SimProviderError(HTTPStatus.NOT_FOUND, "ORDER_NOT_EXIST", f"no order {out_trade_no}")
            if order.paid_ms:
                return order.transaction_id
            order.transaction_id = "42000" + secrets.token_hex(12)
            order.paid_ms = time.time_ns() // 1_000_000
            order.query_shows_paid = not self.faults.query_lags_payment
            notice = _notification(PAYMENT_EVENT, order_json(order.status()))
            copies = 2 if self.faults.duplicate_notifications else 1
        for _ in range(copies):  # a duplicate is the same notification (same id), delivered again
            self._outbox.put((order.notify_url, out_trade_no, PAYMENT_EVENT, notice))
        return order.transaction_id

    def settle_queries(self) -> None:
        """query_order catches up with the notifications already sent (query_lags_payment)."""
        with self._lock:
            for order in self.orders.values():
                order.query_shows_paid = True

    def release_held_answers(self) -> None:
        """Drop every answer held by a refund_timeouts fault (their connections close unanswered)."""
        with self._lock:
            held, self._held = self._held, []
        for event in held:
            event.set()

    def refunds_of(self, out_trade_no: str) -> list[RefundStatus]:
        with self._lock:
            return [refund for refund in self.refunds.values() if refund.out_trade_no == out_trade_no]

    def wait_for_deliveries(self, count: int, timeout_s: float = 30.0) -> list[Delivery]:
        """Wait until ``count`` notifications have been answered 2xx (or given up); the deliveries."""
        with self._changed:
            self._changed.wait_for(lambda: self._finished_count() >= count, timeout_s)
            return list(self.deliveries)

    def _finished_count(self) -> int:
        return sum(200 <= d.http_status < 300 for d in self.deliveries) + self.notifications_given_up

    # ------------------------------------------------------------ the API (called with the body verified)
    def create_order(self, request: dict) -> dict:
        amount = request.get("amount") if isinstance(request.get("amount"), dict) else {}
        total = amount.get("total")
        fields = {name: request.get(name) for name in ("out_trade_no", "attach", "notify_url", "return_url", "description")}
        if not all(isinstance(value, str) for value in fields.values()) or not _ID.fullmatch(fields["out_trade_no"]) \
                or not isinstance(total, int) or isinstance(total, bool) or not 0 < total <= MAX_AMOUNT_FEN:
            raise SimProviderError(HTTPStatus.BAD_REQUEST, "PARAM_ERROR", "out_trade_no, attach, notify_url, "
                                   "return_url, description and amount.total (fen) are required")
        with self._lock:
            known = self.orders.get(fields["out_trade_no"])
            if known is None:
                self.orders[fields["out_trade_no"]] = SimOrder(
                    out_trade_no=fields["out_trade_no"], item_type=fields["attach"], amount_fen=total,
                    notify_url=fields["notify_url"], return_url=fields["return_url"], description=fields["description"])
            elif (known.amount_fen, known.item_type) != (total, fields["attach"]):
                raise SimProviderError(HTTPStatus.BAD_REQUEST, "OUT_TRADE_NO_USED",
                                       f"{known.out_trade_no} already names an order of {known.amount_fen} fen")
        return {"code_url": f"{self.base_url}/pay/{fields['out_trade_no']}"}

    def query_order(self, out_trade_no: str) -> dict:
        with self._lock:
            order = self.orders.get(out_trade_no)
            if order is None:
                raise SimProviderError(HTTPStatus.NOT_FOUND, "ORDER_NOT_EXIST", f"no order {out_trade_no}")
            return order_json(order.status(for_query=True))

    def refund(self, request: dict) -> dict:
        amount = request.get("amount") if isinstance(request.get("amount"), dict) else {}
        out_trade_no, out_refund_no = request.get("out_trade_no"), request.get("out_refund_no")
        refund_fen, total_fen = amount.get("refund"), amount.get("total")
        if not (isinstance(out_trade_no, str) and isinstance(out_refund_no, str) and _ID.fullmatch(out_refund_no)
                and isinstance(refund_fen, int) and isinstance(total_fen, int) and refund_fen > 0):
            raise SimProviderError(HTTPStatus.BAD_REQUEST, "PARAM_ERROR", "out_trade_no, out_refund_no and amount are required")
        with self._lock:
            self.refund_calls += 1
            if self.faults.refund_failures > 0:
                self.faults.refund_failures -= 1
                raise SimProviderError(HTTPStatus.INTERNAL_SERVER_ERROR, "SYSTEM_ERROR", "refund failed, try again")
            known = self.refunds.get(out_refund_no)
            if known is not None:  # the same refund number: the same refund, whatever the call's outcome was
                if (known.out_trade_no, known.amount_fen) != (out_trade_no, refund_fen):
                    raise SimProviderError(HTTPStatus.BAD_REQUEST, "INVALID_REQUEST",
                                           f"{out_refund_no} already names a refund of {known.amount_fen} fen")
                return refund_json(known)
            order = self.orders.get(out_trade_no)
            if order is None or not order.paid_ms:
                raise SimProviderError(HTTPStatus.NOT_FOUND, "ORDER_NOT_EXIST", f"no paid order {out_trade_no}")
            if total_fen != order.amount_fen:
                raise SimProviderError(HTTPStatus.BAD_REQUEST, "PARAM_ERROR",
                                       f"amount.total {total_fen} is not the order's {order.amount_fen} fen")
            if order.refunded_fen + refund_fen > order.amount_fen:
                raise SimProviderError(HTTPStatus.FORBIDDEN, "NOT_ENOUGH",
                                       f"{order.amount_fen - order.refunded_fen} fen left to refund on {out_trade_no}")
            refund = RefundStatus(out_refund_no=out_refund_no, refund_id="50000" + secrets.token_hex(12),
                                  out_trade_no=out_trade_no, status="SUCCESS", amount_fen=refund_fen,
                                  total_fen=order.amount_fen)
            self.refunds[out_refund_no] = refund
            order.refunded_fen += refund_fen
            notify_url = request.get("notify_url")
            held = None
            if self.faults.refund_timeouts > 0:
                self.faults.refund_timeouts -= 1
                held = threading.Event()
                self._held.append(held)
        if isinstance(notify_url, str) and notify_url:
            self._outbox.put((notify_url, out_refund_no, REFUND_EVENT,
                              _notification(REFUND_EVENT, refund_json(refund))))
        if held is not None:
            held.wait(HOLD_LIMIT_S)
            raise _HoldAndDrop()
        return refund_json(refund)

    def query_refund(self, out_refund_no: str) -> dict:
        with self._lock:
            refund = self.refunds.get(out_refund_no)
        if refund is None:
            raise SimProviderError(HTTPStatus.NOT_FOUND, "RESOURCE_NOT_EXISTS", f"no refund {out_refund_no}")
        return refund_json(refund)

    # ------------------------------------------------------------ notifications
    def _notify_loop(self) -> None:
        while (item := self._outbox.get()) is not None:
            url, subject, event_type, body = item
            for delay_s in (0.0, *self.notify_retry_delays_s):
                if self._stopping.wait(delay_s):
                    return
                status = self._deliver(url, body)
                with self._changed:
                    self.deliveries.append(Delivery(event_type, subject, status))
                    self._changed.notify_all()
                if 200 <= status < 300:
                    break
            else:
                with self._changed:
                    self.notifications_given_up += 1
                    self._changed.notify_all()

    def _deliver(self, url: str, body: bytes) -> int:
        path = urllib.parse.urlsplit(url).path or "/"
        headers = signing.sign(self.signing_key, self.key_id, "POST", path, body,
                               timestamp_s=int(time.time()), nonce=secrets.token_hex(16))
        request = urllib.request.Request(url, data=body, method="POST",
                                         headers={**headers, "Content-Type": "application/json"})
        try:
            with self._opener.open(request, timeout=NOTIFY_TIMEOUT_S) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except (OSError, urllib.error.URLError):
            return 0

    # ------------------------------------------------------------ pages
    def return_page(self, out_trade_no: str) -> str:
        """The payer's page after paying: the voucher the ledger issued, as a QR code and as text."""
        import segno

        with self._lock:
            order = self.orders.get(out_trade_no)
        if order is None:
            raise SimProviderError(HTTPStatus.NOT_FOUND, "ORDER_NOT_EXIST", f"no order {out_trade_no}")
        try:
            with self._opener.open(order.return_url, timeout=NOTIFY_TIMEOUT_S) as response:
                voucher = load_json_object(response.read(MAX_BODY_BYTES + 1))
        except (OSError, urllib.error.URLError, BadNotification):
            voucher = {}
        token = voucher.get("voucher")
        if not isinstance(token, str):
            # The ledger has not booked the payment yet (its notification is on the way): look again soon.
            return _page("Payment received", f"<p>Paid {_yuan(order.amount_fen)} for {html.escape(order.item_type)}."
                         " Your deposit voucher is on its way; this page reloads.</p>", refresh_s=2)
        qr = segno.make(token, error="m").svg_inline(scale=4)
        return _page("Your deposit voucher",
                     f"<p>Deposit {_yuan(order.amount_fen)} for {html.escape(order.item_type)},"
                     f" order {html.escape(str(voucher.get('order', '')))}.</p>{qr}"
                     f"<p>Show this code at the rental desk.</p><p><code>{html.escape(token)}</code></p>")

    def pay_page(self, out_trade_no: str) -> str:
        with self._lock:
            order = self.orders.get(out_trade_no)
        if order is None:
            raise SimProviderError(HTTPStatus.NOT_FOUND, "ORDER_NOT_EXIST", f"no order {out_trade_no}")
        return _page(f"Pay {_yuan(order.amount_fen)}",
                     f"<p>{html.escape(order.description)}</p><form method='post' action='/sim/pay/{out_trade_no}'>"
                     f"<button>Pay {_yuan(order.amount_fen)}</button></form>")


class _HoldAndDrop(Exception):
    """A refund_timeouts fault: close the connection without an answer."""


def _notification(event_type: str, resource: dict) -> bytes:
    return json.dumps({"id": "EV-" + secrets.token_hex(8), "create_time_ms": time.time_ns() // 1_000_000,
                       "event_type": event_type, "resource": resource}, separators=(",", ":")).encode()


def _yuan(fen: int) -> str:
    return f"¥{fen // 100}.{fen % 100:02d}"


def _page(title: str, body: str, refresh_s: int | None = None) -> str:
    refresh = f"<meta http-equiv='refresh' content='{refresh_s}'>" if refresh_s else ""
    return (f"<!doctype html><html><head><meta charset='utf-8'>{refresh}<title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1>{body}</body></html>")


def _handler_for(provider: SimulatedProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "provider-sim"
        timeout = 10

        def do_GET(self) -> None:
            if self.path.startswith("/pay/"):
                return self._page(lambda: provider.pay_page(self.path[len("/pay/"):]))
            if self.path.startswith("/return/"):
                return self._page(lambda: provider.return_page(self.path[len("/return/"):]))
            if self.path.startswith(QUERY_ORDER_PATH):
                return self._api(lambda body: provider.query_order(self.path[len(QUERY_ORDER_PATH):]))
            if self.path.startswith(REFUND_PATH + "/"):
                return self._api(lambda body: provider.query_refund(self.path[len(REFUND_PATH) + 1:]))
            self._json(HTTPStatus.NOT_FOUND, {"code": "NOT_FOUND", "message": self.path[:80]})

        def do_POST(self) -> None:
            if self.path.startswith("/sim/pay/"):
                self._read_body()
                try:
                    provider.pay(self.path[len("/sim/pay/"):])
                except SimProviderError as error:
                    return self._json(error.status, {"code": error.code, "message": str(error)})
                self.send_response(HTTPStatus.SEE_OTHER)
                self.send_header("Location", "/return/" + self.path[len("/sim/pay/"):])
                self.send_header("Content-Length", "0")
                return self.end_headers()
            routes = {ORDER_PATH: provider.create_order, REFUND_PATH: provider.refund}
            if self.path not in routes:
                return self._json(HTTPStatus.NOT_FOUND, {"code": "NOT_FOUND", "message": self.path[:80]})
            self._api(lambda body: routes[self.path](load_json_object(body)))

        def _read_body(self) -> bytes | None:
            length = self.headers.get("Content-Length", "0")
            if not length.isdigit() or int(length) > MAX_BODY_BYTES:
                return None
            return self.rfile.read(int(length))

        def _api(self, call) -> None:
            body = self._read_body()
            if body is None:
                return self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"code": "PARAM_ERROR", "message": "body too big"})
            if provider.faults.slow_s:
                time.sleep(provider.faults.slow_s)
            if provider.faults.unavailable:
                return self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"code": "SYSTEM_ERROR", "message": "unavailable (fault)"})
            try:
                if self.headers.get(MERCHANT_HEADER) != provider.merchant_id:
                    raise BadSignature(f"{MERCHANT_HEADER} is not merchant {provider.merchant_id}")
                signing.verify(dict(self.headers.items()), provider.merchant_keys, self.command, self.path, body,
                               now_s=int(time.time()))
                answer = call(body)
            except BadSignature as error:
                return self._json(HTTPStatus.UNAUTHORIZED, {"code": "SIGN_ERROR", "message": str(error)})
            except BadNotification as error:
                return self._json(HTTPStatus.BAD_REQUEST, {"code": "PARAM_ERROR", "message": str(error)})
            except SimProviderError as error:
                return self._json(error.status, {"code": error.code, "message": str(error)})
            except _HoldAndDrop:
                self.close_connection = True
                return
            self._json(HTTPStatus.OK, answer, sign_as=(self.command, self.path))

        def _page(self, render) -> None:
            try:
                page = render().encode()
            except SimProviderError as error:
                return self._json(error.status, {"code": error.code, "message": str(error)})
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def _json(self, status: HTTPStatus, payload: dict, sign_as: tuple[str, str] | None = None) -> None:
            body = json.dumps(payload, separators=(",", ":")).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if sign_as is not None:
                for name, value in signing.sign(provider.signing_key, provider.key_id, "ANSWER " + sign_as[0], sign_as[1],
                                                body, timestamp_s=int(time.time()), nonce=secrets.token_hex(16)).items():
                    self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:
            pass  # the test's or demo's own output says what happened

    return Handler


def provider_for_park(home: Path, *, name: str = "wechat", endpoint_port: int | None = None) -> SimulatedProvider:
    """A started provider sim, and the park home's payment settings pointing at it (a new merchant
    key; the ledger's endpoint on ``endpoint_port``, a free loopback port by default), so the next
    ``ledger serve`` takes online payments through it. The caller stops the sim."""
    merchant_key = SigningKey.generate()
    merchant_key_id = f"{name}-merchant-1"
    sim = SimulatedProvider(name=name, merchant_keys={merchant_key_id: merchant_key.verify_key}).start()
    port = endpoint_port or free_port()
    save_payment_settings(home, PaymentSettings(
        listen_host="127.0.0.1", listen_port=port, public_base_url=f"http://127.0.0.1:{port}",
        providers={name: ProviderSettings(name=name, base_url=sim.base_url, merchant_id=sim.merchant_id,
                                          merchant_key_id=merchant_key_id, merchant_key=merchant_key,
                                          provider_keys=sim.public_keys)}))
    return sim
