"""Narrow hardware interfaces the terminal app talks to (card reader, printer, keypad,
barcode scanner, display, clock)."""
