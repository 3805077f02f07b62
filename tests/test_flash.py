"""flash.sh puts a provisioned terminal onto a Pi's SD card root: files, modes, the boot service."""

import os
from pathlib import Path
import subprocess

from terminal.hal.factory import make_hardware
from terminal.selfcheck import check_terminal

from .test_selfcheck import board_files

FLASH = Path(__file__).resolve().parent.parent / "flash.sh"


def flash(*arguments):
    return subprocess.run(["bash", str(FLASH), *map(str, arguments)], capture_output=True, text=True, timeout=120)


def test_flash_writes_the_terminal_onto_a_card_root_and_the_flashed_files_pass_the_check(rig, tmp_path):
    bundle, config = board_files(rig, tmp_path)
    root = tmp_path / "rootfs"
    root.mkdir()
    done = flash("--bundle", bundle, "--config", config, "--root", root)
    assert done.returncode == 0, done.stderr
    flashed_bundle = root / "var/lib/fieldpos/bundle.json"
    assert flashed_bundle.read_bytes() == bundle.read_bytes() and (flashed_bundle.stat().st_mode & 0o777) == 0o600
    assert (root / "var/lib/fieldpos").stat().st_mode & 0o777 == 0o700
    assert (root / "opt/fieldpos/src/pyproject.toml").exists() and (root / "opt/fieldpos/src/terminal/app.py").exists()
    assert not (root / "opt/fieldpos/src/tests").exists() and not (root / "opt/fieldpos/src/.venv").exists()
    unit = (root / "etc/systemd/system/fieldpos-terminal.service").read_text()
    assert "Description=fieldpos terminal T-FISH-1" in unit and "User=fieldpos" in unit
    assert "ExecStartPre=+/opt/fieldpos/first-boot.sh" in unit and "Restart=on-failure" in unit
    enabled = root / "etc/systemd/system/multi-user.target.wants/fieldpos-terminal.service"
    assert os.readlink(enabled) == "../fieldpos-terminal.service"
    first_boot = root / "opt/fieldpos/first-boot.sh"
    assert os.access(first_boot, os.X_OK) and subprocess.run(["sh", "-n", str(first_boot)]).returncode == 0
    # What the service will run, on the files as flashed (here on emulated hardware).
    with make_hardware("sim") as hardware:
        lines = check_terminal(flashed_bundle, root / "etc/fieldpos/station.json", hardware=hardware,
                               mqtt_version=rig.mqtt_version)
    assert all(line.is_ok for line in lines), "\n".join(map(str, lines))


def test_flash_refuses_what_the_terminal_would_refuse_at_boot(rig, tmp_path):
    bundle, config = board_files(rig, tmp_path)
    not_a_bundle = tmp_path / "config-as-bundle.json"
    not_a_bundle.write_text(config.read_text())
    refused = flash("--bundle", not_a_bundle, "--config", config, "--root", tmp_path)
    assert refused.returncode == 1 and "bundle" in refused.stderr and "is damaged" in refused.stderr
    assert not (tmp_path / "var").exists()  # nothing written
    missing_root = flash("--bundle", bundle, "--config", config, "--root", tmp_path / "not-mounted")
    assert missing_root.returncode == 1 and "mount the SD card" in missing_root.stderr
    assert flash("--bundle", bundle).returncode == 2  # usage
