"""Emulated 2D barcode scanners, at the byte level, for the terminal's real scanner drivers.

Two kinds, as real rental desks have them:

- :class:`EmulatedWedgeScanner`: a USB HID keyboard-wedge scanner. Each :meth:`~EmulatedWedgeScanner.scan`
  writes what the kernel's usbhid driver writes when such a scanner types a code: for each character
  the key's EV_MSC MSC_SCAN (HID usage), EV_KEY press, EV_SYN, then the release, with Left Shift
  pressed around it for capitals and symbols, and Enter at the end. The records go into an
  :class:`~host_sim.devices.keypad.EmulatedKeypad`'s pipe (it is an evdev device on a pipe, whatever
  its keys), which ``terminal.drivers.scanner_evdev.EvdevScanner`` reads.
- :class:`EmulatedSerialScanner`: a serial scanner on a pty. :meth:`~EmulatedSerialScanner.scan`
  writes the code's ASCII bytes and its terminator (CR, LF or CR LF) to the pty's master side;
  ``terminal.drivers.scanner_serial.SerialScanner`` opens :attr:`~EmulatedSerialScanner.port_name`.

The key codes and HID usages are written out here again, not imported from the driver, so a wrong
code in the driver cannot agree with itself in a test. Faults, for both: bytes split anywhere
(``write_raw``), unplugging (``unplug``: the driver then reads end-of-file, or EIO on the pty), and
for the wedge a kernel queue overflow (``drop_events``).

Wiring a real driver to one::

    with EmulatedWedgeScanner() as scanner:
        driver = scanner.open_driver()          # EvdevScanner(scanner.device, ...)
        scanner.scan("ROD-0042")
        assert driver.read_scan(2.0) == "ROD-0042"
"""

from __future__ import annotations

import fcntl
import os
import time
import tty
from collections.abc import Callable

from .keypad import PRESS, RELEASE, EmulatedKeypad

# (evdev key code from linux/input-event-codes.h, HID usage from the USB HID Usage Tables, Keyboard
# page 0x07), for each key a scanner types on a US layout: its plain and shifted characters.
_KEYS = (
    # characters   evdev codes                          HID usages (letters 0x04.., digits 0x1E..)
    ("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
     (30, 48, 46, 32, 18, 33, 34, 35, 23, 36, 37, 38, 50, 49, 24, 25, 16, 19, 31, 20, 22, 47, 17, 45, 21, 44),
     range(0x04, 0x1E)),
    ("1234567890", "!@#$%^&*()", (2, 3, 4, 5, 6, 7, 8, 9, 10, 11), range(0x1E, 0x28)),
    (" -=[]\\;'`,./", " _+{}|:\"~<>?", (57, 12, 13, 26, 27, 43, 39, 40, 41, 51, 52, 53),
     (0x2C, 0x2D, 0x2E, 0x2F, 0x30, 0x31, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38)),
)  # fmt: skip
# character -> (evdev code, HID usage, typed with Shift held)
US_KEYBOARD = {
    character: (code, usage, is_shifted)
    for plain, shifted, codes, usages in _KEYS
    for code, usage, plain_character, shifted_character in zip(codes, usages, plain, shifted, strict=True)
    for character, is_shifted in ((plain_character, False), (shifted_character, True))
    if not (is_shifted and plain_character == " ")
}
KEY_ENTER = (28, 0x28)
KEY_LEFTSHIFT = (42, 0xE1)
SERIAL_TERMINATORS = (b"\r", b"\n", b"\r\n")
# A voucher (up to ~420 characters, nearly all capitals: Shift around each) is ~120 KiB of evdev
# records written at once, while the driver runs in the same thread as the test: the pipe is made
# this big (F_SETPIPE_SZ, Linux fcntl.h) instead of the default 64 KiB.
F_SETPIPE_SZ = 1031
WEDGE_PIPE_BYTES = 256 * 1024


class EmulatedWedgeScanner:
    """A keyboard-wedge scanner whose scans go, as evdev records, into a pipe the real driver reads.

    ``long_size_bytes``: 8 (24-byte records) or 4 (16 bytes), as for the keypad. ``events_written``
    and ``bytes_written`` count what went into the pipe.
    """

    def __init__(self, *, long_size_bytes: int = 8, wall_clock_s: Callable[[], float] = time.time):
        self._pipe = EmulatedKeypad(long_size_bytes=long_size_bytes, wall_clock_s=wall_clock_s)
        fcntl.fcntl(self._pipe._write_fd, F_SETPIPE_SZ, WEDGE_PIPE_BYTES)
        self.device = self._pipe.device
        self.scans_written = 0

    @property
    def is_plugged_in(self) -> bool:
        return self._pipe.is_plugged_in

    @property
    def bytes_written(self) -> int:
        return self._pipe.bytes_written

    @property
    def event_layout(self):
        return self._pipe.event_layout

    def scan(self, text: str) -> None:
        """Type ``text`` and Enter, all written in one go (printable ASCII only, as a US layout types)."""
        self.write_raw(self.scan_bytes(text))
        self.scans_written += 1

    def scan_bytes(self, text: str, *, with_enter: bool = True) -> bytes:
        """The records a scan of ``text`` makes (a test writes them in pieces with :meth:`write_raw`)."""
        strokes = [self.character_bytes(character) for character in text]
        if with_enter:
            strokes.append(self._pipe.key_stroke_bytes(*KEY_ENTER))
        return b"".join(strokes)

    def character_bytes(self, character: str) -> bytes:
        if character not in US_KEYBOARD:
            raise ValueError(f"a scanner on a US layout cannot type {character!r}")
        code, usage, is_shifted = US_KEYBOARD[character]
        stroke = self._pipe.key_stroke_bytes(code, usage)
        if not is_shifted:
            return stroke
        return self._key_bytes(*KEY_LEFTSHIFT, PRESS) + stroke + self._key_bytes(*KEY_LEFTSHIFT, RELEASE)

    def key_bytes(self, code: int, hid_usage: int, *, autorepeats: int = 0) -> bytes:
        """Press and release of any key by its evdev code (a key no code's character uses, a stuck key)."""
        return self._pipe.key_stroke_bytes(code, hid_usage, autorepeats=autorepeats)

    def write_raw(self, data: bytes) -> None:
        self._pipe.write_raw(data)

    def drop_events(self) -> None:
        """What the kernel writes when this reader's queue overflowed: SYN_DROPPED."""
        self._pipe.drop_events()

    def unplug(self) -> None:
        """Pull the USB cable: the driver reads end-of-file."""
        self._pipe.unplug()

    def _key_bytes(self, code: int, hid_usage: int, value: int) -> bytes:
        events = EmulatedKeypad._key_report(code, hid_usage, value)
        return b"".join(self._pipe.event_bytes(*event) for event in events)

    def open_driver(self, **driver_options):
        """The real driver (``EvdevScanner``) on this scanner's pipe."""
        from terminal.drivers.keypad_evdev import EVENT_LAYOUT_32_BIT, EVENT_LAYOUT_64_BIT
        from terminal.drivers.scanner_evdev import EvdevScanner

        layout = EVENT_LAYOUT_64_BIT if self.event_layout.size == EVENT_LAYOUT_64_BIT.size else EVENT_LAYOUT_32_BIT
        return EvdevScanner(self.device, event_layout=layout, **driver_options)

    def close(self) -> None:
        self._pipe.close()

    def __enter__(self) -> EmulatedWedgeScanner:
        return self

    def __exit__(self, *exception_info: object) -> None:
        self.close()


class EmulatedSerialScanner:
    """A serial scanner on a pty: scans are written to the master side, the driver opens ``port_name``.

    ``terminator`` is the scanner's suffix setting (CR, LF or CR LF). ``bytes_written`` counts what
    went out.
    """

    def __init__(self, *, terminator: bytes = b"\r\n"):
        if terminator not in SERIAL_TERMINATORS:
            raise ValueError(f"terminator must be one of {SERIAL_TERMINATORS}, not {terminator!r}")
        self.terminator = terminator
        self._master_fd, self._slave_fd = os.openpty()
        # Raw from the start: no echo and no CR -> LF translation, even for bytes written before the
        # driver opens the port (pyserial makes it raw too, but only when it opens).
        tty.setraw(self._slave_fd)
        # Never block the test: a full pty buffer (about 4 KiB nobody read) raises instead.
        os.set_blocking(self._master_fd, False)
        self.port_name = os.ttyname(self._slave_fd)
        self.bytes_written = 0
        self.scans_written = 0
        self.is_plugged_in = True

    def scan(self, text: str) -> None:
        """Send ``text`` (printable ASCII) and the terminator."""
        data = text.encode("ascii")
        self.write_raw(data + self.terminator)
        self.scans_written += 1

    def write_raw(self, data: bytes) -> None:
        """Put bytes on the line as they are (a test splits scans or sends garbage with this)."""
        if not self.is_plugged_in:
            raise RuntimeError("the scanner is unplugged")
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._master_fd, view)
            except BlockingIOError:
                raise RuntimeError("scanner pty full: the driver is not reading") from None
            view = view[written:]
        self.bytes_written += len(data)

    def unplug(self) -> None:
        """Pull the cable: the pty's master side closes and the driver's reads fail (EIO)."""
        if self.is_plugged_in:
            self.is_plugged_in = False
            os.close(self._master_fd)

    def open_driver(self, **driver_options):
        """The real driver (``SerialScanner``) on this scanner's pty."""
        from terminal.drivers.scanner_serial import SerialScanner, open_serial_scanner

        return SerialScanner(open_serial_scanner(self.port_name), **driver_options)

    def close(self) -> None:
        self.unplug()
        if self._slave_fd is not None:
            os.close(self._slave_fd)
            self._slave_fd = None

    def __enter__(self) -> EmulatedSerialScanner:
        return self

    def __exit__(self, *exception_info: object) -> None:
        self.close()
