"""The tap application on both MicroPython runtimes, with a scripted MQTT byte stream standing in
for the socket: a session recorded in CPython (tap.app against tests/helpers/tap_broker_script.py,
the ledger's answers signed by protocol/) is replayed on the unix port and the WebAssembly port,
which must write the same bytes (the same signed requests) and reach the same outcomes."""

import json

import pytest

from protocol import topics
from tap import mqtt
from tap.app import TapApp
from tap.state import TapState

from tools import micropython_ports as micropython

from .helpers import tap_scenario as scenario
from .helpers.tap_broker_script import BrokerStream

REPLAY = micropython.ROOT / "tests" / "helpers" / "tap_replay_check.py"
TAPS = [  # (ledger silent, UID, record): approved, blocked at the tap, no answer -> sold offline
    (False, *scenario.card("C00001", bytes.fromhex("04a1b2c3"))),
    (False, *scenario.card("C00002", bytes.fromhex("04a1b2c4"))),
    (True, *scenario.card("C00001", bytes.fromhex("04a1b2c3"))),
]


class _Quiet:
    def show(self, outcome, lines):
        pass


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    ledger = scenario.Ledger()
    stream = BrokerStream(ledger, {topics.config("P1", "TAP-1"): scenario.config(),
                                   topics.blocklist("P1"): scenario.blocklist(["C00002"])})
    app = TapApp(scenario.bundle(), TapState(str(tmp_path_factory.mktemp("cpython") / "tap.json")), _Quiet(),
                 scenario.Ticks(), scenario.fixed_random, result_timeout_ms=50)
    client = mqtt.MqttClient(stream, "TAP-1", "TAP-1", "x" * 32)
    client.connect()
    app.attach(client)
    assert app.wait_welcome(100)
    outcomes = []
    for silent, uid, record in TAPS:
        ledger.silent = silent
        outcomes.append(app.tap(uid, record))
    assert outcomes == ["approved", "declined", "approved"]
    return outcomes, stream.log


def _script(log, state_path: str) -> str:
    taps = [[silent, uid.hex(), record.hex()] for silent, uid, record in TAPS]
    return (f"BUNDLE_JSON = {json.dumps(scenario.bundle())!r}\nLOG_JSON = {scenario.dump_log(log)!r}\n"
            f"STATE_PATH = {state_path!r}\nEXPECTED = {taps!r}\n"
            + REPLAY.read_text(encoding="utf-8"))


def _verdict(output: str, outcomes) -> None:
    assert f"outcomes {' '.join(outcomes)}" in output, output
    assert "mismatches 0" in output and "finished True" in output, output


def test_the_unix_port_replays_the_session_byte_for_byte(recording, tmp_path):
    outcomes, log = recording
    script = tmp_path / "replay.py"
    script.write_text(_script(log, str(tmp_path / "tap.json")), encoding="utf-8")
    run = micropython.run_unix(script)
    _verdict(run.stdout + run.stderr, outcomes)


def test_the_webassembly_port_replays_the_session_byte_for_byte(recording, tmp_path):
    outcomes, log = recording
    script = tmp_path / "replay.py"
    script.write_text(_script(log, "/tap.json"), encoding="utf-8")
    run = micropython.run_wasm(script)
    _verdict(run.stdout + run.stderr, outcomes)


def test_a_replay_that_writes_other_bytes_is_caught(recording, tmp_path):
    outcomes, log = recording
    charge = next(index for index, (direction, data) in enumerate(log) if direction == "out" and b'"charge"' in data)
    tampered = [(direction, data if index != charge else data[:-1] + b"\x00") for index, (direction, data) in enumerate(log)]
    script = tmp_path / "replay.py"
    script.write_text(_script(tampered, str(tmp_path / "tap.json")), encoding="utf-8")
    run = micropython.run_unix(script)
    assert "mismatches 1" in run.stdout, run.stdout + run.stderr
