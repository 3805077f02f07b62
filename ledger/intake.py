"""From received bytes to signed replies: verify, parse, check idempotency, decide, book.

No MQTT here: the service hands in ``(topic, payload)`` pairs and publishes what comes back, after
the batch has committed. Three kinds of answer:

- refused: the bytes or the sender are wrong (bad signature, malformed, revoked...). A pure function
  of the bytes and the terminal's registration, so it is recomputed on every retry, never stored
  against a seq — a forged message can never use up a real terminal's seq.
- declined / approved: the ledger's state decided. Stored with the signed Result under
  ``(terminal, seq)`` forever; a retry gets the very same Result bytes back.
- nothing: the store was busy (TransientStoreError). Nothing is stored; the terminal's resend succeeds.
"""

from dataclasses import dataclass, replace
import hashlib
import logging
import time

from nacl.signing import VerifyKey

from protocol import envelope, topics
from protocol.envelope import Purpose
from protocol.kinds import KINDS
from protocol.errors import RemoteProtocolError
from protocol.limits import MAX_SEQ_JUMP, PROTOCOL_VERSION, SUPPORTED_VERSIONS
from protocol.messages import (
    MAX_LOOKUP_CARDS,
    REQUEST_TYPES,
    Balances,
    CardIssue,
    CardReturn,
    Charge,
    CardReplace,
    CardUnblock,
    Hello,
    LossReport,
    MemberCard,
    MemberLookup,
    MemberLookupReply,
    MemberOpen,
    MemberTransfer,
    PinUnlock,
    OfflineCharge,
    Request,
    Result,
    Reversal,
    ShiftClose,
    ShiftOpen,
    StationReport,
    StationReportReply,
    TerminalStatus,
    TopUp,
    Void,
    Welcome,
    parse,
    printable_detail,
)
from protocol.money import card_account
from protocol.reasons import Outcome, Reason

from protocol.card_record import CardRecord, sign_record
from protocol.pin import open_pin

from . import postings as rules
from . import shifts
from .pins import MAX_WRONG_PINS, hash_pin, pin_matches
from .errors import TransientStoreError
from .keys import LedgerKeys
from .store import NewTxn, Store, TerminalView, seq_of, store_fault

log = logging.getLogger("fieldpos.ledger")

# Who may read a station's takings, and who may find a member's cards by phone number.
REPORT_ROLES = KINDS[StationReport.TYPE].staff_roles
LOOKUP_ROLES = KINDS[MemberLookup.TYPE].staff_roles
# An unknown key id makes us re-read the key table, but not more often than this, so a flood of
# random key ids cannot turn into a flood of queries.
KEY_RELOAD_INTERVAL_S = 1.0
# Failures of the machine, not of a message: they leave Intake.process so that the service stops
# taking messages until the store works again (nothing is answered, so nothing is lost). A raw
# SQLite or OS error is one of them when store_fault says so (disk full, I/O error, locked...).
ENVIRONMENTAL_ERRORS = (TransientStoreError, MemoryError)


def _evidence(payload: bytes) -> bytes:
    """What may be kept of a refused payload: without its attachment, so no PIN block is at rest."""
    try:
        return envelope.split(payload).without_attachment()
    except RemoteProtocolError:
        return payload  # not an envelope we can read, so no attachment we could cut out either


@dataclass(frozen=True, slots=True)
class Reply:
    topic: str
    payload: bytes


@dataclass(slots=True)
class _Verified:
    topic: str
    envelope: envelope.Envelope
    message: object
    body_sha256: str
    terminal: TerminalView


class Intake:
    def __init__(self, store: Store, keys: LedgerKeys, clock_ms=lambda: int(time.time() * 1000)):
        self.store = store
        self.keys = keys
        self.clock_ms = clock_ms
        self._result_key = keys.for_purpose(Purpose.RESULT)
        self._terminal_keys: dict[str, tuple[str, VerifyKey]] = {}
        self._keys_loaded_at = float("-inf")
        self._reload_keys()
        self.counts = {"approved": 0, "declined": 0, "refused": 0, "replayed": 0, "set_aside": 0}
        self.greeted: set[str] = set()  # terminals that said Hello: they get config and blocklist again
        self._attachment = b""  # the envelope attachment (a sealed PIN block) of the request being decided
        self._in_hand = None  # the parsed message being handled, for the set-aside answer if it fails
        self._retrying_set_aside = False
        self._quoted: tuple[bytes, str] | None = None  # (payload, SHA-256 as sent) of a retried set-aside

    # ------------------------------------------------------------ keys
    def _reload_keys(self) -> None:
        self._terminal_keys = {k: (t, VerifyKey(p)) for k, (t, p) in self.store.terminal_keys().items()}
        self._keys_loaded_at = time.monotonic()

    def _terminal_key(self, key_id: str):
        found = self._terminal_keys.get(key_id)
        if found is None and time.monotonic() - self._keys_loaded_at > KEY_RELOAD_INTERVAL_S:
            self._reload_keys()
            found = self._terminal_keys.get(key_id)
        return found

    # ------------------------------------------------------------ stage 1: no database writes
    def authenticate(self, topic: str, payload: bytes) -> _Verified:
        """Check topic, envelope, key, revocation, signature, then parse and validate the body, in
        that order: nothing of a body is parsed before its signature verifies with a current key.
        Raises RemoteProtocolError with the reason code (TERMINAL_REVOKED: see _revoked_replay)."""
        where = topics.parse_request_topic(topic)
        if where is None:
            raise RemoteProtocolError(f"not a request topic: {topic[:80]}", code=Reason.BAD_TOPIC)
        park_id, terminal_id = where
        sealed = envelope.split(payload)
        found = self._terminal_key(sealed.key_id)
        if found is None:
            if self.store.terminal(terminal_id) is None:
                raise RemoteProtocolError(f"terminal {terminal_id} is not registered", code=Reason.UNKNOWN_TERMINAL)
            raise RemoteProtocolError(f"key {sealed.key_id} is not registered", code=Reason.UNKNOWN_KEY)
        key_terminal, verify_key = found
        if key_terminal != terminal_id:
            raise RemoteProtocolError(f"key {sealed.key_id} is not {terminal_id}'s", code=Reason.KEY_NOT_FOR_TOPIC)
        terminal = self.store.terminal(terminal_id)
        if terminal is None:
            raise RemoteProtocolError(f"terminal {terminal_id} is not registered", code=Reason.UNKNOWN_TERMINAL)
        if terminal.revoked_from_seq is not None:
            # A retired terminal's key may be in a thief's hands: its bodies are never parsed.
            raise RemoteProtocolError(f"terminal revoked from seq {terminal.revoked_from_seq}", code=Reason.TERMINAL_REVOKED)
        body = envelope.verify(sealed, verify_key=verify_key, purpose=Purpose.REQUEST, topic=topic)
        message = parse(body, REQUEST_TYPES)
        if message.park != park_id or message.terminal != terminal_id:
            raise RemoteProtocolError("park or terminal in the body differ from the topic", code=Reason.TOPIC_MISMATCH)
        if sealed.attachment and getattr(message, "pin_sha256", None) is None:
            raise RemoteProtocolError("an attachment the body does not name", code=Reason.PIN_BLOCK_INVALID)
        return _Verified(topic, sealed, message, hashlib.sha256(body).hexdigest(), terminal)

    def _revoked_replay(self, topic: str, payload: bytes) -> Reply | None:
        """For a revoked terminal: the stored Result of a request the ledger already holds with this
        very body (a re-send of something decided before retirement), byte for byte; else None.
        The body is still not parsed: its seq is searched for (seq_of) and the stored request under
        that seq must have this body's SHA-256."""
        park_id, terminal_id = topics.parse_request_topic(topic)
        seq = seq_of(payload)
        stored = None if seq is None else self.store.stored_request(terminal_id, seq)
        if stored is None or stored.body_sha256 != hashlib.sha256(envelope.split(payload).body).hexdigest():
            return None
        self.counts["replayed"] += 1
        return Reply(topics.result(park_id, terminal_id), stored.result)

    # ------------------------------------------------------------ the batch
    def process(self, batch: list[tuple[str, bytes]], *, retry_set_aside: bool = False) -> list[Reply]:
        """Handle a batch in one store transaction; returns the replies to publish after it
        committed. Raises TransientStoreError or StoreUnavailableError (nothing stored, no replies)
        when the store is busy or cannot be written; no other exception leaves it (see _one).
        ``retry_set_aside``: run messages held as set aside through again (an operator's retry);
        each item may then carry a third element, the SHA-256 of the payload as the terminal sent
        it (the ledger kept it without its PIN block), which the answer quotes so the terminal
        matches it to its request."""
        replies: list[Reply] = []
        self._retrying_set_aside = retry_set_aside
        with self.store.batch():
            for topic, payload, *sent_sha256 in batch:
                self._quoted = (payload, sent_sha256[0]) if retry_set_aside and sent_sha256 else None
                reply = self._one(topic, payload)
                if reply is not None:
                    replies.append(reply)
            self._quoted = None
        return replies

    def _request_sha256(self, payload: bytes) -> str:
        """What a reply quotes as ``request_sha256``: the SHA-256 of the payload as sent."""
        if self._quoted is not None and self._quoted[0] is payload:
            return self._quoted[1]
        return hashlib.sha256(payload).hexdigest()

    def _one(self, topic: str, payload: bytes) -> Reply | None:
        """One message, contained: whatever it makes go wrong stays with it. Environmental failures
        (the store busy or unwritable) propagate, since they are no message's fault and the service
        pauses on them; anything else is deterministic for this message, so its writes are rolled
        back and it is set aside at once (not after crashes) with a SET_ASIDE answer, which is not
        final: the terminal keeps it pending until an operator's retry decides it."""
        now_ms = self.clock_ms()
        payload_sha256 = self._request_sha256(payload)  # a retried set-aside stays under the hash it was held by
        if not self._retrying_set_aside and self.store.is_set_aside(payload_sha256):
            return self._set_aside_answer(topic, payload, None, "held for an operator", now_ms)
        self._in_hand = None
        try:
            return self._rolled_back_on_error(topic, payload, now_ms)
        except ENVIRONMENTAL_ERRORS:
            raise
        except Exception as error:
            if (fault := store_fault(error)) is not None:
                raise fault from error
            return self._contain(topic, payload, payload_sha256, error, now_ms)

    def _rolled_back_on_error(self, topic: str, payload: bytes, now_ms: int) -> Reply | None:
        # One savepoint per message: whatever fails inside leaves no write behind.
        try:
            with self.store.savepoint():
                if topic.endswith("/status"):
                    self._status(topic, payload, now_ms)
                    return None
                return self._request(topic, payload, now_ms)
        except RemoteProtocolError as error:  # raised while deciding (a PIN block that does not open): about the bytes
            return self.refuse(topic, payload, self._in_hand, error.code, error.args[0], now_ms)

    def _contain(self, topic: str, payload: bytes, payload_sha256: str, error: Exception, now_ms: int) -> Reply | None:
        message = self._in_hand
        if topic.endswith("/status"):
            log.exception("dropped a status on %s that failed", topic[:80])
            return None
        log.exception("set aside a message on %s that failed (%s seq %s)", topic[:80],
                      getattr(message, "terminal", "?"), getattr(message, "seq", "?"))
        detail = printable_detail(f"{type(error).__name__}: {error}")
        try:
            with self.store.savepoint():
                self.store.set_aside(payload_sha256, topic, payload, detail, now_ms)
                return self._set_aside_answer(topic, payload, message, detail, now_ms)
        except ENVIRONMENTAL_ERRORS:
            raise
        except Exception as error:  # not even that could be stored: answer nothing, the terminal re-sends
            if (fault := store_fault(error)) is not None:
                raise fault from error
            log.exception("could not set aside the message on %s", topic[:80])
            return None

    def _set_aside_answer(self, topic, payload, message, detail, now_ms) -> Reply | None:
        if topics.parse_request_topic(topic) is None:
            return None
        self.counts["set_aside"] += 1
        version = payload[2] if len(payload) > 2 and payload[2] in SUPPORTED_VERSIONS else PROTOCOL_VERSION
        return self._result(topic, message, payload, version, Outcome.REFUSED, Reason.SET_ASIDE, now_ms, detail=detail)

    def _request(self, topic: str, payload: bytes, now_ms: int) -> Reply | None:
        try:
            verified = self.authenticate(topic, payload)
        except RemoteProtocolError as error:
            if error.code == Reason.TERMINAL_REVOKED and (replay := self._revoked_replay(topic, payload)) is not None:
                return replay
            return self.refuse(topic, payload, None, error.code, error.args[0], now_ms)
        message, terminal = verified.message, verified.terminal
        self._in_hand = message
        if isinstance(message, Hello):
            self.greeted.add(message.terminal)
            return self._welcome(verified, terminal, now_ms)
        if message.TYPE not in terminal.allowed_kinds:
            return self.refuse(topic, payload, message, Reason.KIND_NOT_ALLOWED, f"{message.TYPE} not allowed on {terminal.terminal_id}", now_ms)
        stored = self.store.stored_request(message.terminal, message.seq)
        if stored is None:
            # A seq up to MAX_SEQ_JUMP is always within reach of the highest held (at least 0): no query.
            if message.seq > MAX_SEQ_JUMP and message.seq > (highest := self.store.highest_seq(message.terminal)) + MAX_SEQ_JUMP:
                return self.refuse(topic, payload, message, Reason.SEQ_TOO_FAR,
                                   f"seq {message.seq} is over {MAX_SEQ_JUMP} above {highest}", now_ms)
            shift = self.store.shift_staff_role(message.terminal)
            reason = shifts.check_operator(message.TYPE, message.operator, shift,
                                           requires_shift=self.store.requires_shift(message.park))
            if reason is not None:
                return self._decline_request(verified, reason, now_ms)
        if stored is not None:
            if stored.body_sha256 == verified.body_sha256:
                self.counts["replayed"] += 1
                return Reply(topics.result(message.park, message.terminal), stored.result)
            detail = f"{message.terminal} seq {message.seq} reused with a different body"
            self.store.record_alert(now_ms, "SEQ_REUSED", detail)
            log.warning(detail)
            return self.refuse(topic, payload, message, Reason.SEQ_REUSED, detail, now_ms)
        self._attachment = verified.envelope.attachment
        if isinstance(message, (ShiftOpen, ShiftClose)):
            return self._shift(verified, terminal, now_ms)
        if isinstance(message, StationReport):
            return self._station_report(verified, now_ms)
        if isinstance(message, MemberLookup):
            return self._member_lookup(verified, now_ms)
        return self._decide_and_book(verified, terminal, now_ms)

    # ------------------------------------------------------------ decisions
    def _decide(self, message: Request, terminal: TerminalView, card) -> rules.Decision:
        if isinstance(message, TopUp) and self._owes_offline_debt(message.park, card):
            card = replace(card, state="active")  # paying the debt is how an overdrawn card is settled
        # The common card checks run for every kind that does not opt out of them by name, before
        # any kind's own rule: a lost, copied or unknown card never reaches one (issue 11).
        kind = KINDS[message.TYPE]
        if (refusal := rules.check_card(message, card, skips=kind.skips_card_checks)) is not None:
            return refusal
        if kind.runs("limits") and (refusal := self._check_limits(message, card)) is not None:
            return refusal
        if isinstance(message, CardReplace):
            return self._decide_replace(message, card)
        if isinstance(message, PinUnlock):
            return self._decide_pin_unlock(message)
        if isinstance(message, CardUnblock):
            if card.state != "blocked" or self.store.block_reason(message.park, card.card_no, card.issuance) != "LOST":
                return rules.decline(Reason.KIND_NOT_ALLOWED)  # an overdrawn card is settled, not unblocked
            return rules.Decision(reason=Reason.OK)
        if isinstance(message, CardIssue) and message.card_fee_fen != self.store.park_rules(message.park).card_fee_fen:
            # The park's card fee, not a desk's: a desk with an old or edited config would book another.
            return rules.decline(Reason.AMOUNT_MISMATCH)
        if isinstance(message, (CardIssue, MemberOpen)):
            return rules.decide_card_issue(message, card)
        if isinstance(message, MemberTransfer):
            return self._decide_member_transfer(message, card)
        if isinstance(message, TopUp):
            return rules.decide_top_up(message, card, self.store.bonus_rules(message.park))
        if isinstance(message, Charge) and not isinstance(message, OfflineCharge) and card.kind == "member":
            if (refusal := self._check_member_pin(message)) is not None:
                return refusal
            bonus_first, points_per_yuan, _ = self.store.member_settings(message.park)
            return rules.decide_charge(message, card, self.store.station(message.park, terminal.station_id),
                                       bonus_first=bonus_first, points_per_yuan=points_per_yuan)
        if isinstance(message, Charge) and self.store.superseded_by(message.terminal, message.seq) is not None:
            # The terminal gave up waiting for this attempt and sold offline instead: that sale counts.
            return rules.decline(Reason.SUPERSEDED)
        if isinstance(message, Charge):
            return rules.decide_charge(message, card, self.store.station(message.park, terminal.station_id))
        if isinstance(message, Void):
            decision = rules.decide_void(message, self.store.original_sale(message.terminal, message.original_seq))
            if decision.is_approved and (refusal := self._check_supervisor(message)) is not None:
                return rules.decline(refusal)
            return decision
        if isinstance(message, CardReturn):
            if message.damage_fee_fen > self.store.park_rules(message.park).damage_fee_fen:
                return rules.decline(Reason.AMOUNT_MISMATCH)  # the park's damage fee caps what a desk keeps
            return rules.decide_card_return(message, card)
        if isinstance(message, LossReport):
            if card.kind != "member":
                return rules.decline(Reason.KIND_NOT_ALLOWED)  # temporary cards have no loss protection
            return rules.Decision(reason=Reason.OK)
        if isinstance(message, Reversal):
            return self._decide_reversal(message, card)
        raise AssertionError(f"no rule for {message.TYPE}")

    def _check_limits(self, message: Request, card) -> rules.Decision | None:
        """The card type's limits: for a new card, of the kind it is opened as; a sale also counts
        what the card has spent today."""
        if isinstance(message, (CardIssue, MemberOpen)):
            card_kind = "member" if isinstance(message, MemberOpen) else message.card_kind
        else:
            card_kind = card.kind
        spent = 0
        if KINDS[message.TYPE].is_sale:
            spent = self.store.spent_today(message.park, message.card.account,
                                           self.store.business_day(message.park, self.clock_ms()))
        return rules.check_limits(message, card, self.store.card_limits(message.park, card_kind), kind=card_kind,
                                  spent_today_fen=spent)

    def _check_supervisor(self, message) -> Reason | None:
        """The second credential: a supervisor's staff card and PIN (sealed with the request)."""
        staff = self.store.staff_by_card(message.park, message.supervisor_card_no)
        if staff is None or not staff.is_active or staff.role != "supervisor":
            return Reason.SUPERVISOR_REQUIRED
        if staff.wrong_pins >= MAX_WRONG_PINS:
            return Reason.PIN_LOCKED
        pin = open_pin(self._attachment, pin_sha256=message.pin_sha256, terminal=message.terminal, seq=message.seq,
                       ledger_pin_key=self.keys.pin_key, field="supervisor_pin")
        if pin_matches(pin, staff.pin_hash, self.keys.pin_pepper):
            self.store.set_wrong_pins(message.park, staff.staff_id, 0)
            return None
        count, reason = shifts.after_wrong_pin(staff)
        self.store.set_wrong_pins(message.park, staff.staff_id, count)
        self.store.record_alert(self.clock_ms(), "WRONG_PIN", f"supervisor {staff.staff_id} wrong PIN {count}")
        return reason

    def _decide_replace(self, message: CardReplace, new_card) -> rules.Decision:
        if new_card is not None and new_card.state != "returned":
            return rules.decline(Reason.CARD_IN_USE)
        old = self.store.card(message.park, message.from_card_no, message.from_issuance)
        if old is None or old.kind != "member" or old.issuance != message.from_issuance:
            return rules.decline(Reason.UNKNOWN_CARD)
        if old.state != "blocked" or self.store.block_reason(message.park, old.card_no, old.issuance) != "LOST":
            return rules.decline(Reason.KIND_NOT_ALLOWED)  # only a card reported lost is replaced
        if message.card.issuance != (1 if new_card is None else new_card.issuance + 1):
            return rules.decline(Reason.OLD_ISSUANCE)
        if (refusal := self._check_supervisor(message)) is not None:
            return rules.decline(refusal)
        return rules.decide_transfer(old, message.card.account)

    def _decide_member_transfer(self, message: MemberTransfer, card) -> rules.Decision:
        if not self.store.allows_member_transfer(message.park) or card.kind != "member":
            return rules.decline(Reason.KIND_NOT_ALLOWED)
        if message.to_card_no == message.card.no:
            return rules.decline(Reason.SAME_CARD)  # −x and +x on one account: nothing to move
        target = self.store.card(message.park, message.to_card_no, message.to_issuance)
        if target is None or target.kind != "member" or target.state != "active":
            return rules.decline(Reason.UNKNOWN_CARD)
        if (refusal := self._check_member_pin(message, always=True)) is not None:
            return refusal
        if card.fen < message.amount_fen:
            return rules.decline(Reason.INSUFFICIENT_FUNDS)
        if target.fen + message.amount_fen > self.store.card_limits(message.park, "member").max_balance_fen:
            return rules.decline(Reason.OVER_BALANCE_LIMIT)
        to_account = card_account(target.card_no, target.issuance)
        return rules.Decision(reason=Reason.OK, amount_fen=message.amount_fen, postings=(
            rules.Posting(message.card.account, "fen", -message.amount_fen),
            rules.Posting(to_account, "fen", message.amount_fen)))

    def _decide_pin_unlock(self, message: PinUnlock) -> rules.Decision:
        member = self.store.member(message.park, message.card.no)
        staff = self.store.staff_by_card(message.park, message.card.no)
        if member is None and staff is None:
            return rules.decline(Reason.UNKNOWN_CARD)
        if (refusal := self._check_supervisor(message)) is not None:
            return rules.decline(refusal)
        if member is not None:
            self.store.set_member_wrong_pins(message.park, message.card.no, 0)
        if staff is not None:
            self.store.set_wrong_pins(message.park, staff.staff_id, 0)
        return rules.Decision(reason=Reason.OK)

    def _decide_reversal(self, message: Reversal, card) -> rules.Decision:
        opened_at = self.store.shift_opened_at(message.terminal)
        if opened_at is None or message.original_seq < opened_at:
            return rules.decline(Reason.NOT_SAME_SHIFT)
        decision = rules.decide_void(message, self.store.original_sale(message.terminal, message.original_seq),
                                     kind=TopUp.TYPE)
        if not decision.is_approved:
            return decision
        if card.fen < message.amount_fen or any(p.account == message.card.account and p.asset == "bonus" and
                                                 card.bonus + p.amount < 0 for p in decision.postings):
            return rules.decline(Reason.INSUFFICIENT_FUNDS)  # already spent: the desk settles it otherwise
        if (refusal := self._check_supervisor(message)) is not None:
            return rules.decline(refusal)
        return decision

    def _decide_and_book(self, verified: _Verified, terminal: TerminalView, now_ms: int) -> Reply:
        message = verified.message
        if isinstance(message, OfflineCharge):
            card = self.store.card(message.park, message.card.no, message.card.issuance)
            decision = self._decide_offline(message, terminal, card)
        else:
            card = self.store.card(message.park, message.card.no)
            decision = self._decide(message, terminal, card)
        for alert in decision.alerts:
            self.store.record_alert(now_ms, decision.reason.value, alert)
        txn_id = None
        if decision.is_approved:
            txn_id = self.store.book(
                NewTxn(
                    park_id=message.park,
                    kind=message.TYPE,
                    terminal_id=message.terminal,
                    seq=message.seq,
                    operator=message.operator,
                    station_id=terminal.station_id,
                    card_account=message.card.account,
                    amount_fen=decision.amount_fen,
                    ledger_time_ms=now_ms,
                    terminal_time_ms=message.terminal_time_ms,
                    clock_uncertain=message.clock_uncertain,
                    voids_txn=decision.voids_txn,
                ),
                decision.postings,
                allow_negative=decision.allow_negative,
            )
            if decision.allow_negative:
                self._block_if_overdrawn(message, now_ms)
            if decision.new_card:
                is_member = isinstance(message, (MemberOpen, CardReplace))
                self.store.insert_card(
                    message.park, message.card.no, message.card.issuance, message.card.uid,
                    "member" if is_member else message.card_kind, getattr(message, "card_fee_fen", 0), txn_id,
                )
                if isinstance(message, MemberOpen):
                    self._open_member(message)
                elif isinstance(message, CardReplace):
                    self.store.copy_member(message.park, message.from_card_no, message.card.no)
            self._notify(message, card, txn_id, now_ms)
            if decision.card_state is not None:
                self.store.set_card_state(message.park, message.card.no, message.card.issuance, decision.card_state)
            self._card_events(message, card, now_ms)
        balances = None
        if decision.is_approved:
            after = self.store.card_balances_after.get(message.card.account)
            if after is None:  # the transaction did not move this card (e.g. a zero-balance issue)
                after = self.store.card_balances(message.park, message.card.account)
            balances = Balances(fen=after[0], bonus=after[1], points=after[2])
        elif card is not None and decision.reason not in (Reason.UNKNOWN_CARD, Reason.CARD_UID_MISMATCH, Reason.OLD_ISSUANCE):
            balances = Balances(fen=card.fen, bonus=card.bonus, points=card.points)  # not for a clone to see
        outcome = Outcome.APPROVED if decision.is_approved or decision.reason is Reason.SAME_SALE else Outcome.DECLINED
        record = None
        if decision.new_card and txn_id is not None:
            # The desk writes this on the card; only the ledger holds the key that signs it.
            kind = "temporary" if isinstance(message, CardIssue) else "member"
            record = sign_record(CardRecord(message.card.no, message.card.issuance, kind, message.park),
                                 bytes.fromhex(message.card.uid),
                                 self.keys.for_purpose(Purpose.CARD_RECORD).signing_key).hex()
        result = self._result(verified.topic, message, verified.envelope.payload, verified.envelope.version, outcome,
                              decision.reason, now_ms, balances, txn_id, card_record=record,
                              amount_fen=decision.amount_fen if decision.is_approved and decision.postings else None)
        return self._record(verified, outcome, decision.reason, txn_id, result, now_ms)

    def _check_member_pin(self, message, *, always: bool = False) -> rules.Decision | None:
        """A member charge above the card's no-PIN limit needs the member's PIN; three wrong PINs
        lock the card's PIN (a supervisor unlocks it). The wrong-PIN count is stored with the decline."""
        member = self.store.member(message.park, message.card.no)
        if member is None:
            return None
        if member.wrong_pins >= MAX_WRONG_PINS:
            return rules.decline(Reason.PIN_LOCKED)
        # The park's limit, the one each till has in its signed config: a member's own copy (taken when
        # the card was opened) would differ once the park changes it, and the till would not ask.
        no_pin_limit_fen = self.store.park_rules(message.park).no_pin_limit_fen
        if not always and message.amount_fen <= no_pin_limit_fen and message.pin_sha256 is None:
            return None
        if message.pin_sha256 is None:
            return rules.decline(Reason.PIN_REQUIRED)
        pin = open_pin(self._attachment, pin_sha256=message.pin_sha256, terminal=message.terminal, seq=message.seq,
                       ledger_pin_key=self.keys.pin_key)
        if pin_matches(pin, member.pin_hash, self.keys.pin_pepper):
            if member.wrong_pins:
                self.store.set_member_wrong_pins(message.park, message.card.no, 0)
            return None
        count = member.wrong_pins + 1
        self.store.set_member_wrong_pins(message.park, message.card.no, count)
        self.store.record_alert(self.clock_ms(), "WRONG_PIN", f"member card {message.card.no}: wrong PIN {count}")
        return rules.decline(Reason.PIN_LOCKED if count >= MAX_WRONG_PINS else Reason.WRONG_PIN)

    def _decide_offline(self, message: OfflineCharge, terminal: TerminalView, card) -> rules.Decision:
        if message.supersedes_seq is not None:
            earlier = self.store.stored_outcome(message.terminal, message.supersedes_seq)
            if earlier is not None and earlier[0] == Outcome.APPROVED:
                # The online attempt was approved and its answer lost: this is the same sale.
                return rules.Decision(reason=Reason.SAME_SALE)
            self.store.supersede(message.terminal, message.supersedes_seq, message.seq)
        return rules.decide_offline_charge(message, card, self.store.station(message.park, terminal.station_id))

    def _block_if_overdrawn(self, message, now_ms: int) -> None:
        after = self.store.card_balances_after.get(message.card.account)
        if after is not None and after[0] < 0:
            detail = f"{message.card.account} overdrawn to {after[0]} fen by offline sale {message.terminal}/{message.seq}"
            self.store.block_card(message.park, message.card.no, message.card.issuance, "OFFLINE_OVERDRAFT", now_ms)
            self.store.record_alert(now_ms, "OFFLINE_OVERDRAFT", detail)
            log.warning(detail)

    def _asking_staff(self, message, roles: frozenset) -> Reason | None:
        """For requests that read rather than book: ``card`` is the asking staff member's own card,
        and their role is checked here, whatever the terminal shows and whether or not a shift is open."""
        staff = self.store.staff_by_card(message.park, message.card.no)
        if staff is None or staff.staff_id != message.operator or not staff.is_active:
            return Reason.UNKNOWN_STAFF
        return None if staff.role in roles else Reason.ROLE_NOT_ALLOWED

    def _member_lookup(self, verified: _Verified, now_ms: int) -> Reply:
        """A member's cards by phone number, for the desk's loss report and replacement."""
        message = verified.message
        if (refusal := self._asking_staff(message, LOOKUP_ROLES)) is not None:
            return self._decline_request(verified, refusal, now_ms)
        cards = tuple(MemberCard(no=no, issuance=issuance, uid=uid, name=name, state=state, fen=fen, bonus=bonus,
                                 points=points)
                      for no, issuance, uid, name, state, fen, bonus, points in
                      self.store.member_cards_by_phone(message.park, message.phone, MAX_LOOKUP_CARDS))
        reply_topic = topics.result(message.park, message.terminal)
        body = MemberLookupReply(park=message.park, terminal=message.terminal, seq=message.seq,
                                 request_sha256=self._request_sha256(verified.envelope.payload), cards=cards, ledger_time_ms=now_ms).to_bytes()
        reply = Reply(reply_topic, self._seal(body, reply_topic, verified.envelope.version))
        return self._record(verified, Outcome.APPROVED, Reason.OK, None, reply, now_ms)

    def _station_report(self, verified: _Verified, now_ms: int) -> Reply:
        """Reports go to supervisors, finance and admins only: the asking staff member's role is
        checked here, whatever the terminal shows (a front desk terminal cannot even ask)."""
        message = verified.message
        if (refusal := self._asking_staff(message, REPORT_ROLES)) is not None:
            return self._decline_request(verified, refusal, now_ms)
        count, fen, offline, voids = self.store.station_takings(message.park, message.station, message.business_day)
        reply_topic = topics.result(message.park, message.terminal)
        body = StationReportReply(
            park=message.park, terminal=message.terminal, seq=message.seq, request_sha256=self._request_sha256(verified.envelope.payload),
            station=message.station, business_day=message.business_day, sales_count=count, sales_fen=fen,
            offline_count=offline, voids_count=voids, ledger_time_ms=now_ms,
        ).to_bytes()
        reply = Reply(reply_topic, self._seal(body, reply_topic, verified.envelope.version))
        return self._record(verified, Outcome.APPROVED, Reason.OK, None, reply, now_ms)

    def _decline_request(self, verified: _Verified, reason: Reason, now_ms: int) -> Reply:
        result = self._result(verified.topic, verified.message, verified.envelope.payload, verified.envelope.version,
                              Outcome.DECLINED, reason, now_ms)
        return self._record(verified, Outcome.DECLINED, reason, None, result, now_ms)

    def _owes_offline_debt(self, park_id: str, card) -> bool:
        """Blocked because offline sales overdrew it: a top-up at the desk settles it."""
        return (card is not None and card.state == "blocked"
                and self.store.block_reason(park_id, card.card_no, card.issuance) == "OFFLINE_OVERDRAFT")

    def _card_events(self, message, card, now_ms: int) -> None:
        """Loss reports block at once and unblocking undoes it; a top-up that pays an offline debt off
        unblocks the card. All reach terminals as blocklist deltas."""
        if isinstance(message, LossReport):
            self.store.block_card(message.park, message.card.no, message.card.issuance, "LOST", now_ms)
        elif isinstance(message, CardUnblock):
            self.store.unblock_card(message.park, message.card.no, message.card.issuance, "FOUND", now_ms)
        elif isinstance(message, TopUp) and self._owes_offline_debt(message.park, card):
            fen = self.store.card_balances_after.get(message.card.account, (card.fen,))[0]
            if fen >= 0:
                self.store.unblock_card(message.park, message.card.no, message.card.issuance, "SETTLED", now_ms)

    def _open_member(self, message: MemberOpen) -> None:
        pin = open_pin(self._attachment, pin_sha256=message.pin_sha256, terminal=message.terminal, seq=message.seq,
                       ledger_pin_key=self.keys.pin_key)
        _, _, no_pin_limit_fen = self.store.member_settings(message.park)
        self.store.insert_member(message.park, message.card.no, message.member_name, message.phone,
                                 hash_pin(pin, self.keys.pin_pepper), no_pin_limit_fen)

    def _notify(self, message, card, txn_id: int, now_ms: int) -> None:
        """Members hear about every top-up and charge: queued in the same transaction as the booking,
        sent by the notifier's own thread, so a slow SMS gateway never holds up a sale."""
        if not KINDS[message.TYPE].notifies_member:
            return
        # Most sales are on temporary cards: no member to tell, and no query on the hot path for them.
        if not isinstance(message, CardReplace) and (card is None or card.kind != "member"):
            return
        member = self.store.member(message.park, message.card.no)
        if member is None:
            return
        fen, bonus, points = self.store.card_balances_after.get(message.card.account) or (0, 0, 0)
        self.store.add_notification(message.park, message.card.no, member.phone, txn_id, {
            "kind": message.TYPE, "amount_fen": getattr(message, "amount_fen", 0), "balance_fen": fen, "bonus_fen": bonus,
            "points": points, "terminal": message.terminal, "time_ms": now_ms,
        }, now_ms)

    def _record(self, verified: _Verified, outcome: Outcome, reason: Reason, txn_id, result: Reply, now_ms) -> Reply:
        message = verified.message
        # The evidence kept is the signed request without its attachment: never a PIN block at rest.
        self.store.record_request(
            message.terminal, message.seq, message.TYPE, verified.body_sha256, verified.envelope.without_attachment(),
            outcome.value, reason.value, txn_id, result.payload, now_ms,
        )
        self.counts[outcome.value] += 1
        return result

    def _shift(self, verified: _Verified, terminal: TerminalView, now_ms: int) -> Reply:
        message = verified.message
        if isinstance(message, ShiftClose):
            closed = self.store.close_shift(message.terminal, message.seq, now_ms)
            reason = Reason.OK if closed == message.operator else Reason.UNKNOWN_STAFF
        else:
            pin = open_pin(verified.envelope.attachment, pin_sha256=message.pin_sha256, terminal=message.terminal,
                           seq=message.seq, ledger_pin_key=self.keys.pin_key)
            staff = self.store.staff_by_card(message.park, message.card.no)
            reason = shifts.check_staff(message, staff, terminal)
            if reason is None:
                if pin_matches(pin, staff.pin_hash, self.keys.pin_pepper):
                    reason = Reason.OK
                    self.store.set_wrong_pins(message.park, staff.staff_id, 0)
                    self.store.open_shift(message.park, message.terminal, staff.staff_id, message.seq, now_ms)
                else:
                    count, reason = shifts.after_wrong_pin(staff)
                    self.store.set_wrong_pins(message.park, staff.staff_id, count)
                    self.store.record_alert(now_ms, "WRONG_PIN", f"staff {staff.staff_id} wrong PIN {count} on {message.terminal}")
            del pin
        outcome = Outcome.APPROVED if reason is Reason.OK else Outcome.DECLINED
        result = self._result(verified.topic, message, verified.envelope.payload, verified.envelope.version, outcome,
                              reason, now_ms)
        return self._record(verified, outcome, reason, None, result, now_ms)

    # ------------------------------------------------------------ replies
    def _result(self, topic, message, payload, version, outcome, reason, now_ms, balances=None, txn_id=None, detail="",
                card_record=None, amount_fen=None) -> Reply:
        park_id, terminal_id = topics.parse_request_topic(topic)
        body = Result(
            park=park_id,
            terminal=terminal_id,
            seq=getattr(message, "seq", None),
            request_sha256=self._request_sha256(payload),
            outcome=outcome.value,
            reason=getattr(reason, "value", reason),
            balances=balances,
            txn=txn_id,
            ledger_time_ms=now_ms,
            detail=printable_detail(detail),
            card_record=card_record,
            amount_fen=amount_fen,
        ).to_bytes()
        reply_topic = topics.result(park_id, terminal_id)
        return Reply(reply_topic, self._seal(body, reply_topic, version))

    def _seal(self, body: bytes, topic: str, version: int) -> bytes:
        return envelope.seal(
            body, signing_key=self._result_key.signing_key, key_id=self._result_key.key_id,
            purpose=Purpose.RESULT, topic=topic, version=version,
        )

    def refuse(self, topic, payload, message, reason, detail, now_ms) -> Reply | None:
        """Record a refusal (inside a batch) and return the signed Result to send, if there is a
        terminal topic to send it to."""
        sha = hashlib.sha256(payload).hexdigest()
        reason = Reason(reason)
        self.store.record_refusal(now_ms, topic, sha, reason.value, detail,
                                  terminal_id=getattr(message, "terminal", None), seq=getattr(message, "seq", None),
                                  payload=_evidence(payload))
        self.counts["refused"] += 1
        log.info("refused %s on %s: %s", reason.value, topic[:80], detail)
        if topics.parse_request_topic(topic) is None:
            return None  # nowhere sensible to answer
        # Answer in the request's version when its header was readable; else in ours.
        version = payload[2] if len(payload) > 2 and payload[2] in SUPPORTED_VERSIONS else PROTOCOL_VERSION
        return self._result(topic, message, payload, version, Outcome.REFUSED, reason, now_ms, detail=detail)

    def _status(self, topic: str, payload: bytes, now_ms: int) -> None:
        """A terminal's heartbeat (or last will): kept for the exposure report; bad ones are dropped."""
        where = topics.parse_status_topic(topic)
        try:
            if where is None or not payload:
                raise RemoteProtocolError("not a status", code=Reason.BAD_TOPIC)
            sealed = envelope.split(payload)
            found = self._terminal_key(sealed.key_id)
            if found is None or found[0] != where[1]:
                raise RemoteProtocolError("status signed by another key", code=Reason.KEY_NOT_FOR_TOPIC)
            terminal = self.store.terminal(where[1])
            if terminal is None or terminal.revoked_from_seq is not None:  # never parsed, as requests
                raise RemoteProtocolError("status of a revoked terminal", code=Reason.TERMINAL_REVOKED)
            status = parse(envelope.verify(sealed, verify_key=found[1], purpose=Purpose.STATUS, topic=topic),
                           {TerminalStatus.TYPE: TerminalStatus})
            if (status.park, status.terminal) != where:
                raise RemoteProtocolError("park or terminal in the status differ from the topic", code=Reason.TOPIC_MISMATCH)
        except RemoteProtocolError as error:
            log.info("dropped a status on %s: %s", topic[:80], error)
            return
        self.store.record_status(status.terminal, status.is_online, status.highest_seq, status.queue_depth,
                                 status.oldest_queued_ms, status.time_ms, now_ms)

    def _welcome(self, verified: _Verified, terminal: TerminalView, now_ms: int) -> Reply:
        # A revoked terminal's Hello never gets here: authenticate refuses it (TERMINAL_REVOKED).
        hello = verified.message
        reply_topic = topics.result(hello.park, hello.terminal)
        body = Welcome(
            park=hello.park,
            terminal=hello.terminal,
            nonce=hello.nonce,
            request_sha256=self._request_sha256(verified.envelope.payload),
            highest_seq=self.store.highest_seq(hello.terminal),
            ledger_time_ms=now_ms,
        ).to_bytes()
        return Reply(reply_topic, self._seal(body, reply_topic, verified.envelope.version))
