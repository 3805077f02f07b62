"""flash.sh --board: the tap's modules compiled with mpy-cross for the board and copied, with the
bundle and the board settings, onto a directory standing in for the board (as --root stands in for
the SD card); the flashed tree runs on the MicroPython unix port."""

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from host_sim.rig import ParkRig
from ledger.park_home import STATION_KINDS
from tools import tap_flash

from tools import micropython_ports as micropython


FLASH = Path(__file__).resolve().parent.parent / "flash.sh"
BOARD = {"wifi": {"ssid": "park-iot", "password": "secret"}, "spi": {"id": 0, "sck": 2, "mosi": 3, "miso": 4, "cs": 5},
         "pins": {"green": 14, "red": 15, "buzzer": 16}}
MODULES = sorted(path.stem for path in (micropython.ROOT / "tap").glob("*.py"))


def flash(*arguments):
    return subprocess.run(["bash", str(FLASH), *map(str, arguments)], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def tap_bundle(tmp_path_factory):
    rig = ParkRig(tmp_path_factory.mktemp("park")).create({"TAP-1": "riding"},
                                                           kinds_by_terminal={"TAP-1": STATION_KINDS["tap"]})
    yield rig.home.bundle_path("TAP-1")
    rig.close()


@pytest.fixture
def board_settings(tmp_path):
    path = tmp_path / "tap_board.json"
    path.write_text(json.dumps(BOARD))
    return path


@pytest.mark.parametrize("arch", ["armv6m", "xtensawin"])
def test_mpy_cross_compiles_every_tap_module_for_the_board(tmp_path, arch):
    written = tap_flash.compile_modules(arch, tmp_path)
    assert sorted(path.stem for path in written) == MODULES
    assert all(path.read_bytes()[:2] == b"M\x06" for path in written)  # .mpy version 6: MicroPython 1.20 and later


def test_flash_board_writes_the_tap_onto_a_board_directory(tap_bundle, board_settings, tmp_path):
    board = tmp_path / "board"
    board.mkdir()
    done = flash("--board", "pico", "--bundle", tap_bundle, "--config", board_settings, "--dest", board)
    assert done.returncode == 0, done.stderr
    assert "flashed tap TAP-1 for pico" in done.stdout
    # provisioned for this machine's broker: the board could never reach it, and is told so
    assert "loopback" in done.stderr and "--broker-host" in done.stderr
    assert sorted(path.stem for path in (board / "tap").glob("*.mpy")) == MODULES
    assert not list((board / "tap").glob("*.py"))
    assert (board / "main.py").read_text().splitlines()[1:] == ["from tap import board", "", "board.main()"]
    # the Ed25519 table is a file the board reads an entry at a time, not a module in its heap
    assert (board / "tap" / "ed25519_table.bin").read_bytes() == (micropython.ROOT / "tap" / "ed25519_table.bin").read_bytes()
    assert (board / "bundle.json").read_bytes() == tap_bundle.read_bytes()
    assert (board / "bundle.json").stat().st_mode & 0o777 == 0o600
    assert json.loads((board / "tap_board.json").read_text()) == BOARD
    # a fresh restart count: flashing starts a tap that had stopped itself (tap.reboots)
    assert json.loads((board / "tap_boots.json").read_text()) == {"boots": 0, "max_reboots": 3, "stopped": False,
                                                                   "last_error": ""}


def test_the_flashed_tree_signs_and_verifies_on_the_unix_port_in_96_kib(tap_bundle, board_settings, tmp_path):
    """The protocol core as flashed (Ed25519 with its table, envelope, canonical JSON, the
    messages) builds, signs and verifies a charge in a 96 KiB heap; the whole application with
    MQTT does too (tests/test_tap_app.py)."""
    board = tmp_path / "board"
    board.mkdir()
    assert flash("--board", "esp32", "--bundle", tap_bundle, "--config", board_settings, "--dest", board).returncode == 0
    script = tmp_path / "core.py"
    script.write_text(textwrap.dedent(f"""
        import tap.ed25519
        import json
        from tap import envelope, messages
        with open({str(board / 'bundle.json')!r}) as file:
            bundle = json.load(file)
        key = tap.ed25519.SigningKey(bytes.fromhex(bundle["signing_seed"]))
        del bundle
        topic = envelope.topic("P1", "TAP-1", "req")
        body = messages.build(messages.CHARGE, messages.charge_fields(
            "P1", "TAP-1", 1, 1780000000000, False, "TAP-1", 3, {{"no": "C00001", "issuance": 1, "uid": "04a1b2c3"}},
            1500, "ride"))
        payload = envelope.seal(body, key, "TAP-1-k1", envelope.REQUEST, topic)
        opened = envelope.verify(envelope.split(payload), tap.ed25519.VerifyKey(key.public_key), envelope.REQUEST, topic)
        print("SIGNED", len(payload), opened == body)
    """))
    run = micropython.run_unix(script, heap="96K", path=board)
    assert "SIGNED" in run.stdout and run.stdout.split()[-1] == "True", run.stdout + run.stderr


@pytest.mark.parametrize("change, complaint", [
    (lambda settings: settings["spi"].pop("cs"), "spi.cs must be a pin number"),
    (lambda settings: settings.pop("wifi"), "missing wifi"),
])
def test_flash_board_refuses_settings_the_board_could_not_start_with(tap_bundle, tmp_path, change, complaint):
    settings = json.loads(json.dumps(BOARD))
    change(settings)
    path = tmp_path / "tap_board.json"
    path.write_text(json.dumps(settings))
    board = tmp_path / "board"
    board.mkdir()
    refused = flash("--board", "pico", "--bundle", tap_bundle, "--config", path, "--dest", board)
    assert refused.returncode == 1 and complaint in refused.stderr
    assert list(board.iterdir()) == []  # nothing written


def test_flash_board_refuses_a_tls_ca_that_is_no_certificate_and_an_unknown_board(tap_bundle, board_settings,
                                                                                   tmp_path):
    bundle = json.loads(tap_bundle.read_text())
    bundle["broker"]["tls_ca"] = "the park's CA"
    with_tls = tmp_path / "tls.json"
    with_tls.write_text(json.dumps(bundle))
    refused = flash("--board", "pico", "--bundle", with_tls, "--config", board_settings, "--dest", tmp_path)
    assert refused.returncode == 1 and "must be the park CA's PEM certificate" in refused.stderr
    unknown = flash("--board", "arduino", "--bundle", tap_bundle, "--config", board_settings, "--dest", tmp_path)
    assert unknown.returncode == 2 and "invalid choice" in unknown.stderr


def test_flash_board_copies_a_native_ed25519_built_for_the_board_and_refuses_another(tap_bundle, board_settings,
                                                                                      tmp_path):
    # Headers only (tests/test_tap_native.py builds the real module): .mpy version 6, sub-version 3,
    # native arch in bits 2..7 of the third byte.
    for_pico = tmp_path / "armv6m.mpy"
    for_pico.write_bytes(bytes((ord("M"), 6, 4 << 2 | 3, 31)) + b"code")
    for_unix = tmp_path / "x64.mpy"
    for_unix.write_bytes(bytes((ord("M"), 6, 2 << 2 | 3, 31)) + b"code")
    refused_board = tmp_path / "refused"
    refused_board.mkdir()
    refused = flash("--board", "pico", "--bundle", tap_bundle, "--config", board_settings, "--native", for_unix,
                    "--dest", refused_board)
    assert refused.returncode == 1 and "is not a native .mpy for armv6m" in refused.stderr
    assert list(refused_board.iterdir()) == []
    board = tmp_path / "board"
    board.mkdir()
    done = flash("--board", "pico", "--bundle", tap_bundle, "--config", board_settings, "--native", for_pico,
                 "--dest", board)
    assert done.returncode == 0, done.stderr
    assert (board / "tap" / "ed25519_native.mpy").read_bytes() == for_pico.read_bytes()
