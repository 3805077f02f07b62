"""Choose and build the terminal's hardware: the real parts on a Pi, byte-level emulations elsewhere.

In the manner of gpiozero's pin factories: :func:`make_hardware` takes the kind as an argument, else
from ``FIELDPOS_HW`` (``pi`` or ``sim``), else ``pi`` when the card reader's SPI device exists and
``sim`` when it does not. Each kind is a builder in a registry: this module registers ``pi``; the
simulator registers ``sim`` with :func:`register_factory` when ``host_sim`` is imported (the CLI's
``terminal run --sim``, the demo and the tests import it first). The terminal never imports
``host_sim``: it sits above the terminal, so a Pi never loads an emulator and the host never needs
``spidev``. Both kinds run the same drivers; only the byte-level object under each differs::

    import host_sim  # registers "sim"

    with make_hardware("sim") as hardware:
        hardware.sim.field.present(MifareClassic1K(bytes.fromhex("04A1B2C3D4E5F6")))
        uid = hardware.card_reader.poll()
        hardware.sim.keypad.press(Key.ENTER)
        hardware.display.show(render_screen(Screen(title="钓鱼 Fishing"), hardware.display.size))
        hardware.sim.oled.save_png("screen.png")
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from terminal.errors import HardwareUnavailableError, KeypadError, PrinterOfflineError, ScannerError
from terminal.hal.clock import Clock, SystemClock
from terminal.hal.printer import PROFILE_58MM_TEXT, PROFILES

if TYPE_CHECKING:
    from terminal.hal.card_reader import CardReader
    from terminal.hal.display import Display
    from terminal.hal.keypad import Keypad
    from terminal.hal.printer import Printer
    from terminal.hal.scanner import Scanner

HARDWARE_ENVIRONMENT_VARIABLE = "FIELDPOS_HW"
KINDS = ("sim", "pi")  # the kinds a park uses; "sim" has a builder only once host_sim is imported
SIM_REGISTER_HINT = "import host_sim first: it registers the 'sim' hardware (fieldpos terminal run --sim does)"
# The SPI device the card reader hangs on; it exists only on a Pi with SPI enabled (raspi-config).
PI_PROBE_PATH = Path("/dev/spidev0.0")
PI_EXTRA_HINT = "install the terminal's hardware extra: pip install 'fieldpos[pi]'"


@dataclass(frozen=True, slots=True, kw_only=True)
class HardwareConfig:
    """Where each part is attached. The defaults are the park's standard wiring on a Pi."""

    spi_bus: int = 0
    spi_device: int = 0
    printer_path: str = "/dev/serial0"  # the Pi's UART; a USB adapter is /dev/ttyUSB0
    printer_baud: int | None = None  # None: the driver's default (terminal.drivers.escpos.DEFAULT_BAUD)
    printer_profile: str = PROFILE_58MM_TEXT.name
    keypad_path: str | None = None  # None: the first /dev/input/by-id/*-event-kbd
    i2c_bus: int = 1
    display_address: int = 0x3C
    # A rental desk's barcode scanner: "evdev" (USB keyboard wedge) or "serial"; tills have none.
    scanner: Literal["none", "evdev", "serial"] = "none"
    # evdev: the scanner's /dev/input/by-id/...-event-kbd (a keypad matches that pattern too, so it is
    # named); serial: its port, e.g. /dev/ttyUSB0 or /dev/ttyACM0.
    scanner_path: str | None = None
    scanner_baud: int | None = None  # serial only; None: the driver's default (scanner_serial.DEFAULT_BAUD)
    sim_clock: Literal["system", "manual"] = "system"  # "manual": a host_sim ManualClock for tests

    def __post_init__(self) -> None:
        if self.printer_profile not in PROFILES:
            raise ValueError(f"printer_profile must be one of {', '.join(PROFILES)}, not {self.printer_profile!r}")
        if self.sim_clock not in ("system", "manual"):
            raise ValueError(f"sim_clock must be 'system' or 'manual', not {self.sim_clock!r}")
        if self.scanner not in ("none", "evdev", "serial"):
            raise ValueError(f"scanner must be 'none', 'evdev' or 'serial', not {self.scanner!r}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> HardwareConfig:
        """From a terminal's config file section; an unknown key is an error, not a silent default."""
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown hardware setting(s): {', '.join(unknown)}")
        return cls(**values)


@dataclass(slots=True, kw_only=True)
class HardwareSet:
    """Everything the terminal app talks to. ``close()`` (or ``with``) releases all of it."""

    kind: str
    card_reader: CardReader
    printer: Printer
    keypad: Keypad
    display: Display
    clock: Clock
    scanner: Scanner | None = None  # a rental desk's; None where HardwareConfig.scanner is "none"
    # The emulators behind a "sim" set (host_sim's SimulatedHardware) for a test or the demo to drive
    # and inspect; None on real hardware. Typed loosely: the terminal does not import host_sim.
    sim: Any = None
    _closers: ExitStack = field(default_factory=ExitStack, repr=False)

    def close(self) -> None:
        """Close drivers first, then the emulators under them; safe to call twice."""
        self._closers.close()

    def __enter__(self) -> HardwareSet:
        return self

    def __exit__(self, *exception_info: object) -> None:
        self.close()


HardwareBuilder = Callable[[HardwareConfig], HardwareSet]
_BUILDERS: dict[str, HardwareBuilder] = {}


def register_factory(name: str, builder: HardwareBuilder) -> None:
    """Make ``make_hardware(name)`` call ``builder(config)``; registering a name again replaces it."""
    _BUILDERS[name] = builder


def registered_kinds() -> tuple[str, ...]:
    return tuple(_BUILDERS)


def choose_kind(kind: str | None = None) -> str:
    """``kind`` if given, else ``FIELDPOS_HW``, else ``pi`` if the card reader's SPI device exists."""
    chosen = kind or os.environ.get(HARDWARE_ENVIRONMENT_VARIABLE) or ("pi" if PI_PROBE_PATH.exists() else "sim")
    known = dict.fromkeys((*KINDS, *_BUILDERS))
    if chosen not in known:
        raise ValueError(
            f"hardware kind must be one of {', '.join(known)} "
            f"(argument or {HARDWARE_ENVIRONMENT_VARIABLE}), not {chosen!r}"
        )
    return chosen


def make_hardware(kind: str | None = None, *, config: HardwareConfig | Mapping[str, Any] | None = None) -> HardwareSet:
    """Open the terminal's card reader, printer, keypad, display, clock and (if configured) scanner.

    ``kind``: "pi" or "sim" (default: :func:`choose_kind`). ``config``: a :class:`HardwareConfig`
    or a mapping of its fields. If any part fails to open, those already open are closed again and
    the error (CardReaderFaultError, PrinterOfflineError, KeypadError, DisplayError, ScannerError or
    HardwareUnavailableError) propagates.
    """
    settings = config if isinstance(config, HardwareConfig) else HardwareConfig.from_mapping(config or {})
    chosen = choose_kind(kind)
    builder = _BUILDERS.get(chosen)
    if builder is None:
        hint = SIM_REGISTER_HINT if chosen == "sim" else f"nothing registered the {chosen!r} hardware"
        raise HardwareUnavailableError(f"No {chosen!r} hardware builder — {hint}")
    return builder(settings)


def _make_pi(config: HardwareConfig) -> HardwareSet:
    _require_pi_packages()  # before opening anything, so a missing package leaves no device half-open
    from terminal.drivers.escpos import EscPosPrinter, open_serial
    from terminal.drivers.keypad_evdev import EvdevKeypad, open_evdev
    from terminal.drivers.mfrc522 import Mfrc522CardReader, open_spidev
    from terminal.drivers.ssd1306 import Ssd1306Display, open_i2c

    with ExitStack() as stack:
        spi = open_spidev(config.spi_bus, config.spi_device)
        stack.callback(spi.close)
        card_reader = Mfrc522CardReader(spi)
        stack.callback(card_reader.close)
        try:
            baud_options = {} if config.printer_baud is None else {"baud": config.printer_baud}
            port = open_serial(config.printer_path, **baud_options)
        except OSError as error:  # pyserial's SerialException is an OSError
            raise PrinterOfflineError(f"Cannot open the printer port {config.printer_path} ({error})") from error
        stack.callback(port.close)
        printer = EscPosPrinter(port, PROFILES[config.printer_profile])
        keypad_device = open_evdev(config.keypad_path)
        stack.callback(keypad_device.close)
        keypad = EvdevKeypad(keypad_device)
        bus = open_i2c(config.i2c_bus, config.display_address)
        stack.callback(bus.close)
        display = Ssd1306Display(bus)
        stack.callback(display.close)
        scanner = _open_pi_scanner(config)
        if scanner is not None:
            stack.callback(scanner.close)
        hardware = HardwareSet(
            kind="pi", card_reader=card_reader, printer=printer, keypad=keypad, display=display,
            clock=SystemClock(), scanner=scanner, _closers=stack.pop_all(),
        )  # fmt: skip
    return hardware


def _open_pi_scanner(config: HardwareConfig) -> Scanner | None:
    if config.scanner == "none":
        return None
    if config.scanner_path is None:
        raise ScannerError(f"scanner = {config.scanner!r} needs scanner_path (the device it is plugged in as)")
    if config.scanner == "evdev":
        from terminal.drivers.keypad_evdev import open_evdev
        from terminal.drivers.scanner_evdev import EvdevScanner

        try:
            return EvdevScanner(open_evdev(config.scanner_path))
        except KeypadError as error:  # open_evdev speaks of a keypad; say which device it was
            cause = error.__cause__ or error
            message = f"Cannot open the scanner at {config.scanner_path} ({cause}) — check its USB cable"
            raise ScannerError(message) from error
    from terminal.drivers.scanner_serial import SerialScanner, open_serial_scanner

    baud_options = {} if config.scanner_baud is None else {"baud": config.scanner_baud}
    return SerialScanner(open_serial_scanner(config.scanner_path, **baud_options))


def _require_pi_packages() -> None:
    try:
        import spidev  # noqa: F401 - only checking it is there
    except ImportError as error:
        raise HardwareUnavailableError(f"The spidev package is missing — {PI_EXTRA_HINT}") from error


register_factory("pi", _make_pi)
