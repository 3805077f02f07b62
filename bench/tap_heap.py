"""The heap a tap needs for a whole sale, on the MicroPython unix port (64-bit), through the real
Mosquitto and ledger: the signed config taken, then two taps (each: the card's record verified,
the charge signed and published, the ledger's signed Result verified).

    .venv/bin/python bench/tap_heap.py [--low 64] [--high 160]

Prints the heap in use after each phase of a session in 96 KiB (the interpreter alone is the
floor; then the tap's code imported, the app built, ready to sell, after each sale), then the
smallest heap, to 4 KiB, in which the whole sale completes (both approved online, nothing dropped
for want of heap), with the collection threshold tap.board sets at boot (tap.HEAP_THRESHOLD_BYTES)
and without it.
A run that fails for want of heap can fail at any step, so the smallest heap is searched from the
top down, each size run once: a size below the figure may pass by luck, none above it failed.

Then the whole tap: the board's own boot and loop (tap.board.main with the reboot guard, the
MFRC522 and SSD1306 drivers) replaying a recorded two-card sale (tests/test_tap_board.py's
recording: emulated reader, scripted broker), on the unix port and on the 32-bit WebAssembly port:
the heap in use after each phase ("HEAP", after a collection) and the most seen within it
("PEAK", garbage included), and on the unix port the smallest heap that completes it. The
WebAssembly port grows its heap instead of collecting while a script runs, so its figures are
everything allocated since the start, and no smallest heap can be found there; what the run left
alive, collected once back at the port's top level, beside the unix port's, scales the unix
port's smallest heap to an estimate for 32 bits (an estimate: transient big integers need not
scale as the code does).
"""

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from host_sim.rig import ParkRig, card, common  # noqa: E402
from ledger.park_home import STATION_KINDS  # noqa: E402
from protocol.card_record import CardRecord, sign_record  # noqa: E402
from protocol.envelope import Purpose  # noqa: E402
from protocol.messages import CardIssue, MenuItem, StationSettings  # noqa: E402
from tools import micropython_ports as micropython  # noqa: E402

SESSION = ROOT / "tests" / "helpers" / "tap_unix_session.py"
BOARD_RECORDER = ROOT / "tests" / "helpers" / "tap_board_record.py"
BOARD_REPLAY = ROOT / "tests" / "helpers" / "tap_board_replay.py"
BOARD_FILES = ("bundle.json", "tap_board.json", "spi.log", "mqtt.log")
TWO_APPROVALS = "14=1 15=0 16=1 16=0 " * 2  # green LED and one beep for each sale
RIDE = MenuItem(item="ride", name="骑马 1次 Ride", price_fen=1500)


class Park:
    def __init__(self, folder: Path):
        self.folder = folder
        self.rig = ParkRig(folder).create({"T-DESK-1": "desk", "TAP-1": "riding"},
                                          kinds_by_terminal={"TAP-1": STATION_KINDS["tap"]})
        self.rig.home.change_station("riding", lambda current: StationSettings(
            name=current.name, mode="fixed", menu=(RIDE,), opens=None, closes=None))
        self.rig.start_broker()
        self.rig.start_ledger()
        self.board = micropython.compile_tap(folder / "board")
        self.desk = self.rig.link("T-DESK-1")  # one connection for every card issued
        self.runs = 0

    def session(self, heap: str, *extra: str) -> str:
        """One tap session in ``heap`` with a card of its own and a fresh state file; its output."""
        self.runs += 1
        card_no = f"B{self.runs:05d}"
        desk = self.desk
        visitor = card(card_no)
        issued = desk.submit(lambda seq: CardIssue(**common(desk, seq, visitor), card_kind="temporary",
                                                   card_fee_fen=2000, opening_fen=10000, channel="cash", payment_ref=""),
                             timeout_s=60)
        assert issued.outcome == "approved", issued
        uid = bytes.fromhex(visitor.uid)
        record = sign_record(CardRecord(card_no, 1, "temporary", self.rig.park_id), uid,
                             self.rig.home.ledger_keys().for_purpose(Purpose.CARD_RECORD).signing_key)
        taps = self.folder / f"taps-{self.runs}.txt"
        taps.write_text(f"{uid.hex()} {record.hex()}\n" * 2)
        run = micropython.run_unix(SESSION, self.rig.home.bundle_path("TAP-1"), self.folder / f"state-{self.runs}.json",
                                   taps, *extra, heap=heap, path=Path("."), cwd=self.board)  # tap/*.mpy as on a board
        return run.stdout + run.stderr

    def close(self):
        self.rig.close()


def completed(out: str) -> bool:
    """Both taps approved online and nothing dropped for want of heap. (A late Result to an
    earlier run's request, which the broker keeps for TAP-1's session, is dropped as unknown:
    not a failure of this run.)"""
    return (re.findall(r"OUTCOME (\w+)", out) == ["approved", "approved"] and "Paid offline" not in out
            and "OUT_OF_MEMORY" not in out and "DONE" in out)


def smallest_heap(park: Park, low: int, high: int, *extra: str) -> int | None:
    """The smallest heap in KiB (a multiple of 4, from ``high`` down) below which the sale first failed."""
    smallest = None
    for kib in range(high, low - 1, -4):
        if not completed(park.session(f"{kib}K", *extra)):
            break
        smallest = kib
    return smallest


def board_completed(out: str) -> bool:
    """The whole tap's replay ran to the recording's end, wrote every byte as recorded, and showed
    both sales approved."""
    pins = re.search(r"PINS ?(.*)", out)
    return ("ENDED finished" in out and "mismatches 0" in out and "MQTT mismatches 0 finished True" in out
            and pins is not None and pins[1].strip() == TWO_APPROVALS.strip())


class WholeTap:
    """tests/test_tap_board.py's recording (run as a script: bench sits below tests), replayed."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.recording = folder / "recording"
        done = subprocess.run([sys.executable, str(BOARD_RECORDER), str(self.recording)], capture_output=True,
                              text=True, cwd=ROOT)
        assert done.returncode == 0, done.stdout + done.stderr
        self.runs = 0

    def run(self, port: str, kib: int) -> str:
        self.runs += 1
        board = self.folder / f"board-{self.runs}"
        board.mkdir()
        for name in BOARD_FILES:
            shutil.copyfile(self.recording / name, board / name)
        micropython.compile_tap(board)
        micropython.compile_main(BOARD_REPLAY, board)
        done = micropython.run_board(port, board, kib)
        return done.stdout + done.stderr


def print_board(whole: WholeTap, low: int, high: int) -> None:
    left_alive = {}
    for port, kib, label in (("unix", high, "64-bit unix port"), ("wasm", 96, "32-bit WebAssembly port")):
        out = whole.run(port, kib)
        alive = re.search(r"LIVE AFTER (\d+)", out) if port == "wasm" else re.search(r"HEAP end (\d+)", out)
        left_alive[port] = int(alive[1]) if alive else None
        print(f"The whole tap (board loop, drivers, two sales) on the {label}, heap {kib} KiB: "
              f"{'completed' if board_completed(out) else 'FAILED'}")
        heaps, peaks = dict(re.findall(r"HEAP (\S+) (\d+)", out)), dict(re.findall(r"PEAK (\S+) (\d+)", out))
        for phase, used in heaps.items():
            peak = peaks.get(phase)
            print(f"  {phase:8} in use {int(used) / 1024:7.1f} KiB"
                  + (f", most seen in it {int(peak) / 1024:7.1f} KiB" if peak is not None else ""))
    smallest = None
    for kib in range(high, low - 1, -4):
        if not board_completed(whole.run("unix", kib)):
            break
        smallest = kib
    figure = f"{smallest} KiB" if smallest is not None else f"more than {high} KiB"
    print(f"Smallest heap for the whole tap on the unix port: {figure} (the acceptance's: 96 KiB; the floor, "
          "the interpreter with the board's stand-in hardware and broker, is 'start' above)")
    if smallest is not None and all(left_alive.values()):
        ratio = left_alive["wasm"] / left_alive["unix"]
        print(f"Left alive after the run (code, stand-ins): unix {left_alive['unix'] / 1024:.1f} KiB, WebAssembly "
              f"{left_alive['wasm'] / 1024:.1f} KiB (collected back at its top level), ratio {ratio:.2f}; "
              f"an ESTIMATE, not a run, of the smallest 32-bit heap: {smallest * ratio:.0f} KiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--low", type=int, default=64, help="KiB")
    parser.add_argument("--high", type=int, default=160, help="KiB")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        park = Park(Path(folder))
        try:
            out = park.session("96K")
            phases = re.findall(r"HEAP (\w+) (\d+)", out)
            print(f"A whole sale in 96 KiB ({'completed' if completed(out) else 'FAILED'}); heap in use after each phase:")
            for phase, used in phases:
                print(f"  {phase:8} {int(used) / 1024:6.1f} KiB")
            floor = dict(phases).get("start")
            with_threshold = smallest_heap(park, args.low, args.high)
            without = smallest_heap(park, args.low, args.high, "--no-threshold")
        finally:
            park.close()
    print(f"Floor: the interpreter alone {int(floor) / 1024:.1f} KiB." if floor else "Floor: not measured.")
    for name, kib in (("with gc.threshold(4 KiB), as a board boots", with_threshold),
                      ("without it", without)):
        figure = f"{kib} KiB" if kib is not None else f"more than {args.high} KiB"
        print(f"Smallest heap for the whole sale, {name}: {figure}")
    with tempfile.TemporaryDirectory() as folder:
        print_board(WholeTap(Path(folder)), args.low, args.high)


if __name__ == "__main__":
    main()
