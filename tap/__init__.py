"""The tap point: a MicroPython board (Pico W, ESP32) that sells one fixed amount per card tap.

Everything here runs on MicroPython as well as CPython and imports nothing else of fieldpos: the
board carries only this package. Hence plain classes, string constants and hand-written checks
(MicroPython has no dataclasses, enum, typing, ``re`` repetition counts or ``json`` keywords, and
no SHA-512). ``tests/test_tap_*.py`` prove it byte-identical to ``protocol/`` on the wire.
"""
