"""The fieldpos terminal: the device app a cashier uses at a station.

``core`` is the app as a pure state machine, ``hal`` the narrow hardware interfaces, ``drivers`` the
real parts (MFRC522 over SPI, ESC/POS over serial), ``net`` the signed session with the ledger.
"""
