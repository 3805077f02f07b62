"""``fieldpos terminal check`` says what the broker and the ledger said (issue 12 items 5 and 6): a
login the running broker does not know yet is "not authorised" (its CONNACK), not "unreachable"; the
project's broker reloads its logins when a terminal is provisioned; a retired terminal is "retired",
not "the ledger did not answer Hello"."""

from terminal.hal.factory import make_hardware
from terminal.selfcheck import check_terminal
from tools.cli import main

from .test_selfcheck import board_files


def board(rig, folder, terminal_id):
    folder.mkdir()
    return board_files(rig, folder, terminal_id)


def ledger_line(rig, bundle, config):
    with make_hardware("sim") as hardware:
        lines = {line.part: line for line in check_terminal(bundle, config, hardware=hardware,
                                                            mqtt_version=rig.mqtt_version, link_timeout_s=2)}
    return lines["ledger"]


def test_a_login_the_running_broker_has_not_loaded_is_not_authorised_until_provision_reloads_it(rig, tmp_path,
                                                                                               capsys):
    # Registered while the broker runs, its login written nowhere the broker reads: what a park saw
    # after 'provision' with Mosquitto already up.
    rig.home.provision_terminal("T-BBQ-1", "bbq", broker_port=rig.port)
    bundle, config = board(rig, tmp_path / "bbq", "T-BBQ-1")
    refused = ledger_line(rig, bundle, config)
    assert not refused.is_ok
    assert "NOT_AUTHORISED" in refused.detail and "not authorised" in refused.detail.lower()
    assert "Not authorized" in refused.detail  # the broker's own words, from its CONNACK
    assert "BROKER_UNREACHABLE" not in refused.detail

    # The command a park runs: it writes the new login and the broker the project started reloads.
    assert main(["--home", str(rig.home.home), "provision", "--terminal", "T-BBQ-2", "--station", "bbq",
                 "--broker-port", str(rig.port)]) == 0
    said = capsys.readouterr()
    assert f"the running broker (PID {rig.broker.pid}) reloaded them" in said.out
    assert rig.broker.is_running
    bundle, config = board(rig, tmp_path / "bbq2", "T-BBQ-2")
    answered = ledger_line(rig, bundle, config)
    assert answered.is_ok and "answered Hello" in answered.detail, answered
    # The reload wrote every registered login, so the first one is known now too.
    assert ledger_line(rig, *board(rig, tmp_path / "bbq-again", "T-BBQ-1")).is_ok


def test_a_retired_terminal_is_reported_retired(rig, tmp_path):
    bundle, config = board_files(rig, tmp_path)  # the board keeps its files; the park's copy goes
    rig.home.retire_terminal("T-FISH-1")  # its broker login stays until the next broker-config
    line = ledger_line(rig, bundle, config)
    assert not line.is_ok
    assert "TERMINAL_REVOKED" in line.detail and "retired" in line.detail
    assert "did not answer" not in line.detail


def test_no_broker_at_all_is_still_unreachable(rig, tmp_path):
    bundle, config = board_files(rig, tmp_path)
    rig.broker.stop()
    line = ledger_line(rig, bundle, config)
    assert not line.is_ok and "BROKER_UNREACHABLE" in line.detail and "NOT_AUTHORISED" not in line.detail
