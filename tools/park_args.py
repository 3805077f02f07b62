"""The park home a command names (``--home``), shared by the ``fieldpos`` command's modules."""

from pathlib import Path
import sys


def park_home(args):
    from ledger.park_home import ParkHome

    return ParkHome(Path(args.home))


def has_ledger(args) -> bool:
    """True when the home holds a ledger; else False after a one-line error. Opening the store would
    create an empty ``ledger.db`` (a false "books balance"), or a traceback for a missing home."""
    if park_home(args).has_ledger():
        return True
    print(f"fieldpos: no ledger in {args.home} (create one with 'fieldpos ledger init')", file=sys.stderr)
    return False


def existing_store(args):
    """The ledger's store, or None with a one-line error when the home holds no ledger: operators'
    commands that read or repair a ledger never create an empty one by mistake."""
    if not has_ledger(args):
        return None
    return park_home(args).open_store()
