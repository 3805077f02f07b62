"""The terminal's side of the session with the ledger.

``LedgerLink.submit`` takes the next seq from the durable outbox, signs the request, publishes it
(QoS 1) and waits for the signed Result; on timeout it re-sends the very same bytes, so the ledger
sees the same ``(terminal, seq)`` and either applies it once or replays its stored Result. A Result
is accepted only if the ledger's signature holds for our result topic and it quotes the SHA-256 of
a request we sent. A timeout is never a decline: the request stays pending in the outbox.

Nor is a Result whose reason is not final (``protocol.reasons.NOT_FINAL_REASONS``: the ledger failed
on the request, or set it aside for an operator): it is noted (``ledger_holds``) and the request
stays pending and keeps being re-sent; only a final answer for the same request closes it.
"""

import dataclasses
import hashlib
import logging
import os
import threading
import time
from typing import Callable

from protocol import envelope, topics
from protocol.envelope import Purpose
from protocol.errors import RemoteProtocolError
from protocol.limits import MAX_BROADCAST_BYTES
from protocol.messages import (
    BROADCAST_TYPES,
    REPLY_TYPES,
    Blocklist,
    Hello,
    Request,
    Result,
    TerminalConfig,
    TerminalStatus,
    Welcome,
    parse,
)
from protocol.pin import seal_pin
from protocol.reasons import NOT_FINAL_REASONS
from transport import mqtt

from .errors import TerminalError
from .identity import TerminalIdentity
from .offline_state import TerminalState
from .outbox import STORAGE_ERRORS, Outbox, PendingRequest

log = logging.getLogger("fieldpos.terminal.net")

# The ledger answers in milliseconds; past this the request is re-sent with the same seq.
RESEND_INTERVAL_S = 2.0
# How long ``submit`` keeps trying before it gives up and reports NoResult (the offline path).
RESULT_TIMEOUT_S = 6.0
CONNECT_TIMEOUT_S = 5.0
# Requests in flight while the queue drains after an outage (backpressure).
UPLOAD_WINDOW = 128
UPLOAD_IDLE_S = 0.5
UPLOAD_POLL_S = 0.05
STATUS_INTERVAL_S = 30.0
# Not-final answers remembered for the screens (one per request the ledger holds); bounded.
MAX_HELD_NOTES = 256
# Results nobody takes (a duplicate or late answer to a request already closed) are kept this many,
# oldest dropped first: the outbox holds each one durably anyway. Well above UPLOAD_WINDOW, so the
# answers of a draining window are never dropped before the uploader sees them.
MAX_UNCLAIMED_RESULTS = 1024


class NoResultError(TerminalError):
    """No signed Result arrived in time. The request is still pending and will be re-sent."""

    code = "NO_RESULT"


class BrokerUnreachableError(TerminalError):
    """Cannot reach the park network: check Wi-Fi, or sell offline within the policy."""

    code = "BROKER_UNREACHABLE"


class LedgerLink:
    def __init__(self, identity: TerminalIdentity, outbox: Outbox, *, mqtt_version: str = "5",
                 clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
                 resend_interval_s: float = RESEND_INTERVAL_S, is_uploading: bool = True, state_clocks: dict | None = None):
        self.identity = identity
        self.is_uploading = is_uploading  # False only in tests that must see what the broker alone delivers
        self.outbox = outbox
        self.clock_ms = clock_ms
        self.resend_interval_s = resend_interval_s
        self.request_topic = topics.request(identity.park_id, identity.terminal_id)
        self.result_topic = topics.result(identity.park_id, identity.terminal_id)
        self._result_key_id, self._result_key = identity.ledger_key(Purpose.RESULT.value)
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)  # notified whenever a Result comes in
        self._waiting: dict[str, threading.Event] = {}   # request sha256 -> set when its Result is in
        self._results: dict[str, Result] = {}
        self._welcomes: dict[str, Welcome] = {}           # nonce -> Welcome
        self._connected = threading.Event()
        self.rejected_replies = 0
        self.rejected_broadcasts = 0
        # ``state_clocks``: monotonic_ms, wall_ms, boot_id for TerminalState (a simulated board's reboot).
        self.state = TerminalState(outbox, **(state_clocks or {}))
        self._held_by_ledger: dict[str, str] = {}  # request sha256 -> the not-final reason it last got
        self._watched: set[str] = set()             # requests the app polls (see ``watch``)
        self.config_topic = topics.config(identity.park_id, identity.terminal_id)
        self.blocklist_topic = topics.blocklist(identity.park_id)
        self.status_topic = topics.status(identity.park_id, identity.terminal_id)
        self._broadcast_keys = {
            self.config_topic: (Purpose.CONFIG, *identity.ledger_key(Purpose.CONFIG.value)),
            self.blocklist_topic: (Purpose.BLOCKLIST, *identity.ledger_key(Purpose.BLOCKLIST.value)),
        }
        self._uploader: threading.Thread | None = None
        self._closing = threading.Event()
        self.uploaded = 0
        broker = identity.broker
        self.client = mqtt.make_client(
            identity.terminal_id, username=broker.username, password=broker.password,
            mqtt_version=mqtt_version, tls_ca_pem=broker.tls_ca,
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *args: self._connected.clear()
        self.client.on_message = self._on_message

    # ------------------------------------------------------------ connection
    def connect(self, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        """Start connecting (paho keeps retrying in the background) and wait up to ``timeout_s``."""
        broker = self.identity.broker
        # If the link drops, the broker tells the ledger: a signed "offline" status, retained.
        self.client.will_set(self.status_topic, self._status_payload(is_online=False), qos=1, retain=True)
        self.client.connect_async(broker.host, broker.port, **mqtt.connect_arguments(self.client))
        self.client.loop_start()
        if self._uploader is None and self.is_uploading:
            self._uploader = threading.Thread(target=self._upload_loop, name="uploader", daemon=True)
            self._uploader.start()
        if not self._connected.wait(timeout_s):
            raise BrokerUnreachableError(f"no connection to {broker.host}:{broker.port} within {timeout_s} s")

    def close(self) -> None:
        self._closing.set()
        if self._uploader is not None:
            self._uploader.join(5)
        if self._connected.is_set():
            # A clean shutdown sends no will: say "offline" ourselves, retained, before leaving.
            info = self.client.publish(self.status_topic, self._status_payload(is_online=False), qos=1, retain=True)
            try:
                info.wait_for_publish(1.0)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()

    @property
    def is_connected(self) -> bool:
        return self._connected.is_set()

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if not mqtt.is_success(reason_code):
            log.error("broker refused the connection: %s", reason_code)
            return
        mqtt.set_nodelay(client)
        client.subscribe([(self.result_topic, 1), (self.config_topic, 1), (self.blocklist_topic, 1)])
        self._connected.set()
        self.publish_status()

    # ------------------------------------------------------------ replies
    def _on_message(self, client, userdata, message):
        # An exception escaping a paho callback ends paho's network thread: the terminal would sit
        # "connected" and deaf. Log it and keep the link alive; the request is re-sent anyway.
        try:
            self._handle_message(message)
        except Exception:
            log.exception("could not handle a message on %s", message.topic)

    def _handle_message(self, message):
        if message.topic in self._broadcast_keys:
            self._on_broadcast(message)
            return
        try:
            sealed = envelope.split(message.payload)
            if sealed.key_id != self._result_key_id:
                raise RemoteProtocolError(f"reply signed with unknown key {sealed.key_id}", code="UNKNOWN_KEY")
            body = envelope.verify(sealed, verify_key=self._result_key, purpose=Purpose.RESULT, topic=message.topic)
            reply = parse(body, REPLY_TYPES)
        except RemoteProtocolError as error:
            self.rejected_replies += 1
            log.warning("ignored a reply that failed its checks: %s", error)
            return
        if reply.park != self.identity.park_id or reply.terminal != self.identity.terminal_id:
            self.rejected_replies += 1
            return
        self.state.contact(reply.ledger_time_ms)
        if getattr(reply, "reason", None) in NOT_FINAL_REASONS:
            # Not an answer: the ledger failed on the request or holds it for an operator. It stays
            # pending (re-sent, never shown as a decline); a later answer to it is the one that counts.
            with self._lock:
                self._held_by_ledger.pop(reply.request_sha256, None)
                self._held_by_ledger[reply.request_sha256] = reply.reason
                while len(self._held_by_ledger) > MAX_HELD_NOTES:
                    del self._held_by_ledger[next(iter(self._held_by_ledger))]
            return
        with self._lock:
            if isinstance(reply, Welcome):
                self._welcomes[reply.nonce] = reply
                event = self._waiting.get(reply.nonce)
            else:
                self._results[reply.request_sha256] = reply
                self._drop_unclaimed_results()
                self._held_by_ledger.pop(reply.request_sha256, None)
                event = self._waiting.get(reply.request_sha256)
                self._arrived.notify_all()
        try:
            if not isinstance(reply, Welcome):
                # A final answer closes the request durably: re-sending the same bytes would get the same answer.
                self.outbox.complete(reply.request_sha256, message.payload)
        except STORAGE_ERRORS:
            # A full SD card: the Result is still handed to whoever waits for it; the request stays
            # pending on disk and the ledger replays the same Result when it is re-sent.
            log.exception("could not store the Result for %s", reply.request_sha256[:12])
        finally:
            if event is not None:
                event.set()

    def _on_broadcast(self, message) -> None:
        """A config or blocklist snapshot, or a blocklist delta: verified, then taken only if newer."""
        purpose, key_id, verify_key = self._broadcast_keys[message.topic]
        try:
            sealed = envelope.split(message.payload, max_bytes=MAX_BROADCAST_BYTES)
            if sealed.key_id != key_id:
                raise RemoteProtocolError(f"signed with unknown key {sealed.key_id}", code="UNKNOWN_KEY")
            news = parse(envelope.verify(sealed, verify_key=verify_key, purpose=purpose, topic=message.topic),
                         BROADCAST_TYPES)
            if news.park != self.identity.park_id or getattr(news, "terminal", self.identity.terminal_id) != self.identity.terminal_id:
                raise RemoteProtocolError("for another park or terminal", code="TOPIC_MISMATCH")
        except RemoteProtocolError as error:
            self.rejected_broadcasts += 1
            log.warning("ignored a %s broadcast: %s", purpose.value, error)
            return
        state = self.state
        if isinstance(news, TerminalConfig):
            if (news.version, news.issued_ms) > state.config_version:
                state.save_config(news.version, news.issued_ms, news.offline, news.rules, news.station, news.staff)
            else:
                self.rejected_broadcasts += 1  # an older config: a replay, as a compromised broker might send
        elif isinstance(news, Blocklist):
            if state.blocklist.accept_snapshot(news):
                state.save_blocklist()
            elif (news.version, news.issued_ms) < (state.blocklist.version, state.blocklist.issued_ms):
                self.rejected_broadcasts += 1
        else:
            applied = state.blocklist.apply_delta(news)
            if applied:
                state.save_blocklist()
            elif applied is None:  # a gap: ask for the snapshot (the ledger re-publishes it on Hello)
                self.client.publish(self.request_topic, self._hello(os.urandom(16).hex()), qos=1)

    # ------------------------------------------------------------ uploading the queue, heartbeats
    def _status_payload(self, *, is_online: bool) -> bytes:
        body = TerminalStatus(park=self.identity.park_id, terminal=self.identity.terminal_id, is_online=is_online,
                              highest_seq=self.outbox.last_seq, queue_depth=self.outbox.pending_count(),
                              oldest_queued_ms=self.outbox.oldest_pending_ms(), time_ms=self.clock_ms()).to_bytes()
        return envelope.seal(body, signing_key=self.identity.signing_key, key_id=self.identity.key_id,
                             purpose=Purpose.STATUS, topic=self.status_topic)

    def publish_status(self) -> None:
        if self._connected.is_set():
            self.client.publish(self.status_topic, self._status_payload(is_online=True), qos=1, retain=True)

    def _upload_loop(self) -> None:
        last_status = time.monotonic()
        while not self._closing.wait(UPLOAD_IDLE_S):
            if time.monotonic() - last_status > STATUS_INTERVAL_S:
                self.publish_status()
                last_status = time.monotonic()
            if not self._connected.is_set():
                continue
            if self.outbox.pending_count():
                try:
                    if self.upload_pending():
                        self.publish_status()  # the ledger's view of this queue is out of date
                except Exception:  # a bad row must not stop the uploader; it is logged and retried
                    log.exception("upload failed; retrying")
            elif self.state.window.started_ms is not None:
                self.state.end_window()  # the ledger has every offline sale: the outage is over

    def upload_pending(self, window: int = UPLOAD_WINDOW, timeout_s: float = RESULT_TIMEOUT_S) -> int:
        """Send the queue in seq order with at most ``window`` requests in flight (backpressure: the
        broker and the ledger never get a whole day's queue at once), re-sending any that stay
        unanswered. Returns how many got their Result; stops when the ledger goes quiet."""
        pending = self.outbox.pending()
        answered, index = 0, 0
        in_flight: dict[str, list] = {}  # request sha256 -> [pending request, last sent (monotonic)]
        last_progress = time.monotonic()
        while (index < len(pending) or in_flight) and self._connected.is_set() and not self._closing.is_set():
            to_send = []
            with self._lock:
                for sha in [sha for sha in in_flight if sha in self._results]:
                    del in_flight[sha]
                    self._forget_result(sha)
                    answered += 1
                    last_progress = time.monotonic()
                while index < len(pending) and len(in_flight) < window:
                    item = pending[index]
                    index += 1
                    if item.request_sha256 in self._results:
                        self._forget_result(item.request_sha256)
                        answered += 1
                        continue
                    in_flight[item.request_sha256] = [item, 0.0]
                now = time.monotonic()
                for entry in in_flight.values():
                    if now - entry[1] >= self.resend_interval_s:
                        entry[1] = now
                        to_send.append(entry[0])
                if not to_send and in_flight:
                    self._arrived.wait(UPLOAD_POLL_S)
            for item in to_send:  # outside the lock: paho's network thread takes it to deliver Results
                self.client.publish(self.request_topic, item.payload, qos=1)
            if time.monotonic() - last_progress > timeout_s:
                break  # the ledger went quiet: try again later, from the oldest
        self.uploaded += answered
        return answered

    def _forget_result(self, sha: str) -> None:
        """Drop a Result the outbox already holds (call with the lock held) — unless the app is
        waiting for it right now: then its own wait takes it."""
        if sha not in self._waiting and sha not in self._watched:
            self._results.pop(sha, None)

    def _drop_unclaimed_results(self) -> None:
        """Keep at most MAX_UNCLAIMED_RESULTS, dropping the oldest nobody waits for or watches
        (call with the lock held)."""
        excess = len(self._results) - MAX_UNCLAIMED_RESULTS
        if excess <= 0:
            return
        for sha in list(self._results):  # insertion order: oldest first
            if sha not in self._waiting and sha not in self._watched:
                del self._results[sha]
                excess -= 1
                if excess == 0:
                    return

    def _take(self, key: str, store: dict):
        """The answer a wait was for, handed over once (call with the lock held): the link keeps no
        copy unless the app watches the request (it then drops it with ``unwatch``)."""
        return store[key] if key in self._watched else store.pop(key)

    def _wait(self, key: str, payload: bytes, timeout_s: float, store: dict):
        event = threading.Event()
        with self._lock:
            if key in store:
                return self._take(key, store)
            self._waiting[key] = event
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                if self._connected.is_set():
                    self.client.publish(self.request_topic, payload, qos=1)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                if event.wait(min(self.resend_interval_s, remaining)):
                    with self._lock:
                        return self._take(key, store)
        finally:
            with self._lock:
                self._waiting.pop(key, None)

    # ------------------------------------------------------------ requests
    def sync_seq(self, timeout_s: float = RESULT_TIMEOUT_S) -> int:
        """Ask the ledger for the highest seq it holds for us and never go below it."""
        nonce = os.urandom(16).hex()
        welcome = self._wait(nonce, self._hello(nonce), timeout_s, self._welcomes)
        if welcome is None:
            raise NoResultError("the ledger did not answer Hello")
        self.outbox.skip_past(welcome.highest_seq)
        return welcome.highest_seq

    def _hello(self, nonce: str) -> bytes:
        return self.seal(Hello(park=self.identity.park_id, terminal=self.identity.terminal_id, nonce=nonce,
                               terminal_time_ms=self.clock_ms()))

    def seal(self, message, attachment: bytes = b"") -> bytes:
        return envelope.seal(
            message.to_bytes(), signing_key=self.identity.signing_key, key_id=self.identity.key_id,
            purpose=Purpose.REQUEST, topic=self.request_topic, attachment=attachment,
        )

    def enqueue(self, build: Callable[[int], Request], *, pin: str | None = None, supervisor_pin: str | None = None,
                replaces_seq: int | None = None) -> PendingRequest:
        """Give ``build`` the next seq and store the signed request durably; nothing is sent yet.

        With a ``pin``, the PIN block is sealed for this seq and attached, and the outbox keeps the
        request *without* it: a PIN never rests on the terminal's disk. Re-sent after a restart, such
        a request gets the ledger's stored Result if it was decided, else PIN_BLOCK_INVALID (enter
        the PIN again)."""
        sent = {}

        def signed(seq: int):
            message, attachment = build(seq), b""
            if pin is not None or supervisor_pin is not None:
                attachment, pin_sha256 = seal_pin(pin, terminal=self.identity.terminal_id, seq=seq,
                                                  ledger_pin_key=self.identity.pin_key, supervisor_pin=supervisor_pin)
                message = dataclasses.replace(message, pin_sha256=pin_sha256)
            payload = sent["payload"] = self.seal(message, attachment)
            stored = envelope.split(payload).without_attachment() if attachment else payload
            return stored, hashlib.sha256(payload).hexdigest()

        stored = self.outbox.append(signed, self.clock_ms(), replaces_seq=replaces_seq)
        return PendingRequest(stored.seq, sent["payload"], stored.request_sha256)

    def send(self, pending: PendingRequest, timeout_s: float = RESULT_TIMEOUT_S) -> Result:
        """Publish (and re-publish) a pending request until its Result arrives or time runs out."""
        result = self._wait(pending.request_sha256, pending.payload, timeout_s, self._results)
        if result is None:
            raise NoResultError(f"no Result for seq {pending.seq} within {timeout_s} s; it stays queued")
        return result

    # ------------------------------------------------------------ waiting without blocking the till
    def watch(self, pending: PendingRequest) -> None:
        """The app keeps asking for this request's Result turn by turn (``poll``), so the till reads
        keys and cards while it waits; its Result is kept for it until ``unwatch``."""
        with self._lock:
            self._watched.add(pending.request_sha256)

    def unwatch(self, pending: PendingRequest) -> None:
        with self._lock:
            self._watched.discard(pending.request_sha256)
            self._results.pop(pending.request_sha256, None)

    def poll(self, pending: PendingRequest, *, resend: bool) -> Result | None:
        """The Result if it is in (never a not-final one), else None; with ``resend`` the same bytes
        are published again (the caller paces it, about every ``resend_interval_s``)."""
        with self._lock:
            result = self._results.get(pending.request_sha256)
        if result is not None:
            return result
        if resend:
            stored = self._stored_result(pending)
            if stored is not None:
                return stored
            if self._connected.is_set():
                self.client.publish(self.request_topic, pending.payload, qos=1)
        return None

    def _stored_result(self, pending: PendingRequest) -> Result | None:
        """A Result the outbox holds for this request (verified before it was stored): one that
        arrived while nobody watched, e.g. between a send that timed out and the next poll."""
        try:
            payload = self.outbox.result_for(pending.seq)
        except STORAGE_ERRORS:
            return None
        if payload is None:
            return None
        reply = parse(envelope.split(payload).body, REPLY_TYPES)
        return reply if getattr(reply, "request_sha256", None) == pending.request_sha256 else None

    def ledger_holds(self, pending: PendingRequest) -> str | None:
        """The not-final reason the ledger last gave for this request (INTERNAL_ERROR, SET_ASIDE), if any."""
        with self._lock:
            return self._held_by_ledger.get(pending.request_sha256)

    def submit(self, build: Callable[[int], Request], timeout_s: float = RESULT_TIMEOUT_S, *, pin: str | None = None,
               supervisor_pin: str | None = None) -> Result:
        return self.send(self.enqueue(build, pin=pin, supervisor_pin=supervisor_pin), timeout_s)
