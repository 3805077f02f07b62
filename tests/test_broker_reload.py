"""The project's broker manager reloads the logins it was started with (issue 12 item 5): the
Mosquitto a MosquittoProcess started notes its PID beside its config, and another command's
``reload_running_broker`` SIGHUPs exactly that process, never a stale note's PID."""

import os

from transport.mosquitto_process import PID_FILE_NAME, reload_running_broker
from tools.cli import main


def test_reload_signals_the_running_broker_and_it_keeps_serving(rig, capsys):
    note = rig.home.broker_dir / PID_FILE_NAME
    assert note.read_text().strip() == str(rig.broker.pid)
    assert reload_running_broker(rig.home.broker_dir) == rig.broker.pid
    link = rig.link("T-FISH-1")  # connects after the reload: the broker still serves its logins
    assert link.is_connected
    # broker-config rewrites the files and reloads the same broker, and says so.
    assert main(["--home", str(rig.home.home), "broker-config", "--port", str(rig.port)]) == 0
    assert f"the running broker (PID {rig.broker.pid}) reloaded" in capsys.readouterr().out
    assert rig.broker.is_running


def test_a_stale_note_or_a_stopped_broker_is_never_signalled(rig):
    note = rig.home.broker_dir / PID_FILE_NAME
    rig.broker.stop()
    assert not note.exists()  # a clean stop takes its note away
    assert reload_running_broker(rig.home.broker_dir) is None
    note.write_text(f"{os.getpid()}\n")  # a killed broker's note, its PID now someone else's (ours)
    assert reload_running_broker(rig.home.broker_dir) is None  # not a Mosquitto on this config: not signalled


def test_broker_run_refuses_a_port_already_taken_saying_what_to_do(rig, capsys):
    # The rig's broker holds the port that the park's config names, as Debian's service holds 1883.
    rig.home.write_broker_config(port=rig.port)
    assert main(["--home", str(rig.home.home), "broker-run"]) == 1
    error = capsys.readouterr().err
    assert f"port {rig.port} is already taken" in error and "systemctl disable --now mosquitto" in error
    assert len(error.strip().splitlines()) == 1
