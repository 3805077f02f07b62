"""Narrow hardware interfaces the terminal app talks to (card reader, printer, keypad, display, clock)."""
