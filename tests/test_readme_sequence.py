"""The README's "Setting up a park by hand", run as a newcomer would (issue 12 item 5): every line of
its first ``sh`` block, read from README.md, run by bash in order — only the first line's folder, port
and host are this test's own — and then a sale from the terminal provisioned last, while the broker
and ledger the sequence started keep running. So the README and what works cannot drift apart."""

import os
from pathlib import Path
import re
import shlex
import signal
import subprocess
import sys
import threading

from host_sim.devices.mifare import MifareClassic1K
from host_sim.rig import STAFF, ParkRig
from host_sim.station import ScriptedStation
from ledger.park_home import ParkHome
from terminal.desk import card_number
from terminal.events import State
from transport.mosquitto_process import free_port

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SECTION = "## Setting up a park by hand"
BACKGROUND = re.compile(r"\s&\s*(#.*)?$")
PINS = {card_no: pin for _, _, _, card_no, pin in STAFF}  # the README's staff cards are the rig's
# Bounds on waiting for a background command's first line (the broker, the ledger): not a pace.
STARTUP_WAIT_S = 60


def readme_sequence() -> tuple[dict[str, str], list[str]]:
    """The settings line (NAME=value ...) and the command lines of the section's first sh block."""
    text = README.read_text()
    section = text[text.index(SECTION):]
    block = section[section.index("```sh\n") + len("```sh\n"):]
    lines = [line for line in block[:block.index("```")].splitlines() if line.strip()]
    settings = dict(word.split("=", 1) for word in shlex.split(lines[0]))
    return settings, lines[1:]


def first_line(process: subprocess.Popen, what: str) -> str:
    """The first line a background command prints (it prints one when it is up)."""
    found = []
    reader = threading.Thread(target=lambda: found.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(STARTUP_WAIT_S)
    if not found or not found[0]:
        process.kill()
        raise AssertionError(f"{what} printed nothing; stderr: {process.stderr.read()}")
    return found[0]


def test_the_readme_sequence_runs_on_a_fresh_home_and_ends_with_a_sale(tmp_path):
    settings, commands = readme_sequence()
    assert set(settings) == {"PARK", "BROKER_PORT", "BROKER_HOST"}
    port = free_port()
    environment = {**os.environ, "PARK": "var/park", "BROKER_PORT": str(port), "BROKER_HOST": "127.0.0.1",
                   "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                   "PYTHONPATH": str(ROOT)}  # the fieldpos command runs this checkout's code
    background = []
    said = {}
    try:
        for command in commands:
            if BACKGROUND.search(command):
                process = subprocess.Popen(["bash", "-c", f"exec {BACKGROUND.sub('', command)}"], cwd=tmp_path,
                                           env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                background.append(process)
                said[command] = first_line(process, command)
                continue
            card_no = re.search(r"--card-no (\S+)", command)
            done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=environment, capture_output=True,
                                  text=True, timeout=120, start_new_session=True,  # no terminal: getpass reads stdin
                                  input=f"{PINS[card_no.group(1)]}\n" if card_no else None)
            assert done.returncode == 0, f"{command}\n{done.stdout}{done.stderr}"
            assert "Traceback" not in done.stderr, done.stderr
            said[command] = done.stdout
        def output_of(fragment: str) -> str:
            (command,) = [command for command in said if fragment in command]
            return said[command]

        assert f"listening on 0.0.0.0:{port}" in output_of("broker-run")
        assert "park P1" in output_of("ledger serve")
        # Provisioned while the broker ran: the broker reloaded its logins, so the check logs in.
        assert "the running broker (PID" in output_of("provision --terminal T-RIDE-1")
        assert "9 of 9 ok" in output_of("terminal check"), output_of("terminal check")
        assert not (tmp_path / "var/park/terminals/outbox.db").exists()  # the check left no outbox behind

        sold = sell_with_the_newest_terminal(tmp_path)
        assert sold == (State.DONE, 10000 - 3050)
        verify = next(command for command in commands if "ledger verify" in command)
        books = subprocess.run(["bash", "-c", verify], cwd=tmp_path, env=environment, capture_output=True, text=True,
                               timeout=60)
        assert books.returncode == 0 and "2 transactions" in books.stdout and "books balance" in books.stdout, books
    finally:
        for process in reversed(background):  # started here: the ledger first, then its broker
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def sell_with_the_newest_terminal(workdir: Path) -> tuple[State, int]:
    """A visitor's card issued at the desk (100.00 cash), then 30.50 sold at the riding school by the
    terminal provisioned while the broker was running: each till is the real app on emulated
    hardware, driven through its bundle from the README's park. Returns how the sale ended and the
    card's balance in the books afterwards."""
    (workdir / "tills").mkdir()
    rig = ParkRig(workdir / "tills")  # where the tills keep their outboxes
    rig.home = ParkHome(workdir / "var/park")
    rig.port = int(rig.identity("T-RIDE-1").broker.port)
    desk = ScriptedStation(rig, "T-DESK-1", profile="58mm-raster", mode="desk", card_fee_fen=2000)
    riding = ScriptedStation(rig, "T-RIDE-1", profile="58mm-raster", mode="free")
    try:
        desk.log_in(STAFF[1])
        riding.log_in(STAFF[0])
        visitor = MifareClassic1K(bytes.fromhex("d0000001"))  # a blank card from the box
        desk.tap(visitor)
        desk.keys("1100E1")  # issue: 100.00, cash
        desk.turns(lambda: desk.state in (State.DONE, State.MESSAGE))
        assert desk.state == State.DONE, desk.app.screen
        desk.keys("C")
        ended = riding.sell(visitor, "30.50")
        balance = rig.reader.card(rig.park_id, card_number("temporary", visitor.uid.hex())).fen
        return ended, balance
    finally:
        desk.close()
        riding.close()
        rig.close()
