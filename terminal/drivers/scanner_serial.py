"""A serial barcode scanner: each code as ASCII bytes ending in CR, LF or CR LF, read with pyserial.

Rental desks wire these to the Pi's UART or a USB serial adapter (``/dev/ttyUSB0``, ``/dev/ttyACM0``
for the scanners that emulate a CDC serial port). The terminator is a setting on the scanner, and
desks have all three, so any of CR and LF ends a scan and the empty "scan" between a CR and its LF
is no scan. Bytes arrive in whatever pieces the UART and the kernel deliver: a scan is returned only
once its terminator has come. A byte outside printable ASCII spoils the scan (a wrong baud rate
reads as such bytes), rather than being dropped from a code.
"""

from __future__ import annotations

import select
import time
from collections.abc import Callable
from typing import Any

from terminal.errors import ScannerError
from terminal.hal.scanner import SCAN_MAX_CHARS, ScanAssembler, Scanner

# The factory setting of the common 2D desk scanners (Honeywell, Zebra, Newland): 9600 baud, 8N1.
DEFAULT_BAUD = 9600
CR, LF = 0x0D, 0x0A
# Bytes taken per read: a whole voucher with its terminator fits.
READ_CHUNK_BYTES = SCAN_MAX_CHARS + 2


def open_serial_scanner(path: str, baud: int = DEFAULT_BAUD) -> Any:
    """Open the scanner's serial port (a UART, a USB serial adapter, or an emulator's pty), raw 8N1."""
    import serial  # lazy: only a terminal with a serial scanner opens a port

    try:
        return serial.Serial(path, baud, timeout=0)
    except (OSError, ValueError) as error:  # pyserial's SerialException is an OSError
        raise ScannerError(f"Cannot open the scanner port {path} ({error}) — check its cable") from error


class SerialScanner(Scanner):
    """:class:`Scanner` on an open pyserial-like port (``fileno`` and a non-blocking ``read``: timeout 0).

    ``lost_scan_count`` counts scans dropped because the app was not reading.
    """

    def __init__(self, port: Any, *, monotonic_s: Callable[[], float] = time.monotonic):
        self.port = port
        self._monotonic_s = monotonic_s
        self._assembler = ScanAssembler()

    @property
    def lost_scan_count(self) -> int:
        return self._assembler.lost_scan_count

    def read_scan(self, timeout_s: float) -> str | None:
        if timeout_s < 0:
            raise ValueError(f"timeout_s must be >= 0, not {timeout_s}")
        deadline_s = self._monotonic_s() + timeout_s
        while not self._assembler.has_complete_scan:
            remaining_s = max(deadline_s - self._monotonic_s(), 0.0)
            chunk = self._read(remaining_s)
            self._feed(chunk)
            if remaining_s <= 0 or not chunk:
                break
        return self._assembler.take()

    def close(self) -> None:
        self.port.close()

    def _read(self, timeout_s: float) -> bytes:
        """What arrives within ``timeout_s``: returns as soon as some bytes have come, with all waiting."""
        try:
            # select, not pyserial's timeout: changing that reconfigures the port (tcsetattr) each call.
            readable, _, _ = select.select([self.port], [], [], timeout_s)
            return self.port.read(READ_CHUNK_BYTES) if readable else b""
        except (OSError, ValueError, TypeError) as error:  # SerialException (EIO once unplugged); a closed port
            self._assembler.discard()  # unplugged mid-scan: the bytes so far are no code
            raise ScannerError(f"Scanner unplugged ({error}) — plug it back in, then restart") from error

    def _feed(self, chunk: bytes) -> None:
        start = 0
        for index, byte in enumerate(chunk):
            if byte in (CR, LF):
                self._add(chunk[start:index])
                self._assembler.end()
                start = index + 1
        self._add(chunk[start:])

    def _add(self, data: bytes) -> None:
        if data:
            # latin-1 maps each byte to one character, so the assembler sees a bad byte as itself.
            self._assembler.add(data.decode("latin-1"))
