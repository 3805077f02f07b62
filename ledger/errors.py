"""Errors raised by the ledger."""

from protocol.errors import FieldposError


class LedgerError(FieldposError):
    """The ledger could not do what was asked."""

    code = "LEDGER"


class TransientStoreError(LedgerError):
    """The store was busy or unavailable; nothing was stored, and the sender's retry will succeed."""

    code = "STORE_BUSY"


class StoreUnavailableError(TransientStoreError):
    """The store cannot be written at all (disk full, I/O error, read-only, cannot open): the fault
    is the machine's, never a message's. The service stops taking messages until a write works."""

    code = "STORE_UNAVAILABLE"


class BooksDoNotBalance(LedgerError):
    """``ledger verify`` found a transaction or balance that does not add up."""

    code = "BOOKS_DO_NOT_BALANCE"


class CardBalanceBelowZero(LedgerError):
    """A booking would take a card below zero although its decision said it would not: the second
    balance check in ``Store.book`` (a bug, never a customer's problem). The transaction is not
    written; the message that caused it is set aside."""

    code = "CARD_BALANCE_BELOW_ZERO"


class AlreadyExists(LedgerError, ValueError):
    """A park, station, terminal, key or staff member (or its card) that is already in the books:
    an operator's typo or a command run twice. Nothing was changed."""

    code = "ALREADY_EXISTS"


class NotFound(LedgerError):
    """No such park, station, terminal or card."""

    code = "NOT_FOUND"


class LockContended(TransientStoreError):
    """Another ledger worker holds a card, terminal or counter this request needs, and this batch
    already holds locks of its own (waiting could deadlock): the batch commits what it has and the
    request starts the next batch, where it may wait."""

    code = "LOCK_CONTENDED"


class BadStoreUrl(LedgerError, ValueError):
    """A store location that is neither a SQLite path (``sqlite:///path``) nor ``postgresql://``."""

    code = "BAD_STORE_URL"
