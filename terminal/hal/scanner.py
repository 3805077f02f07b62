"""The barcode scanner as the terminal app sees it: one whole scan at a time, with a bounded wait.

A rental desk scans two things: the deposit voucher's QR code (from a receipt or a phone) and the
label stuck on each rod, bike or boat. Real desks use one of two kinds of 2D scanner, and both have a
driver behind this interface:

- a USB HID "keyboard wedge" (``terminal.drivers.scanner_evdev.EvdevScanner``): the scanner types
  the code as key presses and ends it with Enter; read through Linux evdev like the keypad;
- a serial scanner (``terminal.drivers.scanner_serial.SerialScanner``): the code as ASCII bytes
  ending in CR, LF or CR LF, over a UART or a USB serial adapter (pyserial).

In the host simulator the same drivers read ``host_sim.devices.scanner``'s emulations (an evdev
pipe, a pty). A backend subclasses :class:`Scanner` and must implement :meth:`Scanner.read_scan`;
it may override :meth:`Scanner.close`. Both turn their input into text and hand it to a
:class:`ScanAssembler`, so a code, its limits and its errors mean the same whichever scanner read it.

The app's loop::

    text = scanner.read_scan(timeout_s=0.0)   # None until a whole code has arrived
    if text is not None:
        ...                                   # a voucher or an item label: the app decides which

A scan is returned only once its terminator arrived: a code cut short (the scanner unplugged
mid-scan, bytes that stop) is never returned, because a truncated label could name another item.
"""

from __future__ import annotations

import abc
from collections import deque

from terminal.errors import ScanUnreadableError

# The longest code a scan may carry. A voucher QR (ledger-signed: order, item type, expiry, a 64-byte
# Ed25519 signature, base64url) is a few hundred characters; item labels are short. A longer "scan" is
# a scanner misconfigured to add a prefix or a stuck key, so it is refused whole rather than cut.
SCAN_MAX_CHARS = 1024


class Scanner(abc.ABC):
    """A source of whole scans (the code's text, without its terminator)."""

    @abc.abstractmethod
    def read_scan(self, timeout_s: float) -> str | None:
        """The next complete scan, waiting at most ``timeout_s`` seconds (0 = only look), else None.

        Scans completed since the last call are returned one per call, oldest first; empty scans
        are never returned. Raises ``terminal.errors.ScanUnreadableError`` for a scan that is too
        long (:data:`SCAN_MAX_CHARS`) or holds a character a code cannot (the next scan is read
        normally), and ``terminal.errors.ScannerError`` if the scanner is gone (unplugged); a scan
        it was in the middle of is then discarded.
        """

    def close(self) -> None:  # noqa: B027 - optional hook, not every backend holds a device
        """Release the device. The default does nothing."""

    def __enter__(self) -> Scanner:
        return self

    def __exit__(self, *exception_info: object) -> None:
        self.close()


# Whole scans waiting for the app. A desk scans one code every few seconds; more than this waiting
# means the app stopped reading, and later scans are dropped (counted) rather than acted on long after.
PENDING_SCANS_LIMIT = 8


class ScanAssembler:
    """Characters in, whole scans out: what both drivers do once they have decoded their bytes or keys.

    :meth:`add` appends decoded text to the scan in progress; :meth:`spoil` marks it unreadable (a
    character the layout cannot type, events the kernel dropped); :meth:`end` completes it at its
    terminator; :meth:`discard` forgets it (the scanner went away mid-scan). :meth:`take` returns
    the oldest complete scan, or raises ``ScanUnreadableError`` for a spoiled one. No I/O.
    """

    def __init__(self) -> None:
        self._characters: list[str] = []
        self._problem: str | None = None
        self._complete: deque[str | ScanUnreadableError] = deque()
        self.lost_scan_count = 0

    @property
    def has_complete_scan(self) -> bool:
        return bool(self._complete)

    @property
    def is_mid_scan(self) -> bool:
        return bool(self._characters) or self._problem is not None

    def add(self, text: str) -> None:
        if self._problem is not None:
            return
        for character in text:
            if not " " <= character <= "~":
                self.spoil(f"Scan has a character no code holds ({character!r}) — scan again")
                return
        if len(self._characters) + len(text) > SCAN_MAX_CHARS:
            self.spoil(f"Scan too long (more than {SCAN_MAX_CHARS} characters) — scan again")
            return
        self._characters.extend(text)

    def spoil(self, problem: str) -> None:
        """The scan in progress cannot be trusted; it ends as ``ScanUnreadableError(problem)``."""
        if self._problem is None:
            self._problem = problem
            self._characters.clear()

    def end(self) -> None:
        """The terminator arrived. An empty scan (the LF of a CR LF, a lone Enter) is no scan."""
        if not self.is_mid_scan:
            return
        scan: str | ScanUnreadableError = (
            ScanUnreadableError(self._problem) if self._problem is not None else "".join(self._characters)
        )
        self.discard()
        if len(self._complete) >= PENDING_SCANS_LIMIT:
            self.lost_scan_count += 1
        else:
            self._complete.append(scan)

    def discard(self) -> None:
        self._characters.clear()
        self._problem = None

    def take(self) -> str | None:
        """The oldest complete scan, None if there is none; raises it if it was spoiled."""
        if not self._complete:
            return None
        scan = self._complete.popleft()
        if isinstance(scan, ScanUnreadableError):
            raise scan
        return scan
