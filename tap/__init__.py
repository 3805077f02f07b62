"""The tap point: a MicroPython board (Pico W, ESP32) that sells one fixed amount per card tap.

Everything here runs on MicroPython as well as CPython and imports nothing else of fieldpos: the
board carries only this package. Hence plain classes, string constants and hand-written checks
(MicroPython has no dataclasses, enum, typing, ``re`` repetition counts or ``json`` keywords, and
no SHA-512). ``tests/test_tap_*.py`` prove it byte-identical to ``protocol/`` on the wire.
"""

# A collection after every 4 KiB allocated (MicroPython's gc.threshold), set first thing at boot.
# Left to itself the collector runs only when an allocation fails, by which time short-lived
# blocks (a signature's integers, a message being parsed) are scattered among the long-lived ones
# and a block of a few hundred bytes may be nowhere free. bench/tap_heap.py measures the sale with
# and without it: before the Ed25519 and envelope savings it needed 104 KiB without, 96 with; now
# both reach 96 KiB, but without it a sale there failed now and then (1 run in 4 on this machine),
# with it none did (17 runs).
HEAP_THRESHOLD_BYTES = 4096
