"""The terminal's main: load its bundle and station config, open the hardware, run the till.

``fieldpos terminal run --bundle PATH --config PATH`` calls :func:`run_terminal`; systemd keeps it
running. The loop around the app is a watchdog (:class:`Watchdog`): a turn that raises is logged
with the screen it happened on, the cashier sees an error screen, and the till carries on, because
one bad event (a garbled card, a printer reply nobody expected) must not close the fishing pond.
Only a fault that repeats turn after turn ends the process, with a non-zero exit so systemd
restarts it on fresh hardware handles.

The outbox lives next to the bundle (``<bundle dir>/outbox.db``): both belong to this one board.
Paho reconnects to the broker by itself; each turn copies ``link.is_connected`` into the state
machine so the idle screen says ONLINE or OFFLINE.

Imports stay lean on purpose (the terminal starts on a Pi Zero-class board): Pillow is imported
by the first render, drivers by the hardware factory, and ``host_sim`` never on the real path.
"""

from __future__ import annotations

import logging
from pathlib import Path
import threading

from protocol.errors import FieldposError

from . import events
from .app import TerminalApp, render_for_display
from .config import StationConfig
from .identity import TerminalIdentity
from .net import LedgerLink
from .hal.storage import DirectoryStorage
from .outbox import Outbox

log = logging.getLogger("fieldpos.terminal.runner")

OUTBOX_FILE_NAME = "outbox.db"
# Five failed turns in a row is a fault that is not going away (a keypad unplugged, a dead SPI
# bus): better a restart by systemd, which reopens every device, than an error screen forever.
MAX_CONSECUTIVE_FAILURES = 5
# A repeating fault must not spin the CPU; the wait grows with each failure in a row.
FAILURE_BACKOFF_S = 0.2
# The error screen stays this long, then the screen the cashier was on comes back.
FAULT_SCREEN_MS = 4_000
EXIT_STOPPED = 0
EXIT_TOO_MANY_FAILURES = 70  # EX_SOFTWARE from sysexits.h: systemd's Restart=on-failure restarts it


def open_terminal(bundle_path, config_path, hardware, *, mqtt_version: str = "5") -> TerminalApp:
    """The app for this board: identity from the bundle, station config, outbox beside the bundle."""
    bundle_path = Path(bundle_path)
    identity = TerminalIdentity.load(bundle_path)
    config = StationConfig.load(config_path)
    storage = DirectoryStorage(bundle_path.parent)
    outbox = Outbox(storage.path(OUTBOX_FILE_NAME))
    link = LedgerLink(identity, outbox, mqtt_version=mqtt_version)
    return TerminalApp(link, config, hardware, render=render_for_display, storage=storage)


def close_terminal(app: TerminalApp) -> None:
    try:
        app.link.close()
    finally:
        app.link.outbox.close()


def run_terminal(bundle_path, config_path, *, hardware=None, stop: threading.Event | None = None,
                 mqtt_version: str = "5") -> int:
    """Run the till until ``stop`` is set; returns the process exit code.

    ``hardware``: a :class:`terminal.hal.factory.HardwareSet`; by default the factory opens the
    kind ``FIELDPOS_HW`` names (or the one it detects), with the station's printer profile. A set
    handed in is left open for the caller to close.
    """
    stop = stop or threading.Event()
    opened_here = hardware is None
    if opened_here:
        from .hal.factory import make_hardware

        profile = StationConfig.load(config_path).printer_profile
        hardware = make_hardware(config={"printer_profile": profile})
    try:
        app = open_terminal(bundle_path, config_path, hardware, mqtt_version=mqtt_version)
        try:
            return Watchdog(app, render=render_for_display).run(stop)
        finally:
            close_terminal(app)
    finally:
        if opened_here:
            hardware.close()


class Watchdog:
    """Runs the app's turns so that a turn that raises is logged and shown, not fatal."""

    def __init__(self, app: TerminalApp, *, render=None, max_consecutive_failures: int = MAX_CONSECUTIVE_FAILURES):
        self.app = app
        self.render = render
        self.max_consecutive_failures = max_consecutive_failures
        self.consecutive_failures = 0
        self.failures = 0
        self._fault_screen: events.Show | None = None
        self._screen_before_fault: events.Show | None = None
        self._fault_shown_at_ms = 0

    def run(self, stop: threading.Event) -> int:
        # A turn can wait a few seconds for the ledger's first answer; this makes ``stop`` end the
        # loop promptly too. A request still unanswered stays in the outbox and is re-sent.
        threading.Thread(target=self._stop_app_when_set, args=(stop,), name="terminal-stop", daemon=True).start()
        try:
            self.app.boot()
            log.info("ready: showing %r", getattr(self.app.screen, "title", None))
            while self.app.is_running and not stop.is_set():
                if not self.turn():
                    log.critical("%d turns failed in a row: exiting so the service restarts", self.consecutive_failures)
                    return EXIT_TOO_MANY_FAILURES
                if self.consecutive_failures:
                    stop.wait(FAILURE_BACKOFF_S * self.consecutive_failures)
            return EXIT_STOPPED
        finally:
            stop.set()  # however the loop ended, the stop thread must not outlive it

    def _stop_app_when_set(self, stop: threading.Event) -> None:
        stop.wait()
        self.app.is_running = False

    def turn(self) -> bool:
        """One guarded turn; False when failures in a row have reached the limit."""
        self._follow_connection()
        try:
            self.app.turn()
        except Exception as error:  # noqa: BLE001 - the point of a watchdog: anything but a shutdown
            self.consecutive_failures += 1
            self.failures += 1
            machine = self.app.machine
            log.exception("turn failed (%d in a row) in state %s showing %r", self.consecutive_failures,
                          machine.state.value, self.app.screen)
            self._show_fault(error)
            return self.consecutive_failures < self.max_consecutive_failures
        self.consecutive_failures = 0
        self._restore_after_fault()
        return True

    # ------------------------------------------------------------ screens
    def _follow_connection(self) -> None:
        machine = self.app.machine
        is_online = self.app.link.is_connected
        if machine.is_online == is_online:
            return
        machine.is_online = is_online
        log.info("ledger link %s", "up" if is_online else "down")
        # Only the idle screen shows the link; other screens built by events must not be redrawn
        # from the state alone (a message or a printer problem would lose its text).
        if machine.state == events.State.IDLE and self._fault_screen is None:
            self._show(machine.start(machine.now_ms)[0])  # start() returns the current state's screen

    def _show_fault(self, error: Exception) -> None:
        code = error.code if isinstance(error, FieldposError) else type(error).__name__
        if self._fault_screen is None:
            self._screen_before_fault = self.app.screen
        self._fault_screen = events.Show("终端故障 Terminal fault", (code[:32], "已记录 Logged"), "请继续 Carry on", "error")
        self._fault_shown_at_ms = self.app.hardware.clock.monotonic_ms()
        try:
            self._show(self._fault_screen)
        except Exception:  # noqa: BLE001 - the display may be what failed; the log has it already
            log.warning("could not show the fault screen", exc_info=True)

    def _restore_after_fault(self) -> None:
        if self._fault_screen is None:
            return
        if self.app.screen is not self._fault_screen:  # the app has drawn something newer
            self._fault_screen = None
            return
        if self.app.hardware.clock.monotonic_ms() - self._fault_shown_at_ms >= FAULT_SCREEN_MS:
            self._fault_screen = None
            if self._screen_before_fault is not None:
                self._show(self._screen_before_fault)

    def _show(self, screen: events.Show) -> None:
        self.app.screen = screen
        if self.render is not None:
            display = self.app.hardware.display
            display.show(self.render(screen, display.size))
