# A tap session on the MicroPython unix port (or CPython), for tests/test_tap_app.py:
#     micropython -X heapsize=120K tap_unix_session.py BUNDLE STATE TAPS
# TAPS: one "UID_HEX RECORD_HEX" line per card tap. Connects to the broker the bundle names, greets
# the ledger, waits for the signed config, taps each card and prints the outcome; then "DONE".
import gc
import json
import os
import sys
import time

from tap import ed25519, hal, mqtt, net
from tap.app import TapApp
from tap.state import TapState

bundle_path, state_path, taps_path = sys.argv[1], sys.argv[2], sys.argv[3]
with open(bundle_path) as file:
    bundle = json.load(file)
outputs = hal.PrintHal()
app = TapApp(bundle, TapState(state_path), outputs, time.ticks_ms, os.urandom, result_timeout_ms=10000)
broker = bundle["broker"]
del bundle  # the app took what it needs: keys, ids
client = mqtt.MqttClient(net.connect(broker["host"], broker["port"]), app.terminal,
                         broker["username"], broker["password"])
client.connect()
app.attach(client)
print("ED25519", "native" if ed25519.NATIVE else "python")
print("WELCOME", app.wait_welcome(10000), "SEQ", app.state.data["seq"])
start = time.ticks_ms()
while app.price() is None and time.ticks_diff(time.ticks_ms(), start) < 10000:
    app.poll(200)
print("PRICE", app.price())
with open(taps_path) as file:
    lines = [line.split() for line in file.read().splitlines() if line.strip()]
for uid_hex, record_hex in lines:
    print("OUTCOME", app.tap(bytes.fromhex(uid_hex), bytes.fromhex(record_hex)))
gc.collect()
print("FREE", gc.mem_free() if hasattr(gc, "mem_free") else -1, "OUTBOX", len(app.state.outbox()))
print("DROPPED", app.refusals)
client.disconnect()
print("DONE")
