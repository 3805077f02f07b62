"""Operator commands never destroy or invent a park's books (issue 12, data safety items 1-3): the
demo and the simulator replace only folders they made, readers refuse a home with no ledger and
create nothing there, and one home serves one ledger."""

import os
from pathlib import Path
import subprocess
import sys

import pytest

from host_sim.output_dir import DEMO_MARKER, NotOurOutputDir, claim_output_dir
from host_sim.rig import ParkRig
from ledger.park_home import LedgerAlreadyServing, ParkHome
from tools.cli import main

REPO = Path(__file__).resolve().parent.parent


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got {lines}"
    return lines[0]


def _a_real_park_next_to_notes(folder: Path) -> dict[Path, bytes]:
    folder.mkdir(parents=True)
    files = {folder / "ledger.db": b"a real park's books", folder / "notes.txt": b"the owner's notes"}
    for path, content in files.items():
        path.write_bytes(content)
    return files


def _tree(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


# ---------------------------------------------------------------- 1. demo and sim output folders
def test_an_unrelated_file_in_the_out_folder_survives_a_refused_demo(tmp_path, capsys):
    out = tmp_path / "park"
    files = _a_real_park_next_to_notes(out)

    assert main(["demo", "--out", str(out), "--visitors", "1"]) != 0

    assert "not empty and was not made by fieldpos" in _one_line(capsys.readouterr().err)
    assert {path: path.read_bytes() for path in out.iterdir()} == files


def test_a_folder_the_demo_made_is_replaced_on_the_next_run_and_an_empty_one_is_taken(tmp_path):
    out = tmp_path / "demo"
    claim_output_dir(out, marker=DEMO_MARKER)
    (out / "receipts").mkdir()
    (out / "receipts" / "old.png").write_bytes(b"yesterday's receipt")

    claim_output_dir(out, marker=DEMO_MARKER)

    assert _tree(out) == [DEMO_MARKER]
    empty = tmp_path / "empty"
    empty.mkdir()
    claim_output_dir(empty, marker=DEMO_MARKER)
    assert _tree(empty) == [DEMO_MARKER]


def test_a_file_named_as_the_out_folder_is_refused_and_kept(tmp_path):
    out = tmp_path / "demo"
    out.write_text("not a folder")
    with pytest.raises(NotOurOutputDir):
        claim_output_dir(out, marker=DEMO_MARKER)
    assert out.read_text() == "not a folder"


def test_a_second_demo_in_the_same_folder_is_refused_while_the_first_holds_its_ledger(tmp_path):
    out = tmp_path / "demo"
    claim_output_dir(out, marker=DEMO_MARKER)
    ledger_home = ParkHome(out / "ledger-home")
    ledger_home.home.mkdir()
    (out / "receipts.png").write_bytes(b"the first demo's receipt")

    with ledger_home.lock_ledger():
        with pytest.raises(LedgerAlreadyServing, match=f"PID {os.getpid()}"):
            claim_output_dir(out, marker=DEMO_MARKER, ledger_homes=[ledger_home.home])
        assert (out / "receipts.png").read_bytes() == b"the first demo's receipt"

    claim_output_dir(out, marker=DEMO_MARKER, ledger_homes=[ledger_home.home])  # the first has finished
    assert _tree(out) == [DEMO_MARKER]


def test_the_station_simulator_refuses_a_folder_it_did_not_make_and_deletes_none_of_it(tmp_path):
    from host_sim.station_ui import StationSimulator

    out = tmp_path / "sim"
    files = _a_real_park_next_to_notes(out / "park")

    with pytest.raises(NotOurOutputDir):
        StationSimulator(out).start()

    assert {path: path.read_bytes() for path in (out / "park").iterdir()} == files
    assert _tree(out) == ["park", "park/ledger.db", "park/notes.txt"]


# ---------------------------------------------------------------- 2. a home with no ledger
EVERY_COMMAND_THAT_NEEDS_A_LEDGER = [
    ["ledger", "verify"],
    ["ledger", "set-aside", "list"],
    ["ledger", "set-aside", "retry", "--all"],
    ["report", "offline"],
    ["member-settings"],
    ["station", "add", "--station", "fishing", "--name", "Fishing"],
    ["staff", "add", "--staff", "li", "--name", "Li", "--role", "cashier", "--card-no", "900001", "--pin", "2468"],
    ["provision", "--terminal", "T-FISHING-1", "--station", "fishing"],
    ["broker-config"],
    ["terminal", "retire", "--terminal", "T-FISHING-1"],
    ["ledger", "serve"],
]


@pytest.mark.parametrize("command", EVERY_COMMAND_THAT_NEEDS_A_LEDGER, ids=" ".join)
def test_a_command_on_an_empty_home_exits_non_zero_with_one_line_and_creates_nothing(tmp_path, capsys, command):
    home = tmp_path / "home"
    home.mkdir()

    assert main(["--home", str(home), *command]) != 0

    assert "no ledger in" in _one_line(capsys.readouterr().err)
    assert _tree(home) == []


@pytest.mark.parametrize("command", EVERY_COMMAND_THAT_NEEDS_A_LEDGER, ids=" ".join)
def test_a_command_on_a_home_that_does_not_exist_gives_the_same_line_and_creates_nothing(tmp_path, capsys, command):
    home = tmp_path / "nonexistent"

    assert main(["--home", str(home), *command]) != 0

    assert "no ledger in" in _one_line(capsys.readouterr().err)
    assert not home.exists()


# ---------------------------------------------------------------- 3. one ledger per home
_HOLD_THE_LOCK = """
import sys
from ledger.park_home import ParkHome
lock = ParkHome(__import__("pathlib").Path(sys.argv[1])).lock_ledger()
print("locked", flush=True)
sys.stdin.read()  # hold it until the test closes our stdin
"""


@pytest.fixture
def park_home(tmp_path):
    rig = ParkRig(tmp_path / "park").create({"T-FISHING-1": "fishing"})
    yield rig.home
    rig.close()


@pytest.fixture
def first_ledger(park_home):
    """Another process holding the home's ledger lock, as a running ``ledger serve`` does."""
    process = subprocess.Popen([sys.executable, "-c", _HOLD_THE_LOCK, str(park_home.home)], cwd=REPO,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "locked"
        yield process
    finally:
        process.stdin.close()
        process.wait()
        process.stdout.close()


def test_a_second_ledger_on_the_same_home_is_refused_naming_the_first_ones_pid(park_home, first_ledger, capsys):
    assert main(["--home", str(park_home.home), "ledger", "serve", "--broker-port", "1"]) != 0

    refusal = _one_line(capsys.readouterr().err)
    assert "LEDGER_ALREADY_SERVING" in refusal and f"PID {first_ledger.pid}" in refusal
    assert park_home.lock_path.read_text().strip() == str(first_ledger.pid)


def test_the_home_is_free_again_once_the_first_ledger_has_stopped(park_home, first_ledger):
    with pytest.raises(LedgerAlreadyServing):
        park_home.lock_ledger()
    first_ledger.stdin.close()
    first_ledger.wait()

    with park_home.lock_ledger():  # the kernel dropped the dead process's lock; only its PID was left
        assert park_home.lock_path.read_text().strip() == str(os.getpid())


def test_two_opens_in_one_process_are_two_ledgers_and_the_second_is_refused(park_home):
    with park_home.lock_ledger():
        with pytest.raises(LedgerAlreadyServing, match=f"PID {os.getpid()}"):
            park_home.lock_ledger()
    park_home.lock_ledger().release()  # released with the first


# ---------------------------------------------------------------- 4 (part). a command run twice
@pytest.mark.parametrize("words", [
    ("ledger", "init", "--park", "P1", "--name", "Park"),
    ("station", "add", "--station", "fishing", "--name", "Fishing again"),
    ("staff", "add", "--staff", "zhou", "--name", "Zhou", "--role", "cashier", "--card-no", "S0001", "--pin", "1234"),
    ("provision", "--terminal", "T-FISH-1", "--station", "fishing"),
])
def test_a_command_run_twice_or_with_a_used_name_says_so_in_one_line_and_changes_nothing(tmp_path, capsys, words):
    home = tmp_path / "park"
    cli = lambda *rest: main(["--home", str(home), *rest])  # noqa: E731
    assert cli("ledger", "init", "--park", "P1", "--name", "Park") == 0
    assert cli("station", "add", "--station", "fishing", "--name", "Fishing") == 0
    assert cli("staff", "add", "--staff", "wang", "--name", "Wang", "--role", "cashier", "--card-no", "S0001",
               "--pin", "1234") == 0
    assert cli("provision", "--terminal", "T-FISH-1", "--station", "fishing") == 0
    before = {path: path.read_bytes() for path in home.rglob("*") if path.is_file() and path.suffix != ".db"
              and "ledger.db" not in path.name}
    books = ParkHome(home).open_store()
    counts = [books.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in ("station", "staff", "terminal")]
    books.close()
    capsys.readouterr()
    assert cli(*words) == 2
    line = _one_line(capsys.readouterr().err)
    assert "ALREADY_EXISTS" in line and "Traceback" not in line
    assert {path: path.read_bytes() for path in before} == before  # keys and bundles untouched
    books = ParkHome(home).open_store()
    assert [books.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in ("station", "staff", "terminal")] == counts
    books.close()
