"""The park's administration: every change an operator makes to how the park runs, the one path the
``fieldpos`` command and the console's administration pages both call.

Each change returns a :class:`Change` saying what it was before and after, which the caller writes
to its audit log (the console's, with the user who asked). Changes to what the tills' signed config
carries (station names, menus, modes, hours, the staff directory) are counted with
``note_config_change`` in the same transaction, so the serving ledger re-publishes every config on
its next turn; a card blocked or unblocked here is a blocklist change, which it sends as a delta.
Money moves only through the decision path: a balance adjustment is a pure rule's Decision booked by
``Store.apply``, after a second person approved it.

The few writes that have no Store method (a station's operator, a bonus tier removed, campaigns,
adjustment requests, a staff PIN) are written here through the store's connection, inside its batch.
"""

from dataclasses import asdict, dataclass
from datetime import date
import re
import time

from protocol.limits import MAX_AMOUNT_FEN, MAX_TEXT_CHARS
from protocol.messages import CardState
from protocol.money import card_account
from protocol.topics import check_id

from .errors import LedgerError, NotFound
from .park_home import ParkHome
from .rules.adjustments import ADJUSTMENT_KIND, COUNTER_ACCOUNTS, decide_adjustment
from .rules.campaigns import CAMPAIGN_KINDS, MAX_MULTIPLIER_PCT, NO_MULTIPLIER_PCT
from .shift_totals import cash_float_of
from .station_settings import SettingRefused
from .store import CardLimits, NewTxn

CARD_KINDS = ("temporary", "member")
# Why an operator blocked a card, as the blocklist records it; only these and a lost card are
# unblocked here (a card offline sales overdrew is settled by a top-up, never by an operator).
ADMIN_BLOCK_REASON = "ADMIN"
UNBLOCKABLE_REASONS = ("ADMIN", "LOST")
MAX_REASON_CHARS = 200
PENDING, BOOKED, REJECTED = "pending", "booked", "rejected"


class AdjustmentRefused(LedgerError):
    """A balance adjustment that cannot be asked for, approved or booked (the code says why)."""

    code = "ADJUSTMENT_REFUSED"


@dataclass(frozen=True)
class Change:
    """One administration change, for the audit log: what, on what, and the facts before and after."""

    action: str
    target: str
    before: dict | None
    after: dict | None


@dataclass(frozen=True)
class Adjustment:
    adjustment_id: int
    card_account: str
    asset: str
    amount: int
    reason: str
    requested_by: str
    requested_ms: int
    state: str
    decided_by: str | None
    decided_ms: int | None
    txn_id: int | None


def _now_ms() -> int:
    return int(time.time() * 1000)


def _text(value: str, what: str, *, max_chars: int = MAX_TEXT_CHARS) -> str:
    value = (value or "").strip()
    if not value or len(value) > max_chars or not value.isprintable():
        raise SettingRefused(f"{what} must be 1-{max_chars} printable characters; nothing changed")
    return value


def _amount(value: int, what: str, *, low: int = 1) -> int:
    if type(value) is not int or not low <= value <= MAX_AMOUNT_FEN:
        raise SettingRefused(f"{what} must be a whole number of fen from {low} to {MAX_AMOUNT_FEN}; nothing changed")
    return value


class ParkAdmin:
    """The administration of the park whose home is ``home``. Each method opens the store for the
    one change and closes it: the caller may be a web server thread or a one-off command."""

    def __init__(self, home: ParkHome):
        self.home = home
        self.park_id = home.park_id()

    def _store(self):
        return self.home.open_store()

    # ------------------------------------------------------------ stations
    def stations(self) -> list[dict]:
        store = self._store()
        try:
            rows = store.db.execute("SELECT station_id, name, contractor_id, commission_bp FROM station WHERE park_id=? "
                                    "ORDER BY station_id", (self.park_id,)).fetchall()
            return [{"station": s, "name": n, "contractor": c, "commission_bp": bp,
                     "cash_float_fen": cash_float_of(store.db, self.park_id, s),
                     "settings": store.station_settings(self.park_id, s)} for s, n, c, bp in rows]
        finally:
            store.close()

    def _station_facts(self, store, station_id) -> dict | None:
        row = store.db.execute("SELECT name, contractor_id, commission_bp FROM station WHERE park_id=? AND station_id=?",
                               (self.park_id, station_id)).fetchone()
        return None if row is None else {"name": row[0], "contractor": row[1], "commission_bp": row[2],
                                         "cash_float_fen": cash_float_of(store.db, self.park_id, station_id)}

    @staticmethod
    def _operator(contractor_id: str | None, commission_bp: int) -> tuple[str | None, int]:
        contractor_id = (contractor_id or "").strip() or None
        if contractor_id is not None:
            check_id(contractor_id, "contractor")
        if type(commission_bp) is not int or not 0 <= commission_bp <= 10_000:
            raise SettingRefused("a commission is 0 to 10000 basis points (1500 = 15 %); nothing changed")
        if contractor_id is None and commission_bp:
            raise SettingRefused("the park's own station keeps all its takings: a commission needs a contractor")
        return contractor_id, commission_bp

    def add_station(self, station_id: str, name: str, *, contractor_id: str | None = None, commission_bp: int = 0) -> Change:
        check_id(station_id, "station")
        name = _text(name, "a station's name")
        contractor_id, commission_bp = self._operator(contractor_id, commission_bp)
        store = self._store()
        try:
            store.add_station(self.park_id, station_id, name, contractor_id=contractor_id, commission_bp=commission_bp)
            return Change("station.add", station_id, None, self._station_facts(store, station_id))
        finally:
            store.close()

    def set_station(self, station_id: str, *, name: str, contractor_id: str | None, commission_bp: int,
                    cash_float_fen: int | None = None) -> Change:
        """Rename a station, or hand it to a contractor (or back to the park) with a commission. Sales
        already booked keep their postings; the next sale credits the new operator. ``cash_float_fen``
        (None: unchanged): the opening float its cash tills start each shift with; a shift handed over
        from then on expects it in the drawer, those handed over before keep what they expected."""
        name = _text(name, "a station's name")
        contractor_id, commission_bp = self._operator(contractor_id, commission_bp)
        if cash_float_fen is not None:
            _amount(cash_float_fen, "an opening float", low=0)
        store = self._store()
        try:
            before = self._station_facts(store, station_id)
            if before is None:
                raise NotFound(f"no station {station_id} in park {self.park_id}")
            with store.batch():
                store.db.execute("UPDATE station SET name=?, contractor_id=?, commission_bp=? WHERE park_id=? AND station_id=?",
                                 (name, contractor_id, commission_bp, self.park_id, station_id))
                if cash_float_fen is not None:
                    store.db.execute("INSERT OR REPLACE INTO station_cash_float (park_id, station_id, cash_float_fen) "
                                     "VALUES (?, ?, ?)", (self.park_id, station_id, cash_float_fen))
                store.note_config_change(self.park_id)  # the till shows and prints the station's name
            return Change("station.set", station_id, before, self._station_facts(store, station_id))
        finally:
            store.close()

    def change_station_sales(self, station_id: str, change, action: str) -> Change:
        """Menu, mode or hours, through ``ParkHome.change_station`` and ``ledger.station_settings``
        (as ``fieldpos station menu|mode|hours``)."""
        before = self.home.station_settings(station_id)
        after = self.home.change_station(station_id, change)
        return Change(action, station_id, _settings_facts(before), _settings_facts(after))

    # ------------------------------------------------------------ card types, bonus tiers, campaigns
    def card_limits(self) -> dict[str, CardLimits]:
        store = self._store()
        try:
            return {kind: store.card_limits(self.park_id, kind) for kind in CARD_KINDS}
        finally:
            store.close()

    def set_card_limits(self, kind: str, limits: CardLimits) -> Change:
        if kind not in CARD_KINDS:
            raise SettingRefused(f"a card type is one of {', '.join(CARD_KINDS)}, not {kind!r}")
        for field, value in asdict(limits).items():
            _amount(value, field)
        if not limits.min_topup_fen <= limits.max_topup_fen <= limits.max_balance_fen:
            raise SettingRefused("the smallest top-up must not be above the largest, nor the largest above the "
                                 "balance cap; nothing changed")
        store = self._store()
        try:
            before = asdict(store.card_limits(self.park_id, kind))
            store.set_card_limits(self.park_id, kind, limits)
            return Change("card_type.limits", kind, before, asdict(store.card_limits(self.park_id, kind)))
        finally:
            store.close()

    def bonus_tiers(self) -> list[tuple[int, int]]:
        store = self._store()
        try:
            return [tuple(row) for row in store.bonus_rules(self.park_id)]
        finally:
            store.close()

    def set_bonus_tier(self, min_topup_fen: int, bonus_fen: int) -> Change:
        """"Top up ``min_topup_fen``, get ``bonus_fen``": a new tier, or a new bonus for that tier."""
        _amount(min_topup_fen, "a tier's top-up")
        _amount(bonus_fen, "a tier's bonus", low=0)
        store = self._store()
        try:
            before = dict(store.bonus_rules(self.park_id)).get(min_topup_fen)
            store.add_bonus_rule(self.park_id, min_topup_fen, bonus_fen)
            return Change("bonus_tier.set", str(min_topup_fen), None if before is None else {"bonus_fen": before},
                          {"bonus_fen": bonus_fen})
        finally:
            store.close()

    def remove_bonus_tier(self, min_topup_fen: int) -> Change:
        store = self._store()
        try:
            with store.batch():
                row = store.db.execute("DELETE FROM bonus_rule WHERE park_id=? AND min_topup_fen=? RETURNING bonus_fen",
                                       (self.park_id, min_topup_fen)).fetchone()
                if row is None:
                    raise NotFound(f"no bonus tier for a top-up of {min_topup_fen} fen")
            return Change("bonus_tier.remove", str(min_topup_fen), {"bonus_fen": row[0]}, None)
        finally:
            store.close()

    def campaigns(self) -> list:
        store = self._store()
        try:
            return store.campaigns(self.park_id)
        finally:
            store.close()

    def add_campaign(self, campaign_id: str, name: str, kind: str, multiplier_pct: int, first_day: str,
                     last_day: str) -> Change:
        """A campaign from ``first_day`` to ``last_day`` (business days, both included): members' top-up
        bonus (kind "bonus") or earned points ("points") times ``multiplier_pct`` percent."""
        check_id(campaign_id, "campaign")
        name = _text(name, "a campaign's name")
        if kind not in CAMPAIGN_KINDS:
            raise SettingRefused(f"a campaign multiplies {' or '.join(CAMPAIGN_KINDS)}, not {kind!r}")
        if type(multiplier_pct) is not int or not NO_MULTIPLIER_PCT < multiplier_pct <= MAX_MULTIPLIER_PCT:
            raise SettingRefused(f"a campaign's multiplier is {NO_MULTIPLIER_PCT + 1}-{MAX_MULTIPLIER_PCT} percent "
                                 f"(200 = twice); nothing changed")
        for day in (first_day, last_day):
            try:
                date.fromisoformat(day)
            except (TypeError, ValueError):
                raise SettingRefused(f"a campaign's days are YYYY-MM-DD, not {day!r}; nothing changed") from None
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):  # fromisoformat takes other forms the SQL order would not
                raise SettingRefused(f"a campaign's days are YYYY-MM-DD, not {day!r}; nothing changed")
        if last_day < first_day:
            raise SettingRefused(f"a campaign ends on or after it starts ({first_day} to {last_day}); nothing changed")
        store = self._store()
        try:
            with store._adding(f"campaign {campaign_id}"):
                store.db.execute("INSERT INTO campaign (park_id, campaign_id, name, kind, multiplier_pct, first_day, "
                                 "last_day, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                 (self.park_id, campaign_id, name, kind, multiplier_pct, first_day, last_day, _now_ms()))
            return Change("campaign.add", campaign_id, None, {"name": name, "kind": kind, "multiplier_pct": multiplier_pct,
                                                                 "first_day": first_day, "last_day": last_day})
        finally:
            store.close()

    def end_campaign(self, campaign_id: str) -> Change:
        """End a campaign now (kept for the record: what it gave stays explained)."""
        store = self._store()
        try:
            with store.batch():
                row = store.db.execute("UPDATE campaign SET is_ended = 1 WHERE park_id=? AND campaign_id=? AND NOT is_ended "
                                       "RETURNING campaign_id", (self.park_id, campaign_id)).fetchone()
                if row is None:
                    raise NotFound(f"no running campaign {campaign_id}")
            return Change("campaign.end", campaign_id, {"is_ended": False}, {"is_ended": True})
        finally:
            store.close()

    # ------------------------------------------------------------ offline policy
    def offline_policy(self) -> dict:
        """What a till may approve on its own while the ledger is out of reach (the park's, or the
        defaults every park starts with)."""
        from .broadcasts import DEFAULT_OFFLINE_POLICY

        store = self._store()
        try:
            return store.offline_policy(self.park_id) or dict(DEFAULT_OFFLINE_POLICY)
        finally:
            store.close()

    def set_offline_policy(self, **changes) -> Change:
        """Change some of the offline policy's caps; the policy travels in every till's signed config,
        so it is checked as the tills check it (protocol.messages.OfflinePolicy) and counted as a
        config change."""
        from protocol.errors import LocalProtocolError
        from protocol.messages import OfflinePolicy

        before = self.offline_policy()
        unknown = set(changes) - set(before)
        if unknown:
            raise SettingRefused(f"the offline policy has no {', '.join(sorted(unknown))}; nothing changed")
        after = before | changes
        try:
            OfflinePolicy(**after)
        except (LocalProtocolError, TypeError) as error:
            raise SettingRefused(f"offline policy: {error}; nothing changed") from None
        if after["max_transaction_fen"] > after["max_card_fen"] or after["max_card_fen"] > after["max_terminal_fen"]:
            raise SettingRefused("offline, one sale's cap must not be above a card's, nor a card's above the "
                                 "terminal's; nothing changed")
        store = self._store()
        try:
            with store.batch():  # the store's own batch joins this one: both or neither
                store.set_offline_policy(self.park_id, after)
                store.note_config_change(self.park_id)  # the policy is in every till's signed config
        finally:
            store.close()
        return Change("offline_policy.set", self.park_id, before, after)

    # ------------------------------------------------------------ staff
    def staff(self) -> list[dict]:
        store = self._store()
        try:
            rows = store.db.execute("SELECT staff_id, name, role, card_no, is_active, wrong_pins FROM staff "
                                    "WHERE park_id=? ORDER BY staff_id", (self.park_id,)).fetchall()
        finally:
            store.close()
        return [{"staff": s, "name": n, "role": r, "card_no": c, "is_active": bool(a), "wrong_pins": w}
                for s, n, r, c, a, w in rows]

    def _staff_facts(self, staff_id: str) -> dict:
        found = next((member for member in self.staff() if member["staff"] == staff_id), None)
        if found is None:
            raise NotFound(f"no staff member {staff_id} in park {self.park_id}")
        return {key: found[key] for key in ("name", "role", "card_no", "is_active", "wrong_pins")}

    def add_staff(self, staff_id: str, name: str, role: str, card_no: str, pin: str) -> Change:
        self.home.add_staff(staff_id, name, role, card_no, pin)
        return Change("staff.add", staff_id, None, self._staff_facts(staff_id))

    def change_staff(self, staff_id: str, *, name: str | None = None, role: str | None = None,
                     retire: bool = False) -> Change:
        before = self._staff_facts(staff_id)
        self.home.change_staff(staff_id, name=name, role=role, retire=retire)
        return Change("staff.retire" if retire else "staff.set", staff_id, before, self._staff_facts(staff_id))

    def reset_staff_pin(self, staff_id: str, pin: str) -> Change:
        """A new PIN (the staff member forgot theirs), which also unlocks it. The PIN is never logged."""
        from protocol.pin import check_pin

        from .pins import hash_pin

        before = self._staff_facts(staff_id)
        pin_hash = hash_pin(check_pin(pin), self.home.ledger_keys().pin_pepper)
        store = self._store()
        try:
            with store.batch():
                store.db.execute("UPDATE staff SET pin_hash=?, wrong_pins=0 WHERE park_id=? AND staff_id=?",
                                 (pin_hash, self.park_id, staff_id))
        finally:
            store.close()
        return Change("staff.pin_reset", staff_id, before, self._staff_facts(staff_id) | {"pin": "changed"})

    def unlock_staff_pin(self, staff_id: str) -> Change:
        """Three wrong PINs lock a staff card's login; this clears the count (the PIN stays)."""
        before = self._staff_facts(staff_id)
        store = self._store()
        try:
            with store.batch():
                store.set_wrong_pins(self.park_id, staff_id, 0)
        finally:
            store.close()
        return Change("staff.pin_unlock", staff_id, before, self._staff_facts(staff_id))

    # ------------------------------------------------------------ terminals
    def terminals(self) -> list[dict]:
        store = self._store()
        try:
            rows = store.db.execute(
                """SELECT t.terminal_id, t.station_id, t.revoked_from_seq, s.is_online, s.highest_seq, s.queue_depth,
                          s.received_ms FROM terminal t LEFT JOIN terminal_status s ON s.terminal_id = t.terminal_id
                   WHERE t.park_id=? ORDER BY t.terminal_id""", (self.park_id,)).fetchall()
        finally:
            store.close()
        return [{"terminal": t, "station": s, "is_retired": revoked is not None, "is_online": bool(online),
                 "highest_seq": seq, "queue_depth": queue, "last_seen_ms": seen}
                for t, s, revoked, online, seq, queue, seen in rows]

    def _refresh_broker(self) -> None:
        """Rewrite the broker's logins and ACL and make the park's running broker (one ``fieldpos
        broker-run`` started) re-read them, as ``fieldpos provision`` does: a new terminal can log in
        at once, a retired one is refused at once."""
        from transport.mosquitto_process import reload_running_broker

        if self.home.refresh_broker_logins():
            reload_running_broker(self.home.broker_dir)

    def provision_terminal(self, terminal_id: str, station_id: str, kinds_name: str, *, broker_host: str,
                           broker_port: int) -> tuple[Change, str]:
        """Register a terminal, as ``fieldpos provision``: (the change, the bundle's path)."""
        from .park_home import STATION_KINDS

        if kinds_name not in STATION_KINDS:
            raise SettingRefused(f"a terminal kind is one of {', '.join(STATION_KINDS)}, not {kinds_name!r}")
        path = self.home.provision_terminal(check_id(terminal_id, "terminal"), station_id, kinds=STATION_KINDS[kinds_name],
                                            broker_host=broker_host, broker_port=broker_port)
        self._refresh_broker()
        return Change("terminal.provision", terminal_id, None, {"station": station_id, "kinds": kinds_name}), str(path)

    def retire_terminal(self, terminal_id: str, *, is_stolen: bool = False) -> Change:
        from_seq = self.home.retire_terminal(terminal_id, is_stolen=is_stolen)
        self._refresh_broker()
        return Change("terminal.retire", terminal_id, {"is_retired": False},
                      {"is_retired": True, "refused_from_seq": from_seq, "stolen": is_stolen})

    # ------------------------------------------------------------ cards
    def _card(self, store, card_no: str):
        card = store.card(self.park_id, card_no)
        if card is None:
            raise NotFound(f"no card {card_no}")
        return card

    def find_cards(self, text: str, *, limit: int = 50) -> list[dict]:
        """The newest issuance of each card whose number starts with ``text``, or of the member cards
        opened with the phone number ``text``: number, issuance, kind, state, balances, member."""
        store = self._store()
        try:
            rows = store.db.execute(
                """SELECT c.card_no, c.issuance, c.kind, c.state, COALESCE(b.fen, 0), COALESCE(b.bonus, 0),
                          COALESCE(b.points, 0), m.name, m.phone
                     FROM card c
                     LEFT JOIN card_balance b ON b.park_id = c.park_id AND b.account_id = 'card:' || c.card_no || '/' || c.issuance
                     LEFT JOIN member m ON m.park_id = c.park_id AND m.card_no = c.card_no
                    WHERE c.park_id = :park AND (c.card_no LIKE :prefix ESCAPE '\\' OR m.phone = :text)
                      AND c.issuance = (SELECT MAX(issuance) FROM card WHERE park_id = c.park_id AND card_no = c.card_no)
                    ORDER BY c.card_no LIMIT :limit""",
                {"park": self.park_id, "text": text, "limit": limit,
                 "prefix": text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"}).fetchall()
        finally:
            store.close()
        keys = ("card_no", "issuance", "kind", "state", "fen", "bonus", "points", "member_name", "phone")
        return [dict(zip(keys, row)) for row in rows]

    def card_detail(self, card_no: str) -> dict:
        """The card's newest issuance as ``find_cards`` lists it, with why it is blocked (if it is)."""
        store = self._store()
        try:
            card = self._card(store, card_no)
            member = store.member(self.park_id, card_no)
            reason = store.block_reason(self.park_id, card.card_no, card.issuance) if card.state == CardState.BLOCKED else None
        finally:
            store.close()
        return {"card_no": card.card_no, "issuance": card.issuance, "kind": card.kind, "state": card.state,
                "fen": card.fen, "bonus": card.bonus, "points": card.points, "block_reason": reason,
                "member_name": None if member is None else member.name, "phone": None if member is None else member.phone,
                "account": card_account(card.card_no, card.issuance)}

    def block_card(self, card_no: str, *, now_ms: int | None = None) -> Change:
        """Block the card's current issuance everywhere (a blocklist change every till gets)."""
        now_ms = _now_ms() if now_ms is None else now_ms
        store = self._store()
        try:
            with store.batch():
                card = self._card(store, card_no)
                if card.state != CardState.ACTIVE:
                    raise SettingRefused(f"card {card_no} is {card.state}, not active; nothing changed")
                store.block_card(self.park_id, card.card_no, card.issuance, ADMIN_BLOCK_REASON, now_ms)
            return Change("card.block", f"{card_no}/{card.issuance}", {"state": card.state},
                          {"state": "blocked", "reason": ADMIN_BLOCK_REASON})
        finally:
            store.close()

    def unblock_card(self, card_no: str, *, now_ms: int | None = None) -> Change:
        now_ms = _now_ms() if now_ms is None else now_ms
        store = self._store()
        try:
            with store.batch():
                card = self._card(store, card_no)
                reason = store.block_reason(self.park_id, card.card_no, card.issuance)
                if card.state != CardState.BLOCKED:
                    raise SettingRefused(f"card {card_no} is {card.state}, not blocked; nothing changed")
                if reason not in UNBLOCKABLE_REASONS:
                    raise SettingRefused(f"card {card_no} is blocked for {reason}: offline sales overdrew it, and a "
                                         f"top-up that pays the debt unblocks it; nothing changed")
                store.unblock_card(self.park_id, card.card_no, card.issuance, "ADMIN_UNBLOCK", now_ms)
            return Change("card.unblock", f"{card_no}/{card.issuance}", {"state": "blocked", "reason": reason},
                          {"state": "active"})
        finally:
            store.close()

    # ------------------------------------------------------------ balance adjustments (two people)
    def adjustments(self, *, state: str | None = None, limit: int = 200) -> list[Adjustment]:
        store = self._store()
        try:
            return [Adjustment(*row) for row in store.db.execute(
                f"""SELECT adjustment_id, card_account, asset, amount, reason, requested_by, requested_ms, state,
                           decided_by, decided_ms, txn_id FROM balance_adjustment WHERE park_id=?
                    {"AND state=?" if state else ""} ORDER BY adjustment_id DESC LIMIT ?""",
                (self.park_id, *((state,) if state else ()), limit))]
        finally:
            store.close()

    def adjustment(self, adjustment_id: int) -> Adjustment:
        found = [a for a in self.adjustments(limit=1_000_000) if a.adjustment_id == adjustment_id]
        if not found:
            raise NotFound(f"no balance adjustment {adjustment_id}")
        return found[0]

    def request_adjustment(self, card_no: str, asset: str, amount: int, reason: str, *, requested_by: str,
                           now_ms: int | None = None) -> tuple[Change, int]:
        """Ask for ``amount`` of ``asset`` (negative: taken off) on the card's current issuance, with a
        reason. Nothing is booked until another person approves; the request is checked now too, so a
        hopeless one is refused at once."""
        if asset not in COUNTER_ACCOUNTS:
            raise AdjustmentRefused(f"an adjustment moves {', '.join(COUNTER_ACCOUNTS)}, not {asset!r}")
        if type(amount) is not int or amount == 0 or abs(amount) > MAX_AMOUNT_FEN:
            raise AdjustmentRefused(f"an adjustment is a whole number from 1 to {MAX_AMOUNT_FEN}, up or down")
        reason = _text(reason, "an adjustment's reason", max_chars=MAX_REASON_CHARS)
        now_ms = _now_ms() if now_ms is None else now_ms
        store = self._store()
        try:
            with store.batch():
                card = self._card(store, card_no)
                account = card_account(card.card_no, card.issuance)
                self._check(store, card, account, asset, amount)
                adjustment_id = store.db.execute(
                    """INSERT INTO balance_adjustment (park_id, card_account, asset, amount, reason, requested_by,
                       requested_ms) VALUES (?, ?, ?, ?, ?, ?, ?)""",
                    (self.park_id, account, asset, amount, reason, requested_by, now_ms)).lastrowid
        finally:
            store.close()
        return Change("adjustment.request", f"A{adjustment_id} {account}", None,
                      {"asset": asset, "amount": amount, "reason": reason, "state": PENDING}), adjustment_id

    def _check(self, store, card, account, asset, amount):
        limits = store.card_limits(self.park_id, card.kind)
        decision = decide_adjustment(card, account, asset, amount, max_balance_fen=limits.max_balance_fen)
        if not decision.is_approved:
            raise AdjustmentRefused(f"{account}: {decision.reason.value}", code=decision.reason.value)
        return decision

    def approve_adjustment(self, adjustment_id: int, *, approved_by: str, now_ms: int | None = None) -> Change:
        """The second person approves: the adjustment is decided again on the card as it is now and
        booked (a transaction of kind ``balance_adjustment``, seq = the adjustment's number)."""
        return self._decide(adjustment_id, approved_by, approve=True, now_ms=now_ms)

    def reject_adjustment(self, adjustment_id: int, *, rejected_by: str, now_ms: int | None = None) -> Change:
        return self._decide(adjustment_id, rejected_by, approve=False, now_ms=now_ms)

    def _decide(self, adjustment_id: int, who: str, *, approve: bool, now_ms: int | None) -> Change:
        now_ms = _now_ms() if now_ms is None else now_ms
        store = self._store()
        try:
            with store.batch():
                row = store.db.execute("SELECT card_account, asset, amount, requested_by, state FROM balance_adjustment "
                                       "WHERE park_id=? AND adjustment_id=?", (self.park_id, adjustment_id)).fetchone()
                if row is None:
                    raise NotFound(f"no balance adjustment {adjustment_id}")
                account, asset, amount, requested_by, state = row
                if state != PENDING:
                    raise AdjustmentRefused(f"adjustment {adjustment_id} is {state} already", code="ALREADY_DECIDED")
                if who == requested_by:
                    raise AdjustmentRefused(f"adjustment {adjustment_id} was asked for by {who}: another person "
                                            f"approves it", code="SECOND_PERSON_REQUIRED")
                txn_id = None
                if approve:
                    card_no, issuance = account.removeprefix("card:").rsplit("/", 1)
                    card = store.card(self.park_id, card_no, int(issuance))
                    decision = self._check(store, card, account, asset, amount)
                    txn = NewTxn(park_id=self.park_id, kind=ADJUSTMENT_KIND, terminal_id=f"{self.park_id}:adjustment",
                                 seq=adjustment_id, operator=who, station_id="", card_account=account,
                                 amount_fen=decision.amount_fen, ledger_time_ms=now_ms, terminal_time_ms=now_ms,
                                 clock_uncertain=False)
                    txn_id = store.apply(decision, park_id=self.park_id, now_ms=now_ms, txn=txn)
                store.db.execute("UPDATE balance_adjustment SET state=?, decided_by=?, decided_ms=?, txn_id=? "
                                 "WHERE adjustment_id=?", (BOOKED if approve else REJECTED, who, now_ms, txn_id, adjustment_id))
        finally:
            store.close()
        return Change("adjustment.approve" if approve else "adjustment.reject", f"A{adjustment_id} {account}",
                      {"state": PENDING, "requested_by": requested_by},
                      {"state": BOOKED if approve else REJECTED, "decided_by": who, "txn_id": txn_id,
                       "asset": asset, "amount": amount})


def _settings_facts(settings) -> dict:
    return {"mode": settings.mode, "opens": settings.opens, "closes": settings.closes,
            "menu": [[item.item, item.name, item.price_fen] for item in settings.menu]}
