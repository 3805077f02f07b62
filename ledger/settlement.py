"""Contractor settlement: marking a contractor's statement paid, and the statements paid so far.

``pay_statement`` reads the statement inside the write transaction (so nothing booked between the
reading and the paying can slip past it), lets the pure rule (``rules.settlement``) decide, books
the payout through ``Store.apply`` (the one posting path) and records the paid statement in the
same commit. The console and ``fieldpos settlement pay`` both call it.
"""

from dataclasses import dataclass
from datetime import date
import re

from .errors import LedgerError
from .reports.contractor import contractor_statement, contractors, paid_statements
from .reports.query import MAX_PERIOD_DAYS, Period, ReportError, Scope, parse_day
from .rules.settlement import (PAYOUT_KIND, PaidStatement, Payout, PayoutView, SettlementRefused, contractor_account,
                               decide_payout, payout_terminal)
from .store import NewTxn, Store

# Free text an operator types with a payment (a bank transfer's number): bounded, one line.
MAX_REFERENCE_CHARS = 64
_MONTH = re.compile(r"^\d{4}-\d{2}$")


class UnknownContractor(SettlementRefused):
    """No contractor of that id, or the station named is run by the park itself."""

    code = "UNKNOWN_CONTRACTOR"


def parse_period(text: str) -> Period:
    """A statement's business days: ``2026-05-01`` (one day), ``2026-05`` (a month) or
    ``2026-05-01..2026-05-07`` (both included). Anything else is a ReportError naming the form."""
    text = text.strip()
    if ".." in text:
        first, _, last = text.partition("..")
        first, last = parse_day(first.strip(), "--period's first day"), parse_day(last.strip(), "--period's last day")
    elif _MONTH.match(text):
        try:
            start = date.fromisoformat(text + "-01")
        except ValueError:
            raise ReportError(f"--period {text!r} is not a month like 2026-05") from None
        following = date(start.year + start.month // 12, start.month % 12 + 1, 1)
        first, last = start.isoformat(), date.fromordinal(following.toordinal() - 1).isoformat()
    else:
        first = last = parse_day(text, "--period")
    if first > last:
        raise ReportError(f"--period starts {first}, after its end {last}")
    if (date.fromisoformat(last) - date.fromisoformat(first)).days >= MAX_PERIOD_DAYS:
        raise ReportError(f"a statement covers at most {MAX_PERIOD_DAYS} days, not {first} to {last}")
    return Period(first, last)


def contractor_of(db, park_id: str, *, contractor_id: str | None = None, station_id: str | None = None) -> str:
    """The contractor a statement is for: named, or the one running ``station_id``."""
    run_by = contractors(db, park_id)
    if station_id is not None:
        owner = next((contractor for contractor, stations in run_by.items() if station_id in stations), None)
        if owner is None:
            raise UnknownContractor(f"station {station_id!r} is not run by a contractor "
                                    f"(contractor stations: {', '.join(s for v in run_by.values() for s in v) or 'none'})")
        if contractor_id is not None and contractor_id != owner:
            raise UnknownContractor(f"station {station_id} is run by {owner}, not {contractor_id}")
        return owner
    if contractor_id not in run_by:
        raise UnknownContractor(f"no contractor {contractor_id!r} in park {park_id} "
                                f"(contractors: {', '.join(sorted(run_by)) or 'none'})")
    return contractor_id


@dataclass(frozen=True, slots=True)
class StatementPaid:
    paid: PaidStatement
    statement_total_fen: int   # the statement's own net payable as read in the same transaction


def pay_statement(store: Store, *, contractor_id: str | None = None, station_id: str | None = None, period: Period,
                  channel: str = "bank", reference: str = "", paid_by: str, now_ms: int) -> StatementPaid:
    """Mark a contractor's statement for ``period`` paid: book the payout of its net payable out of
    ``contractor:<id>`` into ``channel:<channel>``. Raises a SettlementRefused (ALREADY_PAID with the
    first payment's time, PERIOD_OVERLAPS_PAID, PERIOD_NOT_OVER, NOTHING_PAYABLE, ...) with nothing booked."""
    reference = reference.strip()
    if len(reference) > MAX_REFERENCE_CHARS or not reference.isprintable():
        raise SettlementRefused(f"a payment reference is one line of at most {MAX_REFERENCE_CHARS} characters")
    if not paid_by:
        raise SettlementRefused("a payment names who made it")
    park_id = store.db.execute("SELECT park_id FROM park ORDER BY park_id LIMIT 1").fetchone()[0]
    with store.batch():
        contractor = contractor_of(store.db, park_id, contractor_id=contractor_id, station_id=station_id)
        statement = contractor_statement(store.db, Scope(park_id, period), contractor)
        summary = dict(statement.tables[0].rows)
        view = PayoutView(
            contractor_id=contractor, first_day=period.first, last_day=period.last,
            today=store.booking_day(park_id, now_ms), net_payable_fen=summary["net payable 应付净额"],
            receipts=len(statement.tables[2].rows),
            credited_fen=_credited(store, park_id, contractor, period),
            overlapping=tuple(paid_statements(store.db, park_id, contractor, first_day=period.first,
                                              last_day=period.last)),
            payout_no=store.db.execute("SELECT COALESCE(MAX(payout_no), 0) + 1 FROM contractor_payout WHERE park_id = ?",
                                       (park_id,)).fetchone()[0])
        decision, payout = decide_payout(view, channel=channel, reference=reference, paid_by=paid_by)
        txn = NewTxn(park_id=park_id, kind=PAYOUT_KIND, terminal_id=payout_terminal(park_id), seq=payout.payout_no,
                     operator=paid_by, station_id="", card_account=None, amount_fen=payout.amount_fen,
                     ledger_time_ms=now_ms, terminal_time_ms=now_ms, clock_uncertain=False)
        txn_id = store.apply(decision, park_id=park_id, now_ms=now_ms, txn=txn)
        _record_payout(store, park_id, payout, txn_id, now_ms)
        paid = paid_statements(store.db, park_id, contractor, first_day=period.first, last_day=period.last)[-1]
    return StatementPaid(paid, view.net_payable_fen)


def _credited(store: Store, park_id: str, contractor_id: str, period: Period) -> int:
    """What the period's transactions, payouts aside, credited to the contractor's payable: read from
    the account, not from the statement, so the rule can check one against the other."""
    return store.db.execute(
        """SELECT COALESCE(SUM(p.amount), 0) FROM posting p JOIN txn t ON t.txn_id = p.txn_id
            WHERE p.park_id = ? AND p.account_id = ? AND p.asset = 'fen' AND t.kind <> ?
              AND t.business_day BETWEEN ? AND ?""",
        (park_id, contractor_account(contractor_id), PAYOUT_KIND, period.first, period.last)).fetchone()[0]


def _record_payout(store: Store, park_id: str, payout: Payout, txn_id: int, now_ms: int) -> None:
    try:
        store.db.execute(
            """INSERT INTO contractor_payout (park_id, payout_no, contractor_id, first_day, last_day, amount_fen,
                   receipts, channel, reference, paid_by, paid_ms, txn_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (park_id, payout.payout_no, payout.contractor_id, payout.first_day, payout.last_day, payout.amount_fen,
             payout.receipts, payout.channel, payout.reference, payout.paid_by, now_ms, txn_id))
    except store.INTEGRITY_ERRORS as error:  # the rule checked first; the table's keys are the second check
        raise LedgerError(f"statement {payout.contractor_id} {payout.first_day}..{payout.last_day} "
                          f"could not be recorded paid ({error})") from None
