"""The folders the demo and the station simulator write into, and when they may replace one.

A park's real home can sit next to (or be mistyped as) a demo's ``--out``: the demo once deleted a
park's ``ledger.db`` and keys that way. So a simulated park only ever replaces a folder it made
itself, recognised by a marker file it leaves inside; an empty or missing folder is fine too, and
any other folder is refused with nothing deleted.
"""

from pathlib import Path
import shutil

from ledger.park_home import ParkHome
from protocol.errors import FieldposError

DEMO_MARKER = ".fieldpos-demo"
SIM_MARKER = ".fieldpos-sim"


class NotOurOutputDir(FieldposError):
    """The output folder holds files the demo or simulator did not write: it is not theirs to replace."""

    code = "NOT_OUR_OUTPUT_DIR"


def claim_output_dir(out: Path, *, marker: str, ledger_homes=()) -> None:
    """Make ``out`` an empty folder carrying ``marker``. Replaces it only when it carries the marker
    (a previous run's) and no ledger in ``ledger_homes`` (paths inside ``out``) is serving: a second
    demo in the same folder refuses instead of deleting the books the first is writing. Raises
    :class:`NotOurOutputDir` or :class:`ledger.park_home.LedgerAlreadyServing`, deleting nothing."""
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise NotOurOutputDir(f"{out} is a file, not a folder; choose another --out")
        if any(out.iterdir()):
            if not (out / marker).is_file():
                raise NotOurOutputDir(f"{out} is not empty and was not made by fieldpos ({marker} missing): "
                                      f"nothing deleted; choose an empty or new --out")
            for ledger_home in ledger_homes:
                refuse_if_serving(ledger_home)
            shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / marker).write_text("made by fieldpos; the next run may replace this folder\n")


def refuse_if_serving(ledger_home: Path) -> None:
    """Raise :class:`ledger.park_home.LedgerAlreadyServing` while another run's ledger holds the home."""
    home = ParkHome(Path(ledger_home))
    if home.home.is_dir():
        home.lock_ledger().release()
