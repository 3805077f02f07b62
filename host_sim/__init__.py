"""Emulated hardware for fieldpos, behind the same byte-level interfaces the real drivers use.

A fake spidev carrying an MFRC522 register model with virtual MIFARE Classic cards, an ESC/POS
printer on a pty that renders receipts to PNG, keypad, display, clock and fault injection.

Importing this package registers the ``sim`` hardware with the terminal's factory (as gpiozero's
pin factories register themselves): ``make_hardware("sim")`` works from then on, and the terminal
never imports the simulator.
"""

from terminal.hal.factory import register_factory

from .devices.hardware import make_sim_hardware

register_factory("sim", make_sim_hardware)
