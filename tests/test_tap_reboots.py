"""A tap that keeps crashing stops (tap/reboots.py): its boots are counted on flash, a run that
lasts sets the count back, past the park's signed max_reboots the next boot stops it; the stopped
tap shows the fault and reports itself out of service with a signed status the real ledger
records. And the board loop (tap.board.serve) tells the count the park's limit and that it ran."""

import json

import pytest

from host_sim.rig import ParkRig
from ledger.park_home import STATION_KINDS
from protocol import envelope, messages, topics
from tap import board, hal, mqtt, reboots
from tap.app import TapApp
from tap.state import TapState

from .helpers import tap_scenario as scenario
from .helpers.intake_driver import Ledger
from .helpers.tap_broker_script import BrokerStream


class Clock:
    def __init__(self):
        self.now = 0

    def __call__(self):
        return self.now


def _boot(path, clock, runs_ms=0, max_reboots=None):
    """One boot of the tap: counted, then (if it may run) ``runs_ms`` of its loop."""
    guard = reboots.BootGuard(str(path), clock)
    allowed = guard.boot()
    if allowed:
        guard.tick(max_reboots)
        clock.now += runs_ms
        guard.tick(max_reboots)
    return allowed, guard


def test_a_tap_that_keeps_crashing_restarts_max_reboots_times_and_then_stops_for_good(tmp_path):
    path, clock = tmp_path / "boots.json", Clock()
    outcomes = [_boot(path, clock, runs_ms=60_000, max_reboots=3)[0] for _ in range(6)]
    assert outcomes == [True, True, True, True, False, False]  # the first boot, 3 restarts, then stopped
    record = json.loads(path.read_text())
    assert record["stopped"] and record["max_reboots"] == 3


def test_a_run_that_lasts_the_healthy_time_sets_the_count_back(tmp_path):
    path, clock = tmp_path / "boots.json", Clock()
    for _ in range(3):
        assert _boot(path, clock, runs_ms=60_000)[0]
    assert _boot(path, clock, runs_ms=reboots.HEALTHY_AFTER_MS)[0]  # this one ran 10 minutes
    assert json.loads(path.read_text())["boots"] == 0
    assert all(_boot(path, clock, runs_ms=60_000)[0] for _ in range(4))  # 4 more boots before it stops again
    assert not _boot(path, clock)[0]


def test_the_limit_is_the_one_the_signed_config_gave_and_a_damaged_file_counts_afresh(tmp_path):
    path, clock = tmp_path / "boots.json", Clock()
    assert _boot(path, clock, max_reboots=1)[0] and _boot(path, clock, max_reboots=1)[0]
    assert not _boot(path, clock)[0]  # the park allows one restart: the second stops it
    path.write_text("{not json")
    assert _boot(path, clock)[0] and json.loads(path.read_text())["boots"] == 1


def test_the_board_loop_gives_the_guard_the_config_s_max_reboots(tmp_path):
    ledger = scenario.Ledger()
    retained = {topics.config("P1", "TAP-1"): scenario.config(), topics.blocklist("P1"): scenario.blocklist()}

    def connect():
        client = mqtt.MqttClient(BrokerStream(ledger, retained), "TAP-1", "TAP-1", "x" * 32)
        client.connect()
        return client

    class NoCard:
        def read(self):
            return None

    clock = Clock()
    guard = reboots.BootGuard(str(tmp_path / "boots.json"), clock)
    guard.record["max_reboots"] = 7
    assert guard.boot()
    app = TapApp(scenario.bundle(), TapState(str(tmp_path / "tap.json")), hal.PrintHal(), scenario.Ticks(),
                 scenario.fixed_random, result_timeout_ms=50)
    board.serve(app, NoCard(), connect, scenario.Ticks(), lambda ms: None, turns=2, guard=guard)
    assert json.loads((tmp_path / "boots.json").read_text())["max_reboots"] == 3  # scenario.config's policy


@pytest.fixture
def tap_ledger(tmp_path):
    rig = ParkRig(tmp_path).create({"T-DESK-1": "desk", "TAP-1": "riding"}, kinds_by_terminal={"TAP-1": STATION_KINDS["tap"]})
    driver = Ledger(rig)
    try:
        yield driver
    finally:
        rig.close()
        driver.store.close()


def test_a_stopped_tap_shows_the_fault_and_its_report_is_recorded_by_the_ledger(tap_ledger, tmp_path):
    clock = Clock()
    path = tmp_path / "boots.json"
    for _ in range(4):
        _boot(path, clock)
    allowed, guard = _boot(path, clock)
    guard.crashed(MemoryError("memory allocation failed"))
    assert not allowed
    bundle = json.loads(tap_ledger.rig.home.bundle_path("TAP-1").read_text())
    published, attempts = [], []

    def report():  # the network comes back on the third try
        attempts.append(1)
        if len(attempts) < 3:
            raise OSError("no Wi-Fi")
        published.append(reboots.fault_report(bundle, 41, 2))

    outputs = hal.PrintHal()
    assert reboots.stopped(guard, outputs, report, lambda ms: None, turns=5)
    assert len(attempts) == 3 and len(published) == 1  # reported once, then only the fault shown
    assert outputs.shown == [(hal.FAULT, ("故障 Fault: restarted 4 times", "请联系工作人员 Call staff",
                                          "MemoryError: memory allocation failed"))]
    topic, payload = published[0]
    assert topic == topics.status("P1", "TAP-1")
    parts = envelope.split(payload)
    status = messages.parse(parts.body, {messages.TerminalStatus.TYPE: messages.TerminalStatus})
    assert (status.is_online, status.highest_seq, status.queue_depth) == (False, 41, 2)
    assert tap_ledger.intake.process([(topic, payload)]) == []  # a status is never answered
    assert tap_ledger.store.terminal_status("TAP-1")[:2] == (41, 2)
    # One signed by another key (a copied bundle with its own seed) is dropped, not recorded.
    _, forged = reboots.fault_report(dict(bundle, signing_seed="11" * 32), 99, 0)
    tap_ledger.intake.process([(topic, forged)])
    assert tap_ledger.store.terminal_status("TAP-1")[:2] == (41, 2)


def test_the_count_and_the_report_are_the_same_on_the_micropython_unix_port(tmp_path):
    from tools import micropython_ports as micropython

    script = tmp_path / "stopped.py"
    script.write_text(f"BUNDLE = {scenario.bundle()!r}\nPATH = {str(tmp_path / 'boots.json')!r}\n" + """
from tap import reboots

guard = reboots.BootGuard(PATH, lambda: 0)
print("BOOTS", " ".join(str(guard.boot()) for _ in range(6)))
topic, payload = reboots.fault_report(BUNDLE, 41, 2)
print("REPORT", topic, payload.hex())
""", encoding="utf-8")
    run = micropython.run_unix(script, heap="96K", path=micropython.compile_tap(tmp_path / "board"))
    assert "BOOTS True True True True False False" in run.stdout, run.stdout + run.stderr
    topic, payload = reboots.fault_report(scenario.bundle(), 41, 2)
    assert f"REPORT {topic} {payload.hex()}" in run.stdout, run.stdout + run.stderr
