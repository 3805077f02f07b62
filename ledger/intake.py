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

from dataclasses import dataclass
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
    REQUEST_TYPES,
    Balances,
    Hello,
    Result,
    TerminalStatus,
    Welcome,
    parse,
    printable_detail,
)
from protocol.reasons import Outcome, Reason

from protocol.card_record import CardRecord, sign_record

from . import rules
from . import shifts
from .pins import SealedPins
from .errors import LockContended, TransientStoreError
from .keys import LedgerKeys
from .store import NewTxn, Store, TerminalView, seq_of, store_fault

log = logging.getLogger("fieldpos.ledger")

# An unknown key id makes us re-read the key table, but not more often than this, so a flood of
# random key ids cannot turn into a flood of queries.
KEY_RELOAD_INTERVAL_S = 1.0
# Failures of the machine, not of a message: they leave Intake.process so that the service stops
# taking messages until the store works again (nothing is answered, so nothing is lost). A raw
# SQLite or OS error is one of them when store_fault says so (disk full, I/O error, locked...).
ENVIRONMENTAL_ERRORS = (TransientStoreError, MemoryError)


# A request that keeps meeting another worker's locks is tried in this many batches, then left to
# its terminal's re-send (each new batch lets its first request wait, so one more is nearly always enough).
MAX_LOCK_RETRIES = 5


def lock_names(message) -> list[str]:
    """What a request must hold before the ledger reads its state (PostgreSQL, several workers):
    its terminal (its seqs and shift) and every card it names, sorted so that all workers take
    them in one order. Card numbers, not issuances: a reissue and a late sale meet on one lock."""
    names = {f"terminal:{message.terminal}"}
    card = getattr(message, "card", None)
    if card is not None:
        names.add(f"card:{message.park}:{card.no}")
    for field in ("to_card_no", "new_card_no", "old_card_no"):
        if isinstance(other := getattr(message, field, None), str):
            names.add(f"card:{message.park}:{other}")
    return sorted(names)


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
        # Rental rules sign and check deposit vouchers with it (ledger.rules.rentals reads it in gather).
        store.voucher_key = keys.by_purpose.get(Purpose.VOUCHER.value)
        # E-card QRs are checked with it (ledger.rules.ecards): the credential is the card's record.
        self._card_record_key = keys.for_purpose(Purpose.CARD_RECORD).signing_key.verify_key
        self._terminal_keys: dict[str, tuple[str, VerifyKey]] = {}
        self._keys_loaded_at = float("-inf")
        self._reload_keys()
        self.counts = {"approved": 0, "declined": 0, "refused": 0, "replayed": 0, "set_aside": 0}
        self.greeted: set[str] = set()  # terminals that said Hello: they get config and blocklist again
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
        pending, retries = list(batch), 0
        while pending:
            done = 0
            with self.store.batch():
                for topic, payload, *sent_sha256 in pending:
                    self._quoted = (payload, sent_sha256[0]) if retry_set_aside and sent_sha256 else None
                    try:
                        reply = self._one(topic, payload)
                    except LockContended:
                        # Another worker holds what this request needs (PostgreSQL only): commit what
                        # this batch did, releasing its locks, and start the next batch with it.
                        retries += 1
                        if retries > MAX_LOCK_RETRIES * len(batch):
                            raise
                        break
                    done += 1
                    if reply is not None:
                        replies.append(reply)
                self._quoted = None
            pending = pending[done:]
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
        if message.TYPE == Hello.TYPE:
            self.greeted.add(message.terminal)
            return self._welcome(verified, terminal, now_ms)
        if message.TYPE not in terminal.allowed_kinds:
            return self.refuse(topic, payload, message, Reason.KIND_NOT_ALLOWED, f"{message.TYPE} not allowed on {terminal.terminal_id}", now_ms)
        if self.store.is_shared:
            # Another worker may hold this very request (a redelivery) or another on the same card:
            # the seq check and every read below happen under these locks, to the batch's end.
            self.store.lock(lock_names(message))
        stored = self.store.stored_request(message.terminal, message.seq)
        if stored is None:
            # A seq up to MAX_SEQ_JUMP is always within reach of the highest held (at least 0): no query.
            if message.seq > MAX_SEQ_JUMP and message.seq > (highest := self.store.highest_seq(message.terminal)) + MAX_SEQ_JUMP:
                return self.refuse(topic, payload, message, Reason.SEQ_TOO_FAR,
                                   f"seq {message.seq} is over {MAX_SEQ_JUMP} above {highest}", now_ms)
            shift = self.store.shift_staff_role(message.terminal)
            reason = shifts.check_operator(message.TYPE, message.operator, shift,
                                           requires_shift=self.store.requires_shift(message.park), terminal=terminal)
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
        return self._decide_and_book(verified, terminal, now_ms)

    # ------------------------------------------------------------ build view, decide, apply, sign
    def _decide_and_book(self, verified: _Verified, terminal: TerminalView, now_ms: int) -> Reply:
        """The kind's rule reads its View, decides (no writes), and the store applies the Decision;
        the signed reply goes with the stored request."""
        message = verified.message
        kind = KINDS[message.TYPE]
        pins = SealedPins(verified.envelope.attachment, message, self.keys.pin_key, self.keys.pin_pepper)
        view = rules.gather(message, self.store, terminal, now_ms, pins, card_record_key=self._card_record_key)
        decision = rules.decide(message, view)
        for alert in decision.alerts:
            log.warning("%s: %s", alert.kind, alert.detail)
        txn = None
        if kind.is_booked:
            txn = NewTxn(
                park_id=message.park, kind=message.TYPE, terminal_id=message.terminal, seq=message.seq,
                operator=message.operator, station_id=terminal.station_id, card_account=message.card.account,
                amount_fen=decision.amount_fen, ledger_time_ms=now_ms, terminal_time_ms=message.terminal_time_ms,
                clock_uncertain=message.clock_uncertain, voids_txn=decision.voids_txn,
            )
        txn_id = self.store.apply(decision, park_id=message.park, now_ms=now_ms, txn=txn, card=message.card)
        if decision.answer is not None:
            # A booked kind answers with its own reply too (a deposit's voucher, a return's receipt).
            return self._record(verified, Outcome.APPROVED, Reason.OK, txn_id,
                                self._answer(verified, decision.answer, now_ms), now_ms)
        balances = None
        card = view.card
        if txn_id is not None:
            after = self.store.card_balances_after.get(message.card.account)
            if after is None:  # the transaction did not move this card (e.g. a zero-balance issue)
                after = self.store.card_balances(message.park, message.card.account)
            balances = Balances(fen=after[0], bonus=after[1], points=after[2])
        elif (kind.is_booked and card is not None and not decision.reason.value.startswith("ECARD_")
              and decision.reason not in (Reason.UNKNOWN_CARD, Reason.CARD_UID_MISMATCH, Reason.OLD_ISSUANCE)):
            balances = Balances(fen=card.fen, bonus=card.bonus, points=card.points)  # not for a clone or screenshot
        elif not kind.is_booked and kind.runs("card_known") and kind.runs("uid_matches") and decision.is_approved:
            # A read-only kind on a card that passed every check (card_balance) answers with its balances.
            balances = Balances(fen=card.fen, bonus=card.bonus, points=card.points)
        outcome = Outcome.APPROVED if decision.is_approved or decision.reason is Reason.SAME_SALE else Outcome.DECLINED
        record = None
        if decision.new_card is not None and txn_id is not None:
            # The desk writes this on the card; only the ledger holds the key that signs it.
            new = decision.new_card
            record = sign_record(CardRecord(new.card_no, new.issuance, new.kind, message.park), bytes.fromhex(new.uid),
                                 self.keys.for_purpose(Purpose.CARD_RECORD).signing_key).hex()
        result = self._result(verified.topic, message, verified.envelope.payload, verified.envelope.version, outcome,
                              decision.reason, now_ms, balances, txn_id, detail=decision.detail, card_record=record,
                              amount_fen=decision.amount_fen if decision.is_approved and decision.postings else None)
        return self._record(verified, outcome, decision.reason, txn_id, result, now_ms)

    def _answer(self, verified: _Verified, answer: rules.Answer, now_ms: int) -> Reply:
        """A reply of its own type (member lookup, station report), quoting the request."""
        message = verified.message
        reply_topic = topics.result(message.park, message.terminal)
        body = answer.reply_type(park=message.park, terminal=message.terminal, seq=message.seq,
                                 request_sha256=self._request_sha256(verified.envelope.payload), ledger_time_ms=now_ms,
                                 **answer.fields).to_bytes()
        return Reply(reply_topic, self._seal(body, reply_topic, verified.envelope.version))

    def _decline_request(self, verified: _Verified, reason: Reason, now_ms: int) -> Reply:
        result = self._result(verified.topic, verified.message, verified.envelope.payload, verified.envelope.version,
                              Outcome.DECLINED, reason, now_ms)
        return self._record(verified, Outcome.DECLINED, reason, None, result, now_ms)

    def _record(self, verified: _Verified, outcome: Outcome, reason: Reason, txn_id, result: Reply, now_ms) -> Reply:
        message = verified.message
        # The evidence kept is the signed request without its attachment: never a PIN block at rest.
        self.store.record_request(
            message.terminal, message.seq, message.TYPE, verified.body_sha256, verified.envelope.without_attachment(),
            outcome.value, reason.value, txn_id, result.payload, now_ms,
        )
        self.counts[outcome.value] += 1
        return result

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
        if self.store.is_shared:
            self.store.lock([f"terminal:{status.terminal}"])
        self.store.record_status(status.terminal, status.is_online, status.highest_seq, status.queue_depth,
                                 status.oldest_queued_ms, status.time_ms, now_ms, status.printer, status.software_version)

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
