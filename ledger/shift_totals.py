"""A shift's totals as its slip prints them (交班单), read from the books: one function for the
ledger's answer at the handover and for the shifts report, so the two cannot disagree.

A shift is a terminal's transactions between the seq that opened it and the seq that closed it.
Amounts are integer fen. Tenders are signed from the park's side: positive is money the park took
in (a channel's drawer or provider), or what sales took from visitors' cards; negative is money out.
"""

from collections import defaultdict
from dataclasses import dataclass

from protocol.kinds import KINDS
from protocol.messages import Channel, Reversal, ShiftHandover, Void

# Undoing kinds: listed as the slip's voids, not among its kinds.
UNDO_KINDS = frozenset({Void.TYPE, Reversal.TYPE})
SALE_KINDS = frozenset(kind.type for kind in KINDS.values() if kind.is_sale)
CASH_ACCOUNT = f"channel:{Channel.CASH.value}"
# Tenders in the order a slip lists them: the drawer and providers first, then the visitors' cards.
CARD_TENDER, BONUS_TENDER = "card", "bonus"
TENDER_ORDER = tuple(channel.value for channel in Channel) + (CARD_TENDER, BONUS_TENDER)


@dataclass(frozen=True)
class ShiftTotals:
    kinds: tuple[tuple[str, int, int], ...]    # (kind, transactions, amount fen), in the declarations' order
    tenders: tuple[tuple[str, int, int], ...]  # (tender, transactions, fen: + in, - out)
    voids_count: int
    voids_fen: int                             # what the voids and reversals gave back
    refunds_count: int
    refunds_fen: int                           # money paid out through a channel (returns, rental refunds)
    cash_expected_fen: int                     # cash the drawer should hold from this shift
    transactions: int


def read_shift_totals(db, park_id: str, terminal_id: str, after_seq: int, before_seq: int, *,
                      booked_before_txn: int | None = None) -> ShiftTotals:
    """The totals of ``terminal_id``'s transactions with ``after_seq < seq < before_seq`` (the
    handover itself left out); ``booked_before_txn``: only those booked before that transaction,
    i.e. the shift as its slip saw it, leaving out what arrived after the handover."""
    sql = """SELECT t.txn_id, t.kind, t.amount_fen, p.account_id, p.asset, p.amount
               FROM txn t LEFT JOIN posting p ON p.txn_id = t.txn_id
              WHERE t.park_id = ? AND t.terminal_id = ? AND t.seq > ? AND t.seq < ? AND t.kind <> ?"""
    params = [park_id, terminal_id, after_seq, before_seq, ShiftHandover.TYPE]
    if booked_before_txn is not None:
        sql += " AND t.txn_id < ?"
        params.append(booked_before_txn)
    return add_up(db.execute(sql, params).fetchall())


def add_up(rows) -> ShiftTotals:
    """The totals of (txn id, kind, amount fen, account, asset, amount) rows, one per posting (a
    transaction without postings comes once with None for the last three). Pure."""
    txns: dict[int, tuple[str, int]] = {}
    tender_fen: dict[str, int] = defaultdict(int)
    tender_txns: dict[str, set] = defaultdict(set)
    refunds: dict[int, int] = defaultdict(int)
    cash_in_fen = 0
    for txn_id, kind, amount_fen, account, asset, amount in rows:
        txns[txn_id] = (kind, amount_fen)
        if account is None:
            continue
        tender = None
        if account.startswith("channel:") and asset == "fen":
            tender = account[len("channel:"):]
            if account == CASH_ACCOUNT:
                cash_in_fen -= amount
            if amount > 0 and kind not in UNDO_KINDS:
                refunds[txn_id] += amount
        elif account.startswith("card:") and (kind in SALE_KINDS or kind == Void.TYPE) and asset in ("fen", "bonus"):
            tender = CARD_TENDER if asset == "fen" else BONUS_TENDER
        if tender is not None:
            tender_fen[tender] -= amount  # the park's side: money into a drawer posts negative there
            tender_txns[tender].add(txn_id)
    by_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    voids = [0, 0]
    for kind, amount_fen in txns.values():
        totals = voids if kind in UNDO_KINDS else by_kind[kind]
        totals[0] += 1
        totals[1] += amount_fen
    kind_order = {name: index for index, name in enumerate(KINDS)}
    tender_order = {name: index for index, name in enumerate(TENDER_ORDER)}
    return ShiftTotals(
        kinds=tuple((kind, count, fen) for kind, (count, fen) in
                    sorted(by_kind.items(), key=lambda item: (kind_order.get(item[0], len(kind_order)), item[0]))),
        tenders=tuple((tender, len(tender_txns[tender]), tender_fen[tender]) for tender in
                      sorted(tender_fen, key=lambda name: (tender_order.get(name, len(tender_order)), name))),
        voids_count=voids[0], voids_fen=voids[1],
        refunds_count=len(refunds), refunds_fen=sum(refunds.values()),
        cash_expected_fen=cash_in_fen,
        transactions=len(txns),
    )


def cash_float_of(db, park_id: str, station_id: str) -> int:
    """The opening float (备用金) a till of ``station_id`` starts each shift with, in fen: set per
    station by the park (``fieldpos station set --cash-float-fen``), never typed by the cashier, who could
    otherwise hide a shortfall in a larger float. 0 for a station without one."""
    row = db.execute("SELECT cash_float_fen FROM station_cash_float WHERE park_id = ? AND station_id = ?",
                     (park_id, station_id)).fetchone()
    return 0 if row is None else row[0]
