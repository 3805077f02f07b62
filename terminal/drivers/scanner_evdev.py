"""A USB HID "keyboard wedge" barcode scanner read through Linux evdev.

Such a scanner enumerates as a USB keyboard and types each code it reads as key presses, Shift held
for capitals and symbols, then presses Enter. The kernel turns that into ``struct input_event``
records on ``/dev/input/eventN``, exactly as for the keypad, so the records are read and decoded by
the keypad driver's :class:`~terminal.drivers.keypad_evdev.EvdevKeyReader`; this module only turns
key codes into characters and Enter into the end of a scan.

The scanner must be set to the US keyboard layout (every make ships with it as the default): a key
code means a character only through a layout, and the park's codes (voucher QRs in base64url, item
labels) are printable ASCII. A key the layout below does not have spoils the scan rather than being
skipped, so that a code is never read with a character missing.

On a Pi the scanner is a keyboard too, so ``/dev/input/by-id/*-event-kbd`` matches it and the keypad
alike: the terminal's config names the scanner's device (``scanner_path``) and :func:`open_evdev`
grabs it (EVIOCGRAB), so scanned codes never reach the console's login prompt.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Mapping
from typing import BinaryIO

from terminal.drivers.keypad_evdev import (
    KEY_ENTER,
    KEY_KPENTER,
    KEY_PRESS,
    KEY_RELEASE,
    NATIVE_EVENT_LAYOUT,
    SYN_DROPPED,
    EV_SYN,
    EvdevKeyReader,
)
from terminal.errors import ScannerError
from terminal.hal.scanner import ScanAssembler, Scanner

KEY_LEFTSHIFT = 42
KEY_RIGHTSHIFT = 54
SHIFT_KEYS = frozenset({KEY_LEFTSHIFT, KEY_RIGHTSHIFT})
END_OF_SCAN_KEYS = frozenset({KEY_ENTER, KEY_KPENTER})
# Reads of what is already waiting, per read_scan: the longest scan (SCAN_MAX_CHARS characters,
# each at most Shift press, key press and release, Shift release: 12 records) is 192 chunks of
# READ_EVENTS_PER_CHUNK records; the bound keeps a device that floods events from holding the loop.
DRAIN_READS_LIMIT = 256

# The US layout: key code (linux/input-event-codes.h) -> (character, character with Shift). Rows of
# the keyboard as the codes run: digits row from KEY_1 = 2, QWERTY rows from KEY_Q = 16, KEY_A = 30,
# KEY_Z = 44, then the punctuation keys one by one.
_ROWS = (
    (2, "1234567890-=", "!@#$%^&*()_+"),
    (16, "qwertyuiop[]", "QWERTYUIOP{}"),
    (30, "asdfghjkl;'`", 'ASDFGHJKL:"~'),
    (43, "\\zxcvbnm,./", "|ZXCVBNM<>?"),
)
US_LAYOUT: Mapping[int, tuple[str, str]] = {
    **{first + offset: pair for first, plain, shifted in _ROWS for offset, pair in enumerate(zip(plain, shifted))},
    57: (" ", " "),  # KEY_SPACE
}


class EvdevScanner(EvdevKeyReader, Scanner):
    """:class:`Scanner` on an evdev device: characters on key presses, the scan ends at Enter.

    Key releases carry nothing but Shift's; autorepeats are ignored (a scanner never holds a key, so
    a repeat is a stuck key, not a doubled character). ``lost_scan_count`` counts scans dropped
    because the app was not reading; ``dropped_event_count`` as for the keypad.
    """

    device_name = "Scanner"
    device_error = ScannerError

    def __init__(
        self,
        device: BinaryIO,
        *,
        layout: Mapping[int, tuple[str, str]] = US_LAYOUT,
        event_layout: struct.Struct = NATIVE_EVENT_LAYOUT,
        monotonic_s: Callable[[], float] = time.monotonic,
    ):
        super().__init__(device, event_layout=event_layout, monotonic_s=monotonic_s)
        self.layout = layout
        self._assembler = ScanAssembler()
        self._held_shift_keys: set[int] = set()

    @property
    def lost_scan_count(self) -> int:
        return self._assembler.lost_scan_count

    def read_scan(self, timeout_s: float) -> str | None:
        try:
            self._read_until(lambda: self._assembler.has_complete_scan, timeout_s)
            # A voucher is ~12 records a character: what has already arrived is read now, not one
            # chunk per call (the app looks with timeout 0 once a loop turn).
            for _ in range(DRAIN_READS_LIMIT):
                if self._assembler.has_complete_scan or not self._wait_readable(0):
                    break
                self._read_available()
        except ScannerError:
            self._assembler.discard()  # unplugged mid-scan: what was typed so far is no code
            raise
        return self._assembler.take()

    def _handle_event(self, event_type: int, code: int, value: int) -> None:
        if event_type == EV_SYN and code == SYN_DROPPED:
            # Key events were lost: the scan in progress is missing characters, and a Shift release
            # may be among them.
            if self._assembler.is_mid_scan or self._held_shift_keys:
                self._assembler.spoil("Scan interrupted (key events lost) — scan again")
            self._held_shift_keys.clear()
        super()._handle_event(event_type, code, value)

    def _handle_key(self, code: int, value: int) -> None:
        if code in SHIFT_KEYS:
            if value == KEY_PRESS:
                self._held_shift_keys.add(code)
            elif value == KEY_RELEASE:
                self._held_shift_keys.discard(code)
            return
        if value != KEY_PRESS:
            return
        if code in END_OF_SCAN_KEYS:
            self._assembler.end()
            return
        characters = self.layout.get(code)
        if characters is None:
            self._assembler.spoil(f"Scan has a key the US layout has not (code {code}) — set the scanner to US")
            return
        self._assembler.add(characters[1] if self._held_shift_keys else characters[0])
