"""An emulated USB numeric keypad: real ``struct input_event`` records written into a pipe.

The read end of the pipe, :attr:`EmulatedKeypad.device`, is what the real driver
(``terminal.drivers.keypad_evdev.EvdevKeypad``) reads on a Pi from ``/dev/input/eventN``. Each
:meth:`EmulatedKeypad.press` writes what the kernel's usbhid driver writes for one key: an EV_MSC
MSC_SCAN carrying the HID usage, the EV_KEY press, EV_SYN SYN_REPORT; then the same for the release
(and, when held, EV_KEY value 2 autorepeats in between). Event codes are written out here again, not
imported from the driver, so a wrong code in the driver cannot agree with itself in a test.

Faults: bytes split anywhere (:meth:`write_raw`), a kernel queue overflow (:meth:`drop_events`),
and unplugging (:meth:`unplug`: the driver then reads end-of-file).

Wiring the real driver to it::

    keypad = EmulatedKeypad()
    driver = keypad.open_driver()           # EvdevKeypad(keypad.device, ...)
    keypad.type_text("30.00")
    keypad.press(Key.ENTER)
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Callable

from terminal.hal.keypad import Key

# struct input_event: timeval (two C longs), u16 type, u16 code, s32 value (linux/input.h).
EVENT_LAYOUTS = {8: struct.Struct("=qqHHi"), 4: struct.Struct("=IIHHi")}

# linux/input-event-codes.h
EV_SYN, EV_KEY, EV_MSC = 0x00, 0x01, 0x04
SYN_REPORT, SYN_DROPPED = 0, 3
MSC_SCAN = 4
RELEASE, PRESS, AUTOREPEAT = 0, 1, 2

# The emulated keypad is a 19-key USB keypad: NumLock, / * - +, Esc, Backspace, Enter, 0-9 and the
# dot. Each key: (evdev key code from linux/input-event-codes.h, HID usage from the USB HID Usage
# Tables, Keyboard/Keypad page 0x07, which usbhid reports in MSC_SCAN as 0x0007_00xx).
KEYS = {
    Key.DIGIT_0: (82, 0x62), Key.DIGIT_1: (79, 0x59), Key.DIGIT_2: (80, 0x5A), Key.DIGIT_3: (81, 0x5B),
    Key.DIGIT_4: (75, 0x5C), Key.DIGIT_5: (76, 0x5D), Key.DIGIT_6: (77, 0x5E), Key.DIGIT_7: (71, 0x5F),
    Key.DIGIT_8: (72, 0x60), Key.DIGIT_9: (73, 0x61), Key.DOT: (83, 0x63), Key.ENTER: (96, 0x58),
    Key.CANCEL: (1, 0x29), Key.BACK: (14, 0x2A),
    Key.F1: (98, 0x54), Key.F2: (55, 0x55), Key.F3: (74, 0x56), Key.F4: (78, 0x57),
}  # fmt: skip
# The front desk's keyboard adds letters and space: (evdev code, HID usage), written out as above.
KEYBOARD_KEYS = {
    **{Key.for_character(letter): (code, 0x04 + index) for index, (letter, code) in enumerate(zip(
        "abcdefghijklmnopqrstuvwxyz",
        (30, 48, 46, 32, 18, 33, 34, 35, 23, 36, 37, 38, 50, 49, 24, 25, 16, 19, 31, 20, 22, 47, 17, 45, 21, 44)))},
    Key.SPACE: (57, 0x2C),
}
KEY_NUMLOCK = (69, 0x53)
HID_KEYBOARD_PAGE = 0x0007_0000


class EmulatedKeypad:
    """A keypad whose key presses go, as evdev records, into a pipe the real driver reads.

    ``long_size_bytes`` picks the record layout: 8 (24-byte records, 64-bit userspace) or 4
    (16 bytes, 32-bit). ``events_written`` and ``bytes_written`` count what went into the pipe.
    """

    def __init__(self, *, long_size_bytes: int = 8, wall_clock_s: Callable[[], float] = time.time):
        if long_size_bytes not in EVENT_LAYOUTS:
            raise ValueError(f"long_size_bytes must be 8 or 4, not {long_size_bytes}")
        self.event_layout = EVENT_LAYOUTS[long_size_bytes]
        self._wall_clock_s = wall_clock_s
        read_fd, self._write_fd = os.pipe()
        # Never block the test: a full pipe (64 KiB, ~450 key presses nobody read) raises instead.
        os.set_blocking(self._write_fd, False)
        self.device = os.fdopen(read_fd, "rb", buffering=0)
        self.events_written = 0
        self.bytes_written = 0
        self.is_plugged_in = True

    # --- what a test does ---

    def press(self, key: Key, *, autorepeats: int = 0) -> None:
        """Press and release ``key``; ``autorepeats`` > 0 holds it long enough to repeat that often."""
        self.write_raw(self.key_stroke_bytes(*(KEYS.get(key) or KEYBOARD_KEYS[key]), autorepeats=autorepeats))

    def press_numlock(self) -> None:
        self.write_raw(self.key_stroke_bytes(*KEY_NUMLOCK))

    def press_code(self, code: int) -> None:
        """Press and release a key by its evdev code (for keys this keypad does not have)."""
        self.write_raw(self.key_stroke_bytes(code, 0))

    def type_text(self, text: str) -> None:
        """Press the key for each character ("0".."9", "."), all written in one go."""
        strokes = [self.key_stroke_bytes(*KEYS[Key.for_character(character)]) for character in text]
        self.write_raw(b"".join(strokes))

    def drop_events(self) -> None:
        """What the kernel writes when this reader's queue overflowed: SYN_DROPPED."""
        self.write_raw(self.event_bytes(EV_SYN, SYN_DROPPED, 0))

    def write_raw(self, data: bytes) -> None:
        """Put bytes into the pipe as they are (a test splits records with this)."""
        if not self.is_plugged_in:
            raise RuntimeError("the keypad is unplugged")
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._write_fd, view)
            except BlockingIOError:
                raise RuntimeError("keypad pipe full: the driver is not reading") from None
            view = view[written:]
        self.bytes_written += len(data)
        self.events_written += len(data) // self.event_layout.size

    def unplug(self) -> None:
        """Pull the USB cable: the driver reads end-of-file."""
        if self.is_plugged_in:
            self.is_plugged_in = False
            os.close(self._write_fd)

    # --- records ---

    def event_bytes(self, event_type: int, code: int, value: int) -> bytes:
        now_s = self._wall_clock_s()
        seconds = int(now_s)
        return self.event_layout.pack(seconds, int((now_s - seconds) * 1_000_000), event_type, code, value)

    def key_stroke_bytes(self, code: int, hid_usage: int, *, autorepeats: int = 0) -> bytes:
        """The records of one press (with its autorepeats) and release, as usbhid reports them."""
        events = [*self._key_report(code, hid_usage, PRESS)]
        for _ in range(autorepeats):  # the input core's soft repeat: no scan code, one SYN each
            events += [(EV_KEY, code, AUTOREPEAT), (EV_SYN, SYN_REPORT, 1)]
        events += self._key_report(code, hid_usage, RELEASE)
        return b"".join(self.event_bytes(*event) for event in events)

    @staticmethod
    def _key_report(code: int, hid_usage: int, value: int) -> list[tuple[int, int, int]]:
        return [(EV_MSC, MSC_SCAN, HID_KEYBOARD_PAGE | hid_usage), (EV_KEY, code, value), (EV_SYN, SYN_REPORT, 0)]

    # --- wiring ---

    def open_driver(self, **driver_options):
        """The real driver (``EvdevKeypad``) on this keypad's pipe: what ``FIELDPOS_HW=sim`` uses."""
        from terminal.drivers.keypad_evdev import EVENT_LAYOUT_32_BIT, EVENT_LAYOUT_64_BIT, EvdevKeypad

        layout = EVENT_LAYOUT_64_BIT if self.event_layout.size == EVENT_LAYOUT_64_BIT.size else EVENT_LAYOUT_32_BIT
        return EvdevKeypad(self.device, event_layout=layout, **driver_options)

    def close(self) -> None:
        self.unplug()
        self.device.close()

    def __enter__(self) -> EmulatedKeypad:
        return self

    def __exit__(self, *exception_info: object) -> None:
        self.close()
