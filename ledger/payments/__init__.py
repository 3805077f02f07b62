"""Online payments for rental deposits: a client for a WeChat Pay / Alipay-style provider, the
ledger's endpoint for its signed notifications, and the worker that sends refunds back the way the
money came.

    errors.py         PaymentError and its named codes
    signing.py        Ed25519 signatures over a canonical request/notification text (pure)
    provider.py       the provider's data types and the PaymentProvider client protocol
    http_provider.py  that protocol over HTTP (stdlib urllib)
    settings.py       the provider settings and keys kept in the park home
    deposit_book.py   the one boundary into the books (ledger.rentals_online)
    notifications.py  the ledger's HTTP endpoint: payment and refund notifications, voucher look-up
    refunds.py        refunds retried with the same refund number until the provider says refunded
"""
