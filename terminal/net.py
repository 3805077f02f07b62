"""The terminal's link to the ledger: a thin paho adapter around ``terminal.session``.

The session holds the protocol (what to re-send and when, which replies and broadcasts to believe,
retryable against final answers); this module holds the rest: paho's connection and its network
thread, the durable outbox every request is written to before it is sent, the terminal's saved
state, the uploader thread that drains the queue after an outage, and the heartbeat. Every byte
that arrives goes to ``session.receive`` and every ``Publish`` it returns goes to the broker.

``enqueue`` takes the next seq from the outbox and signs the request; ``follow`` and ``poll`` let
the app wait for its Result turn by turn without blocking; ``send`` (and ``submit``) wait for it
in place, for tools, tests and the chaos terminal. A timeout is never a decline: the request stays
pending in the outbox and is re-sent with the same bytes until a final Result is in.
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
from protocol.messages import Request, Result, TerminalStatus
from protocol.pin import seal_pin
from transport import mqtt

from . import session as protocol_session
from .errors import TerminalError
from .identity import TerminalIdentity
from .offline_state import TerminalState
from .outbox import STORAGE_ERRORS, Outbox, PendingRequest
from .session import Answered, BlocklistChanged, ConfigChanged, Held, Ignored, Overdue, Publish, SnapshotWanted, \
    TerminalSession, Welcomed

log = logging.getLogger("fieldpos.terminal.net")

RESEND_INTERVAL_S = protocol_session.RESEND_INTERVAL_MS / 1000
# How long ``send`` keeps trying before it gives up and reports NoResult (the offline path).
RESULT_TIMEOUT_S = 6.0
CONNECT_TIMEOUT_S = 5.0
# Requests in flight while the queue drains after an outage (backpressure).
UPLOAD_WINDOW = 128
UPLOAD_IDLE_S = 0.5
UPLOAD_POLL_S = 0.05
STATUS_INTERVAL_S = 30.0
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


def _monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


def installed_version() -> str | None:
    """The fieldpos package's version as installed on this board (reported in the status, so the
    park sees which terminals still run an old build), or None when it is run from a bare checkout."""
    from importlib import metadata  # lazy: asked once per link, not at every import

    try:
        return metadata.version("fieldpos")
    except metadata.PackageNotFoundError:
        return None


class LedgerLink:
    def __init__(self, identity: TerminalIdentity, outbox: Outbox, *, mqtt_version: str = "5",
                 clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
                 resend_interval_s: float = RESEND_INTERVAL_S, is_uploading: bool = True, state_clocks: dict | None = None):
        self.identity = identity
        self.is_uploading = is_uploading  # False only in tests that must see what the broker alone delivers
        # Reported in every status (PROTOCOL.md §6.2): the app sets printer_state (a PrinterState
        # value) whenever it asks the printer; None until then, and on a terminal with no printer.
        self.software_version = installed_version()
        self.printer_state: str | None = None
        self.outbox = outbox
        self.clock_ms = clock_ms  # wall time for the messages' time fields; resends run on the monotonic clock
        self.resend_interval_s = resend_interval_s
        # ``state_clocks``: monotonic_ms, wall_ms, boot_id for TerminalState (a simulated board's reboot).
        self.state = TerminalState(outbox, **(state_clocks or {}))
        self.session = TerminalSession(identity, config_version=self.state.config_version,
                                       blocklist=self.state.blocklist,
                                       resend_interval_ms=int(resend_interval_s * 1000))
        self.request_topic = self.session.request_topic
        self.result_topic = self.session.result_topic
        self.config_topic = self.session.config_topic
        self.blocklist_topic = self.session.blocklist_topic
        self.status_topic = topics.status(identity.park_id, identity.terminal_id)
        # One lock for the session and what the threads share (paho's network thread delivers
        # replies; the app, the uploader and ``send`` callers send and wait).
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)  # notified whenever a final reply or a Welcome comes in
        self._results: dict[str, object] = {}      # request sha256 -> its final reply, until taken
        self._welcomes: dict[str, object] = {}     # nonce -> Welcome, for the Hello someone waits on
        self._waiting: set[str] = set()            # request sha256s and nonces a ``send``/``sync_seq`` waits on
        self._watched: set[str] = set()            # requests the app follows turn by turn (``follow``)
        self._overdue: set[str] = set()            # watched requests past the time the app gave them
        self._connected = threading.Event()
        self.rejected_replies = 0
        self.rejected_broadcasts = 0
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
        client.subscribe([(topic, 1) for topic in self.session.subscriptions])
        self._connected.set()
        self.publish_status()

    def _publish(self, out: list) -> None:
        """Carry out the session's ``Publish``es (outside the lock: paho's network thread takes it
        to deliver replies). Offline they are dropped: the session sends them again when due."""
        if not self._connected.is_set():
            return
        for item in out:
            if isinstance(item, Publish):
                self.client.publish(item.topic, item.payload, qos=1)

    def _pump(self) -> None:
        """Re-send what the session says is due (offline too: an Overdue must still come)."""
        with self._lock:
            out = self._due()
        self._publish(out)

    def _due(self) -> list:
        """The session's ``due`` now (call with the lock held): the requests that became overdue
        are noted for ``is_overdue``; the ``Publish``es are returned for the caller to carry out."""
        out = self.session.due(_monotonic_ms())
        for item in out:
            if isinstance(item, Overdue):
                self._overdue.add(item.request_sha256)
        return out

    # ------------------------------------------------------------ what arrives
    def _on_message(self, client, userdata, message):
        # An exception escaping a paho callback ends paho's network thread: the terminal would sit
        # "connected" and deaf. Log it and keep the link alive; the request is re-sent anyway.
        try:
            self._handle_message(message)
        except Exception:
            log.exception("could not handle a message on %s", message.topic)

    def _handle_message(self, message) -> None:
        with self._lock:
            happened = self.session.receive(message.topic, message.payload)
        for event in happened:
            self._take(event)

    def _take(self, event) -> None:
        """Carry out one thing the session says happened (on paho's network thread)."""
        if isinstance(event, Ignored):
            if event.is_broadcast:
                self.rejected_broadcasts += 1
            else:
                self.rejected_replies += 1
            # Old news (a retained config delivered again, a second Welcome) is routine; the rest is not.
            routine = event.code in (protocol_session.STALE_VERSION, protocol_session.UNASKED)
            log.log(logging.DEBUG if routine else logging.WARNING, "ignored bytes on %s: %s", event.topic, event.detail)
        elif isinstance(event, (Answered, Held)):
            self.state.contact(event.reply.ledger_time_ms)
            if isinstance(event, Answered):
                self._answered(event)
        elif isinstance(event, Welcomed):
            self.state.contact(event.welcome.ledger_time_ms)
            with self._lock:
                if event.welcome.nonce in self._waiting:
                    self._welcomes[event.welcome.nonce] = event.welcome
                    self._arrived.notify_all()
        elif isinstance(event, ConfigChanged):
            self._keep_config(event.config)
        elif isinstance(event, BlocklistChanged):
            self.state.save_blocklist()
        elif isinstance(event, SnapshotWanted):
            self._greet()

    def _keep_config(self, config) -> None:
        """A newer signed config, on disk and in the state the app reads."""
        self.state.save_config(config.version, config.issued_ms, config.offline, config.rules, config.station, config.staff,
                               config.rental)

    def _answered(self, event: Answered) -> None:
        sha = event.request_sha256
        with self._lock:
            self._results[sha] = event.reply
            self._drop_unclaimed_results()
            self._arrived.notify_all()
        try:
            # A final answer closes the request durably: re-sending the same bytes would get the same answer.
            self.outbox.complete(sha, event.payload)
        except STORAGE_ERRORS:
            # A full SD card: the Result is still handed to whoever waits for it; the request stays
            # pending on disk and the ledger replays the same Result when it is re-sent.
            log.exception("could not store the Result for %s", sha[:12])

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

    # ------------------------------------------------------------ uploading the queue, heartbeats
    def _status_payload(self, *, is_online: bool) -> bytes:
        body = TerminalStatus(park=self.identity.park_id, terminal=self.identity.terminal_id, is_online=is_online,
                              highest_seq=self.outbox.last_seq, queue_depth=self.outbox.pending_count(),
                              oldest_queued_ms=self.outbox.oldest_pending_ms(), time_ms=self.clock_ms(),
                              printer=self.printer_state, software_version=self.software_version).to_bytes()
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
            self._pump()  # a Hello or the app's request may be due again
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
        broker and the ledger never get a whole day's queue at once); the session re-sends any that
        stay unanswered. Returns how many got their Result; stops when the ledger goes quiet."""
        pending = self.outbox.pending()
        answered, index = 0, 0
        in_flight: set[str] = set()
        last_progress = time.monotonic()
        try:
            while (index < len(pending) or in_flight) and self._connected.is_set() and not self._closing.is_set():
                out = []
                with self._lock:
                    for sha in [sha for sha in in_flight if sha in self._results]:
                        in_flight.discard(sha)
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
                        if item.request_sha256 in self._waiting or item.request_sha256 in self._watched:
                            continue  # its sender has it, with the PIN block the outbox never keeps
                        in_flight.add(item.request_sha256)
                        out += self.session.send(item.request_sha256, item.payload, _monotonic_ms())
                    out += self._due()
                    if not out and in_flight:
                        self._arrived.wait(UPLOAD_POLL_S)
                self._publish(out)
                if time.monotonic() - last_progress > timeout_s:
                    break  # the ledger went quiet: try again later, from the oldest
        finally:
            with self._lock:
                for sha in in_flight - self._watched - self._waiting:
                    self.session.forget(sha)
        self.uploaded += answered
        return answered

    def _forget_result(self, sha: str) -> None:
        """Drop a Result the outbox already holds (call with the lock held) — unless the app is
        waiting for it right now: then its own wait takes it."""
        if sha not in self._waiting and sha not in self._watched:
            self._results.pop(sha, None)

    # ------------------------------------------------------------ requests
    def _greet(self) -> str:
        nonce = os.urandom(16).hex()
        with self._lock:
            out = self.session.greet(nonce, self.clock_ms(), _monotonic_ms())
        self._publish(out)
        return nonce

    def sync_seq(self, timeout_s: float = RESULT_TIMEOUT_S) -> int:
        """Ask the ledger for the highest seq it holds for us and never go below it."""
        nonce = os.urandom(16).hex()
        with self._lock:
            self._waiting.add(nonce)
            out = self.session.greet(nonce, self.clock_ms(), _monotonic_ms())
        try:
            self._publish(out)
            welcome = self._wait_for(lambda: self._welcomes.pop(nonce, None), timeout_s)
        finally:
            with self._lock:
                self._waiting.discard(nonce)
                self.session.forget(nonce)
        if welcome is None:
            raise NoResultError("the ledger did not answer Hello")
        self.outbox.skip_past(welcome.highest_seq)
        return welcome.highest_seq

    def _wait_for(self, take: Callable[[], object], timeout_s: float):
        """Wait up to ``timeout_s`` for ``take()`` (called with the lock held) to return something,
        re-sending whatever the session says is due meanwhile."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                found = take()
                remaining = deadline - time.monotonic()
                if found is not None or remaining <= 0:
                    return found
                self._arrived.wait(min(remaining, self.resend_interval_s / 4))
            self._pump()

    def seal(self, message, attachment: bytes = b"") -> bytes:
        return self.session.sign(message, attachment)

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
        sha = pending.request_sha256
        with self._lock:
            self._waiting.add(sha)
            # The app's own bytes stay followed if it watches this request; else these are the sender's.
            out = self.session.send(sha, pending.payload, _monotonic_ms()) if sha in self._watched \
                else self._take_over(sha, pending.payload, None)
        try:
            self._publish(out)
            result = self._wait_for(lambda: self._take_result(sha), timeout_s)
        finally:
            with self._lock:
                self._waiting.discard(sha)
                if sha not in self._watched:
                    self.session.forget(sha)  # given up: the uploader re-sends it from the outbox
        if result is None:
            raise NoResultError(f"no Result for seq {pending.seq} within {timeout_s} s; it stays queued")
        return result

    def _take_over(self, sha: str, payload: bytes, answer_within_ms: int | None) -> list:
        """Follow a request with the bytes its sender holds (call with the lock held): the uploader
        may have started it a moment earlier from the outbox's copy, which lacks the PIN block."""
        return self.session.send(sha, payload, _monotonic_ms(), answer_within_ms=answer_within_ms, take_over=True)

    def _take_result(self, sha: str):
        """The Result a wait was for, handed over once (call with the lock held): the link keeps no
        copy unless the app watches the request (it then drops it with ``unwatch``)."""
        return self._results.get(sha) if sha in self._watched else self._results.pop(sha, None)

    def submit(self, build: Callable[[int], Request], timeout_s: float = RESULT_TIMEOUT_S, *, pin: str | None = None,
               supervisor_pin: str | None = None) -> Result:
        return self.send(self.enqueue(build, pin=pin, supervisor_pin=supervisor_pin), timeout_s)

    # ------------------------------------------------------------ waiting without blocking the till
    def watch(self, pending: PendingRequest) -> None:
        """Keep this request's Result for the app until ``unwatch`` (it asks turn by turn)."""
        with self._lock:
            self._watched.add(pending.request_sha256)

    def follow(self, pending: PendingRequest, *, answer_within_s: float) -> None:
        """Send a request the app waits for without blocking: it is watched (see ``watch``),
        published now and re-sent when due; ``is_overdue`` turns True once ``answer_within_s`` has
        passed without a final Result."""
        with self._lock:
            self._watched.add(pending.request_sha256)
            self._overdue.discard(pending.request_sha256)
            out = self._take_over(pending.request_sha256, pending.payload, int(answer_within_s * 1000))
        self._publish(out)

    def unwatch(self, pending: PendingRequest) -> None:
        """The app stops waiting: its Result is no longer kept, and only the uploader re-sends it."""
        sha = pending.request_sha256
        with self._lock:
            self._watched.discard(sha)
            self._overdue.discard(sha)
            self._results.pop(sha, None)
            if sha not in self._waiting:
                self.session.forget(sha)

    def poll(self, pending: PendingRequest) -> Result | None:
        """The final Result if it is in (never a not-final one), else None; never blocks. Re-sends
        whatever is due, and keeps a watched request followed (the uploader may have let go of it)."""
        sha = pending.request_sha256
        with self._lock:
            result = self._results.get(sha)
            if result is not None:
                return result
            if sha in self._watched and not self.session.is_followed(sha):
                out = self.session.send(sha, pending.payload, _monotonic_ms())
            else:
                out = []
        self._publish(out)
        self._pump()
        return None

    def wait_for_result(self, pending: PendingRequest, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for this request's final Result (the app's idle moment in a
        turn while it waits: it wakes as soon as the Result is in)."""
        sha = pending.request_sha256
        with self._lock:
            return self._arrived.wait_for(lambda: sha in self._results, timeout_s)

    def is_overdue(self, pending: PendingRequest) -> bool:
        """The time given to ``follow`` has passed without a final Result (it is still re-sent)."""
        with self._lock:
            return pending.request_sha256 in self._overdue

    def ledger_holds(self, pending: PendingRequest) -> str | None:
        """The not-final reason the ledger last gave for this request (INTERNAL_ERROR, SET_ASIDE), if any."""
        with self._lock:
            return self.session.held_reason(pending.request_sha256)
