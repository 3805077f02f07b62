"""Errors raised on the terminal. Codes appear on the display, on receipts and in logs."""

from protocol.errors import FieldposError


class TerminalError(FieldposError):
    """Something went wrong on the terminal."""

    code = "TERMINAL"


# --- printer (terminal/hal/printer.py, terminal/drivers/escpos.py) ---
# The docstring is the message the cashier sees when none is given.


class PrinterError(TerminalError):
    """Printer fault — check the printer, then press Reprint."""

    code = "PRINTER"


class PrinterOfflineError(PrinterError):
    """Printer offline — check its power and cable, then press Reprint."""

    code = "PRINTER_OFFLINE"


class PaperOutError(PrinterError):
    """Paper out — load a new roll, then press Reprint."""

    code = "PAPER_OUT"


class PrinterCoverOpenError(PrinterError):
    """Printer cover open — close it, then press Reprint."""

    code = "PRINTER_COVER_OPEN"


class UnprintableTextError(PrinterError, ValueError):
    """Text has a character the printer's GB18030 font cannot print."""

    code = "PRINTER_UNPRINTABLE"


class FontMissingError(TerminalError):
    """No CJK font found — install the Debian package fonts-wqy-microhei."""

    code = "FONT_MISSING"


# --- card reader (terminal/hal/card_reader.py, terminal/drivers/mfrc522.py) ---
# The docstring is the message the cashier sees when none is given.


class CardError(TerminalError):
    """Card problem — tap the card again."""

    code = "CARD"


class CardReadError(CardError):
    """Card could not be read — tap again and hold the card still."""

    code = "CARD_READ"


class CardCollisionError(CardReadError):
    """More than one card at the reader — tap one card only."""

    code = "CARD_COLLISION"


class CardRemovedError(CardError):
    """Card moved away — tap again and hold the card still."""

    code = "CARD_REMOVED"


class CardAuthError(CardError):
    """Card not recognised at this park (key refused) — send the visitor to the front desk."""

    code = "CARD_AUTH"


class CardWriteError(CardError):
    """Card could not be written — tap again; if it repeats, send the visitor to the front desk."""

    code = "CARD_WRITE"


class CardUnsupportedError(CardError):
    """Not a park card — ask the visitor for the park card."""

    code = "CARD_UNSUPPORTED"


class CardReaderFaultError(TerminalError):
    """Card reader not responding — restart the terminal; if it repeats, call a technician."""

    code = "CARD_READER_FAULT"


# --- keypad, scanner, display, hardware factory (terminal/hal/keypad.py, scanner.py, display.py, factory.py) ---
# The docstring is the message shown (or logged, when the display itself failed) when none is given.


class KeypadError(TerminalError):
    """Keypad not responding — check its USB cable, then restart the terminal."""

    code = "KEYPAD"


class ScannerError(TerminalError):
    """Barcode scanner not responding — check its cable, then restart the terminal."""

    code = "SCANNER"


class ScanUnreadableError(ScannerError):
    """Scan not understood — scan the code again."""

    code = "SCAN_UNREADABLE"


class DisplayError(TerminalError):
    """Display not responding — check its cable, then restart the terminal."""

    code = "DISPLAY"


class HardwareUnavailableError(TerminalError):
    """Terminal hardware support is not installed — install fieldpos[pi] on the terminal."""

    code = "HARDWARE_UNAVAILABLE"


# --- storage (terminal/outbox.py, terminal/offline_state.py) ---


class StorageFaultError(TerminalError):
    """Storage fault — the terminal's disk is full or failing: free space or call a technician."""

    code = "STORAGE_FAULT"
