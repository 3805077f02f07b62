"""The emulated devices: each one byte-for-byte what a real part shows its driver.

An MFRC522 register model on a fake spidev with an RF field of virtual MIFARE Classic 1K cards, an
ESC/POS printer on a pty with its parser, an evdev keypad on a pipe, barcode scanners (a keyboard
wedge on an evdev pipe, a serial one on a pty), an SSD1306 on a fake I2C bus, a manual clock, and
:mod:`.hardware`, which puts them under the terminal's real drivers as the ``sim`` hardware set.
Park scaffolding (the rig, the demo, the station window) lives one level up.
"""
