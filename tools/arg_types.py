"""The value types of ``fieldpos``'s options: each turns a command-line word into a value or refuses it in
one line (argparse prints it with the command's usage), so a typo never reaches the park's books."""

import argparse
import os
from pathlib import Path


MAX_PORT = 65535
MAX_VISITORS = 10_000
MAX_DEMO_TERMINALS = 4  # the front desk plus three stations
BASIS_POINTS_IN_WHOLE = 10_000
MAX_SEED = 2**32 - 1


def _bounded_int(text: str, low: int, high: int, what: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must be a whole number, not {text!r}") from None
    if not low <= number <= high:
        raise argparse.ArgumentTypeError(f"{what} must be from {low} to {high}, not {number}")
    return number


def positive_int(text: str) -> int:
    return _bounded_int(text, 1, MAX_VISITORS, "a count")


def demo_terminal_count(text: str) -> int:
    return _bounded_int(text, 1, MAX_DEMO_TERMINALS, "the number of terminals")


def seed(text: str) -> int:
    return _bounded_int(text, 0, MAX_SEED, "a seed")


def port(text: str) -> int:
    return _bounded_int(text, 1, MAX_PORT, "a port")


def fen(text: str) -> int:
    """An amount already in fen (``--card-fee-fen 2000``); 0 is allowed (a park may charge no fee)."""
    from protocol.limits import MAX_AMOUNT_FEN

    return _bounded_int(text, 0, MAX_AMOUNT_FEN, "an amount in fen")


def price_fen(text: str) -> int:
    """A price in fen (``--price-fen 3000`` is 30.00): a menu item costs something."""
    from protocol.limits import MAX_AMOUNT_FEN

    return _bounded_int(text, 1, MAX_AMOUNT_FEN, "a price in fen")


def clock_time(text: str) -> str:
    """HH:MM on a 24-hour clock, as the tills compare it (``08:30``, ``21:00``)."""
    import re

    if not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", text):
        raise argparse.ArgumentTypeError(f"a time must be HH:MM from 00:00 to 23:59, not {text!r}")
    return text


def display_text(text: str) -> str:
    """A name a till shows and prints: 1-64 printable characters (protocol text)."""
    from protocol.limits import MAX_TEXT_CHARS

    if not text or len(text) > MAX_TEXT_CHARS or not text.isprintable():
        raise argparse.ArgumentTypeError(f"a name must be 1-{MAX_TEXT_CHARS} printable characters, not {text[:70]!r}")
    return text


def basis_points(text: str) -> int:
    return _bounded_int(text, 0, BASIS_POINTS_IN_WHOLE, "basis points")


def existing_file(text: str) -> str:
    """A file the command will read: missing or unreadable is said here, not as an OSError later."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    if not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"cannot read {text}")
    return text


def business_days(text: str):
    """A period of business days: one day, a month (2026-05) or FIRST..LAST."""
    from ledger.reports.query import ReportError
    from ledger.settlement import parse_period

    try:
        return parse_period(text)
    except ReportError as error:
        raise argparse.ArgumentTypeError(str(error).split("] ", 1)[-1]) from None


def one_line(text: str) -> str:
    """A short note for the books (a transfer's number, who did it): one printable line, bounded."""
    from ledger.settlement import MAX_REFERENCE_CHARS

    if len(text) > MAX_REFERENCE_CHARS or not text.isprintable():
        raise argparse.ArgumentTypeError(f"one line of at most {MAX_REFERENCE_CHARS} characters")
    return text
