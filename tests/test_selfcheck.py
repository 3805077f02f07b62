"""``fieldpos terminal check``: a technician's check of a board's parts and its link to the ledger."""

import json

from terminal.hal.factory import make_hardware
from terminal.selfcheck import check_terminal
from tools.cli import main


def board_files(rig, tmp_path, terminal_id="T-FISH-1"):
    """The files a technician puts on the board: the bundle and the station config."""
    board = tmp_path / "board"
    board.mkdir()
    bundle = board / "bundle.json"
    bundle.write_text(rig.home.bundle_path(terminal_id).read_text())
    config = board / "station.json"
    config.write_text(json.dumps(rig.station_config(terminal_id).to_dict(), ensure_ascii=False))
    return bundle, config


def test_a_board_with_every_part_and_the_ledger_answering_checks_ok(rig, tmp_path):
    bundle, config = board_files(rig, tmp_path)
    with make_hardware("sim") as hardware:
        lines = check_terminal(bundle, config, hardware=hardware, mqtt_version=rig.mqtt_version)
        shown = hardware.sim.oled.to_image()
    assert [line.part for line in lines] == ["bundle", "station", "card reader", "printer", "display", "keypad",
                                             "storage", "outbox", "ledger"]
    assert all(line.is_ok for line in lines), "\n".join(map(str, lines))
    assert "answered Hello" in lines[-1].detail and "T-FISH-1" in lines[0].detail
    assert shown.getbbox() is not None  # the test screen lit pixels on the panel
    requests = rig.reader.db.execute("SELECT COUNT(*) FROM request WHERE terminal_id='T-FISH-1'").fetchone()[0]
    assert requests == 0  # a check stores nothing at the ledger


def test_paper_out_and_no_broker_fail_with_what_to_do(rig, tmp_path, capsys):
    bundle, config = board_files(rig, tmp_path)
    rig.broker.stop()
    with make_hardware("sim") as hardware:
        hardware.sim.printer.set_paper_out()
        lines = {line.part: line for line in check_terminal(bundle, config, hardware=hardware, link_timeout_s=1)}
    assert not lines["printer"].is_ok and "load a roll" in lines["printer"].detail
    assert not lines["ledger"].is_ok and "BROKER_UNREACHABLE" in lines["ledger"].detail
    assert lines["card reader"].is_ok and lines["display"].is_ok
    # From the command line: a missing bundle is a failed line and a non-zero exit, not a traceback.
    assert main(["terminal", "check", "--bundle", str(tmp_path / "nope.json"), "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  bundle" in out and "provision this terminal" in out and "failed: bundle" in out
