"""``fieldpos report offline``: what selling without the ledger has cost, and could cost.

Per terminal: sales approved offline and their total, overdrafts they caused, cards blocked for it,
and from its last heartbeat the queue it still holds and the age of its oldest unsent sale. Per
card: offline volume and how far below zero it went. And the worst case the policy allows: a
per-card cap applies per terminal, so one card (or a clone of it) can spend the cap on every
station terminal that is offline at the same time.
"""

from dataclasses import dataclass

from protocol.money import format_fen

from ..broadcasts import offline_policy
from ..store import Store


@dataclass(frozen=True)
class OfflineExposure:
    terminals: list      # (terminal, sales, fen, overdrafts, queue depth, oldest queued ms, online?)
    cards: list          # (card account, offline sales, fen, balance fen, state)
    blocked_for_overdraft: int
    offline_loss_fen: int
    worst_case_card_fen: int
    worst_case_park_fen: int
    station_terminals: int
    policy: object
    # Rental vouchers redeemed more than once (offline, on two terminals): (order, [(terminal, ms, item)])
    twice_redeemed: tuple = ()


def offline_exposure(store: Store, park_id: str) -> OfflineExposure:
    db = store.db
    policy = offline_policy(store, park_id)
    terminals = db.execute(
        """SELECT t.terminal_id,
                  (SELECT COUNT(*) FROM txn x WHERE x.terminal_id = t.terminal_id AND x.kind = 'offline_charge'),
                  (SELECT COALESCE(SUM(amount_fen), 0) FROM txn x WHERE x.terminal_id = t.terminal_id AND x.kind = 'offline_charge'),
                  (SELECT COUNT(*) FROM alert a WHERE a.kind = 'OFFLINE_OVERDRAFT' AND a.detail LIKE '%offline sale ' || t.terminal_id || '/%'),
                  s.queue_depth, s.oldest_queued_ms, s.is_online
           FROM terminal t LEFT JOIN terminal_status s USING (terminal_id)
           WHERE t.park_id = ? ORDER BY t.terminal_id""",
        (park_id,),
    ).fetchall()
    cards = db.execute(
        """SELECT x.card_account, COUNT(*), SUM(x.amount_fen), COALESCE(b.fen, 0),
                  (SELECT state FROM card c WHERE 'card:' || c.card_no || '/' || c.issuance = x.card_account AND c.park_id = x.park_id)
           FROM txn x LEFT JOIN card_balance b ON b.park_id = x.park_id AND b.account_id = x.card_account
           WHERE x.park_id = ? AND x.kind = 'offline_charge'
           GROUP BY x.park_id, x.card_account, b.fen ORDER BY COALESCE(b.fen, 0), x.card_account""",
        (park_id,),
    ).fetchall()
    blocked = db.execute(
        "SELECT COUNT(DISTINCT card_no || '/' || issuance) FROM blocklist_change WHERE park_id=? AND reason='OFFLINE_OVERDRAFT'",
        (park_id,),
    ).fetchone()[0]
    loss = db.execute(
        "SELECT COALESCE(SUM(amount), 0) FROM posting WHERE park_id=? AND account_id='offline_loss' AND asset='fen'", (park_id,)
    ).fetchone()[0]
    stations = db.execute(
        "SELECT COUNT(*) FROM terminal WHERE park_id=? AND ',' || allowed_kinds || ',' LIKE '%,offline_charge,%' AND revoked_from_seq IS NULL",
        (park_id,),
    ).fetchone()[0]
    return OfflineExposure(
        terminals=terminals, cards=cards, blocked_for_overdraft=blocked, offline_loss_fen=-loss,
        worst_case_card_fen=policy.max_card_fen * stations, worst_case_park_fen=policy.max_terminal_fen * stations,
        station_terminals=stations, policy=policy, twice_redeemed=tuple(store.twice_redeemed_vouchers(park_id)),
    )


def _yuan(fen) -> str:
    return format_fen(fen or 0, grouped=True)  # an empty SUM is None: nothing, 0.00


def format_offline_exposure(report: OfflineExposure, now_ms: int) -> str:
    policy = report.policy
    lines = [
        "Offline exposure",
        f"  policy: {_yuan(policy.max_transaction_fen)} a sale, {_yuan(policy.max_card_fen)} per card per terminal, "
        f"{_yuan(policy.max_terminal_fen)} and {policy.max_count} sales per terminal, {policy.max_offline_ms // 3_600_000} h offline",
        f"  worst case per card: {_yuan(policy.max_card_fen)} x {report.station_terminals} terminals that can sell offline "
        f"= {_yuan(report.worst_case_card_fen)}; whole park: {_yuan(report.worst_case_park_fen)}",
        f"  cards blocked for an offline overdraft: {report.blocked_for_overdraft}; "
        f"booked to offline_loss (refunded or unknown cards): {_yuan(report.offline_loss_fen)}",
        "",
        f"  {'terminal':<12} {'offline sales':>13} {'amount':>12} {'overdrafts':>10} {'queued':>7} {'oldest queued':>14} {'status':>8}",
    ]
    for terminal, sales, fen, overdrafts, depth, oldest_ms, is_online in report.terminals:
        age = "-" if oldest_ms is None else f"{max(0, now_ms - oldest_ms) // 60_000} min"
        status = "?" if is_online is None else ("online" if is_online else "OFFLINE")
        lines.append(f"  {terminal:<12} {sales:>13} {_yuan(fen):>12} {overdrafts:>10} {depth if depth is not None else '-':>7} "
                     f"{age:>14} {status:>8}")
    lines += ["", f"  {'card':<22} {'offline sales':>13} {'amount':>12} {'balance':>12} {'state':>9}"]
    for account, sales, fen, balance, state in report.cards:
        lines.append(f"  {account:<22} {sales:>13} {_yuan(fen):>12} {_yuan(balance):>12} {state or '?':>9}")
    if not report.cards:
        lines.append("  (no offline sales)")
    if report.twice_redeemed:
        lines += ["", "  rental vouchers redeemed more than once (the visitor has each item; the deposit covers one):"]
        for order, redemptions in report.twice_redeemed:
            first_ms = redemptions[0][1]
            lines.append(f"  {order}: " + "; ".join(f"{terminal} {item} +{(ms - first_ms) // 60_000} min"
                                                     for terminal, ms, item in redemptions))
    return "\n".join(lines)
