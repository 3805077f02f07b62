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
"""

import gc

try:
    from time import ticks_diff as _ticks_diff  # MicroPython: its ticks wrap around
except ImportError:
    def _ticks_diff(new, old):
        return new - old

from tap import card, ed25519, envelope, hal, ids, messages
from tap.errors import TapError, TOPIC_MISMATCH, UNKNOWN_KEY, UNKNOWN_TYPE
from tap.state import StateError

# Ledger key purposes the bundle names, and the envelope purpose each signs.
_LEDGER_PURPOSES = ("result", "config", "blocklist", "card-record")


def _entry_key(no, issuance):
    return no + ":" + str(issuance)


class TapApp:
    def __init__(self, bundle, state, outputs, ticks_ms, random_bytes, result_timeout_ms=5000):
        self.park = ids.check(bundle["park_id"], "park")
        self.terminal = ids.check(bundle["terminal_id"], "terminal")
        self.key_id = ids.check(bundle["key_id"], "key id")
        self.signing_key = ed25519.SigningKey(bytes.fromhex(bundle["signing_seed"]))
        self.ledger_keys = {}
        for purpose in _LEDGER_PURPOSES:
            entry = bundle["ledger_keys"][purpose]
            self.ledger_keys[purpose] = (entry["key_id"], ed25519.VerifyKey(bytes.fromhex(entry["public_key"])))
        self.card_key_master = bytes.fromhex(bundle["card_key_master"])
        self.state = state
        self.outputs = outputs
        self.ticks_ms = ticks_ms
        self.random_bytes = random_bytes
        self.result_timeout_ms = result_timeout_ms
        self.request_topic = ids.request_topic(self.park, self.terminal)
        self.result_topic = ids.result_topic(self.park, self.terminal)
        self.config_topic = ids.config_topic(self.park, self.terminal)
        self.blocklist_topic = ids.blocklist_topic(self.park)
        self.client = None
        self.clock_offset_ms = None  # ledger time - ticks, from the last Welcome
        self.hello_nonce = None
        self.welcomed = False
        self.replies = {}            # request_sha256 -> Result (dict) not yet taken
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
            client.publish(self.request_topic, bytes.fromhex(entry["payload"]))

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
                self._take_blocklist(payload)
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
        config = messages.parse(self._open(payload, envelope.CONFIG, self.config_topic, envelope.MAX_BROADCAST_BYTES),
                                messages.BROADCASTS)
        if config["type"] != "config":
            raise TapError(UNKNOWN_TYPE, "not a config on the config topic")
        self._check_ours(config)
        held = self.config
        if held is not None and (config["version"], config["issued_ms"]) <= (held["version"], held["issued_ms"]):
            return  # the same or an older one: a replay, or the retained copy again
        self.config = config
        if save:
            self.state.save_config_payload(payload)

    def _take_blocklist(self, payload):
        message = messages.parse(self._open(payload, envelope.BLOCKLIST, self.blocklist_topic,
                                            envelope.MAX_BROADCAST_BYTES), messages.BROADCASTS)
        if message["type"] not in ("blocklist", "blocklist_delta"):
            raise TapError(UNKNOWN_TYPE, "not a blocklist on the blocklist topic")
        self._check_ours(message)
        held = self.state.data["blocklist"]
        if message["type"] == "blocklist":
            if held is not None and (message["version"], message["issued_ms"]) <= (held["version"], held["issued_ms"]):
                return
            self.state.data["blocklist"] = {
                "version": message["version"], "issued_ms": message["issued_ms"],
                "blocked": [_entry_key(e["no"], e["issuance"]) for e in message["blocked"]],
                "low": dict((_entry_key(e["no"], e["issuance"]), e["fen"]) for e in message["low"]),
            }
        else:
            if held is None or message["from_version"] != held["version"]:
                if self.client is not None:
                    self.send_hello()  # missed one: the ledger re-publishes the snapshot on hello
                return
            blocked = [key for key in held["blocked"]
                       if key not in [_entry_key(e["no"], e["issuance"]) for e in message["unblocked"]]]
            for e in message["blocked"]:
                if _entry_key(e["no"], e["issuance"]) not in blocked:
                    blocked.append(_entry_key(e["no"], e["issuance"]))
            low = held["low"]
            for e in message["low"]:
                if e["fen"] < 0:
                    low.pop(_entry_key(e["no"], e["issuance"]), None)
                else:
                    low[_entry_key(e["no"], e["issuance"])] = e["fen"]
            held.update({"version": message["version"], "issued_ms": message["issued_ms"], "blocked": blocked, "low": low})
        self.state.save()

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
            entry = self._queue("charge", record, amount_fen, item)
        except StateError as error:
            return self._show(hal.ERROR, str(error))
        reply = self._send_and_wait(entry)
        if reply is None:
            return self._no_answer(entry, record, amount_fen, item)
        return self._answer(entry, reply)

    def _queue(self, kind, record, amount_fen, item, supersedes=None):
        gc.collect()  # signing makes many small integers: start it with the heap in one piece
        seq = self.state.take_seq()
        fields = messages.charge_fields(self.park, self.terminal, seq, self.now_ms(), self.clock_offset_ms is None,
                                        self.terminal, self.config["version"], record.card_ref(), amount_fen, item)
        spec = messages.CHARGE
        if kind == "offline_charge":
            spec = messages.OFFLINE_CHARGE
            fields["supersedes_seq"] = supersedes
            fields["approved_ms"] = self.now_ms()
        payload = self._seal(messages.build(spec, fields))
        entry = {"seq": seq, "kind": kind, "payload": payload.hex(), "sha256": envelope.sha256_hex(payload),
                 "card": _entry_key(record.card_no, record.issuance), "amount_fen": amount_fen}
        self.state.queue(entry)  # saved (seq and request) before it is sent
        return entry

    def _send_and_wait(self, entry):
        if self.client is None:
            return None
        try:
            self.client.publish(self.request_topic, bytes.fromhex(entry["payload"]))
            self._wait_until(lambda: entry["sha256"] in self.replies, self.result_timeout_ms)
        except OSError:
            self.client = None  # the connection is gone: the caller reconnects and attach() re-sends
        return self.replies.pop(entry["sha256"], None)

    def _answer(self, entry, reply):
        if reply["reason"] in messages.NOT_FINAL_REASONS:
            return self._show(hal.PENDING, "处理中 Held by the ledger: not charged yet")
        self.state.settle(entry["sha256"])
        if reply["outcome"] == "approved":
            lines = ["已付 Paid " + _yuan(entry["amount_fen"])]
            if reply["balances"] is not None:
                lines.append("余额 Balance " + _yuan(reply["balances"]["fen"]))
            return self._show(hal.APPROVED, *lines)
        return self._show(hal.DECLINED, "拒绝 Declined: " + reply["reason"])

    # ------------------------------------------------------------ offline
    def offline_refusal(self, record, amount_fen):
        """Why the tap may not sell offline now, or None when the signed policy allows it."""
        if self.clock_offset_ms is None:
            return "the clock was not set by the ledger since boot"
        policy = self.config["offline"]
        counters = self.state.data["offline"]
        held = self.state.data["blocklist"]
        now = self.now_ms()
        key = _entry_key(record.card_no, record.issuance)
        if "fixed" not in policy["allowed_modes"].split(","):
            return "the park does not allow fixed-price sales offline"
        if held is None or now - held["issued_ms"] > policy["blocklist_max_age_ms"]:
            return "the blocklist is too old"
        if now - counters["last_contact_ms"] > policy["max_offline_ms"]:
            return "offline for too long"
        if amount_fen > policy["max_transaction_fen"] or counters["count"] + 1 > policy["max_count"]:
            return "over the offline sale limits"
        if counters["total_fen"] + amount_fen > policy["max_terminal_fen"]:
            return "over the terminal's offline total"
        if counters["cards"].get(key, 0) + amount_fen > policy["max_card_fen"]:
            return "over the card's offline total"
        if key in held["low"] and held["low"][key] < amount_fen:
            return "the card's balance is too low"
        return None

    def _no_answer(self, entry, record, amount_fen, item):
        refusal = self.offline_refusal(record, amount_fen)
        if refusal is not None:
            return self._show(hal.PENDING, "无应答 No answer: not sold (" + refusal + ")")
        counters = self.state.data["offline"]
        counters["count"] += 1
        counters["total_fen"] += amount_fen
        key = _entry_key(record.card_no, record.issuance)
        counters["cards"][key] = counters["cards"].get(key, 0) + amount_fen
        try:
            self._queue("offline_charge", record, amount_fen, item, supersedes=entry["seq"])
        except StateError as error:
            return self._show(hal.ERROR, str(error))
        return self._show(hal.APPROVED, "离线已付 Paid offline " + _yuan(amount_fen))

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


def _yuan(fen):
    sign = "-" if fen < 0 else ""
    fen = -fen if fen < 0 else fen
    return sign + str(fen // 100) + "." + ("0" + str(fen % 100))[-2:]
