# Replays a recorded tap session (tests/test_tap_ports.py puts BUNDLE_JSON, LOG_JSON, STATE_PATH
# and EXPECTED above this text) on another runtime: the same taps against the broker's recorded
# bytes. Prints "outcomes ...", "mismatches N" (writes that differ from the recording) and
# "finished True|False". MicroPython-safe.
import json

from tap import mqtt
from tap.app import TapApp
from tap.state import TapState


class PlaybackStream:
    def __init__(self, log):
        self.log = log
        self.position = 0
        self.written = bytearray()
        self.inbound = bytearray()
        self.mismatches = 0
        self._release()

    def _release(self):
        while self.position < len(self.log):
            direction, data = self.log[self.position]
            if direction == "in":
                self.inbound += data
            elif len(self.written) >= len(data):
                if bytes(self.written[:len(data)]) != data:
                    self.mismatches += 1
                self.written = self.written[len(data):]
            else:
                return
            self.position += 1

    def write(self, data):
        self.written += data
        self._release()

    def readinto(self, buffer):
        if not self.inbound:
            return 0
        count = min(len(buffer), len(self.inbound))
        buffer[:count] = self.inbound[:count]
        self.inbound = self.inbound[count:]
        return count

    def readable(self, timeout_ms):
        return bool(self.inbound)


class Ticks:
    def __init__(self):
        self.now = 1000

    def __call__(self):
        self.now += 1
        return self.now


class Silent:
    def show(self, outcome, lines):
        pass


log = [(direction, bytes.fromhex(data)) for direction, data in json.loads(LOG_JSON)]
stream = PlaybackStream(log)
app = TapApp(json.loads(BUNDLE_JSON), TapState(STATE_PATH), Silent(), Ticks(), lambda n: bytes(range(n)),
             result_timeout_ms=50)
client = mqtt.MqttClient(stream, "TAP-1", "TAP-1", "x" * 32)
client.connect()
app.attach(client)
app.wait_welcome(100)
outcomes = []
for silent, uid_hex, record_hex in EXPECTED:
    outcomes.append(app.tap(bytes.fromhex(uid_hex), bytes.fromhex(record_hex)))
print("outcomes", " ".join(outcomes))
print("mismatches", stream.mismatches)
print("finished", stream.position == len(log) and not stream.written and not stream.inbound)
