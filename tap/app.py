"""The tap point: a card tap -> the fixed amount from the signed config -> a signed charge ->
publish -> the ledger's signed Result -> LED, buzzer, display.

Online by default. When the ledger does not answer in time, the tap sells offline only within the
park's signed offline policy (its config's ``offline``; mode ``fixed`` allowed) and its clock was
set by the ledger since boot, as an ``offline_charge`` that supersedes the unanswered attempt, so
the ledger applies at most one of the two. A card on the signed blocklist is refused at the tap.
Every request is saved on flash (tap.state) before it is sent; the unanswered ones are sent again,
byte for byte, after every reconnect.

No I/O here of its own: the MQTT client, the clock, the random source, the state file and the
outputs are handed in, so the same code runs on a board, on the unix port and in tests.

The heap (96 KiB on a board, with this package's code in it): what is needed only now and then —
reading a config (tap.configs) or a blocklist (tap.blocklists), selling offline (tap.offline) — is a module loaded
for that task and dropped after it (:func:`_load`, :func:`_drop`); a request waits for its answer on
flash, not in the heap (tap.state); a collection runs before each signature and verification, the
moments the big-integer arithmetic needs the heap in one piece.
"""

import gc
import hashlib
import sys

try:
    from time import ticks_diff as _ticks_diff  # MicroPython: its ticks wrap around
except ImportError:
    def _ticks_diff(new, old):
        return new - old

from tap import canonical, card, ed25519, envelope, hal, messages
from tap.errors import TapError, TOPIC_MISMATCH, UNKNOWN_KEY, UNKNOWN_TYPE
from tap.state import StateError

# Ledger key purposes the bundle names, and the envelope purpose each signs. The keys of those
# checked on every sale are held decoded (a VerifyKey keeps its point: a square root saved per
# check); the config's and blocklist's, read seldom, as their 32 bytes.
_LEDGER_PURPOSES = ("result", "config", "blocklist", "card-record")
_EVERY_SALE = ("result", "card-record")


def _entry_key(no, issuance):
    return no + ":" + str(issuance)


def _load(name):
    """tap.<name>, imported for one task; :func:`_drop` lets it go again."""
    gc.collect()  # its code is a few hundred small blocks: put them in the holes, not past them
    __import__("tap." + name)
    return sys.modules["tap." + name]


def _drop(name):
    """Forget tap.<name> (sys.modules and the package's attribute hold it): the next collection
    frees its code and tables."""
    sys.modules.pop("tap." + name, None)
    package = sys.modules.get("tap")
    if package is not None and name in dir(package):
        delattr(package, name)


def _is_newer(obj, held):
    """False only for a snapshot (a config or a full blocklist) whose version and time are
    not above the one held; anything else goes on to the full check."""
    if held is None or obj.get("type") not in ("config", "blocklist"):
        return True
    version, issued = obj.get("version"), obj.get("issued_ms")
    if type(version) is not int or type(issued) is not int:
        return True
    return (version, issued) > (held["version"], held["issued_ms"])


class TapApp:
    def __init__(self, bundle, state, outputs, ticks_ms, random_bytes, result_timeout_ms=5000):
        self.park = envelope.check_id(bundle["park_id"], "park")
        self.terminal = envelope.check_id(bundle["terminal_id"], "terminal")
        self.key_id = envelope.check_id(bundle["key_id"], "key id")
        self.signing_key = ed25519.SigningKey(bytes.fromhex(bundle["signing_seed"]))
        self.ledger_keys = {}
        for purpose in _LEDGER_PURPOSES:
            entry = bundle["ledger_keys"][purpose]
            key = bytes.fromhex(entry["public_key"])
            if purpose in _EVERY_SALE:
                key = ed25519.VerifyKey(key)
            self.ledger_keys[purpose] = (entry["key_id"], key)
        self.card_key_master = bytes.fromhex(bundle["card_key_master"])
        self.state = state
        self.outputs = outputs
        self.ticks_ms = ticks_ms
        self.random_bytes = random_bytes
        self.result_timeout_ms = result_timeout_ms
        self.request_topic = envelope.topic(self.park, self.terminal, "req")
        self.result_topic = envelope.topic(self.park, self.terminal, "res")
        self.config_topic = envelope.topic(self.park, self.terminal, "cfg")
        self.blocklist_topic = envelope.topic(self.park, None, None)
        self.client = None
        self.clock_offset_ms = None  # ledger time - ticks, from the last Welcome
        self.hello_nonce = None
        self.welcomed = False
        self.replies = {}            # request_sha256 -> Result (dict) not yet taken
        self.taken = {}              # purpose -> SHA-256 of the config / blocklist payload taken last
        self.refusals = []           # (code, message) of messages dropped, newest last (a few)
        self.config = None
        saved = state.config_payload()
        if saved is not None:  # re-checked at boot: the file is not trusted more than the wire
            try:
                self._take_config(saved, save=False)
            except TapError as error:
                self._note(error)

    # ------------------------------------------------------------ clock
    def now_ms(self):
        if self.clock_offset_ms is None:
            return 0
        return self.clock_offset_ms + self.ticks_ms()

    # ------------------------------------------------------------ connection
    def attach(self, client):
        """Take a connected MQTT client: subscribe, greet the ledger, re-send what is unanswered."""
        self.client = client
        client.on_message = self.on_message
        for topic in (self.result_topic, self.config_topic, self.blocklist_topic):
            client.subscribe(topic)
        self.send_hello()
        for entry in list(self.state.outbox()):
            client.publish(self.request_topic, self.state.payload(entry))

    def send_hello(self):
        self.hello_nonce = self.random_bytes(16).hex()
        body = messages.build(messages.HELLO, {"park": self.park, "terminal": self.terminal,
                                               "nonce": self.hello_nonce, "terminal_time_ms": self.now_ms()})
        self.client.publish(self.request_topic, self._seal(body))

    def wait_welcome(self, timeout_ms):
        return self._wait_until(lambda: self.welcomed, timeout_ms)

    def poll(self, timeout_ms=0):
        """Handle what the broker sent within ``timeout_ms`` (configs, blocklists, late Results:
        the answers to re-sent requests close them)."""
        packet = self.client.wait(timeout_ms)
        if self.replies:
            self._settle_answered()
        return packet

    def _wait_until(self, done, timeout_ms):
        start = self.ticks_ms()
        while not done():
            left = timeout_ms - _ticks_diff(self.ticks_ms(), start)
            if left <= 0:
                return False
            self.client.wait(left)
        return True

    def _seal(self, body):
        return envelope.seal(body, self.signing_key, self.key_id, envelope.REQUEST, self.request_topic)

    # ------------------------------------------------------------ what the ledger sends
    def _note(self, error):
        self.refusals.append((error.code, error.message))
        del self.refusals[:-8]

    def _open(self, payload, purpose, topic, max_bytes):
        parts = envelope.split(payload, max_bytes)
        key_id, key = self.ledger_keys[purpose]
        if parts.key_id != key_id:
            raise TapError(UNKNOWN_KEY, "signed by " + parts.key_id + ", not the ledger's " + purpose + " key")
        if type(key) is bytes:
            key = ed25519.VerifyKey(key)
        return envelope.verify(parts, key, purpose, topic)

    def on_message(self, topic, payload):
        """Every message from the broker. One that fails a check is dropped and noted."""
        gc.collect()  # verifying takes ~10 KiB of big integers: start it with the heap in one piece
        try:
            if topic == self.result_topic:
                self._take_reply(payload)
            elif topic == self.config_topic:
                self._take_config(payload)
            elif topic == self.blocklist_topic:
                self._broadcast(payload, envelope.BLOCKLIST, self.blocklist_topic)
        except TapError as error:
            self._note(error)
        except MemoryError:  # a message too big for the heap: dropped, the tap sells on
            gc.collect()
            self._note(TapError("OUT_OF_MEMORY", "a message on " + topic + " did not fit in the heap"))

    def _check_ours(self, obj):
        if obj["park"] != self.park or obj.get("terminal", self.terminal) != self.terminal:
            raise TapError(TOPIC_MISMATCH, "addressed to another park or terminal")

    def _take_reply(self, payload):
        reply = messages.parse(self._open(payload, envelope.RESULT, self.result_topic, envelope.MAX_PAYLOAD_BYTES),
                               messages.REPLIES)
        self._check_ours(reply)
        self.state.data["offline"]["last_contact_ms"] = self.now_ms()
        if reply["type"] == "welcome":
            if reply["nonce"] != self.hello_nonce:
                raise TapError(UNKNOWN_TYPE, "a Welcome to a hello the tap did not send")
            self.clock_offset_ms = reply["ledger_time_ms"] - self.ticks_ms()
            self.state.data["offline"]["last_contact_ms"] = reply["ledger_time_ms"]
            self.state.skip_to(reply["highest_seq"])
            self.welcomed = True
            return
        if not any(entry["sha256"] == reply["request_sha256"] for entry in self.state.outbox()):
            raise TapError(UNKNOWN_TYPE, "a Result to no request the tap holds")
        self.replies[reply["request_sha256"]] = reply

    def _take_config(self, payload, save=True):
        if self._broadcast(payload, envelope.CONFIG, self.config_topic) and save:
            self.state.save_config_payload(payload)

    def _broadcast(self, payload, purpose, topic):
        """A config or blocklist from the ledger, read by tap.configs or tap.blocklists (loaded
        for it); True when the tap took it (a newer one)."""
        digest = hashlib.sha256(payload).digest()
        if digest == self.taken.get(purpose):
            # The very payload taken last (the retained copy again, the ledger's re-publish after
            # a hello): neither its signature check, the heap's largest need, nor a module is
            # spent on it.
            return False
        obj = canonical.decode(self._open(payload, purpose, topic, envelope.MAX_BROADCAST_BYTES))
        if not _is_newer(obj, self.config if purpose == envelope.CONFIG else self.state.data["blocklist"]):
            return False  # a replay of an older one: nothing to take, nothing to load
        name = "configs" if purpose == envelope.CONFIG else "blocklists"
        reader = _load(name)
        try:
            if purpose == envelope.CONFIG:
                config = reader.take_config(self, obj)
                taken = config is not None
                if taken:
                    self.config = config
            else:
                taken = reader.take_blocklist(self, obj)
                if taken:
                    self.state.save()
        finally:
            reader = None
            _drop(name)
        if taken:
            self.taken[purpose] = digest
        return taken

    # ------------------------------------------------------------ a tap
    def price(self):
        """(amount in fen, item name) from the signed config: the station's first item, in mode
        fixed. None when the tap has no such config (it then sells nothing)."""
        station = self.config["station"] if self.config is not None else None
        if station is None or station["mode"] != "fixed" or not station["menu"]:
            return None
        item = station["menu"][0]
        return item["price_fen"], item["name"]

    def is_blocked(self, record):
        held = self.state.data["blocklist"]
        return held is not None and _entry_key(record.card_no, record.issuance) in held["blocked"]

    def tap(self, uid, record_bytes):
        """Sell the fixed amount to the card with this UID and record; the outcome shown."""
        try:
            record = card.read_record(record_bytes, uid, self.ledger_keys["card-record"][1], self.park)
        except TapError:
            return self._show(hal.ERROR, "卡无效 Card not valid here")
        if record.kind == "staff":
            return self._show(hal.ERROR, "员工卡 Staff card: not for sale")
        price = self.price()
        if price is None:
            return self._show(hal.ERROR, "未配置 Not set up: no fixed price")
        if self.is_blocked(record):
            return self._show(hal.DECLINED, "卡已锁 Card blocked")
        amount_fen, item = price
        try:
            entry, payload = self.queue("charge", messages.CHARGE, self.charge_fields(record, amount_fen, item),
                                        record, amount_fen)
        except StateError as error:
            return self._show(hal.ERROR, str(error))
        reply = self._send_and_wait(entry, payload)
        payload = None  # on flash until answered: not held in the heap while the tap waits
        if reply is None:
            return self._no_answer(entry, record, amount_fen, item)
        return self._answer(entry, reply)

    def charge_fields(self, record, amount_fen, item):
        """A one-line sale of ``amount_fen`` to the card, with the next seq."""
        return messages.charge_fields(self.park, self.terminal, self.state.take_seq(), self.now_ms(),
                                      self.clock_offset_ms is None, self.terminal, self.config["version"],
                                      record.card_ref(), amount_fen, item)

    def queue(self, kind, spec, fields, record, amount_fen):
        """Sign the request ``fields`` as ``spec`` and save it (seq and payload) before it is sent;
        (the outbox entry, the payload)."""
        seq = fields["seq"]
        body = messages.build(spec, fields)
        fields = None
        gc.collect()  # signing makes many small integers: start it with the heap in one piece
        payload = self._seal(body)
        entry = {"seq": seq, "kind": kind, "sha256": envelope.sha256_hex(payload),
                 "card": _entry_key(record.card_no, record.issuance), "amount_fen": amount_fen}
        self.state.queue(entry, payload)
        return entry, payload

    def _send_and_wait(self, entry, payload):
        if self.client is None:
            return None
        try:
            self.client.publish(self.request_topic, payload)
            self._wait_until(lambda: entry["sha256"] in self.replies, self.result_timeout_ms)
        except OSError:
            self.client = None  # the connection is gone: the caller reconnects and attach() re-sends
        return self.replies.pop(entry["sha256"], None)

    def _answer(self, entry, reply):
        if reply["reason"] in messages.NOT_FINAL_REASONS:
            return self._show(hal.PENDING, "处理中 Held by the ledger: not charged yet")
        self.state.settle(entry["sha256"])
        if reply["outcome"] == "approved":
            lines = ["已付 Paid " + hal.yuan(entry["amount_fen"])]
            if reply["balances"] is not None:
                lines.append("余额 Balance " + hal.yuan(reply["balances"]["fen"]))
            return self._show(hal.APPROVED, *lines)
        return self._show(hal.DECLINED, "拒绝 Declined: " + reply["reason"])

    # ------------------------------------------------------------ offline
    def _no_answer(self, entry, record, amount_fen, item):
        offline = _load("offline")
        try:
            outcome, lines = offline.sell(self, entry, record, amount_fen, item)
        except StateError as error:
            outcome, lines = hal.ERROR, (str(error),)
        finally:
            offline = None
            _drop("offline")
        return self._show(outcome, *lines)

    def upload(self, timeout_ms):
        """Wait up to ``timeout_ms`` for the Results of everything in the outbox (after a
        reconnect re-sent it); how many requests are still unanswered."""
        self._wait_until(lambda: all(e["sha256"] in self.replies for e in self.state.outbox()), timeout_ms)
        self._settle_answered()
        return len(self.state.outbox())

    def _settle_answered(self):
        """Close every request with a final answer in hand; an empty outbox starts a new offline
        window (its counters back to zero)."""
        for entry in list(self.state.outbox()):
            reply = self.replies.pop(entry["sha256"], None)
            if reply is not None and reply["reason"] not in messages.NOT_FINAL_REASONS:
                self.state.settle(entry["sha256"])
        if not self.state.outbox() and self.state.data["offline"]["count"]:
            self.state.data["offline"].update({"count": 0, "total_fen": 0, "cards": {}})
            self.state.save()

    def _show(self, outcome, *lines):
        self.outputs.show(outcome, lines)
        return outcome

