"""Errors of the online payment path. Each code is stable: it appears in logs, alerts and the
provider endpoint's answers."""

from ..errors import LedgerError


class PaymentError(LedgerError):
    """An online payment step could not be done."""

    code = "PAYMENT"


class ProviderTimeout(PaymentError):
    """The provider did not answer in time. The request may or may not have been carried out, so it
    is retried with the same merchant order or refund number, never a new one."""

    code = "PROVIDER_TIMEOUT"


class ProviderUnavailable(PaymentError):
    """The provider could not be reached or answered with a server error (5xx); retry later."""

    code = "PROVIDER_UNAVAILABLE"


class ProviderRefused(PaymentError):
    """The provider refused the request for a reason a retry will not change (4xx: bad amount,
    merchant order number used with other details, NOT_ENOUGH left to refund...)."""

    code = "PROVIDER_REFUSED"

    def __init__(self, message: str = "", *, provider_code: str = ""):
        super().__init__(message)
        self.provider_code = provider_code  # the provider's own error code (WeChat's "code"), "" if none


class BadSignature(PaymentError):
    """A notification or answer whose signature, key id or timestamp does not hold: refused and
    never booked (it may be a forged "paid")."""

    code = "BAD_SIGNATURE"


class BadNotification(PaymentError, ValueError):
    """A correctly signed body that is not a notification this ledger understands."""

    code = "BAD_NOTIFICATION"


class UnknownOrder(PaymentError):
    """The provider has no order with this merchant order number."""

    code = "UNKNOWN_ORDER"


class UnknownRefund(PaymentError):
    """The provider has no refund with this merchant refund number."""

    code = "UNKNOWN_REFUND"
