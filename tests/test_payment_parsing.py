"""What the ledger accepts from a payment provider, without a socket: the signature checks and the
notification parser, each bad input refused with a one-line reason."""

import json

from nacl.signing import SigningKey
import pytest

from ledger.payments import signing
from ledger.payments.errors import BadNotification, BadSignature
from ledger.payments.provider import MAX_BODY_BYTES, PaymentNotice, RefundNotice, load_json_object, notice_from_json

KEY = SigningKey.generate()
KEYS = {"wechat-platform-1": KEY.verify_key}
NOW_S = 1_800_000_000
PAID = {"id": "EV-1", "event_type": "TRANSACTION.SUCCESS",
        "resource": {"out_trade_no": "DP0001", "trade_state": "SUCCESS", "transaction_id": "4200001", "attach": "rod",
                     "amount": {"total": 3000, "currency": "CNY"}, "success_time_ms": 1_800_000_000_000}}
REFUNDED = {"id": "EV-2", "event_type": "REFUND.SUCCESS",
            "resource": {"out_refund_no": "RFD00001", "refund_id": "5000001", "out_trade_no": "DP0001",
                         "status": "SUCCESS", "amount": {"refund": 2000, "total": 3000, "currency": "CNY"}}}


def signed(body=b"{}", **changes):
    headers = signing.sign(KEY, "wechat-platform-1", "POST", "/payments/wechat/notify", body, timestamp_s=NOW_S,
                           nonce="n" * 32)
    return {**headers, **changes}


def test_a_signature_holds_only_for_its_body_path_method_and_time():
    assert signing.verify(signed(), KEYS, "POST", "/payments/wechat/notify", b"{}", now_s=NOW_S) == "wechat-platform-1"
    refusals = {
        "body": (signed(), "POST", "/payments/wechat/notify", b"{ }", NOW_S),
        "path": (signed(), "POST", "/payments/alipay/notify", b"{}", NOW_S),
        "method": (signed(), "ANSWER POST", "/payments/wechat/notify", b"{}", NOW_S),
        "time": (signed(), "POST", "/payments/wechat/notify", b"{}", NOW_S + signing.MAX_CLOCK_SKEW_S + 1),
        "unknown key id": (signed(**{signing.KEY_ID_HEADER: "other-1"}), "POST", "/payments/wechat/notify", b"{}", NOW_S),
        "signature not base64": (signed(**{signing.SIGNATURE_HEADER: "%%%"}), "POST", "/payments/wechat/notify", b"{}", NOW_S),
        "short signature": (signed(**{signing.SIGNATURE_HEADER: "AAAA"}), "POST", "/payments/wechat/notify", b"{}", NOW_S),
        "short nonce": (signed(**{signing.NONCE_HEADER: "abc"}), "POST", "/payments/wechat/notify", b"{}", NOW_S),
        "timestamp not a number": (signed(**{signing.TIMESTAMP_HEADER: "soon"}), "POST", "/payments/wechat/notify", b"{}", NOW_S),
    }
    for case, (headers, method, path, body, now_s) in refusals.items():
        with pytest.raises(BadSignature) as refused:
            signing.verify(headers, KEYS, method, path, body, now_s=now_s)
        assert "\n" not in str(refused.value), case


def test_a_paid_and_a_refunded_notification_are_read_with_integer_fen():
    paid = notice_from_json(PAID)
    refunded = notice_from_json(REFUNDED)
    assert isinstance(paid, PaymentNotice) and (paid.order.amount_fen, paid.order.item_type) == (3000, "rod")
    assert isinstance(refunded, RefundNotice) and (refunded.refund.amount_fen, refunded.refund.total_fen) == (2000, 3000)


def with_resource(notice, **changes):
    return {**notice, "resource": {**notice["resource"], **changes}}


@pytest.mark.parametrize("notice, reason", [
    ({**PAID, "event_type": "TRANSACTION.CLOSED"}, "event_type"),
    (with_resource(PAID, trade_state="NOTPAY"), "not paid"),
    (with_resource(PAID, amount={"total": 30.0}), "total"),
    (with_resource(PAID, amount={"total": True}), "total"),
    (with_resource(PAID, amount={"total": 3000, "currency": "USD"}), "currency"),
    (with_resource(PAID, amount={"total": 10**12}), "total"),
    (with_resource(PAID, out_trade_no="DP 1; DROP"), "out_trade_no"),
    (with_resource(PAID, attach=""), "attach"),
    (with_resource(PAID, transaction_id=""), "not paid"),
    (with_resource(REFUNDED, status="PROCESSING"), "not refunded"),
    ({**PAID, "resource": []}, "resource"),
])
def test_a_notification_that_does_not_hold_together_is_refused_with_its_reason(notice, reason):
    with pytest.raises(BadNotification, match=reason):
        notice_from_json(notice)


@pytest.mark.parametrize("body, reason", [
    (b"[" * 100_000, "over"),
    (b"[" * 10_000, "not JSON"),  # deeper than Python's recursion limit: refused, not a crash
    (b"\xff\xfe", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (json.dumps({"x": "y" * MAX_BODY_BYTES}).encode(), "over"),
])
def test_a_body_that_is_not_a_small_json_object_is_refused(body, reason):
    with pytest.raises(BadNotification, match=reason):
        load_json_object(body)
