"""The PaymentProvider protocol over HTTP (stdlib urllib: four JSON calls need no client library).

Paths and bodies follow WeChat Pay APIv3. Every request is signed with the merchant's key and every
2xx answer must carry the provider's signature over the request's method and path, or it is refused
as BadSignature. Error answers are not trusted for anything but "did not work": a forged error can
only cause a retry with the same number, which the provider treats as the same request.
"""

from collections.abc import Callable, Mapping
import http.client
import json
import secrets
import socket
import time
import urllib.error
import urllib.parse
import urllib.request

from nacl.signing import SigningKey, VerifyKey

from . import signing
from .errors import (BadNotification, BadSignature, PaymentError, ProviderRefused, ProviderTimeout,
                     ProviderUnavailable, UnknownOrder, UnknownRefund)
from .provider import (CreatedOrder, MAX_BODY_BYTES, OrderStatus, PaymentNotice, RefundNotice, RefundStatus,
                       load_json_object, notice_from_json, order_status_from_json, refund_status_from_json)

ORDER_PATH = "/v3/pay/transactions/native"
QUERY_ORDER_PATH = "/v3/pay/transactions/out-trade-no/"
REFUND_PATH = "/v3/refund/domestic/refunds"
MERCHANT_HEADER = "Pay-Merchant"
# WeChat Pay's SDKs wait 10 s by default for an answer; a refund worker retries anyway.
DEFAULT_TIMEOUT_S = 10.0


class HttpPaymentProvider:
    def __init__(self, *, name: str, base_url: str, merchant_id: str, merchant_key_id: str,
                 merchant_key: SigningKey, provider_keys: Mapping[str, VerifyKey],
                 timeout_s: float = DEFAULT_TIMEOUT_S, clock_s: Callable[[], float] = time.time):
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.merchant_id = merchant_id
        self._merchant_key_id = merchant_key_id
        self._merchant_key = merchant_key
        self._provider_keys = dict(provider_keys)
        self.timeout_s = timeout_s
        self._clock_s = clock_s
        # No proxy: the provider's address is configured, and an environment proxy must not see it.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # ------------------------------------------------------------ the protocol
    def create_order(self, *, out_trade_no: str, item_type: str, amount_fen: int, description: str,
                     notify_url: str, return_url: str) -> CreatedOrder:
        answer = self._call("POST", ORDER_PATH, {
            "mchid": self.merchant_id, "out_trade_no": out_trade_no, "description": description,
            "attach": item_type, "notify_url": notify_url, "return_url": return_url,
            "amount": {"total": amount_fen, "currency": "CNY"}}, UnknownOrder)
        pay_url = answer.get("code_url")
        if not isinstance(pay_url, str) or not pay_url.startswith(("http://", "https://", "weixin://")):
            raise BadNotification("create_order answer has no code_url")
        return CreatedOrder(out_trade_no=out_trade_no, pay_url=pay_url)

    def query_order(self, out_trade_no: str) -> OrderStatus:
        path = QUERY_ORDER_PATH + urllib.parse.quote(out_trade_no, safe="")
        return order_status_from_json(self._call("GET", path, None, UnknownOrder))

    def refund(self, *, out_trade_no: str, out_refund_no: str, amount_fen: int, total_fen: int,
               notify_url: str) -> RefundStatus:
        return refund_status_from_json(self._call("POST", REFUND_PATH, {
            "out_trade_no": out_trade_no, "out_refund_no": out_refund_no, "notify_url": notify_url,
            "amount": {"refund": amount_fen, "total": total_fen, "currency": "CNY"}}, UnknownOrder))

    def query_refund(self, out_refund_no: str) -> RefundStatus:
        path = REFUND_PATH + "/" + urllib.parse.quote(out_refund_no, safe="")
        return refund_status_from_json(self._call("GET", path, None, UnknownRefund))

    def verify_notification(self, path: str, headers: Mapping[str, str], body: bytes, *,
                            now_s: int) -> PaymentNotice | RefundNotice:
        """A notification POSTed to ``path``: BadSignature unless the provider signed it, then
        BadNotification unless it is a paid order or a finished refund."""
        signing.verify(headers, self._provider_keys, "POST", path, body, now_s=now_s)
        return notice_from_json(load_json_object(body))

    # ------------------------------------------------------------ HTTP
    def _call(self, method: str, path: str, payload: dict | None, not_found: type[PaymentError]) -> dict:
        body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
        headers = signing.sign(self._merchant_key, self._merchant_key_id, method, path, body,
                               timestamp_s=int(self._clock_s()), nonce=secrets.token_hex(16))
        headers[MERCHANT_HEADER] = self.merchant_id
        if payload is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.base_url + path, data=body if payload is not None else None,
                                         headers=headers, method=method)
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                answer = response.read(MAX_BODY_BYTES + 1)
                answer_headers = dict(response.headers.items())
        except urllib.error.HTTPError as error:
            raise self._error(error, method, path, not_found) from None
        except (TimeoutError, socket.timeout):
            raise ProviderTimeout(f"{self.name} did not answer {method} {path} in {self.timeout_s:g} s") from None
        except urllib.error.URLError as error:
            if isinstance(error.reason, (TimeoutError, socket.timeout)):
                raise ProviderTimeout(f"{self.name} did not answer {method} {path} in {self.timeout_s:g} s") from None
            raise ProviderUnavailable(f"{self.name} unreachable for {method} {path}: {error.reason}") from None
        except (http.client.HTTPException, ConnectionError) as error:
            # The connection dropped after the request went out: the outcome is unknown, as for a timeout.
            raise ProviderTimeout(f"{self.name} dropped {method} {path} without an answer ({error!r})") from None
        try:
            signing.verify(answer_headers, self._provider_keys, "ANSWER " + method, path, answer,
                           now_s=int(self._clock_s()))
        except BadSignature as error:
            raise BadSignature(f"{self.name} answer to {method} {path}: {error}") from None
        return load_json_object(answer)

    def _error(self, error: urllib.error.HTTPError, method: str, path: str,
               not_found: type[PaymentError]) -> PaymentError:
        try:
            detail = load_json_object(error.read(MAX_BODY_BYTES + 1))
        except BadNotification:
            detail = {}
        code = str(detail.get("code", ""))[:40]
        message = f"{self.name} answered {error.code} {code} to {method} {path}: {str(detail.get('message', ''))[:120]}"
        if error.code >= 500:
            return ProviderUnavailable(message)
        if error.code == 404:
            return not_found(message)
        return ProviderRefused(message, provider_code=code if code.replace("_", "").isalnum() else "")
