"""The payment provider as the ledger sees it: a few data types and the client protocol, modelled
on WeChat Pay APIv3 and Alipay's open API (field names are WeChat's):

    create_order    unified order: merchant order number (out_trade_no), amount, notify URL
    query_order     trade_state NOTPAY / SUCCESS / CLOSED / REFUND
    refund          full or partial, idempotent on the merchant refund number (out_refund_no):
                    a refund retried with the same number is the same refund, never a second one
    query_refund    status PROCESSING / SUCCESS / ABNORMAL / CLOSED
    notifications   TRANSACTION.SUCCESS and REFUND.SUCCESS, signed by the provider and delivered
                    again until the merchant answers 2xx — so they arrive late, twice, or before
                    query_order shows the order paid, and the receiver must cope with all three.

Money is integer fen (WeChat's amount.total is fen too). Parsing here is pure and puts a limit on
everything a provider sends before using it. The item type rides in the order's ``attach`` field
(WeChat's merchant data field, returned in the notification), so a signed notification carries all
the ledger needs to book the deposit.
"""

from dataclasses import dataclass
import json
import re
from typing import Protocol

from .errors import BadNotification

PROVIDERS = ("wechat", "alipay")
ORDER_STATES = ("NOTPAY", "SUCCESS", "CLOSED", "REFUND")
REFUND_STATES = ("PROCESSING", "SUCCESS", "ABNORMAL", "CLOSED")
PAYMENT_EVENT = "TRANSACTION.SUCCESS"
REFUND_EVENT = "REFUND.SUCCESS"
# A notification or answer is a few hundred bytes; 16 KiB leaves room and bounds json's work.
MAX_BODY_BYTES = 16 * 1024
# WeChat Pay allows one payment up to its merchant's limit; a rental deposit over 1,000,000 yuan is a
# typo, and the bound keeps amounts inside SQLite's and the protocol's integers.
MAX_AMOUNT_FEN = 100_000_000
# Merchant order and refund numbers are protocol ids (WeChat allows 6-32 of [A-Za-z0-9_-|*]).
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
_PROVIDER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True, slots=True, kw_only=True)
class CreatedOrder:
    out_trade_no: str
    pay_url: str  # where the payer pays (WeChat's code_url, shown as a QR code)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderStatus:
    out_trade_no: str
    trade_state: str
    transaction_id: str  # "" until paid
    item_type: str  # from attach
    amount_fen: int
    paid_ms: int  # 0 until paid

    @property
    def is_paid(self) -> bool:
        # REFUND: paid, then (partly) refunded — the payment itself still happened.
        return self.trade_state in ("SUCCESS", "REFUND")


@dataclass(frozen=True, slots=True, kw_only=True)
class RefundStatus:
    out_refund_no: str
    refund_id: str
    out_trade_no: str
    status: str
    amount_fen: int
    total_fen: int

    @property
    def is_refunded(self) -> bool:
        return self.status == "SUCCESS"


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentNotice:
    notification_id: str
    order: OrderStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class RefundNotice:
    notification_id: str
    refund: RefundStatus


class PaymentProvider(Protocol):
    """What the ledger needs from a provider. Every call raises a PaymentError subclass:
    ProviderTimeout, ProviderUnavailable, ProviderRefused, BadSignature, UnknownOrder, UnknownRefund."""

    name: str  # "wechat" or "alipay": the refund route and the channel account

    def create_order(self, *, out_trade_no: str, item_type: str, amount_fen: int, description: str,
                     notify_url: str, return_url: str) -> CreatedOrder: ...

    def query_order(self, out_trade_no: str) -> OrderStatus: ...

    def refund(self, *, out_trade_no: str, out_refund_no: str, amount_fen: int, total_fen: int,
               notify_url: str) -> RefundStatus: ...

    def query_refund(self, out_refund_no: str) -> RefundStatus: ...

    def verify_notification(self, path: str, headers: dict[str, str], body: bytes, *,
                            now_s: int) -> PaymentNotice | RefundNotice: ...


# ------------------------------------------------------------------ parsing (pure)
def load_json_object(body: bytes) -> dict:
    """A JSON object from a provider body, or BadNotification."""
    if len(body) > MAX_BODY_BYTES:
        raise BadNotification(f"body of {len(body)} bytes is over {MAX_BODY_BYTES}")
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadNotification("body is not JSON") from None
    if not isinstance(value, dict):
        raise BadNotification("body is not a JSON object")
    return value


def _text(obj: dict, name: str, pattern: re.Pattern | None = _ID, *, empty_ok: bool = False) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or (value == "" and not empty_ok) or len(value) > 256:
        raise BadNotification(f"{name} missing or not a short text")
    if value and pattern is not None and not pattern.fullmatch(value):
        raise BadNotification(f"{name} {value[:40]!r} is not a valid id")
    return value


def _integer(obj: dict, name: str, low: int, high: int) -> int:
    value = obj.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise BadNotification(f"{name} missing or not an integer in {low}..{high}")
    return value


def _amount(obj: dict) -> dict:
    amount = obj.get("amount")
    if not isinstance(amount, dict):
        raise BadNotification("amount missing")
    if amount.get("currency", "CNY") != "CNY":
        raise BadNotification("currency is not CNY")
    return amount


def order_status_from_json(obj: dict) -> OrderStatus:
    state = _text(obj, "trade_state", None)
    if state not in ORDER_STATES:
        raise BadNotification(f"trade_state {state[:20]!r} is none of {', '.join(ORDER_STATES)}")
    return OrderStatus(out_trade_no=_text(obj, "out_trade_no"), trade_state=state,
                       transaction_id=_text(obj, "transaction_id", _PROVIDER_ID, empty_ok=True),
                       item_type=_text(obj, "attach"), amount_fen=_integer(_amount(obj), "total", 1, MAX_AMOUNT_FEN),
                       paid_ms=_integer(obj, "success_time_ms", 0, 2**48))


def refund_status_from_json(obj: dict) -> RefundStatus:
    status = _text(obj, "status", None)
    if status not in REFUND_STATES:
        raise BadNotification(f"status {status[:20]!r} is none of {', '.join(REFUND_STATES)}")
    amount = _amount(obj)
    return RefundStatus(out_refund_no=_text(obj, "out_refund_no"), refund_id=_text(obj, "refund_id", _PROVIDER_ID),
                        out_trade_no=_text(obj, "out_trade_no"), status=status,
                        amount_fen=_integer(amount, "refund", 1, MAX_AMOUNT_FEN),
                        total_fen=_integer(amount, "total", 1, MAX_AMOUNT_FEN))


def notice_from_json(obj: dict) -> PaymentNotice | RefundNotice:
    """A verified notification body as a notice; a paid order for TRANSACTION.SUCCESS."""
    notification_id = _text(obj, "id", _PROVIDER_ID)
    resource = obj.get("resource")
    if not isinstance(resource, dict):
        raise BadNotification("resource missing")
    event = obj.get("event_type")
    if event == PAYMENT_EVENT:
        order = order_status_from_json(resource)
        if not order.is_paid or not order.transaction_id or not order.paid_ms:
            raise BadNotification(f"{PAYMENT_EVENT} for order {order.out_trade_no} that is not paid")
        return PaymentNotice(notification_id=notification_id, order=order)
    if event == REFUND_EVENT:
        refund = refund_status_from_json(resource)
        if not refund.is_refunded:
            raise BadNotification(f"{REFUND_EVENT} for refund {refund.out_refund_no} that is not refunded")
        return RefundNotice(notification_id=notification_id, refund=refund)
    raise BadNotification(f"event_type {str(event)[:40]!r} is neither {PAYMENT_EVENT} nor {REFUND_EVENT}")


def order_json(order: OrderStatus) -> dict:
    """The wire form of an order (the provider sim's answers and notifications)."""
    return {"out_trade_no": order.out_trade_no, "trade_state": order.trade_state,
            "transaction_id": order.transaction_id, "attach": order.item_type,
            "amount": {"total": order.amount_fen, "currency": "CNY"}, "success_time_ms": order.paid_ms}


def refund_json(refund: RefundStatus) -> dict:
    return {"out_refund_no": refund.out_refund_no, "refund_id": refund.refund_id,
            "out_trade_no": refund.out_trade_no, "status": refund.status,
            "amount": {"refund": refund.amount_fen, "total": refund.total_fen, "currency": "CNY"}}
