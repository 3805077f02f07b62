"""Paying a contractor's statement (第三方承包对账, issue 14 item 6): the payout is an ordinary
transaction the ledger books itself, out of the contractor's payable into the channel the money
leaves by (a bank transfer, most often), so ``ledger verify`` sees it like any other.

A statement is a contractor and a run of business days. It is paid once: the same statement again
is refused with the first payment's time, and so is any period that overlaps a paid one (a receipt
must never be paid twice). A period is paid only once it is over, since the ledger dates a sale by
the day it is booked: a day still open can take sales after the payment. A day closed (日结) is
over, whatever the clock says: bookings go to the next open day. Pure: the View carries
what the books say; refusals are raised as named errors, an approval is a Decision for Store.apply
and the Payout that ``ledger.settlement`` records beside its transaction, in the same commit.
"""

from dataclasses import dataclass

from protocol.money import format_fen
from protocol.reasons import Reason

from ..errors import LedgerError
from .common import channel_account
from .decision import Decision, Posting

# The transaction kind, and the terminal id it is booked under (seq: the payout's number).
PAYOUT_KIND = "contractor_payout"
CHANNELS = ("bank", "cash", "wechat", "alipay")


def payout_terminal(park_id: str) -> str:
    return f"{park_id}:settlement"


def contractor_account(contractor_id: str) -> str:
    return f"contractor:{contractor_id}"


class SettlementRefused(LedgerError):
    """A statement could not be marked paid; nothing was booked."""

    code = "SETTLEMENT_REFUSED"


class AlreadyPaid(SettlementRefused):
    """This statement was paid before (the message says when and by whom)."""

    code = "ALREADY_PAID"


class PeriodOverlapsPaid(SettlementRefused):
    """Part of the period is in a statement already paid: paying it would pay its receipts twice."""

    code = "PERIOD_OVERLAPS_PAID"


class PeriodNotOver(SettlementRefused):
    """The period's last business day is not over: sales may still be booked on it."""

    code = "PERIOD_NOT_OVER"


class NothingPayable(SettlementRefused):
    """The statement's net payable is zero or less: there is nothing to pay out."""

    code = "NOTHING_PAYABLE"


class StatementIncomplete(SettlementRefused):
    """The statement's lines do not add up to what the books credited the contractor in its period:
    paying it would pay the wrong sum (a bug in the statement, never the operator's)."""

    code = "STATEMENT_INCOMPLETE"


class BadChannel(SettlementRefused, ValueError):
    """A payout channel the park does not pay by."""

    code = "BAD_CHANNEL"


@dataclass(frozen=True, slots=True)
class PaidStatement:
    """A statement marked paid: what the books say about it."""

    payout_no: int
    contractor_id: str
    first_day: str
    last_day: str
    amount_fen: int
    receipts: int
    channel: str
    reference: str
    paid_by: str
    paid_ms: int
    paid_local: str       # the park's local time, "2026-05-02 09:14:03"
    txn_id: int

    @property
    def period(self) -> str:
        return self.first_day if self.first_day == self.last_day else f"{self.first_day} to {self.last_day}"


@dataclass(frozen=True, slots=True)
class PayoutView:
    contractor_id: str
    first_day: str
    last_day: str
    today: str                          # the business day a booking now goes to (after any closed days)
    net_payable_fen: int                # the statement's net payable, from its transactions' own postings
    receipts: int                       # lines on the statement
    credited_fen: int | None = None     # all the period's transactions credited the contractor's payable (None: not read)
    overlapping: tuple = ()             # PaidStatement of this contractor whose period meets this one
    payout_no: int = 1                  # the number the payout would get


@dataclass(frozen=True, slots=True)
class Payout:
    """The effect Store.apply writes beside the transaction: the statement, marked paid."""

    payout_no: int
    contractor_id: str
    first_day: str
    last_day: str
    amount_fen: int
    receipts: int
    channel: str
    reference: str
    paid_by: str


def decide_payout(view: PayoutView, *, channel: str, reference: str, paid_by: str) -> tuple[Decision, Payout]:
    """The payout of one statement and the statement marked paid, or a SettlementRefused saying why not."""
    if channel not in CHANNELS:
        raise BadChannel(f"pay by one of {', '.join(CHANNELS)}, not {channel!r}")
    for paid in view.overlapping:
        if (paid.first_day, paid.last_day) == (view.first_day, view.last_day):
            raise AlreadyPaid(f"the statement of {view.contractor_id} for {paid.period} was paid at {paid.paid_local} "
                              f"by {paid.paid_by} ({format_fen(paid.amount_fen)} by {paid.channel}, payout {paid.payout_no})")
        raise PeriodOverlapsPaid(f"{view.contractor_id}'s statement for {paid.period}, paid at {paid.paid_local}, "
                                 f"covers part of {view.first_day} to {view.last_day}")
    if view.last_day >= view.today:
        raise PeriodNotOver(f"business day {view.last_day} is not over (bookings now go to {view.today}): a statement "
                            f"is paid once its last day has ended or been closed (fieldpos ledger close-day)")
    if view.credited_fen is not None and view.credited_fen != view.net_payable_fen:
        # Checked in two places: the statement adds up its lines; the books add up the account. A
        # kind that credits a contractor but is not listed (rental fees once were) is caught here.
        raise StatementIncomplete(f"{view.contractor_id}'s statement for {view.first_day} to {view.last_day} lists "
                                  f"{format_fen(view.net_payable_fen)} but the books credited "
                                  f"{format_fen(view.credited_fen)} to its payable: nothing paid")
    if view.net_payable_fen <= 0:
        raise NothingPayable(f"{view.contractor_id}'s statement for {view.first_day} to {view.last_day} has a net "
                             f"payable of {format_fen(view.net_payable_fen)}: nothing to pay")
    amount = view.net_payable_fen
    decision = Decision(
        reason=Reason.OK, amount_fen=amount,
        postings=(Posting(contractor_account(view.contractor_id), "fen", -amount),
                  Posting(channel_account(channel), "fen", amount)),
    )
    return decision, Payout(view.payout_no, view.contractor_id, view.first_day, view.last_day, amount, view.receipts,
                            channel, reference, paid_by)
