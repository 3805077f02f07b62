"""Telling systemd how the ledger is doing (sd_notify): READY=1 once it serves, WATCHDOG=1 while its
loop turns, STATUS= for ``systemctl status``. A datagram to ``$NOTIFY_SOCKET``; no dependency.

Without ``$NOTIFY_SOCKET`` (tests, a technician's shell) every call does nothing. With
``WatchdogSec=`` in the unit, systemd kills and restarts a ledger whose loop stops turning (a hung
disk, a deadlock): the loop pings often enough, but at most every WATCHDOG_PING_INTERVAL_S.
"""

import os
import socket
import time

# A ping costs a syscall; the unit's WatchdogSec is tens of seconds. Pinging at most this often (or
# at half the watchdog's period, if that is shorter) keeps the loop's cost nil and the margin wide.
WATCHDOG_PING_INTERVAL_S = 2.0


class SystemdNotifier:
    def __init__(self, environ=os.environ, clock=time.monotonic):
        self.address = environ.get("NOTIFY_SOCKET") or None
        if self.address and self.address.startswith("@"):
            self.address = "\0" + self.address[1:]  # Linux abstract namespace
        watchdog_usec = environ.get("WATCHDOG_USEC", "")
        period_s = int(watchdog_usec) / 1e6 if watchdog_usec.isdigit() and int(watchdog_usec) > 0 else None
        self.ping_interval_s = min(WATCHDOG_PING_INTERVAL_S, period_s / 2) if period_s else WATCHDOG_PING_INTERVAL_S
        self._clock = clock
        self._pinged_at = float("-inf")
        self.sent: list[str] = []  # what was sent, for tests and logs

    @property
    def is_active(self) -> bool:
        return self.address is not None

    def notify(self, state: str) -> bool:
        """Send one state string; False when there is no systemd to tell or the send failed (a
        supervisor that cannot be told must never stop the ledger)."""
        if self.address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(state.encode(), self.address)
        except OSError:
            return False
        self.sent.append(state)
        return True

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def status(self, status: str) -> bool:
        return self.notify(f"STATUS={status}")

    def watchdog(self) -> bool:
        """Ping the watchdog, at most every ``ping_interval_s``."""
        now = self._clock()
        if now - self._pinged_at < self.ping_interval_s:
            return False
        self._pinged_at = now
        return self.notify("WATCHDOG=1")
