"""The board's files (issue 12 items 5 and 6): ``terminal check`` and ``flash.sh`` accept and refuse the
same bundles and station configs (one loader, terminal/board_files.py); after a file fails, the check
still tests every hardware part; a check leaves no ``outbox.db`` beside the bundle; a bundle whose
broker host is a loopback address is warned about by provision, by the check and by flash.sh."""

import json

import pytest

from terminal.hal.factory import make_hardware
from terminal.runner import OUTBOX_FILE_NAME
from terminal.selfcheck import check_terminal
from tools.cli import main

from .test_flash import flash
from .test_selfcheck import board_files

HARDWARE_PARTS = ["card reader", "printer", "display", "keypad"]


def run_check(bundle, config, **options):
    with make_hardware("sim") as hardware:
        return {line.part: line for line in check_terminal(bundle, config, hardware=hardware, **options)}


def test_after_the_bundle_and_config_fail_the_hardware_parts_are_still_tested(tmp_path):
    config = tmp_path / "station.json"
    config.write_text(json.dumps({"park_name": "P", "station_name": "S", "mode": "carousel"}))
    lines = run_check(tmp_path / "no-bundle.json", config)
    assert not lines["bundle"].is_ok and "provision this terminal" in lines["bundle"].detail
    assert not lines["station"].is_ok and "carousel" in lines["station"].detail
    for part in HARDWARE_PARTS:
        assert lines[part].is_ok, lines[part]
    assert not lines["ledger"].is_ok and "no usable bundle" in lines["ledger"].detail


def test_a_check_leaves_no_outbox_beside_the_bundle_but_reports_the_tills_own(rig, tmp_path):
    bundle, config = board_files(rig, tmp_path)
    lines = run_check(bundle, config, mqtt_version=rig.mqtt_version)
    assert lines["ledger"].is_ok, lines["ledger"]
    assert "the till has not run" in lines["outbox"].detail
    assert sorted(path.name for path in bundle.parent.iterdir()) == ["bundle.json", "station.json"]

    from terminal.outbox import Outbox  # the till ran here once: its outbox is the one reported

    Outbox(bundle.parent / OUTBOX_FILE_NAME).close()
    lines = run_check(bundle, config, mqtt_version=rig.mqtt_version)
    assert lines["outbox"].is_ok and "0 request(s) waiting to upload" in lines["outbox"].detail


def _edited(data: dict, **changes) -> dict:
    return {key: value for key, value in (data | changes).items() if value is not None}


CONFIG_CASES = {
    "as written": {},
    "mode missing (free by default)": {"mode": None},
    "unknown mode": {"mode": "carousel"},
    "count mode without a unit price": {"mode": "count", "unit_price_fen": 0},
    "an unknown setting": {"colour": "red"},
    "park name missing": {"park_name": None},
    "menu mode with 10 items": {"mode": "menu", "menu": [{"name": f"item {n}", "price_fen": 100} for n in range(10)]},
}


@pytest.mark.parametrize("case", CONFIG_CASES)
def test_check_and_flash_accept_and_refuse_the_same_station_configs(rig, tmp_path, case):
    bundle, config = board_files(rig, tmp_path)
    config.write_text(json.dumps(_edited(json.loads(config.read_text()), **CONFIG_CASES[case]), ensure_ascii=False))
    checked = run_check(bundle, config, mqtt_version=rig.mqtt_version)["station"]
    root = tmp_path / "rootfs"
    root.mkdir()
    flashed = flash("--bundle", bundle, "--config", config, "--root", root)
    assert (flashed.returncode == 0) == checked.is_ok, (checked, flashed.stderr)
    if not checked.is_ok:
        assert checked.detail in flashed.stderr  # the same words, from the same loader
        assert not (root / "etc").exists()  # nothing written


@pytest.mark.parametrize("text", ["not json {", "[1, 2]", '"a string"'])
def test_a_station_config_that_is_not_a_json_object_is_one_failed_line_in_both(rig, tmp_path, text):
    bundle, config = board_files(rig, tmp_path)
    config.write_text(text)
    checked = run_check(bundle, config, mqtt_version=rig.mqtt_version)["station"]
    assert not checked.is_ok and "not a JSON object of settings" in checked.detail
    root = tmp_path / "rootfs"
    root.mkdir()
    flashed = flash("--bundle", bundle, "--config", config, "--root", root)
    assert flashed.returncode == 1 and "Traceback" not in flashed.stderr


def test_a_loopback_broker_host_is_warned_about_by_provision_check_and_flash(rig, tmp_path, capsys):
    home = str(rig.home.home)
    assert main(["--home", home, "provision", "--terminal", "T-BBQ-1", "--station", "bbq",
                 "--broker-port", str(rig.port)]) == 0
    assert "is this machine itself" in capsys.readouterr().err
    assert main(["--home", home, "provision", "--terminal", "T-BBQ-2", "--station", "bbq",
                 "--broker-host", "10.20.0.5"]) == 0
    assert capsys.readouterr().err == ""

    for terminal_id, is_loopback in (("T-BBQ-1", True), ("T-BBQ-2", False)):
        folder = tmp_path / terminal_id
        folder.mkdir()
        bundle, config = board_files(rig, folder, terminal_id)
        if is_loopback:
            bundle_of_the_loopback_one = bundle
        root = folder / "rootfs"
        root.mkdir()
        flashed = flash("--bundle", bundle, "--config", config, "--root", root)
        assert flashed.returncode == 0, flashed.stderr
        assert ("loopback address" in flashed.stderr) == is_loopback
    # The check says so too (on the board that cannot reach 10.20.0.5 it would fail its ledger line).
    bundle_line = run_check(bundle_of_the_loopback_one, config, mqtt_version=rig.mqtt_version)["bundle"]
    assert bundle_line.is_ok and "loopback address" in bundle_line.detail
