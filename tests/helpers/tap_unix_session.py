# A tap session on the MicroPython unix port (or CPython), for tests/test_tap_app.py and
# bench/tap_heap.py:
#     micropython -X heapsize=96K tap_unix_session.py BUNDLE STATE TAPS [--no-threshold]
# TAPS: one "UID_HEX RECORD_HEX" line per card tap. Connects to the broker the bundle names, greets
# the ledger, waits for the signed config, taps each card and prints the outcome; then "DONE".
# Laid out as a board's main loop (tap.board.main) is: the bundle read and let go before the
# network comes up. "HEAP <phase> <bytes in use>" after each phase (a collection first).
import gc
import sys

NO_THRESHOLD = "--no-threshold" in sys.argv  # bench/tap_heap.py: the heap without it, to compare

try:
    from micropython import mem_info as _mem_info
except ImportError:
    _mem_info = None


def heap(phase):
    gc.collect()
    print("HEAP", phase, gc.mem_alloc() if hasattr(gc, "mem_alloc") else -1)


heap("start")
import tap

if hasattr(gc, "threshold") and not NO_THRESHOLD:
    gc.threshold(tap.HEAP_THRESHOLD_BYTES)  # as tap.board.main does
import json
import os
import time

from tap import ed25519, hal, mqtt, net
from tap.app import TapApp
from tap.state import TapState

heap("imports")
bundle_path, state_path, taps_path = sys.argv[1], sys.argv[2], sys.argv[3]
with open(bundle_path) as file:
    bundle = json.load(file)
outputs = hal.PrintHal()
app = TapApp(bundle, TapState(state_path), outputs, time.ticks_ms, os.urandom, result_timeout_ms=10000)
broker = bundle["broker"]
del bundle  # the app took what it needs: keys, ids
heap("app")
client = mqtt.MqttClient(net.connect(broker["host"], broker["port"], broker.get("tls_ca")), app.terminal,
                         broker["username"], broker["password"])
client.connect()
app.attach(client)
print("ED25519", "native" if ed25519.NATIVE else "python")
print("WELCOME", app.wait_welcome(10000), "SEQ", app.state.data["seq"])
start = time.ticks_ms()
while app.price() is None and time.ticks_diff(time.ticks_ms(), start) < 10000:
    app.poll(200)
print("PRICE", app.price())
heap("ready")
with open(taps_path) as file:
    lines = [line.split() for line in file.read().splitlines() if line.strip()]
for uid_hex, record_hex in lines:
    print("OUTCOME", app.tap(bytes.fromhex(uid_hex), bytes.fromhex(record_hex)))
    heap("sold")
print("FREE", gc.mem_free() if hasattr(gc, "mem_free") else -1, "OUTBOX", len(app.state.outbox()))
print("DROPPED", app.refusals)
client.disconnect()
if _mem_info is not None:
    _mem_info()
print("DONE")
