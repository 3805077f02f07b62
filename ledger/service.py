"""The ledger's MQTT loop: one thread doing read → verify → batch → commit → sign → publish → ack.

Measured by the prototype: handing work between threads made it slower, so one thread drives the
socket itself (select + paho's loop_read/loop_write) and commits whenever the socket has drained
or the batch is full (group commit: one fsync for many requests, and no reply before its commit).

The broker is not a safe store: Mosquitto saves queues only every autosave interval and drops
silently past max_queued_messages. So the ledger keeps a persistent session with a fixed client id
(its broker username), acknowledges a request only once its outcome is durable, and relies on the
terminals re-sending until they hold a signed Result.

Crash accounting: before a batch is processed its message hashes go to ``<db>.inflight`` (no fsync:
it only has to survive a process crash, not a power cut). After a crash, those messages are counted
in the ``poison`` table, processed one at a time, and set aside after MAX_ATTEMPTS (into the
``set_aside`` table, where ``fieldpos ledger set-aside`` lists and retries them).

A store that cannot be written (disk full, I/O error, read-only) is not a message's fault, and
counting it as a crash once set genuine sales aside. So the loop catches StoreUnavailableError,
acknowledges nothing, leaves the broker (the persistent session keeps the unacknowledged requests;
the terminals keep theirs in their outboxes), probes the store with a tiny write transaction with
back-off, and comes back by itself; the outage is recorded as a STORE_UNAVAILABLE alert with its
duration once the store can hold it (until then it lives in memory and the log).

Under systemd (tools/systemd/fieldpos-ledger.service) the loop sends READY=1 once subscribed and
WATCHDOG=1 while it turns, and every start is counted: a LEDGER_RESTARTED alert says how many
starts the last RESTART_WINDOW_MS saw, so a restart loop is visible.
"""

from contextlib import contextmanager
import hashlib
import logging
import os
from pathlib import Path
import select
import socket
import tempfile
import threading
import time

from protocol import topics
from protocol.reasons import Reason
from transport import mqtt
from transport.broker_config import worker_username

from . import broadcasts
from .errors import StoreUnavailableError, TransientStoreError
from .intake import Intake, Reply
from .sd_notify import SystemdNotifier
from .store import store_fault

log = logging.getLogger("fieldpos.ledger.service")

# Up to this many requests share one commit. 256 x ~0.5 KiB keeps a batch well inside SQLite's page
# cache, and at 2,000/s a full batch still answers in about 0.1 s.
MAX_BATCH = 256
# A message in flight during this many ledger crashes is set aside instead of being tried again.
MAX_ATTEMPTS = 3
IDLE_POLL_S = 0.05
# A fresh blocklist snapshot at least this often, so offline terminals' copies stay young.
BLOCKLIST_REFRESH_S = 300
RECONNECT_DELAY_S = (0.2, 5.0)
# Probing an unwritable store: first after this long, doubling up to the cap. A full disk is freed by
# a person; 10 s between probes is quick enough for them and quiet in the log.
STORE_PROBE_DELAY_S = (0.2, 10.0)
# Starts within this window are counted in the LEDGER_RESTARTED alert (systemd's RestartSec is 2 s:
# a ledger that dies at once restarts about 300 times in it).
RESTART_WINDOW_MS = 10 * 60 * 1000
# Ledger workers share the park's request and status topics as one MQTT 5 shared-subscription group.
SHARE_GROUP = "$share/ledger/"


@contextmanager
def _corked(sock):
    """Hold back partial TCP segments on ``sock`` until the block ends (Linux's TCP_CORK; elsewhere
    nothing changes). Held at most 200 ms by the kernel, should the block never end."""
    cork = getattr(socket, "TCP_CORK", None)
    try:
        if sock is not None and cork is not None:
            sock.setsockopt(socket.IPPROTO_TCP, cork, 1)
        else:
            sock = None
    except (OSError, AttributeError):
        sock = None
    try:
        yield
    finally:
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, cork, 0)  # uncorking sends what is held at once
            except OSError:
                pass  # the connection is gone: the loop notices on its next read


class LedgerService:
    def __init__(self, intake: Intake, *, park_id: str, host: str, port: int, username: str, password: str,
                 mqtt_version: str = "5", tls_ca_pem: str | None = None, inflight_path: Path | None = None,
                 max_batch: int = MAX_BATCH, worker: int | None = None):
        """``worker``: this process is ledger worker ``worker`` of several on one PostgreSQL store
        (``fieldpos ledger serve --workers N``): it logs in as its own user (worker_username) and
        takes its share of the park's requests through MQTT 5 shared subscriptions (``$share/ledger/``)
        in a session that ends with its connection. A persistent member of a shared subscription
        keeps being handed its share while it is away (Mosquitto 2.0: the messages wait in its
        session for its return, bench/shared_offline.py measures it), so a dead worker would strand
        them; with no session, what it had in hand is re-sent by the terminals (QoS 1 at their end,
        idempotent at ours) and new requests go to the workers that are connected."""
        self.intake = intake
        self.park_id = park_id
        self.host, self.port = host, port
        self.max_batch = max_batch
        self.worker = worker
        self.is_shared = worker is not None
        client_id = worker_username(username, worker) if self.is_shared else username
        if inflight_path is None and intake.store.is_shared:
            # A server's store has no file to sit beside: one in-flight record per worker, kept across restarts.
            tag = hashlib.sha256(f"{intake.store.path} {client_id}".encode()).hexdigest()[:16]
            inflight_path = Path(tempfile.gettempdir()) / f"fieldpos-ledger-{tag}.inflight"
        self.inflight_path = Path(inflight_path or (intake.store.path + ".inflight"))
        self.client = mqtt.make_client(client_id, username=client_id, password=password, mqtt_version=mqtt_version,
                                       tls_ca_pem=tls_ca_pem, manual_ack=True, persistent=not self.is_shared)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self._incoming: list = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.is_subscribed = threading.Event()
        self.batches = 0
        self.transient_failures = 0
        self._suspects: set[str] = set()
        self._needs_snapshots = False
        self._published_blocklist_version = None
        self._blocklist_published_at = float("-inf")
        self._published_config_changes = None  # the park's count of config changes the configs published carry
        self.systemd = SystemdNotifier()
        # The store outage under way: (first failure's ledger time, the error), kept in memory because
        # the store cannot hold it yet; recorded as an alert when the store works again.
        self.store_outage: tuple[int, str] | None = None
        self.store_outages = 0
        self.failed_store_probes = 0

    # ------------------------------------------------------------ lifecycle
    def start(self) -> "LedgerService":
        """Run in a background thread (tests, demo); ``run`` blocks instead (the ledger process)."""
        self._thread = threading.Thread(target=self.run, name="ledger", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        try:
            self.client.disconnect()
        except Exception:  # already gone
            pass

    def run(self) -> None:
        # Both write to the store: on a full disk the ledger waits here instead of exiting (a
        # restart loop under systemd that would count crashes against nothing in particular).
        for step in (self._recover_in_flight, self._count_start):
            while not self._stop.is_set():
                try:
                    step()
                    break
                except StoreUnavailableError as error:
                    self._store_lost(error)
                    self._wait_for_store()
        delay = RECONNECT_DELAY_S[0]
        while not self._stop.is_set():
            if self.store_outage is not None:
                self._wait_for_store()
                continue
            try:
                self.client.connect(self.host, self.port, **mqtt.connect_arguments(self.client, persistent=not self.is_shared))
            except OSError as error:
                log.warning("broker %s:%s unreachable (%s); retrying in %.1f s", self.host, self.port, error, delay)
                self._sleep_with_watchdog(delay)
                delay = min(delay * 2, RECONNECT_DELAY_S[1])
                continue
            delay = RECONNECT_DELAY_S[0]
            self._serve_connection()
            self.is_subscribed.clear()
            self._incoming.clear()  # unacked: the broker redelivers them on our next session
            self.systemd.status("not connected to the broker")

    # ------------------------------------------------------------ paho callbacks (on this thread)
    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if not mqtt.is_success(reason_code):
            log.error("broker refused the ledger: %s", reason_code)
            return
        mqtt.set_nodelay(client)
        # Subscribe on every connect: a broker that lost its state (SIGKILL before autosave) has
        # forgotten our session, and the clean-start default would have forgotten it anyway.
        requests, statuses = topics.all_requests(self.park_id), topics.all_statuses(self.park_id)
        if self.is_shared:  # each message to one worker of the group
            requests, statuses = f"{SHARE_GROUP}{requests}", f"{SHARE_GROUP}{statuses}"
        client.subscribe([(requests, 1), (statuses, 1)])
        self._needs_snapshots = True  # the broker may have lost our retained snapshots: publish again
        self.is_subscribed.set()
        self.systemd.ready(f"serving park {self.park_id}")

    def _on_message(self, client, userdata, message):
        self._incoming.append(message)

    # ------------------------------------------------------------ the loop
    def _serve_connection(self) -> None:
        client = self.client
        while not self._stop.is_set():
            self.systemd.watchdog()
            sock = client.socket()
            if sock is None:
                return
            wants_write = [sock] if client.want_write() else []
            readable, writable, _ = select.select([sock], wants_write, [], 0 if self._incoming else IDLE_POLL_S)
            if readable:
                # Drain what the socket already holds, so one commit covers everything that arrived.
                while len(self._incoming) < self.max_batch:
                    if client.loop_read() != 0:
                        return
                    if not select.select([sock], [], [], 0)[0]:
                        break
            if writable and client.loop_write() != 0:
                return
            if client.loop_misc() != 0:
                return
            if self._incoming:
                self._process_incoming()
            if self.store_outage is None:
                self._broadcast_unless_store_fails()
            if self.store_outage is not None:
                # Leave with everything unacknowledged: the broker keeps it in our session and hands
                # it out again when we are back; nothing is answered that was not stored.
                client.disconnect()
                return

    def _process_incoming(self) -> None:
        messages, self._incoming = self._incoming, []
        batch = []
        for message in messages:
            sha = hashlib.sha256(message.payload).hexdigest()
            if sha in self._suspects:
                self._process_suspect(message, sha)
            else:
                batch.append((message, sha))
        for start in range(0, len(batch), self.max_batch):
            if self.store_outage is not None:
                return
            self._process_batch(batch[start : start + self.max_batch])

    def _process_batch(self, batch) -> bool:
        """Process, publish, acknowledge; False (nothing answered, nothing acknowledged) when the
        store cannot be written."""
        try:
            self._write_in_flight(batch)
            replies = self.intake.process([(m.topic, m.payload) for m, _ in batch])
        except StoreUnavailableError as error:
            self._store_lost(error, len(batch))
            return False
        except TransientStoreError as error:
            # Nothing was stored and nothing is answered; the terminals re-send and will succeed.
            self.transient_failures += 1
            log.warning("store busy, %d requests left to their senders' retry: %s", len(batch), error)
            replies = []
        self._publish_and_ack(replies, [m for m, _ in batch])
        self._clear_in_flight()
        self.batches += 1
        return True

    def _process_suspect(self, message, sha: str) -> None:
        store = self.intake.store
        try:
            if store.attempts(sha) >= MAX_ATTEMPTS:
                self._set_aside_after_crashes(message, sha)
                return
        except StoreUnavailableError as error:
            self._store_lost(error, 1)
            return
        except Exception as error:  # a read that failed: a full disk's reads fail too, sometimes
            if (fault := store_fault(error)) is None:
                raise
            self._store_lost(fault, 1)
            return
        if not self._process_batch([(message, sha)]):  # alone, so a crash counts against it only
            return
        # It went through: it was an innocent bystander of the crash, not its cause.
        self._suspects.discard(sha)
        try:
            with store.batch():
                store.clear_attempts(sha)
        except TransientStoreError:
            pass  # counted again after the next crash, harmlessly: it is tried alone once more

    def _set_aside_after_crashes(self, message, sha: str) -> None:
        store, detail = self.intake.store, f"crashed the ledger {MAX_ATTEMPTS} times"
        now_ms = self.intake.clock_ms()
        try:
            with store.batch():
                store.set_aside(sha, message.topic, message.payload, detail, now_ms)
                reply = self.intake.refuse(message.topic, message.payload, None, Reason.SET_ASIDE, detail, now_ms)
        except StoreUnavailableError as error:
            self._store_lost(error, 1)
            return
        except TransientStoreError:
            return  # acknowledged below by no one: the terminal re-sends
        log.error("set aside message %s on %s after %d crashes (fieldpos ledger set-aside list)", sha, message.topic,
                  MAX_ATTEMPTS)
        self._publish_and_ack([reply] if reply else [], [message])

    # ------------------------------------------------------------ an unwritable store
    def _store_lost(self, error: Exception, unanswered: int = 0) -> None:
        """The store cannot be written: note the outage (in memory: the store cannot hold it) and
        let the loop leave the broker. Nothing is blamed on the messages in hand."""
        self._clear_in_flight()
        if self.store_outage is None:
            self.store_outage = (self.intake.clock_ms(), str(error)[:300])
            self.store_outages += 1
            log.error("ALERT STORE_UNAVAILABLE: %s; %d requests left unacknowledged at the broker; the ledger "
                      "stops taking requests until a test write works", error, unanswered)
            self.systemd.status(f"STORE UNAVAILABLE: {str(error)[:120]}")

    def _wait_for_store(self) -> None:
        """Probe the store with a tiny write transaction, with back-off, until one commits; then
        record the outage as a STORE_UNAVAILABLE alert with its duration."""
        delay = STORE_PROBE_DELAY_S[0]
        while not self._stop.is_set():
            self._sleep_with_watchdog(delay)
            now_ms = self.intake.clock_ms()
            try:
                self.intake.store.probe(now_ms)
                started_ms, error = self.store_outage or (now_ms, "")
                with self.intake.store.batch():
                    self.intake.store.record_alert(
                        now_ms, "STORE_UNAVAILABLE",
                        f"the store could not be written for {now_ms - started_ms} ms (from {started_ms}): {error}; "
                        f"requests waited at the broker and on the terminals")
            except TransientStoreError as fault:
                self.failed_store_probes += 1
                log.warning("store still unavailable (%s); next test write in %.1f s", fault, delay)
                delay = min(delay * 2, STORE_PROBE_DELAY_S[1])
                continue
            log.warning("store writable again after %d ms; taking requests", now_ms - started_ms)
            self.store_outage = None
            return

    def _sleep_with_watchdog(self, delay_s: float) -> None:
        # The loop is alive and doing its job (waiting for the disk): systemd must not kill it.
        deadline = time.monotonic() + delay_s
        while not self._stop.is_set() and (left := deadline - time.monotonic()) > 0:
            self.systemd.watchdog()
            self._stop.wait(min(left, self.systemd.ping_interval_s))

    def _count_start(self) -> None:
        now_ms = self.intake.clock_ms()
        with self.intake.store.batch():
            starts, had_started = self.intake.store.record_start(now_ms, RESTART_WINDOW_MS)
            if had_started:
                self.intake.store.record_alert(
                    now_ms, "LEDGER_RESTARTED",
                    f"the ledger started; {starts} starts in the last {RESTART_WINDOW_MS // 60_000} minutes")
        if starts > 3:
            log.error("ALERT LEDGER_RESTARTED: %d starts in the last %d minutes: a restart loop", starts,
                      RESTART_WINDOW_MS // 60_000)

    # ------------------------------------------------------------ snapshots and deltas
    def _broadcast_unless_store_fails(self) -> None:
        # Its reads run outside a batch: a failing disk shows up there as a bare sqlite3 or OS error.
        try:
            self._broadcast()
        except Exception as error:
            if (fault := store_fault(error)) is None:
                raise
            if isinstance(fault, StoreUnavailableError):
                self._store_lost(fault)

    def _broadcast(self) -> None:
        """Publish what terminals must hold: configs and the blocklist snapshot after a (re)connect
        or a Hello, a delta and a new snapshot when the blocklist changed, and a fresh snapshot
        every BLOCKLIST_REFRESH_S so a terminal's copy does not expire while all is quiet."""
        store, keys, park = self.intake.store, self.intake.keys, self.park_id
        greeted, self.intake.greeted = self.intake.greeted, set()
        # An operator's change to what configs carry (``fieldpos station``/``staff``, run as another
        # process) reaches every terminal: the park's count of config changes moved since we published.
        config_changes = store.config_change_version(park)
        everyone = self._needs_snapshots or config_changes != self._published_config_changes
        version = store.blocklist_version(park)
        stale = time.monotonic() - self._blocklist_published_at > BLOCKLIST_REFRESH_S
        if not (everyone or greeted or stale or version != self._published_blocklist_version):
            return
        now_ms = self.intake.clock_ms()
        messages = []
        try:
            with store.batch():  # config versions are taken from the store
                for terminal_id in (store.terminals(park) if everyone else sorted(greeted)):
                    messages.append((*broadcasts.config_payload(store, keys, park, terminal_id, now_ms), True))
        except TransientStoreError:
            return  # tried again on the next turn
        if self._published_blocklist_version is not None and version > self._published_blocklist_version:
            delta = broadcasts.delta_payload(store, keys, park, self._published_blocklist_version, now_ms)
            if delta is not None:
                messages.append((delta[0], delta[1], False))
        topic, snapshot, version = broadcasts.blocklist_payload(store, keys, park, now_ms)
        messages.append((topic, snapshot, True))
        for topic, payload, retain in messages:
            self.client.publish(topic, payload, qos=1, retain=retain)
        self._needs_snapshots = False
        self._published_config_changes = config_changes
        self._published_blocklist_version = version
        self._blocklist_published_at = time.monotonic()

    def _publish_and_ack(self, replies: list[Reply], messages) -> None:
        # paho writes each packet the moment it is queued and TCP_NODELAY sends each write as its own
        # segment: corked, a batch's replies and acknowledgements leave in as few segments as fit, so
        # the broker reads them in a few wakeups instead of two per request.
        with _corked(self.client.socket()):
            for reply in replies:
                self.client.publish(reply.topic, reply.payload, qos=1)
            for message in messages:
                self.client.ack(message.mid, message.qos)

    # ------------------------------------------------------------ crash accounting
    def _write_in_flight(self, batch) -> None:
        data = "".join(f"{sha} {message.topic}\n" for message, sha in batch).encode()
        try:
            os.ftruncate(self._inflight_fd, 0)
            if data:
                os.pwrite(self._inflight_fd, data, 0)
        except OSError as error:
            # Its disk is the store's: full there means full for the books too.
            raise StoreUnavailableError(f"in-flight record not written: {error}") from error

    def _clear_in_flight(self) -> None:
        # Cutting a file to nothing needs no space. Not clearing it after an outage would count a
        # crash against requests that were never being processed.
        try:
            os.ftruncate(self._inflight_fd, 0)
        except (OSError, AttributeError):
            pass

    def _recover_in_flight(self) -> None:
        try:
            lines = self.inflight_path.read_text().splitlines()
        except FileNotFoundError:
            lines = []
        # One crash counts once per message, even when a terminal's re-send put it in the batch twice.
        entries = list(dict.fromkeys(tuple(line.split(" ", 1)) for line in lines if " " in line))
        if entries:
            log.warning("%d messages were in flight when the ledger stopped; counting an attempt each", len(entries))
            self.intake.store.count_attempts(entries)
        # Every message with a crash against it is handled alone from now on (a short list).
        self._suspects = self.intake.store.poison_hashes()
        try:
            self._inflight_fd = os.open(self.inflight_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError as error:
            raise StoreUnavailableError(f"in-flight record not opened: {error}") from error
