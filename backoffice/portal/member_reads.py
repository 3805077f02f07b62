"""What a member sees of their own cards: cards on their phone with balances, a card's history, and
one day's activities for the visit record. Read from the ledger's database; money is integer fen."""

from dataclasses import dataclass, replace
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
    bound_to: str = ""  # the e-card a physical card is bound to (ledger.online_members.bind_card)

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
    """The member cards on ``phone``, and the physical cards bound to its e-cards (which may be on
    another number: a card bought for the family), each naming the e-card it is bound to."""
    from ledger.online_members import bound_cards

    own = [MemberCard(*row) for row in store.member_cards_by_phone(park_id, phone, 20)]
    numbers = {card.card_no for card in own}
    bindings = bound_cards(store, park_id, [card.card_no for card in own if card.is_ecard])
    cards = [replace(card, bound_to=bindings[card.card_no]) if card.card_no in bindings else card for card in own]
    for card_no, ecard_no in bindings.items():
        member = store.member(park_id, card_no)
        if card_no in numbers or member is None:
            continue
        cards += [replace(MemberCard(*row), bound_to=ecard_no)
                  for row in store.member_cards_by_phone(park_id, member.phone, 20) if row[0] == card_no]
    return cards


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
