"""The terminal's side of the conversation with the ledger, with no I/O (umqtt.simple vs robust, h11).

A ``TerminalSession`` is told what the terminal sends (``send``, ``greet``), what arrived and on
which topic (``receive``), and what time it is (``due``); it answers with what to publish and what
happened. It owns the protocol's state and nothing else: which requests and Hellos are waiting for a
reply and when each was last sent, which replies and broadcasts to believe, and the versions of the
signed config and blocklist. Sockets, threads, disks and clocks belong to its caller
(``terminal.net.LedgerLink`` feeds it from paho; its tests feed it bytes).

The rules it keeps:

- A reply is believed only if the ledger's result key signed it for this terminal's result topic,
  it parses as a reply, and it names this park and terminal. It is matched to a request by the
  SHA-256 of the request's payload it quotes, a Welcome by the nonce of our Hello.
- A timeout is never a decline: a request is re-sent with the very same bytes every resend
  interval until a final reply comes. A reply whose reason is not final
  (``protocol.reasons.NOT_FINAL_REASONS``: the ledger failed on the request or set it aside) is
  ``Held``: noted, and the request is re-sent as before.
- A broadcast (config, blocklist snapshot or delta) is believed only if the ledger's key for its
  purpose signed it for its topic and it names this park (and terminal); an older version than the
  one held is a replay and is ignored; a delta that does not start at the version held is a gap,
  which asks the ledger for the snapshot (it re-publishes it on Hello).
"""

from collections import OrderedDict
from dataclasses import dataclass

from protocol import envelope, topics
from protocol.envelope import Purpose
from protocol.errors import LocalProtocolError, RemoteProtocolError
from protocol.limits import MAX_BROADCAST_BYTES
from protocol.messages import BROADCAST_TYPES, REPLY_TYPES, Blocklist, Hello, TerminalConfig, Welcome, parse
from protocol.reasons import NOT_FINAL_REASONS

from .offline import BlocklistCopy

# The ledger answers in milliseconds; past this a request is re-sent with the same bytes and seq.
RESEND_INTERVAL_MS = 2_000
# Requests followed at once: the uploader's window (128) and the one the cashier waits for, with room.
MAX_FOLLOWED = 1_024
# Hellos waiting for their Welcome (one at boot, one per blocklist gap): the oldest is dropped.
MAX_GREETINGS = 8
# Not-final notes kept for the screens (one per request the ledger holds): the oldest is dropped.
MAX_HELD_NOTES = 256


# ---------------------------------------------------------------- what the session asks for
@dataclass(frozen=True, slots=True)
class Publish:
    """Publish these bytes on this topic (QoS 1)."""

    topic: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Overdue:
    """A request got no final reply within the time its sender gave it; it is still re-sent."""

    request_sha256: str


# ---------------------------------------------------------------- what happened (from receive)
@dataclass(frozen=True, slots=True)
class Answered:
    """A final reply to one of our requests (a Result or a lookup's reply). ``payload`` is the
    signed bytes, for the outbox; ``was_followed`` is False for a late or repeated answer."""

    request_sha256: str
    reply: object
    payload: bytes
    was_followed: bool


@dataclass(frozen=True, slots=True)
class Held:
    """The ledger replied, not finally (``reason`` in NOT_FINAL_REASONS): the request stays pending."""

    request_sha256: str
    reason: str
    reply: object


@dataclass(frozen=True, slots=True)
class Welcomed:
    """The ledger's Welcome to one of our Hellos: the highest seq it holds for this terminal."""

    welcome: Welcome


@dataclass(frozen=True, slots=True)
class ConfigChanged:
    """A newer signed config: keep it (its version is now the session's)."""

    config: TerminalConfig


@dataclass(frozen=True, slots=True)
class BlocklistChanged:
    """The blocklist copy took a newer snapshot or the next delta: keep it."""


@dataclass(frozen=True, slots=True)
class SnapshotWanted:
    """A blocklist delta that does not follow the version held: greet the ledger for the snapshot."""

    held_version: int
    delta_from_version: int


@dataclass(frozen=True, slots=True)
class Ignored:
    """Bytes the session did not believe or did not need; ``code`` says why (a Reason, or
    STALE_VERSION, UNASKED, UNKNOWN_TOPIC). ``is_broadcast`` says which counter it belongs to."""

    topic: str
    code: str
    detail: str
    is_broadcast: bool


STALE_VERSION = "STALE_VERSION"   # a broadcast older than the one held: a replay
UNASKED = "UNASKED"               # a Welcome to a Hello we did not send, or already welcomed
UNKNOWN_TOPIC = "UNKNOWN_TOPIC"   # not one of the topics this terminal subscribes to
NOT_OURS = "TOPIC_MISMATCH"       # signed properly, but for another park or terminal


@dataclass(slots=True)
class _Followed:
    payload: bytes  # the same bytes every time (the ledger's idempotency is by seq and body hash)
    sent_ms: int
    answer_due_ms: int | None  # when it becomes Overdue (once); None: never


class TerminalSession:
    def __init__(self, identity, *, config_version: tuple[int, int] = (-1, 0), blocklist: BlocklistCopy | None = None,
                 resend_interval_ms: int = RESEND_INTERVAL_MS):
        """``identity``: a terminal.identity.TerminalIdentity (names, signing key, the ledger's keys).
        ``config_version`` and ``blocklist``: what the terminal already holds; the blocklist copy is
        updated in place."""
        self.identity = identity
        self.resend_interval_ms = resend_interval_ms
        self.config_version = config_version
        self.blocklist = blocklist if blocklist is not None else BlocklistCopy()
        park, terminal = identity.park_id, identity.terminal_id
        self.request_topic = topics.request(park, terminal)
        self.result_topic = topics.result(park, terminal)
        self.config_topic = topics.config(park, terminal)
        self.blocklist_topic = topics.blocklist(park)
        self._keys = {
            self.result_topic: (Purpose.RESULT, *identity.ledger_key(Purpose.RESULT.value)),
            self.config_topic: (Purpose.CONFIG, *identity.ledger_key(Purpose.CONFIG.value)),
            self.blocklist_topic: (Purpose.BLOCKLIST, *identity.ledger_key(Purpose.BLOCKLIST.value)),
        }
        self._followed: dict[str, _Followed] = {}                 # request sha256 -> its sending state
        self._greetings: OrderedDict[str, _Followed] = OrderedDict()  # Hello nonce -> its sending state
        self._held: OrderedDict[str, str] = OrderedDict()        # request sha256 -> last not-final reason

    @property
    def subscriptions(self) -> tuple[str, ...]:
        return (self.result_topic, self.config_topic, self.blocklist_topic)

    # ------------------------------------------------------------ sending
    def sign(self, message, attachment: bytes = b"") -> bytes:
        """A request (or Hello) as the ledger takes it: signed for this terminal's request topic."""
        identity = self.identity
        return envelope.seal(message.to_bytes(), signing_key=identity.signing_key, key_id=identity.key_id,
                             purpose=Purpose.REQUEST, topic=self.request_topic, attachment=attachment)

    def send(self, request_sha256: str, payload: bytes, now_ms: int, *, answer_within_ms: int | None = None,
             take_over: bool = False) -> list:
        """Follow a stored request until a final reply: publish it now, and again from ``due``.
        Already followed: nothing new to publish (its resend timer runs on) — unless ``take_over``:
        the caller holds the request's own bytes (with the PIN block the outbox's copy lacks), which
        replace the copy followed so far and go out now. With ``answer_within_ms``, ``due``
        reports it ``Overdue`` once that time has passed."""
        if request_sha256 in self._followed:
            followed = self._followed[request_sha256]
            if answer_within_ms is not None and followed.answer_due_ms is None:
                followed.answer_due_ms = now_ms + answer_within_ms
            if not take_over:
                return []
            followed.payload, followed.sent_ms = payload, now_ms
            return [Publish(self.request_topic, payload)]
        if len(self._followed) >= MAX_FOLLOWED:
            raise LocalProtocolError(f"{MAX_FOLLOWED} requests already waiting for the ledger", code="TOO_MANY_IN_FLIGHT")
        due_ms = None if answer_within_ms is None else now_ms + answer_within_ms
        self._followed[request_sha256] = _Followed(payload, now_ms, due_ms)
        return [Publish(self.request_topic, payload)]

    def greet(self, nonce: str, terminal_time_ms: int, now_ms: int) -> list:
        """Say Hello (after connecting, or to get a blocklist snapshot): re-sent until Welcomed."""
        identity = self.identity
        payload = self.sign(Hello(park=identity.park_id, terminal=identity.terminal_id, nonce=nonce,
                                  terminal_time_ms=terminal_time_ms))
        self._greetings[nonce] = _Followed(payload, now_ms, None)
        while len(self._greetings) > MAX_GREETINGS:
            self._greetings.popitem(last=False)
        return [Publish(self.request_topic, payload)]

    def forget(self, key: str) -> None:
        """Stop re-sending a request (by sha256) or a Hello (by nonce); a reply to it still counts."""
        self._followed.pop(key, None)
        self._greetings.pop(key, None)

    def is_followed(self, request_sha256: str) -> bool:
        return request_sha256 in self._followed

    def due(self, now_ms: int) -> list:
        """What the time asks for: a ``Publish`` of the same bytes for each request and Hello whose
        last sending is a resend interval old, and ``Overdue`` once for each request past its time."""
        out = []
        for key, followed in [*self._followed.items(), *self._greetings.items()]:
            if followed.answer_due_ms is not None and now_ms >= followed.answer_due_ms:
                followed.answer_due_ms = None
                out.append(Overdue(key))
            if now_ms - followed.sent_ms >= self.resend_interval_ms:
                followed.sent_ms = now_ms
                out.append(Publish(self.request_topic, followed.payload))
        return out

    def held_reason(self, request_sha256: str) -> str | None:
        """The not-final reason the ledger last gave for this request (INTERNAL_ERROR, SET_ASIDE)."""
        return self._held.get(request_sha256)

    # ------------------------------------------------------------ receiving
    def receive(self, topic: str, payload: bytes) -> list:
        """What these bytes, delivered on ``topic``, mean: a list of the events above (one, or none
        for old news that is no replay)."""
        if topic not in self._keys:
            return [Ignored(topic, UNKNOWN_TOPIC, "not a topic this terminal follows", is_broadcast=False)]
        is_broadcast = topic != self.result_topic
        purpose, key_id, verify_key = self._keys[topic]
        try:
            sealed = envelope.split(payload, max_bytes=MAX_BROADCAST_BYTES) if is_broadcast else envelope.split(payload)
            if sealed.key_id != key_id:
                raise RemoteProtocolError(f"signed with unknown key {sealed.key_id}", code="UNKNOWN_KEY")
            body = envelope.verify(sealed, verify_key=verify_key, purpose=purpose, topic=topic)
            message = parse(body, BROADCAST_TYPES if is_broadcast else REPLY_TYPES)
        except RemoteProtocolError as error:
            return [Ignored(topic, str(error.code), str(error), is_broadcast)]
        identity = self.identity
        if message.park != identity.park_id or getattr(message, "terminal", identity.terminal_id) != identity.terminal_id:
            return [Ignored(topic, NOT_OURS, "for another park or terminal", is_broadcast)]
        return self._broadcast(topic, message) if is_broadcast else self._reply(message, payload)

    def _reply(self, reply, payload: bytes) -> list:
        if isinstance(reply, Welcome):
            if self._greetings.pop(reply.nonce, None) is None:
                return [Ignored(self.result_topic, UNASKED, "a Welcome to no Hello of ours", is_broadcast=False)]
            return [Welcomed(reply)]
        sha = reply.request_sha256
        reason = getattr(reply, "reason", None)
        if reason in NOT_FINAL_REASONS:
            self._held.pop(sha, None)
            self._held[sha] = reason
            while len(self._held) > MAX_HELD_NOTES:
                self._held.popitem(last=False)
            return [Held(sha, reason, reply)]
        self._held.pop(sha, None)
        return [Answered(sha, reply, payload, was_followed=self._followed.pop(sha, None) is not None)]

    def _broadcast(self, topic: str, news) -> list:
        if isinstance(news, TerminalConfig):
            if (news.version, news.issued_ms) <= self.config_version:
                return [Ignored(topic, STALE_VERSION, f"config {news.version} is not newer", is_broadcast=True)]
            self.config_version = (news.version, news.issued_ms)
            return [ConfigChanged(news)]
        copy = self.blocklist
        if isinstance(news, Blocklist):
            if copy.accept_snapshot(news):
                return [BlocklistChanged()]
            if (news.version, news.issued_ms) < (copy.version, copy.issued_ms):
                return [Ignored(topic, STALE_VERSION, f"blocklist {news.version} is older", is_broadcast=True)]
            return []  # the snapshot held, delivered again (it is retained): nothing new
        held_version = copy.version
        applied = copy.apply_delta(news)
        if applied is None:
            return [SnapshotWanted(held_version, news.from_version)]
        return [BlocklistChanged()] if applied else []  # False: a delta already contained in ours
