"""Member notices (总后台消息通知, issue 14 item 8): an admin sends one text to the park's members —
all of them, those of one card type, or those who bought at one station — through the notification
outbox the booking notices use (``ledger.notify`` sends both), honouring each member's opt-out.

One outbox row per phone, not per card: a member whose card was replaced has two member rows (the
lost card's and the new one's) and is one person with one phone. The opt-out is kept by phone for
the same reason, so it survives a card replacement; it covers these notices only — a member is
still told of every booking on their card (a charge, a void), which is a safeguard, not marketing.

Sending writes the notice and its outbox rows in one transaction: the outbox rows are exactly the
audience less those who opted out, and the notice records both counts.
"""

from dataclasses import dataclass
import json

from .errors import LedgerError
from .reports.query import Period
from .store import Store

# A notice is an SMS or a WeChat template message: 300 characters is five Chinese SMS parts.
MAX_NOTICE_CHARS = 300
CARD_TYPES = ("member", "ecard")    # a member card of plastic, or an e-card opened on the phone
AUDIENCES = ("all", "card-type", "visited")
# Sales that put a member at a station (charges, online and offline): what "visited" means.
_VISIT_KINDS = ("charge", "offline_charge")


class NoticeRefused(LedgerError):
    """A notice could not be sent as asked; nothing was queued."""

    code = "NOTICE_REFUSED"


class NoSuchMember(NoticeRefused, LookupError):
    """No member card of that number (or no member with that phone)."""

    code = "NOT_FOUND"


@dataclass(frozen=True)
class Audience:
    """Who a notice goes to: every member, the members of one card type, or the members who bought
    at ``station`` (within ``period`` when given)."""

    kind: str = "all"
    card_type: str | None = None
    station: str | None = None
    period: Period | None = None

    def __post_init__(self):
        if self.kind not in AUDIENCES:
            raise NoticeRefused(f"send to one of {', '.join(AUDIENCES)}, not {self.kind!r}")
        if (self.kind == "card-type") != (self.card_type is not None) or (
                self.card_type is not None and self.card_type not in CARD_TYPES):
            raise NoticeRefused(f"a card type is one of {', '.join(CARD_TYPES)}, given only to send by card type")
        if (self.kind == "visited") != (self.station is not None):
            raise NoticeRefused("a station is given only to send to the members who bought there")
        if self.period is not None and self.kind != "visited":
            raise NoticeRefused("a period is given only with a station")

    def __str__(self) -> str:
        if self.kind == "card-type":
            return f"card type {self.card_type}"
        if self.kind == "visited":
            return f"visited {self.station}" + (f" {self.period}" if self.period is not None else "")
        return "all members"

    def as_json(self) -> str:
        found = {"kind": self.kind, "card_type": self.card_type, "station": self.station,
                 "from": self.period.first if self.period else None, "to": self.period.last if self.period else None}
        return json.dumps({key: value for key, value in found.items() if value is not None}, sort_keys=True)


@dataclass(frozen=True, slots=True)
class NoticeSent:
    notice_id: int
    recipients: int       # outbox rows written: the audience's phones less those opted out
    opted_out: int        # the audience's phones that want no notices
    is_new: bool = True   # False: the console form was sent twice, this is the first sending


def audience_phones(db, park_id: str, audience: Audience) -> dict[str, str]:
    """phone -> a member card number of that phone, for every member in ``audience`` (before the
    opt-out). Members whose only cards were returned are nobody's audience."""
    where, params = ["m.park_id = ?"], [park_id]
    if audience.kind == "card-type":
        # An e-card is a member card with its phone's device key on record (table ecard).
        where.append(("" if audience.card_type == "ecard" else "NOT ") +
                     "EXISTS (SELECT 1 FROM ecard e WHERE e.park_id = m.park_id AND e.card_no = m.card_no)")
    if audience.kind == "visited":
        stations = {row[0] for row in db.execute("SELECT station_id FROM station WHERE park_id = ?", (park_id,))}
        if audience.station not in stations:
            raise NoticeRefused(f"no station {audience.station!r} in park {park_id} (stations: {', '.join(sorted(stations))})")
        days = "" if audience.period is None else "AND t.business_day BETWEEN ? AND ?"
        where.append(f"""m.card_no IN (SELECT substr(t.card_account, 6, instr(t.card_account, '/') - 6) FROM txn t
                                        WHERE t.park_id = ? AND t.station_id = ? {days}
                                          AND t.kind IN ({', '.join('?' * len(_VISIT_KINDS))})
                                          AND t.card_account IS NOT NULL)""")
        params += [park_id, audience.station]
        params += [audience.period.first, audience.period.last] if audience.period is not None else []
        params += list(_VISIT_KINDS)
    rows = db.execute(
        f"""SELECT m.phone, MIN(m.card_no) FROM member m
             WHERE {' AND '.join(where)}
               AND EXISTS (SELECT 1 FROM card c WHERE c.park_id = m.park_id AND c.card_no = m.card_no
                             AND c.state <> 'returned')
             GROUP BY m.phone ORDER BY m.phone""", params).fetchall()
    return dict(rows)


def opted_out_phones(db, park_id: str) -> set[str]:
    return {row[0] for row in db.execute("SELECT phone FROM notice_opt_out WHERE park_id = ?", (park_id,))}


def send_notice(store: Store, *, text: str, audience: Audience, sent_by: str, now_ms: int,
                request_key: str | None = None) -> NoticeSent:
    """Queue ``text`` for every member in ``audience`` who has not opted out: the notice and its
    outbox rows in one transaction. A ``request_key`` seen before returns that first sending."""
    text = " ".join(text.split())  # one paragraph: an SMS has no layout
    if not text or len(text) > MAX_NOTICE_CHARS or not text.isprintable():
        raise NoticeRefused(f"a notice is 1 to {MAX_NOTICE_CHARS} printable characters, not {len(text)}")
    if not sent_by:
        raise NoticeRefused("a notice names who sent it")
    with store.batch():
        park_id, park_name = store.db.execute("SELECT park_id, name FROM park ORDER BY park_id LIMIT 1").fetchone()
        if request_key is not None:
            first = store.db.execute("SELECT notice_id, recipients, opted_out FROM member_notice WHERE request_key = ?",
                                     (request_key,)).fetchone()
            if first is not None:
                return NoticeSent(*first, is_new=False)
        phones = audience_phones(store.db, park_id, audience)
        refusing = opted_out_phones(store.db, park_id)
        recipients = {phone: card_no for phone, card_no in phones.items() if phone not in refusing}
        notice_id = store.db.execute("SELECT COALESCE(MAX(notice_id), 0) + 1 FROM member_notice WHERE park_id = ?",
                                     (park_id,)).fetchone()[0]
        store.db.execute(
            """INSERT INTO member_notice (park_id, notice_id, text, audience, sent_by, created_ms, recipients, opted_out,
                   request_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (park_id, notice_id, text, audience.as_json(), sent_by, now_ms, len(recipients),
             len(phones) - len(recipients), request_key))
        body = json.dumps({"kind": "notice", "notice_id": notice_id, "park": park_name, "text": text},
                          ensure_ascii=False, sort_keys=True)
        store.db.executemany(
            "INSERT INTO notification (park_id, card_no, phone, notice_id, body, created_ms) VALUES (?, ?, ?, ?, ?, ?)",
            [(park_id, card_no, phone, notice_id, body, now_ms) for phone, card_no in recipients.items()])
    return NoticeSent(notice_id, len(recipients), len(phones) - len(recipients))


def member_phone(db, park_id: str, card_no: str) -> str:
    row = db.execute("SELECT phone FROM member WHERE park_id = ? AND card_no = ?", (park_id, card_no)).fetchone()
    if row is None:
        raise NoSuchMember(f"no member card {card_no!r} in park {park_id}")
    return row[0]


def set_wants_notices(store: Store, *, phone: str, wants: bool, now_ms: int) -> bool:
    """A member's choice, kept by phone. Returns whether it changed anything. Opting out also takes
    back the notices queued for that phone and not sent yet (a gateway that was down for a while
    must not deliver them after the member said no)."""
    with store.batch():
        park_id = store.db.execute("SELECT park_id FROM park ORDER BY park_id LIMIT 1").fetchone()[0]
        if store.db.execute("SELECT 1 FROM member WHERE park_id = ? AND phone = ?", (park_id, phone)).fetchone() is None:
            raise NoSuchMember(f"no member with phone {phone!r} in park {park_id}")
        if wants:
            return store.db.execute("DELETE FROM notice_opt_out WHERE park_id = ? AND phone = ?",
                                    (park_id, phone)).rowcount == 1
        store.db.execute("DELETE FROM notification WHERE park_id = ? AND phone = ? AND notice_id IS NOT NULL "
                         "AND sent_ms IS NULL", (park_id, phone))
        return store.db.execute("INSERT OR IGNORE INTO notice_opt_out VALUES (?, ?, ?)",
                                (park_id, phone, now_ms)).rowcount == 1


def wants_notices(db, park_id: str, phone: str) -> bool:
    return db.execute("SELECT 1 FROM notice_opt_out WHERE park_id = ? AND phone = ?", (park_id, phone)).fetchone() is None


def sent_notices(db, park_id: str, limit: int = 50) -> list[tuple]:
    """(notice id, created ms, sent by, audience JSON, recipients, opted out, text), newest first."""
    return db.execute(
        """SELECT notice_id, created_ms, sent_by, audience, recipients, opted_out, text FROM member_notice
            WHERE park_id = ? ORDER BY notice_id DESC LIMIT ?""", (park_id, limit)).fetchall()
