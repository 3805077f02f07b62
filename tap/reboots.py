"""A tap that keeps crashing stops: it counts its boots on flash and, past the park's limit, shows a
fault instead of starting its loop again, and reports itself out of service when it can.

The count is of boots since the tap last ran well: one that has been up for ``HEALTHY_AFTER_MS``
(10 minutes) sets it back to zero. The tap restarts at most N times in a row without lasting that
long; the restart after that stops it. N is the signed offline policy's ``max_reboots`` (the park's
word on how often a terminal may restart before it stops selling; the tap keeps the last one its
config gave, 3 before any). It is kept in its own small file (``/tap_boots.json``), written first
thing at boot: a crash loop caused by a damaged state file still counts. ``flash.sh --board``
writes it afresh, so re-flashing a fixed tap clears the fault; nothing else does.

The report is the tap's signed status (PROTOCOL.md §6.2) with ``is_online`` false, retained on its
status topic: the ledger records it as for any terminal, and the back office shows the tap out of
service. The wire has no field for why; the tap's display says it.
"""

import json
import os

from tap import ed25519, envelope, hal, messages

BOOTS_PATH = "/tap_boots.json"
DEFAULT_MAX_REBOOTS = 3
HEALTHY_AFTER_MS = 10 * 60 * 1000
STATUS = ("TerminalStatus", "status", "park:id terminal:id is_online:bool highest_seq:count queue_depth:count"
          " oldest_queued_ms:time_ms? time_ms:time_ms", None)

try:
    from time import ticks_diff as _ticks_diff  # MicroPython: its ticks wrap around
except ImportError:
    def _ticks_diff(new, old):
        return new - old


def fresh():
    """The record of a tap that has not restarted: what flash.sh --board writes."""
    return {"boots": 0, "max_reboots": DEFAULT_MAX_REBOOTS, "stopped": False, "last_error": ""}


class BootGuard:
    def __init__(self, path, ticks_ms, healthy_after_ms=HEALTHY_AFTER_MS):
        self.path = path
        self.ticks_ms = ticks_ms
        self.healthy_after_ms = healthy_after_ms
        self.record = fresh()
        try:
            with open(path) as file:
                loaded = json.load(file)
            for key in self.record:
                if type(loaded.get(key)) is type(self.record[key]):
                    self.record[key] = loaded[key]
        except (OSError, ValueError, AttributeError):
            pass  # none yet, or damaged: counting starts again (a damaged file must not stop a tap)
        self.started_ms = ticks_ms()
        self.is_healthy = False

    def _save(self):
        temporary = self.path + ".new"
        with open(temporary, "w") as file:
            json.dump(self.record, file)
        os.rename(temporary, self.path)

    def boot(self):
        """Count this boot (saved at once); False when the tap must stop, now or already."""
        record = self.record
        if not record["stopped"]:
            record["boots"] += 1
            record["stopped"] = record["boots"] > record["max_reboots"] + 1
        self._save()
        return not record["stopped"]

    def tick(self, max_reboots=None):
        """Called by the loop: once the tap has run for the healthy time its count goes back to
        zero; ``max_reboots`` is the limit from the config it now holds."""
        changed = False
        if max_reboots is not None and max_reboots != self.record["max_reboots"]:
            self.record["max_reboots"] = max_reboots
            changed = True
        if not self.is_healthy and _ticks_diff(self.ticks_ms(), self.started_ms) >= self.healthy_after_ms:
            self.is_healthy = True
            self.record["boots"] = 0
            changed = True
        if changed:
            self._save()

    def crashed(self, error):
        """Keep what ended this boot (shown when the tap stops)."""
        self.record["last_error"] = (type(error).__name__ + ": " + str(error))[:120]
        self._save()

    def fault_lines(self):
        lines = ["故障 Fault: restarted " + str(self.record["boots"] - 1) + " times", "请联系工作人员 Call staff"]
        if self.record["last_error"]:
            lines.append(self.record["last_error"])
        return lines


def fault_report(bundle, highest_seq, queue_depth):
    """(topic, payload): the tap's signed status saying it is out of service, from the bundle
    alone (a stopped tap starts nothing else)."""
    park, terminal = bundle["park_id"], bundle["terminal_id"]
    topic = envelope.topic(park, terminal, "status")
    body = messages.build(STATUS, {"park": park, "terminal": terminal, "is_online": False, "highest_seq": highest_seq,
                                   "queue_depth": queue_depth, "oldest_queued_ms": None, "time_ms": 0})
    key = ed25519.SigningKey(bytes.fromhex(bundle["signing_seed"]))
    return topic, envelope.seal(body, key, bundle["key_id"], envelope.STATUS, topic)


def stopped(guard, outputs, report, sleep_ms, pause_ms=5000, turns=None):
    """A stopped tap: the fault shown (red LED, the display), and ``report()`` (publishes the
    fault report; raises OSError while there is no network) tried until it went out once. Never
    returns on a board (``turns`` None); nothing here starts the sale loop again."""
    outputs.show(hal.FAULT, guard.fault_lines())
    reported = False
    while turns is None or turns > 0:
        if turns is not None:
            turns -= 1
        if not reported:
            try:
                report()
                reported = True
            except Exception:  # no network yet, or whatever crashed the loop: keep showing the fault
                pass
        sleep_ms(pause_ms)
    return reported
