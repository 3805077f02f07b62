"""Emulated hardware for fieldpos, behind the same byte-level interfaces the real drivers use.

A fake spidev carrying an MFRC522 register model with virtual MIFARE Classic cards, an ESC/POS
printer on a pty that renders receipts to PNG, keypad, display, clock and fault injection.
"""
