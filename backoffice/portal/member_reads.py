"""What a member sees of their own cards: cards on their phone with balances, a card's history, and
one day's activities for the visit record. Read from the ledger's database; money is integer fen."""

from dataclasses import dataclass
import sqlite3

from protocol.money import card_account

HISTORY_ROWS = 50
# What a member did, by the kind of transaction (kinds that are not an activity are left out).
ACTIVITY_KINDS = ("charge", "offline_charge", "rental_out", "offline_rental_out")


@dataclass(frozen=True)
class MemberCard:
    card_no: str
    issuance: int
    uid: str
    name: str
    state: str       # active, lost, blocked, returned
    fen: int
    bonus_fen: int
    points: int

    @property
    def is_ecard(self) -> bool:
        return self.card_no.startswith("E")


@dataclass(frozen=True)
class HistoryLine:
    time_ms: int
    kind: str
    station: str
    amount_fen: int  # the card's change in real money: negative for a sale


@dataclass(frozen=True)
class Activity:
    time_ms: int
    station_name: str
    amount_fen: int


def member_cards(store, park_id: str, phone: str) -> list[MemberCard]:
    return [MemberCard(*row) for row in store.member_cards_by_phone(park_id, phone, 20)]


def history(db: sqlite3.Connection, park_id: str, card: MemberCard) -> list[HistoryLine]:
    account = card_account(card.card_no, card.issuance)
    rows = db.execute(
        """SELECT t.ledger_time_ms, t.kind, COALESCE(s.name, t.station_id),
                  COALESCE((SELECT SUM(p.amount) FROM posting p
                            WHERE p.txn_id = t.txn_id AND p.account_id = ? AND p.asset = 'fen'), 0)
           FROM txn t LEFT JOIN station s ON s.park_id = t.park_id AND s.station_id = t.station_id
           WHERE t.park_id = ? AND t.card_account = ? ORDER BY t.txn_id DESC LIMIT ?""",
        (account, park_id, account, HISTORY_ROWS)).fetchall()
    return [HistoryLine(*row) for row in rows]


def day_activities(db: sqlite3.Connection, park_id: str, card_no: str, business_day: str) -> list[Activity]:
    """The member's sales on ``business_day`` across every issuance of ``card_no``, oldest first,
    each with its station's name; a voided sale is left out."""
    rows = db.execute(
        f"""SELECT t.ledger_time_ms, COALESCE(s.name, t.station_id), t.amount_fen
            FROM txn t LEFT JOIN station s ON s.park_id = t.park_id AND s.station_id = t.station_id
            WHERE t.park_id = ? AND t.business_day = ? AND t.card_account GLOB ?
              AND t.kind IN ({", ".join("?" * len(ACTIVITY_KINDS))})
              AND NOT EXISTS (SELECT 1 FROM txn v WHERE v.voids_txn = t.txn_id)
            ORDER BY t.ledger_time_ms""",
        (park_id, business_day, f"card:{card_no}/*", *ACTIVITY_KINDS)).fetchall()
    return [Activity(*row) for row in rows]


def park_name(db: sqlite3.Connection, park_id: str) -> str:
    row = db.execute("SELECT name FROM park WHERE park_id = ?", (park_id,)).fetchone()
    return row[0] if row else park_id
