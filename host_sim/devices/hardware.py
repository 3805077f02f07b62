"""The ``sim`` hardware set: the terminal's real drivers over byte-level emulations.

A spidev-like MFRC522 register model with an RF field of virtual cards, an ESC/POS printer on a
pty, an evdev keypad on a pipe, an SSD1306 on a fake I2C bus and, for a rental desk, a barcode
scanner (evdev on a pipe, or serial on a pty). ``host_sim`` registers
:func:`make_sim_hardware` with the terminal's hardware factory under the name ``sim`` when it is
imported; the terminal itself never imports this package.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING

from terminal.hal.clock import SystemClock
from terminal.hal.factory import HardwareConfig, HardwareSet
from terminal.hal.printer import PROFILES

if TYPE_CHECKING:
    from .clock import ManualClock
    from .keypad import EmulatedKeypad
    from .mfrc522 import FakeSpiDev
    from .mifare import RfField
    from .printer import EmulatedPrinter
    from .scanner import EmulatedSerialScanner, EmulatedWedgeScanner
    from .ssd1306 import EmulatedSsd1306


@dataclass(slots=True, kw_only=True)
class SimulatedHardware:
    """The emulators behind a ``sim`` set, for a test or the demo to drive and inspect."""

    spi: FakeSpiDev  # the emulated MFRC522's bus: transaction counts, its virtual clock
    field: RfField  # present() and remove() virtual cards
    printer: EmulatedPrinter  # receipts, paper and cover faults
    keypad: EmulatedKeypad  # press(), type_text()
    oled: EmulatedSsd1306  # to_image(), save_png(), byte counts
    clock: ManualClock | None  # set when HardwareConfig.sim_clock is "manual" (also HardwareSet.clock)
    scanner: EmulatedWedgeScanner | EmulatedSerialScanner | None = None  # scan(); per HardwareConfig.scanner


def make_sim_hardware(config: HardwareConfig) -> HardwareSet:
    """Open a card reader, printer, keypad and display over fresh emulators (closed again by the set)."""
    # Imported here, not at the top: registering "sim" must stay cheap for whoever imports host_sim.
    from terminal.drivers.mfrc522 import Mfrc522CardReader

    from .clock import ManualClock
    from .keypad import EmulatedKeypad
    from .mfrc522 import FakeSpiDev
    from .printer import EmulatedPrinter
    from .ssd1306 import EmulatedSsd1306

    profile = PROFILES[config.printer_profile]
    with ExitStack() as stack:
        spi = FakeSpiDev(config.spi_bus, config.spi_device)
        stack.callback(spi.close)
        # The emulated chip keeps virtual time: the driver's waits move it instead of sleeping.
        card_reader = Mfrc522CardReader(spi, sleep=spi.clock.sleep)
        stack.callback(card_reader.close)
        emulated_printer = EmulatedPrinter.for_profile(profile).start()
        stack.callback(emulated_printer.close)
        printer = emulated_printer.open_driver(profile)
        stack.callback(printer.close)
        emulated_keypad = EmulatedKeypad()
        stack.callback(emulated_keypad.close)
        keypad = emulated_keypad.open_driver()
        stack.callback(keypad.close)
        oled = EmulatedSsd1306()
        display = oled.open_driver()
        stack.callback(display.close)
        manual_clock = ManualClock() if config.sim_clock == "manual" else None
        emulated_scanner, scanner = _open_sim_scanner(config, stack)
        simulated = SimulatedHardware(
            spi=spi, field=spi.field, printer=emulated_printer, keypad=emulated_keypad, oled=oled, clock=manual_clock,
            scanner=emulated_scanner,
        )  # fmt: skip
        hardware = HardwareSet(
            kind="sim", card_reader=card_reader, printer=printer, keypad=keypad, display=display,
            clock=manual_clock or SystemClock(), scanner=scanner, sim=simulated, _closers=stack.pop_all(),
        )  # fmt: skip
    return hardware



def _open_sim_scanner(config: HardwareConfig, stack: ExitStack):
    """The emulated scanner of the configured kind and the real driver on it, or (None, None)."""
    from .scanner import EmulatedSerialScanner, EmulatedWedgeScanner

    if config.scanner == "none":
        return None, None
    emulated = EmulatedWedgeScanner() if config.scanner == "evdev" else EmulatedSerialScanner()
    stack.callback(emulated.close)
    driver = emulated.open_driver()
    stack.callback(driver.close)
    return emulated, driver
