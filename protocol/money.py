"""Money as the park writes it: integer fen in, "30.05" out, typed yuan back to fen, and the name
of a card's ledger account. No I/O, so the terminal, the ledger, its reports and the simulator all
use this one copy (five hand-written ones disagreed on negative amounts)."""

from .limits import MAX_AMOUNT_FEN

FEN_PER_YUAN = 100


def format_fen(amount_fen: int, *, grouped: bool = False) -> str:
    """``3005`` -> ``"30.05"``, ``-2950`` -> ``"-29.50"``; ``grouped`` puts thousands commas in the
    yuan (reports: ``"1,234.56"``). Integers only: money is never a float."""
    if not isinstance(amount_fen, int) or isinstance(amount_fen, bool):
        raise TypeError(f"amounts are integer fen, not {type(amount_fen).__name__}")
    # Split the magnitude, not the signed amount: floor division of -2950 gives -30 yuan and 50 fen.
    sign = "-" if amount_fen < 0 else ""
    yuan, fen = divmod(abs(amount_fen), FEN_PER_YUAN)
    return f"{sign}{yuan:,}.{fen:02d}" if grouped else f"{sign}{yuan}.{fen:02d}"


def parse_amount(text: str, *, max_fen: int = MAX_AMOUNT_FEN) -> int | None:
    """Typed yuan ("30", "30.5", "30.50") to fen; None if it is not an amount from 0.01 to ``max_fen``."""
    whole, _, fraction = text.partition(".")
    if not text.isascii() or not whole.isdigit() or (fraction and not fraction.isdigit()) or len(fraction) > 2:
        return None
    amount_fen = int(whole) * FEN_PER_YUAN + int(fraction.ljust(2, "0") or 0)
    return amount_fen if 0 < amount_fen <= max_fen else None


def card_account(card_no: str, issuance: int) -> str:
    """The ledger account of one issuance of a card: each issuance has its own balance."""
    return f"card:{card_no}/{issuance}"
