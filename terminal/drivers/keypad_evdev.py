"""A USB numeric keypad read through the Linux input event interface (evdev).

The kernel turns the keypad's HID reports into ``struct input_event`` records on
``/dev/input/eventN`` (kernel Documentation/input/input.rst, "Event interface"); this driver reads
those records from an open binary file and keeps only key presses. It needs no library: evdev is a
stream of fixed-size records, and :func:`select.select` gives the bounded wait.

The device is anything with ``fileno()`` and ``read(n)``: on a Pi, :func:`open_evdev` (the file under
``/dev/input/by-id/`` that ends in ``-event-kbd``); in tests and the host simulator, the read end of
``host_sim.devices.keypad.EmulatedKeypad``'s pipe, where any byte boundary can fall mid-record.

Key codes are from linux/input-event-codes.h. A USB keypad reports the keypad codes (KEY_KP7, not
KEY_7) whatever its NumLock LED says: NumLock is applied by the console or X, not by evdev.
"""

from __future__ import annotations

import glob
import select
import struct
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import BinaryIO

from terminal.errors import KeypadError, TerminalError
from terminal.hal.keypad import REPEATING_KEYS, Key, Keypad

# --- struct input_event (linux/input.h) --------------------------------------------------------------
# A timeval (two C longs: seconds, microseconds), then u16 type, u16 code, s32 value, in the
# machine's byte order. 24 bytes where a long is 8 bytes (x86-64, aarch64: a 64-bit Raspberry Pi
# OS); 16 bytes on 32-bit userspace (armhf Raspberry Pi OS), where the kernel keeps two 32-bit
# fields even with a 64-bit time_t.
EVENT_LAYOUT_64_BIT = struct.Struct("=qqHHi")
EVENT_LAYOUT_32_BIT = struct.Struct("=IIHHi")
NATIVE_EVENT_LAYOUT = EVENT_LAYOUT_64_BIT if struct.calcsize("l") == 8 else EVENT_LAYOUT_32_BIT

# Event types and codes (linux/input-event-codes.h).
EV_SYN = 0x00
EV_KEY = 0x01
SYN_REPORT = 0
# The kernel's per-reader queue overflowed and events were lost: the kernel docs
# (Documentation/input/event-codes.rst, "EV_SYN") say to ignore everything up to and including
# the next SYN_REPORT.
SYN_DROPPED = 3
# EV_KEY values.
KEY_RELEASE = 0
KEY_PRESS = 1
KEY_AUTOREPEAT = 2

KEY_ESC = 1
KEY_1, KEY_2, KEY_3, KEY_4, KEY_5, KEY_6, KEY_7, KEY_8, KEY_9, KEY_0 = range(2, 12)
KEY_BACKSPACE = 14
KEY_ENTER = 28
KEY_DOT = 52
KEY_KPASTERISK = 55
KEY_NUMLOCK = 69
KEY_KP7, KEY_KP8, KEY_KP9, KEY_KPMINUS = 71, 72, 73, 74
KEY_KP4, KEY_KP5, KEY_KP6, KEY_KPPLUS = 75, 76, 77, 78
KEY_KP1, KEY_KP2, KEY_KP3, KEY_KP0, KEY_KPDOT = 79, 80, 81, 82, 83
KEY_KPENTER = 96
KEY_KPSLASH = 98
# A full keyboard's letter rows (QWERTY order), space and function keys.
KEY_SPACE = 57
KEY_F1, KEY_F2, KEY_F3, KEY_F4 = 59, 60, 61, 62
_LETTER_ROWS = ((16, "qwertyuiop"), (30, "asdfghjkl"), (44, "zxcvbnm"))

_DIGITS = (Key.DIGIT_0, Key.DIGIT_1, Key.DIGIT_2, Key.DIGIT_3, Key.DIGIT_4,
           Key.DIGIT_5, Key.DIGIT_6, Key.DIGIT_7, Key.DIGIT_8, Key.DIGIT_9)  # fmt: skip
_KEYPAD_DIGIT_CODES = (KEY_KP0, KEY_KP1, KEY_KP2, KEY_KP3, KEY_KP4, KEY_KP5, KEY_KP6, KEY_KP7, KEY_KP8, KEY_KP9)
_TOP_ROW_DIGIT_CODES = (KEY_0, KEY_1, KEY_2, KEY_3, KEY_4, KEY_5, KEY_6, KEY_7, KEY_8, KEY_9)

# The common 17-key keypad has NumLock, / * - +, Enter, the digits and the dot; 18- and 19-key ones
# add Backspace and sometimes Esc. NumLock toggles nothing we use, so on a keypad without Esc it is
# the Cancel key; the operators, in their order on the top row then down the side, are F1..F4. The
# top-row digits, Enter and dot of a full keyboard work too, for a bench without a keypad.
DEFAULT_KEY_MAP: Mapping[int, Key] = {
    **dict(zip(_KEYPAD_DIGIT_CODES, _DIGITS)),
    **dict(zip(_TOP_ROW_DIGIT_CODES, _DIGITS)),
    KEY_KPDOT: Key.DOT,
    KEY_DOT: Key.DOT,
    KEY_KPENTER: Key.ENTER,
    KEY_ENTER: Key.ENTER,
    KEY_ESC: Key.CANCEL,
    KEY_NUMLOCK: Key.CANCEL,
    KEY_BACKSPACE: Key.BACK,
    KEY_KPSLASH: Key.F1,
    KEY_KPASTERISK: Key.F2,
    KEY_KPMINUS: Key.F3,
    KEY_KPPLUS: Key.F4,
    # A keyboard at the front desk types names; a keypad has none of these keys.
    **{first + offset: Key.for_character(letter) for first, row in _LETTER_ROWS for offset, letter in enumerate(row)},
    KEY_SPACE: Key.SPACE,
    KEY_F1: Key.F1,  # a keyboard without a numeric pad still has its function keys
    KEY_F2: Key.F2,
    KEY_F3: Key.F3,
    KEY_F4: Key.F4,
}

# Presses waiting for the app. A cashier types an amount of at most ~10 keys between reads; more
# than this means the app stopped reading, and later presses are dropped (counted) rather than
# replayed long after the cashier has given up on them.
PENDING_KEYS_LIMIT = 32
# Records taken per read: the kernel hands out whole records, as many as fit.
READ_EVENTS_PER_CHUNK = 64

# EVIOCGRAB = _IOW('E', 0x90, int) (linux/input.h): only this reader gets the keypad's events, so
# digits typed for an amount do not also land at the login prompt on the Pi's console.
EVIOCGRAB = 0x40044590
KEYPAD_GLOB = "/dev/input/by-id/*-event-kbd"


class EvdevKeyReader:
    """Key events from an evdev device: reads whole ``input_event`` records, honours SYN_DROPPED, and
    hands each EV_KEY event to :meth:`_handle_key`. The keypad and the keyboard-wedge barcode scanner
    (``terminal.drivers.scanner_evdev``) are both this, with their own meaning for the keys.

    ``dropped_event_count`` counts events discarded after the kernel reported SYN_DROPPED.
    """

    device_name = "Keypad"  # in the errors the cashier sees
    device_error: type[TerminalError] = KeypadError

    def __init__(
        self,
        device: BinaryIO,
        *,
        event_layout: struct.Struct = NATIVE_EVENT_LAYOUT,
        monotonic_s: Callable[[], float] = time.monotonic,
    ):
        self.device = device
        self.event_layout = event_layout
        self._monotonic_s = monotonic_s
        self._buffer = bytearray()
        self._is_dropping = False
        self.dropped_event_count = 0

    def close(self) -> None:
        self.device.close()

    def _handle_key(self, code: int, value: int) -> None:
        """One EV_KEY event (``value``: KEY_RELEASE, KEY_PRESS or KEY_AUTOREPEAT); a subclass gives it meaning."""
        raise NotImplementedError

    def _read_until(self, is_ready: Callable[[], bool], timeout_s: float) -> None:
        """Read events until ``is_ready()`` or ``timeout_s`` has passed (0 = only look)."""
        if timeout_s < 0:
            raise ValueError(f"timeout_s must be >= 0, not {timeout_s}")
        deadline_s = self._monotonic_s() + timeout_s
        while not is_ready():
            remaining_s = deadline_s - self._monotonic_s()
            if not self._wait_readable(max(remaining_s, 0.0)):
                return
            self._read_available()
            if remaining_s <= 0:
                return  # past the deadline: one last look, so a stream of non-key events cannot hold us

    def _wait_readable(self, timeout_s: float) -> bool:
        try:
            readable, _, _ = select.select([self.device], [], [], timeout_s)
        except (OSError, ValueError) as error:  # ValueError: the file was closed
            message = f"{self.device_name} not readable ({error}) — check its USB cable, then restart"
            raise self.device_error(message) from error
        return bool(readable)

    def _read_available(self) -> None:
        try:
            chunk = self.device.read(READ_EVENTS_PER_CHUNK * self.event_layout.size)
        except OSError as error:  # ENODEV once the device is unplugged
            message = f"{self.device_name} unplugged ({error}) — plug it back in, then restart"
            raise self.device_error(message) from error
        if chunk is None:  # a non-blocking file with nothing to read after all
            return
        if not chunk:
            raise self.device_error(f"{self.device_name} unplugged — plug it back in, then restart")
        self._buffer += chunk
        self._parse_buffer()

    def _parse_buffer(self) -> None:
        size = self.event_layout.size
        whole_bytes = len(self._buffer) - len(self._buffer) % size
        for offset in range(0, whole_bytes, size):
            _, _, event_type, code, value = self.event_layout.unpack_from(self._buffer, offset)
            self._handle_event(event_type, code, value)
        del self._buffer[:whole_bytes]  # a partial record waits for the rest

    def _handle_event(self, event_type: int, code: int, value: int) -> None:
        if event_type == EV_SYN:
            if code == SYN_DROPPED:
                self._is_dropping = True
            elif code == SYN_REPORT:
                self._is_dropping = False
            return
        if self._is_dropping:
            self.dropped_event_count += 1
            return
        if event_type != EV_KEY:
            return  # EV_MSC scan codes, EV_LED for NumLock: nothing a cashier typed
        self._handle_key(code, value)


class EvdevKeypad(EvdevKeyReader, Keypad):
    """:class:`Keypad` on an evdev device: reports presses, ignores releases and other events.

    ``lost_key_count`` counts presses dropped because :data:`PENDING_KEYS_LIMIT` were waiting;
    ``dropped_event_count`` counts events discarded after the kernel reported SYN_DROPPED.
    """

    def __init__(
        self,
        device: BinaryIO,
        *,
        key_map: Mapping[int, Key] = DEFAULT_KEY_MAP,
        event_layout: struct.Struct = NATIVE_EVENT_LAYOUT,
        monotonic_s: Callable[[], float] = time.monotonic,
    ):
        super().__init__(device, event_layout=event_layout, monotonic_s=monotonic_s)
        self.key_map = key_map
        self._pending: deque[Key] = deque()
        self.lost_key_count = 0

    def read_key(self, timeout_s: float) -> Key | None:
        self._read_until(lambda: bool(self._pending), timeout_s)
        return self._pending.popleft() if self._pending else None

    def _handle_key(self, code: int, value: int) -> None:
        key = self.key_map.get(code)
        if key is None:
            return
        if value == KEY_PRESS or (value == KEY_AUTOREPEAT and key in REPEATING_KEYS):
            if len(self._pending) >= PENDING_KEYS_LIMIT:
                self.lost_key_count += 1
            else:
                self._pending.append(key)


def find_keypad_path() -> str:
    """The first keyboard-like input device by id, or KeypadError if none is plugged in."""
    paths = sorted(glob.glob(KEYPAD_GLOB))
    if not paths:
        raise KeypadError(f"No keypad found ({KEYPAD_GLOB}) — plug in the USB keypad, then restart")
    return paths[0]


def open_evdev(path: str | None = None, *, is_exclusive: bool = True) -> BinaryIO:
    """Open a keypad's event device unbuffered (``path`` None: :func:`find_keypad_path`).

    ``is_exclusive`` grabs the device (EVIOCGRAB) so no other reader, such as the console, sees the keys.
    """
    import fcntl  # lazy: only a real terminal opens a device

    chosen_path = path or find_keypad_path()
    try:
        device = open(chosen_path, "rb", buffering=0)  # noqa: SIM115 - the driver owns and closes it
    except OSError as error:
        raise KeypadError(f"Cannot open the keypad at {chosen_path} ({error}) — check its USB cable") from error
    if is_exclusive:
        try:
            fcntl.ioctl(device, EVIOCGRAB, 1)
        except OSError as error:
            device.close()
            raise KeypadError(f"Keypad {chosen_path} is in use by another program ({error})") from error
    return device
