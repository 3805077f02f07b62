"""Real hardware drivers. They talk bytes to an SPI device, a serial port or an evdev device handed
to them, so the same code runs against host_sim's emulations in tests and against the real parts on
a Pi."""
