"""``fieldpos ledger serve`` says in one stdout line, without ``-v``, that it is up: the park, how many
terminals it knows and the broker it serves through (issue 12, item 7)."""

from pathlib import Path
import subprocess
import sys
import threading

from tests.conftest import TERMINALS
from tests.helpers.waiting import wait_until
from tools.serving_line import serving_line

REPO = Path(__file__).resolve().parent.parent


def _collect_lines(stream, lines: list[str]) -> threading.Thread:
    """Read the child's stdout on a thread so the test waits with a bound, never on a blocking read."""
    def read():
        for line in stream:
            lines.append(line.rstrip("\n"))

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def test_a_ledger_started_by_hand_says_once_which_park_it_serves_and_through_which_broker(stopped_rig, mqtt_version):
    park = stopped_rig
    command = [sys.executable, "-m", "tools.cli", "--home", str(park.home.home), "ledger", "serve",
               "--broker-host", "127.0.0.1", "--broker-port", str(park.port), "--mqtt", mqtt_version]
    ledger = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = _collect_lines(ledger.stdout, lines)
    try:
        wait_until(lambda: lines or ledger.poll() is not None, what="the ledger's first stdout line")
        assert ledger.poll() is None, f"the ledger stopped: {ledger.stderr.read()}"
    finally:
        ledger.terminate()
        ledger.wait()
        reader.join()
        ledger.stdout.close()
        ledger.stderr.close()

    assert lines == [f"fieldpos ledger: park {park.park_id} serving {len(TERMINALS)} terminals "
                     f"via 127.0.0.1:{park.port} (MQTT {mqtt_version})"]


def test_a_park_with_one_terminal_reads_as_one_terminal():
    assert serving_line("P1", 1, "10.0.0.2", 8883, "3.1.1") == \
        "fieldpos ledger: park P1 serving 1 terminal via 10.0.0.2:8883 (MQTT 3.1.1)"
